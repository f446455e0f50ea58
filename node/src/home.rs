//! A node's home directory: its device key, its store and its control socket.
//!
//! Layout:
//! - `hedgerow-home`: marker with the home format version; its absence means "not a Hedgerow home".
//! - `device.key`: the 32 secret bytes of the device's ed25519 key, mode 0600, never printed.
//! - `profile.json`: the display name, location and bio this device signs into each commons' profile.
//! - `config.json`: bootstrap peers and listen addresses for `serve` (optional).
//! - `store/`: the sled store.
//! - `control.sock`: the local control channel while `hedgerow serve` runs (mode 0600).

use hedgerow_protocol::DeviceKey;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const MARKER: &str = "hedgerow-home";
const MARKER_CONTENT: &str = "hedgerow home v1\n";
const KEY_FILE: &str = "device.key";
const PROFILE_FILE: &str = "profile.json";
const CONFIG_FILE: &str = "config.json";

/// Longest display name, in bytes.
pub const MAX_NAME_BYTES: usize = 100;

/// Why a home could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// No home at the path.
    #[error("no Hedgerow home at {0}; create one with `hedgerow init --name YOUR-NAME` (or pass --home)")]
    Missing(PathBuf),
    /// A directory that is not a Hedgerow home.
    #[error("{0} is not a Hedgerow home (it has no `hedgerow-home` file); pass the right --home or run `hedgerow init` in an empty directory")]
    NotAHome(PathBuf),
    /// `init` on an existing home.
    #[error(
        "{0} is already a Hedgerow home; each device has one key, so init refuses to replace it"
    )]
    AlreadyInitialised(PathBuf),
    /// A bad display name.
    #[error("display name must be 1 to {MAX_NAME_BYTES} bytes of text without control characters")]
    BadName,
    /// The key file is damaged.
    #[error("device key {0} is damaged (expected 32 bytes); restore it from a backup")]
    BadKey(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A JSON file does not parse.
    #[error("{path} is not valid: {reason}; fix or delete it")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        reason: String,
    },
}

/// The profile this device signs into each commons it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalProfile {
    /// Display name.
    pub name: String,
    /// Where the person is, optional.
    #[serde(default)]
    pub location: String,
    /// A few words about them, optional.
    #[serde(default)]
    pub bio: String,
}

/// Settings for `serve` kept in the home.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeConfig {
    /// Bootstrap peers (multiaddresses with /p2p/ ids).
    #[serde(default)]
    pub peers: Vec<String>,
    /// Listen addresses.
    #[serde(default)]
    pub listen: Vec<String>,
}

/// An opened home.
pub struct Home {
    root: PathBuf,
    key: DeviceKey,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HomeError + '_ {
    move |source| HomeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks a display name.
pub fn check_name(name: &str) -> Result<(), HomeError> {
    if name.trim().is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(HomeError::BadName);
    }
    Ok(())
}

impl Home {
    /// The default home: `$HEDGEROW_HOME` is handled by the CLI; this is the platform data dir.
    pub fn default_path() -> PathBuf {
        directories::ProjectDirs::from("org", "hedgerow", "hedgerow")
            .map(|d| d.data_dir().to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".hedgerow"))
    }

    /// Creates a new home with a fresh device key.
    pub fn init(root: &Path, profile: &LocalProfile) -> Result<Self, HomeError> {
        check_name(&profile.name)?;
        if root.join(MARKER).exists() {
            return Err(HomeError::AlreadyInitialised(root.to_path_buf()));
        }
        crate::durable::create_dir_all(root).map_err(io_err(root))?;
        let _ = fs::set_permissions(root, fs::Permissions::from_mode(0o700));
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| HomeError::Io {
            path: root.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let key_path = root.join(KEY_FILE);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .map_err(io_err(&key_path))?;
        file.write_all(&secret).map_err(io_err(&key_path))?;
        file.sync_all().map_err(io_err(&key_path))?;
        let home = Self {
            root: root.to_path_buf(),
            key: DeviceKey::from_secret(secret),
        };
        home.save_profile(profile)?;
        // The marker goes last: a home interrupted mid-init is not mistaken for a complete one.
        write_synced(&root.join(MARKER), MARKER_CONTENT.as_bytes())?;
        Ok(home)
    }

    /// Opens an existing home.
    pub fn open(root: &Path) -> Result<Self, HomeError> {
        if !root.exists() {
            return Err(HomeError::Missing(root.to_path_buf()));
        }
        let marker = root.join(MARKER);
        match fs::read_to_string(&marker) {
            Ok(content) if content.starts_with("hedgerow home v") => {}
            _ => return Err(HomeError::NotAHome(root.to_path_buf())),
        }
        let key_path = root.join(KEY_FILE);
        let bytes = fs::read(&key_path).map_err(io_err(&key_path))?;
        let secret: [u8; 32] = bytes
            .try_into()
            .map_err(|_| HomeError::BadKey(key_path.clone()))?;
        Ok(Self {
            root: root.to_path_buf(),
            key: DeviceKey::from_secret(secret),
        })
    }

    /// The home directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The device key.
    pub fn key(&self) -> &DeviceKey {
        &self.key
    }

    /// The sled store directory.
    pub fn store_path(&self) -> PathBuf {
        self.root.join("store")
    }

    /// The control socket path.
    pub fn control_socket(&self) -> PathBuf {
        control_socket_path(&self.root)
    }

    /// The profile this device signs.
    pub fn profile(&self) -> Result<LocalProfile, HomeError> {
        read_json(&self.root.join(PROFILE_FILE))
    }

    /// Replaces the local profile.
    pub fn save_profile(&self, profile: &LocalProfile) -> Result<(), HomeError> {
        check_name(&profile.name)?;
        let json = serde_json::to_vec_pretty(profile).unwrap_or_default();
        write_synced(&self.root.join(PROFILE_FILE), &json)
    }

    /// `config.json`, or defaults when absent.
    pub fn config(&self) -> Result<HomeConfig, HomeError> {
        let path = self.root.join(CONFIG_FILE);
        if !path.exists() {
            return Ok(HomeConfig::default());
        }
        read_json(&path)
    }
}

/// Where a home's control socket lives (usable before the home is opened).
pub fn control_socket_path(root: &Path) -> PathBuf {
    root.join("control.sock")
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, HomeError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|e| HomeError::BadFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes a file atomically: temp file, fsync, rename, fsync of the directory, so a power
/// cut leaves the old or the new one (and the key file written before it is in the directory too).
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    crate::durable::rename(&tmp, path).map_err(io_err(path))?;
    Ok(())
}
