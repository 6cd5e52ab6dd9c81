//! `spmonitor --status [--json]`: ask every daemon of the configuration for
//! its status once, print what came back, and say whether all answered
//! (an extension: the original spmonitor is interactive only).
//!
//! The queries are the original's STATUS packets with one addition: their
//! `token_round` asks for our extension counters
//! ([`spread_wire::monitor::EXTENSION_REQUEST`]). Original daemons ignore
//! that field and answer the plain 136-byte record; ours append the counters,
//! which the original spmonitor never reads.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use spread_daemon::configuration::Configuration;
use spread_wire::endian::ByteOrder;
use spread_wire::monitor::{Command, CommandPacket, StatusReply, EXTENSION_REQUEST};

/// One daemon of the configuration and what it answered.
#[derive(Clone, Debug)]
pub struct Probed {
    pub name: String,
    pub address: SocketAddrV4,
    pub reply: Option<StatusReply>,
}

/// Query every daemon of `conf` from monitor identity `my_id`, replies on
/// `replies` (bound to the monitor's port `reply_port`), for at most `wait`;
/// unanswered daemons are asked again every `resend`.
pub fn probe(
    conf: &Configuration,
    my_id: u32,
    reply_port: u16,
    sender: &UdpSocket,
    replies: &UdpSocket,
    wait: Duration,
) -> Vec<Probed> {
    let resend = Duration::from_millis(500);
    let mut daemons: Vec<Probed> = conf
        .daemon_refs()
        .map(|(r, d)| Probed {
            name: d.name.clone(),
            address: SocketAddrV4::new(d.ip, conf.daemon_port(r)),
            reply: None,
        })
        .collect();
    let mut query = CommandPacket::new(my_id, reply_port, Command::Status { body: Vec::new() });
    query.header.token_round = EXTENSION_REQUEST;
    let datagram = query.emit(ByteOrder::NATIVE);
    let by_id: BTreeMap<u32, usize> = daemons
        .iter()
        .enumerate()
        .map(|(i, d)| (u32::from(*d.address.ip()), i))
        .collect();
    let deadline = Instant::now() + wait;
    let mut next_send = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    while daemons.iter().any(|d| d.reply.is_none()) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if now >= next_send {
            for d in daemons.iter().filter(|d| d.reply.is_none()) {
                if let Err(e) = sender.send_to(&datagram, d.address) {
                    eprintln!("spmonitor: sending to {} failed: {e}", d.address);
                }
            }
            next_send = now + resend;
        }
        let until = next_send
            .min(deadline)
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        let _ = replies.set_read_timeout(Some(until));
        match replies.recv_from(&mut buf) {
            Ok((n, from)) => match StatusReply::parse(&buf[..n]) {
                Ok((reply, _)) => {
                    let id = reply.header.proc_id;
                    match by_id.get(&id) {
                        Some(&i) => daemons[i].reply = Some(reply),
                        None => eprintln!(
                            "spmonitor: status from {} (via {from}), not a daemon of the configuration",
                            Ipv4Addr::from(id)
                        ),
                    }
                }
                Err(e) => eprintln!("spmonitor: unreadable reply from {from}: {e}"),
            },
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                eprintln!("spmonitor: receiving replies failed: {e}");
                break;
            }
        }
    }
    daemons
}

fn state_name(state: i32) -> &'static str {
    match state {
        1 => "OP",
        2 => "SEG",
        3 => "REPRESENTED",
        4 => "GATHER",
        5 => "FORM",
        6 => "EVS",
        _ => "?",
    }
}

fn gstate_name(gstate: i32) -> &'static str {
    match gstate {
        1 => "GOP",
        2 => "GTRANS",
        3 => "GGATHER",
        4 => "GGT",
        _ => "?",
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn daemon_name(conf: &Configuration, id: i32) -> String {
    let ip = Ipv4Addr::from(id as u32);
    conf.daemon_by_ip(ip)
        .and_then(|r| conf.daemon(r))
        .map_or_else(|| ip.to_string(), |d| d.name.clone())
}

/// The result as one JSON object: `all_answered` and per daemon its name,
/// address, whether it answered, the 30 fields of the record (ids as
/// dotted quads, plus `state_name`, `gstate_name`, `leader`) and our
/// extension counters when the daemon sent them.
pub fn to_json(conf: &Configuration, probed: &[Probed]) -> String {
    let all = probed.iter().all(|p| p.reply.is_some());
    let mut out = format!("{{\"all_answered\":{all},\"daemons\":[");
    for (i, p) in probed.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{\"name\":{},\"address\":\"{}\",\"answered\":{}",
            json_string(&p.name),
            p.address,
            p.reply.is_some()
        ));
        if let Some(r) = &p.reply {
            out.push_str(",\"status\":{");
            let fields: Vec<String> = r
                .status
                .fields()
                .into_iter()
                .map(|(k, v)| match k {
                    "my_id" | "leader_id" => format!("\"{k}\":\"{}\"", Ipv4Addr::from(v as u32)),
                    _ => format!("\"{k}\":{v}"),
                })
                .collect();
            out.push_str(&fields.join(","));
            out.push_str(&format!(
                ",\"state_name\":\"{}\",\"gstate_name\":\"{}\",\"leader\":{}}}",
                state_name(r.status.state),
                gstate_name(r.status.gstate),
                json_string(&daemon_name(conf, r.status.leader_id))
            ));
            if let Some(ext) = &r.extension {
                let counters: Vec<String> = ext
                    .counters
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", json_string(k)))
                    .collect();
                out.push_str(&format!(",\"extension\":{{{}}}", counters.join(",")));
            }
        }
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// The result as text, one block per daemon.
pub fn to_text(conf: &Configuration, probed: &[Probed]) -> String {
    let mut out = String::new();
    for p in probed {
        match &p.reply {
            None => out.push_str(&format!("{} {}: no answer\n", p.name, p.address)),
            Some(r) => {
                let s = &r.status;
                out.push_str(&format!(
                    "{} {}: V {}.{}.{} state {} gstate {} up {} s, {} procs in {} segments, leader {}\n",
                    p.name,
                    p.address,
                    s.major_version,
                    s.minor_version,
                    s.patch_version,
                    state_name(s.state),
                    gstate_name(s.gstate),
                    s.sec,
                    s.num_procs,
                    s.num_segments,
                    daemon_name(conf, s.leader_id)
                ));
                for (k, v) in s.fields() {
                    if !matches!(k, "my_id" | "leader_id" | "state" | "gstate" | "sec") {
                        out.push_str(&format!("  {k} {v}\n"));
                    }
                }
                if let Some(ext) = &r.extension {
                    for (k, v) in &ext.counters {
                        out.push_str(&format!("  {k} {v} (spread-rs)\n"));
                    }
                }
            }
        }
    }
    out
}
