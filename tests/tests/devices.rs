//! Persons and devices through the real binary: person key backup and restore, an old
//! single-key home, linking a device, and revoking a lost one.
//!
//! ```text
//!   Ada's first device (person key)  --key backup-->  file  --init --restore-->  new device
//!   Ada's first device  --device add-->  code  --init --link-->  barn laptop  <--bundle--
//!   Ada's phone (lost)  --revoked from the laptop-->  Bob's node refuses its later changes
//! ```

use hedgerow_tests::{id, TestHome};
use serde_json::Value;
use std::process::Output;

const PASSPHRASE: &str = "a long passphrase for tests";

/// Runs `hedgerow ARGS` in `home` with `passphrase` in `HEDGEROW_PASSPHRASE`.
fn with_passphrase(home: &TestHome, passphrase: &str, args: &[&str]) -> Output {
    home.command()
        .env("HEDGEROW_PASSPHRASE", passphrase)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run hedgerow")
}

fn succeeded(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A file path beside `home`'s files, as a string.
fn file_in(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).to_string_lossy().into_owned()
}

#[test]
fn a_backup_restored_on_a_second_home_is_the_same_person_on_a_new_device_key() {
    let ada = TestHome::init("Ada");
    let first = ada.json(&["whoami"]);
    let files = tempfile::tempdir().expect("temp dir");
    let backup = file_in(&files, "ada.key");
    succeeded(
        &with_passphrase(&ada, PASSPHRASE, &["key", "backup", &backup]),
        "key backup",
    );
    let bytes = std::fs::read(&backup).expect("backup written");
    assert!(bytes.starts_with(b"HEDGEROW-KEY\x01"), "{bytes:?}");
    // The secret is not in the file in the clear.
    let secret = std::fs::read(ada.path().join("device.key")).expect("device key");
    assert!(!bytes.windows(32).any(|w| w == secret.as_slice()));
    // A second backup to the same file is refused and leaves the first alone.
    let again = with_passphrase(&ada, PASSPHRASE, &["key", "backup", &backup]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read(&backup).expect("still there"), bytes);

    let restored = TestHome::new();
    succeeded(
        &with_passphrase(
            &restored,
            PASSPHRASE,
            &["init", "--restore", &backup, "--device-name", "new phone"],
        ),
        "init --restore",
    );
    let second = restored.json(&["whoami"]);
    assert_eq!(second["person"], first["person"], "{second}");
    assert_eq!(second["person"], first["author"], "{first}");
    assert_ne!(
        second["author"], first["author"],
        "a new device key: {second}"
    );
    assert_eq!(second["device_name"], "new phone", "{second}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(restored.path().join("person.key"))
            .expect("person.key")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // The restored device holds the person key, so it can back it up in turn.
    let backup_again = file_in(&files, "again.key");
    succeeded(
        &with_passphrase(&restored, PASSPHRASE, &["key", "backup", &backup_again]),
        "key backup from the restored device",
    );
    let third = TestHome::new();
    succeeded(
        &with_passphrase(&third, PASSPHRASE, &["init", "--restore", &backup_again]),
        "init --restore of the second backup",
    );
    assert_eq!(third.json(&["whoami"])["person"], first["person"]);
}

#[test]
fn a_wrong_passphrase_or_a_damaged_backup_is_refused_and_nothing_is_written() {
    let ada = TestHome::init("Ada");
    let files = tempfile::tempdir().expect("temp dir");
    let backup = file_in(&files, "ada.key");
    succeeded(
        &with_passphrase(&ada, PASSPHRASE, &["key", "backup", &backup]),
        "key backup",
    );
    let home = TestHome::new();
    let out = with_passphrase(&home, "not the passphrase", &["init", "--restore", &backup]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert_eq!(error.trim().lines().count(), 1, "{error}");
    assert!(error.contains("wrong passphrase"), "{error}");
    assert!(home.snapshot_files().is_empty(), "nothing written");

    let mut damaged = std::fs::read(&backup).expect("backup");
    let last = damaged.len() - 1;
    damaged[last] ^= 0x40;
    let damaged_path = file_in(&files, "damaged.key");
    std::fs::write(&damaged_path, &damaged).expect("write");
    let out = with_passphrase(&home, PASSPHRASE, &["init", "--restore", &damaged_path]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("altered"), "{error}");
    assert!(home.snapshot_files().is_empty(), "nothing written");

    let cut = file_in(&files, "cut.key");
    std::fs::write(&cut, &damaged[..40]).expect("write");
    let out = with_passphrase(&home, PASSPHRASE, &["init", "--restore", &cut]);
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && error.contains("damaged"),
        "{error}"
    );
    assert!(home.snapshot_files().is_empty(), "nothing written");

    // A short passphrase is refused before anything is written.
    let out = with_passphrase(&ada, "short", &["key", "backup", &file_in(&files, "s.key")]);
    assert!(!out.status.success());
    assert!(!files.path().join("s.key").exists());
}

#[test]
fn an_old_single_key_home_is_its_own_person_and_keeps_working() {
    // What the previous release made: device.key, no person.key, no certificate.
    let ada = TestHome::init("Ada");
    for file in ["person.key", "device.cert", "device.link"] {
        assert!(!ada.path().join(file).exists(), "{file}");
    }
    let me = ada.json(&["whoami"]);
    assert_eq!(me["person"], me["author"], "{me}");
    assert!(me["device_name"].is_null(), "{me}");
    ada.ok(&["commons", "create", "Farm Hack tools"]);
    let design = id(&ada.json(&["design", "new", "Roller crimper", "--set", "summary=Crimps"]));
    ada.ok(&["design", "edit", &design, "--set", "stage=prototype"]);
    let history = ada.json(&["design", "history", &design]);
    for row in history.as_array().expect("rows") {
        assert_eq!(row["person"], me["author"], "{row}");
        assert_eq!(row["author_name"], "Ada", "{row}");
        assert!(row["device_name"].is_null(), "{row}");
    }
    let blame = ada.json(&["design", "blame", &design, "summary"]);
    assert_eq!(blame[0]["person"], me["author"], "{blame}");
    // Its key is the person key: it can back it up and certify devices.
    let files = tempfile::tempdir().expect("temp dir");
    let backup = file_in(&files, "ada.key");
    succeeded(
        &with_passphrase(&ada, PASSPHRASE, &["key", "backup", &backup]),
        "key backup",
    );
    let list = ada.json(&["device", "list"]);
    let rows: &Vec<Value> = list.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["device"], me["author"]);
    assert_eq!(rows[0]["this_device"], true);
}

