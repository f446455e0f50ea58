//! Tags as people type them: `no-till`, `No-Till`, `no till` and `no_till` are one tag.
//!
//! A tag is stored as its first writer typed it (that is what readers see), and matched by
//! its normal form, so adding a tag that differs only in case or separators is a no-op,
//! removing one removes every spelling, and a list filter finds them all.

/// The form tags are compared by: lower case, each run of spaces, `-` and `_` made one `-`,
/// none at either end (`" No_Till "` → `no-till`).
pub fn normalise_tag(tag: &str) -> String {
    let mut out = String::with_capacity(tag.len());
    let mut separator = false;
    for c in tag.chars() {
        if c.is_whitespace() || c == '-' || c == '_' {
            separator = !out.is_empty();
            continue;
        }
        if separator {
            out.push('-');
            separator = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Whether two tags are the same tag once normalised.
pub fn same_tag(a: &str, b: &str) -> bool {
    normalise_tag(a) == normalise_tag(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_tag_normalise_alike() {
        for spelling in [
            "no-till",
            "No-Till",
            "no till",
            "no_till",
            "  NO   TILL ",
            "no--till",
            "-no_-_till-",
        ] {
            assert_eq!(normalise_tag(spelling), "no-till", "{spelling:?}");
        }
        assert!(same_tag("Cover crops", "cover-crops"));
        assert!(!same_tag("no-till", "notill"));
    }

    #[test]
    fn letters_beyond_ascii_are_lowered_and_kept() {
        assert_eq!(
            normalise_tag("Désherbage Mécanique"),
            "désherbage-mécanique"
        );
        assert_eq!(normalise_tag("ÉPANDEUR"), "épandeur");
    }

    #[test]
    fn separators_alone_normalise_to_nothing() {
        assert_eq!(normalise_tag(" - _ "), "");
        assert_eq!(normalise_tag(""), "");
    }
}
