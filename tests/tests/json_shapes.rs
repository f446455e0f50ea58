//! Every `--json` output of the real binary checked key by key against the README's
//! "JSON shapes" table, which the test parses out of README.md itself: every documented
//! key present with its JSON type, no undocumented key, every documented command produced,
//! and lists in the order the table promises.
//!
//! ```text
//!   A offline: every command  ──then──  A serve <── B serve (--peer A): the same through serve
//!   B, D offline: join, bundle summary / export --for / import (joined, skipped, --all-commons)
//!   D offline: sync --peer A, repair
//! ```

use hedgerow_tests::net::{wait_for, ServeNode};
use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The README, as the build saw it.
const README: &str = include_str!("../../README.md");

/// The JSON type of every bare key the table names (`string`, `integer`, `bool`, `array`,
/// `time` (an RFC 3339 string in UTC, `2026-11-30T07:00:00Z`), alternatives joined by `|`); `COMMAND: key` overrides `key` for one command. A key the
/// table gains must get a type here, so the README cannot name a key the test does not check.
const LEAF_TYPES: &[(&str, &str)] = &[
    ("addr", "string"),
    ("author", "string"),
    ("author_name", "string|null"),
    ("creator_name", "string|null"),
    ("person_name", "string|null"),
    ("start", "string|null"),
    ("end", "string|null"),
    ("target", "string|null"),
    ("event list: kind", "string|null"),
    ("note list: kind", "string|null"),
    ("event list: location", "string|null"),
    ("bio", "string"),
    ("built_on", "integer"),
    ("changes", "integer"),
    ("commons", "integer"),
    ("commons join: commons", "string"),
    ("commons accept: commons", "string"),
    ("code", "string"),
    ("role", "string"),
    ("uses", "integer"),
    ("expires_at", "time"),
    ("person", "string"),
    ("devices", "array"),
    ("action", "string"),
    ("at", "time"),
    ("outcome", "string"),
    ("detail", "string"),
    ("complete", "bool"),
    ("created_at", "time"),
    ("creator", "string"),
    ("description", "string"),
    ("design", "integer"),
    ("doc_kind", "string"),
    ("document", "string"),
    ("documents", "integer"),
    ("error", "string"),
    ("errors", "array"),
    ("event", "integer"),
    ("excluded", "string"),
    ("fields", "array"),
    ("hash", "string"),
    ("heads", "array"),
    ("id", "string"),
    ("kept", "string"),
    ("kind", "string"),
    ("last_sync", "string|null"),
    ("last_sync_at", "time|null"),
    ("location", "string"),
    ("made_in", "string"),
    ("n", "integer"),
    ("name", "string"),
    ("note", "integer"),
    ("parent", "string"),
    ("path", "string"),
    ("peer", "string"),
    ("peer_id", "string"),
    ("person", "string"),
    ("device_name", "string|null"),
    ("profile", "integer"),
    ("seq", "integer"),
    ("short", "string"),
    ("sync_budget", "integer|null"),
    ("text", "string"),
    ("title", "string"),
    ("version", "string"),
    ("already_held", "bool"),
    ("pending", "bool"),
    ("asked_peers", "integer|null"),
    // A pending join (`commons join` before the commons arrived) has no genesis yet.
    ("commons list: creator", "string|null"),
    ("commons list: created_at", "time|null"),
    ("commons show: creator", "string|null"),
    ("commons show: created_at", "time|null"),
    ("interrupted", "bool"),
    ("postponed", "bool"),
    ("syncing", "bool"),
    ("salvaged_store", "bool"),
    ("moved_to", "string|null"),
    ("change", "string"),
    ("design edit: change", "string|null"),
    ("event edit: change", "string|null"),
    ("note edit: change", "string|null"),
    ("design blame: author", "string|null"),
    ("design blame: person", "string|null"),
    ("event blame: author", "string|null"),
    ("event blame: person", "string|null"),
    ("note blame: author", "string|null"),
    ("note blame: person", "string|null"),
    ("code", "string"),
    ("device", "string"),
    ("issued_at", "time|null"),
    ("revoked", "bool"),
    ("this_device", "bool"),
    // Counts and times.
    ("addresses_banned", "integer"),
    ("banned_addresses", "integer"),
    ("banned_peers", "integer"),
    ("bytes", "integer"),
    ("bytes_received", "integer"),
    ("bytes_sent", "integer"),
    ("changes_received", "integer"),
    ("docs_received", "integer"),
    ("docs_sent", "integer"),
    ("excluded_changes", "integer"),
    ("held_changes", "integer"),
    ("excluded_received", "integer"),
    ("gossip_published", "integer"),
    ("gossip_received", "integer"),
    ("in_sync", "integer"),
    ("interruptions", "integer"),
    ("journal_ignored_bytes", "integer"),
    ("journal_records", "integer"),
    ("known", "integer"),
    ("live_pending", "integer"),
    ("live_published", "integer"),
    ("live_received", "integer"),
    ("new", "integer"),
    ("peak_queued_wants", "integer"),
    ("peers_banned", "integer"),
    // `peers`: known peers and the DHT's announcements, lookups and records.
    ("peers: peer", "string|null"),
    ("addrs", "array"),
    ("found", "array"),
    ("connected", "bool"),
    ("peers: commons", "string"),
    ("key", "string"),
    ("reached", "integer|null"),
    ("holders", "integer"),
    ("running", "bool"),
    ("attempts", "integer"),
    ("providers", "integer"),
    ("pull_round_trips", "integer"),
    ("pulls_interrupted", "integer"),
    ("queued_wants", "integer"),
    ("rebuilt", "integer"),
    ("records", "integer"),
    ("rejected_total", "integer"),
    ("relayed_refusals", "integer"),
    ("requests_answered", "integer"),
    ("round_trips", "integer"),
    ("sketches_sent", "integer"),
    ("summaries_sent", "integer"),
    ("store_bytes", "integer"),
    ("store_failures", "integer"),
    ("sync_received", "integer"),
    ("sync_sent", "integer"),
    ("time", "time"),
    ("tracked_peer_entries", "integer"),
    ("transport_in", "integer"),
    ("transport_out", "integer"),
    ("up_to_date", "integer"),
    ("updated_at", "time"),
    // Conflicts (`show`, `conflicts`): a side's author is null when its record is not held.
    ("field", "string"),
    ("value", "string"),
    ("design show: author", "string|null"),
    ("event show: author", "string|null"),
    ("note show: author", "string|null"),
    ("design conflicts: author", "string|null"),
    ("event conflicts: author", "string|null"),
    ("note conflicts: author", "string|null"),
    // Blob transfers in `status` (`blob_transfer`; `blobs` is with the attachments below).
    ("bytes_wanted", "integer"),
    ("groups_requested", "integer"),
    ("bad_responses", "integer"),
    ("fetched", "integer"),
    ("frame_bytes_received", "integer"),
    ("frame_bytes_sent", "integer"),
    ("busy_sent", "integer"),
    ("busy_received", "integer"),
    ("open_responses", "integer"),
    // `fetch`, `pin`, `unpin`, `pins`.
    ("fetch: files", "integer"),
    ("held_before", "integer"),
    ("pin: files", "integer"),
    ("unpin: files", "integer"),
    ("pins: files", "integer"),
    ("pinned", "bool"),
    ("missing_bytes", "integer"),
    // This node's own lists.
    ("at", "time"),
    ("reason", "string"),
    ("block: note", "string"),
    ("blocks: note", "string"),
    // Attachments (files and blobs).
    ("checked", "integer"),
    ("missing", "integer"),
    ("held", "integer"),
    ("wanted", "integer"),
    ("wanted_bytes", "integer"),
    ("in_flight", "integer"),
    ("in_flight_bytes", "integer"),
    ("partial", "integer"),
    ("media_type", "string"),
    ("size", "integer"),
    ("caption", "string"),
    ("step", "integer|null"),
    ("attached_by", "string"),
    ("attached_at", "time"),
    ("stored", "bool"),
    ("partials_removed", "integer"),
    ("bytes_freed", "integer"),
    ("design files: held", "bool"),
    ("note files: held", "bool"),
    ("design attach: change", "string|null"),
    ("note attach: change", "string|null"),
    ("gc: kept", "integer"),
    // Reach in `status` (relay, AutoNAT, hole punching).
    ("via", "string|null"),
    ("public_address", "string|null"),
    ("relay_server", "bool"),
    ("relay", "string"),
    ("active", "bool"),
    ("succeeded", "integer"),
    ("status: failed", "integer"),
    ("last_failure", "string|null"),
    // Metering in `status` (`--max-rate`, `--sync-window`).
    ("pulls_deferred", "integer"),
    ("max_rate", "string|null"),
    ("sync_window", "string|null"),
    ("window_open", "bool"),
    ("opens_in_secs", "integer|null"),
    ("closes_in_secs", "integer|null"),
    ("deferred_blobs", "integer"),
    ("deferred_blob_bytes", "integer"),
];