/// Exports everything `from` holds and imports it into `to` (extra import args after the file).
fn carry(
    from: &TestHome,
    to: &TestHome,
    dir: &tempfile::TempDir,
    name: &str,
    extra: &[&str],
) -> Value {
    let path = file_in(dir, name);
    from.ok(&["bundle", "export", &path]);
    let mut args = vec!["bundle", "import", path.as_str()];
    args.extend_from_slice(extra);
    args.push("--json");
    let out = to.run(&args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bundle import printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The design's `summary` as `to` shows it.
fn summary(home: &TestHome, design: &str) -> String {
    home.json(&["design", "show", design])["summary"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Links a new device to `person` with `device add NAME` and a bundle; returns it and its key.
fn link(
    person: &TestHome,
    commons: &str,
    name: &str,
    dir: &tempfile::TempDir,
) -> (TestHome, String) {
    let added = person.json(&["device", "add", name]);
    let code = added["code"].as_str().expect("a code").to_string();
    assert_eq!(code.len(), 23, "{added}");
    assert_eq!(code.split('-').map(str::len).collect::<Vec<_>>(), [5; 4]);
    assert_eq!(added["name"], name);
    assert_eq!(added["commons"][0], commons, "{added}");
    let device = TestHome::new();
    device.ok(&["init", "--link", &code, "--commons", commons]);
    assert!(device.path().join("device.link").exists());
    let imported = carry(
        person,
        &device,
        dir,
        &format!("to-{}.bundle", name.replace(' ', "-")),
        &[],
    );
    assert_eq!(imported["commons_joined"][0], commons, "{imported}");
    let key = added["device"].as_str().expect("device key").to_string();
    assert_eq!(device.json(&["whoami"])["author"], key.as_str());
    (device, key)
}

#[test]
fn a_device_linked_through_a_bundle_writes_as_its_person() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ada = TestHome::init("Ada");
    let person = ada.json(&["whoami"])["person"].clone();
    let commons = id(&ada.json(&["commons", "create", "Farm Hack tools"]));
    let design = id(&ada.json(&["design", "new", "Roller crimper", "--set", "summary=Crimps"]));
    // A code that is not one is refused before anything is written.
    let bad = TestHome::new();
    let error = bad.fail(&["init", "--link", "ABCDE-FGHIJ"]);
    assert!(error.contains("link code"), "{error}");
    assert!(bad.snapshot_files().is_empty());

    let (laptop, key) = link(&ada, &commons, "barn laptop", &dir);
    let me = laptop.json(&["whoami"]);
    assert_eq!(me["person"], person, "{me}");
    assert_eq!(me["device_name"], "barn laptop", "{me}");
    assert!(laptop.path().join("device.cert").exists());
    assert!(!laptop.path().join("device.link").exists());
    laptop.ok(&[
        "design",
        "edit",
        &design,
        "--set",
        "summary=Crimps rye flat",
    ]);
    let check = |home: &TestHome| {
        let history = home.json(&["design", "history", &design]);
        let last = history
            .as_array()
            .and_then(|h| h.last())
            .expect("rows")
            .clone();
        assert_eq!(last["author"], key.as_str(), "{history}");
        assert_eq!(last["person"], person, "{history}");
        assert_eq!(last["device_name"], "barn laptop", "{history}");
        assert_eq!(last["author_name"], "Ada", "{history}");
        let first = &history[0];
        assert_eq!(first["person"], person, "{history}");
        assert!(first["device_name"].is_null(), "{history}");
        let blame = home.json(&["design", "blame", &design, "summary"]);
        assert!(
            blame
                .as_array()
                .expect("spans")
                .iter()
                .any(|s| s["person"] == person
                    && s["device_name"] == "barn laptop"
                    && s["author"] == key.as_str()),
            "{blame}"
        );
    };
    check(&laptop);
    carry(&laptop, &ada, &dir, "back.bundle", &[]);
    assert_eq!(summary(&ada, &design), "Crimps rye flat");
    check(&ada);
    let devices = ada.json(&["device", "list"]);
    let names: Vec<&str> = devices
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert!(
        names.contains(&"barn laptop") && names.contains(&"person key"),
        "{devices}"
    );
    // A linked device holds no person key: it cannot certify others nor back the key up.
    let error = laptop.fail(&["device", "add", "tablet"]);
    assert!(error.contains("person key"), "{error}");
    let out = with_passphrase(
        &laptop,
        PASSPHRASE,
        &["key", "backup", &file_in(&dir, "l.key")],
    );
    assert!(!out.status.success());
    // Names are unique among a person's devices.
    let error = ada.fail(&["device", "add", "barn laptop"]);
    assert!(error.contains("already have"), "{error}");

    // A commons Ada made after the link: the laptop certifies itself when it joins.
    let second = id(&ada.json(&["commons", "create", "Seed savers"]));
    let cleaner = id(&ada.json(&["design", "new", "Seed cleaner", "--commons", &second]));
    carry(
        &ada,
        &laptop,
        &dir,
        "second.bundle",
        &["--commons", &second],
    );
    laptop.ok(&["design", "edit", &cleaner, "--set", "summary=Sieves"]);
    carry(&laptop, &ada, &dir, "second-back.bundle", &[]);
    let history = ada.json(&["design", "history", &cleaner]);
    let last = history
        .as_array()
        .and_then(|h| h.last())
        .expect("rows")
        .clone();
    assert_eq!(last["author"], key.as_str(), "{history}");
    assert_eq!(last["person"], person, "{history}");
    assert_eq!(last["device_name"], "barn laptop", "{history}");
}

#[test]
fn a_lost_device_revoked_from_another_device_has_its_later_changes_refused_by_a_third_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ada = TestHome::init("Ada");
    let commons = id(&ada.json(&["commons", "create", "Farm Hack tools"]));
    let design = id(&ada.json(&["design", "new", "Roller crimper", "--set", "summary=Crimps"]));
    let (phone, phone_key) = link(&ada, &commons, "phone", &dir);
    let (laptop, _) = link(&ada, &commons, "laptop", &dir);
    phone.ok(&[
        "design",
        "edit",
        &design,
        "--set",
        "summary=Before the loss",
    ]);
    carry(&phone, &laptop, &dir, "phone-to-laptop.bundle", &[]);
    assert_eq!(summary(&laptop, &design), "Before the loss");

    // The phone is lost. It cannot revoke itself; the laptop (a linked device) revokes it.
    let error = phone.fail(&["device", "revoke", "phone"]);
    assert!(error.contains("this device"), "{error}");
    let revoked = laptop.json(&["device", "revoke", "phone"]);
    assert_eq!(revoked["device"], phone_key.as_str(), "{revoked}");
    assert_eq!(revoked["commons"][0], commons.as_str(), "{revoked}");
    let listed = laptop.json(&["device", "list"]);
    let row = listed
        .as_array()
        .expect("rows")
        .iter()
        .find(|d| d["name"] == "phone")
        .expect("phone listed")
        .clone();
    assert_eq!(row["revoked"], true, "{listed}");
    // Whoever has the phone writes on, unaware.
    phone.ok(&["design", "edit", &design, "--set", "summary=Vandalised"]);

    // Bob, a third node, gets the laptop's view (with the revocation), then the phone's.
    let bob = TestHome::init("Bob");
    carry(
        &laptop,
        &bob,
        &dir,
        "laptop-to-bob.bundle",
        &["--commons", &commons],
    );
    assert_eq!(summary(&bob, &design), "Before the loss");
    let from_phone = carry(&phone, &bob, &dir, "phone-to-bob.bundle", &[]);
    assert!(
        !from_phone["rejected"]
            .as_array()
            .expect("rejected")
            .is_empty(),
        "the phone's later change must be refused: {from_phone}"
    );
    assert_eq!(summary(&bob, &design), "Before the loss");
    let history = bob.json(&["design", "history", &design]);
    assert_eq!(
        history
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["author"] == phone_key.as_str())
            .count(),
        1,
        "only the phone's change from before the revocation: {history}"
    );
    assert!(
        bob.run(&["verify"]).status.success(),
        "the store verifies clean"
    );
}

#[test]
fn a_restored_device_certifies_itself_in_the_commons_it_joins() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ada = TestHome::init("Ada");
    let person = ada.json(&["whoami"])["person"].clone();
    let commons = id(&ada.json(&["commons", "create", "Farm Hack tools"]));
    let design = id(&ada.json(&["design", "new", "Roller crimper", "--set", "summary=Crimps"]));
    let backup = file_in(&dir, "ada.key");
    succeeded(
        &with_passphrase(&ada, PASSPHRASE, &["key", "backup", &backup]),
        "key backup",
    );
    let phone = TestHome::new();
    succeeded(
        &with_passphrase(
            &phone,
            PASSPHRASE,
            &["init", "--restore", &backup, "--device-name", "new phone"],
        ),
        "init --restore",
    );
    let joined = carry(
        &ada,
        &phone,
        &dir,
        "to-phone.bundle",
        &["--commons", &commons],
    );
    assert_eq!(joined["commons_joined"][0], commons.as_str(), "{joined}");
    phone.ok(&["design", "edit", &design, "--set", "summary=Crimps rye"]);
    carry(&phone, &ada, &dir, "back.bundle", &[]);
    let history = ada.json(&["design", "history", &design]);
    let last = history
        .as_array()
        .and_then(|h| h.last())
        .expect("rows")
        .clone();
    assert_eq!(
        last["author"],
        phone.json(&["whoami"])["author"],
        "{history}"
    );
    assert_ne!(last["author"], person, "{history}");
    assert_eq!(last["person"], person, "{history}");
    assert_eq!(last["device_name"], "new phone", "{history}");
    assert_eq!(last["author_name"], "Ada", "{history}");
    // The restored device holds the person key: it certifies a further device itself.
    let added = phone.json(&["device", "add", "tablet"]);
    assert_eq!(added["commons"][0], commons.as_str(), "{added}");
}

