//! The local control channel: how the CLI talks to a running `hedgerow serve`.
//!
//! sled allows one process per store, so while `serve` runs every CLI command
//! is sent to it over a Unix socket in the home (mode 0600: only the owner of
//! the home can reach it). One JSON request per line, one JSON reply per line.

use crate::api::{NodeRequest, Request};
use crate::error_kind::ErrorKind;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// One request line on the control channel: for the running node, or for its store.
#[derive(Debug, Clone)]
pub enum ControlRequest {
    /// A request only the running node answers.
    Node(NodeRequest),
    /// A store request, run by the node.
    Store(Request),
}

impl ControlRequest {
    /// Reads a request line; its `op` says which kind it is.
    pub fn parse(line: &str) -> Result<Self, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(line)?;
        let op = value.get("op").and_then(serde_json::Value::as_str);
        if op.is_some_and(|op| NodeRequest::OPS.contains(&op)) {
            Ok(Self::Node(serde_json::from_value(value)?))
        } else {
            Ok(Self::Store(serde_json::from_value(value)?))
        }
    }
}

/// Largest request line the server reads, in bytes.
pub const MAX_CONTROL_LINE: usize = 16 * 1024 * 1024;

/// A reply on the control channel: `{"ok": RESULT}`, or `{"error": MESSAGE}` with the
/// failure's [`ErrorKind`] fields beside it when it has one
/// (`{"error": "...", "kind": "no-such-document", "what": "design"}`).
#[derive(Debug, Clone, PartialEq)]
pub enum ControlReply {
    /// The command succeeded with this JSON result.
    Ok(serde_json::Value),
    /// The command failed.
    Error {
        /// The one-line message: what went wrong.
        message: String,
        /// What kind of failure, so the CLI can add what to do.
        kind: Option<ErrorKind>,
    },
}

impl ControlReply {
    /// A failure with no kind the CLI has an instruction for.
    pub fn message(message: impl Into<String>) -> Self {
        ControlReply::Error {
            message: message.into(),
            kind: None,
        }
    }

    /// The reply for a failed command: its message and kind.
    pub fn refused(error: &(dyn std::error::Error + 'static)) -> Self {
        ControlReply::Error {
            message: error.to_string(),
            kind: ErrorKind::of(error),
        }
    }
}

impl Serialize for ControlReply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap};
        match self {
            ControlReply::Ok(value) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("ok", value)?;
                map.end()
            }
            ControlReply::Error { message, kind } => {
                let mut fields = match kind {
                    Some(kind) => match serde_json::to_value(kind).map_err(S::Error::custom)? {
                        serde_json::Value::Object(fields) => fields,
                        _ => serde_json::Map::new(),
                    },
                    None => serde_json::Map::new(),
                };
                fields.insert("error".into(), message.clone().into());
                fields.serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for ControlReply {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(d)?;
        if let Some(ok) = value.get("ok") {
            return Ok(ControlReply::Ok(ok.clone()));
        }
        let Some(message) = value.get("error").and_then(serde_json::Value::as_str) else {
            return Err(D::Error::custom("a reply holds `ok` or `error`"));
        };
        Ok(ControlReply::Error {
            message: message.to_string(),
            // A kind this build does not know is a plain message.
            kind: serde_json::from_value(value.clone()).ok(),
        })
    }
}

/// A command the running node refused, as the CLI receives it: the node's message, and the
/// kind of failure when it has one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct NodeRefusal {
    /// What went wrong, in one line.
    pub message: String,
    /// What kind of failure.
    pub kind: Option<ErrorKind>,
}

/// Why the control channel could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Nothing listens on the socket.
    #[error("no running node")]
    NotRunning,
    /// The node went away (killed, crashed, stopped) while the request was in flight.
    #[error("the running node stopped before answering, so the command may or may not have taken effect")]
    Interrupted,
    /// I/O on the socket failed.
    #[error("control channel to the running node failed: {0}")]
    Io(#[from] std::io::Error),
    /// The reply did not parse.
    #[error("the running node sent a reply this hedgerow does not understand: {0}")]
    BadReply(String),
}

