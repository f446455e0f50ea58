//! Command-line arguments: the `hedgerow` command tree.

use clap::{Args, Parser, Subcommand};
use hedgerow_protocol::schema::{design, event, note};
use std::path::PathBuf;

/// The fields, lists and examples under `design new/edit --help`.
fn design_help() -> String {
    format!(
        "Fields (--set FIELD=VALUE, --unset FIELD; text fields also --append, --text-file, --stdin):
  name, summary, problem, how_it_works, intended_use (texts)
  stage: {}
  licence.hardware, licence.documentation, licence.software: SPDX, e.g. CERN-OHL-S-2.0
  licensor, documentation_language, version, derivative_of (a design id), variant_of,
  user_manual, safety (texts), build_facts.workshop_days, build_facts.participants,
  build_facts.weight_kg, build_facts.special_tooling, build_facts.prerequisites, external_ids.SITE
Lists (--add FIELD=ITEM, --remove FIELD=ITEM): tools, skills; tags with --tag/--untag
Build steps, bill of materials, parts, contributors, related designs: their own flags above.

Examples:
  hedgerow design new \"Roller crimper\" --set summary=\"Crimps a cover crop flat\" \\
      --set stage=prototype --set licence.hardware=CERN-OHL-S-2.0 --tag no-till \\
      --bom-line \"steel tube 406 mm;1;pcs;scrap yard\" --step \"Cut the tube to 1.6 m\"
  hedgerow design edit ID --edit-step \"1=Cut the tube to 1.5 m\" --stdin how_it_works < notes.md
  hedgerow design edit ID --add tools=\"angle grinder\" --contributor \"Ada Farmer:welding\"",
        design::STAGES.join(", ")
    )
}

/// The fields, lists and examples under `event new/edit --help`.
fn event_help() -> String {
    format!(
        "Fields (--set FIELD=VALUE, --unset FIELD; text fields also --append, --text-file, --stdin):
  title; summary, description (texts)
  kind: {}
  start, end: a date, 2026-03-14, or a date and time, 2026-03-14T09:30
  location.name, location.address, location.country, location.lat, location.lon
  status: {}
Lists (--add FIELD=ITEM, --remove FIELD=ITEM):
  activities ({}), organisers, topics, designs (design ids built or worked on there)
Outcomes (--outcome KIND[:DETAIL]): {}

Examples:
  hedgerow event new \"Build day\" --set start=2026-03-14 --set end=2026-03-15 \\
      --set location.name=\"Ferme des Chênes\" --set kind=build --add designs=DESIGN-ID
  hedgerow event edit ID --set status=done --outcome \"units-built:3 rollers\"
  hedgerow note add --on ID --kind build-log --text \"Built two drums\"",
        event::EVENT_KINDS.join(", "),
        event::EVENT_STATUSES.join(", "),
        event::ACTIVITIES.join(", "),
        event::OUTCOME_KINDS.join(", ")
    )
}

/// The kinds and examples under `note add/edit --help`.
fn note_help() -> String {
    format!(
        "Kinds (--kind): {}

Examples:
  hedgerow note add --on EVENT-ID --kind build-log --text \"Built two drums\"
  hedgerow note add --on DESIGN-ID --kind question --file question.md
  hedgerow note edit NOTE-ID --append \" Drum two needs a new bearing.\"
  hedgerow note list --on EVENT-ID",
        note::NOTE_KINDS.join(", ")
    )
}

