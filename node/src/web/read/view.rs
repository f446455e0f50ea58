//! Small pieces the pages share: times, people's names, and any field value as HTML.
//!
//! Everything goes through maud's `(...)` splices, which escape; nothing here builds HTML by
//! hand.

use maud::{html, Markup};
use serde_json::Value;
use std::collections::BTreeMap;

/// A unix time as people read it: `2026-03-14 09:30 UTC`.
pub fn time(unix: i64) -> String {
    let text = crate::times::rfc3339(unix);
    // `2026-03-14T09:30:00Z` -> `2026-03-14 09:30 UTC`
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(hm)) => format!("{date} {hm} UTC"),
        _ => text,
    }
}

/// An RFC 3339 time from a rendered field, shown like [`time`].
pub fn time_text(text: &str) -> String {
    crate::times::parse_rfc3339(text).map_or_else(|| text.to_string(), time)
}

/// The first 8 characters of a key or id, for people comparing keys by eye.
pub fn short(text: &str) -> &str {
    text.get(..8).unwrap_or(text)
}

/// A person's name from the names a node knows, else their short key.
pub fn person_name(names: &BTreeMap<String, String>, key: &str) -> String {
    names
        .get(key)
        .cloned()
        .unwrap_or_else(|| short(key).to_string())
}

/// A link to a person's profile in a commons, named as the node knows them.
pub fn person(commons: &str, key: &str, name: Option<&str>) -> Markup {
    let label = name.map_or_else(|| short(key).to_string(), str::to_string);
    html! { a href={ "/p/" (commons) "/" (key) } { (label) } }
}

/// Whether a rendered value shows nothing (empty text, list, record, or all-null record).
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
        _ => false,
    }
}

/// A field name as a label: `how_it_works` -> `how it works`.
pub fn label(field: &str) -> String {
    field.replace('_', " ")
}

/// Any rendered value: text as text, lists as lists, records as definition lists.
pub fn value(value: &Value) -> Markup {
    match value {
        Value::Null => html! {},
        Value::String(s) => html! { (s) },
        Value::Bool(b) => html! { (b) },
        Value::Number(n) => html! { (n.to_string()) },
        Value::Array(items) => {
            if items
                .iter()
                .all(|v| !matches!(v, Value::Array(_) | Value::Object(_)))
            {
                let texts: Vec<String> = items.iter().map(scalar_text).collect();
                html! { (texts.join(", ")) }
            } else {
                html! { ul { @for item in items { li { (self::value(item)) } } } }
            }
        }
        Value::Object(map) => html! {
            dl.fields {
                @for (key, item) in map.iter().filter(|(_, v)| !is_empty(v)) {
                    dt { (label(key)) }
                    dd { (self::value(item)) }
                }
            }
        },
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A string field of a rendered document, empty when absent.
pub fn text<'a>(fields: &'a serde_json::Map<String, Value>, name: &str) -> &'a str {
    fields.get(name).and_then(Value::as_str).unwrap_or("")
}
