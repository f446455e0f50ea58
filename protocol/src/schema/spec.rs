//! Field tables: each kind's schema as data, and the checks a value must pass to be written.
//!
//! Validation, rendering, blame and edits all walk the same tables, so a field
//! added to a kind is validated, printed and editable without touching four
//! hand-written functions that could drift apart.

use super::error::ValueError;
use super::{MAX_KEY_BYTES, MAX_TAG_BYTES};
use crate::genesis::DocId;
use crate::licence::parse_licence;
use automerge::{ChangeHash, ObjType, ScalarValue, Value};
use std::str::FromStr;

/// How a string value is checked when written locally.
///
/// These rules apply to edits only, not to documents received from peers: a
/// peer with a newer SPDX list or a newer list of stages must not be cut off.
#[derive(Debug, Clone, Copy)]
pub enum StrCheck {
    /// Any text within the size limit.
    Free,
    /// A tag: any text, matched by its normal form ([`super::normalise_tag`]), which must not
    /// be empty; stored as typed.
    Tag,
    /// One of a fixed set of words (matched case-insensitively, stored as listed).
    OneOf(&'static [&'static str]),
    /// A strict SPDX licence expression.
    Spdx,
    /// `yyyy-mm-dd` or `yyyy-mm-ddThh:mm`.
    Date,
    /// A printable document id.
    DocId,
    /// An automerge change hash in hex.
    Hash,
}

/// Which keys a map of entries accepts.
#[derive(Debug, Clone, Copy)]
pub enum KeyRule {
    /// Lowercase letters, digits, `-` and `_` (e.g. `farmhack`, `latelierpaysan`).
    Slug,
    /// Any printable text without spaces (release versions such as `5.6` or `v2-beta`).
    Label,
}

/// The shape of one field, and its limits.
#[derive(Debug, Clone, Copy)]
pub enum FieldType {
    /// A string scalar.
    Str {
        /// Longest value in bytes.
        max: usize,
        /// Rule for written values.
        check: StrCheck,
    },
    /// A number scalar (stored as an integer when whole).
    Num {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
        /// Whether only whole numbers are accepted.
        whole: bool,
    },
    /// A collaborative text object.
    Text {
        /// Longest text in bytes.
        max: usize,
    },
    /// A list of items of one type.
    List {
        /// Most items.
        max: usize,
        /// Type of each item.
        item: &'static FieldType,
        /// Whether the list is a set (adds are deduplicated, renders drop merge duplicates).
        unique: bool,
    },
    /// A map with fixed keys.
    Record(&'static [Field]),
    /// A map from free keys to values of one type.
    MapOf {
        /// Most entries.
        max: usize,
        /// Rule for keys.
        key: KeyRule,
        /// Type of each value.
        value: &'static FieldType,
    },
}

/// One named field of a document or record.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its key in the automerge map.
    pub name: &'static str,
    /// Its shape.
    pub ty: FieldType,
}

/// A short free string field.
pub(crate) const fn str_field(name: &'static str, max: usize) -> Field {
    Field {
        name,
        ty: FieldType::Str {
            max,
            check: StrCheck::Free,
        },
    }
}

/// A string field restricted to a list of words.
pub(crate) const fn choice_field(name: &'static str, choices: &'static [&'static str]) -> Field {
    Field {
        name,
        ty: FieldType::Str {
            max: MAX_TAG_BYTES,
            check: StrCheck::OneOf(choices),
        },
    }
}

/// A string field holding a document id.
pub(crate) const fn id_field(name: &'static str) -> Field {
    Field {
        name,
        ty: FieldType::Str {
            max: super::MAX_ID_BYTES,
            check: StrCheck::DocId,
        },
    }
}

/// A number field.
pub(crate) const fn num_field(name: &'static str, min: f64, max: f64, whole: bool) -> Field {
    Field {
        name,
        ty: FieldType::Num { min, max, whole },
    }
}

/// A collaborative text field.
pub(crate) const fn text_field(name: &'static str, max: usize) -> Field {
    Field {
        name,
        ty: FieldType::Text { max },
    }
}

/// A list field.
pub(crate) const fn list_field(
    name: &'static str,
    max: usize,
    item: &'static FieldType,
    unique: bool,
) -> Field {
    Field {
        name,
        ty: FieldType::List { max, item, unique },
    }
}

impl FieldType {
    /// The automerge object a field of this type lives in, if it is an object.
    pub(crate) fn obj_type(&self) -> Option<ObjType> {
        match self {
            FieldType::Str { .. } | FieldType::Num { .. } => None,
            FieldType::Text { .. } => Some(ObjType::Text),
            FieldType::List { .. } => Some(ObjType::List),
            FieldType::Record(_) | FieldType::MapOf { .. } => Some(ObjType::Map),
        }
    }

    /// A farmer-readable name of the shape, for error messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            FieldType::Str { .. } => "a string",
            FieldType::Num { .. } => "a number",
            FieldType::Text { .. } => "a text",
            FieldType::List { item, .. } => match item {
                FieldType::Str { .. } => "a list of strings",
                FieldType::Text { .. } => "a list of texts",
                FieldType::Record(_) => "a list of entries",
                _ => "a list",
            },
            FieldType::Record(_) => "a map of named parts",
            FieldType::MapOf { .. } => "a map",
        }
    }
}

