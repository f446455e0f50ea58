//! The home's settings: `config.toml` (documented, edited by hand or `hedgerow config set`),
//! `HEDGEROW_<KEY>` environment variables for containers, and the previous release's
//! `config.json`.
//!
//! Precedence, highest first: `serve`'s flags (applied by the CLI), environment variables,
//! the file, the defaults. `config.toml` wins over `config.json`: when both exist the JSON file
//! is not read (`config set` moves it aside as `config.json.backup` when it first writes the
//! TOML file, carrying its settings over).

use crate::fetch_policy::FetchRole;
use crate::home::HomeConfig;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, Value};

/// The settings file in the home.
pub const TOML_FILE: &str = "config.toml";
/// The previous release's settings file, still read when there is no `config.toml`.
pub const JSON_FILE: &str = "config.json";
/// Where `config set` keeps the JSON file once it has been carried over.
pub const JSON_BACKUP: &str = "config.json.backup";
/// Prefix of the environment variables: `HEDGEROW_` and the key in capitals, dots as `_`.
pub const ENV_PREFIX: &str = "HEDGEROW_";

/// Why the settings could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A line of `config.toml` is not TOML, or holds an unknown key or a bad value.
    #[error("{} line {line}: {reason}; correct it (`hedgerow config show` lists the keys)", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An environment variable holds a bad value.
    #[error("environment variable {var}: {reason}")]
    BadEnv {
        /// The variable.
        var: String,
        /// What is wrong.
        reason: String,
    },
    /// `config set` with a key that does not exist.
    #[error("unknown config key `{key}`; the keys are: {known}")]
    UnknownKey {
        /// The key given.
        key: String,
        /// Every key.
        known: String,
    },
    /// `config set` with a value the key does not take.
    #[error("config key `{key}`: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The previous release's `config.json` does not parse.
    #[error("{} is not valid: {reason}; fix or delete it", path.display())]
    BadJson {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What a key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A list of multiaddresses.
    Addrs,
    /// true or false.
    Bool,
    /// A whole number at least 1.
    Count,
    /// `HOST:PORT`.
    SocketAddr,
    /// `human` or `json`.
    LogFormat,
    /// `farm` or `hub`.
    Role,
    /// A transfer rate: `32kbit`, `2Mbit`, `4KB`.
    Rate,
    /// Hours of local time: `01:00-05:00`.
    Window,
}

/// One setting: its key, what it holds and a line about it.
pub struct Key {
    /// Dotted key, as in `config set` (`files.max_file_bytes`).
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// What it does.
    pub doc: &'static str,
}

