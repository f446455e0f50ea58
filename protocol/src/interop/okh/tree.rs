//! A manifest as a tree of text: YAML and TOML read into one shape, with line numbers and
//! duplicate keys reported instead of refused.
//!
//! Scalars keep the text they were written with (`version: 1.10` stays `1.10`, not `1.1`),
//! so a number where text belongs loses nothing.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// What a scalar was written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarKind {
    /// Text (quoted, block or plain words).
    Text,
    /// A number written without quotes.
    Number,
    /// `true` / `false`.
    Bool,
    /// `~`, `null` or nothing.
    Null,
}

/// One value of a manifest.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// A scalar as written.
    Scalar(String, ScalarKind),
    /// A list.
    List(Vec<Node>),
    /// A map, in the order written, duplicates already removed.
    Map(Vec<(String, Node)>),
}

/// A value and the line it starts on (1-based; 0 when unknown).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub val: Val,
    /// Its line.
    pub line: usize,
}

/// A key written twice in one map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// The key.
    pub key: String,
    /// The line of the copy that was ignored.
    pub line: usize,
}

/// Why a manifest could not be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SyntaxError {
    /// The line the reader stopped at (1-based).
    pub line: usize,
    /// What it found.
    pub message: String,
}

impl Node {
    /// The entry `key` of a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.val {
            Val::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The scalar's text, if it is a non-null scalar.
    pub fn text(&self) -> Option<&str> {
        match &self.val {
            Val::Scalar(_, ScalarKind::Null) => None,
            Val::Scalar(text, _) => Some(text.as_str()),
            _ => None,
        }
    }
}

/// Reads YAML; the first of two equal keys in a map wins (the later copies are reported).
pub fn read_yaml(text: &str) -> Result<(Node, Vec<Duplicate>), SyntaxError> {
    let mut builder = YamlBuilder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| SyntaxError {
        line: e.marker().line(),
        message: e.info().to_string(),
    })?;
    if let Some(error) = builder.error {
        return Err(error);
    }
    let root = builder.root.unwrap_or(Node {
        val: Val::Scalar(String::new(), ScalarKind::Null),
        line: 1,
    });
    Ok((root, builder.duplicates))
}

/// Builds [`Node`]s from parser events.
#[derive(Default)]
struct YamlBuilder {
    stack: Vec<Open>,
    root: Option<Node>,
    duplicates: Vec<Duplicate>,
    anchors: Vec<(usize, Node)>,
    error: Option<SyntaxError>,
}

/// A list or map being read.
enum Open {
    List(Vec<Node>, usize, usize),
    /// Entries, the key waiting for its value, the line, the anchor.
    Map(Vec<(String, Node)>, Option<(String, usize)>, usize, usize),
}

impl YamlBuilder {
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::List(items, _, _)) => items.push(node),
            Some(Open::Map(entries, pending, _, _)) => match pending.take() {
                None => match node.val {
                    Val::Scalar(key, _) => *pending = Some((key, node.line)),
                    _ => {
                        self.error.get_or_insert(SyntaxError {
                            line: node.line,
                            message: "a key that is a list or a map".to_string(),
                        });
                        *pending = Some((String::new(), node.line));
                    }
                },
                Some((key, line)) => {
                    if entries.iter().any(|(k, _)| *k == key) {
                        self.duplicates.push(Duplicate { key, line });
                    } else {
                        entries.push((key, node));
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for YamlBuilder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line();
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let kind = match style {
                    TScalarStyle::Plain if tag.is_none() => plain_kind(&text),
                    _ => ScalarKind::Text,
                };
                self.push(
                    Node {
                        val: Val::Scalar(text, kind),
                        line,
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Open::List(Vec::new(), line, anchor))
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Open::Map(Vec::new(), None, line, anchor))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Open::List(items, line, anchor)) => (
                        Node {
                            val: Val::List(items),
                            line,
                        },
                        anchor,
                    ),
                    Some(Open::Map(entries, _, line, anchor)) => (
                        Node {
                            val: Val::Map(entries),
                            line,
                        },
                        anchor,
                    ),
                    None => return,
                };
                self.push(node, anchor);
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, n)| n.clone())
                    .unwrap_or(Node {
                        val: Val::Scalar(String::new(), ScalarKind::Null),
                        line,
                    });
                self.push(node, 0);
            }
            _ => {}
        }
    }
}

/// What a plain (unquoted) YAML scalar is, by YAML 1.2's core schema.
fn plain_kind(text: &str) -> ScalarKind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => ScalarKind::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => ScalarKind::Bool,
        _ if text.parse::<f64>().is_ok() && !text.starts_with(['+', '.']) => ScalarKind::Number,
        _ => ScalarKind::Text,
    }
}

/// Most duplicate keys removed from one TOML manifest before it is refused as unreadable.
const MAX_TOML_DUPLICATES: usize = 64;

