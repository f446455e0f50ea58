//! `hedgerow serve` and `hedgerow sync`: start the node's network side.

use crate::args::ServeArgs;
use crate::output::plural;
use anyhow::{anyhow, Context, Result};
use hedgerow_node::api::NodeRequest;
use hedgerow_node::home::{Home, HomeConfig};
use hedgerow_node::serve::{self, ServeConfig, SyncReport};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn parse_addrs(flag: &str, texts: &[String]) -> Result<Vec<serve::Multiaddr>> {
    texts.iter().map(|t| parse_addr(flag, t)).collect()
}

/// The multiaddress given with `--flag`, or an error that shows what one looks like.
fn parse_addr(flag: &str, text: &str) -> Result<serve::Multiaddr> {
    text.parse().map_err(|_| {
        anyhow!(
            "--{flag} `{text}` is not a multiaddress such as /ip4/127.0.0.1/tcp/4717 \
             (add /p2p/12D3KooW... to name the peer)"
        )
    })
}

/// A spinner on standard error when it is a terminal; none in scripts and cron jobs.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message("connecting...");
    Some(bar)
}

/// The node's settings from `serve`'s options and the home's `config.json`; what both leave
/// out is [`ServeConfig::default`]. `--listen` wins over the file's `listen`; the file's
/// `peers` are added by the node itself (`serve::run`).
fn serve_config(args: &ServeArgs, file: &HomeConfig) -> Result<ServeConfig> {
    let defaults = ServeConfig::default();
    // A flag wins over the environment and the file (already merged in `file`), which win
    // over the default.
    let sync_interval = args.sync_interval.or(file.sync_interval);
    let mut config = ServeConfig {
        mdns: !args.no_mdns && file.mdns.unwrap_or(defaults.mdns),
        sync_interval: sync_interval
            .map_or(defaults.sync_interval, |s| Duration::from_secs(s.max(1))),
        peers: parse_addrs("peer", &args.peer)?,
        max_connections_per_ip: args
            .max_connections_per_ip
            .or(file.max_connections_per_ip)
            .unwrap_or(defaults.max_connections_per_ip),
        ..defaults
    };
    config.metrics = match (args.metrics, &file.metrics) {
        (Some(addr), _) => Some(addr),
        // Checked as an address when the file or the environment was read.
        (None, Some(text)) => Some(text.parse().map_err(|_| {
            anyhow!("metrics `{text}` is not an address and port such as 127.0.0.1:9464")
        })?),
        (None, None) => None,
    };
    config.reach = reach_config(args, &file.reach);
    // Metered links: a flag wins over the environment and the file (checked when read).
    config.max_rate = match (&args.max_rate, &file.max_rate) {
        (Some(text), _) => Some(
            text.parse()
                .map_err(|e: hedgerow_node::net::RateError| anyhow!("--max-rate {e}"))?,
        ),
        (None, Some(text)) => Some(
            text.parse()
                .map_err(|e: hedgerow_node::net::RateError| anyhow!("max_rate {e}"))?,
        ),
        (None, None) => None,
    };
    config.sync_window = match (&args.sync_window, &file.sync_window) {
        (Some(text), _) => Some(text.parse().map_err(
            |e: hedgerow_node::serve::sync_window::WindowError| anyhow!("--sync-window {e}"),
        )?),
        (None, Some(text)) => Some(text.parse().map_err(
            |e: hedgerow_node::serve::sync_window::WindowError| anyhow!("sync_window {e}"),
        )?),
        (None, None) => None,
    };
    if !args.listen.is_empty() {
        config.listen = parse_addrs("listen", &args.listen)?;
    } else if !file.listen.is_empty() {
        config.listen = file
            .listen
            .iter()
            .map(|text| {
                text.parse().map_err(|_| {
                    anyhow!(
                        "config.json's listen `{text}` is not a multiaddress such as \
                         /ip4/127.0.0.1/tcp/4717; correct or remove it"
                    )
                })
            })
            .collect::<Result<_>>()?;
    }
    Ok(config)
}

/// The relay server and UPnP from `serve`'s flags over `[reach]` of the settings.
fn reach_config(
    args: &ServeArgs,
    file: &hedgerow_node::net::reach::ReachSettings,
) -> hedgerow_node::net::reach::ReachConfig {
    use hedgerow_node::net::reach::{ReachConfig, RelayLimits};
    let defaults = RelayLimits::default();
    let count = |flag: Option<u64>, key: Option<u64>, default: usize| {
        flag.or(key)
            .map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX))
    };
    let relay = (args.relay || file.relay.unwrap_or(false)).then(|| RelayLimits {
        max_circuits: count(
            args.relay_max_circuits,
            file.relay_max_circuits,
            defaults.max_circuits,
        ),
        max_circuits_per_peer: count(
            args.relay_max_circuits_per_peer,
            file.relay_max_circuits_per_peer,
            defaults.max_circuits_per_peer,
        ),
        max_circuit_bytes: args
            .relay_max_circuit_bytes
            .or(file.relay_max_circuit_bytes)
            .unwrap_or(defaults.max_circuit_bytes),
        max_circuit_duration: args
            .relay_max_circuit_secs
            .or(file.relay_max_circuit_secs)
            .map_or(defaults.max_circuit_duration, Duration::from_secs),
    });
    ReachConfig {
        relay,
        upnp: !args.no_upnp && file.upnp.unwrap_or(true),
    }
}