/// Every key; `fetch.commons.<COMMONS-ID>` besides (a role for one commons).
pub const KEYS: &[Key] = &[
    Key {
        name: "listen",
        kind: Kind::Addrs,
        doc: "addresses serve listens on (default TCP and QUIC on port 4717, every interface)",
    },
    Key {
        name: "peers",
        kind: Kind::Addrs,
        doc: "bootstrap peers serve keeps connected to (added to --peer)",
    },
    Key {
        name: "mdns",
        kind: Kind::Bool,
        doc: "discover peers on the local network (default true)",
    },
    Key {
        name: "sync_interval",
        kind: Kind::Count,
        doc: "seconds between catch-up syncs with connected peers (default 60)",
    },
    Key {
        name: "max_connections_per_ip",
        kind: Kind::Count,
        doc: "connections one IP address may hold open at once (default 64)",
    },
    Key {
        name: "metrics",
        kind: Kind::SocketAddr,
        doc: "serve Prometheus metrics at http://ADDR/metrics (default off)",
    },
    Key {
        name: "log_format",
        kind: Kind::LogFormat,
        doc: "serve's log lines: human or json (default human)",
    },
    // Metered links and sync windows.
    Key {
        name: "max_rate",
        kind: Kind::Rate,
        doc: "cap on bytes sent and on bytes received: 32kbit, 2Mbit, 4KB (default none; QUIC off)",
    },
    Key {
        name: "sync_window",
        kind: Kind::Window,
        doc: "local hours for bulk sync and attachments, e.g. 01:00-05:00 (default any time)",
    },
    Key {
        name: "files.max_file_bytes",
        kind: Kind::Count,
        doc: "largest attached file fetched or attached, in bytes",
    },
    Key {
        name: "files.commons_quota_bytes",
        kind: Kind::Count,
        doc: "most bytes of files one commons may refer to",
    },
    Key {
        name: "files.serve_streams_per_peer",
        kind: Kind::Count,
        doc: "most blob responses open to one peer at once; more hear Busy (default 16)",
    },
    Key {
        name: "files.serve_bytes_per_peer",
        kind: Kind::Count,
        doc: "most blob bytes sent to one peer per window; more hear Busy (default 4 GiB)",
    },
    Key {
        name: "files.serve_window_secs",
        kind: Kind::Count,
        doc: "the window of files.serve_bytes_per_peer, in seconds (default 10)",
    },
    // Reaching nodes behind NAT (issue 12): the relay server a hub runs, and UPnP.
    Key {
        name: "reach.relay",
        kind: Kind::Bool,
        doc: "serve as a circuit relay for nodes behind NAT, as a hub (default false)",
    },
    Key {
        name: "reach.upnp",
        kind: Kind::Bool,
        doc: "ask the router for port mappings with UPnP (default true)",
    },
    Key {
        name: "reach.relay_max_circuits",
        kind: Kind::Count,
        doc: "relayed circuits open through this hub at once (default 32)",
    },
    Key {
        name: "reach.relay_max_circuits_per_peer",
        kind: Kind::Count,
        doc: "relayed circuits one peer may have open through this hub (default 4)",
    },
    Key {
        name: "reach.relay_max_circuit_bytes",
        kind: Kind::Count,
        doc: "bytes one relayed circuit may carry before it is closed (default 64 MiB)",
    },
    Key {
        name: "reach.relay_max_circuit_secs",
        kind: Kind::Count,
        doc: "seconds one relayed circuit may stay open (default 1800)",
    },
    Key {
        name: "fetch.role",
        kind: Kind::Role,
        doc: "farm (pinned designs' files) or hub (every file), for every commons",
    },
];

/// Prefix of the per-commons fetch role keys.
const FETCH_COMMONS: &str = "fetch.commons.";

/// The key named `name` (with `fetch.commons.ID` as a role), or why not.
fn kind_of(name: &str) -> Result<Kind, ConfigError> {
    if let Some(id) = name.strip_prefix(FETCH_COMMONS) {
        if !id.is_empty() {
            return Ok(Kind::Role);
        }
    }
    KEYS.iter()
        .find(|k| k.name == name)
        .map(|k| k.kind)
        .ok_or_else(|| ConfigError::UnknownKey {
            key: name.to_string(),
            known: known_keys(),
        })
}

fn known_keys() -> String {
    let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    names.push("fetch.commons.<COMMONS-ID>");
    names.join(", ")
}