/// Hedgerow: a peer-to-peer node for open farm-tool design commons.
#[derive(Debug, Parser)]
#[command(name = "hedgerow", version, about, long_about = None)]
pub struct Cli {
    /// The node's home directory (key, store, control socket); default: $HEDGEROW_HOME when
    /// set and not empty, else the platform's data directory.
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this device's key and home: a new person, or (--restore, --link) another device of yours.
    Init {
        /// Your display name, signed into your profile in each commons (needed for a new person).
        #[arg(long)]
        name: Option<String>,
        /// Where you are (optional).
        #[arg(long, default_value = "")]
        location: String,
        /// A few words about you (optional).
        #[arg(long, default_value = "")]
        bio: String,
        /// Restore your person key from a `hedgerow key backup` file, as a new device of yours
        /// (passphrase from HEDGEROW_PASSPHRASE or the terminal).
        #[arg(long, value_name = "FILE", conflicts_with = "link")]
        restore: Option<PathBuf>,
        /// Become a device of the person whose other device printed this code (`hedgerow device add`).
        #[arg(long, value_name = "CODE")]
        link: Option<String>,
        /// This device's name in its certificate (with --restore).
        #[arg(long, value_name = "NAME", requires = "restore")]
        device_name: Option<String>,
        /// With --link: a commons of yours to replicate (its id); repeat for several.
        #[arg(long = "commons", value_name = "ID", requires = "link")]
        commons: Vec<String>,
    },
    /// Back up your person key, sealed under a passphrase.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Your devices: add (link code), list, revoke.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Show this device's identity: author key and profile, and the node's network peer id.
    Whoami(JsonFlag),
    /// Create, list and show commons; invite people and give them roles.
    #[command(subcommand)]
    Commons(CommonsCommand),
    /// Moderate a stewarded commons: hide documents, block people, read the log.
    #[command(subcommand)]
    Moderate(ModerateCommand),
    /// Work on tool designs.
    #[command(subcommand)]
    Design(DesignCommand),
    /// Work on events (build days, workshops, hackathons).
    #[command(subcommand)]
    Event(EventCommand),
    /// Notes on designs and events.
    #[command(subcommand)]
    Note(NoteCommand),
    /// Your profile in every commons: name, location, bio.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Carry signed changes on a USB stick: export a bundle, write a summary, import a bundle.
    #[command(subcommand)]
    Bundle(crate::bundle::BundleCommand),
    /// Move a damaged store aside and rebuild it from the journal and what can still be read.
    Repair(JsonFlag),
    /// Re-check every signature, hash and cached document; non-zero exit on any problem.
    Verify {
        /// Rewrite cached documents and indexes from the signed changes.
        #[arg(long)]
        rebuild: bool,
        /// Check attachment files by size only instead of re-hashing every byte.
        #[arg(long)]
        quick: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Run the node: listen, discover peers, sync and relay, serve the CLI over the control socket.
    Serve(ServeArgs),
    /// One catch-up sync with one peer, then exit (for a cron job on a farm whose link is up an hour a day).
    Sync {
        /// The peer, e.g. /ip4/192.0.2.7/tcp/4717/p2p/12D3KooW...
        #[arg(long, value_name = "MULTIADDR")]
        peer: String,
        /// Seconds to keep answering the peer's own pulls after ours finished.
        #[arg(long, default_value_t = 2)]
        linger: u64,
        /// Seconds the connection (dial and handshakes) may take before the sync fails; the
        /// default allows for slow rural and satellite links.
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        connect_timeout: u64,
        /// Seconds the whole sync may take; then it stops and reports what it got (kept: the
        /// next sync fetches only the rest).
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        deadline: u64,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// State of the running node: addresses, peers, commons, sync state, counters.
    Status(JsonFlag),
    /// Run a scripted demo in a fresh temporary home: a commons, a design, a fork, an event with notes, and their signed history.
    Demo {
        /// Keep the demo home here instead of a temporary directory.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
    /// This node's own block list and hidden documents (`block`, `unblock`, `hide`, `unhide`,
    /// `blocks`, `purge`).
    #[command(flatten)]
    Local(crate::local_blocks::LocalCommand),
    /// Remove attached files no document or release refers to any more, and unfinished downloads.
    Gc(JsonFlag),
    /// Fetch a design's files from peers, through the running node (`hedgerow serve`).
    Fetch {
        /// Design id or prefix.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Always fetch a design's files (e.g. the tools this farm is building), whenever a peer has them.
    Pin {
        /// Design id or prefix.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Stop always fetching a design's files (those already here stay until `hedgerow gc`).
    Unpin {
        /// Design id or prefix.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The designs whose files this node always fetches.
    Pins(JsonFlag),
    /// The node's settings (HOME/config.toml, HEDGEROW_<KEY> variables): show them, set one.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (hedgerow.1 and one per subcommand) to a directory, or hedgerow.1 to standard output.
    Man {
        /// The directory to write them to.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Take designs in from other formats (Open Know-How manifests, ...).
    #[command(subcommand)]
    Import(ImportCommand),
    /// Give designs out in other formats (Open Know-How manifests, ...).
    #[command(subcommand)]
    Export(ExportCommand),
    /// The peers this node knows, how each was found (configured, mdns, dht, incoming, identify)
    /// and whether it is connected; `peers add|remove ADDR` edits the bootstrap list.
    Peers {
        #[command(subcommand)]
        command: Option<crate::peers::PeersCommand>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `hedgerow config` commands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Every setting with its value and where it comes from (flag-free: file, environment, default).
    Show(JsonFlag),
    /// Set one setting in HOME/config.toml (checked before the file is written, atomically).
    Set {
        /// The key, e.g. sync_interval, peers, files.max_file_bytes, fetch.commons.COMMONS-ID.
        key: String,
        /// The value: a number, true/false, text, or a list as a,b or ["a", "b"].
        value: String,
    },
}

/// `hedgerow import FORMAT ...`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// OKH manifests (okh.toml, okh.yml) or hardware repositories holding one at their root.
    Okh(crate::interop_okh::ImportOkhArgs),
    /// Farm Hack tool pages (a JSON scrape of farmhack.org) as designs; comments as notes.
    Farmhack(crate::interop_farm::FarmhackArgs),
    /// farmOS equipment (its asset CSV export): link rows to designs as "built" records.
    FarmosEquipment(crate::interop_farm::FarmosArgs),
}

/// `hedgerow export FORMAT ...`.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// A design as an OKH manifest (OKH-LOSH okh.toml, or OKH v1 okh.yml).
    Okh(crate::interop_okh::ExportOkhArgs),
    /// A document in automerge's own saved format, any automerge program loads it; its signatures beside it.
    Automerge(crate::interop_farm::AutomergeArgs),
}

/// Person key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write the person key to a new FILE, sealed under a passphrase (from HEDGEROW_PASSPHRASE
    /// or asked on the terminal); `hedgerow init --restore FILE` brings it back on a new device.
    Backup {
        /// The backup file to write (never replaced if it exists).
        file: PathBuf,
    },
}

/// Device commands.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Certify a new device of yours and print the one-time code `hedgerow init --link` takes on it.
    Add {
        /// The new device's name, e.g. "barn laptop" (at most 64 bytes).
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Your devices, as the charters of your commons certify them.
    List(JsonFlag),
    /// Revoke a lost device of yours: its changes beyond what this node has seen are refused everywhere.
    Revoke {
        /// The device's name (or its key).
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// Options of `hedgerow serve`.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Listen address (repeatable); default TCP and QUIC on port 4717 on all interfaces.
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// Peer to keep connected to (repeatable); also read from config.json in the home.
    #[arg(long, value_name = "MULTIADDR")]
    pub peer: Vec<String>,
    /// Turn off mDNS discovery on the local network.
    #[arg(long)]
    pub no_mdns: bool,
    /// Seconds between catch-up syncs with connected peers [default: 60].
    #[arg(long)]
    pub sync_interval: Option<u64>,
    /// Most connections one IP address may hold open at once (a PeerId costs nothing, an
    /// address does); raise it for a hub many peers reach through one NAT [default: 64].
    #[arg(long)]
    pub max_connections_per_ip: Option<usize>,
    /// Serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Log lines as human text or one JSON object each (RUST_LOG or HEDGEROW_LOG filter them).
    #[arg(long, value_name = "FORMAT", value_parser = ["human", "json"])]
    pub log_format: Option<String>,
    /// Serve the web page at ADDR too (alone: 127.0.0.1:4718, this machine only; 0.0.0.0:4718
    /// lets phones on the local network in).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = hedgerow_node::web::DEFAULT_WEB_ADDR)]
    pub web: Option<String>,
    /// Serve the web page with no write endpoint (a public hub): `--web-read-only` alone uses
    /// --web's default address.
    #[arg(long)]
    pub web_read_only: bool,
    /// Serve as a circuit relay for nodes behind NAT (a hub with a reachable address).
    #[arg(long)]
    pub relay: bool,
    /// With --relay: relayed circuits open through this hub at once [default: 32].
    #[arg(long, value_name = "N")]
    pub relay_max_circuits: Option<u64>,
    /// With --relay: relayed circuits one peer may have open at once [default: 4].
    #[arg(long, value_name = "N")]
    pub relay_max_circuits_per_peer: Option<u64>,
    /// With --relay: bytes one circuit may carry before it is closed [default: 67108864].
    #[arg(long, value_name = "BYTES")]
    pub relay_max_circuit_bytes: Option<u64>,
    /// With --relay: seconds one circuit may stay open [default: 1800].
    #[arg(long, value_name = "SECS")]
    pub relay_max_circuit_secs: Option<u64>,
    /// Do not ask the router for port mappings with UPnP (it multicasts on the local network).
    #[arg(long)]
    pub no_upnp: bool,
    /// Cap what the node sends, and separately what it receives, across all connections:
    /// 32kbit, 2Mbit (bits per second) or 4KB (bytes per second); turns QUIC off.
    #[arg(long, value_name = "RATE")]
    pub max_rate: Option<String>,
    /// Hours of local time for bulk sync (initial syncs, big catch-ups, attachments), e.g.
    /// 01:00-05:00 (may wrap midnight); live changes and small catch-ups flow at any hour.
    #[arg(long, value_name = "HH:MM-HH:MM")]
    pub sync_window: Option<String>,
}

/// `--json` output switch.
#[derive(Debug, Args, Clone, Copy)]
pub struct JsonFlag {
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// Selects a commons.
#[derive(Debug, Args, Clone)]
pub struct CommonsFlag {
    /// Commons name, id or a prefix of 4+ characters; needed when the node holds several and
    /// no id given names one.
    #[arg(long, value_name = "NAME|ID")]
    pub commons: Option<String>,
}

/// Commons commands.
#[derive(Debug, Subcommand)]
pub enum CommonsCommand {
    /// Create a commons; prints its id.
    Create {
        /// Its name.
        name: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Only members write (you are its first steward); open to anyone otherwise.
        #[arg(long)]
        stewarded: bool,
        /// With --stewarded: served to members only.
        #[arg(long, requires = "stewarded")]
        private: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Print an invitation code to a stewarded commons.
    Invite {
        #[command(flatten)]
        commons: CommonsFlag,
        /// The role it grants: guest (notes only), member or steward.
        #[arg(long, default_value = "member")]
        role: String,
        /// How many people may redeem it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it stays valid: 7d, 24h, 30m...
        #[arg(long, default_value = "7d")]
        expires: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Join a stewarded commons with an invitation code (works offline).
    Accept {
        /// The `hri1...` code.
        code: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List the members of a stewarded commons with their roles and devices.
    Members {
        #[command(flatten)]
        commons: CommonsFlag,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Give a person a role (guest, member, steward), adding them if needed.
    Role {
        /// Their author key or a unique prefix.
        person: String,
        /// guest, member or steward.
        role: String,
        #[command(flatten)]
        commons: CommonsFlag,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove a person from a stewarded commons (what you hold of theirs stays).
    Remove {
        /// Their author key or a unique prefix.
        person: String,
        #[command(flatten)]
        commons: CommonsFlag,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List the commons this node holds.
    List(JsonFlag),
    /// Show one commons.
    Show {
        /// Commons name, id or prefix.
        id: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Join a commons by its id: replicate it (it arrives from the next peer that has it) and
    /// publish your profile (name, location, bio) there.
    Join {
        /// The full commons id (a name or a prefix names only a commons already held).
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// Moderation commands (stewards of a stewarded commons).
#[derive(Debug, Subcommand)]
pub enum ModerateCommand {
    /// Hide a document from every node of its commons.
    Hide {
        /// Document id or prefix.
        id: String,
        /// Why, shown to whoever tries to read it.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show a hidden document again.
    Unhide {
        /// Document id or prefix.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Refuse a person's new changes in the commons.
    Block {
        /// Their author key or a unique prefix.
        person: String,
        #[command(flatten)]
        commons: CommonsFlag,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Lift a block.
    Unblock {
        /// Their author key or a unique prefix.
        person: String,
        #[command(flatten)]
        commons: CommonsFlag,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove a document hidden by a steward (or on this node, or retracted) from this node's
    /// store for good; it is never taken in again. The same as `hedgerow purge ID`.
    Purge {
        /// Document id or prefix.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Every charter operation (roles, invitations, moderation) and what became of it.
    Log {
        #[command(flatten)]
        commons: CommonsFlag,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// Field edits shared by designs, events and notes.
#[derive(Debug, Args, Clone, Default)]
pub struct EditArgs {
    /// Set a field: `summary=...`, `stage=prototype`, `licence.hardware=CERN-OHL-S-2.0`, `build_facts.weight_kg=420`; on a text field, replaces its text.
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// Remove a field's value.
    #[arg(long = "unset", value_name = "FIELD")]
    pub unset: Vec<String>,
    /// Replace a text field with the content of a file: `how_it_works=notes.md`.
    #[arg(long = "text-file", value_name = "FIELD=PATH")]
    pub text_file: Vec<String>,
    /// Replace a text field with what is read from standard input.
    #[arg(long = "stdin", value_name = "FIELD")]
    pub stdin: Option<String>,
    /// Append to a text field: `summary= More text.`
    #[arg(long = "append", value_name = "FIELD=TEXT")]
    pub append: Vec<String>,
    /// Add a tag.
    #[arg(long = "tag", value_name = "TAG")]
    pub tag: Vec<String>,
    /// Remove a tag.
    #[arg(long = "untag", value_name = "TAG")]
    pub untag: Vec<String>,
    /// Add an item to a list field: `tools=angle grinder`, `skills=welding`.
    #[arg(long = "add", value_name = "FIELD=ITEM")]
    pub add: Vec<String>,
    /// Remove an item from a list field.
    #[arg(long = "remove", value_name = "FIELD=ITEM")]
    pub remove: Vec<String>,
    /// Add a build step at the end.
    #[arg(long = "step", value_name = "TEXT")]
    pub step: Vec<String>,
    /// Rewrite build step N: `3=Weld the frame`.
    #[arg(long = "edit-step", value_name = "N=TEXT")]
    pub edit_step: Vec<String>,
    /// Remove build step N.
    #[arg(long = "remove-step", value_name = "N")]
    pub remove_step: Vec<usize>,
    /// Move a build step: `5=2` moves step 5 to position 2.
    #[arg(long = "move-step", value_name = "FROM=TO")]
    pub move_step: Vec<String>,
    /// Add a bill-of-materials line: `name;quantity;unit;sourcing;reference`.
    #[arg(long = "bom-line", value_name = "LINE")]
    pub bom_line: Vec<String>,
    /// Rewrite bill-of-materials line N in place: `2=steel tube 406 mm;2;pcs;scrap yard`
    /// (parts left out are cleared).
    #[arg(long = "edit-bom-line", value_name = "N=LINE")]
    pub edit_bom_line: Vec<String>,
    /// Remove bill-of-materials line N.
    #[arg(long = "remove-bom-line", value_name = "N")]
    pub remove_bom_line: Vec<usize>,
    /// Add a part: `name;material;quantity`.
    #[arg(long = "part", value_name = "PART")]
    pub part: Vec<String>,
    /// Credit a contributor: `NAME` or `NAME:ROLE`.
    #[arg(long = "contributor", value_name = "NAME[:ROLE]")]
    pub contributor: Vec<String>,
    /// Link a related design: `component=ID`, `assembly=ID`, `branch=ID`, `merge=ID`.
    #[arg(long = "related", value_name = "KIND=ID")]
    pub related: Vec<String>,
    /// Record an event outcome: `new-design:ID`, `units-built:3 rollers`.
    #[arg(long = "outcome", value_name = "KIND[:DETAIL]")]
    pub outcome: Vec<String>,
    /// Record that you have built this design, optionally where.
    #[arg(long = "built", value_name = "PLACE", num_args = 0..=1, default_missing_value = "")]
    pub built: Option<String>,
}

/// Design commands.
#[derive(Debug, Subcommand)]
pub enum DesignCommand {
    /// Create a design; prints its id.
    #[command(after_help = design_help(), mut_arg("outcome", |a| a.hide(true)))]
    New {
        /// The design's name.
        name: String,
        #[command(flatten)]
        commons: CommonsFlag,
        #[command(flatten)]
        edits: EditArgs,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Edit a design: all flags become one signed change.
    #[command(after_help = design_help(), mut_arg("outcome", |a| a.hide(true)))]
    Edit {
        /// Design id, prefix or exact name.
        id: String,
        #[command(flatten)]
        edits: EditArgs,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show a design, or one of its releases.
    Show {
        /// Design id, prefix or exact name.
        id: String,
        /// Show the design as it was released under this version.
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List designs, or those a search and filters keep (all must hold).
    List {
        #[command(flatten)]
        commons: CommonsFlag,
        #[command(flatten)]
        search: SearchArgs,
        /// Only designs at this stage: idea, concept, prototype, functional-prototype,
        /// production-ready, in-use, commercial.
        #[arg(long, value_name = "STAGE")]
        stage: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Every signed change of a design.
    History(HistoryArgs),
    /// Who last wrote each part of a field.
    Blame(BlameArgs),
    /// A printable plan of a design (to standard output, or --out FILE): markdown, or html
    /// laid out for paper.
    Export {
        /// Design id or prefix.
        id: String,
        /// markdown or html (any case).
        #[arg(long, default_value = "markdown", value_parser = ["markdown", "md", "html"], ignore_case = true)]
        format: String,
        /// Print the design as released under this version.
        #[arg(long)]
        version: Option<String>,
        /// Write the plan to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// With --out: replace the file if it exists.
        #[arg(long, requires = "out")]
        force: bool,
        /// Print JSON: the plan's contents, or with --out what was written.
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Make a derivative design whose history starts from this one.
    Fork {
        /// Parent design id or prefix.
        id: String,
        /// Name of the fork.
        #[arg(long)]
        name: Option<String>,
        /// Change a licence in the fork: `hardware=CERN-OHL-S-2.0`.
        #[arg(long = "licence", value_name = "PART=SPDX")]
        licence: Vec<String>,
        /// Allow relicensing a share-alike design to an incompatible licence.
        #[arg(long)]
        allow_relicense: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Ancestors and known derivatives of a design.
    Lineage {
        /// Design id, prefix or exact name.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Freeze the design's current state under a version name.
    Release {
        /// Design id, prefix or exact name.
        id: String,
        /// The version: 1 to 64 bytes without spaces, e.g. `1.0`, `5.6`, `v2-beta`.
        #[arg(long)]
        version: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Withdraw a design you created: every node hides it (written into the commons' charter).
    Retract {
        /// Design id, prefix or exact name.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Attach a file (drawing, photo, plan, CAD, BOM sheet, manual) to a design or one of its steps.
    Attach(crate::files::AttachArgs),
    /// List a design's files (or those of a release).
    Files(crate::files::FilesArgs),
    /// Write one of a design's files to standard output or --out PATH.
    File(crate::files::FileArgs),
    /// Remove a file from a design (its bytes stay until `hedgerow gc`).
    Detach(crate::files::DetachArgs),
    /// Open conflicts: fields that concurrent edits changed in overlapping ways (all designs when no ID).
    Conflicts(ConflictsArgs),
    /// Settle a conflict on one field with a signed change: take one side's version, or write new text.
    Resolve(ResolveArgs),
    /// Record that you built this design, optionally as a farmOS equipment asset.
    Built(crate::interop_farm::BuiltArgs),
}

/// Event commands.
#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Create an event; prints its id.
    #[command(
        after_help = event_help(),
        mut_arg("set", |a| a.help("Set a field: `start=2026-03-14`, `location.name=Ferme des Chênes`, `kind=build`; on a text field, replaces its text")),
        mut_arg("text_file", |a| a.help("Replace a text field with the content of a file: `description=programme.md`")),
        mut_arg("append", |a| a.help("Append to a text field: `description= Bring gloves.`")),
        mut_arg("add", |a| a.help("Add an item to a list field: `designs=ID`, `topics=soil`, `organisers=Ada`, `activities=build`")),
        mut_arg("step", |a| a.hide(true)),
        mut_arg("edit_step", |a| a.hide(true)),
        mut_arg("remove_step", |a| a.hide(true)),
        mut_arg("move_step", |a| a.hide(true)),
        mut_arg("bom_line", |a| a.hide(true)),
        mut_arg("remove_bom_line", |a| a.hide(true)),
        mut_arg("edit_bom_line", |a| a.hide(true)),
        mut_arg("part", |a| a.hide(true)),
        mut_arg("contributor", |a| a.hide(true)),
        mut_arg("related", |a| a.hide(true)),
        mut_arg("built", |a| a.hide(true)),
    )]
    New {
        /// The event's title.
        title: String,
        #[command(flatten)]
        commons: CommonsFlag,
        #[command(flatten)]
        edits: EditArgs,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Edit an event: all flags become one signed change.
    #[command(
        after_help = event_help(),
        mut_arg("set", |a| a.help("Set a field: `start=2026-03-14`, `location.name=Ferme des Chênes`, `kind=build`; on a text field, replaces its text")),
        mut_arg("text_file", |a| a.help("Replace a text field with the content of a file: `description=programme.md`")),
        mut_arg("append", |a| a.help("Append to a text field: `description= Bring gloves.`")),
        mut_arg("add", |a| a.help("Add an item to a list field: `designs=ID`, `topics=soil`, `organisers=Ada`, `activities=build`")),
        mut_arg("step", |a| a.hide(true)),
        mut_arg("edit_step", |a| a.hide(true)),
        mut_arg("remove_step", |a| a.hide(true)),
        mut_arg("move_step", |a| a.hide(true)),
        mut_arg("bom_line", |a| a.hide(true)),
        mut_arg("remove_bom_line", |a| a.hide(true)),
        mut_arg("edit_bom_line", |a| a.hide(true)),
        mut_arg("part", |a| a.hide(true)),
        mut_arg("contributor", |a| a.hide(true)),
        mut_arg("related", |a| a.hide(true)),
        mut_arg("built", |a| a.hide(true)),
    )]
    Edit {
        /// Event id, prefix or exact title.
        id: String,
        #[command(flatten)]
        edits: EditArgs,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show an event.
    Show {
        /// Event id, prefix or exact title.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List events, or those a search and tags keep.
    List {
        #[command(flatten)]
        commons: CommonsFlag,
        #[command(flatten)]
        search: SearchArgs,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Every signed change of an event.
    History(HistoryArgs),
    /// Who last wrote each part of an event's field.
    Blame(BlameArgs),
    /// Withdraw an event you created: every node hides it (written into the commons' charter).
    Retract {
        /// Event id, prefix or exact title.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Open conflicts: fields that concurrent edits changed in overlapping ways (all events when no ID).
    Conflicts(ConflictsArgs),
    /// Settle a conflict on one field with a signed change: take one side's version, or write new text.
    Resolve(ResolveArgs),
}

/// Note commands.
#[derive(Debug, Subcommand)]
pub enum NoteCommand {
    /// Add a note to a design or event; the text comes from --text, --file or standard input.
    #[command(after_help = note_help())]
    Add {
        /// The design or event the note belongs to (with --reply-to: that note's).
        #[arg(long, value_name = "ID", required_unless_present = "reply_to")]
        on: Option<String>,
        /// Answer this note: the reply goes on the same design or event.
        #[arg(long, value_name = "NOTE-ID")]
        reply_to: Option<String>,
        /// brainstorm, build-log, need-statement, decision, question, chronicle or comment.
        #[arg(long, default_value = "comment")]
        kind: String,
        /// The note's text.
        #[arg(long, conflicts_with = "file")]
        text: Option<String>,
        /// Read the note's text from a file.
        #[arg(long)]
        file: Option<PathBuf>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Rewrite a note's text (from --text, --file or standard input), or append to it.
    #[command(after_help = note_help())]
    Edit {
        /// Note id or prefix.
        id: String,
        /// New text.
        #[arg(long, conflicts_with_all = ["file", "append"])]
        text: Option<String>,
        /// Read the new text from a file.
        #[arg(long, conflicts_with = "append")]
        file: Option<PathBuf>,
        /// Append this text instead of replacing.
        #[arg(long)]
        append: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show a note.
    Show {
        /// Note id or prefix.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List notes, optionally only those on one design or event.
    List {
        /// Only notes on this design or event.
        #[arg(long, value_name = "ID")]
        on: Option<String>,
        #[command(flatten)]
        commons: CommonsFlag,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Withdraw a note you wrote: every node hides it (written into the commons' charter).
    Retract {
        /// Note id or prefix.
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Attach a file (a photo of the build, a sketch) to a note.
    Attach(crate::files::AttachArgs),
    /// List a note's files.
    Files(crate::files::FilesArgs),
    /// Write one of a note's files to standard output or --out PATH.
    File(crate::files::FileArgs),
    /// Remove a file from a note (its bytes stay until `hedgerow gc`).
    Detach(crate::files::DetachArgs),
    /// Open conflicts: fields that concurrent edits changed in overlapping ways (all notes when no ID).
    Conflicts(ConflictsArgs),
    /// Settle a conflict on one field with a signed change: take one side's version, or write new text.
    Resolve(ResolveArgs),
    /// Every signed change of a note.
    History(HistoryArgs),
    /// Who wrote each part of a note (its body unless a field is named).
    Blame {
        /// Note id or prefix.
        id: String,
        /// The field: `body` (the default), `tags`, `kind`...
        #[arg(default_value = "body")]
        field: String,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// `history` of a design, event or note.
#[derive(Debug, Args, Clone)]
pub struct HistoryArgs {
    /// Id, prefix or exact name.
    pub id: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// `blame` of a design's or event's field.
#[derive(Debug, Args, Clone)]
pub struct BlameArgs {
    /// Id, prefix or exact name.
    pub id: String,
    /// The field, e.g. `summary`, `steps`, `steps.2`, `name`, `title`.
    pub field: String,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// Search and tag filters of `design list` and `event list`.
#[derive(Debug, Args, Clone, Default)]
pub struct SearchArgs {
    /// Only those carrying this tag (repeat for several; `No-Till`, `no till` and `no-till`
    /// match alike).
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Only those whose name or title, summary or build steps (an event's description)
    /// contain this text, in any case; the output says where it was found.
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
}

/// Profile commands.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Change your display name, location or bio, here and in every commons you hold.
    Edit {
        /// `name=Ada Farmer`, `location=Wales`, `bio=Builds rollers` (empty clears location or bio).
        #[arg(long = "set", value_name = "FIELD=VALUE", required = true)]
        set: Vec<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

/// Options of `design/event/note conflicts`.
#[derive(Debug, Args, Clone)]
pub struct ConflictsArgs {
    /// Document id or prefix; every document of the kind in the commons when absent.
    pub id: Option<String>,
    #[command(flatten)]
    pub commons: CommonsFlag,
    #[command(flatten)]
    pub json: JsonFlag,
}

/// Options of `design/event/note resolve`.
#[derive(Debug, Args, Clone)]
pub struct ResolveArgs {
    /// Document id or prefix.
    pub id: String,
    /// The field in conflict, as `conflicts` or `show` names it: `stage`, `steps.2`, `body`.
    pub field: String,
    /// Keep the version of the side whose change starts with these hex digits.
    #[arg(
        long,
        value_name = "CHANGE",
        required_unless_present = "text",
        conflicts_with = "text"
    )]
    pub take: Option<String>,
    /// Write this text (or value) instead of either side's.
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,
    #[command(flatten)]
    pub json: JsonFlag,
}
