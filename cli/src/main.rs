//! The `hedgerow` binary: parses arguments, sends one request to the node
//! (a running `serve` over the control socket, or the store opened directly),
//! and prints the result. No logic of its own beyond that.

mod args;
mod bundle;
mod demo;
mod edits;
mod fetch;
mod files;
mod hint;
mod keys;
mod local_blocks;
mod network;
mod output;

use anyhow::{anyhow, Context, Result};
use args::{
    Cli, Command, CommonsCommand, DesignCommand, DeviceCommand, EventCommand, KeyCommand,
    ModerateCommand, NoteCommand,
};
use clap::Parser;
use hedgerow_node::api::{execute, NodeRequest, Request};
use hedgerow_node::control::{self, ControlError, ControlReply, NodeRefusal};
use hedgerow_node::error_kind::ErrorKind;
use hedgerow_node::home::{control_socket_path, serve_announced, Home};
use hedgerow_node::Replicas;
use hedgerow_protocol::schema::{DocKind, Edit};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    // Behave like other Unix tools when the reader of our output goes away (`hedgerow ... | head`).
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HEDGEROW_LOG")
                // sled logs its own ERROR line (file offsets, a backtrace) before returning an
                // error that the store names in words; the user gets only the latter.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sled=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    files::install_progress();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            let mut line = one_line(&error);
            if let Some(hint) = hint::hint(&error) {
                line.push_str("; ");
                line.push_str(&hint);
            }
            eprintln!("error: {}", output::line(&line));
            ExitCode::FAILURE
        }
    }
}

/// The outermost context, then each cause not already spelled out by the message before it.
///
/// Many library errors include their cause in their own message (so the text sent
/// over the control socket is complete); printing the chain as is would repeat it.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

/// How a result is printed.
#[derive(Clone, Copy)]
enum Print {
    Json,
    Id,
    Document,
    DocList,
    History,
    Blame,
    Commons,
    CommonsList,
    Lineage,
    Verify,
    Whoami,
    Edited,
    Status,
    DeviceAdded,
    Devices,
    DeviceRevoked,
    Invite,
    Accepted,
    Members,
    Charter,
    ModLog,
}

fn home_path(cli_home: &Option<PathBuf>) -> PathBuf {
    cli_home.clone().unwrap_or_else(Home::default_path)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let home = home_path(&cli.home);
    let (request, print, json) = match cli.command {
        Command::Init {
            name,
            location,
            bio,
            restore,
            link,
            device_name,
            commons,
        } => {
            let args = keys::InitArgs {
                name,
                location,
                bio,
                restore,
                link,
                device_name,
                commons,
            };
            return keys::init(&home, args);
        }
        Command::Key(KeyCommand::Backup { file }) => return keys::backup(&home, &file),
        Command::Device(c) => device_request(c),
        Command::Demo { keep } => return demo::run(keep.as_deref()),
        Command::Bundle(c) => return bundle::run(&home, c),
        Command::Local(c) => return local_blocks::run(&home, c),
        Command::Serve(args) => return network::serve(&home, args),
        Command::Sync { peer, linger, json } => {
            return network::sync(&home, &peer, linger, json.json)
        }
        Command::Repair(j) => return repair(&home, j.json),
        Command::Status(j) => return print_reply(status(&home)?, Print::Status, j.json),
        Command::Whoami(j) => (Request::Whoami, Print::Whoami, j.json),
        Command::Verify {
            rebuild,
            quick,
            json,
        } => (Request::Verify { rebuild, quick }, Print::Verify, json.json),
        Command::Gc(j) => return files::gc(&home, j.json),
        Command::Fetch { id, json } => return fetch::fetch(&home, &id, json.json),
        Command::Pin { id, json } => return fetch::pins(&home, Request::Pin { id }, json.json),
        Command::Unpin { id, json } => return fetch::pins(&home, Request::Unpin { id }, json.json),
        Command::Pins(j) => return fetch::pins(&home, Request::Pins, j.json),
        Command::Commons(c) => commons_request(c)?,
        Command::Moderate(ModerateCommand::Purge { id, json }) => {
            return local_blocks::run(&home, local_blocks::LocalCommand::Purge { id, json })
        }
        Command::Moderate(c) => moderate_request(c),
        Command::Design(c) => match files::FileCommand::of_design(c) {
            Ok(files) => return files::run(&home, DocKind::Design, files),
            Err(c) => design_request(*c)?,
        },
        Command::Event(c) => event_request(c)?,
        Command::Note(c) => match files::FileCommand::of_note(c) {
            Ok(files) => return files::run(&home, DocKind::Note, files),
            Err(c) => note_request(*c)?,
        },
    };
    print_reply(send(&home, request)?, print, json)
}