#[test]
fn a_linked_device_gets_its_certificate_and_commons_by_sync_from_a_running_node() {
    use hedgerow_tests::net::ServeNode;
    let ada = TestHome::init("Ada");
    let person = ada.json(&["whoami"])["person"].clone();
    let commons = id(&ada.json(&["commons", "create", "Farm Hack tools"]));
    let design = id(&ada.json(&["design", "new", "Roller crimper"]));
    let ada = ServeNode::start(ada, &[]);
    // Through the running node: the certificate goes out with the node's next sync.
    let added = ada.home.json(&["device", "add", "barn laptop"]);
    let code = added["code"].as_str().expect("code").to_string();
    let laptop = TestHome::new();
    laptop.ok(&["init", "--link", &code, "--commons", &commons]);
    let synced = laptop.json(&["sync", "--peer", &ada.multiaddr(), "--linger", "1"]);
    assert_eq!(synced["complete"], true, "{synced}");
    let me = laptop.json(&["whoami"]);
    assert_eq!(me["person"], person, "{me}");
    assert_eq!(me["device_name"], "barn laptop", "{me}");
    laptop.ok(&["design", "edit", &design, "--set", "summary=From the barn"]);
    let history = laptop.json(&["design", "history", &design]);
    let last = history
        .as_array()
        .and_then(|h| h.last())
        .expect("rows")
        .clone();
    assert_eq!(last["person"], person, "{history}");
    assert_eq!(last["device_name"], "barn laptop", "{history}");
}

