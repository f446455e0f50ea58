//! A node's home directory: its device key, its store and its control socket.
//!
//! Layout:
//! - `hedgerow-home`: marker with the home format version; its absence means "not a Hedgerow home".
//! - `device.key`: the 32 secret bytes of the device's ed25519 key, mode 0600, never printed.
//! - `person.key`: the 32 secret bytes of the person key (mode 0600), only on a device restored
//!   from a key backup; when absent the device key is the person key (every home of the
//!   previous release, and every new `init` home: a person's first device).
//! - `device.cert`: this device's certificate (the person key signing the device key and its
//!   name), on a restored or linked device.
//! - `device.link`: on a device made by `init --link`, until its certificate arrives.
//! - `install.json`: this home's install tag (see [`InstallTag`]) and what it is bound to.
//! - `network.key`: the 32 secret bytes of the node's libp2p (network) ed25519 key, mode 0600,
//!   random and unrelated to the device key, so a PeerId seen with an IP address names no author.
//!   Created on first need (homes made before it existed get one on their next start).
//! - `profile.json`: the display name, location and bio this device signs into each commons' profile.
//! - `config.toml`: settings for `serve` (optional; see [`crate::config_file`]); `config.json`
//!   is the previous release's form, read when there is no `config.toml`.
//! - `store/`: the sled store.
//! - `control.sock`: the local control channel while `hedgerow serve` runs (mode 0600).
//! - `serve.lock`: flocked by `hedgerow serve` from before it opens the store until it
//!   exits, so other commands know to wait for its control socket instead of the store.

use hedgerow_protocol::{DeviceKey, InstallTag};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const MARKER: &str = "hedgerow-home";
const MARKER_CONTENT: &str = "hedgerow home v1\n";
const KEY_FILE: &str = "device.key";
const PERSON_KEY_FILE: &str = "person.key";
const CERT_FILE: &str = "device.cert";
const LINK_FILE: &str = "device.link";
const INSTALL_FILE: &str = "install.json";
/// Where Linux keeps the machine's stable id (systemd); absent elsewhere, which only weakens the binding.
const MACHINE_ID_FILES: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];
const NETWORK_KEY_FILE: &str = "network.key";
const PROFILE_FILE: &str = "profile.json";
const SERVE_LOCK: &str = "serve.lock";

/// Longest display name, in bytes.
pub const MAX_NAME_BYTES: usize = 100;