/// Lists of the table this test cannot fill without damaging or forging a store (other
/// tests do that); their elements are typed but not seen here.
const NOT_PRODUCED: &[&str] = &[
    "verify: equivocations[]",
    "repair: from_peers[]",
    "bundle import: rejected[]",
    "status: wanted[]",
    "status: blob_transfer.over_quota[]",
    // Reservations need a hub's relay, which `tests/tests/reach_nat.rs` runs in namespaces.
    "status: reach.reservations[]",
    // Deferred pulls need a sync window that excludes now: `tests/tests/reach_rate.rs`.
    "status: metering.deferred_pulls[]",
    "fetch: failed[]",
];

/// What the table says one output looks like.
#[derive(Debug, Clone)]
enum Shape {
    /// An object with exactly these keys (and others when `open`, written `...`).
    Object {
        keys: Vec<(String, Shape)>,
        open: bool,
    },
    /// An object with free keys (written `{KEY: shape}`), each value of `shape`.
    Map(Box<Shape>),
    /// A list of `shape`.
    List(Box<Shape>),
    /// A bare key or word: its type is in [`LEAF_TYPES`].
    Leaf(String),
    /// One of these strings (`signed|covered|INVALID`).
    OneOf(Vec<String>),
    /// Anything (`..`, or a document field whose type the README leaves open).
    Any,
    /// `null` or an object with free keys (`location.*`).
    MaybeMap,
}

/// The order a list promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    None,
    NewestFirst,
    OldestFirst,
}

/// One row of the table.
#[derive(Debug)]
struct Row {
    commands: Vec<String>,
    shape: Shape,
    order: Order,
    /// Keys present only with `--version` (`design show`).
    version_keys: Vec<String>,
}

fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if "{}[],:".contains(c) || c.is_whitespace() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// A recursive-descent reader of the table's notation.
struct Parser {
    tokens: Vec<String>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Result<String, String> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or("shape ends early")?;
        self.at += 1;
        Ok(token)
    }

    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        let got = self.next()?;
        (got == token)
            .then_some(())
            .ok_or(format!("expected `{token}`, found `{got}`"))
    }

    fn value(&mut self) -> Result<Shape, String> {
        let token = self.next()?;
        match token.as_str() {
            "{" => self.object(),
            "[" => {
                let element = self.value()?;
                self.expect("]")?;
                Ok(Shape::List(Box::new(element)))
            }
            ".." => Ok(Shape::Any),
            word if word.contains('|') => {
                Ok(Shape::OneOf(word.split('|').map(str::to_string).collect()))
            }
            word if word.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                Ok(Shape::Leaf(word.to_string()))
            }
            other => Err(format!("unexpected `{other}`")),
        }
    }

    fn object(&mut self) -> Result<Shape, String> {
        let mut keys = Vec::new();
        let mut open = false;
        if self.peek() == Some("}") {
            self.at += 1;
            return Ok(Shape::Object { keys, open });
        }
        loop {
            let key = self.next()?;
            if key == "..." {
                open = true;
            } else {
                let value = if self.peek() == Some(":") {
                    self.at += 1;
                    self.value()?
                } else {
                    Shape::Leaf(key.clone())
                };
                if key.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                    if !keys.is_empty() || self.peek() != Some("}") {
                        return Err(format!("`{key}` (any key) must be an object's only key"));
                    }
                    self.at += 1;
                    return Ok(Shape::Map(Box::new(value)));
                }
                keys.push((key, value));
            }
            match self.next()?.as_str() {
                "," => continue,
                "}" => return Ok(Shape::Object { keys, open }),
                other => return Err(format!("expected `,` or `}}`, found `{other}`")),
            }
        }
    }
}

/// Parses one shape written in the table's notation.
fn parse_shape(text: &str) -> Result<Shape, String> {
    let mut parser = Parser {
        tokens: tokens(&text.replace("\\|", "|")),
        at: 0,
    };
    let shape = parser.value()?;
    match parser.peek() {
        None => Ok(shape),
        Some(rest) => Err(format!("trailing `{rest}`")),
    }
}

/// The backticked parts of `text`, in order.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The text of the README between `from` and `to`.
fn between(from: &str, to: &str) -> &'static str {
    let start = README
        .find(from)
        .unwrap_or_else(|| panic!("README has no `{from}`"))
        + from.len();
    let end = start
        + README[start..]
            .find(to)
            .unwrap_or_else(|| panic!("README has no `{to}` after `{from}`"));
    &README[start..end]
}

/// The fields the README lists for a kind ("Design fields: `name, ..., licence.{a,b}`").
fn kind_fields(from: &str, to: &str) -> Vec<(String, Shape)> {
    let list = backticked(between(from, to)).join(",");
    let mut fields = Vec::new();
    let mut depth = 0;
    let mut item = String::new();
    for c in list.chars().chain([',']) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            let text: String = item.split_whitespace().collect();
            item.clear();
            if text.is_empty() {
                continue;
            }
            let (name, shape) = match text.split_once('.') {
                None => (text.clone(), Shape::Any),
                Some((name, "*")) => (name.to_string(), Shape::MaybeMap),
                Some((name, sub)) => {
                    let keys = sub
                        .trim_start_matches('{')
                        .trim_end_matches('}')
                        .split(',')
                        .map(|k| (k.to_string(), Shape::Any))
                        .collect();
                    (name.to_string(), Shape::Object { keys, open: false })
                }
            };
            fields.push((name, shape));
        } else {
            item.push(c);
        }
    }
    fields
}

/// The "JSON shapes" table of the README.
fn table() -> Vec<Row> {
    let section = between("### JSON shapes", "\n#");
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let (command_cell, shape_cell) = line[2..]
            .split_once(" | ")
            .unwrap_or_else(|| panic!("README row without two cells: {line}"));
        let mut commands = Vec::new();
        for command in backticked(command_cell) {
            let (kinds, verb) = command.split_once(' ').unwrap_or((command, ""));
            for kind in kinds.split('/') {
                commands.push(format!("{kind} {verb}").trim().to_string());
            }
        }
        let order = if shape_cell.contains("newest first") {
            Order::NewestFirst
        } else if shape_cell.contains("oldest first") {
            Order::OldestFirst
        } else {
            Order::None
        };
        let mut version_keys = Vec::new();
        let shape = if shape_cell.starts_with("every field of the kind") {
            // The prose row of `show`: a kind's fields (listed under "Using it") plus these.
            // "plus `id, ...` (and `release` with `--version`)": the keys, then the versioned one.
            let plus = backticked(shape_cell.split_once(" plus ").expect("`plus` keys").1);
            version_keys.push(plus[1].to_string());
            // The keys are written as an object's inside: `id, ..., conflicts: [{...}]`.
            match parse_shape(&format!("{{{}}}", plus[0])) {
                Ok(Shape::Object { keys, .. }) => Shape::Object { keys, open: true },
                other => panic!("README show row's keys: {other:?}"),
            }
        } else {
            let text = backticked(shape_cell)[0];
            parse_shape(text).unwrap_or_else(|e| panic!("README shape of {commands:?}: {e}"))
        };
        rows.push(Row {
            commands,
            shape,
            order,
            version_keys,
        });
    }
    assert!(rows.len() >= 10, "README's JSON table not found: {rows:?}");
    rows
}

