//! Printable plans of a design (`design export`): the same [`Sheet`] laid out as markdown or
//! as one self-contained html page for printing at a workshop.
//!
//! Pure functions from the node's plan reply to text. Everything in a design came from
//! peers, so every piece of it is escaped for the format it lands in (html entities; in
//! markdown, `<` and table pipes), and control characters never reach the output raw.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// The node's plan reply (`PlanReply`), as it arrives over JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct Plan {
    /// The design as shown (every field, plus `id`, and `release` when one was asked for).
    pub design: Map<String, Value>,
    /// The commons' id.
    pub commons: String,
    /// The commons' name.
    pub commons_name: String,
    /// Names of everyone who signed a change, in order of their first one.
    pub authors: Vec<String>,
}

/// One bill-of-materials row, as printed.
#[derive(Debug, Clone, Default, PartialEq)]
struct BomRow {
    name: String,
    quantity: String,
    unit: String,
    sourcing: String,
    reference: String,
}

/// What a plan prints, read out of the design once for both layouts.
#[derive(Debug, Clone, Default)]
struct Sheet {
    name: String,
    id: String,
    commons: String,
    commons_name: String,
    version: String,
    release: String,
    releases: Vec<String>,
    stage: String,
    summary: String,
    problem: String,
    how_it_works: String,
    bom: Vec<BomRow>,
    tools: Vec<String>,
    skills: Vec<String>,
    steps: Vec<String>,
    safety: String,
    licence: Vec<(String, String)>,
    licensor: String,
    contributors: Vec<String>,
}