/// Why a home could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// No home at the path.
    #[error("no Hedgerow home at {0}")]
    Missing(PathBuf),
    /// A directory that is not a Hedgerow home.
    #[error("{0} is not a Hedgerow home (it has no `hedgerow-home` file)")]
    NotAHome(PathBuf),
    /// `init` on an existing home.
    #[error(
        "{0} is already a Hedgerow home; each device has one key, so init refuses to replace it"
    )]
    AlreadyInitialised(PathBuf),
    /// `init` on a directory that holds other files.
    #[error("{0} is not empty and not a Hedgerow home; init leaves it alone")]
    NotEmpty(PathBuf),
    /// `serve` while another `serve` runs for the same home.
    #[error("a node (`serve`) is already running for {0}")]
    AlreadyServing(PathBuf),
    /// A bad display name.
    #[error("display name must be 1 to {MAX_NAME_BYTES} bytes of text without control characters")]
    BadName,
    /// The key file is damaged.
    #[error("device key {0} is damaged (expected 32 bytes); restore it from a backup")]
    BadKey(PathBuf),
    /// The person key file is damaged.
    #[error("person key {0} is damaged (expected 32 bytes)")]
    BadPersonKey(PathBuf),
    /// The network key file is damaged.
    #[error("network key {0} is damaged (expected 32 bytes); delete it and the node makes a new one (its peer id changes)")]
    BadNetworkKey(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The settings file or environment holds a bad value.
    #[error(transparent)]
    Config(#[from] crate::config_file::ConfigError),
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
    /// Attachment limits (per file, per commons).
    #[serde(default)]
    pub files: crate::blobs::files::FileLimits,
    /// Which attachments `serve` fetches on its own: hub or farm, per commons.
    #[serde(default)]
    pub fetch: crate::fetch_policy::FetchConfig,
    /// mDNS discovery on the local network (default on).
    #[serde(default)]
    pub mdns: Option<bool>,
    /// Seconds between catch-up syncs (default 60).
    #[serde(default)]
    pub sync_interval: Option<u64>,
    /// Connections one IP address may hold open at once (default 64).
    #[serde(default)]
    pub max_connections_per_ip: Option<usize>,
    /// `HOST:PORT` to serve Prometheus metrics on (default off).
    #[serde(default)]
    pub metrics: Option<String>,
    /// `human` or `json` log lines (default human).
    #[serde(default)]
    pub log_format: Option<String>,
    /// NAT traversal: relay server and its limits, UPnP (`[reach]`).
    #[serde(default)]
    pub reach: crate::net::reach::ReachSettings,
    /// Cap on bytes sent and on bytes received, e.g. `64kbit` (default none).
    #[serde(default)]
    pub max_rate: Option<String>,
    /// Hours of local time for bulk sync, e.g. `01:00-05:00` (default any time).
    #[serde(default)]
    pub sync_window: Option<String>,
}

/// Where a new home's keys come from.
pub enum InitKeys {
    /// A fresh random device key, which is also the person key (a person's first device).
    Fresh,
    /// A person key restored from a backup, a new device key and its certificate (encoded).
    Restored {
        /// The person key's secret.
        person: [u8; 32],
        /// The new device key's secret (never an old device's).
        device: [u8; 32],
        /// The certificate the person key signed for it.
        certificate: Vec<u8>,
    },
    /// A device key derived from a link code; its certificate comes with the next sync or bundle.
    Linked {
        /// The derived device key's secret.
        device: [u8; 32],
    },
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

    /// Creates a new home with a fresh device key (which is also its person key).
    pub fn init(root: &Path, profile: &LocalProfile) -> Result<Self, HomeError> {
        Self::init_with(root, profile, InitKeys::Fresh)
    }

    /// Creates a new home with the given keys (the marker last, so an interrupted init is never
    /// taken for a home).
    pub fn init_with(
        root: &Path,
        profile: &LocalProfile,
        keys: InitKeys,
    ) -> Result<Self, HomeError> {
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
        crate::durable::create_dir_all(root).map_err(io_err(root))?;
        let _ = fs::set_permissions(root, fs::Permissions::from_mode(0o700));
        let secret = match &keys {
            InitKeys::Fresh => random_secret(root)?,
            InitKeys::Restored { device, .. } | InitKeys::Linked { device } => *device,
        };
        let key_path = root.join(KEY_FILE);
        write_new_secret(&key_path, &secret)?;
        match &keys {
            InitKeys::Fresh => {}
            InitKeys::Restored {
                person,
                certificate,
                ..
            } => {
                write_new_secret(&root.join(PERSON_KEY_FILE), person)?;
                write_synced(&root.join(CERT_FILE), certificate)?;
            }
            InitKeys::Linked { .. } => {
                write_synced(&root.join(LINK_FILE), b"certificate expected\n")?
            }
        }
        let install = install_tag(root, &key_path)?;
        let home = Self {
            root: root.to_path_buf(),
            key: DeviceKey::from_secret(secret).with_install(install),
        };
        home.network_key()?;
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
        let install = install_tag(root, &key_path)?;
        Ok(Self {
            root: root.to_path_buf(),
            key: DeviceKey::from_secret(secret).with_install(install),
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

    /// The person key's secret when this home holds one (`person.key`, a restored device); `None`
    /// means the device key is the person key, or (on a linked device) that this device cannot
    /// certify others.
    pub fn person_secret(&self) -> Result<Option<[u8; 32]>, HomeError> {
        let path = self.root.join(PERSON_KEY_FILE);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(
                bytes
                    .try_into()
                    .map_err(|_| HomeError::BadPersonKey(path.clone()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// This device's certificate as stored (encoded), when it has one.
    pub fn certificate_bytes(&self) -> Result<Option<Vec<u8>>, HomeError> {
        let path = self.root.join(CERT_FILE);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Whether this device was linked (`init --link`) and its certificate has not arrived yet.
    pub fn link_pending(&self) -> bool {
        self.root.join(LINK_FILE).exists()
    }

    /// The node's network (libp2p) key, created on first need; see [`NetworkKey`].
    pub fn network_key(&self) -> Result<NetworkKey, HomeError> {
        let path = self.root.join(NETWORK_KEY_FILE);
        match fs::read(&path) {
            Ok(bytes) => return NetworkKey::from_file_bytes(bytes, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        let secret = random_secret(&self.root)?;
        // Written beside, then hard-linked into place: the link fails if another process made
        // the key meanwhile, and then both use that one; a reader never sees half a key.
        let tmp = self
            .root
            .join(format!("{NETWORK_KEY_FILE}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&secret)?;
            file.sync_all()?;
            match fs::hard_link(&tmp, &path) {
                // A filesystem without hard links (FAT, some FUSE ones): rename instead; two
                // processes creating the key at the very same moment is then the only risk.
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists && !path.exists() => {
                    fs::rename(&tmp, &path)
                }
                other => other,
            }
        })();
        let _ = fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                if let Ok(dir) = fs::File::open(&self.root) {
                    let _ = dir.sync_all();
                }
                Ok(NetworkKey(secret))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes = fs::read(&path).map_err(io_err(&path))?;
                NetworkKey::from_file_bytes(bytes, &path)
            }
            Err(e) => Err(io_err(&path)(e)),
        }
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

    /// The home's settings ([`read_config`]).
    pub fn config(&self) -> Result<HomeConfig, HomeError> {
        read_config(&self.root)
    }
}

/// The settings of the home at `root`: `config.toml` (else the previous release's
/// `config.json`), with `HEDGEROW_<KEY>` environment variables over it; defaults when absent.
pub fn read_config(root: &Path) -> Result<HomeConfig, HomeError> {
    Ok(crate::config_file::load(root)?)
}

/// Replaces the profile of the home at `root` (a running node's, which holds no [`Home`]).
pub fn write_profile(root: &Path, profile: &LocalProfile) -> Result<(), HomeError> {
    check_name(&profile.name)?;
    let json = serde_json::to_vec_pretty(profile).unwrap_or_default();
    write_synced(&root.join(PROFILE_FILE), &json)
}

/// Keeps a device's certificate in the home at `root` (a linked device, once it arrived) and
/// ends its wait for it.
pub fn save_certificate(root: &Path, encoded: &[u8]) -> Result<(), HomeError> {
    write_synced(&root.join(CERT_FILE), encoded)?;
    let link = root.join(LINK_FILE);
    match fs::remove_file(&link) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&link)(e)),
        _ => Ok(()),
    }
}

/// `install.json`: the install tag and the binding it was made for.
#[derive(Serialize, Deserialize)]
struct InstallFile {
    /// The tag, 16 hex digits.
    tag: String,
    /// [`install_binding`] when the tag was made, hex.
    bound_to: String,
}

/// What an install tag is bound to: this machine, this home's path and its key file's inode.
///
/// A copied home, a backup restored elsewhere or on another machine, or a home baked into a
/// disk image and booted on a second box differs in at least one of these, so it makes itself
/// a fresh tag before it writes anything, and its changes merge with the original's instead of
/// colliding with them (same author, same sequence number).
fn install_binding(root: &Path, key_path: &Path) -> Result<String, HomeError> {
    use std::os::unix::fs::MetadataExt;
    let machine = MACHINE_ID_FILES
        .iter()
        .find_map(|f| fs::read_to_string(f).ok())
        .unwrap_or_default();
    let place = fs::canonicalize(root).map_err(io_err(root))?;
    let key = fs::metadata(key_path).map_err(io_err(key_path))?;
    let input = format!(
        "{}\n{}\n{}:{}",
        machine.trim(),
        place.display(),
        key.dev(),
        key.ino()
    );
    Ok(blake3::hash(input.as_bytes()).to_hex().to_string())
}

/// This home's install tag: the stored one while its binding holds, else a fresh one (stored).
fn install_tag(root: &Path, key_path: &Path) -> Result<InstallTag, HomeError> {
    let binding = install_binding(root, key_path)?;
    let path = root.join(INSTALL_FILE);
    let stored = fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<InstallFile>(&bytes).ok())
        .filter(|file| file.bound_to == binding)
        .and_then(|file| hex::decode(file.tag).ok())
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok());
    if let Some(tag) = stored {
        return Ok(InstallTag(tag));
    }
    let mut tag = [0u8; 8];
    getrandom::fill(&mut tag).map_err(|e| HomeError::Io {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let file = InstallFile {
        tag: hex::encode(tag),
        bound_to: binding,
    };
    let json = serde_json::to_vec_pretty(&file).unwrap_or_default();
    write_synced(&path, &json)?;
    Ok(InstallTag(tag))
}

/// The secret of a node's libp2p identity: it names the node on the network (its PeerId) and
/// signs nothing of the commons, so peers cannot tie an address to an author key.
#[derive(Clone)]
pub struct NetworkKey([u8; 32]);

impl NetworkKey {
    fn from_file_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self, HomeError> {
        let secret: [u8; 32] = bytes
            .try_into()
            .map_err(|_| HomeError::BadNetworkKey(path.to_path_buf()))?;
        Ok(Self(secret))
    }

    /// The 32 secret bytes of the ed25519 key.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The PeerId this key gives the node on the network.
    pub fn peer_id(&self) -> libp2p::PeerId {
        crate::net::keypair_from_ed25519_secret(self.0)
            .public()
            .to_peer_id()
    }
}

impl std::fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NetworkKey(..)")
    }
}

/// Writes a new secret key file (mode 0600), refusing to replace one.
fn write_new_secret(path: &Path, secret: &[u8; 32]) -> Result<(), HomeError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    file.write_all(secret).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

/// 32 fresh random bytes for a new secret key (a restored device's new device key).
pub fn new_secret() -> Result<[u8; 32], HomeError> {
    random_secret(Path::new("."))
}

/// 32 bytes from the operating system's generator, for a new secret key.
fn random_secret(root: &Path) -> Result<[u8; 32], HomeError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| HomeError::Io {
        path: root.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(secret)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn home(dir: &Path) -> Home {
        let profile = LocalProfile {
            name: "Alice".into(),
            ..LocalProfile::default()
        };
        Home::init(dir, &profile).expect("home")
    }

    #[test]
    fn the_network_key_is_private_stable_and_not_the_device_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = home(dir.path());
        let path = dir.path().join(NETWORK_KEY_FILE);
        let mode = fs::metadata(&path)
            .expect("made by init")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = home.network_key().expect("key").secret_bytes();
        assert_ne!(first, home.key().secret_bytes());
        let reopened = Home::open(dir.path()).expect("open");
        assert_eq!(reopened.network_key().expect("key").secret_bytes(), first);
    }

    #[test]
    fn only_a_restored_home_holds_a_person_key_and_a_damaged_one_is_named() {
        let fresh = tempfile::tempdir().expect("temp dir");
        let home = home(fresh.path());
        assert_eq!(home.person_secret().expect("read"), None);
        assert!(!fresh.path().join(PERSON_KEY_FILE).exists());
        let restored = tempfile::tempdir().expect("temp dir");
        let profile = LocalProfile {
            name: "Alice".into(),
            ..LocalProfile::default()
        };
        let keys = InitKeys::Restored {
            person: [3; 32],
            device: [4; 32],
            certificate: b"cert".to_vec(),
        };
        let home = Home::init_with(restored.path(), &profile, keys).expect("restored");
        assert_eq!(home.person_secret().expect("read"), Some([3; 32]));
        assert_eq!(home.key().secret_bytes(), [4; 32]);
        let path = restored.path().join(PERSON_KEY_FILE);
        assert_eq!(
            fs::metadata(&path).expect("file").permissions().mode() & 0o777,
            0o600
        );
        fs::write(&path, b"short").expect("damage");
        let error = home.person_secret().expect_err("damaged");
        assert!(matches!(error, HomeError::BadPersonKey(_)), "{error}");
    }

    #[test]
    fn a_home_without_a_network_key_gets_one_and_a_damaged_one_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        home(dir.path());
        let path = dir.path().join(NETWORK_KEY_FILE);
        // As a home made by a release before network keys.
        fs::remove_file(&path).expect("remove");
        let opened = Home::open(dir.path()).expect("open");
        let made = opened.network_key().expect("made on first need");
        assert_eq!(fs::read(&path).expect("written"), made.secret_bytes());
        assert_eq!(
            fs::metadata(&path).expect("file").permissions().mode() & 0o777,
            0o600
        );
        fs::write(&path, b"short").expect("damage");
        let error = opened.network_key().expect_err("damaged");
        assert!(matches!(error, HomeError::BadNetworkKey(_)), "{error}");
    }
}
