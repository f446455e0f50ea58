//! SPDX licence expressions and share-alike compatibility.
//!
//! A design carries up to three licences (hardware, documentation, software),
//! each an SPDX expression. Parsing is strict: no imprecise names such as
//! `GPLv3`, no deprecated ids, no `/` for `OR`. A fabricator reading a plan
//! must be able to tell exactly what they may do, and an ambiguous badge is
//! worse than none.
//!
//! Share-alike (copyleft) licences oblige derivatives to stay under the same
//! licence. When a design is forked, [`relicense_allowed`] checks the fork's
//! licence against its parent's, so a commons cannot quietly launder a
//! CC-BY-SA plan into a proprietary one.

use std::cmp::Ordering;
use std::fmt;

/// Longest licence expression accepted, in bytes.
pub const MAX_LICENCE_BYTES: usize = 256;

/// Licence families whose terms bind derivatives to the same licence.
///
/// A family is an SPDX id without its version and port suffix:
/// `CC-BY-SA-3.0-DE` belongs to `CC-BY-SA`, `GPL-3.0-or-later` to `GPL`.
pub const SHARE_ALIKE_FAMILIES: &[&str] = &[
    "CC-BY-SA",
    "CC-BY-NC-SA",
    "GPL",
    "LGPL",
    "AGPL",
    "CERN-OHL-S",
    "CERN-OHL-W",
    "TAPR-OHL",
    "MPL",
];

/// Why a licence expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LicenceError {
    /// The text is not a strictly valid SPDX expression.
    #[error(
        "licence `{expr}` is not a valid SPDX expression: {reason} at `{term}`; \
         use identifiers from https://spdx.org/licenses such as CC-BY-SA-4.0 or CERN-OHL-S-2.0"
    )]
    Invalid {
        /// The expression as given.
        expr: String,
        /// The part of the expression the parser stopped at.
        term: String,
        /// The parser's reason.
        reason: String,
    },
    /// The expression is longer than [`MAX_LICENCE_BYTES`].
    #[error("licence expression is {bytes} bytes long; the limit is {max}")]
    TooLong {
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A share-alike parent may not be relicensed to the proposed licence.
    #[error(
        "the parent design is licensed `{parent}`, which is share-alike: a derivative must keep \
         that licence (or a later version of it), so `{child}` is refused"
    )]
    RelicenseRefused {
        /// The parent's licence expression.
        parent: String,
        /// The proposed licence expression.
        child: String,
    },
}

/// A parsed, strictly valid SPDX licence expression.
#[derive(Clone)]
pub struct LicenceExpr {
    expr: spdx::Expression,
}

impl LicenceExpr {
    /// The expression as written.
    pub fn as_str(&self) -> &str {
        self.expr.as_ref()
    }

    /// The SPDX ids the expression names, in order (LicenseRef-* included as written).
    pub fn licence_ids(&self) -> Vec<String> {
        self.expr
            .requirements()
            .map(|r| r.req.license.to_string())
            .collect()
    }
}

impl fmt::Display for LicenceExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for LicenceExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LicenceExpr({:?})", self.as_str())
    }
}

/// Parses an SPDX expression strictly (no imprecise or deprecated ids).
pub fn parse_licence(expr: &str) -> Result<LicenceExpr, LicenceError> {
    let expr = expr.trim();
    if expr.len() > MAX_LICENCE_BYTES {
        return Err(LicenceError::TooLong {
            bytes: expr.len(),
            max: MAX_LICENCE_BYTES,
        });
    }
    spdx::Expression::parse_mode(expr, spdx::ParseMode::STRICT)
        .map(|expr| LicenceExpr { expr })
        .map_err(|e| LicenceError::Invalid {
            expr: expr.to_string(),
            term: expr
                .get(e.span.clone())
                .filter(|t| !t.is_empty())
                .unwrap_or(expr)
                .to_string(),
            reason: e.reason.to_string(),
        })
}