/// Prints a command's reply; `verify` with problems exits with failure.
fn print_reply(value: Value, print: Print, json: bool) -> Result<ExitCode> {
    // Problems come typed; the printed lines end with what to do, which only the CLI knows.
    let value = match print {
        Print::Verify => output::verify_report(&serde_json::from_value(value)?)?,
        _ => value,
    };
    if json {
        output::json(&value);
    } else {
        print_human(print, &value);
    }
    if let Print::Verify = print {
        let clean = value
            .get("problems")
            .and_then(Value::as_array)
            .is_none_or(|p| p.is_empty());
        if !clean {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `hedgerow repair`: only with no node running, since it replaces the store under it.
fn repair(home: &Path, json: bool) -> Result<ExitCode> {
    let socket = control_socket_path(home);
    if socket.exists()
        && control::call(&socket, &NodeRequest::Status, Duration::from_secs(10)).is_ok()
    {
        return Err(anyhow!(
            "`hedgerow serve` is running on this home; stop it, then run `hedgerow repair`"
        ));
    }
    let opened = Home::open(home)?;
    let report = hedgerow_node::repair::repair(&opened)?;
    if json {
        output::json(&serde_json::to_value(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &report.moved_to {
        Some(aside) => println!("moved the damaged store to {}", aside.display()),
        None => println!("there was no store; built a new one"),
    }
    println!(
        "rebuilt {} commons, {} documents, {} signed changes ({} records from the journal{})",
        report.commons,
        report.documents,
        report.changes,
        report.journal_records,
        if report.salvaged_store {
            ", the rest read from the damaged store"
        } else {
            "; the damaged store could not be read"
        }
    );
    if report.from_peers.is_empty() {
        println!(
            "everything you wrote is back; changes by others come back from peers at the next sync"
        );
    } else {
        println!(
            "{} documents could not be rebuilt whole and will come back from peers at the next sync (`hedgerow sync` or `serve`):",
            report.from_peers.len()
        );
        for id in &report.from_peers {
            println!("  {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a request on the running node if there is one, else on the store directly.
pub fn send(home: &Path, request: Request) -> Result<Value> {
    route(home, &request, Duration::from_secs(600), Ok, || {
        let opened = Home::open(home)?;
        let mut replicas = Replicas::open(&opened)?;
        // JSON only at the edge: a running node sends the same serialization.
        Ok(execute(&mut replicas, request.clone())?.to_json()?)
    })
}

/// `hedgerow status`: only a running node can answer it.
fn status(home: &Path) -> Result<Value> {
    route(
        home,
        &NodeRequest::Status,
        Duration::from_secs(600),
        Ok,
        || {
            Home::open(home)?;
            Err(anyhow!(
                "no node is running for this home; start one with `hedgerow serve`"
            ))
        },
    )
}

/// Longest a command waits by default for a starting `serve` to answer, or for another command's store.
///
/// A starting `serve` itself waits up to [`hedgerow_node::serve::STORE_WAIT`] for the store, then opens
/// its control socket within a second or two.
const ROUTE_WAIT: Duration = Duration::from_secs(60);

/// Environment variable that replaces [`ROUTE_WAIT`], in whole seconds (scripts that must not block use 0).
const ROUTE_WAIT_ENV: &str = "HEDGEROW_WAIT";

/// How long this command waits for a busy store or a starting `serve`.
fn route_wait() -> Result<Duration> {
    match std::env::var(ROUTE_WAIT_ENV) {
        Err(_) => Ok(ROUTE_WAIT),
        Ok(text) => text.trim().parse::<u64>().map(Duration::from_secs).map_err(|_| {
            anyhow!("{ROUTE_WAIT_ENV} is `{text}`, not a whole number of seconds; set it to e.g. 60, or unset it")
        }),
    }
}

/// How often a waiting command looks again.
const ROUTE_POLL: Duration = Duration::from_millis(25);

/// Sends `request` to the home's running `serve` and hands its answer to `on_node`; when
/// none runs, calls `direct`, which opens the store itself.
///
/// A `serve` that is starting (it holds `serve.lock` but has no control socket yet) is
/// waited for, so a command issued meanwhile is answered once it is up, and `serve`
/// never finds the store taken by a command that started after it. A store held by
/// another short command is waited for too.
pub fn route<T>(
    home: &Path,
    request: &impl serde::Serialize,
    timeout: Duration,
    on_node: impl Fn(Value) -> Result<T>,
    mut direct: impl FnMut() -> Result<T>,
) -> Result<T> {
    let socket = control_socket_path(home);
    let wait = route_wait()?;
    let deadline = Instant::now() + wait;
    loop {
        if socket.exists() {
            match control::call(&socket, request, timeout) {
                Ok(ControlReply::Ok(value)) => return on_node(value),
                Ok(ControlReply::Error { message, kind }) => {
                    return Err(NodeRefusal { message, kind }.into())
                }
                Err(ControlError::NotRunning) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if serve_announced(home) {
            if Instant::now() >= deadline {
                return Err(anyhow!(
                    "`hedgerow serve` for {} has been starting for {} s without answering; check its log, or stop it and retry",
                    home.display(),
                    wait.as_secs()
                ));
            }
        } else {
            match direct() {
                Err(e) if store_locked(&e) && Instant::now() < deadline => {}
                done => return done,
            }
        }
        std::thread::sleep(ROUTE_POLL);
    }
}

/// Whether `error` says another process holds the store.
fn store_locked(error: &anyhow::Error) -> bool {
    ErrorKind::of(error.as_ref()) == Some(ErrorKind::StoreLocked)
}

fn print_human(print: Print, value: &Value) {
    match print {
        Print::Json => output::json(value),
        Print::Id => println!(
            "{}",
            output::line(value.get("id").and_then(Value::as_str).unwrap_or(""))
        ),
        Print::Document => output::document(value),
        Print::DocList => output::doc_list(value),
        Print::History => output::history(value),
        Print::Blame => output::blame(value),
        Print::Commons => output::commons(value),
        Print::CommonsList => {
            let items = value.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!("no commons yet: create one with `hedgerow commons create NAME`");
            }
            for item in items {
                output::commons(&item);
            }
        }
        Print::Lineage => output::lineage(value),
        Print::Verify => output::verify(value),
        Print::Whoami => {
            println!(
                "{}",
                output::line(value.get("name").and_then(Value::as_str).unwrap_or(""))
            );
            println!(
                "author key: {}",
                output::line(value.get("author").and_then(Value::as_str).unwrap_or(""))
            );
            let person = value.get("person").and_then(Value::as_str).unwrap_or("");
            if person != value.get("author").and_then(Value::as_str).unwrap_or("") {
                println!(
                    "person:     {} (this device: {})",
                    output::line(person),
                    output::line(
                        value
                            .get("device_name")
                            .and_then(Value::as_str)
                            .unwrap_or("certificate not received yet")
                    )
                );
            }
            println!(
                "peer id:    {} (network only; not derived from the author key)",
                value.get("peer_id").and_then(Value::as_str).unwrap_or("")
            );
        }
        Print::Status => output::status(value),
        Print::DeviceAdded => output::device_added(value),
        Print::Devices => output::devices(value),
        Print::DeviceRevoked => output::device_revoked(value),
        Print::Invite => println!(
            "{}",
            output::line(value.get("code").and_then(Value::as_str).unwrap_or(""))
        ),
        Print::Accepted => println!(
            "joined commons {} as {}; it arrives from the next peer or bundle that has it",
            output::line(value.get("commons").and_then(Value::as_str).unwrap_or("")),
            output::line(value.get("role").and_then(Value::as_str).unwrap_or(""))
        ),
        Print::Members => output::members(value),
        Print::Charter => println!(
            "saved charter change {}",
            output::line(value.get("change").and_then(Value::as_str).unwrap_or(""))
        ),
        Print::ModLog => output::moderation_log(value),
        Print::Edited => match value.get("change").and_then(Value::as_str) {
            Some(change) => println!("saved change {}", output::line(change)),
            None => println!("nothing changed"),
        },
    }
}

fn device_request(command: DeviceCommand) -> (Request, Print, bool) {
    match command {
        DeviceCommand::Add { name, json } => {
            (Request::DeviceAdd { name }, Print::DeviceAdded, json.json)
        }
        DeviceCommand::List(j) => (Request::DeviceList, Print::Devices, j.json),
        DeviceCommand::Revoke { name, json } => (
            Request::DeviceRevoke { name },
            Print::DeviceRevoked,
            json.json,
        ),
    }
}

fn moderate_request(command: ModerateCommand) -> (Request, Print, bool) {
    match command {
        ModerateCommand::Hide { id, reason, json } => (
            Request::ModerateHide { id, reason },
            Print::Charter,
            json.json,
        ),
        ModerateCommand::Unhide { id, json } => {
            (Request::ModerateUnhide { id }, Print::Charter, json.json)
        }
        ModerateCommand::Block {
            person,
            commons,
            json,
        } => (
            Request::ModerateBlock {
                commons: commons.commons,
                person,
            },
            Print::Charter,
            json.json,
        ),
        ModerateCommand::Unblock {
            person,
            commons,
            json,
        } => (
            Request::ModerateUnblock {
                commons: commons.commons,
                person,
            },
            Print::Charter,
            json.json,
        ),
        // `run` sends it through `local_blocks::run`, which words its reply.
        ModerateCommand::Purge { id, json } => (Request::Purge { id }, Print::Json, json.json),
        ModerateCommand::Log { commons, json } => (
            Request::ModerateLog {
                commons: commons.commons,
            },
            Print::ModLog,
            json.json,
        ),
    }
}

fn commons_request(command: CommonsCommand) -> Result<(Request, Print, bool)> {
    use hedgerow_protocol::charter::Role;
    Ok(match command {
        CommonsCommand::Create {
            name,
            description,
            stewarded: true,
            private,
            json,
        } => (
            Request::CommonsCreateStewarded {
                name,
                description,
                private,
            },
            Print::Id,
            json.json,
        ),
        CommonsCommand::Create {
            name,
            description,
            json,
            ..
        } => (
            Request::CommonsCreate { name, description },
            Print::Id,
            json.json,
        ),
        CommonsCommand::Invite {
            commons,
            role,
            uses,
            expires,
            json,
        } => (
            Request::CommonsInvite {
                commons: commons.commons,
                role: role.parse::<Role>()?,
                uses,
                expires_in: hedgerow_node::communities::parse_duration(&expires)?,
            },
            Print::Invite,
            json.json,
        ),
        CommonsCommand::Accept { code, json } => {
            (Request::CommonsAccept { code }, Print::Accepted, json.json)
        }
        CommonsCommand::Members { commons, json } => (
            Request::CommonsMembers {
                commons: commons.commons,
            },
            Print::Members,
            json.json,
        ),
        CommonsCommand::Role {
            person,
            role,
            commons,
            json,
        } => (
            Request::CommonsRole {
                commons: commons.commons,
                person,
                role: role.parse::<Role>()?,
            },
            Print::Charter,
            json.json,
        ),
        CommonsCommand::Remove {
            person,
            commons,
            json,
        } => (
            Request::CommonsRemove {
                commons: commons.commons,
                person,
            },
            Print::Charter,
            json.json,
        ),
        CommonsCommand::List(j) => (Request::CommonsList, Print::CommonsList, j.json),
        CommonsCommand::Join { id, json } => {
            (Request::Join { commons: id }, Print::Json, json.json)
        }
        CommonsCommand::Show { id, json } => (
            Request::CommonsShow { commons: id },
            Print::Commons,
            json.json,
        ),
    })
}

fn design_request(command: DesignCommand) -> Result<(Request, Print, bool)> {
    let kind = DocKind::Design;
    Ok(match command {
        DesignCommand::New {
            name,
            commons,
            edits,
            json,
        } => (new_doc(commons, kind, name, &edits)?, Print::Id, json.json),
        DesignCommand::Edit { id, edits, json } => {
            (edit_doc(id, kind, &edits)?, Print::Edited, json.json)
        }
        DesignCommand::Show { id, version, json } => (
            Request::DocShow { id, kind, version },
            Print::Document,
            json.json,
        ),
        DesignCommand::List { commons, json } => (
            Request::DocList {
                commons: commons.commons,
                kind,
                target: None,
            },
            Print::DocList,
            json.json,
        ),
        DesignCommand::History { id, json } => {
            (Request::History { id, kind }, Print::History, json.json)
        }
        DesignCommand::Blame { id, field, json } => {
            (Request::Blame { id, kind, field }, Print::Blame, json.json)
        }
        DesignCommand::Fork {
            id,
            name,
            licence,
            allow_relicense,
            json,
        } => {
            let licence = licence
                .iter()
                .map(|pair| {
                    pair.split_once('=')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .ok_or_else(|| anyhow!("--licence expects PART=SPDX (hardware, documentation or software), got `{pair}`"))
                })
                .collect::<Result<Vec<_>>>()?;
            (
                Request::Fork {
                    id,
                    name,
                    licence,
                    allow_relicense,
                },
                Print::Id,
                json.json,
            )
        }
        DesignCommand::Lineage { id, json } => (Request::Lineage { id }, Print::Lineage, json.json),
        DesignCommand::Release { id, version, json } => {
            (Request::Release { id, version }, Print::Json, json.json)
        }
        DesignCommand::Retract { id, json } => {
            (Request::Retract { id, kind }, Print::Json, json.json)
        }
        // `run` hands these to `files::run` before coming here.
        DesignCommand::Attach(_)
        | DesignCommand::Files(_)
        | DesignCommand::File(_)
        | DesignCommand::Detach(_) => return Err(anyhow!("file commands are run by files::run")),
    })
}

fn event_request(command: EventCommand) -> Result<(Request, Print, bool)> {
    let kind = DocKind::Event;
    Ok(match command {
        EventCommand::New {
            title,
            commons,
            edits,
            json,
        } => (new_doc(commons, kind, title, &edits)?, Print::Id, json.json),
        EventCommand::Edit { id, edits, json } => {
            (edit_doc(id, kind, &edits)?, Print::Edited, json.json)
        }
        EventCommand::Show { id, json } => (
            Request::DocShow {
                id,
                kind,
                version: None,
            },
            Print::Document,
            json.json,
        ),
        EventCommand::List { commons, json } => (
            Request::DocList {
                commons: commons.commons,
                kind,
                target: None,
            },
            Print::DocList,
            json.json,
        ),
        EventCommand::Retract { id, json } => {
            (Request::Retract { id, kind }, Print::Json, json.json)
        }
    })
}

fn note_text(text: Option<String>, file: Option<PathBuf>) -> Result<String> {
    match (text, file) {
        (Some(text), _) => Ok(text),
        (None, Some(path)) => edits::read_text_file(&path),
        (None, None) => edits::read_stdin_text()
            .context("reading the note from standard input (give --text or --file instead)"),
    }
}

fn note_request(command: NoteCommand) -> Result<(Request, Print, bool)> {
    let kind = DocKind::Note;
    Ok(match command {
        NoteCommand::Add {
            on,
            kind: note_kind,
            text,
            file,
            json,
        } => {
            let body = note_text(text, file)?;
            (
                Request::DocNew {
                    commons: None,
                    kind,
                    title: String::new(),
                    target: Some(on),
                    note_kind: Some(note_kind),
                    edits: vec![Edit::ReplaceText {
                        field: "body".into(),
                        text: body,
                    }],
                },
                Print::Id,
                json.json,
            )
        }
        NoteCommand::Edit {
            id,
            text,
            file,
            append,
            json,
        } => {
            let edit = match append {
                Some(text) => Edit::AppendText {
                    field: "body".into(),
                    text,
                },
                None => Edit::ReplaceText {
                    field: "body".into(),
                    text: note_text(text, file)?,
                },
            };
            (
                Request::DocEdit {
                    id,
                    kind,
                    edits: vec![edit],
                },
                Print::Edited,
                json.json,
            )
        }
        NoteCommand::Show { id, json } => (
            Request::DocShow {
                id,
                kind,
                version: None,
            },
            Print::Document,
            json.json,
        ),
        NoteCommand::List { on, commons, json } => (
            Request::DocList {
                commons: commons.commons,
                kind,
                target: on,
            },
            Print::DocList,
            json.json,
        ),
        NoteCommand::Retract { id, json } => {
            (Request::Retract { id, kind }, Print::Json, json.json)
        }
        // `run` hands these to `files::run` before coming here.
        NoteCommand::Attach(_)
        | NoteCommand::Files(_)
        | NoteCommand::File(_)
        | NoteCommand::Detach(_) => return Err(anyhow!("file commands are run by files::run")),
    })
}

/// A new design or event with its first edits.
fn new_doc(
    commons: args::CommonsFlag,
    kind: DocKind,
    title: String,
    edits: &args::EditArgs,
) -> Result<Request> {
    Ok(Request::DocNew {
        commons: commons.commons,
        kind,
        title,
        target: None,
        note_kind: None,
        edits: edits::edits_from_args(edits)?,
    })
}

/// One signed change to a design or event; refuses an edit with no edit flags.
fn edit_doc(id: String, kind: DocKind, edits: &args::EditArgs) -> Result<Request> {
    Ok(Request::DocEdit {
        id,
        kind,
        edits: nonempty(edits::edits_from_args(edits)?)?,
    })
}

fn nonempty(edits: Vec<Edit>) -> Result<Vec<Edit>> {
    if edits.is_empty() {
        return Err(anyhow!(
            "nothing to change: give at least one edit flag such as --set FIELD=VALUE (see --help)"
        ));
    }
    Ok(edits)
}