/// Runs the node until Ctrl-C or SIGTERM.
pub fn serve(home: &Path, args: ServeArgs) -> Result<ExitCode> {
    let file = match Home::open(home) {
        Ok(opened) => opened.config().ok(),
        Err(_) => None,
    };
    // With no peer configured, libp2p's Kademlia warns at every new listen address that it
    // has no peer to bootstrap from: expected, so not shown as a problem.
    let has_peers = !args.peer.is_empty() || file.as_ref().is_some_and(|f| !f.peers.is_empty());
    let json_logs = match &args.log_format {
        Some(format) => format == "json",
        None => file
            .as_ref()
            .is_some_and(|f| f.log_format.as_deref() == Some("json")),
    };
    crate::init_logging_as(
        if has_peers {
            &[]
        } else {
            &["libp2p_kad::behaviour=error"]
        },
        json_logs,
    );
    let opened = Home::open(home)?;
    let file = opened.config().context("cannot read the node's settings")?;
    let mut config = serve_config(&args, &file)?;
    config.announce = true;
    let web = crate::web::config(&args)?;
    let rt = runtime()?;
    rt.block_on(async {
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
            }
        };
        eprintln!("hedgerow serving {} (author {})", home.display(), opened.key().author());
        let (handle, inbox) = serve::NodeHandle::new();
        let web = match web {
            Some(web) => Some(crate::web::start(&opened, handle, web).await?),
            None => None,
        };
        let served = serve::run_with(&opened, config, inbox, shutdown).await;
        if let Some(web) = web {
            web.abort();
        }
        served.map_err(anyhow::Error::from)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// How long `hedgerow sync` waits, in seconds, from its flags.
#[derive(Debug, Clone, Copy)]
pub struct SyncLimits {
    /// Quiet time after our pulls while the peer may still pull from us.
    pub linger: u64,
    /// Time for the connection.
    pub connect_timeout: u64,
    /// Time for the whole sync.
    pub deadline: u64,
}

/// One catch-up with one peer: through the running node if there is one, else directly.
pub fn sync(home: &Path, peer: &str, limits: SyncLimits, json: bool) -> Result<ExitCode> {
    let addr = parse_addr("peer", peer)?;
    if limits.connect_timeout == 0 || limits.deadline == 0 {
        return Err(anyhow!(
            "--connect-timeout and --deadline take a number of seconds above 0 (defaults: 30 and 600)"
        ));
    }
    let order = serve::SyncOrder {
        addr: addr.clone(),
        connect_timeout: Duration::from_secs(limits.connect_timeout),
        deadline: Duration::from_secs(limits.deadline),
    };
    let request = NodeRequest::Sync {
        peer: peer.to_string(),
        connect_timeout: Some(limits.connect_timeout),
        deadline: Some(limits.deadline),
    };
    let report = crate::route(
        home,
        &request,
        order.deadline + Duration::from_secs(30),
        |value| {
            let report = serde_json::from_value::<SyncReport>(value)
                .context("reading the node's sync report")?;
            match report.unreachable {
                Some(reason) => Err(serve::ServeError::PeerUnreachable {
                    addr: peer.to_string(),
                    reason,
                }
                .into()),
                None => Ok(report),
            }
        },
        || {
            let opened = Home::open(home)?;
            let rt = runtime()?;
            let bar = progress_bar();
            let report = rt.block_on(serve::sync_once(
                &opened,
                order.clone(),
                Duration::from_secs(limits.linger),
                |p| {
                    if let Some(bar) = &bar {
                        bar.set_message(format!(
                            "{}, {} received ({} KB in, {} KB out){}",
                            plural(p.docs_received, "document"),
                            plural(p.changes_received, "change"),
                            p.bytes_received / 1024,
                            p.bytes_sent / 1024,
                            if p.connected { "" } else { ", connecting..." }
                        ));
                        bar.tick();
                    }
                },
            ));
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            Ok(report?)
        },
    )?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!(
            "synced with {}: received {} in {}, sent {}; {} in, {} out, {}",
            crate::output::line(&report.peer),
            plural(report.changes_received as u64, "change"),
            plural(report.docs_received as u64, "document"),
            plural(report.docs_sent as u64, "document"),
            plural(report.bytes_received as u64, "byte"),
            plural(report.bytes_sent as u64, "byte"),
            plural(report.round_trips as u64, "round trip")
        );
        for error in &report.errors {
            println!("problem: {}", crate::output::line(error));
        }
    }
    Ok(if report.complete && report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    /// `serve`'s options as the command line gives them.
    fn parsed(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from(["hedgerow", "serve"].iter().chain(args)).expect("parses");
        match cli.command {
            Command::Serve(args) => args,
            other => panic!("not serve: {other:?}"),
        }
    }

    fn listen(config: &ServeConfig) -> Vec<String> {
        config.listen.iter().map(ToString::to_string).collect()
    }

    /// README: `hedgerow serve` listens with TCP and QUIC on port 4717 (on every interface, so
    /// it is checked here as parsed, never bound by a test), with mDNS on.
    #[test]
    fn serve_listens_on_port_4717_by_default() {
        let config = serve_config(&parsed(&[]), &HomeConfig::default()).expect("config");
        assert_eq!(
            listen(&config),
            ["/ip4/0.0.0.0/tcp/4717", "/ip4/0.0.0.0/udp/4717/quic-v1"]
        );
        assert!(config.mdns);
        assert_eq!(config.sync_interval, Duration::from_secs(60));
        assert_eq!(config.max_connections_per_ip, 64);
        assert!(config.peers.is_empty());

        let config = serve_config(&parsed(&["--no-mdns"]), &HomeConfig::default()).expect("config");
        assert!(!config.mdns);
        assert_eq!(
            listen(&config),
            ["/ip4/0.0.0.0/tcp/4717", "/ip4/0.0.0.0/udp/4717/quic-v1"]
        );
    }

    #[test]
    fn listen_replaces_the_default_addresses() {
        let config = serve_config(
            &parsed(&["--listen", "/ip4/127.0.0.1/udp/0/quic-v1"]),
            &HomeConfig::default(),
        )
        .expect("config");
        assert_eq!(listen(&config), ["/ip4/127.0.0.1/udp/0/quic-v1"]);
        let error =
            serve_config(&parsed(&["--listen", "port 4717"]), &HomeConfig::default()).unwrap_err();
        assert!(
            error.to_string().contains("--listen `port 4717`"),
            "{error}"
        );
    }

    /// README: `config.json`'s `listen` replaces the defaults; `--listen` wins over it; a bad
    /// address in the file is named.
    #[test]
    fn config_json_listen_is_used_unless_listen_is_given() {
        let file = HomeConfig {
            peers: Vec::new(),
            listen: vec!["/ip4/127.0.0.1/tcp/4800".into()],
            ..HomeConfig::default()
        };
        let config = serve_config(&parsed(&[]), &file).expect("config");
        assert_eq!(listen(&config), ["/ip4/127.0.0.1/tcp/4800"]);
        let config =
            serve_config(&parsed(&["--listen", "/ip4/127.0.0.1/tcp/0"]), &file).expect("config");
        assert_eq!(listen(&config), ["/ip4/127.0.0.1/tcp/0"]);
        let bad = HomeConfig {
            peers: Vec::new(),
            listen: vec!["everywhere".into()],
            ..HomeConfig::default()
        };
        let error = serve_config(&parsed(&[]), &bad).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("config.json's listen `everywhere`"),
            "{error}"
        );
    }

    /// README: a flag wins over the file (and the environment merged into it), which wins
    /// over the default.
    #[test]
    fn flags_win_over_the_settings_file_which_wins_over_defaults() {
        let file = HomeConfig {
            mdns: Some(false),
            sync_interval: Some(5),
            max_connections_per_ip: Some(3),
            ..HomeConfig::default()
        };
        let config = serve_config(&parsed(&[]), &file).expect("config");
        assert!(!config.mdns);
        assert_eq!(config.sync_interval, Duration::from_secs(5));
        assert_eq!(config.max_connections_per_ip, 3);
        let flags = parsed(&["--sync-interval", "9", "--max-connections-per-ip", "7"]);
        let config = serve_config(&flags, &file).expect("config");
        assert_eq!(config.sync_interval, Duration::from_secs(9));
        assert_eq!(config.max_connections_per_ip, 7);
    }

    /// The relay is off and UPnP on by default; `--relay` and its limits, `--no-upnp`, and
    /// the `[reach]` keys under them.
    #[test]
    fn relay_and_upnp_come_from_flags_over_the_reach_keys() {
        let config = serve_config(&parsed(&[]), &HomeConfig::default()).expect("config");
        assert_eq!(config.reach.relay, None);
        assert!(config.reach.upnp);

        let config = serve_config(
            &parsed(&["--relay", "--relay-max-circuits", "5", "--no-upnp"]),
            &HomeConfig::default(),
        )
        .expect("config");
        let limits = config.reach.relay.expect("relay on");
        assert_eq!(limits.max_circuits, 5);
        assert_eq!(limits.max_circuits_per_peer, 4);
        assert_eq!(limits.max_circuit_bytes, 64 << 20);
        assert!(!config.reach.upnp);

        let mut file = HomeConfig::default();
        file.reach.relay = Some(true);
        file.reach.upnp = Some(false);
        file.reach.relay_max_circuit_secs = Some(60);
        file.reach.relay_max_circuits = Some(9);
        let config = serve_config(&parsed(&["--relay-max-circuits", "7"]), &file).expect("config");
        let limits = config.reach.relay.expect("relay on from the file");
        assert_eq!(limits.max_circuits, 7, "the flag wins over the file");
        assert_eq!(limits.max_circuit_duration, Duration::from_secs(60));
        assert!(!config.reach.upnp);
    }
}
