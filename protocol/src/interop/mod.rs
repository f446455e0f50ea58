//! Interoperability: pure mappings between Hedgerow documents and the formats farming
//! communities already keep their designs and equipment in (Farm Hack tool pages, farmOS
//! equipment exports), and the provenance record every import signs into its change.
//!
//! Nothing here does I/O: parsers take bytes, mappings return edits and reports, and the
//! node decides what to write.

pub mod farmhack;
pub mod farmos;
pub mod okh;
pub mod provenance;

/// Strips HTML tags and decodes the few entities scraped pages carry, keeping paragraph breaks.
///
/// Farm Hack's body fields are Drupal HTML; a design's texts are plain text that people edit.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            // A lone `<` is text ("< 5 cm").
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if matches!(
            name.as_str(),
            "p" | "div" | "ul" | "ol" | "h1" | "h2" | "h3" | "h4"
        ) && tag.starts_with('/')
        {
            out.push_str("\n\n");
        } else if matches!(name.as_str(), "br") {
            out.push('\n');
        } else if name == "li" && !tag.starts_with('/') {
            out.push_str("\n- ");
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#039;", "'")
        .replace("&deg;", "°")
        .replace("&amp;", "&");
    // Collapse runs of blank lines and trailing spaces the tags leave behind.
    let mut text = String::with_capacity(decoded.len());
    let mut blank = 0;
    for line in decoded.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        text.push_str(line.trim_start_matches(' '));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::html_to_text;

    #[test]
    fn html_becomes_plain_paragraphs() {
        assert_eq!(
            html_to_text(
                "<p>Crimps rye&nbsp;flat.</p>\n<p>Needs a 3-point hitch &amp; ballast.</p>"
            ),
            "Crimps rye flat.\n\nNeeds a 3-point hitch & ballast."
        );
        assert_eq!(
            html_to_text("<ul><li>one</li><li>two</li></ul>"),
            "- one\n- two"
        );
        assert_eq!(html_to_text("spacing < 5 cm"), "spacing < 5 cm");
        assert_eq!(html_to_text("plain"), "plain");
    }
}
