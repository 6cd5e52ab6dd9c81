//! spmonitor's menu replayed against the monitor captures of the original
//! (`../shared/spread4-wire/monitor/`): what was typed into the original
//! spmonitor is typed into ours, the daemons' status replies of the
//! capture are fed to it at their capture times, and
//! * what it prints must equal what the original printed (`*.monitor.txt`),
//!   but for the menu listing (ours is worded differently) and the
//!   original's configuration-loading chatter;
//! * every datagram it sends must equal, byte for byte and in order, the
//!   monitor datagrams of the capture (`*.jsonl`).
//!
//! The captures' addresses (10.99.0.x) are only compared, never used: the
//! menu runs over a recording [`Link`]. Skipped when the captures are
//! missing, except under `CI=true`.

use std::io::Cursor;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spread_daemon::configuration::Configuration;
use spread_tools::input::Input;
use spread_tools::monitor::menu::{Link, Monitor, Next};

fn captures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spread4-wire/monitor");
    if dir.join("m01_status_idle_then_traffic.monitor.txt").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the monitor captures are missing at {}",
        dir.display()
    );
    eprintln!("skipped: no captures at {}", dir.display());
    None
}

#[derive(Default)]
struct Recorder(Vec<(SocketAddrV4, Vec<u8>)>);

impl Link for Recorder {
    fn send(&mut self, to: SocketAddrV4, datagram: &[u8]) {
        self.0.push((to, datagram.to_vec()));
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const MONITOR_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const MONITOR_PORT: u16 = 6543;

/// What happened to the monitor in a capture, in time order.
enum Event {
    Start { period: u64, accelerated: bool },
    Typed(Vec<String>),
    Rewritten(Vec<String>),
    Reply(Vec<u8>),
}

fn conf_text(daemons: &[String], dangerous: bool, accelerated: bool) -> String {
    let mut t = String::from("Spread_Segment 10.99.0.255:4803 {\n");
    for d in daemons {
        let n: u8 = d[1..].parse().unwrap();
        t.push_str(&format!("\t{d} 10.99.0.{n}\n"));
    }
    t.push_str(
        "}\nRuntimeDir = RUNDIR/d1/run\nDaemonUser = root\nDaemonGroup = root\nSocketPortReuse = ON\n",
    );
    if dangerous {
        t.push_str("DangerousMonitor = true\n");
    }
    if accelerated {
        t.push_str("AcceleratedRing = true\n");
    }
    t
}

/// (time, event) from the monitor text and the datagrams to the monitor.
fn events(dir: &Path, scenario: &str) -> Vec<(f64, Event)> {
    let text = std::fs::read_to_string(dir.join(format!("{scenario}.monitor.txt"))).unwrap();
    let mut out = Vec::new();
    for mark in text.split("#### [t=+").skip(1) {
        let (t, rest) = mark.split_once(']').unwrap();
        let t: f64 = t.parse().unwrap();
        let line = rest.lines().next().unwrap().trim();
        if let Some(typed) = line.strip_prefix("typed: ") {
            let typed = typed.split("   (").next().unwrap();
            let lines = typed
                .split(" | ")
                .map(|s| s.trim_matches('\'').to_string())
                .collect();
            out.push((t, Event::Typed(lines)));
        } else if line.contains("spmonitor") && line.contains("started") {
            let period = line
                .split("-t ")
                .nth(1)
                .and_then(|p| p.split(' ').next()?.parse().ok())
                .unwrap_or(10);
            out.push((
                t,
                Event::Start {
                    period,
                    accelerated: line.contains("AcceleratedRing = true"),
                },
            ));
        } else if let Some(seg) = line.split("rewritten: segment ").nth(1) {
            let names = seg
                .split(" (")
                .next()
                .unwrap()
                .split(' ')
                .map(str::to_string)
                .collect();
            out.push((t, Event::Rewritten(names)));
        }
    }
    let jsonl = std::fs::read_to_string(dir.join(format!("{scenario}.jsonl"))).unwrap();
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["dst"] == "10.99.0.1:6543" {
            out.push((
                v["t"].as_f64().unwrap(),
                Event::Reply(hex(v["hex"].as_str().unwrap())),
            ));
        }
    }
    out.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    out
}

/// The monitor commands of the capture: datagrams to a daemon port with
/// the monitor magic and the monitor's reply port, in time order.
fn captured_commands(dir: &Path, scenario: &str) -> Vec<(SocketAddrV4, Vec<u8>)> {
    let jsonl = std::fs::read_to_string(dir.join(format!("{scenario}.jsonl"))).unwrap();
    let mut out = Vec::new();
    for line in jsonl.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let bytes = hex(v["hex"].as_str().unwrap());
        let src = v["src"].as_str().unwrap();
        if !src.starts_with("10.99.0.1:") || bytes.len() < 40 {
            continue;
        }
        let magic = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) == 15_051_963;
        let reply_port = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) == u32::from(MONITOR_PORT);
        if magic && reply_port {
            out.push((v["dst"].as_str().unwrap().parse().unwrap(), bytes));
        }
    }
    out
}