/// Reads TOML; the first of two equal keys in a table wins (the later copies are reported).
///
/// TOML readers refuse a duplicate key outright, so the later copy (its line and the lines
/// its value continues on) is blanked out and the text read again.
pub fn read_toml(text: &str) -> Result<(Node, Vec<Duplicate>), SyntaxError> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut duplicates = Vec::new();
    loop {
        let joined = lines.join("\n");
        match toml::from_str::<toml::Table>(&joined) {
            Ok(table) => {
                let root = Node {
                    val: toml_map(table, &joined),
                    line: 1,
                };
                return Ok((root, duplicates));
            }
            Err(e) => {
                let line = e.span().map(|s| line_of(&joined, s.start)).unwrap_or(1);
                let message = e.message().trim().to_string();
                let duplicate = message.starts_with("duplicate key");
                if !duplicate || duplicates.len() >= MAX_TOML_DUPLICATES || line == 0 {
                    return Err(SyntaxError { line, message });
                }
                let key = lines
                    .get(line - 1)
                    .and_then(|l| l.split_once('='))
                    .map(|(k, _)| k.trim().trim_matches(['"', '\'']).to_string())
                    .unwrap_or_default();
                let end = value_end(&lines, line - 1);
                for blank in lines.iter_mut().take(end).skip(line - 1) {
                    blank.clear();
                }
                duplicates.push(Duplicate { key, line });
            }
        }
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// The index after the last line of the key/value that starts at `start` (0-based): the
/// value runs until the next line that starts a key or a table.
fn value_end(lines: &[String], start: usize) -> usize {
    let starts_key = |line: &str| {
        let t = line.trim_start();
        t.starts_with('[')
            || t.split_once('=').is_some_and(|(k, _)| {
                let k = k.trim();
                !k.is_empty()
                    && k.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '"' | '\'' | ' ')
                    })
            })
    };
    let mut end = start + 1;
    while end < lines.len() && !starts_key(&lines[end]) {
        end += 1;
    }
    end
}

fn toml_map(table: toml::Table, text: &str) -> Val {
    Val::Map(
        table
            .into_iter()
            .map(|(k, v)| {
                let line = key_line(text, &k);
                (k, toml_node(v, text, line))
            })
            .collect(),
    )
}

fn toml_node(value: toml::Value, text: &str, line: usize) -> Node {
    let val = match value {
        toml::Value::String(s) => Val::Scalar(s, ScalarKind::Text),
        toml::Value::Integer(i) => Val::Scalar(i.to_string(), ScalarKind::Number),
        toml::Value::Float(f) => Val::Scalar(f.to_string(), ScalarKind::Number),
        toml::Value::Boolean(b) => Val::Scalar(b.to_string(), ScalarKind::Bool),
        toml::Value::Datetime(d) => Val::Scalar(d.to_string(), ScalarKind::Text),
        toml::Value::Array(items) => Val::List(
            items
                .into_iter()
                .map(|v| toml_node(v, text, line))
                .collect(),
        ),
        toml::Value::Table(t) => toml_map(t, text),
    };
    Node { val, line }
}

/// The first line that assigns `key` or opens a table named by it (0 when not found).
fn key_line(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            let t = t.trim_start_matches('[').trim_start_matches('"');
            t.strip_prefix(key).is_some_and(|rest| {
                let rest = rest.trim_start_matches('"').trim_start();
                rest.starts_with('=') || rest.starts_with(']')
            })
        })
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_keeps_numbers_as_written_and_reports_duplicates() {
        let (root, dups) = read_yaml("title: A\nversion: 1.10\ntitle: B\n").expect("reads");
        assert_eq!(root.get("title").and_then(Node::text), Some("A"));
        assert_eq!(root.get("version").and_then(Node::text), Some("1.10"));
        assert_eq!(
            dups,
            vec![Duplicate {
                key: "title".into(),
                line: 3
            }]
        );
    }

    #[test]
    fn toml_duplicates_are_blanked_with_their_value() {
        let text =
            "name = \"A\"\nimage = [\n  \"a.jpg\",\n]\nimage = [\n \"b.jpg\",\n]\nversion = 2\n";
        let (root, dups) = read_toml(text).expect("reads");
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[0].key, "image");
        assert_eq!(dups[0].line, 5);
        match &root.get("image").expect("image").val {
            Val::List(items) => assert_eq!(items[0].text(), Some("a.jpg")),
            other => panic!("{other:?}"),
        }
        assert_eq!(root.get("version").and_then(Node::text), Some("2"));
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let e = read_toml("name = \"A\"\nrepo = \n").expect_err("broken");
        assert_eq!(e.line, 2);
        let e = read_yaml("title: A\n  - b: [\n").expect_err("broken");
        assert!(e.line >= 2, "{e}");
    }
}
