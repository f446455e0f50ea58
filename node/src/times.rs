//! Times as every `--json` reply writes them: RFC 3339 strings in UTC (`2026-11-30T07:00:00Z`).
//!
//! Stores and signed records keep unix seconds; only the replies change them, so one format
//! reaches scripts whatever command they read. The civil-date arithmetic is done here (Howard
//! Hinnant's days-from-civil) rather than pulling in a date crate for one format.

use serde::{Deserialize, Deserializer, Serializer};

/// Year, month, day, hour, minute, second of `unix` seconds in UTC.
fn civil(unix: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, secs / 3600, (secs % 3600) / 60, secs % 60)
}

/// `unix` seconds as RFC 3339 in UTC, to the second: `2026-11-30T07:00:00Z`.
pub fn rfc3339(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Unix seconds of an RFC 3339 time written by [`rfc3339`] (UTC, `Z`, whole seconds).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let y = y - i64::from(mo <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

/// Serde `with` module for a unix-seconds `i64` written as RFC 3339.
pub mod unix {
    use super::*;

    /// Writes `unix` as RFC 3339.
    pub fn serialize<S: Serializer>(unix: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*unix))
    }

    /// Reads RFC 3339, or unix seconds as replies of the previous release wrote them.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match Either::deserialize(d)? {
            Either::Secs(n) => Ok(n),
            Either::Text(t) => parse_rfc3339(&t)
                .ok_or_else(|| serde::de::Error::custom(format!("`{t}` is not an RFC 3339 time"))),
        }
    }
}

/// Serde `with` module for an optional unix-seconds `i64` written as RFC 3339 (or null).
pub mod unix_opt {
    use super::*;

    /// Writes `unix` as RFC 3339, `None` as null.
    pub fn serialize<S: Serializer>(unix: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match unix {
            Some(unix) => s.serialize_str(&rfc3339(*unix)),
            None => s.serialize_none(),
        }
    }

    /// Reads RFC 3339, unix seconds or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<Either>::deserialize(d)? {
            None => Ok(None),
            Some(Either::Secs(n)) => Ok(Some(n)),
            Some(Either::Text(t)) => parse_rfc3339(&t)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("`{t}` is not an RFC 3339 time"))),
        }
    }
}

/// A time as read back: text now, seconds before.
#[derive(Deserialize)]
#[serde(untagged)]
enum Either {
    Secs(i64),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_022_000), "2026-11-30T07:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        for t in [0, 1, 951_782_399, 1_796_022_000, 4_102_444_799, -86_401] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{t}");
        }
        assert_eq!(parse_rfc3339("2026-11-30 07:00:00"), None);
    }
}