fn strip_original(text: &str) -> String {
    // The capture's annotations, each to the end of its line.
    let mut t = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("#### [t=") {
        t.push_str(&rest[..i]);
        rest = rest[i..].split_once('\n').map_or("", |(_, r)| r);
    }
    t.push_str(rest);
    // Its configuration parser's messages.
    let chatter = [
        "Conf_load_conf_file:",
        "Set runtime directory",
        "Set user name",
        "Set group name",
        "Setting SO_REUSEADDR",
    ];
    let t: String = t
        .split_inclusive('\n')
        .filter(|l| !chatter.iter().any(|c| l.starts_with(c)))
        .collect();
    mask_menus(&t)
}

/// The menu listing, the original's or ours, as `<menu>`.
fn mask_menus(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let original = rest.find("=============\nMonitor Menu:\n");
        let ours = rest.find("----- spmonitor commands -----\n");
        let (start, end_marker) = match (original, ours) {
            (Some(a), Some(b)) if a < b => (a, "\t9. Exit\n"),
            (Some(a), None) => (a, "\t9. Exit\n"),
            (_, Some(b)) => (b, "\t9   exit (q too)\n"),
            (None, None) => break,
        };
        out.push_str(&rest[..start]);
        out.push_str("<menu>\n");
        let tail = &rest[start..];
        let end = tail.find(end_marker).expect("end of the menu") + end_marker.len();
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Replay a chain of scenarios on one monitor process (as they were
/// captured); returns nothing, panics on the first difference.
fn replay_chain(dir: &Path, chain: &[&str], dangerous: bool) {
    let work = std::env::temp_dir().join(format!(
        "spread-tools-monitor-{}-{}",
        std::process::id(),
        chain[0]
    ));
    std::fs::create_dir_all(&work).unwrap();
    let conf_path = work.join("spread.conf");
    let mut daemons: Vec<String> = ["d1", "d2", "d3"].map(String::from).to_vec();
    std::fs::write(&conf_path, conf_text(&daemons, dangerous, false)).unwrap();
    let origin = Instant::now();
    let mut monitor: Option<Monitor<Recorder>> = None;
    let mut base = 0.0;
    let new_monitor = |path: &Path, period: u64| {
        let conf = Configuration::load(path).unwrap();
        let mut m = Monitor::new(
            Recorder::default(),
            path.to_path_buf(),
            conf,
            u32::from(MONITOR_IP),
            MONITOR_PORT,
            Duration::from_secs(period),
        );
        m.start();
        m
    };
    for scenario in chain {
        let mut printed = Vec::new();
        let mut sent = Vec::new();
        let mut end = 0.0;
        for (t, event) in events(dir, scenario) {
            end = t;
            let now = origin + Duration::from_secs_f64(base + t);
            if let Some(m) = monitor.as_mut() {
                m.run_timers(now);
            }
            match event {
                Event::Start { period, accelerated } => {
                    if let Some(mut old) = monitor.take() {
                        printed.extend(old.take_output());
                        sent.extend(std::mem::take(&mut old.link_mut().0));
                    }
                    let path = if accelerated {
                        let p = work.join("spread-accel.conf");
                        std::fs::write(&p, conf_text(&daemons, dangerous, true)).unwrap();
                        p
                    } else {
                        conf_path.clone()
                    };
                    monitor = Some(new_monitor(&path, period));
                }
                Event::Rewritten(names) => {
                    daemons = names;
                    std::fs::write(&conf_path, conf_text(&daemons, dangerous, false)).unwrap();
                }
                Event::Typed(lines) => {
                    // A chain whose monitor was started before its first
                    // scenario: the capture does not have its menu.
                    let m = monitor.get_or_insert_with(|| {
                        let mut m = new_monitor(&conf_path, 4);
                        m.take_output();
                        m
                    });
                    let mut text = lines.join("\n");
                    text.push('\n');
                    let mut input = Input::spawn(Cursor::new(text.into_bytes()), Arc::new(|| {}));
                    if let Next::Exit(code) = m.command(&mut input, now) {
                        assert_eq!(code, 0);
                        // It stays in place until the next one starts.
                    }
                }
                Event::Reply(bytes) => {
                    if let Some(m) = monitor.as_mut() {
                        m.report(&bytes);
                    }
                }
            }
            if let Some(m) = monitor.as_mut() {
                printed.extend(m.take_output());
            }
        }
        if let Some(m) = monitor.as_mut() {
            m.run_timers(origin + Duration::from_secs_f64(base + end));
            printed.extend(m.take_output());
            sent.extend(std::mem::take(&mut m.link_mut().0));
        }
        base += end + 1000.0;

        let want = std::fs::read_to_string(dir.join(format!("{scenario}.monitor.txt"))).unwrap();
        let want = strip_original(&want);
        let got = mask_menus(&String::from_utf8_lossy(&printed));
        if want != got {
            let line = want
                .lines()
                .zip(got.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{scenario}: output differs from line {}:\n  original: {:?}\n  ours:     {:?}\n--- ours:\n{got}",
                line + 1,
                want.lines().nth(line),
                got.lines().nth(line)
            );
        }
        assert!(got.contains("Monitor> "), "{scenario}: nothing compared");
        let captured = captured_commands(dir, scenario);
        assert!(
            !captured.is_empty(),
            "{scenario}: no monitor datagram in the capture"
        );
        assert_eq!(sent.len(), captured.len(), "{scenario}: number of datagrams sent");
        for (i, ((to, bytes), (cto, cbytes))) in sent.iter().zip(&captured).enumerate() {
            assert_eq!(to, cto, "{scenario}: datagram {i} goes elsewhere");
            assert_eq!(bytes, cbytes, "{scenario}: datagram {i} to {to} differs");
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// Phase A of the captures: status, partition and its cancel, flow control
/// (also with an AcceleratedRing monitor), terminate.
#[test]
fn menu_replays_phase_a_like_the_original() {
    let Some(dir) = captures() else { return };
    replay_chain(
        &dir,
        &[
            "m01_status_idle_then_traffic",
            "m02_partition_d3_then_cancel",
            "m03_flow_control",
            "m07_terminate_d3",
        ],
        true,
    );
}

/// Phase B: the same commands to daemons that refuse them, then reloads
/// that add and remove a daemon, and one with an unchanged file.
#[test]
fn menu_replays_phase_b_like_the_original() {
    let Some(dir) = captures() else { return };
    replay_chain(
        &dir,
        &[
            "m04_dangerous_off_commands_denied",
            "m05a_reload_add_d4",
            "m05b_reload_remove_d2",
            "m06_reload_identical_file",
        ],
        false,
    );
}