/// Whether every way of using the licence carries a share-alike obligation.
///
/// `MIT OR CC-BY-SA-4.0` is not share-alike: a user may pick MIT.
pub fn is_share_alike(expr: &LicenceExpr) -> bool {
    !expr.expr.evaluate(|req| family_of(req).is_none())
}

/// Refuses relicensing a share-alike parent to anything but the same family at the same or a later version.
///
/// Each share-alike term of the parent must be honoured by the child: every
/// way of using the child must go through a licence of that family at a
/// version the parent's terms allow (the same or later; exactly the same
/// for GNU `-only` ids, whose text forbids later versions).
pub fn relicense_allowed(parent: &str, child: &str) -> Result<(), LicenceError> {
    let parent_expr = parse_licence(parent)?;
    let child_expr = parse_licence(child)?;
    if !is_share_alike(&parent_expr) {
        return Ok(());
    }
    let allowed = parent_expr.expr.evaluate(|p| match family_of(p) {
        None => true,
        Some(duty) => !child_expr
            .expr
            .evaluate(|c| family_of(c).is_none_or(|offer| !duty.accepts(&offer))),
    });
    if allowed {
        Ok(())
    } else {
        Err(LicenceError::RelicenseRefused {
            parent: parent_expr.as_str().to_string(),
            child: child_expr.as_str().to_string(),
        })
    }
}

/// A share-alike licence reduced to what compatibility depends on.
struct ShareAlike {
    family: &'static str,
    version: Vec<u32>,
    exact_only: bool,
}

impl ShareAlike {
    /// Whether a derivative under `offer` satisfies the obligation of `self`.
    fn accepts(&self, offer: &ShareAlike) -> bool {
        if offer.family != self.family {
            return false;
        }
        match compare_versions(&offer.version, &self.version) {
            Ordering::Equal => true,
            Ordering::Greater => !self.exact_only,
            Ordering::Less => false,
        }
    }
}

/// The share-alike family of one requirement, or `None` for permissive and unknown licences.
fn family_of(req: &spdx::LicenseReq) -> Option<ShareAlike> {
    let spdx::LicenseItem::Spdx { id, or_later } = &req.license else {
        return None;
    };
    let name = id.name;
    let parts: Vec<&str> = name.split('-').collect();
    let at = parts
        .iter()
        .position(|p| !p.is_empty() && p.chars().all(|c| c == '.' || c.is_ascii_digit()))?;
    let family_name = parts[..at].join("-");
    let family = SHARE_ALIKE_FAMILIES.iter().find(|f| **f == family_name)?;
    Some(ShareAlike {
        family,
        version: parts[at]
            .split('.')
            .filter_map(|n| n.parse().ok())
            .collect(),
        exact_only: id.is_gnu() && name.ends_with("-only") && !or_later,
    })
}

