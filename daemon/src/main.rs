//! `spread`: the daemon binary. Same flags as the original:
//! `spread [-l y|n] [-n <proc name>] [-c <config file>]`, plus
//! `--extensions FILE` for spread-rs's own settings.

#![deny(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use log::{error, info, warn};

use spread_daemon::auth::IpAccessList;
use spread_daemon::configuration::{Configuration, DaemonEntry, InterfaceKinds};
use spread_daemon::engine::{Engine, EngineConfig};
use spread_daemon::logging;
use spread_daemon::network::{DaemonInterface, UdpChannels};
use spread_daemon::notify::{Notifier, NOTIFY_SOCKET_ENV};
use spread_daemon::ring::RingParams;
use spread_daemon::shell::{self, Listen, RingAddresses, Shell};

#[derive(Parser, Debug)]
#[command(
    name = "spread",
    version,
    about = "Spread group communication daemon (spread-rs, wire-compatible with Spread 4.4)",
    after_help = "Without -c, spread.conf is looked for where Spread 4.4 looks; if none is found, one daemon \
                  runs on 127.0.0.1:4803 from a built-in configuration.\nspread-rs's own settings are read \
                  from spread-rs.toml next to the configuration file (or --extensions FILE).\nLogging: DebugFlags in the \
                  configuration, or RUST_LOG (e.g. RUST_LOG=spread::session=debug).\nReload (Dynamic Configuration): spmonitor's \"reload configuration\" re-reads the file on every daemon; \
                  SIGHUP re-reads it on this daemon only (a spread-rs extension: the original has no SIGHUP \
                  reload). Reload every daemon of the ring."
)]
struct Cli {
    /// Force this daemon's name (its entry in the configuration).
    #[arg(short = 'n', value_name = "proc name")]
    proc_name: Option<String>,
    /// Configuration file.
    #[arg(short = 'c', value_name = "file name")]
    config: Option<PathBuf>,
    /// spread-rs extensions file (default: spread-rs.toml next to the
    /// configuration file, when it exists).
    #[arg(long = "extensions", value_name = "FILE")]
    extensions: Option<PathBuf>,
    /// Print the status log (y/n).
    #[arg(short = 'l', value_name = "y/n", value_parser = ["y", "n"])]
    log: Option<String>,
}