/// Checks `value` against `kind` and stores it in `config` under `name`.
fn apply(config: &mut HomeConfig, name: &str, kind: Kind, value: &Value) -> Result<(), String> {
    let count = || match value.as_integer() {
        Some(n) if n >= 1 => Ok(n as u64),
        _ => Err(format!(
            "`{name}` takes a whole number of at least 1, not {}",
            shown(value)
        )),
    };
    let text = || {
        value
            .as_str()
            .ok_or_else(|| format!("`{name}` takes a quoted string, not {}", shown(value)))
    };
    match kind {
        Kind::Addrs => {
            let Some(array) = value.as_array() else {
                return Err(format!(
                    "`{name}` takes a list of multiaddresses such as [\"/ip4/127.0.0.1/tcp/4717\"], not {}",
                    shown(value)
                ));
            };
            let mut addrs = Vec::new();
            for item in array.iter() {
                let addr = item
                    .as_str()
                    .filter(|t| t.parse::<libp2p::Multiaddr>().is_ok());
                let Some(addr) = addr else {
                    return Err(format!(
                        "{} in `{name}` is not a multiaddress such as /ip4/127.0.0.1/tcp/4717",
                        shown(item)
                    ));
                };
                addrs.push(addr.to_string());
            }
            match name {
                "listen" => config.listen = addrs,
                _ => config.peers = addrs,
            }
        }
        Kind::Bool => {
            let on =
                Some(value.as_bool().ok_or_else(|| {
                    format!("`{name}` takes true or false, not {}", shown(value))
                })?);
            match name {
                "reach.relay" => config.reach.relay = on,
                "reach.upnp" => config.reach.upnp = on,
                _ => config.mdns = on,
            }
        }
        Kind::Count => {
            let n = count()?;
            match name {
                "sync_interval" => config.sync_interval = Some(n),
                "max_connections_per_ip" => {
                    config.max_connections_per_ip = Some(usize::try_from(n).unwrap_or(usize::MAX))
                }
                "files.max_file_bytes" => config.files.max_file_bytes = n,
                "files.serve_streams_per_peer" => {
                    config.files.serve_streams_per_peer = usize::try_from(n).unwrap_or(usize::MAX)
                }
                "files.serve_bytes_per_peer" => config.files.serve_bytes_per_peer = n,
                "files.serve_window_secs" => config.files.serve_window_secs = n,
                "reach.relay_max_circuits" => config.reach.relay_max_circuits = Some(n),
                "reach.relay_max_circuits_per_peer" => {
                    config.reach.relay_max_circuits_per_peer = Some(n)
                }
                "reach.relay_max_circuit_bytes" => config.reach.relay_max_circuit_bytes = Some(n),
                "reach.relay_max_circuit_secs" => config.reach.relay_max_circuit_secs = Some(n),
                _ => config.files.commons_quota_bytes = n,
            }
        }
        Kind::SocketAddr => {
            let addr = text()?;
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(format!(
                    "`{name}` takes an address and port such as \"127.0.0.1:9464\", not {}",
                    shown(value)
                ));
            }
            config.metrics = Some(addr.to_string());
        }
        Kind::LogFormat => match text()? {
            format @ ("human" | "json") => config.log_format = Some(format.to_string()),
            _ => {
                return Err(format!(
                    "`{name}` takes \"human\" or \"json\", not {}",
                    shown(value)
                ))
            }
        },
        Kind::Rate => {
            let rate = text()?;
            let parsed: crate::net::MaxRate = rate.parse().map_err(|e| format!("`{name}`: {e}"))?;
            config.max_rate = Some(parsed.to_string());
        }
        Kind::Window => {
            let window = text()?;
            let parsed: crate::serve::sync_window::SyncWindow =
                window.parse().map_err(|e| format!("`{name}`: {e}"))?;
            config.sync_window = Some(parsed.to_string());
        }
        Kind::Role => {
            let role = match text()? {
                "farm" => FetchRole::Farm,
                "hub" => FetchRole::Hub,
                _ => {
                    return Err(format!(
                        "`{name}` takes \"farm\" or \"hub\", not {}",
                        shown(value)
                    ))
                }
            };
            match name.strip_prefix(FETCH_COMMONS) {
                Some(id) => {
                    config.fetch.commons.insert(id.to_string(), role);
                }
                None => config.fetch.role = role,
            }
        }
    }
    Ok(())
}

/// A value as written in TOML, for messages.
fn shown(value: &Value) -> String {
    value.to_string().trim().to_string()
}