/// Names of the fields of a table, for "known fields" hints.
pub(crate) fn names(fields: &[Field]) -> Vec<&'static str> {
    fields.iter().map(|f| f.name).collect()
}

/// Looks a field up by name.
pub(crate) fn find(fields: &'static [Field], name: &str) -> Option<&'static Field> {
    fields.iter().find(|f| f.name == name)
}

/// Describes what an automerge value is, for error messages.
pub(crate) fn describe_value(value: &Value<'_>) -> String {
    let what = match value {
        Value::Object(ObjType::Map) => "a map",
        Value::Object(ObjType::Table) => "a table",
        Value::Object(ObjType::List) => "a list",
        Value::Object(ObjType::Text) => "a text",
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(_) => "a string",
            ScalarValue::Int(_) | ScalarValue::Uint(_) | ScalarValue::F64(_) => "a number",
            ScalarValue::Boolean(_) => "a yes/no value",
            ScalarValue::Bytes(_) => "raw bytes",
            ScalarValue::Counter(_) => "a counter",
            ScalarValue::Timestamp(_) => "a timestamp",
            ScalarValue::Null => "null",
            ScalarValue::Unknown { .. } => "a value of an unknown type",
        },
    };
    what.to_string()
}

/// Checks a string for a field and returns the form to store.
pub(crate) fn check_str(
    path: &str,
    max: usize,
    check: StrCheck,
    raw: &str,
) -> Result<String, ValueError> {
    let value = raw.trim();
    if value.len() > max {
        return Err(ValueError::TooLong {
            field: path.to_string(),
            bytes: value.len(),
            max,
        });
    }
    match check {
        StrCheck::Free => Ok(value.to_string()),
        StrCheck::Tag if super::normalise_tag(value).is_empty() => Err(ValueError::Empty {
            field: path.to_string(),
        }),
        StrCheck::Tag => Ok(value.to_string()),
        StrCheck::OneOf(choices) => choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(value))
            .map(|c| (*c).to_string())
            .ok_or_else(|| ValueError::NotAChoice {
                field: path.to_string(),
                value: value.to_string(),
                allowed: choices,
            }),
        StrCheck::Spdx => parse_licence(value)
            .map(|l| l.as_str().to_string())
            .map_err(|source| ValueError::Licence {
                field: path.to_string(),
                source,
            }),
        StrCheck::Date => {
            if is_date(value) {
                Ok(value.to_string())
            } else {
                Err(ValueError::BadDate {
                    field: path.to_string(),
                    value: value.to_string(),
                })
            }
        }
        StrCheck::DocId => DocId::from_str(value)
            .map(|id| id.to_string())
            .map_err(|source| ValueError::BadDocId {
                field: path.to_string(),
                source,
            }),
        StrCheck::Hash => ChangeHash::from_str(value)
            .map(|h| h.to_string())
            .map_err(|_| ValueError::BadHash {
                field: path.to_string(),
                value: value.to_string(),
            }),
    }
}

/// Parses a number for a field, accepting a decimal comma (`2,5`) as French plans write it.
pub(crate) fn parse_number(
    path: &str,
    min: f64,
    max: f64,
    whole: bool,
    raw: &str,
) -> Result<ScalarValue, ValueError> {
    let text = raw.trim();
    let normalised = if text.contains('.') {
        text.to_string()
    } else {
        text.replacen(',', ".", 1)
    };
    let n: f64 = normalised
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| ValueError::NotANumber {
            field: path.to_string(),
            value: text.to_string(),
        })?;
    number_value(path, min, max, whole, n)
}

