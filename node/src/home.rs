//! A node's home directory: its device key, its store and its control socket.
//!
//! Layout:
//! - `hedgerow-home`: marker with the home format version; its absence means "not a Hedgerow home".
//! - `device.key`: the 32 secret bytes of the device's ed25519 key, mode 0600, never printed.
//! - `profile.json`: the display name, location and bio this device signs into each commons' profile.
//! - `config.json`: bootstrap peers and listen addresses for `serve` (optional).
//! - `store/`: the sled store.
//! - `control.sock`: the local control channel while `hedgerow serve` runs (mode 0600).
//! - `serve.lock`: flocked by `hedgerow serve` from before it opens the store until it
//!   exits, so other commands know to wait for its control socket instead of the store.

use hedgerow_protocol::DeviceKey;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const MARKER: &str = "hedgerow-home";
const MARKER_CONTENT: &str = "hedgerow home v1\n";
const KEY_FILE: &str = "device.key";
const PROFILE_FILE: &str = "profile.json";
const CONFIG_FILE: &str = "config.json";
const SERVE_LOCK: &str = "serve.lock";

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
    /// `init` on a directory that holds other files.
    #[error("{0} is not empty and not a Hedgerow home; init leaves it alone: pass --home a new or empty directory")]
    NotEmpty(PathBuf),
    /// `serve` while another `serve` runs for the same home.
    #[error("a `hedgerow serve` is already running for {0}; other hedgerow commands talk to it, so there is no need for a second one")]
    AlreadyServing(PathBuf),
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
        // Someone else's folder keeps its mode and files: only a new or empty one becomes a home.
        match fs::read_dir(root) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(HomeError::NotEmpty(root.to_path_buf()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(root)(e)),
        }
        fs::create_dir_all(root).map_err(io_err(root))?;
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

    /// Announces a starting `serve`: held from before it opens the store until it exits.
    ///
    /// Other commands that find it held wait for the control socket instead of
    /// opening the store (see [`serve_announced`]); a second `serve` is refused.
    pub fn announce_serve(&self) -> Result<ServeAnnouncement, HomeError> {
        let path = self.root.join(SERVE_LOCK);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        if flock(&file, libc::LOCK_EX | libc::LOCK_NB).map_err(io_err(&path))? {
            Ok(ServeAnnouncement { _file: file })
        } else {
            Err(HomeError::AlreadyServing(self.root.clone()))
        }
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

/// Held by a starting or running `serve` (see [`Home::announce_serve`]); released on drop or exit.
pub struct ServeAnnouncement {
    _file: fs::File,
}

/// Whether a `serve` for the home at `root` is starting or running (it holds `serve.lock`).
///
/// Usable before the home is opened; never creates a file.
pub fn serve_announced(root: &Path) -> bool {
    let Ok(file) = fs::File::open(root.join(SERVE_LOCK)) else {
        return false;
    };
    // A shared lock we get is released at once when `file` closes: this only looks.
    matches!(flock(&file, libc::LOCK_SH | libc::LOCK_NB), Ok(false))
}

/// `flock(2)`: `Ok(false)` when another open file holds a conflicting lock.
fn flock(file: &fs::File, operation: libc::c_int) -> std::io::Result<bool> {
    // SAFETY: flock on a file descriptor `file` owns and keeps open; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(error)
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

/// Writes a home file atomically (mode 0600), so a power cut leaves the old or the new one.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), HomeError> {
    write_file_atomic(path, bytes, 0o600).map_err(io_err(path))
}

/// Writes `path` through a new temp file beside it, fsynced, renamed over it, then the folder fsynced.
///
/// The temp file has an unpredictable name and is created exclusively (never through a
/// symlink or over an existing file), so nobody who can write to the folder can redirect
/// the write. `mode` is filtered by the umask, as for any new file; a leftover temp file
/// is removed on failure. Some filesystems (FAT sticks) refuse a directory fsync; that is
/// ignored, the file itself is fsynced.
pub fn write_file_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut file = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".hedgerow-tmp")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}