/// Compares dotted versions numerically, so that `4.0` equals `4` and `10.0` follows `9.0`.
fn compare_versions(a: &[u32], b: &[u32]) -> Ordering {
    let len = a.len().max(b.len());
    (0..len)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(expr: &str) -> bool {
        is_share_alike(&parse_licence(expr).expect("valid expression"))
    }

    #[test]
    fn strict_parse_accepts_spdx_and_refuses_imprecise_names() {
        let expr = parse_licence(" CERN-OHL-S-2.0 AND CC-BY-SA-4.0 ").expect("valid");
        assert_eq!(expr.as_str(), "CERN-OHL-S-2.0 AND CC-BY-SA-4.0");
        assert_eq!(expr.licence_ids(), vec!["CERN-OHL-S-2.0", "CC-BY-SA-4.0"]);
        for bad in [
            "GPL-9",
            "GPLv3",
            "MIT/Apache-2.0",
            "GPL-3.0",
            "",
            "CC-BY-SA-4.0 AND",
        ] {
            let err = parse_licence(bad).expect_err(bad);
            assert!(
                matches!(err, LicenceError::Invalid { .. }),
                "{bad}: {err:?}"
            );
        }
        let err = parse_licence("GPL-9").expect_err("unknown id");
        let text = err.to_string();
        assert!(
            text.contains("`GPL-9` is not a valid SPDX expression"),
            "{text}"
        );
        assert!(matches!(
            parse_licence(&"MIT OR ".repeat(100)),
            Err(LicenceError::TooLong { .. })
        ));
    }

    #[test]
    fn share_alike_families_are_recognised() {
        for yes in [
            "CC-BY-SA-4.0",
            "CC-BY-SA-3.0-DE",
            "CC-BY-NC-SA-4.0",
            "GPL-3.0-or-later",
            "LGPL-2.1-only",
            "AGPL-3.0-only",
            "CERN-OHL-S-2.0",
            "CERN-OHL-W-2.0",
            "TAPR-OHL-1.0",
            "MPL-2.0",
            "MIT AND CC-BY-SA-4.0",
        ] {
            assert!(sa(yes), "{yes} should be share-alike");
        }
        for no in [
            "MIT",
            "CC-BY-4.0",
            "CERN-OHL-P-2.0",
            "CC0-1.0",
            "MIT OR CC-BY-SA-4.0",
        ] {
            assert!(!sa(no), "{no} should not be share-alike");
        }
    }

    #[test]
    fn relicensing_rules() {
        let refused = relicense_allowed("CC-BY-SA-4.0", "CC-BY-4.0").expect_err("SA to BY");
        let text = refused.to_string();
        assert!(
            text.contains("CC-BY-SA-4.0") && text.contains("CC-BY-4.0"),
            "{text}"
        );
        // What to do about it is the CLI's to say (it knows its flags).
        assert!(!text.contains("--allow-relicense"), "{text}");
        assert_eq!(
            refused,
            LicenceError::RelicenseRefused {
                parent: "CC-BY-SA-4.0".into(),
                child: "CC-BY-4.0".into()
            }
        );
        assert!(relicense_allowed("CC-BY-SA-3.0", "CC-BY-SA-4.0").is_ok());
        assert!(relicense_allowed("CC-BY-SA-3.0-DE", "CC-BY-SA-4.0").is_ok());
        assert!(relicense_allowed("CC-BY-SA-4.0", "CC-BY-SA-3.0").is_err());
        assert!(relicense_allowed("CERN-OHL-S-2.0", "MIT").is_err());
        assert!(relicense_allowed("CERN-OHL-S-2.0", "CERN-OHL-W-2.0").is_err());
        assert!(relicense_allowed("CC-BY-NC-SA-4.0", "CC-BY-SA-4.0").is_err());
        assert!(relicense_allowed("GPL-2.0-or-later", "GPL-3.0-only").is_ok());
        assert!(relicense_allowed("GPL-2.0-only", "GPL-3.0-only").is_err());
        // Offering a permissive alternative would let users escape the obligation.
        assert!(relicense_allowed("CC-BY-SA-4.0", "CC-BY-SA-4.0 OR MIT").is_err());
        assert!(relicense_allowed("CC-BY-SA-4.0", "CC-BY-SA-4.0 AND MIT").is_ok());
        // Both obligations of an AND must be kept; either side of an OR suffices.
        assert!(relicense_allowed("CC-BY-SA-4.0 AND GPL-3.0-or-later", "CC-BY-SA-4.0").is_err());
        assert!(relicense_allowed("CC-BY-SA-4.0 OR GPL-3.0-or-later", "GPL-3.0-or-later").is_ok());
        // Permissive parents allow anything.
        assert!(relicense_allowed("MIT", "CC-BY-NC-4.0").is_ok());
        assert!(relicense_allowed("MIT OR CC-BY-SA-4.0", "CC-BY-4.0").is_ok());
        assert!(matches!(
            relicense_allowed("CC-BY-SA-4.0", "GPL-9"),
            Err(LicenceError::Invalid { .. })
        ));
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions(&[4], &[4, 0]), Ordering::Equal);
        assert_eq!(compare_versions(&[10, 0], &[9, 0]), Ordering::Greater);
        assert_eq!(compare_versions(&[2, 1], &[2, 5]), Ordering::Less);
    }
}
