//! Human-readable printing of command results (the `--json` forms print the value as is).
//!
//! Most text printed here came from peers (titles, names, prose, addresses), so every
//! piece of it goes through [`line`] or [`prose`]: a title holding terminal escape
//! sequences must not clear or rewrite the reader's screen.

use hedgerow_node::verify::VerifyReport;
use serde_json::Value;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal raw: C0 and C1 controls, DEL, line and paragraph
/// separators, and the bidirectional formatting marks that reorder what is displayed.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unsafe(c) && !keep(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Peer-supplied text for one line of output: every control character (newlines too)
/// and bidi override shown escaped, as `\u{1b}`.
pub fn line(text: &str) -> String {
    escape(text, |_| false)
}

/// Peer-supplied prose printed over several lines on purpose: like [`line`], but newlines
/// and tabs stay.
pub fn prose(text: &str) -> String {
    escape(text, |c| c == '\n' || c == '\t')
}

/// Prints `value` as pretty JSON.
pub fn json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// The string at `key`, escaped for one line.
fn s(value: &Value, key: &str) -> String {
    line(raw(value, key))
}

/// The string at `key` as received, for lengths and comparisons only.
fn raw<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The string at `key` cut to its first `n` characters, escaped.
fn short(value: &Value, key: &str, n: usize) -> String {
    line(&raw(value, key).chars().take(n).collect::<String>())
}

/// The count at `key` (0 when absent).
fn count(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// `1 change`, `2 changes`: a count with its noun in the right number.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else if noun.ends_with('s') || noun.ends_with("ch") {
        format!("{n} {noun}es")
    } else {
        format!("{n} {noun}s")
    }
}

/// A time as people read it, in UTC without a zone suffix: `2026-11-30 07:00`. Takes the
/// RFC 3339 strings replies carry (and unix seconds, as older nodes sent them).
pub fn when(value: &Value) -> String {
    let text = match value {
        Value::String(t) => t.clone(),
        Value::Number(n) => match n.as_i64() {
            Some(unix) => hedgerow_node::times::rfc3339(unix),
            None => return String::new(),
        },
        _ => return String::new(),
    };
    // `2026-11-30T07:00:00Z` -> `2026-11-30 07:00`; anything else as it came, escaped.
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(clock)) if text.as_bytes().get(10) == Some(&b'T') => {
            format!("{} {}", line(date), line(clock))
        }
        _ => line(&text),
    }
}

/// The first 8 characters of a key or id: enough to tell people apart on one screen.
fn short_key(key: &str) -> String {
    line(&key.chars().take(8).collect::<String>())
}

/// `Ada Farmer (HpcrR7dD)`: a name beside its key; the short key alone when no name is known.
fn named(key: &str, name: Option<&str>) -> String {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => format!("{} ({})", line(name), short_key(key)),
        None => short_key(key),
    }
}