/// The closed shape of `KIND show`: the kind's README fields plus the row's extra keys.
fn show_shape(kind: &str, extras: &Shape, version_keys: &[String], with_version: bool) -> Shape {
    let mut keys = match kind {
        "design" => kind_fields("Design fields:", "A fork starts"),
        "event" => kind_fields("Events:", "Notes:"),
        "note" => kind_fields("Notes:", "\n\n"),
        other => panic!("no README field list for `{other}`"),
    };
    let Shape::Object { keys: extra, .. } = extras else {
        panic!("show row parsed as {extras:?}")
    };
    keys.extend(extra.iter().cloned());
    if with_version {
        keys.extend(version_keys.iter().map(|k| (k.clone(), Shape::Any)));
    }
    Shape::Object { keys, open: false }
}

/// The type [`LEAF_TYPES`] gives `key` in `command`.
fn leaf_type(command: &str, key: &str) -> &'static str {
    let scoped = format!("{command}: {key}");
    LEAF_TYPES
        .iter()
        .find(|(k, _)| *k == scoped)
        .or_else(|| LEAF_TYPES.iter().find(|(k, _)| *k == key))
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("README names `{key}` ({command}); give it a type in LEAF_TYPES"))
}

/// Whether `text` is a time as every reply writes it: `YYYY-MM-DDTHH:MM:SSZ`.
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn has_type(value: &Value, ty: &str) -> bool {
    ty.split('|').any(|t| match t {
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "bool" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        "time" => value.as_str().is_some_and(is_rfc3339),
        other => panic!("unknown type `{other}` in LEAF_TYPES"),
    })
}

/// Checks `value` against `shape`; problems go to `errors`, list element paths seen to `seen`.
struct Checker<'a> {
    command: &'a str,
    errors: Vec<String>,
    seen: &'a mut BTreeSet<String>,
}

impl Checker<'_> {
    fn check(&mut self, shape: &Shape, value: &Value, path: &str) {
        match shape {
            Shape::Any => {}
            Shape::Leaf(key) => {
                let ty = leaf_type(self.command, key);
                if !has_type(value, ty) {
                    self.errors
                        .push(format!("{path}: {value} is not {ty} (README `{key}`)"));
                }
            }
            Shape::OneOf(words) => {
                if !words.iter().any(|w| value.as_str() == Some(w)) {
                    self.errors
                        .push(format!("{path}: {value} is not one of {words:?}"));
                }
            }
            Shape::MaybeMap => {
                if !(value.is_null() || value.is_object()) {
                    self.errors
                        .push(format!("{path}: {value} is neither null nor an object"));
                }
            }
            Shape::List(element) => match value.as_array() {
                Some(items) => {
                    if !items.is_empty() {
                        // A list inside a list element: its path as documented, without indices.
                        let generic = without_indices(path);
                        self.seen.insert(format!("{}: {generic}[]", self.command));
                    }
                    for (i, item) in items.iter().enumerate() {
                        self.check(element, item, &format!("{path}[{i}]"));
                    }
                }
                None => self.errors.push(format!("{path}: {value} is not a list")),
            },
            Shape::Map(element) => match value.as_object() {
                Some(map) => {
                    for (k, v) in map {
                        self.check(element, v, &format!("{path}.{k}"));
                    }
                }
                None => self
                    .errors
                    .push(format!("{path}: {value} is not an object")),
            },
            Shape::Object { keys, open } => {
                let Some(map) = value.as_object() else {
                    self.errors
                        .push(format!("{path}: {value} is not an object"));
                    return;
                };
                for (key, shape) in keys {
                    let sub = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    match map.get(key) {
                        Some(v) => self.check(shape, v, &sub),
                        None => self.errors.push(format!("{sub}: documented, missing")),
                    }
                }
                if !open {
                    let documented: BTreeSet<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
                    for key in map.keys().filter(|k| !documented.contains(k.as_str())) {
                        self.errors.push(format!(
                            "{path}{}{key}: not in the README's table",
                            if path.is_empty() { "" } else { "." }
                        ));
                    }
                }
            }
        }
    }
}