/// A value typed on a command line or in an environment variable, as TOML: lists may be
/// written `a,b`, strings need no quotes.
pub fn value_from_text(kind: Kind, text: &str) -> Value {
    let trimmed = text.trim();
    if let Ok(value) = trimmed.parse::<Value>() {
        let fits = match kind {
            Kind::Addrs => value.is_array(),
            Kind::Bool => value.is_bool(),
            Kind::Count => value.is_integer(),
            _ => value.is_str(),
        };
        if fits {
            return value;
        }
    }
    match kind {
        Kind::Addrs => Value::Array(
            trimmed
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect(),
        ),
        _ => Value::from(trimmed),
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// Settings from the TOML `text` of `path` over the defaults.
pub fn parse_toml(path: &Path, text: &str) -> Result<HomeConfig, ConfigError> {
    let bad = |line: usize, reason: String| ConfigError::BadLine {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let doc = toml_edit::Document::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        bad(line, e.message().trim().to_string())
    })?;
    let mut config = HomeConfig::default();
    let mut leaves = Vec::new();
    collect(doc.as_table(), "", &mut leaves);
    for (name, item) in leaves {
        let line = item.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        let kind = kind_of(&name).map_err(|_| {
            bad(
                line,
                format!("unknown key `{name}` (the keys are: {})", known_keys()),
            )
        })?;
        let Some(value) = item.as_value() else {
            return Err(bad(line, format!("`{name}` takes a value, not a table")));
        };
        apply(&mut config, &name, kind, value).map_err(|reason| bad(line, reason))?;
    }
    Ok(config)
}

/// Every leaf of `table` with its dotted key (tables and inline tables are walked).
fn collect<'a>(
    table: &'a dyn toml_edit::TableLike,
    prefix: &str,
    out: &mut Vec<(String, &'a Item)>,
) {
    for (key, item) in table.iter() {
        let name = format!("{prefix}{key}");
        match item.as_table_like() {
            Some(inner) if kind_of(&name).is_err() => collect(inner, &format!("{name}."), out),
            _ => out.push((name, item)),
        }
    }
}

/// The environment's `HEDGEROW_<KEY>` values over `config`; other variables are ignored.
pub fn apply_env(
    config: &mut HomeConfig,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, ConfigError> {
    let mut used = Vec::new();
    for (var, text) in vars {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some(key) = KEYS.iter().find(|k| env_name(k.name) == rest) else {
            continue;
        };
        // An empty variable counts as unset, as HEDGEROW_HOME does.
        if text.trim().is_empty() {
            continue;
        }
        let value = value_from_text(key.kind, &text);
        apply(config, key.name, key.kind, &value).map_err(|reason| ConfigError::BadEnv {
            var: var.clone(),
            reason,
        })?;
        used.push(key.name.to_string());
    }
    Ok(used)
}

/// The environment variable's name for `key`, without the prefix (`FILES_MAX_FILE_BYTES`).
pub fn env_name(key: &str) -> String {
    key.replace('.', "_").to_ascii_uppercase()
}

/// The home's settings from its file (`config.toml`, else `config.json`), without the
/// environment.
pub fn read_file(root: &Path) -> Result<HomeConfig, ConfigError> {
    let toml_path = root.join(TOML_FILE);
    match std::fs::read_to_string(&toml_path) {
        Ok(text) => return parse_toml(&toml_path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ConfigError::Io {
                path: toml_path,
                source,
            })
        }
    }
    let json_path = root.join(JSON_FILE);
    match std::fs::read(&json_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ConfigError::BadJson {
            path: json_path,
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HomeConfig::default()),
        Err(source) => Err(ConfigError::Io {
            path: json_path,
            source,
        }),
    }
}

/// The home's settings: the file, then the process environment over it.
pub fn load(root: &Path) -> Result<HomeConfig, ConfigError> {
    let mut config = read_file(root)?;
    apply_env(&mut config, std::env::vars())?;
    Ok(config)
}

/// The header of a new `config.toml`.
const HEADER: &str = "# Hedgerow node settings (`hedgerow config show` lists every key).
# Precedence: serve's flags, then HEDGEROW_<KEY> environment variables, then this file.
# Keys: listen, peers (lists of multiaddresses), mdns (true/false), sync_interval (seconds),
# max_connections_per_ip, metrics (\"127.0.0.1:9464\"), log_format (\"human\"/\"json\"),
# max_rate (\"64kbit\"), sync_window (\"01:00-05:00\"),
# [files] max_file_bytes, commons_quota_bytes, serve_streams_per_peer, serve_bytes_per_peer,
# serve_window_secs; [fetch] role (\"farm\"/\"hub\"),
# [fetch.commons] \"COMMONS-ID\" = \"hub\"; [reach] relay, upnp (true/false),
# relay_max_circuits, relay_max_circuits_per_peer, relay_max_circuit_bytes, relay_max_circuit_secs.
";

/// Sets `key` to `text` in the home's `config.toml` (made if missing, carrying `config.json`'s
/// settings over and keeping it as `config.json.backup`). The whole file is checked before it
/// is written, atomically; comments and layout of the rest stay.
pub fn set(root: &Path, key: &str, text: &str) -> Result<(), ConfigError> {
    let kind = kind_of(key)?;
    let value = value_from_text(kind, text);
    apply(&mut HomeConfig::default(), key, kind, &value).map_err(|reason| {
        ConfigError::BadValue {
            key: key.to_string(),
            reason,
        }
    })?;
    let toml_path = root.join(TOML_FILE);
    let json_path = root.join(JSON_FILE);
    let new_file = !toml_path.exists();
    let (mut doc, migrating) = match std::fs::read_to_string(&toml_path) {
        Ok(text) => {
            // A file that is already wrong is reported, not silently rewritten.
            parse_toml(&toml_path, &text)?;
            let doc: DocumentMut =
                text.parse()
                    .map_err(|e: toml_edit::TomlError| ConfigError::BadLine {
                        path: toml_path.clone(),
                        line: 1,
                        reason: e.message().to_string(),
                    })?;
            (doc, false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut doc = DocumentMut::new();
            let migrating = json_path.exists();
            if migrating {
                let old = read_file(root)?;
                for (name, value) in to_pairs(&old) {
                    set_path(&mut doc, &name, value);
                }
            }
            (doc, migrating)
        }
        Err(source) => {
            return Err(ConfigError::Io {
                path: toml_path,
                source,
            })
        }
    };
    set_path(&mut doc, key, value);
    let text = match new_file {
        true => format!("{HEADER}\n{doc}"),
        false => doc.to_string(),
    };
    parse_toml(&toml_path, &text)?;
    crate::home::write_file_atomic(&toml_path, text.as_bytes(), 0o600).map_err(|source| {
        ConfigError::Io {
            path: toml_path.clone(),
            source,
        }
    })?;
    if migrating {
        std::fs::rename(&json_path, root.join(JSON_BACKUP)).map_err(|source| ConfigError::Io {
            path: json_path,
            source,
        })?;
    }
    Ok(())
}

/// Puts `value` at the dotted `key` of `doc`, making tables on the way.
fn set_path(doc: &mut DocumentMut, key: &str, value: Value) {
    let (tables, leaf) = match key.strip_prefix(FETCH_COMMONS) {
        Some(id) => (vec!["fetch", "commons"], id),
        None => {
            let mut parts: Vec<&str> = key.split('.').collect();
            let leaf = parts.pop().unwrap_or(key);
            (parts, leaf)
        }
    };
    let mut table = doc.as_table_mut();
    for name in tables {
        if !table.get(name).is_some_and(Item::is_table) {
            let mut new = toml_edit::Table::new();
            // `[fetch.commons]` alone, without an empty `[fetch]` above it.
            new.set_implicit(true);
            table.insert(name, Item::Table(new));
        }
        let Some(inner) = table.get_mut(name).and_then(Item::as_table_mut) else {
            return;
        };
        table = inner;
    }
    table.insert(leaf, Item::Value(value));
}

/// The settings of `config` that differ from the defaults, as (key, value) pairs.
pub fn to_pairs(config: &HomeConfig) -> Vec<(String, Value)> {
    let defaults = HomeConfig::default();
    let mut pairs = Vec::new();
    let addrs = |list: &[String]| Value::Array(list.iter().map(String::as_str).collect());
    if !config.listen.is_empty() {
        pairs.push(("listen".to_string(), addrs(&config.listen)));
    }
    if !config.peers.is_empty() {
        pairs.push(("peers".to_string(), addrs(&config.peers)));
    }
    if let Some(mdns) = config.mdns {
        pairs.push(("mdns".to_string(), Value::from(mdns)));
    }
    if let Some(n) = config.sync_interval {
        pairs.push(("sync_interval".to_string(), Value::from(n as i64)));
    }
    if let Some(n) = config.max_connections_per_ip {
        pairs.push(("max_connections_per_ip".to_string(), Value::from(n as i64)));
    }
    if let Some(addr) = &config.metrics {
        pairs.push(("metrics".to_string(), Value::from(addr.as_str())));
    }
    if let Some(format) = &config.log_format {
        pairs.push(("log_format".to_string(), Value::from(format.as_str())));
    }
    if let Some(rate) = &config.max_rate {
        pairs.push(("max_rate".to_string(), Value::from(rate.as_str())));
    }
    if let Some(window) = &config.sync_window {
        pairs.push(("sync_window".to_string(), Value::from(window.as_str())));
    }
    if config.files.max_file_bytes != defaults.files.max_file_bytes {
        pairs.push((
            "files.max_file_bytes".to_string(),
            Value::from(config.files.max_file_bytes as i64),
        ));
    }
    if config.files.commons_quota_bytes != defaults.files.commons_quota_bytes {
        pairs.push((
            "files.commons_quota_bytes".to_string(),
            Value::from(config.files.commons_quota_bytes as i64),
        ));
    }
    if config.files.serve_streams_per_peer != defaults.files.serve_streams_per_peer {
        pairs.push((
            "files.serve_streams_per_peer".to_string(),
            Value::from(config.files.serve_streams_per_peer as i64),
        ));
    }
    if config.files.serve_bytes_per_peer != defaults.files.serve_bytes_per_peer {
        pairs.push((
            "files.serve_bytes_per_peer".to_string(),
            Value::from(config.files.serve_bytes_per_peer as i64),
        ));
    }
    if config.files.serve_window_secs != defaults.files.serve_window_secs {
        pairs.push((
            "files.serve_window_secs".to_string(),
            Value::from(config.files.serve_window_secs as i64),
        ));
    }
    let reach = &config.reach;
    for (key, on) in [("reach.relay", reach.relay), ("reach.upnp", reach.upnp)] {
        if let Some(on) = on {
            pairs.push((key.to_string(), Value::from(on)));
        }
    }
    for (key, n) in [
        ("reach.relay_max_circuits", reach.relay_max_circuits),
        (
            "reach.relay_max_circuits_per_peer",
            reach.relay_max_circuits_per_peer,
        ),
        (
            "reach.relay_max_circuit_bytes",
            reach.relay_max_circuit_bytes,
        ),
        ("reach.relay_max_circuit_secs", reach.relay_max_circuit_secs),
    ] {
        if let Some(n) = n {
            pairs.push((key.to_string(), Value::from(n as i64)));
        }
    }
    let role = |r: FetchRole| {
        Value::from(match r {
            FetchRole::Farm => "farm",
            FetchRole::Hub => "hub",
        })
    };
    if config.fetch.role != defaults.fetch.role {
        pairs.push(("fetch.role".to_string(), role(config.fetch.role)));
    }
    for (id, r) in &config.fetch.commons {
        pairs.push((format!("{FETCH_COMMONS}{id}"), role(*r)));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HomeConfig, ConfigError> {
        parse_toml(Path::new("config.toml"), text)
    }

    #[test]
    fn every_key_reads_from_toml() {
        let config = parse(
            "listen = [\"/ip4/127.0.0.1/tcp/4800\"]\npeers = []\nmdns = false\nsync_interval = 5\n\
             max_connections_per_ip = 3\nmetrics = \"127.0.0.1:9464\"\nlog_format = \"json\"\n\
             [files]\nmax_file_bytes = 10\ncommons_quota_bytes = 20\n\
             [fetch]\nrole = \"hub\"\ncommons = { ABC = \"farm\" }\n",
        )
        .expect("valid");
        assert_eq!(config.listen, ["/ip4/127.0.0.1/tcp/4800"]);
        assert_eq!(config.mdns, Some(false));
        assert_eq!(config.sync_interval, Some(5));
        assert_eq!(config.max_connections_per_ip, Some(3));
        assert_eq!(config.metrics.as_deref(), Some("127.0.0.1:9464"));
        assert_eq!(config.log_format.as_deref(), Some("json"));
        assert_eq!(config.files.max_file_bytes, 10);
        assert_eq!(config.files.commons_quota_bytes, 20);
        assert_eq!(config.fetch.role, FetchRole::Hub);
        assert_eq!(config.fetch.commons.get("ABC"), Some(&FetchRole::Farm));
    }

    #[test]
    fn a_bad_value_or_key_names_the_key_and_its_line() {
        let err = parse("mdns = true\n\n[files]\nmax_file_bytes = \"lots\"\n").expect_err("bad");
        let text = err.to_string();
        assert!(
            text.starts_with("config.toml line 4: `files.max_file_bytes`"),
            "{text}"
        );
        let err = parse("mdsn = true\n").expect_err("unknown");
        assert!(
            err.to_string()
                .starts_with("config.toml line 1: unknown key `mdsn`"),
            "{err}"
        );
        let err = parse("listen = [\"port 80\"]\n").expect_err("addr");
        assert!(
            err.to_string()
                .contains("\"port 80\" in `listen` is not a multiaddress"),
            "{err}"
        );
        let err = parse("a = [\n").expect_err("syntax");
        assert!(err.to_string().starts_with("config.toml line "), "{err}");
    }

    #[test]
    fn environment_overrides_the_file_and_ignores_other_variables() {
        let mut config = parse("sync_interval = 5\nmdns = true\n").expect("valid");
        let vars = [
            ("HEDGEROW_SYNC_INTERVAL", "7"),
            (
                "HEDGEROW_PEERS",
                "/ip4/127.0.0.1/tcp/1, /ip4/127.0.0.1/tcp/2",
            ),
            ("HEDGEROW_FILES_MAX_FILE_BYTES", "99"),
            ("HEDGEROW_HOME", "/x"),
            ("HEDGEROW_MDNS", ""),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()));
        let used = apply_env(&mut config, vars).expect("valid");
        assert_eq!(used, ["sync_interval", "peers", "files.max_file_bytes"]);
        assert_eq!(config.sync_interval, Some(7));
        assert_eq!(
            config.peers,
            ["/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2"]
        );
        assert_eq!(config.files.max_file_bytes, 99);
        assert_eq!(config.mdns, Some(true));
        let bad = [("HEDGEROW_LOG_FORMAT".to_string(), "xml".to_string())];
        let err = apply_env(&mut config, bad).expect_err("bad");
        assert!(
            err.to_string()
                .starts_with("environment variable HEDGEROW_LOG_FORMAT:"),
            "{err}"
        );
    }

    #[test]
    fn set_keeps_comments_carries_config_json_over_and_refuses_bad_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(JSON_FILE),
            r#"{"peers": ["/ip4/127.0.0.1/tcp/9"], "fetch": {"role": "hub"}}"#,
        )
        .expect("json");
        set(dir.path(), "sync_interval", "30").expect("set");
        assert!(!dir.path().join(JSON_FILE).exists());
        assert!(dir.path().join(JSON_BACKUP).exists());
        let config = read_file(dir.path()).expect("read");
        assert_eq!(config.peers, ["/ip4/127.0.0.1/tcp/9"]);
        assert_eq!(config.fetch.role, FetchRole::Hub);
        assert_eq!(config.sync_interval, Some(30));

        set(dir.path(), "fetch.commons.ABC", "farm").expect("set role");
        let before = std::fs::read_to_string(dir.path().join(TOML_FILE)).expect("toml");
        assert!(before.starts_with("# Hedgerow node settings"), "{before}");
        let err = set(dir.path(), "sync_interval", "soon").expect_err("bad");
        assert!(
            err.to_string().starts_with("config key `sync_interval`:"),
            "{err}"
        );
        let err = set(dir.path(), "listn", "x").expect_err("unknown");
        assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(TOML_FILE)).expect("toml"),
            before
        );
        assert_eq!(
            read_file(dir.path())
                .expect("read")
                .fetch
                .commons
                .get("ABC"),
            Some(&FetchRole::Farm)
        );
    }
}
