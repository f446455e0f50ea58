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
mod interop_farm;
mod interop_okh;
mod keys;
mod local_blocks;
mod names;
mod network;
mod ops;
mod output;
mod peers;
mod plan;
mod unknown_command;
mod web;

use anyhow::{anyhow, Context, Result};
use args::{
    BlameArgs, Cli, Command, CommonsCommand, DesignCommand, DeviceCommand, EventCommand,
    ExportCommand, HistoryArgs, ImportCommand, KeyCommand, ModerateCommand, NoteCommand,
    ProfileCommand, SearchArgs,
};
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
    let (cli, json) = match parse_cli() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    // `serve` sets its logging up itself, once it knows whether it has peers.
    if !matches!(cli.command, Command::Serve(_)) {
        init_logging(&[]);
    }
    files::install_progress();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            let mut line = hint::plain_os_errors(&one_line(&error));
            if let Some(hint) = hint::hint(&error).or_else(|| hint::for_os_error(&line)) {
                line.push_str("; ");
                line.push_str(&hint);
            }
            let line = output::line(&line);
            if json {
                let kind = ErrorKind::of(error.as_ref()).unwrap_or(ErrorKind::Other);
                output::json(&json_error(&line, &kind));
            } else {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Logs to standard error: warnings and worse unless `HEDGEROW_LOG` says otherwise (plus
/// `extra` directives under the default), coloured only on a terminal, so a log file or
/// journal gets plain text.
pub fn init_logging(extra: &[&str]) {
    init_logging_as(extra, false);
}

/// [`init_logging`], as one JSON object per line when `json` (for log collectors).
/// `HEDGEROW_LOG`, else `RUST_LOG`, replaces the default filter.
pub fn init_logging_as(extra: &[&str], json: bool) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEDGEROW_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| {
            // sled logs its own ERROR line (file offsets, a backtrace) before returning an
            // error that the store names in words; the user gets only the latter.
            let mut directives = vec!["warn", "sled=off"];
            directives.extend_from_slice(extra);
            tracing_subscriber::EnvFilter::new(directives.join(","))
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_ansi(false).init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// An error as `--json` prints it: `{"error": LINE, "kind": KIND, ...}` (the kind's own
/// fields beside it), the shape of the control channel's refusals.
fn json_error(line: &str, kind: &ErrorKind) -> Value {
    let mut value = serde_json::to_value(kind).unwrap_or_else(|_| serde_json::json!({}));
    if let Value::Object(map) = &mut value {
        map.insert("error".into(), Value::String(line.to_string()));
        map.insert("kind".into(), Value::String(kind.as_str().to_string()));
    }
    value
}

/// The command line, and whether the command asked for `--json`. A command line clap refuses
/// is reported as JSON (kind `usage`) when it has `--json`, else as clap reports it; help and
/// version requests print as usual.
fn parse_cli() -> Result<(Cli, bool), ExitCode> {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches).map(|cli| (cli, matches)));
    match parsed {
        Ok((cli, matches)) => {
            // The `--json` of the innermost subcommand, wherever it is declared.
            let mut leaf = &matches;
            while let Some((_, sub)) = leaf.subcommand() {
                leaf = sub;
            }
            let json = matches!(leaf.try_get_one::<bool>("json"), Ok(Some(true)));
            Ok((cli, json))
        }
        Err(error) => {
            use clap::error::ErrorKind as Clap;
            let asked_json = std::env::args_os()
                .skip(1)
                .take_while(|a| a != "--")
                .any(|a| a == "--json");
            let informational = matches!(
                error.kind(),
                Clap::DisplayHelp
                    | Clap::DisplayVersion
                    | Clap::DisplayHelpOnMissingArgumentOrSubcommand
            );
            // A word people reach for that Hedgerow spells differently (`design delete`,
            // `search`) gets the command that does it instead of clap's nearest spelling.
            if let Some(text) = unknown_command_hint(&error) {
                if asked_json {
                    output::json(&json_error(&output::line(&text), &ErrorKind::Usage));
                } else {
                    eprintln!("error: {}", output::line(&text));
                }
                return Err(ExitCode::from(2));
            }
            if asked_json && !informational {
                let text = error.render().to_string();
                let first = text
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("the command line is not valid")
                    .trim_start_matches("error: ");
                let line = format!("{first}; see `hedgerow --help`");
                output::json(&json_error(&output::line(&line), &ErrorKind::Usage));
                return Err(ExitCode::from(2));
            }
            let _ = error.print();
            Err(ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2)))
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
    /// An event with its notes under it.
    EventDocument,
    /// A list of documents of this kind (design, event, note).
    DocList(&'static str),
    /// A list of this kind that a search or filter narrowed.
    Found(&'static str),
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
    Conflicts,
    Resolved,
    Released,
    Retracted,
    Joined,
    ProfileEdited,
}

/// What to say instead of clap's nearest spelling when the unknown subcommand is a word
/// people reach for (`design delete`, `search`), if it is one.
fn unknown_command_hint(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind as ClapKind};
    if error.kind() != ClapKind::InvalidSubcommand {
        return None;
    }
    let Some(ContextValue::String(word)) = error.get(ContextKind::InvalidSubcommand) else {
        return None;
    };
    let args: Vec<String> = std::env::args().collect();
    let parents = unknown_command::parents(&args, word);
    unknown_command::instead(&parents, word)
}

/// `--home`, else `$HEDGEROW_HOME` when set and not empty (an empty one, as `HEDGEROW_HOME=`
/// in a crontab or unit file leaves, means unset), else the platform default.
fn home_path(cli_home: &Option<PathBuf>) -> PathBuf {
    cli_home
        .clone()
        .or_else(|| {
            std::env::var_os("HEDGEROW_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(Home::default_path)
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
        Command::Sync {
            peer,
            linger,
            connect_timeout,
            deadline,
            json,
        } => {
            let limits = network::SyncLimits {
                linger,
                connect_timeout,
                deadline,
            };
            return network::sync(&home, &peer, limits, json.json);
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
        Command::Config(c) => return ops::config(&home, c),
        Command::Peers { command, json } => return peers::run(&home, command, json.json),
        Command::Completions { shell } => return ops::completions(shell),
        Command::Man { out } => return ops::man(out.as_deref()),
        Command::Import(ImportCommand::Okh(args)) => return interop_okh::import(&home, args),
        Command::Export(ExportCommand::Okh(args)) => return interop_okh::export(&home, args),
        Command::Commons(c) => commons_request(c)?,
        Command::Moderate(ModerateCommand::Purge { id, json }) => {
            return local_blocks::run(&home, local_blocks::LocalCommand::Purge { id, json })
        }
        Command::Moderate(c) => moderate_request(c),
        Command::Design(DesignCommand::Blame(BlameArgs { id, field, json }))
            if !json.json && field.trim() == "steps" =>
        {
            return step_blame(&home, id);
        }
        Command::Design(DesignCommand::Export {
            id,
            format,
            version,
            out,
            force,
            json,
        }) => {
            let format = format.to_ascii_lowercase();
            let to = PlanTo {
                out: out.as_deref(),
                force,
                json: json.json,
            };
            return export_plan(&home, id, &format, version, to);
        }
        Command::Import(args::ImportCommand::Farmhack(a)) => {
            return interop_farm::farmhack(&home, a)
        }
        Command::Import(args::ImportCommand::FarmosEquipment(a)) => {
            return interop_farm::farmos(&home, a)
        }
        Command::Export(args::ExportCommand::Automerge(a)) => {
            return interop_farm::automerge(&home, a)
        }
        Command::Design(DesignCommand::Built(a)) => return interop_farm::built(&home, a),
        Command::Profile(c) => profile_request(c)?,
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
    let warn = names::may_share_names(&request);
    let mut reply = send(&home, request)?;
    // People read a document with names beside keys and ids: a second request, since which
    // names a node knows is its own (`show --json` is the same on every node).
    if let (Print::Document | Print::EventDocument, false) = (print, json) {
        if let Some(id) = reply.get("id").and_then(Value::as_str) {
            let names = send(&home, Request::Names { id: id.to_string() })?;
            reply["names"] = names;
        }
    }
    // An event is shown with its notes: another request, for people only (`note list --on
    // ID --json` gives them to scripts).
    if let (Print::EventDocument, false) = (print, json) {
        let code = print_reply(reply.clone(), print, json)?;
        if let Some(id) = reply.get("id").and_then(Value::as_str) {
            let notes = send(
                &home,
                Request::DocList {
                    commons: None,
                    kind: DocKind::Note,
                    target: Some(id.to_string()),
                    tags: Vec::new(),
                    stage: None,
                    search: None,
                },
            )?;
            output::attached_notes(&notes);
        }
        if warn {
            names::warn_shared_names(&home)?;
        }
        return Ok(code);
    }
    let code = print_reply(reply, print, json)?;
    if warn {
        names::warn_shared_names(&home)?;
    }
    Ok(code)
}

/// `design blame ID steps` for people: each step with every author who wrote part of it.
fn step_blame(home: &Path, id: String) -> Result<ExitCode> {
    let kind = DocKind::Design;
    let steps = send(
        home,
        Request::Blame {
            id: id.clone(),
            kind,
            field: "steps".into(),
        },
    )?;
    let mut out = Vec::new();
    for (i, step) in steps.as_array().into_iter().flatten().enumerate() {
        let text = step.get("text").and_then(Value::as_str).unwrap_or("");
        let spans = send(
            home,
            Request::Blame {
                id: id.clone(),
                kind,
                field: format!("steps.{}", i + 1),
            },
        )?;
        out.push((text.to_string(), spans));
    }
    if out.is_empty() {
        println!("this design has no build steps yet");
    }
    output::step_blame(&out);
    Ok(ExitCode::SUCCESS)
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
        "rebuilt {} commons, {}, {} ({} from the journal{})",
        report.commons,
        output::plural(report.documents as u64, "document"),
        output::plural(report.changes as u64, "signed change"),
        output::plural(report.journal_records as u64, "record"),
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
            "{} could not be rebuilt whole and will come back from peers at the next sync (`hedgerow sync` or `serve`):",
            output::plural(report.from_peers.len() as u64, "document")
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
        Print::Document | Print::EventDocument => output::document(value),
        Print::DocList(kind) => output::doc_list(value, kind),
        Print::Found(kind) if value.as_array().is_some_and(Vec::is_empty) => {
            println!("no {kind} matches; `hedgerow {kind} list` alone shows them all")
        }
        Print::Found(kind) => output::doc_list(value, kind),
        Print::Released => output::released(value),
        Print::Retracted => output::retracted(value),
        Print::Joined => output::joined(value),
        Print::History => output::history(value),
        Print::Blame => output::blame(value),
        Print::Commons => output::commons(value),
        Print::CommonsList => {
            let items = value.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!("no commons yet: create one with `hedgerow commons create NAME` or join one with `hedgerow commons join ID`");
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
        Print::Conflicts => output::conflict_list(value),
        Print::Resolved => println!(
            "settled `{}` with change {}",
            output::line(value.get("field").and_then(Value::as_str).unwrap_or("")),
            output::line(value.get("change").and_then(Value::as_str).unwrap_or(""))
        ),
        Print::ProfileEdited => output::profile_edited(value),
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
            (Request::Join { commons: id }, Print::Joined, json.json)
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
        DesignCommand::List {
            commons,
            search,
            stage,
            json,
        } => {
            let (request, print) = list_docs(commons, kind, search, stage);
            (request, print, json.json)
        }
        DesignCommand::History(args) => history_request(kind, args),
        DesignCommand::Blame(args) => blame_request(kind, args),
        // `run` sends it through `export_plan`, which writes the plan.
        DesignCommand::Export { id, version, .. } => {
            (Request::Plan { id, version }, Print::Json, false)
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
            (Request::Release { id, version }, Print::Released, json.json)
        }
        DesignCommand::Retract { id, json } => {
            (Request::Retract { id, kind }, Print::Retracted, json.json)
        }
        DesignCommand::Conflicts(args) => conflicts_request(kind, args),
        DesignCommand::Resolve(args) => resolve_request(kind, args),
        // `run` hands these to `files::run` before coming here.
        DesignCommand::Attach(_)
        | DesignCommand::Files(_)
        | DesignCommand::File(_)
        | DesignCommand::Detach(_) => return Err(anyhow!("file commands are run by files::run")),
        DesignCommand::Built(_) => return Err(anyhow!("`design built` is run by interop_farm")),
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
            Print::EventDocument,
            json.json,
        ),
        EventCommand::List {
            commons,
            search,
            json,
        } => {
            let (request, print) = list_docs(commons, kind, search, None);
            (request, print, json.json)
        }
        EventCommand::History(args) => history_request(kind, args),
        EventCommand::Blame(args) => blame_request(kind, args),
        EventCommand::Retract { id, json } => {
            (Request::Retract { id, kind }, Print::Retracted, json.json)
        }
        EventCommand::Conflicts(args) => conflicts_request(kind, args),
        EventCommand::Resolve(args) => resolve_request(kind, args),
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
            reply_to,
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
                    target: on,
                    note_kind: Some(note_kind),
                    reply_to,
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
                tags: Vec::new(),
                stage: None,
                search: None,
            },
            Print::DocList(kind.as_str()),
            json.json,
        ),
        NoteCommand::Retract { id, json } => {
            (Request::Retract { id, kind }, Print::Retracted, json.json)
        }
        NoteCommand::Conflicts(args) => conflicts_request(kind, args),
        NoteCommand::Resolve(args) => resolve_request(kind, args),
        NoteCommand::History(args) => history_request(kind, args),
        NoteCommand::Blame { id, field, json } => {
            blame_request(kind, BlameArgs { id, field, json })
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
        reply_to: None,
        edits: edits::edits_from_args(edits)?,
    })
}

/// `design/event list`, with its search and filters (an empty answer then says nothing matched).
fn list_docs(
    commons: args::CommonsFlag,
    kind: DocKind,
    search: SearchArgs,
    stage: Option<String>,
) -> (Request, Print) {
    let filtered = !search.tag.is_empty() || stage.is_some() || search.search.is_some();
    let print = if filtered {
        Print::Found(kind.as_str())
    } else {
        Print::DocList(kind.as_str())
    };
    let request = Request::DocList {
        commons: commons.commons,
        kind,
        target: None,
        tags: search.tag,
        stage,
        search: search.search,
    };
    (request, print)
}

/// `design/event/note history`: one request for every kind.
fn history_request(kind: DocKind, args: HistoryArgs) -> (Request, Print, bool) {
    let HistoryArgs { id, json } = args;
    (Request::History { id, kind }, Print::History, json.json)
}

/// `design/event/note blame`: one request for every kind.
fn blame_request(kind: DocKind, args: BlameArgs) -> (Request, Print, bool) {
    let BlameArgs { id, field, json } = args;
    (Request::Blame { id, kind, field }, Print::Blame, json.json)
}

/// `profile edit --set FIELD=VALUE...`: name, location, bio.
fn profile_request(command: ProfileCommand) -> Result<(Request, Print, bool)> {
    let ProfileCommand::Edit { set, json } = command;
    let (mut name, mut location, mut bio) = (None, None, None);
    for pair in &set {
        let (field, value) = pair.split_once('=').ok_or_else(|| {
            anyhow!("--set expects FIELD=VALUE (name, location or bio), got `{pair}`")
        })?;
        let slot = match field.trim() {
            "name" => &mut name,
            "location" => &mut location,
            "bio" => &mut bio,
            other => {
                return Err(anyhow!(
                    "a profile has no field `{other}`; its fields are name, location and bio"
                ))
            }
        };
        *slot = Some(value.to_string());
    }
    Ok((
        Request::ProfileEdit {
            name,
            location,
            bio,
        },
        Print::ProfileEdited,
        json.json,
    ))
}

/// `design export`: the plan from the node, laid out here, printed or written to `out`
/// (through a temp file renamed into place; an existing file only with `force`).
fn export_plan(
    home: &Path,
    id: String,
    format: &str,
    version: Option<String>,
    to: PlanTo<'_>,
) -> Result<ExitCode> {
    let PlanTo { out, force, json } = to;
    let reply = send(home, Request::Plan { id, version })?;
    let plan: plan::Plan = serde_json::from_value(reply.clone())
        .context("the node's plan reply has an unexpected shape")?;
    let text = match format {
        "html" => plan::html(&plan),
        _ => plan::markdown(&plan),
    };
    let Some(path) = out else {
        if json {
            // What the plan is laid out from: a program renders it its own way.
            output::json(&reply);
        } else {
            print!("{text}");
        }
        return Ok(ExitCode::SUCCESS);
    };
    if force {
        hedgerow_node::home::write_file_atomic(path, text.as_bytes(), 0o644)
            .with_context(|| format!("cannot write {}", path.display()))?;
    } else {
        write_new_file(path, text.as_bytes())?;
    }
    if json {
        output::json(&serde_json::json!({
            "path": path.display().to_string(),
            "format": if format == "html" { "html" } else { "markdown" },
            "bytes": text.len(),
        }));
    } else {
        println!("wrote {}", output::line(&path.display().to_string()));
    }
    Ok(ExitCode::SUCCESS)
}

/// Where `design export` puts the plan, and how it reports.
struct PlanTo<'a> {
    /// The file to write, or standard output.
    out: Option<&'a Path>,
    /// Replace an existing file.
    force: bool,
    /// Report as JSON.
    json: bool,
}

/// Writes a file that must not exist yet: a synced temp file beside it, linked into place
/// only if nothing is there (so a file that appears meanwhile is not replaced either).
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let refuse = || {
        anyhow!(
            "{} already exists; pass --force to replace it, or choose another --out",
            path.display()
        )
    };
    if path.exists() {
        return Err(refuse());
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".hedgerow-plan.")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    match file.persist_noclobber(path) {
        Ok(_) => {}
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => return Err(refuse()),
        Err(e) => return Err(anyhow!("cannot write {}: {}", path.display(), e.error)),
    }
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
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

/// `design/event/note conflicts`: one document's open conflicts, or every one of the kind.
fn conflicts_request(kind: DocKind, args: args::ConflictsArgs) -> (Request, Print, bool) {
    (
        Request::Conflicts {
            id: args.id,
            kind,
            commons: args.commons.commons,
        },
        Print::Conflicts,
        args.json.json,
    )
}

/// `design/event/note resolve`: one signed change settling one field.
fn resolve_request(kind: DocKind, args: args::ResolveArgs) -> (Request, Print, bool) {
    (
        Request::Resolve {
            id: args.id,
            kind,
            field: args.field,
            take: args.take,
            text: args.text,
        },
        Print::Resolved,
        args.json.json,
    )
}
