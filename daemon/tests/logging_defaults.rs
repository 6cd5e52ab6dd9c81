//! What the daemon logs by default, like the original: its configuration,
//! ring membership changes and errors, not a line per client or group
//! event; those appear when DebugFlags (or RUST_LOG) ask for SESSION and
//! GROUPS.

mod common;

use common::{Daemon, Transport};
use spread_wire::client::service::{CAUSED_BY_JOIN, CAUSED_BY_LEAVE};

/// `count` clients each connect, join `g` (and see their join), leave
/// and disconnect; a watcher in `g` sees every join and leave.
fn churn(daemon: &Daemon, count: usize) {
    let mut watcher = daemon.client(Transport::Tcp, "watcher", true);
    watcher.join("g");
    watcher.recv_membership(CAUSED_BY_JOIN, common::WAIT);
    for i in 0..count {
        let transport = if i % 2 == 0 {
            Transport::Unix
        } else {
            Transport::Tcp
        };
        let mut c = daemon.client(transport, &format!("c{i}"), true);
        c.join("g");
        c.recv_membership(CAUSED_BY_JOIN, common::WAIT);
        c.leave("g");
        c.disconnect();
    }
    // Everything above was handled once the watcher saw every leave.
    let mut leaves = 0;
    while leaves < count {
        let m = watcher.recv();
        if m.service_type() & CAUSED_BY_LEAVE != 0 {
            leaves += 1;
        }
    }
}

fn per_client_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("spread::session") || l.contains("spread::groups"))
        .filter(|l| l.contains(" connected (connection") || l.contains(" leaves: ") || l.contains("group g "))
        .collect()
}

#[test]
fn defaults_log_configuration_and_membership_not_clients() {
    let daemon = Daemon::start_logging("", &[], None);
    churn(&daemon, 200);
    let log = daemon.log();
    let noisy = per_client_lines(&log);
    assert!(
        noisy.is_empty(),
        "per-client lines with the defaults:\n{}",
        noisy.join("\n")
    );
    assert!(
        log.contains("configuration hash"),
        "the configuration is logged:\n{log}"
    );
    assert!(
        log.contains("listening for clients"),
        "the client ports are logged:\n{log}"
    );
    assert!(
        log.contains("Membership id is ("),
        "the ring membership is logged:\n{log}"
    );
    // 200 sessions, each with a join and a leave: a handful of lines in all.
    assert!(log.lines().count() < 30, "{} lines:\n{log}", log.lines().count());
}

#[test]
fn debug_flags_session_and_groups_show_client_events() {
    let daemon = Daemon::start_logging("DebugFlags = { SESSION GROUPS }\n", &[], None);
    churn(&daemon, 20);
    let log = daemon.log();
    let lines = per_client_lines(&log);
    let connected = lines
        .iter()
        .filter(|l| l.contains(" connected (connection"))
        .count();
    let leaves = lines.iter().filter(|l| l.contains(" leaves: ")).count();
    let group = lines.iter().filter(|l| l.contains("group g ")).count();
    assert!(
        connected >= 21 && leaves >= 20,
        "sessions: {connected} connected, {leaves} left:\n{log}"
    );
    assert!(group >= 40, "group events: {group}:\n{log}");
}