#[test]
fn a_revocation_reaches_a_commons_whose_charter_did_not_certify_the_device_yet() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ada = TestHome::init("Ada");
    let first = id(&ada.json(&["commons", "create", "Farm Hack tools"]));
    let (phone, phone_key) = link(&ada, &first, "phone", &dir);
    // A second commons, made after the phone was linked: its charter knows no phone.
    let second = id(&ada.json(&["commons", "create", "Seed savers"]));
    let design = id(&ada.json(&["design", "new", "Seed cleaner", "--commons", &second]));
    carry(&ada, &phone, &dir, "second.bundle", &["--commons", &second]);
    // Revoked from Ada's first device before Ada's node saw the phone in the second commons.
    let revoked = ada.json(&["device", "revoke", "phone"]);
    let mut named: Vec<&str> = revoked["commons"]
        .as_array()
        .expect("commons")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    named.sort_unstable();
    let mut both = vec![first.as_str(), second.as_str()];
    both.sort_unstable();
    assert_eq!(named, both, "{revoked}");
    // The phone, unaware, writes into the second commons as Ada's device.
    phone.ok(&["design", "edit", &design, "--set", "summary=Vandalised"]);
    let back = carry(&phone, &ada, &dir, "back.bundle", &[]);
    assert!(
        !back["rejected"].as_array().expect("rejected").is_empty(),
        "{back}"
    );
    let history = ada.json(&["design", "history", &design]);
    assert!(
        history
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| r["author"] != phone_key.as_str()),
        "{history}"
    );
}