/// `a[0].b[12]` as `a[].b[]`.
fn without_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push(c);
            }
            ']' => {
                in_index = false;
                out.push(c);
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// Every element path of a list in `shape` (for the "each list was seen filled" check).
fn list_paths(shape: &Shape, command: &str, path: &str, out: &mut BTreeSet<String>) {
    match shape {
        Shape::List(element) => {
            if !matches!(**element, Shape::Any) {
                out.insert(format!("{command}: {path}[]"));
            }
            list_paths(element, command, &format!("{path}[]"), out);
        }
        Shape::Object { keys, .. } => {
            for (key, shape) in keys {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                list_paths(shape, command, &sub, out);
            }
        }
        Shape::Map(element) => list_paths(element, command, &format!("{path}.*"), out),
        _ => {}
    }
}

/// The outputs a test produced: (command as the table names it, how it was run, output).
#[derive(Default)]
struct Outputs(Vec<(String, String, Value)>);

impl Outputs {
    /// Runs `hedgerow ARGS --json` in `home`, filing it under `command`.
    fn run(&mut self, home: &TestHome, command: &str, how: &str, args: &[&str]) -> Value {
        let value = home.json(args);
        self.0.push((
            command.to_string(),
            format!("{how}: {args:?}"),
            value.clone(),
        ));
        value
    }
}

/// Checks every output against the README's table; panics with every disagreement.
fn check_against_readme(outputs: &Outputs) {
    let rows = table();
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    let mut produced = BTreeSet::new();
    for (command, how, value) in &outputs.0 {
        produced.insert(command.as_str());
        let Some(row) = rows
            .iter()
            .find(|r| r.commands.iter().any(|c| c == command))
        else {
            errors.push(format!(
                "`{command}` ({how}) has no row in the README's table"
            ));
            continue;
        };
        let shape = match command.split_once(' ') {
            Some((kind @ ("design" | "event" | "note"), "show")) => show_shape(
                kind,
                &row.shape,
                &row.version_keys,
                how.contains("--version"),
            ),
            _ => row.shape.clone(),
        };
        let mut checker = Checker {
            command,
            errors: Vec::new(),
            seen: &mut seen,
        };
        checker.check(&shape, value, "");
        errors.extend(checker.errors.into_iter().map(|e| format!("{how}: {e}")));
        if row.order != Order::None {
            let key = if row.order == Order::NewestFirst {
                "updated_at"
            } else {
                "time"
            };
            // RFC 3339 in UTC to the second sorts as text in time order.
            let times: Vec<&str> = value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item[key].as_str())
                .collect();
            let ordered = times.windows(2).all(|w| match row.order {
                Order::NewestFirst => w[0] >= w[1],
                _ => w[0] <= w[1],
            });
            if !ordered {
                errors.push(format!("{how}: not {:?} by {key}: {times:?}", row.order));
            }
        }
    }
    let mut documented = BTreeSet::new();
    for row in &rows {
        for command in &row.commands {
            if !produced.contains(command.as_str()) {
                errors.push(format!(
                    "README documents `{command}` but this test never ran it"
                ));
            }
            let shape = match command.split_once(' ') {
                Some((kind @ ("design" | "event" | "note"), "show")) => {
                    show_shape(kind, &row.shape, &row.version_keys, false)
                }
                _ => row.shape.clone(),
            };
            list_paths(&shape, command, "", &mut documented);
        }
    }
    for path in &documented {
        if !seen.contains(path) && !NOT_PRODUCED.contains(&path.as_str()) {
            errors.push(format!(
                "`{path}`: no output filled this list, so its elements went unchecked"
            ));
        }
    }
    assert!(
        errors.is_empty(),
        "--json outputs disagree with the README's table:\n{}",
        errors.join("\n")
    );
}

/// A home's file path as a string.
fn file(home: &TestHome, name: &str) -> String {
    home.path().join(name).to_string_lossy().into_owned()
}