/// Checks a number against a field's range and picks its stored form.
pub(crate) fn number_value(
    path: &str,
    min: f64,
    max: f64,
    whole: bool,
    n: f64,
) -> Result<ScalarValue, ValueError> {
    if !n.is_finite() || n < min || n > max {
        return Err(ValueError::OutOfRange {
            field: path.to_string(),
            value: n.to_string(),
            min,
            max,
        });
    }
    // Integers up to 2^53 convert exactly, so storing them as Int loses nothing and renders as `3`, not `3.0`.
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        Ok(ScalarValue::Int(n as i64))
    } else if whole {
        Err(ValueError::NotWhole {
            field: path.to_string(),
            value: n.to_string(),
        })
    } else {
        Ok(ScalarValue::F64(n))
    }
}

/// Checks a key of a map of entries.
pub(crate) fn check_key(path: &str, rule: KeyRule, key: &str) -> Result<(), ValueError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_BYTES
        && match rule {
            KeyRule::Slug => key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'),
            KeyRule::Label => !key.chars().any(|c| c.is_whitespace() || c.is_control()),
        };
    if ok {
        Ok(())
    } else {
        Err(ValueError::BadKey {
            field: path.to_string(),
            key: key.to_string(),
            max: MAX_KEY_BYTES,
            allowed: match rule {
                KeyRule::Slug => "bytes of lowercase letters, digits, `-` or `_`",
                KeyRule::Label => "bytes without spaces (e.g. `1.0`, `5.6`, `v2-beta`)",
            },
        })
    }
}

/// Whether the text is `yyyy-mm-dd` or `yyyy-mm-ddThh:mm`, with a real calendar day.
pub(crate) fn is_date(text: &str) -> bool {
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return false;
    }
    let (Ok(year), Ok(month), Ok(day)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>())
    else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days {
        return false;
    }
    match time {
        None => true,
        Some(t) => match t.split_once(':') {
            Some((h, min)) if digits(h, 2) && digits(min, 2) => {
                h.parse::<u32>().is_ok_and(|h| h < 24) && min.parse::<u32>().is_ok_and(|m| m < 60)
            }
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_checked_against_the_calendar() {
        for ok in [
            "2025-06-14",
            "2024-02-29",
            "2025-06-14T09:30",
            "2025-12-31T23:59",
        ] {
            assert!(is_date(ok), "{ok}");
        }
        for bad in [
            "2025-6-14",
            "2025-02-29",
            "2025-13-01",
            "2025-06-14T24:00",
            "2025-06-14T9:30",
            "14/06/2025",
            "2025-06-14T09:30:00",
            "",
            "2025-06-14T",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
    }

    #[test]
    fn numbers_parse_with_comma_and_store_whole_values_as_integers() {
        assert_eq!(
            parse_number("q", 0.0, 10.0, false, "2,5"),
            Ok(ScalarValue::F64(2.5))
        );
        assert_eq!(
            parse_number("q", 0.0, 10.0, true, " 3 "),
            Ok(ScalarValue::Int(3))
        );
        assert!(matches!(
            parse_number("q", 0.0, 10.0, true, "2.5"),
            Err(ValueError::NotWhole { .. })
        ));
        assert!(matches!(
            parse_number("q", 0.0, 10.0, false, "11"),
            Err(ValueError::OutOfRange { .. })
        ));
        for bad in ["NaN", "inf", "three", ""] {
            assert!(
                matches!(
                    parse_number("q", 0.0, 10.0, false, bad),
                    Err(ValueError::NotANumber { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn strings_follow_their_rule() {
        let stages: &'static [&'static str] = &["idea", "prototype"];
        assert_eq!(
            check_str("stage", 64, StrCheck::OneOf(stages), " Prototype "),
            Ok("prototype".into())
        );
        assert!(matches!(
            check_str("stage", 64, StrCheck::OneOf(stages), "banana"),
            Err(ValueError::NotAChoice { .. })
        ));
        assert!(matches!(
            check_str("x", 3, StrCheck::Free, "four"),
            Err(ValueError::TooLong { .. })
        ));
        assert!(matches!(
            check_str("licence.hardware", 256, StrCheck::Spdx, "GPL-9"),
            Err(ValueError::Licence { .. })
        ));
        assert!(matches!(
            check_str("h", 64, StrCheck::Hash, "abc"),
            Err(ValueError::BadHash { .. })
        ));
        assert!(matches!(
            check_str("derivative_of", 64, StrCheck::DocId, "not an id"),
            Err(ValueError::BadDocId { .. })
        ));
        assert!(check_key("external_ids", KeyRule::Slug, "latelierpaysan").is_ok());
        assert!(check_key("external_ids", KeyRule::Slug, "Farm Hack").is_err());
        assert!(check_key("releases", KeyRule::Label, "5.6").is_ok());
        assert!(check_key("releases", KeyRule::Label, "").is_err());
    }
}