#[test]
fn a_linked_device_writes_with_its_persons_role_in_a_stewarded_commons() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ada = TestHome::init("Ada");
    let person = ada.json(&["whoami"])["person"].clone();
    let commons = id(&ada.json(&["commons", "create", "Farm Hack tools", "--stewarded"]));
    let design = id(&ada.json(&["design", "new", "Roller crimper"]));
    let (laptop, _) = link(&ada, &commons, "barn laptop", &dir);
    laptop.ok(&["design", "edit", &design, "--set", "summary=From the barn"]);
    let back = carry(&laptop, &ada, &dir, "back.bundle", &[]);
    assert!(
        back["rejected"].as_array().expect("rejected").is_empty(),
        "the founder's device writes as the founder: {back}"
    );
    assert_eq!(summary(&ada, &design), "From the barn");
    let history = ada.json(&["design", "history", &design]);
    let last = history
        .as_array()
        .and_then(|h| h.last())
        .expect("rows")
        .clone();
    assert_eq!(last["person"], person, "{history}");
    // A stranger's node, which was given nothing, refuses nothing it never saw; a stranger who
    // only copies the laptop's changes into its own writes gets no role from them.
    let eve = TestHome::init("Eve");
    carry(&ada, &eve, &dir, "to-eve.bundle", &["--commons", &commons]);
    let error = eve.fail(&["design", "edit", &design, "--set", "summary=Eve was here"]);
    assert!(error.contains("not") || error.contains("member"), "{error}");
}