/// Every command of the table, offline and through `serve`, checked against the README.
#[test]
fn every_json_output_has_the_shape_the_readme_documents() {
    let mut out = Outputs::default();
    let a = TestHome::init("Ada");
    out.run(&a, "whoami", "offline", &["whoami"]);
    // A stewarded commons in homes of its own, so Ada's commands need no --commons.
    let s = TestHome::init("Stella");
    out.run(
        &s,
        "commons create",
        "offline, stewarded",
        &["commons", "create", "Stewards", "--stewarded"],
    );
    let invite = out.run(
        &s,
        "commons invite",
        "offline",
        &["commons", "invite", "--role", "guest"],
    );
    let g = TestHome::init("Gil");
    out.run(
        &g,
        "commons accept",
        "offline",
        &["commons", "accept", invite["code"].as_str().unwrap_or("")],
    );
    out.run(&s, "commons members", "offline", &["commons", "members"]);
    out.run(&s, "moderate log", "offline", &["moderate", "log"]);
    let commons = id(&out.run(
        &a,
        "commons create",
        "offline",
        &["commons", "create", "Farm Hack tools"],
    ));
    let design = id(&out.run(
        &a,
        "design new",
        "offline",
        &[
            "design",
            "new",
            "Roller crimper",
            "--set",
            "summary=Crimps a cover crop flat",
            "--tag",
            "no-till",
            "--bom-line",
            "steel tube 406 mm;1;pcs;scrap yard",
            "--step",
            "Cut the tube to 1.6 m",
        ],
    ));
    let edited = out.run(
        &a,
        "design edit",
        "offline",
        &["design", "edit", &design, "--set", "stage=prototype"],
    );
    assert!(edited["change"].is_string(), "{edited}");
    let unchanged = out.run(
        &a,
        "design edit",
        "offline, no change",
        &["design", "edit", &design, "--set", "stage=prototype"],
    );
    assert!(
        unchanged["change"].is_null(),
        "nothing changed: {unchanged}"
    );
    out.run(
        &a,
        "design release",
        "offline",
        &["design", "release", &design, "--version", "1.0"],
    );
    out.run(
        &a,
        "design show",
        "offline --version",
        &["design", "show", &design, "--version", "1.0"],
    );
    let fork = id(&out.run(
        &a,
        "design fork",
        "offline",
        &[
            "design",
            "fork",
            &design,
            "--name",
            "Crimper for walking tractors",
        ],
    ));
    let lineage = out.run(
        &a,
        "design lineage",
        "offline, fork",
        &["design", "lineage", &fork],
    );
    assert_eq!(lineage["ancestors"][0]["id"], design.as_str(), "{lineage}");
    let lineage = out.run(
        &a,
        "design lineage",
        "offline, parent",
        &["design", "lineage", &design],
    );
    assert_eq!(lineage["derivatives"][0]["id"], fork.as_str(), "{lineage}");
    out.run(
        &a,
        "design history",
        "offline",
        &["design", "history", &design],
    );
    out.run(
        &a,
        "design blame",
        "offline",
        &["design", "blame", &design, "summary"],
    );
    let event = id(&out.run(
        &a,
        "event new",
        "offline",
        &[
            "event",
            "new",
            "Build day",
            "--set",
            "start=2026-03-14",
            "--set",
            "location.name=Ferme des Chênes",
        ],
    ));
    out.run(
        &a,
        "event edit",
        "offline",
        &["event", "edit", &event, "--set", "summary=Two drums"],
    );
    let note = id(&out.run(
        &a,
        "note add",
        "offline",
        &[
            "note",
            "add",
            "--on",
            &event,
            "--kind",
            "build-log",
            "--text",
            "Built two drums",
        ],
    ));
    out.run(
        &a,
        "note edit",
        "offline",
        &["note", "edit", &note, "--text", "Built three drums"],
    );
    for (kind, doc) in [("design", &design), ("event", &event), ("note", &note)] {
        out.run(&a, &format!("{kind} show"), "offline", &[kind, "show", doc]);
        out.run(&a, &format!("{kind} list"), "offline", &[kind, "list"]);
    }
    out.run(
        &a,
        "note list",
        "offline --on",
        &["note", "list", "--on", &event],
    );
    // History and blame answer alike for every kind.
    out.run(
        &a,
        "event history",
        "offline",
        &["event", "history", &event],
    );
    out.run(&a, "note history", "offline", &["note", "history", &note]);
    out.run(
        &a,
        "event blame",
        "offline",
        &["event", "blame", &event, "title"],
    );
    out.run(&a, "note blame", "offline", &["note", "blame", &note]);
    out.run(
        &a,
        "profile edit",
        "offline",
        &["profile", "edit", "--set", "location=Wales"],
    );
    out.run(&a, "commons list", "offline", &["commons", "list"]);
    out.run(
        &a,
        "commons show",
        "offline",
        &["commons", "show", &commons],
    );
    // Files: attached to the design (a step) and the note, listed, detached, collected.
    let plan = file(&a, "plan.pdf");
    std::fs::write(&plan, b"%PDF-1.4 plan").expect("plan");
    let sketch = file(&a, "sketch.png");
    std::fs::write(&sketch, b"png sketch").expect("sketch");
    out.run(
        &a,
        "design attach",
        "offline",
        &[
            "design", "attach", &design, &plan, "--role", "plan", "--step", "1",
        ],
    );
    out.run(
        &a,
        "note attach",
        "offline",
        &["note", "attach", &note, &sketch],
    );
    out.run(&a, "design files", "offline", &["design", "files", &design]);
    out.run(&a, "note files", "offline", &["note", "files", &note]);
    out.run(
        &a,
        "note detach",
        "offline",
        &["note", "detach", &note, "sketch.png"],
    );
    out.run(
        &a,
        "design attach",
        "offline, a file already stored",
        &[
            "design", "attach", &design, &plan, "--role", "plan", "--step", "1",
        ],
    );
    out.run(&a, "gc", "offline", &["gc"]);
    out.run(
        &a,
        "design attach",
        "offline",
        &["design", "attach", &design, &sketch],
    );
    out.run(
        &a,
        "design detach",
        "offline",
        &["design", "detach", &design, "sketch.png"],
    );
    out.run(&a, "gc", "offline, a file to free", &["gc"]);
    out.run(&a, "pin", "offline", &["pin", &design]);
    out.run(&a, "pins", "offline", &["pins"]);
    out.run(&a, "unpin", "offline", &["unpin", &design]);
    out.run(&a, "fetch", "offline, every file held", &["fetch", &design]);
    out.run(&a, "verify", "offline", &["verify"]);
    let full = file(&a, "full.bundle");
    out.run(&a, "bundle export", "offline", &["bundle", "export", &full]);

    // B joins before the commons arrives, then imports what its summary says it lacks.
    let b = TestHome::init("Ben");
    let joined = out.run(
        &b,
        "commons join",
        "offline, not held",
        &["commons", "join", &commons],
    );
    assert_eq!(joined["already_held"], false, "{joined}");
    assert_eq!(joined["pending"], true, "{joined}");
    let listed = out.run(&b, "commons list", "offline, pending", &["commons", "list"]);
    assert_eq!(listed[0]["pending"], true, "{listed}");
    assert!(listed[0]["creator"].is_null(), "{listed}");
    let summary = file(&b, "ben.summary");
    out.run(
        &b,
        "bundle summary",
        "offline",
        &["bundle", "summary", &summary],
    );
    let back = file(&a, "back.bundle");
    out.run(
        &a,
        "bundle export",
        "offline --for",
        &["bundle", "export", &back, "--for", &summary],
    );
    let imported = out.run(
        &b,
        "bundle import",
        "offline, joined",
        &["bundle", "import", &back],
    );
    assert_eq!(
        imported["commons_joined"][0],
        commons.as_str(),
        "{imported}"
    );

    // A and B change the same fields apart; A takes in B's changes: conflicts shown, settled.
    for (kind, doc, edit) in [
        (
            "design",
            &design,
            ["--set", "stage=concept", "--set", "stage=in-use"],
        ),
        (
            "event",
            &event,
            [
                "--set",
                "summary=Three drums",
                "--set",
                "summary=Four drums",
            ],
        ),
        (
            "note",
            &note,
            ["--text", "Built five drums", "--text", "Built six drums"],
        ),
    ] {
        a.ok(&[kind, "edit", doc, edit[0], edit[1]]);
        b.ok(&[kind, "edit", doc, edit[2], edit[3]]);
    }
    let from_b = file(&b, "from-b.bundle");
    b.ok(&["bundle", "export", &from_b]);
    a.ok(&["bundle", "import", &from_b]);
    for (kind, doc, field) in [
        ("design", &design, "stage"),
        ("event", &event, "summary"),
        ("note", &note, "body"),
    ] {
        let shown = out.run(
            &a,
            &format!("{kind} show"),
            "offline, in conflict",
            &[kind, "show", doc],
        );
        assert_eq!(shown["conflicts"][0]["field"], field, "{shown}");
        out.run(
            &a,
            &format!("{kind} conflicts"),
            "offline",
            &[kind, "conflicts"],
        );
        out.run(
            &a,
            &format!("{kind} conflicts"),
            "offline, one document",
            &[kind, "conflicts", doc],
        );
        let side = shown["conflicts"][0]["sides"][0]["change"]
            .as_str()
            .and_then(|c| c.get(..8))
            .expect("a side's change");
        out.run(
            &a,
            &format!("{kind} resolve"),
            "offline",
            &[kind, "resolve", doc, field, "--take", side],
        );
    }

    // A private commons' bundle, on a node without its genesis: its records stay sealed.
    let p = TestHome::init("Pia");
    p.json(&[
        "commons",
        "create",
        "Seed circle",
        "--stewarded",
        "--private",
    ]);
    p.json(&["design", "new", "Seed cleaner"]);
    let sealed = file(&p, "sealed.bundle");
    p.ok(&["bundle", "export", &sealed]);
    let e = TestHome::init("Eve");
    let encrypted = out.run(
        &e,
        "bundle import",
        "offline, sealed",
        &["bundle", "import", &sealed],
    );
    assert!(
        encrypted["encrypted"][0]["records"].as_u64().is_some(),
        "{encrypted}"
    );

    // D holds nothing: the commons is skipped, then taken without joining.
    let d = TestHome::init("Dee");
    let skipped = out.run(
        &d,
        "bundle import",
        "offline, skipped",
        &["bundle", "import", &full],
    );
    assert_eq!(skipped["skipped"][0]["id"], commons.as_str(), "{skipped}");
    let added = out.run(
        &d,
        "bundle import",
        "offline --all-commons",
        &["bundle", "import", &full, "--all-commons"],
    );
    assert_eq!(added["commons_added"][0], commons.as_str(), "{added}");
    let held = out.run(
        &d,
        "commons join",
        "offline, held",
        &["commons", "join", &commons],
    );
    assert_eq!(held["already_held"], true, "{held}");

    // This node's own lists, in a home of its own (a purge must not touch the others).
    let e = TestHome::init("Eve");
    e.json(&["commons", "create", "Eve's tools"]);
    let mine = id(&e.json(&["design", "new", "Hoe"]));
    let ada = a.json(&["whoami"])["author"]
        .as_str()
        .expect("author")
        .to_string();
    out.run(&e, "block", "offline", &["block", &ada, "--note", "test"]);
    out.run(&e, "hide", "offline", &["hide", &mine, "--reason", "test"]);
    out.run(&e, "blocks", "offline", &["blocks"]);
    out.run(&e, "unblock", "offline", &["unblock", &ada]);
    out.run(&e, "unhide", "offline", &["unhide", &mine]);
    e.json(&["hide", &mine]);
    out.run(&e, "purge", "offline", &["purge", &mine]);
    // Withdrawn by their creator.
    let eve_event = id(&e.json(&["event", "new", "Build day"]));
    let eve_note = id(&e.json(&["note", "add", "--on", &eve_event, "--text", "Two drums"]));
    let eve_design = id(&e.json(&["design", "new", "Rake"]));
    for (kind, doc) in [
        ("design", &eve_design),
        ("note", &eve_note),
        ("event", &eve_event),
    ] {
        let command = format!("{kind} retract");
        out.run(&e, &command, "offline", &[kind, "retract", doc]);
    }

    // The same commands answered by a running node.
    let a = ServeNode::start(a, &[]);
    let b = ServeNode::start(b, &[&a]);
    assert!(
        b.wait_connected_to(a.peer_id(), Duration::from_secs(20)),
        "B never connected to A"
    );
    out.run(&a, "whoami", "serve", &["whoami"]);
    out.run(
        &a,
        "design edit",
        "serve",
        &["design", "edit", &design, "--set", "stage=production-ready"],
    );
    for (kind, doc) in [("design", &design), ("event", &event), ("note", &note)] {
        out.run(&a, &format!("{kind} show"), "serve", &[kind, "show", doc]);
        out.run(&a, &format!("{kind} list"), "serve", &[kind, "list"]);
    }
    out.run(
        &a,
        "design show",
        "serve --version",
        &["design", "show", &design, "--version", "1.0"],
    );
    out.run(
        &a,
        "design history",
        "serve",
        &["design", "history", &design],
    );
    out.run(
        &a,
        "design blame",
        "serve",
        &["design", "blame", &design, "summary"],
    );
    out.run(&a, "design lineage", "serve", &["design", "lineage", &fork]);
    out.run(&a, "commons list", "serve", &["commons", "list"]);
    out.run(&a, "commons show", "serve", &["commons", "show", &commons]);
    out.run(&a, "verify", "serve", &["verify"]);
    out.run(
        &a,
        "bundle summary",
        "serve",
        &["bundle", "summary", &file(&a, "a.summary")],
    );
    out.run(
        &a,
        "bundle export",
        "serve",
        &["bundle", "export", &file(&a, "again.bundle")],
    );
    out.run(&a, "bundle import", "serve", &["bundle", "import", &full]);
    out.run(&b, "sync", "serve", &["sync", "--peer", &a.multiaddr()]);
    // B's node has synced with A: its status row for A carries the sync's outcome.
    let synced = wait_for(Duration::from_secs(20), || {
        let status = b.status();
        let row = status["connected"]
            .as_array()?
            .iter()
            .find(|p| p["peer"] == a.peer_id())?
            .clone();
        row["last_sync"].is_string().then_some(())
    });
    assert!(synced.is_some(), "B's status never showed its sync with A");
    out.run(&a, "status", "serve", &["status"]);
    // A lookup (of Eve's commons, which no running node holds) and B's provider record fill
    // every list of `peers`.
    let eves = e.json(&["commons", "list"])[0]["id"]
        .as_str()
        .expect("Eve's commons")
        .to_string();
    a.json(&["commons", "join", &eves]);
    let dht_filled = wait_for(Duration::from_secs(30), || {
        let dht = a.json(&["peers"])["dht"].clone();
        let filled = |list: &str| dht[list].as_array().is_some_and(|l| !l.is_empty());
        (filled("records") && filled("lookups") && filled("providing")).then_some(())
    });
    assert!(
        dht_filled.is_some(),
        "A's DHT lists stayed empty: {}",
        a.json(&["peers"])
    );
    out.run(&a, "peers", "serve", &["peers"]);
    out.run(&b, "status", "serve, after a sync", &["status"]);
    out.run(
        &d,
        "sync",
        "offline",
        &["sync", "--peer", &a.multiaddr(), "--linger", "1"],
    );
    out.run(&d, "repair", "offline", &["repair"]);
    out.run(&d, "peers", "offline", &["peers"]);
    let linked = out.run(
        &d,
        "device add",
        "offline",
        &["device", "add", "barn laptop"],
    );
    assert_eq!(linked["commons"][0], commons.as_str(), "{linked}");
    out.run(&d, "device list", "offline", &["device", "list"]);
    out.run(
        &d,
        "device revoke",
        "offline",
        &["device", "revoke", "barn laptop"],
    );

    check_against_readme(&out);
}