/// Every line of `text` (peer prose, escaped) indented by `pad`, trailing blank lines dropped.
fn block(text: &str, pad: &str) -> String {
    prose(text.trim_end())
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` whose first line follows a label already printed: later lines indented by `pad`.
fn hanging(text: &str, pad: &str) -> String {
    let text = prose(text.trim_end());
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").to_string();
    lines.fold(first, |mut out, l| {
        out.push('\n');
        if !l.is_empty() {
            out.push_str(pad);
            out.push_str(l);
        }
        out
    })
}

/// Rows of cells as columns padded to their widest cell (by characters), two spaces apart,
/// each row prefixed by `pad`; columns empty in every row are left out. `right` marks
/// columns aligned to the right (numbers).
pub fn table(header: &[&str], rows: &[Vec<String>], right: &[bool], pad: &str) -> String {
    let columns = header.len();
    let used: Vec<bool> = (0..columns)
        .map(|c| {
            rows.iter()
                .any(|r| r.get(c).is_some_and(|cell| !cell.is_empty()))
        })
        .collect();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |cell| cell.chars().count()))
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let render = |cells: Vec<&str>| {
        let mut out = String::from(pad);
        let shown: Vec<usize> = (0..columns).filter(|c| used[*c]).collect();
        for (i, c) in shown.iter().enumerate() {
            let cell = cells.get(*c).copied().unwrap_or("");
            let fill = widths[*c].saturating_sub(cell.chars().count());
            let last = i + 1 == shown.len();
            if right.get(*c).copied().unwrap_or(false) {
                out.push_str(&" ".repeat(fill));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if !last {
                    out.push_str(&" ".repeat(fill));
                }
            }
            if !last {
                out.push_str("  ");
            }
        }
        out.trim_end().to_string()
    };
    let mut out = vec![render(header.to_vec())];
    for row in rows {
        out.push(render(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// A number as people write it: `2`, `1.5`.
fn number(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => line(s),
        _ => String::new(),
    }
}

/// The display name the `names` map of a shown document gives `key`.
fn name_of<'a>(names: &'a Value, key: &str) -> Option<&'a str> {
    names.get(key).and_then(Value::as_str)
}

/// `Roller crimper (E9WDfTLu)`: a linked document by its name, or its id when not held here.
fn doc_ref(names: &Value, id: &str) -> String {
    match name_of(names, id) {
        Some(name) => format!("{} ({})", line(name), short_key(id)),
        None => format!("{} (not held here)", line(id)),
    }
}

/// Keys of a shown document that are about it rather than fields of its kind.
const META: &[&str] = &[
    "id",
    "doc_kind",
    "creator",
    "changes",
    "heads",
    "release",
    "names",
    "conflicts",
];

/// Prints a shown document: its name, then every field that has a value in the order its
/// kind's field table gives (the order a person reads a design: name, summary, problem, how
/// it works, ..., bill of materials, steps), the bill of materials as a table, releases and
/// builds as dated lines with names beside keys, and who made it.
pub fn document(value: &Value) {
    let Some(map) = value.as_object() else {
        json(value);
        return;
    };
    let names = map.get("names").cloned().unwrap_or(Value::Null);
    let kind = raw(value, "doc_kind");
    let order: Vec<&str> = kind
        .parse::<hedgerow_protocol::schema::DocKind>()
        .map(|k| hedgerow_protocol::schema::field_names(k).to_vec())
        .unwrap_or_default();
    let title_key = match kind {
        "event" => "title",
        "note" => "",
        _ => "name",
    };
    if !title_key.is_empty() {
        println!("{}", s(value, title_key));
    }
    println!("id: {} ({kind})", s(value, "id"));
    if let Some(release) = map.get("release").and_then(Value::as_str) {
        println!("release: {}", line(release));
    }
    print!("{}", conflicts(value));
    let mut keys: Vec<&str> = order
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .collect();
    // Fields this build does not know (a newer peer's) still show, after the known ones.
    keys.extend(
        map.keys()
            .map(String::as_str)
            .filter(|k| !order.contains(k) && !META.contains(k)),
    );
    for key in keys {
        let Some(v) = map.get(key) else { continue };
        if key == title_key || is_empty(v) {
            continue;
        }
        print_field(key, v, &names, value);
    }
    let creator = raw(value, "creator");
    println!(
        "created by {}; {}",
        named(creator, name_of(&names, creator)),
        plural(count(value, "changes"), "signed change")
    );
}

/// Prints one field of a shown document.
fn print_field(key: &str, v: &Value, names: &Value, doc: &Value) {
    // A field in conflict carries the mark on its label; the sides are listed above.
    let label = format!("{}{}", line(key), conflict_mark(doc, key));
    match (key, v) {
        ("bom", Value::Array(items)) => {
            println!("{label}:");
            let rows: Vec<Vec<String>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    vec![
                        (i + 1).to_string(),
                        s(item, "name"),
                        item.get("quantity").map(number).unwrap_or_default(),
                        s(item, "unit"),
                        s(item, "sourcing"),
                        s(item, "reference"),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["#", "item", "qty", "unit", "sourcing", "reference"],
                    &rows,
                    &[true, false, true, false, false, false],
                    "  "
                )
            );
        }
        ("parts", Value::Array(items)) => {
            println!("{label}:");
            let rows: Vec<Vec<String>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    vec![
                        (i + 1).to_string(),
                        s(item, "name"),
                        s(item, "material"),
                        item.get("quantity").map(number).unwrap_or_default(),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(
                    &["#", "part", "material", "qty"],
                    &rows,
                    &[true, false, false, true],
                    "  "
                )
            );
        }
        ("steps", Value::Array(items)) => {
            println!("{label}:");
            let width = items.len().to_string().len();
            for (i, item) in items.iter().enumerate() {
                let number = format!("{:>width$}. ", i + 1);
                let pad = " ".repeat(2 + number.len());
                let mark = conflict_mark(doc, &format!("steps.{}", i + 1));
                println!("  {number}{}{mark}", hanging(&scalar(item), &pad));
            }
        }
        ("releases", Value::Object(releases)) => {
            println!("{label}:");
            let mut rows: Vec<(String, Vec<String>)> = releases
                .iter()
                .map(|(version, r)| {
                    let by = raw(r, "by");
                    (
                        r.get("at").map(|a| a.to_string()).unwrap_or_default(),
                        vec![
                            line(version),
                            r.get("at").map(when).unwrap_or_default(),
                            named(by, name_of(names, by)),
                        ],
                    )
                })
                .collect();
            rows.sort();
            let rows: Vec<Vec<String>> = rows.into_iter().map(|(_, r)| r).collect();
            println!(
                "{}",
                table(&["version", "released", "by"], &rows, &[], "  ")
            );
        }
        ("built", Value::Array(items)) => {
            println!("{label}:");
            for b in items {
                let by = raw(b, "by");
                let mut text = format!(
                    "  {}  by {}",
                    b.get("at").map(when).unwrap_or_default(),
                    named(by, name_of(names, by))
                );
                if !raw(b, "place").is_empty() {
                    text.push_str(&format!(", at {}", s(b, "place")));
                }
                if !raw(b, "note").is_empty() {
                    text.push_str(&format!(": {}", s(b, "note")));
                }
                println!("{text}");
            }
        }
        ("designs" | "mentions", Value::Array(items)) => {
            println!("{label}:");
            for id in items.iter().filter_map(Value::as_str) {
                println!("  - {}", doc_ref(names, id));
            }
        }
        ("derivative_of" | "variant_of" | "target" | "reply_to", Value::String(id)) => {
            println!("{label}: {}", doc_ref(names, id));
        }
        ("related", Value::Array(items)) => {
            println!("{label}:");
            for r in items {
                println!("  - {}: {}", s(r, "kind"), doc_ref(names, raw(r, "design")));
            }
        }
        ("contributors", Value::Array(items)) => {
            println!("{label}:");
            for c in items {
                match raw(c, "role") {
                    "" => println!("  - {}", s(c, "name")),
                    _ => println!("  - {} ({})", s(c, "name"), s(c, "role")),
                }
            }
        }
        ("outcomes", Value::Array(items)) => {
            println!("{label}:");
            for o in items {
                match raw(o, "detail") {
                    "" => println!("  - {}", s(o, "kind")),
                    _ => println!("  - {}: {}", s(o, "kind"), s(o, "detail")),
                }
            }
        }
        ("tags" | "topics" | "activities" | "organisers", Value::Array(items)) => {
            let words: Vec<String> = items.iter().map(|i| line(&scalar(i))).collect();
            println!("{label}: {}", words.join(", "));
        }
        (_, Value::Array(items)) => {
            println!("{label}:");
            for item in items {
                println!("  - {}", hanging(&scalar(item), "    "));
            }
        }
        (_, Value::Object(inner)) => {
            println!("{label}:");
            for (k, iv) in inner.iter().filter(|(_, iv)| !is_empty(iv)) {
                println!("  {}: {}", line(k), hanging(&scalar(iv), "    "));
            }
        }
        _ => {
            let text = scalar(v);
            if text.trim_end().contains('\n') {
                println!("{label}:\n{}", block(&text, "  "));
            } else {
                println!("{label}: {}", prose(text.trim_end()));
            }
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
        _ => false,
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !is_empty(v))
            .map(|(k, v)| format!("{k}={}", scalar(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// The first line of a note's text, cut to `n` characters (with `…` when cut).
fn first_line(text: &str, n: usize) -> String {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut out: String = first.chars().take(n).collect();
    if first.chars().count() > n || text.trim().lines().count() > 1 {
        out.push('…');
    }
    line(&out)
}

/// An event's own dates: `2026-03-14`, `2026-03-14 to 2026-03-15`, or `no date set`.
fn event_dates(item: &Value) -> String {
    match (raw(item, "start"), raw(item, "end")) {
        ("", "") => "no date set".into(),
        (start, "") => line(start),
        ("", end) => format!("until {}", line(end)),
        (start, end) if start == end => line(start),
        (start, end) => format!("{} to {}", line(start), line(end)),
    }
}

/// Prints a list of documents: designs with who made them and when they last changed,
/// events by their own dates and place, notes by kind and author.
pub fn doc_list(value: &Value, kind: &str) {
    let items = value.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        // Said the same whether nothing is held or nothing matched a filter.
        println!("no {kind}s");
        return;
    }
    // Replies follow the note they answer, indented under it.
    let items = threaded(items);
    let by = |item: &Value| {
        let creator = raw(item, "creator");
        named(creator, item.get("creator_name").and_then(Value::as_str))
    };
    let (mut header, mut rows): (Vec<&str>, Vec<Vec<String>>) = match kind {
        "event" => (
            vec!["id", "dates", "title", "place", "by"],
            items
                .iter()
                .map(|(_, i)| {
                    vec![
                        s(i, "id"),
                        event_dates(i),
                        s(i, "title"),
                        s(i, "location"),
                        by(i),
                    ]
                })
                .collect(),
        ),
        "note" => (
            vec!["id", "kind", "by", "written", "text"],
            items
                .iter()
                .map(|(depth, i)| {
                    let reply = match depth {
                        0 => String::new(),
                        d => format!("{}↳ ", "  ".repeat(d - 1)),
                    };
                    vec![
                        s(i, "id"),
                        s(i, "kind"),
                        by(i),
                        i.get("updated_at").map(when).unwrap_or_default(),
                        format!("{reply}{}", first_line(raw(i, "title"), 60)),
                    ]
                })
                .collect(),
        ),
        _ => (
            vec!["id", "name", "by", "last change", "changes"],
            items
                .iter()
                .map(|(_, i)| {
                    vec![
                        s(i, "id"),
                        s(i, "title"),
                        by(i),
                        i.get("updated_at").map(when).unwrap_or_default(),
                        plural(count(i, "changes"), "change"),
                    ]
                })
                .collect(),
        ),
    };
    // With --search: where the text was found.
    if items.iter().any(|(_, i)| matched(i).is_some()) {
        header.push("found in");
        for (row, (_, item)) in rows.iter_mut().zip(&items) {
            row.push(matched(item).unwrap_or_default());
        }
    }
    println!("{}", table(&header, &rows, &[], ""));
}

/// Where a search found its text, as `name, steps 2`; `None` without a search.
fn matched(item: &Value) -> Option<String> {
    let fields: Vec<String> = item
        .get("matched")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .map(|f| line(&f.replace('.', " ")))
        .collect();
    (!fields.is_empty()).then(|| fields.join(", "))
}

/// Orders a list so each reply follows the note it answers (oldest reply first), with its
/// depth; items whose parent is not in the list stay where they were, at depth 0.
fn threaded(items: Vec<Value>) -> Vec<(usize, Value)> {
    let id_of = |v: &Value| raw(v, "id").to_string();
    let ids: std::collections::HashSet<String> = items.iter().map(id_of).collect();
    let parent_of = |v: &Value| {
        v.get("reply_to")
            .and_then(Value::as_str)
            .filter(|p| ids.contains(*p) && *p != raw(v, "id"))
            .map(str::to_string)
    };
    let mut children: std::collections::HashMap<String, Vec<Value>> = Default::default();
    let mut roots = Vec::new();
    for item in items.iter().rev() {
        match parent_of(item) {
            Some(parent) => children.entry(parent).or_default().push(item.clone()),
            None => roots.push(item.clone()),
        }
    }
    roots.reverse();
    let mut out = Vec::new();
    let mut stack: Vec<(usize, Value)> = roots.into_iter().rev().map(|v| (0, v)).collect();
    let mut seen = std::collections::HashSet::new();
    while let Some((depth, item)) = stack.pop() {
        let id = id_of(&item);
        if !seen.insert(id.clone()) {
            continue;
        }
        // Children were gathered oldest first; pushed newest first, the oldest pops first.
        for child in children.remove(&id).unwrap_or_default().into_iter().rev() {
            stack.push((depth + 1, child));
        }
        out.push((depth, item));
    }
    out
}

/// Prints what `profile edit` changed.
pub fn profile_edited(value: &Value) {
    let commons = value
        .get("commons")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    println!(
        "your profile is now: {}{}",
        s(value, "name"),
        match raw(value, "location") {
            "" => String::new(),
            place => format!(" ({})", line(place)),
        }
    );
    println!("signed into your profile in {commons} commons; others see it after their next sync");
}

/// Prints an event's notes under its `show` (the rows of `note list --on EVENT`).
pub fn attached_notes(value: &Value) {
    let items = value.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("notes: none yet (`hedgerow note add --on ID --text ...`)");
        return;
    }
    println!("notes ({}):", items.len());
    for item in items.iter().rev() {
        let creator = raw(item, "creator");
        let reply = match item.get("reply_to").and_then(Value::as_str) {
            Some(parent) => format!(", a reply to {}", short_key(parent)),
            None => String::new(),
        };
        println!(
            "  {}  {}  by {}  ({}{reply})",
            item.get("updated_at").map(when).unwrap_or_default(),
            s(item, "kind"),
            named(creator, item.get("creator_name").and_then(Value::as_str)),
            short_key(raw(item, "id"))
        );
        println!("{}", block(raw(item, "title"), "    "));
    }
}

/// What `signed` and `covered` mean, printed above a history.
pub const HISTORY_HEADER: &str =
    "signature: `signed` = the change carries its author's own signature, which verifies; \
`covered` = it has none of its own but a later signed change by the same author vouches for it \
(changes written offline travel that way); `INVALID` = it does not verify. Times are UTC.";

/// Prints a history table, oldest first, under a header that says what the signature column means.
pub fn history(value: &Value) {
    let rows_in = value.as_array().cloned().unwrap_or_default();
    println!("{HISTORY_HEADER}");
    println!();
    // A fork's history starts with its parent's changes: say which document each was made in.
    let mut made_in: Vec<&str> = rows_in.iter().map(|r| raw(r, "made_in")).collect();
    made_in.dedup();
    let forked = made_in.len() > 1;
    let rows: Vec<Vec<String>> = rows_in
        .iter()
        .map(|row| {
            let fields: Vec<String> = row
                .get("fields")
                .and_then(Value::as_array)
                .map(|f| f.iter().filter_map(Value::as_str).map(line).collect())
                .unwrap_or_default();
            let fields = if fields.len() > 6 {
                format!("{} and {} more", fields[..5].join(", "), fields.len() - 5)
            } else {
                fields.join(", ")
            };
            let person = raw(row, "person");
            let mut who = named(person, row.get("author_name").and_then(Value::as_str));
            who.push_str(&line(&device_suffix(row)));
            vec![
                short(row, "hash", 12),
                row.get("time").map(when).unwrap_or_default(),
                who,
                s(row, "signature"),
                if forked {
                    short_key(raw(row, "made_in"))
                } else {
                    String::new()
                },
                fields,
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &["change", "time", "author", "signature", "made in", "fields"],
            &rows,
            &[],
            ""
        )
    );
    println!("{}", plural(rows.len() as u64, "change"));
    // Imported changes are signed by their importer but written by others: say whose they are.
    for row in &rows_in {
        if let Some(imported) = row.get("imported").filter(|v| v.is_object()) {
            println!(
                "{}: {} on {}, signed by its importer {}",
                short(row, "hash", 12),
                s(imported, "summary"),
                imported.get("at").map(when).unwrap_or_default(),
                named(
                    raw(row, "person"),
                    row.get("author_name").and_then(Value::as_str)
                ),
            );
        }
    }
}

/// `, on DEVICE` when the row names the device a person wrote from.
fn device_suffix(row: &Value) -> String {
    match row.get("device_name").and_then(Value::as_str) {
        Some(device) => format!(", on {device}"),
        None => String::new(),
    }
}
/// Prints the link code of a new device and how to use it.
pub fn device_added(value: &Value) {
    let code = s(value, "code");
    println!(
        "device `{}` certified in {} commons",
        s(value, "name"),
        value
            .get("commons")
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    );
    println!();
    println!("    {code}");
    println!();
    let commons: Vec<String> = value
        .get("commons")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|c| format!(" --commons {}", line(c)))
        .collect();
    if let Ok(qr) = qrcode::QrCode::new(raw(value, "code").as_bytes()) {
        println!(
            "{}",
            qr.render::<qrcode::render::unicode::Dense1x2>()
                .quiet_zone(true)
                .build()
        );
    }
    println!("on the new device run (the code is that device's key: use it there only, and keep it secret):");
    println!("    hedgerow init --link {code}{}", commons.concat());
    println!("then `hedgerow sync --peer ADDR` or `hedgerow bundle import FILE` brings its certificate and your commons");
}

/// Prints a person's devices.
pub fn devices(value: &Value) {
    let rows: Vec<Vec<String>> = value
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|row| {
            let flag = |key: &str, text: &str| {
                if row.get(key).and_then(Value::as_bool).unwrap_or(false) {
                    text.to_string()
                } else {
                    String::new()
                }
            };
            let issued = match row.get("issued_at") {
                Some(at @ (Value::String(_) | Value::Number(_))) => when(at),
                _ => "(no certificate)".to_string(),
            };
            vec![
                s(row, "name"),
                short(row, "device", 12),
                issued,
                [
                    flag("this_device", "this device"),
                    flag("revoked", "REVOKED"),
                ]
                .into_iter()
                .filter(|f| !f.is_empty())
                .collect::<Vec<_>>()
                .join(", "),
            ]
        })
        .collect();
    println!(
        "{}",
        table(&["device", "key", "certified", ""], &rows, &[], "")
    );
}
/// Prints what a revocation did.
pub fn device_revoked(value: &Value) {
    println!(
        "revoked device `{}` ({}) in {} commons; its changes beyond those this node holds are refused everywhere",
        s(value, "name"),
        short(value, "device", 12),
        value
            .get("commons")
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    );
}

/// A blamed value as people read it: a bill-of-materials line or other entry (which blame
/// gives as JSON) as its parts, text as it is.
fn blamed_text(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(entry @ Value::Object(_)) => {
            let parts: Vec<String> = [
                "name",
                "quantity",
                "unit",
                "material",
                "sourcing",
                "reference",
                "kind",
                "design",
                "role",
                "place",
                "note",
            ]
            .iter()
            .filter_map(|k| entry.get(*k))
            .filter(|v| !is_empty(v))
            .map(|v| line(&scalar(v)))
            .collect();
            if parts.is_empty() {
                line(text)
            } else {
                parts.join(", ")
            }
        }
        _ => text.to_string(),
    }
}

/// Prints blame lines: change, author with their name, and the text they wrote, the author
/// column as wide as its widest entry.
pub fn blame(value: &Value) {
    let rows = value.as_array().cloned().unwrap_or_default();
    let who = |row: &Value| {
        let person = row
            .get("person")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let mut who = named(person, row.get("author_name").and_then(Value::as_str));
        who.push_str(&line(&device_suffix(row)));
        who
    };
    let width = rows
        .iter()
        .map(|r| who(r).chars().count())
        .max()
        .unwrap_or(0);
    let pad = " ".repeat(10 + 2 + width + 3);
    for row in &rows {
        let name = who(row);
        println!(
            "{}  {name}{} | {}",
            short(row, "change", 10),
            " ".repeat(width - name.chars().count()),
            hanging(&blamed_text(raw(row, "text")), &pad)
        );
    }
}

/// Prints per-step blame: each build step with every author who wrote part of it (from the
/// blame of `steps.N`, one reply per step), in the order their text appears.
pub fn step_blame(steps: &[(String, Value)]) {
    for (i, (text, spans)) in steps.iter().enumerate() {
        let mut authors: Vec<String> = Vec::new();
        for span in spans.as_array().into_iter().flatten() {
            let person = span
                .get("person")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let mut who = named(person, span.get("author_name").and_then(Value::as_str));
            who.push_str(&line(&device_suffix(span)));
            if !authors.contains(&who) {
                authors.push(who);
            }
        }
        println!("step {}  by {}", i + 1, authors.join(", "));
        println!("{}", block(text, "  "));
    }
}

/// Prints a commons.
pub fn commons(value: &Value) {
    if value.get("pending").and_then(Value::as_bool) == Some(true) {
        println!(
            "{}  (pending join: not received yet; it arrives from the next peer or bundle that has it)",
            s(value, "id")
        );
        return;
    }
    let docs = value.get("documents").cloned().unwrap_or(Value::Null);
    println!(
        "{}  {}  ({}, {}, {})",
        s(value, "id"),
        s(value, "name"),
        plural(count(&docs, "design"), "design"),
        plural(count(&docs, "event"), "event"),
        plural(count(&docs, "note"), "note")
    );
    let description = raw(value, "description");
    if !description.is_empty() {
        println!("{}", block(description, "  "));
    }
}

/// Prints a release just made.
pub fn released(value: &Value) {
    println!(
        "released version {} of {} (change {})",
        s(value, "version"),
        s(value, "id"),
        short(value, "change", 12)
    );
}

/// Prints a retraction just written.
pub fn retracted(value: &Value) {
    println!(
        "retracted {}: every node that receives the commons' charter stops listing, showing and serving it (change {})",
        s(value, "id"),
        short(value, "change", 12)
    );
}

/// Prints what `commons join` did.
pub fn joined(value: &Value) {
    let commons = s(value, "commons");
    if value.get("already_held").and_then(Value::as_bool) == Some(true) {
        println!("joined commons {commons}: your profile is published there");
        return;
    }
    let asked = match value.get("asked_peers").and_then(Value::as_u64) {
        Some(0) => " (no peer is connected now)".to_string(),
        Some(1) => " (asked the 1 connected peer)".to_string(),
        Some(n) => format!(" (asked the {n} connected peers)"),
        None => String::new(),
    };
    println!(
        "asked for commons {commons}: not here yet{asked}, so `hedgerow commons list` shows it as pending; \
         it arrives from the next peer or bundle that has it (`hedgerow bundle summary FILE` names it for a USB exchange)"
    );
}

/// Prints a lineage.
pub fn lineage(value: &Value) {
    println!("design {}", s(value, "id"));
    let ancestors = value
        .get("ancestors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ancestors.is_empty() {
        println!("ancestors: none (an original design)");
    } else {
        println!("ancestors (nearest first):");
        for a in ancestors {
            println!(
                "  {}  {}",
                s(&a, "id"),
                line(
                    a.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("(not held here)")
                )
            );
        }
    }
    let derivatives = value
        .get("derivatives")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if derivatives.is_empty() {
        println!("derivatives: none known");
    } else {
        println!("derivatives known here:");
        for d in derivatives {
            println!(
                "  {}  {}  (derives from {})",
                s(&d, "id"),
                s(&d, "name"),
                short(&d, "parent", 8)
            );
        }
    }
}

/// A verify report as printed (and as `--json` shows it): each problem one line, ending
/// with what to do about it when there is something to do.
pub fn verify_report(report: &VerifyReport) -> Result<Value, serde_json::Error> {
    let mut value = serde_json::to_value(report)?;
    value["problems"] = report
        .problems
        .iter()
        .map(|p| {
            Value::String(match crate::hint::problem(p.kind) {
                Some(hint) => format!("{}; {hint}", p.text),
                None => p.text.clone(),
            })
        })
        .collect();
    Ok(value)
}

/// Prints a verify report, as [`verify_report`] makes it.
pub fn verify(value: &Value) {
    println!(
        "checked {} commons, {}, {}; rebuilt {}",
        count(value, "commons"),
        plural(count(value, "documents"), "document"),
        plural(count(value, "changes"), "signed change"),
        plural(count(value, "rebuilt"), "cache")
    );
    let problems = value
        .get("problems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if problems.is_empty() {
        println!("store is clean");
    }
    for p in problems {
        println!("PROBLEM: {}", line(p.as_str().unwrap_or("")));
    }
    for e in value
        .get("equivocations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let built_on = e.get("built_on").and_then(Value::as_u64).unwrap_or(0);
        println!(
            "EQUIVOCATION: author {} signed two different changes numbered {} in document {}; kept {}, set aside {}{} (evidence kept)",
            s(&e, "author"),
            e.get("seq").and_then(Value::as_u64).unwrap_or(0),
            s(&e, "document"),
            &s(&e, "kept")[..12.min(s(&e, "kept").len())],
            &s(&e, "excluded")[..12.min(s(&e, "excluded").len())],
            if built_on > 0 {
                format!(" and {} built on it", plural(built_on, "change"))
            } else {
                String::new()
            }
        );
    }
}

/// Prints the running node's status.
pub fn status(value: &Value) {
    println!("peer id: {}", s(value, "peer_id"));
    println!("author:  {}", s(value, "author"));
    for addr in value
        .get("listen")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        // The whole address another node dials (`--peer`), its peer id included.
        println!(
            "listening on {}/p2p/{}",
            line(addr.as_str().unwrap_or("")),
            s(value, "peer_id")
        );
    }
    let connected = value
        .get("connected")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    println!("connected peers: {}", connected.len());
    for peer in connected {
        println!(
            "  {} at {}  last sync: {}",
            s(&peer, "peer"),
            s(&peer, "addr"),
            line(
                peer.get("last_sync")
                    .and_then(Value::as_str)
                    .unwrap_or("not yet")
            )
        );
    }
    for commons in value
        .get("commons")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        println!("commons {}  {}", s(&commons, "id"), s(&commons, "name"));
    }
    for wanted in value
        .get("wanted")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        println!(
            "commons {}  (pending join: asked of every peer that connects)",
            line(wanted.as_str().unwrap_or(""))
        );
    }
    let counters = value.get("counters").cloned().unwrap_or(Value::Null);
    println!(
        "changes received: {}  live published: {}  documents sent: {}  rejected: {}",
        counters
            .get("changes_received")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        counters
            .get("live_published")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        counters
            .get("docs_sent")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        value
            .get("rejected_total")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    );
    if let Some(rejected) = counters.get("rejected").and_then(Value::as_object) {
        for (reason, count) in rejected {
            println!("  rejected {}: {count}", line(reason));
        }
    }
    let held = value
        .get("held_changes")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if held > 0 {
        println!("held (building on refused changes): {held}");
    }
    metering(value.get("metering").unwrap_or(&Value::Null));
}

/// The `--max-rate` and `--sync-window` lines of `status`.
fn metering(value: &Value) {
    if let Some(rate) = value.get("max_rate").and_then(Value::as_str) {
        println!("max rate: {} each way (QUIC off)", line(rate));
    }
    let Some(window) = value.get("sync_window").and_then(Value::as_str) else {
        return;
    };
    let secs = |key: &str| value.get(key).and_then(Value::as_u64).unwrap_or(0);
    let hours = |s: u64| format!("{}h{:02}m", s / 3600, s % 3600 / 60);
    if value.get("window_open").and_then(Value::as_bool) == Some(true) {
        println!(
            "sync window {} (local time): open, closes in {}",
            line(window),
            hours(secs("closes_in_secs"))
        );
    } else {
        println!(
            "sync window {} (local time): closed, opens in {}",
            line(window),
            hours(secs("opens_in_secs"))
        );
    }
    for pull in value
        .get("deferred_pulls")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        println!(
            "  deferred: {} of commons {} from {}",
            plural(
                pull.get("documents").and_then(Value::as_u64).unwrap_or(0),
                "document"
            ),
            s(&pull, "commons"),
            s(&pull, "peer")
        );
    }
    let blobs = secs("deferred_blobs");
    if blobs > 0 {
        println!(
            "  deferred: {} ({} bytes)",
            plural(blobs, "attached file"),
            secs("deferred_blob_bytes")
        );
    }
}

/// Prints a stewarded commons' members.
pub fn members(value: &Value) {
    let rows: Vec<Vec<String>> = value
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|member| {
            let devices = member
                .get("devices")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            vec![
                s(member, "role"),
                named(
                    raw(member, "person"),
                    member.get("name").and_then(Value::as_str),
                ),
                plural(devices as u64, "device"),
                s(member, "person"),
            ]
        })
        .collect();
    println!(
        "{}",
        table(&["role", "person", "devices", "key"], &rows, &[], "")
    );
}

/// Prints the moderation log, one operation a line.
pub fn moderation_log(value: &Value) {
    let lines = value.as_array().cloned().unwrap_or_default();
    if lines.is_empty() {
        println!("no charter operations: this commons is open");
    }
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|entry| {
            vec![
                short(entry, "hash", 12),
                entry.get("at").map(when).unwrap_or_default(),
                s(entry, "action"),
                named(
                    raw(entry, "person"),
                    entry.get("person_name").and_then(Value::as_str),
                ),
                s(entry, "outcome"),
                s(entry, "detail"),
            ]
        })
        .collect();
    if !rows.is_empty() {
        println!(
            "{}",
            table(
                &["change", "time", "action", "by", "outcome", "detail"],
                &rows,
                &[],
                ""
            )
        );
    }
}

/// The fields of a shown document (its `conflicts` list) that `path` is, or is inside of.
fn conflict_fields<'a>(doc: &'a Value, path: &str) -> impl Iterator<Item = &'a str> + 'a {
    let path = path.to_string();
    doc.get("conflicts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("field").and_then(Value::as_str))
        .filter(move |f| *f == path || f.starts_with(&format!("{path}.")))
}

/// `  [IN CONFLICT]` after a field of a shown document that is in conflict, else nothing.
pub fn conflict_mark(doc: &Value, path: &str) -> &'static str {
    if conflict_fields(doc, path).next().is_some() {
        "  [IN CONFLICT, see above]"
    } else {
        ""
    }
}

/// The open conflicts of a shown document (`show`) or of one entry of `conflicts`: each field
/// with every author's version as written, and the command that settles it. Empty when none.
///
/// Self-contained on purpose: whatever the layout of `show` around it, this block reads alone.
pub fn conflicts(doc: &Value) -> String {
    let list = doc
        .get("conflicts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if list.is_empty() {
        return String::new();
    }
    let kind = match raw(doc, "doc_kind") {
        "" => "design",
        kind => kind,
    };
    let id = s(doc, "id");
    let mut out = String::new();
    for conflict in &list {
        let field = s(conflict, "field");
        let _ = writeln!(
            out,
            "IN CONFLICT: {field} was changed concurrently in overlapping ways; no version was chosen:"
        );
        let sides = conflict
            .get("sides")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for side in &sides {
            let who = match side.get("author_name").and_then(Value::as_str) {
                Some(name) => line(name),
                None => short(side, "author", 8),
            };
            let _ = writeln!(
                out,
                "  {who} (change {}):\n    {}",
                short(side, "change", 12),
                hanging(&prose(raw(side, "value")), "    ")
            );
        }
        let _ = writeln!(
            out,
            "  settle it: hedgerow {kind} resolve {id} {field} --take CHANGE (or --text TEXT)"
        );
    }
    out
}

/// Prints `design/event/note conflicts`: each document with its open conflicts.
pub fn conflict_list(value: &Value) {
    let docs = value.as_array().cloned().unwrap_or_default();
    if docs.is_empty() {
        println!("no open conflicts");
    }
    for doc in docs {
        println!("{}  {}", s(&doc, "id"), s(&doc, "title"));
        for text in conflicts(&doc).lines() {
            println!("  {text}");
        }
    }
}
