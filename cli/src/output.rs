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

/// Formats unix seconds as `YYYY-MM-DD HH:MM UTC`.
pub fn time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date crate for one format.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// Prints a rendered document: scalars as `field: value`, lists as bullets, steps numbered.
pub fn document(value: &Value) {
    let Some(map) = value.as_object() else {
        json(value);
        return;
    };
    let first = ["id", "doc_kind", "release", "name", "title"];
    for key in first {
        if let Some(v) = map.get(key) {
            if !is_empty(v) {
                println!("{key}: {}", line(&scalar(v)));
            }
        }
    }
    let skip = ["heads", "changes", "creator"];
    for (key, v) in map {
        if first.contains(&key.as_str()) || skip.contains(&key.as_str()) || is_empty(v) {
            continue;
        }
        let key = line(key);
        match v {
            Value::Array(items) => {
                println!("{key}:");
                for (i, item) in items.iter().enumerate() {
                    let text = prose(&scalar(item));
                    if key == "steps" || key == "bom" || key == "parts" {
                        println!("  {}. {}", i + 1, indent(&text));
                    } else {
                        println!("  - {}", indent(&text));
                    }
                }
            }
            Value::Object(inner) => {
                println!("{key}:");
                for (k, iv) in inner {
                    if !is_empty(iv) {
                        println!("  {}: {}", line(k), indent(&prose(&scalar(iv))));
                    }
                }
            }
            _ => {
                let text = prose(&scalar(v));
                if text.contains('\n') {
                    println!("{key}:\n  {}", indent(&text));
                } else {
                    println!("{key}: {text}");
                }
            }
        }
    }
    println!(
        "signed changes: {}  creator: {}",
        line(&map.get("changes").map(scalar).unwrap_or_default()),
        line(&map.get("creator").map(scalar).unwrap_or_default())
    );
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

fn indent(text: &str) -> String {
    text.replace('\n', "\n    ")
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

/// Prints a list of documents (replies under the note they answer, indented).
pub fn doc_list(value: &Value) {
    let items = value.as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("(none)");
    }
    for (depth, item) in threaded(items) {
        let indent = "    ".repeat(depth);
        println!(
            "{indent}{}{}  {}  ({} changes, {})",
            if depth > 0 { "↳ " } else { "" },
            s(&item, "id"),
            s(&item, "title"),
            item.get("changes").and_then(Value::as_u64).unwrap_or(0),
            time(item.get("updated_at").and_then(Value::as_i64).unwrap_or(0))
        );
        if let Some(found) = matched(&item) {
            println!("{indent}    found in {found}");
        }
    }
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

/// Prints a history table.
pub fn history(value: &Value) {
    for row in value.as_array().cloned().unwrap_or_default() {
        let name = row
            .get("author_name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let fields = row
            .get("fields")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        println!(
            "{}  {}  {} ({}{})  {}  [{}]",
            short(&row, "hash", 12),
            time(row.get("time").and_then(Value::as_i64).unwrap_or(0)),
            line(name),
            short(&row, "person", 8),
            device_suffix(&row),
            s(&row, "signature"),
            line(&fields)
        );
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
    for row in value.as_array().cloned().unwrap_or_default() {
        let flag = |key: &str, text: &'static str| {
            if row.get(key).and_then(Value::as_bool).unwrap_or(false) {
                text
            } else {
                ""
            }
        };
        println!(
            "{:<20} {}  {}{}{}",
            s(&row, "name"),
            short(&row, "device", 12),
            match row.get("issued_at").and_then(Value::as_i64).unwrap_or(0) {
                0 => "(no certificate)".to_string(),
                at => time(at),
            },
            flag("this_device", "  (this device)"),
            flag("revoked", "  REVOKED"),
        );
    }
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

/// Prints blame lines.
pub fn blame(value: &Value) {
    for row in value.as_array().cloned().unwrap_or_default() {
        let name = row
            .get("author_name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let author: String = row
            .get("person")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .chars()
            .take(6)
            .collect();
        println!(
            "{} {:<14} | {}",
            short(&row, "change", 10),
            line(&format!("{name} ({author}{})", device_suffix(&row))),
            indent(&prose(raw(&row, "text")))
        );
    }
}

/// Prints a commons.
pub fn commons(value: &Value) {
    let docs = value.get("documents").cloned().unwrap_or(Value::Null);
    println!(
        "{}  {}  ({} designs, {} events, {} notes)",
        s(value, "id"),
        s(value, "name"),
        docs.get("design").and_then(Value::as_u64).unwrap_or(0),
        docs.get("event").and_then(Value::as_u64).unwrap_or(0),
        docs.get("note").and_then(Value::as_u64).unwrap_or(0)
    );
    let description = raw(value, "description");
    if !description.is_empty() {
        println!("  {}", indent(&prose(description)));
    }
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
                "  {}  {}  (forked from {})",
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
        "checked {} commons, {} documents, {} signed changes; rebuilt {} caches",
        value.get("commons").and_then(Value::as_u64).unwrap_or(0),
        value.get("documents").and_then(Value::as_u64).unwrap_or(0),
        value.get("changes").and_then(Value::as_u64).unwrap_or(0),
        value.get("rebuilt").and_then(Value::as_u64).unwrap_or(0)
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
                format!(" and {built_on} changes built on it")
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
        println!("listening on {}", line(addr.as_str().unwrap_or("")));
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
}

/// Prints a stewarded commons' members.
pub fn members(value: &Value) {
    for member in value.as_array().cloned().unwrap_or_default() {
        let devices = member
            .get("devices")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        println!(
            "{:<8} {}  {}  ({} device{})",
            s(&member, "role"),
            s(&member, "person"),
            s(&member, "name"),
            devices,
            if devices == 1 { "" } else { "s" }
        );
    }
}

/// Prints the moderation log, one operation a line.
pub fn moderation_log(value: &Value) {
    let lines = value.as_array().cloned().unwrap_or_default();
    if lines.is_empty() {
        println!("no charter operations: this commons is open");
    }
    for entry in lines {
        println!(
            "{}  {:<13} by {}  {}  [{}]",
            &s(&entry, "hash").chars().take(12).collect::<String>(),
            s(&entry, "action"),
            &s(&entry, "person").chars().take(12).collect::<String>(),
            s(&entry, "detail"),
            s(&entry, "outcome"),
        );
    }
}