/// Waits until the wall clock's second changes, so the next write carries a later time.
fn next_second() {
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs()
    };
    let start = now();
    while now() == start {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The ids of `KIND list --json`, in the order printed.
fn listed(home: &TestHome, kind: &str) -> Vec<String> {
    home.json(&[kind, "list"])
        .as_array()
        .expect("a list")
        .iter()
        .map(id)
        .collect()
}

/// "Newest first" and "oldest first" with items whose times differ: created in one order,
/// then the older one edited last, so neither creation order nor id order passes by chance.
#[test]
fn lists_are_newest_first_and_history_oldest_first() {
    let home = TestHome::init("Ada");
    home.ok(&["commons", "create", "Farm Hack tools"]);
    let new = |args: &[&str]| id(&home.json(args));
    let design_1 = new(&["design", "new", "First design"]);
    let event_1 = new(&["event", "new", "First event"]);
    let note_1 = new(&["note", "add", "--on", &event_1, "--text", "first note"]);
    next_second();
    let design_2 = new(&["design", "new", "Second design"]);
    let event_2 = new(&["event", "new", "Second event"]);
    let note_2 = new(&["note", "add", "--on", &event_1, "--text", "second note"]);
    let order = |ids: [&String; 2]| ids.map(String::clone).to_vec();
    assert_eq!(listed(&home, "design"), order([&design_2, &design_1]));
    assert_eq!(listed(&home, "event"), order([&event_2, &event_1]));
    assert_eq!(listed(&home, "note"), order([&note_2, &note_1]));

    next_second();
    home.ok(&["design", "edit", &design_1, "--set", "stage=prototype"]);
    home.ok(&["event", "edit", &event_1, "--set", "summary=Rescheduled"]);
    home.ok(&["note", "edit", &note_1, "--text", "first note, rewritten"]);
    assert_eq!(listed(&home, "design"), order([&design_1, &design_2]));
    assert_eq!(listed(&home, "event"), order([&event_1, &event_2]));
    assert_eq!(listed(&home, "note"), order([&note_1, &note_2]));

    let history = home.json(&["design", "history", &design_1]);
    let times: Vec<String> = history
        .as_array()
        .expect("history")
        .iter()
        .map(|c| c["time"].as_str().expect("time").to_string())
        .collect();
    assert_eq!(times.len(), 2, "{history}");
    assert!(
        times[0] < times[1],
        "history is not oldest first: {times:?}"
    );
    let listed_at = |kind: &str| -> BTreeMap<String, String> {
        home.json(&[kind, "list"])
            .as_array()
            .expect("a list")
            .iter()
            .map(|d| {
                (
                    id(d),
                    d["updated_at"].as_str().expect("updated_at").to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        listed_at("design")[&design_1],
        times[1],
        "a design's updated_at is its latest change's time"
    );
}