fn main() -> ExitCode {
    // What the dynamic linker and the C library's start-up touched is not
    // needed again; releasing it here keeps it out of the peak RSS too.
    let startup_pages = shell::StartupPages::open();
    startup_pages.release();
    let cli = Cli::parse();
    if let Some(name) = &cli.proc_name {
        if name.len() > 19 {
            eprintln!("spread: proc name {name} too long (at most 19 characters)");
            return ExitCode::from(1);
        }
    }
    let (config, source, path) = match load_configuration(cli.config.as_ref(), cli.extensions.as_deref()) {
        Ok(found) => found,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = logging::init(&config) {
        eprintln!("spread: {e}");
        return ExitCode::from(1);
    }
    for warning in &config.warnings {
        warn!("{warning}");
    }
    if let Some(file) = &config.extensions_file {
        info!("extensions file {}", file.display());
    }
    match run(cli, config, source, path, &startup_pages) {
        Ok(()) => {
            info!("Spread daemon exiting normally");
            ExitCode::SUCCESS
        }
        Err(message) => {
            error!("{message}");
            ExitCode::from(1)
        }
    }
}

fn load_configuration(
    explicit: Option<&PathBuf>,
    extensions: Option<&std::path::Path>,
) -> Result<(Configuration, String, Option<PathBuf>), String> {
    if let Some(path) = explicit {
        if !path.is_file() {
            // The original then falls back to the usual places; say so.
            eprintln!(
                "spread: configuration file {} not found; looking in the usual places",
                path.display()
            );
        }
    }
    match Configuration::locate(explicit.map(PathBuf::as_path)) {
        Ok(path) => Configuration::load_with_extensions(&path, extensions)
            .map(|c| (c, path.display().to_string(), Some(path.clone())))
            .map_err(|e| e.to_string()),
        Err(e) if explicit.is_some() => Err(e.to_string()),
        Err(_) => {
            let mut config = Configuration::embedded_default();
            config
                .read_extensions(None, extensions)
                .map_err(|e| e.to_string())?;
            Ok((config, String::from(BUILT_IN), None))
        }
    }
}

const BUILT_IN: &str = "built-in default";

fn run(
    cli: Cli,
    config: Configuration,
    source: String,
    path: Option<PathBuf>,
    startup_pages: &shell::StartupPages,
) -> Result<(), String> {
    let host_addrs = shell::host_ipv4_addrs();
    let me = config
        .find_daemon(cli.proc_name.as_deref(), &host_addrs)
        .map_err(|e| e.to_string())?;
    let entry = config.daemon(me).ok_or("own daemon entry vanished")?.clone();
    let port = config.daemon_port(me);
    if source == BUILT_IN {
        info!(
            "no spread.conf found: running one daemon '{}' on {}:{} from the built-in configuration",
            entry.name, entry.ip, port
        );
    } else {
        info!(
            "configuration {source}: this daemon is '{}' ({}:{})",
            entry.name, entry.ip, port
        );
    }
    info!(
        "configuration hash {} over {} daemons",
        config.hash(),
        config.num_daemons()
    );

    let ip_access = match IpAccessList::load_default(None) {
        Some(Ok(list)) => Some(list),
        Some(Err(e)) => return Err(format!("IP access file: {e}")),
        None => {
            if config.allowed_auth_methods.iter().any(|m| m == "IP") {
                warn!("IP authentication is allowed but no spread.access_ip was found: IP will admit nobody");
            }
            None
        }
    };
    let now = spread_daemon::shell::read_clock();
    let unix_secs = now.unix_secs;
    let seed = unix_secs as u64 ^ ((std::process::id() as u64) << 32);
    let mut engine_config =
        EngineConfig::from_configuration(&config, me, ip_access, seed).ok_or("own daemon entry vanished")?;
    engine_config.max_sessions = session_limit(engine_config.max_sessions);
    // A daemon alone orders locally, but binds the ring's ports all the
    // same (the original does: its monitor protocol lives there).
    let (params, interfaces, addresses) = ring_setup(&config, &entry);
    let alone = config.num_daemons() == 1;
    let engine = if alone {
        let mut engine = Engine::new(engine_config, now);
        engine.set_alone_flow(params.flow);
        engine
    } else {
        Engine::with_ring(engine_config, params, now)
    };
    // An implicit interface (no interface block) listens on every address.
    let mut tcp: Vec<SocketAddr> = entry
        .interfaces
        .iter()
        .filter(|i| i.kinds.serves_clients())
        .map(|i| {
            let ip = if i.kinds.contains(InterfaceKinds::ANY) {
                Ipv4Addr::UNSPECIFIED
            } else {
                i.ip
            };
            SocketAddr::from((ip, port))
        })
        .collect();
    if tcp.is_empty() {
        tcp.push(SocketAddr::from((entry.ip, port)));
    }
    tcp.dedup();
    let listen = Listen {
        tcp,
        unix: Some(PathBuf::from(format!("/tmp/{port}"))),
    };
    let mut shell = Shell::new(engine, &listen).map_err(|e| e.to_string())?;
    if let Some(path) = path {
        // A relative path would not survive the chroot; the original then
        // finds ./spread.conf in RuntimeDir. Keep the absolute one.
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        shell.attach_reloader(spread_daemon::reload::Reloader::new(
            path,
            cli.proc_name.clone(),
            config.clone(),
            me,
        ));
    }
    let segment = config
        .segments
        .iter()
        .find(|s| s.daemons.iter().any(|d| d.name == entry.name));
    let bcast = segment
        .map(|s| s.address)
        .filter(|_| segment.is_some_and(|s| s.daemons.len() > 1));
    let multicast = bcast.filter(|a| a.is_multicast());
    let channels = UdpChannels::bind(port, &interfaces, bcast.filter(|a| !a.is_multicast()), multicast)
        .map(|c| c.skipping_own_datagrams(entry.ip))
        .map_err(|e| format!("cannot bind the ring's UDP ports {port}/{}: {e}", port + 1))?;
    shell
        .attach_ring(channels, addresses)
        .map_err(|e| e.to_string())?;
    let monitor = spread_daemon::monitor::MonitorConfig {
        my_id: u32::from(entry.ip),
        daemon_ids: config.daemon_refs().map(|(_, d)| u32::from(d.ip)).collect(),
        daemon_addrs: config
            .daemon_refs()
            .flat_map(|(_, d)| d.interfaces.iter().map(|i| i.ip).chain([d.ip]))
            .collect(),
        conf_hash: config.hash(),
        dangerous: config.dangerous_monitor,
    };
    shell
        .attach_monitor(spread_daemon::monitor::MonitorEngine::new(monitor, now.mono))
        .map_err(|e| e.to_string())?;
    if alone {
        info!("Membership id is ({}, {})", entry.ip, unix_secs);
    }

    // Connected before a chroot could hide the manager's socket.
    let notifier = Notifier::from_env().unwrap_or_else(|e| {
        warn!("cannot reach the service manager's ${NOTIFY_SOCKET_ENV}: {e}");
        Notifier::disabled()
    });
    // Argument and configuration parsing, logger and socket set-up are done.
    startup_pages.release();
    drop_privileges(&config, &mut shell);
    // Every listening socket is bound: tell a Type=notify service manager.
    if let Err(e) = notifier.ready(&format!("daemon '{}' serving clients on port {port}", entry.name)) {
        warn!("cannot notify the service manager: {e}");
    }
    // The privilege drop (user database look-ups) is the last start-up step:
    // from here only the pages the event loop runs become resident again.
    log::debug!("released {} kB of start-up code pages", startup_pages.release());
    let result = shell.run().map_err(|e| e.to_string());
    let _ = notifier.stopping();
    result
}

/// The ring's view of the configuration, its sockets' interfaces and the
/// addresses its datagrams go to.
fn ring_setup(config: &Configuration, me: &DaemonEntry) -> (RingParams, Vec<DaemonInterface>, RingAddresses) {
    let params = RingParams::from_configuration(config, me);
    let interfaces = me
        .interfaces
        .iter()
        .filter(|i| i.kinds.serves_daemons())
        .map(|i| DaemonInterface {
            ip: (!i.kinds.contains(InterfaceKinds::ANY)).then_some(i.ip),
        })
        .collect::<Vec<_>>();
    let interfaces = if interfaces.is_empty() {
        vec![DaemonInterface { ip: None }]
    } else {
        interfaces
    };
    (params, interfaces, RingAddresses::from_configuration(config))
}

/// When started as root: chroot into RuntimeDir and become DaemonUser /
/// DaemonGroup. Explicitly configured values must work; the built-in
/// defaults are skipped with a warning when the user or directory is missing.
fn drop_privileges(config: &Configuration, shell: &mut Shell) {
    let explicit =
        config.daemon_user.is_some() || config.daemon_group.is_some() || config.runtime_dir.is_some();
    let result = shell.drop_privileges(
        config.daemon_user_or_default(),
        config.daemon_group_or_default(),
        config.runtime_dir_or_default(),
    );
    match result {
        Ok(()) => {}
        Err(e) if explicit => {
            error!("{e}");
            std::process::exit(1);
        }
        Err(e) => warn!(
            "still running as root: {e} (set DaemonUser, DaemonGroup and RuntimeDir to drop privileges)"
        ),
    }
}

/// Descriptors the daemon holds besides its sessions' (standard streams,
/// epoll, signal pipe, listeners, ring sockets, log file, the one it needs to
/// accept and refuse a connection past the limit), with room to spare.
const FIXED_DESCRIPTORS: u64 = 24;

/// The session limit the daemon can honour for the configured `wanted`:
/// raises the soft descriptor limit when `wanted` needs it, and when even the
/// hard limit is too low serves fewer sessions, saying so, so that clients
/// past it get a clean REJECT_QUOTA instead of a failed accept.
fn session_limit(wanted: usize) -> usize {
    let needed = wanted as u64 + FIXED_DESCRIPTORS;
    match shell::raise_open_files_limit(needed) {
        Ok((soft, _)) if soft >= needed => {
            log::debug!(target: "spread::session", "session limit {wanted} (open files limit {soft})");
            wanted
        }
        Ok((soft, hard)) => {
            let possible = soft.saturating_sub(FIXED_DESCRIPTORS).max(1) as usize;
            log::warn!(
                target: "spread::session",
                "spread-rs.toml: MaxSessions = {wanted} cannot be honoured: it needs {needed} open files but the limit is \
                 {soft} (hard limit {hard}); serving at most {possible} sessions (raise `ulimit -n` or \
                 LimitNOFILE= to serve more)"
            );
            possible
        }
        Err(e) => {
            log::warn!(
                target: "spread::session",
                "cannot read or raise the open files limit ({e}); session limit stays {wanted}"
            );
            wanted
        }
    }
}