#[test]
fn a_third_node_syncing_from_a_revoked_device_takes_none_of_its_later_changes() {
    use hedgerow_tests::net::ServeNode;
    let dir = tempfile::tempdir().expect("temp dir");
    let ada = TestHome::init("Ada");
    let commons = id(&ada.json(&["commons", "create", "Farm Hack tools"]));
    let design = id(&ada.json(&["design", "new", "Roller crimper", "--set", "summary=Crimps"]));
    let (phone, phone_key) = link(&ada, &commons, "phone", &dir);
    phone.ok(&[
        "design",
        "edit",
        &design,
        "--set",
        "summary=Before the loss",
    ]);
    carry(&phone, &ada, &dir, "phone-to-ada.bundle", &[]);
    ada.json(&["device", "revoke", "phone"]);
    let bob = TestHome::init("Bob");
    carry(
        &ada,
        &bob,
        &dir,
        "ada-to-bob.bundle",
        &["--commons", &commons],
    );
    phone.ok(&["design", "edit", &design, "--set", "summary=Vandalised"]);
    // The phone's finder runs it as a node; Bob pulls from it.
    let phone = ServeNode::start(phone, &[]);
    let out = bob.run(&[
        "sync",
        "--peer",
        &phone.multiaddr(),
        "--linger",
        "1",
        "--json",
    ]);
    let synced: Value = serde_json::from_slice(&out.stdout).expect("sync --json");
    assert_eq!(synced["complete"], true, "{synced}");
    // Either Bob refused the phone's later change (and says why), or the phone's node had
    // pulled the revocation from Bob first and dropped that change itself: both are fine.
    let errors = synced["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .all(|e| e.to_string().contains("device-revoked")),
        "{synced}"
    );
    assert_eq!(out.status.success(), errors.is_empty(), "{synced}");
    assert_eq!(summary(&bob, &design), "Before the loss");
    let history = bob.json(&["design", "history", &design]);
    let from_phone = history
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["author"] == phone_key.as_str())
        .count();
    assert_eq!(from_phone, 1, "{history}");
    assert!(bob.run(&["verify"]).status.success());
}

/// Reads `child`'s output until it holds `wanted`; returns everything read so far.
fn read_until(out: &mut impl std::io::Read, seen: &mut Vec<u8>, wanted: &str) {
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(seen).contains(wanted) {
        let n = out.read(&mut buf).expect("read the terminal");
        assert!(
            n > 0,
            "the terminal closed before `{wanted}`: {}",
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn a_passphrase_asked_on_the_terminal_is_not_echoed() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let ada = TestHome::init("Ada");
    let dir = tempfile::tempdir().expect("temp dir");
    let backup = file_in(&dir, "ada.key");
    let command = format!(
        "'{}' --home '{}' key backup '{}'",
        hedgerow_tests::hedgerow_bin().display(),
        ada.path().display(),
        backup
    );
    // `script` gives the command a terminal of its own (util-linux, on every Debian).
    let Ok(mut child) = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("HEDGEROW_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        hedgerow_tests::skip::skip(
            "terminal passphrase",
            "no `script` command to make a terminal",
        );
        return;
    };
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    read_until(&mut stdout, &mut seen, "passphrase: ");
    stdin.write_all(b"typed on the terminal\n").expect("type");
    read_until(&mut stdout, &mut seen, "again: ");
    stdin.write_all(b"typed on the terminal\n").expect("type");
    read_until(&mut stdout, &mut seen, "wrote the person key");
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).expect("read");
    seen.extend_from_slice(&rest);
    assert!(child.wait().expect("wait").success());
    let screen = String::from_utf8_lossy(&seen);
    assert!(
        !screen.contains("typed on"),
        "the passphrase was echoed: {screen}"
    );
    let restored = TestHome::new();
    succeeded(
        &with_passphrase(
            &restored,
            "typed on the terminal",
            &["init", "--restore", &backup],
        ),
        "restore with the passphrase typed on the terminal",
    );
}
