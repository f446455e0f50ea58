//! `hedgerow key backup`, `hedgerow init` (fresh, `--restore`, `--link`): the person key and
//! this device's key, and the passphrase that protects a backup.
//!
//! A passphrase is read from `HEDGEROW_PASSPHRASE` or from the terminal with echo off, never
//! from the command line (where `ps` and shell history would keep it).

use anyhow::{anyhow, Context, Result};
use hedgerow_node::home::{new_secret, Home, InitKeys, LocalProfile};
use hedgerow_node::key_backup;
use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process::ExitCode;

/// Where a passphrase may come from besides the terminal.
const PASSPHRASE_ENV: &str = "HEDGEROW_PASSPHRASE";

/// The passphrase: `HEDGEROW_PASSPHRASE`, else asked on the terminal (twice when `confirm`).
pub fn passphrase(confirm: bool) -> Result<Vec<u8>> {
    if let Some(value) = std::env::var_os(PASSPHRASE_ENV) {
        use std::os::unix::ffi::OsStrExt;
        return Ok(value.as_bytes().to_vec());
    }
    let first = read_hidden("passphrase: ")?;
    if confirm && read_hidden("again: ")? != first {
        return Err(anyhow!("the two passphrases differ; nothing was written"));
    }
    Ok(first)
}

/// Reads one line from the controlling terminal with echo off.
fn read_hidden(prompt: &str) -> Result<Vec<u8>> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            anyhow!("no terminal to ask the passphrase on: set {PASSPHRASE_ENV} instead")
        })?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a descriptor we hold open.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let have_termios = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_termios {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: sets the attributes of the same open descriptor.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut writer = &tty;
    let _ = writer.write_all(prompt.as_bytes());
    let _ = writer.flush();
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    if have_termios {
        // SAFETY: restores what tcgetattr returned, on the same descriptor.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    read.context("reading the passphrase from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).as_bytes().to_vec())
}

/// `hedgerow key backup FILE`: the person key (the device key when it is the person key),
/// sealed under a passphrase, written to a new FILE.
pub fn backup(home: &Path, file: &Path) -> Result<ExitCode> {
    let opened = Home::open(home)?;
    let secret = match opened.person_secret()? {
        Some(person) => person,
        None if opened.certificate_bytes()?.is_some() || opened.link_pending() => {
            return Err(anyhow!(
                "this device was linked to a person and does not hold the person key; back up from the device that does"
            ))
        }
        None => opened.key().secret_bytes(),
    };
    if file.exists() {
        return Err(anyhow!(
            "{} already exists; choose a new file name (a backup never replaces a file)",
            file.display()
        ));
    }
    let sealed = key_backup::seal(&secret, &passphrase(true)?)?;
    write_new(file, &sealed).with_context(|| format!("cannot write {}", file.display()))?;
    let person = hedgerow_protocol::DeviceKey::from_secret(secret).author();
    println!(
        "wrote the person key {} to {}, sealed under your passphrase; keep both safe and apart",
        person,
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes a new file (never replacing one), fsynced; removes it again if writing fails.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(path);
    }
    written
}

/// What `hedgerow init` was asked for.
pub struct InitArgs {
    /// Display name.
    pub name: Option<String>,
    /// Location.
    pub location: String,
    /// Bio.
    pub bio: String,
    /// A key backup to restore the person key from.
    pub restore: Option<std::path::PathBuf>,
    /// A link code from `hedgerow device add`.
    pub link: Option<String>,
    /// This device's name in its certificate (restore).
    pub device_name: Option<String>,
    /// Commons to replicate at once (link).
    pub commons: Vec<String>,
}

/// `hedgerow init`: a fresh person, a restored one on a new device, or a linked device.
pub fn init(home: &Path, args: InitArgs) -> Result<ExitCode> {
    let profile = |default: &str| LocalProfile {
        name: args.name.clone().unwrap_or_else(|| default.to_string()),
        location: args.location.clone(),
        bio: args.bio.clone(),
    };
    if (args.restore.is_some() || args.link.is_some()) && Home::open(home).is_ok() {
        // Before asking for a passphrase or deriving a key: a home keeps its keys.
        return Err(hedgerow_node::HomeError::AlreadyInitialised(home.to_path_buf()).into());
    }
    if let Some(file) = &args.restore {
        let device_name = args
            .device_name
            .clone()
            .unwrap_or_else(|| "restored device".into());
        hedgerow_node::devices::check_device_name(&device_name)?;
        let profile = profile(&device_name);
        hedgerow_node::home::check_name(&profile.name)?;
        let sealed = std::fs::read(file)
            .with_context(|| format!("cannot read the key backup {}", file.display()))?;
        let person = key_backup::open(&sealed, &passphrase(false)?).with_context(|| {
            format!(
                "cannot restore from {}; nothing was written",
                file.display()
            )
        })?;
        let device = new_secret()?;
        let certificate = hedgerow_node::devices::certify(
            &hedgerow_protocol::DeviceKey::from_secret(person),
            &hedgerow_protocol::DeviceKey::from_secret(device).author(),
            &device_name,
        )?;
        let opened = Home::init_with(
            home,
            &profile,
            InitKeys::Restored {
                person,
                device,
                certificate,
            },
        )?;
        println!(
            "restored person {} in {} as a new device `{device_name}`",
            hedgerow_protocol::DeviceKey::from_secret(person).author(),
            home.display()
        );
        println!("author key: {}", opened.key().author());
        println!("its certificate goes into each commons this device holds or joins");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(code) = &args.link {
        let profile = profile("linked device");
        hedgerow_node::home::check_name(&profile.name)?;
        let wanted = args
            .commons
            .iter()
            .map(|c| {
                c.parse::<hedgerow_protocol::CommonsId>()
                    .map_err(|e| anyhow!("--commons {c}: {e}; a new device holds no commons yet, so give each one's full id (`hedgerow commons list` on your other device)"))
            })
            .collect::<Result<Vec<_>>>()?;
        let device = key_backup::link_device_secret(code)?;
        let opened = Home::init_with(home, &profile, InitKeys::Linked { device })?;
        if !wanted.is_empty() {
            let replicas = hedgerow_node::Replicas::open(&opened)?;
            for commons in wanted {
                replicas.store().want_commons(&commons)?;
            }
            replicas.commit()?;
        }
        println!("linked this device in {}", home.display());
        println!("author key: {}", opened.key().author());
        println!("its certificate and your commons arrive with the next `hedgerow sync --peer ADDR` or `hedgerow bundle import FILE`");
        return Ok(ExitCode::SUCCESS);
    }
    let Some(name) = &args.name else {
        return Err(anyhow!(
            "give your display name with --name NAME (or --restore FILE / --link CODE for another device of yours)"
        ));
    };
    let profile = profile(name);
    let opened = Home::init(home, &profile)?;
    println!("created home {} for {}", home.display(), profile.name);
    println!("author key: {}", opened.key().author());
    Ok(ExitCode::SUCCESS)
}