impl Sheet {
    fn from_plan(plan: &Plan) -> Sheet {
        let d = &plan.design;
        let text = |key: &str| d.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        let strings = |key: &str| -> Vec<String> {
            d.get(key)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|s| !s.trim().is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let bom = d
            .get("bom")
            .and_then(Value::as_array)
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        let part = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or("");
                        BomRow {
                            name: part("name").to_string(),
                            quantity: row.get("quantity").map(number).unwrap_or_default(),
                            unit: part("unit").to_string(),
                            sourcing: part("sourcing").to_string(),
                            reference: part("reference").to_string(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let licence = d
            .get("licence")
            .and_then(Value::as_object)
            .map(|parts| {
                ["hardware", "documentation", "software"]
                    .iter()
                    .filter_map(|part| {
                        let expr = parts.get(*part).and_then(Value::as_str)?;
                        (!expr.is_empty()).then(|| (part.to_string(), expr.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Credited contributors first (with their roles), then everyone else who signed changes.
        let mut contributors: Vec<String> = Vec::new();
        let mut credited: Vec<String> = Vec::new();
        for entry in d
            .get("contributors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                continue;
            }
            credited.push(name.to_string());
            contributors.push(match entry.get("role").and_then(Value::as_str) {
                Some(role) if !role.is_empty() => format!("{name} ({role})"),
                _ => name.to_string(),
            });
        }
        for author in &plan.authors {
            if !credited.contains(author) {
                credited.push(author.clone());
                contributors.push(author.clone());
            }
        }
        let mut releases: Vec<String> = d
            .get("releases")
            .and_then(Value::as_object)
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        releases.sort();
        Sheet {
            name: text("name"),
            id: text("id"),
            commons: plan.commons.clone(),
            commons_name: plan.commons_name.clone(),
            version: text("version"),
            release: text("release"),
            releases,
            stage: text("stage"),
            summary: text("summary"),
            problem: text("problem"),
            how_it_works: text("how_it_works"),
            bom,
            tools: strings("tools"),
            skills: strings("skills"),
            steps: strings("steps"),
            safety: text("safety"),
            licence,
            licensor: text("licensor"),
            contributors,
        }
    }

    /// The version line: the release shown, else the design's own version, else its releases.
    fn version_line(&self) -> Option<String> {
        if !self.release.is_empty() {
            return Some(format!("release {}", self.release));
        }
        let mut parts = Vec::new();
        if !self.version.is_empty() {
            parts.push(format!("version {}", self.version));
        }
        if !self.releases.is_empty() {
            parts.push(format!(
                "current state (releases: {})",
                self.releases.join(", ")
            ));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// The prose sections, in the order a builder reads them.
    fn sections(&self) -> [(&'static str, &str); 3] {
        [
            ("Summary", &self.summary),
            ("The problem", &self.problem),
            ("How it works", &self.how_it_works),
        ]
    }
}

/// A quantity as people write it: `2`, not `2.0`.
fn number(value: &Value) -> String {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            Some(f) => format!("{f}"),
            None => n.to_string(),
        },
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

/// Control characters (but newlines and tabs) shown as `\u{..}`, so no peer's text drives a terminal.
fn clean(text: &str) -> String {
    crate::output::prose(text)
}

/// Markdown-escapes text from a peer: no raw html (`<`), no stray emphasis at line start.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in clean(text).chars() {
        if matches!(c, '<' | '>' | '\\' | '`' | '*' | '_' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Markdown for a table cell: escaped, one line, pipes escaped.
fn md_cell(text: &str) -> String {
    md(text).replace('|', "\\|").replace('\n', " ")
}

/// A multi-line item (a step) indented under its number.
fn md_item(text: &str) -> String {
    md(text.trim()).replace('\n', "\n   ")
}

/// The plan as markdown.
pub fn markdown(plan: &Plan) -> String {
    let sheet = Sheet::from_plan(plan);
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", md(&sheet.name).replace('\n', " "));
    if let Some(version) = sheet.version_line() {
        let _ = writeln!(out, "*{}*\n", md(&version));
    }
    if !sheet.stage.is_empty() {
        let _ = writeln!(out, "Stage: {}\n", md(&sheet.stage));
    }
    for (title, text) in sheet.sections() {
        if !text.trim().is_empty() {
            let _ = writeln!(out, "## {title}\n\n{}\n", md(text.trim()));
        }
    }
    if !sheet.bom.is_empty() {
        let _ = writeln!(out, "## Bill of materials\n");
        let _ = writeln!(
            out,
            "| # | Item | Quantity | Unit | Where to get it | Reference |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for (i, row) in sheet.bom.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                i + 1,
                md_cell(&row.name),
                md_cell(&row.quantity),
                md_cell(&row.unit),
                md_cell(&row.sourcing),
                md_cell(&row.reference)
            );
        }
        out.push('\n');
    }
    for (title, items) in [("Tools", &sheet.tools), ("Skills", &sheet.skills)] {
        if !items.is_empty() {
            let _ = writeln!(out, "## {title}\n");
            for item in items {
                let _ = writeln!(out, "- {}", md_item(item));
            }
            out.push('\n');
        }
    }
    if !sheet.steps.is_empty() {
        let _ = writeln!(out, "## Build steps\n");
        for (i, step) in sheet.steps.iter().enumerate() {
            let _ = writeln!(out, "{}. {}\n", i + 1, md_item(step));
        }
    }
    if !sheet.safety.trim().is_empty() {
        let _ = writeln!(out, "## Safety\n\n{}\n", md(sheet.safety.trim()));
    }
    let _ = writeln!(out, "## Licence and contributors\n");
    if sheet.licence.is_empty() {
        let _ = writeln!(out, "- Licence: none given");
    }
    for (part, expr) in &sheet.licence {
        let _ = writeln!(out, "- Licence ({part}): {}", md(expr));
    }
    if !sheet.licensor.is_empty() {
        let _ = writeln!(out, "- Licensor: {}", md(&sheet.licensor));
    }
    if !sheet.contributors.is_empty() {
        let names: Vec<String> = sheet.contributors.iter().map(|c| md(c)).collect();
        let _ = writeln!(out, "- Contributors: {}", names.join(", "));
    }
    let _ = writeln!(
        out,
        "\n---\nDesign `{}` in the commons {} (`{}`), from Hedgerow.",
        clean(&sheet.id),
        md(&sheet.commons_name),
        clean(&sheet.commons)
    );
    out
}

/// Html-escapes text from a peer (control characters shown, not passed through).
fn h(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in clean(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Prose as paragraphs: blank lines split them, single newlines become line breaks.
fn h_prose(text: &str) -> String {
    text.trim()
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", h(p.trim()).replace('\n', "<br>")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The page's style: screen and paper; steps, rows and the safety box never split across pages.
const STYLE: &str = "\
body{font-family:Georgia,'DejaVu Serif',serif;max-width:46em;margin:2em auto;padding:0 1em;line-height:1.45;color:#111}
h1{font-size:1.8em;margin-bottom:.2em}
h2{font-size:1.25em;border-bottom:1px solid #888;margin-top:1.6em}
.meta{color:#444;font-size:.9em}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #777;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eee}
td.n{text-align:right;white-space:nowrap}
ol.steps>li{margin-bottom:.9em;padding-left:.3em}
.safety{border:2px solid #b00;padding:.2em .8em}
footer{margin-top:2em;font-size:.85em;color:#444;border-top:1px solid #888}
@media print{
@page{margin:15mm}
body{max-width:none;margin:0;padding:0;font-size:11pt}
h2{break-after:avoid;page-break-after:avoid}
ol.steps>li,tr,.safety,ul>li{break-inside:avoid;page-break-inside:avoid}
thead{display:table-header-group}
th{background:none}
}
";

/// The plan as one self-contained html page (inline style, no scripts, no external files).
pub fn html(plan: &Plan) -> String {
    let sheet = Sheet::from_plan(plan);
    let mut out = String::new();
    let name = h(&sheet.name).replace('\n', " ");
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{name}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{name}</h1>"
    );
    let mut meta = Vec::new();
    if let Some(version) = sheet.version_line() {
        meta.push(h(&version));
    }
    if !sheet.stage.is_empty() {
        meta.push(format!("stage: {}", h(&sheet.stage)));
    }
    if !meta.is_empty() {
        let _ = writeln!(out, "<p class=\"meta\">{}</p>", meta.join(" · "));
    }
    for (title, text) in sheet.sections() {
        if !text.trim().is_empty() {
            let _ = writeln!(out, "<h2>{title}</h2>\n{}", h_prose(text));
        }
    }
    if !sheet.bom.is_empty() {
        let _ = writeln!(
            out,
            "<h2>Bill of materials</h2>\n<table>\n<thead><tr><th>#</th><th>Item</th><th>Quantity</th><th>Unit</th><th>Where to get it</th><th>Reference</th></tr></thead>\n<tbody>"
        );
        for (i, row) in sheet.bom.iter().enumerate() {
            let _ = writeln!(
                out,
                "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                i + 1,
                h(&row.name),
                h(&row.quantity),
                h(&row.unit),
                h(&row.sourcing),
                h(&row.reference)
            );
        }
        let _ = writeln!(out, "</tbody>\n</table>");
    }
    for (title, items) in [("Tools", &sheet.tools), ("Skills", &sheet.skills)] {
        if !items.is_empty() {
            let _ = writeln!(out, "<h2>{title}</h2>\n<ul>");
            for item in items {
                let _ = writeln!(out, "<li>{}</li>", h(item));
            }
            let _ = writeln!(out, "</ul>");
        }
    }
    if !sheet.steps.is_empty() {
        let _ = writeln!(out, "<h2>Build steps</h2>\n<ol class=\"steps\">");
        for step in &sheet.steps {
            let _ = writeln!(out, "<li>{}</li>", h_prose(step));
        }
        let _ = writeln!(out, "</ol>");
    }
    if !sheet.safety.trim().is_empty() {
        let _ = writeln!(
            out,
            "<h2>Safety</h2>\n<div class=\"safety\">{}</div>",
            h_prose(&sheet.safety)
        );
    }
    let _ = writeln!(out, "<h2>Licence and contributors</h2>\n<ul>");
    if sheet.licence.is_empty() {
        let _ = writeln!(out, "<li>Licence: none given</li>");
    }
    for (part, expr) in &sheet.licence {
        let _ = writeln!(out, "<li>Licence ({part}): {}</li>", h(expr));
    }
    if !sheet.licensor.is_empty() {
        let _ = writeln!(out, "<li>Licensor: {}</li>", h(&sheet.licensor));
    }
    if !sheet.contributors.is_empty() {
        let names: Vec<String> = sheet.contributors.iter().map(|c| h(c)).collect();
        let _ = writeln!(out, "<li>Contributors: {}</li>", names.join(", "));
    }
    let _ = writeln!(
        out,
        "</ul>\n<footer>Design <code>{}</code> in the commons {} (<code>{}</code>), from Hedgerow.</footer>\n</body>\n</html>",
        h(&sheet.id),
        h(&sheet.commons_name),
        h(&sheet.commons)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(design: Value) -> Plan {
        Plan {
            design: design.as_object().cloned().unwrap_or_default(),
            commons: "C1".into(),
            commons_name: "Farm Hack <tools>".into(),
            authors: vec!["Ada".into(), "Bea".into()],
        }
    }

    #[test]
    fn html_escapes_everything_a_peer_wrote() {
        let page = html(&plan(json!({
            "name": "Crimper <b>",
            "steps": ["<script>alert(1)</script> & weld"],
            "bom": [{"name": "tube | \"40\"", "quantity": 2.0}],
            "contributors": [{"name": "Ada", "role": "designer"}],
        })));
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; weld"));
        assert!(page.contains("Crimper &lt;b&gt;"));
        assert!(page.contains("<td class=\"n\">2</td>"));
        assert!(page.contains("Contributors: Ada (designer), Bea"));
        assert!(page.contains("Farm Hack &lt;tools&gt;"));
    }

    #[test]
    fn markdown_keeps_table_cells_and_raw_html_out() {
        let text = markdown(&plan(json!({
            "name": "Crimper",
            "bom": [{"name": "a|b", "quantity": 1.5, "unit": "m"}],
            "steps": ["Cut\nthen <i>weld</i>"],
            "licence": {"hardware": "CERN-OHL-S-2.0"},
            "release": "1.0",
        })));
        assert!(text.contains("| 1 | a\\|b | 1.5 | m |  |  |"), "{text}");
        assert!(
            text.contains("1. Cut\n   then \\<i\\>weld\\</i\\>"),
            "{text}"
        );
        assert!(text.contains("- Licence (hardware): CERN-OHL-S-2.0"));
        assert!(text.contains("*release 1.0*"));
    }
}