/// Sends one request to a running node; `Err(NotRunning)` when none listens.
pub fn call<T: Serialize>(
    socket: &Path,
    request: &T,
    timeout: Duration,
) -> Result<ControlReply, ControlError> {
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ControlError::NotRunning)
        }
        Err(e) => return Err(e.into()),
    };
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut line =
        serde_json::to_vec(request).map_err(|e| ControlError::BadReply(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(gone)?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    if reader.read_line(&mut reply).map_err(gone)? == 0 {
        return Err(ControlError::Interrupted);
    }
    serde_json::from_str(&reply).map_err(|e| ControlError::BadReply(e.to_string()))
}

/// A socket error that means the node went away mid-request.
fn gone(error: std::io::Error) -> ControlError {
    match error.kind() {
        std::io::ErrorKind::BrokenPipe
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::UnexpectedEof => ControlError::Interrupted,
        _ => ControlError::Io(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request as the line the CLI sends.
    fn line<T: Serialize>(request: &T) -> String {
        serde_json::to_string(request).expect("serialises")
    }

    /// The CLI's lines keep their wire form: `op` alone says whether the node or its store
    /// answers, and the store's `join` is answered by the node's (which also asks peers).
    #[test]
    fn request_lines_split_into_node_and_store_requests() {
        let status = ControlRequest::parse(&line(&NodeRequest::Status)).expect("status");
        assert!(matches!(status, ControlRequest::Node(NodeRequest::Status)));
        let sync = ControlRequest::parse(&line(&NodeRequest::Sync {
            peer: "/ip4/127.0.0.1/tcp/1".into(),
            connect_timeout: None,
            deadline: None,
        }))
        .expect("sync");
        assert!(matches!(
            sync,
            ControlRequest::Node(NodeRequest::Sync { .. })
        ));
        let join = ControlRequest::parse(&line(&Request::Join {
            commons: "c".into(),
        }))
        .expect("join");
        assert!(
            matches!(&join, ControlRequest::Node(NodeRequest::Join { commons }) if commons == "c")
        );
        let list = ControlRequest::parse(&line(&Request::CommonsList)).expect("list");
        assert!(matches!(list, ControlRequest::Store(Request::CommonsList)));
        assert!(ControlRequest::parse(r#"{"op":"no_such_op"}"#).is_err());
        assert!(ControlRequest::parse("not json").is_err());
    }

    /// A reply keeps its wire form (`ok`, or `error` alone), and an error's kind travels
    /// beside its message.
    #[test]
    fn replies_carry_the_kind_of_a_failure() {
        let ok = ControlReply::Ok(serde_json::json!({"id": "x"}));
        assert_eq!(
            serde_json::to_string(&ok).expect("json"),
            r#"{"ok":{"id":"x"}}"#
        );
        let plain = ControlReply::message("no such thing");
        assert_eq!(
            serde_json::to_string(&plain).expect("json"),
            r#"{"error":"no such thing"}"#
        );
        let error = crate::NodeError::UnknownDoc {
            what: "design",
            id: "abcd".into(),
        };
        let kinded = ControlReply::refused(&error);
        let line = serde_json::to_string(&kinded).expect("json");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&line).expect("json"),
            serde_json::json!({"error": "no design matches `abcd`", "kind": "no-such-document", "what": "design"})
        );
        for reply in [ok, plain, kinded] {
            let line = serde_json::to_string(&reply).expect("json");
            assert_eq!(
                serde_json::from_str::<ControlReply>(&line).expect("reads"),
                reply
            );
        }
        // A kind from a newer node is kept as a plain message.
        let newer: ControlReply =
            serde_json::from_str(r#"{"error":"m","kind":"from-the-future"}"#).expect("reads");
        assert_eq!(newer, ControlReply::message("m"));
    }
}
