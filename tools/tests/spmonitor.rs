//! The spmonitor binary on loopback: three stand-in daemons (UDP sockets
//! on 127.0.0.1-3) answer its STATUS queries with the status records d1,
//! d2 and d3 sent in the m01 capture of the original (addresses moved to
//! loopback) and record its commands; the menu is driven through stdin.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{pick_port, Tool};

/// m01 at 2.449 s: the replies of d1, d2, d3 (10.99.0.1-3).
const M01_REPLIES: [&str; 3] = [
    "80000081000000000100630a000000000000000000000000000000000000000060000000000000000b00000001000000010000000200000002000000040000000000000000000000000000000000000002000000020000000200000012000000160000000100630a0100630a00000000020003000100a000140000000f0000000000040004000000",
    "80000081000000000200630a000000000000000000000000000000000000000060000000000000000a00000001000000010000000100000003000000040000000000000000000000000000000000000002000000020000000200000012000000150000000200630a0100630a00000000020003000100a000140000000f0000000000040004000000",
    "80000081000000000300630a00000000000000000000000000000000000000006000000000000000090000000100000001000000010000000100000002000000000000000000000000000000000000000200000002000000020000000f000000160000000300630a0100630a00000000010003000100a000140000000f0000000000040004000000",
];

/// What the original printed for d1's reply (m01.monitor.txt).
const M01_D1_BLOCK: &str = "\
============================
Status at d1 V 4.04. 0 (state 1, gstate 1) after 11 seconds :
Membership  :  3  procs in 1 segments, leader is d1, regular protocol
rounds   :      22\ttok_hurry :      18\tmemb change:       2
sent pack:       2\trecv pack :       2\tretrans    :       0
u retrans:       0\ts retrans :       0\tb retrans  :       0
My_aru   :       2\tAru       :       2\tHighest seq:       2
Sessions :       0\tGroups    :       0\tWindow     :     160
Deliver M:       0\tDeliver Pk:       4\tP/A Window :      20/15
Delta Mes:       0\tDelta Pk  :       2\tDelta sec  :      11
==================================
";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The reply with 10.99.0.x replaced by 127.0.0.x (header proc_id, my_id,
/// leader_id; little-endian words).
fn on_loopback(mut reply: Vec<u8>) -> Vec<u8> {
    for off in [8, 40 + 60, 40 + 64] {
        let ip = u32::from_le_bytes(reply[off..off + 4].try_into().unwrap());
        let moved = (127 << 24) | (ip & 0xff);
        reply[off..off + 4].copy_from_slice(&moved.to_le_bytes());
    }
    reply
}

/// Stand-ins for d1..d3: answer STATUS, record everything, in one thread
/// serving the sockets in configuration order (so replies leave in order).
/// (daemon index, datagram) in arrival order.
type Received = Arc<Mutex<Vec<(usize, Vec<u8>)>>>;

struct Daemons {
    got: Received,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Daemons {
    fn start(port: u16) -> Daemons {
        let sockets: Vec<UdpSocket> = (1..=3)
            .map(|i| {
                let s = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, i), port)).expect("bind a stand-in daemon");
                s.set_nonblocking(true).unwrap();
                s
            })
            .collect();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, st) = (got.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                let mut idle = true;
                for (i, s) in sockets.iter().enumerate() {
                    if let Ok((n, _)) = s.recv_from(&mut buf) {
                        idle = false;
                        let d = buf[..n].to_vec();
                        let kind = u32::from_le_bytes(d[0..4].try_into().unwrap()) & 0x0f00_0000;
                        if kind == 0x0100_0000 {
                            let to_ip = Ipv4Addr::from(u32::from_le_bytes(d[8..12].try_into().unwrap()));
                            let to_port = u32::from_le_bytes(d[20..24].try_into().unwrap()) as u16;
                            let reply = on_loopback(hex(M01_REPLIES[i]));
                            let _ = s.send_to(&reply, SocketAddrV4::new(to_ip, to_port));
                        }
                        g.lock().unwrap().push((i, d));
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        Daemons {
            got,
            stop,
            thread: Some(thread),
        }
    }

    fn received(&self) -> Vec<(usize, Vec<u8>)> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn wait_for(tool: &Tool, what: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = String::from_utf8_lossy(&tool.output()).into_owned();
        if out.matches(what).count() >= count || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn kinds(got: &[(usize, Vec<u8>)], kind: u32) -> Vec<(usize, Vec<u8>)> {
    got.iter()
        .filter(|(_, d)| u32::from_le_bytes(d[0..4].try_into().unwrap()) & 0x0f00_0000 == kind)
        .cloned()
        .collect()
}

#[test]
fn spmonitor_menu_over_udp() {
    let port = pick_port();
    let reply_port = pick_port();
    let dir = std::env::temp_dir().join(format!("spread-tools-spmonitor-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("spread.conf");
    std::fs::write(
        &conf,
        format!("Spread_Segment 127.0.0.255:{port} {{\n\td1 127.0.0.1\n\td2 127.0.0.2\n\td3 127.0.0.3\n}}\n"),
    )
    .unwrap();
    let daemons = Daemons::start(port);
    let args: Vec<String> = [
        "-c",
        conf.to_str().unwrap(),
        "-p",
        &reply_port.to_string(),
        "-t",
        "1",
    ]
    .map(String::from)
    .to_vec();
    let mut mon = Tool::start(std::path::Path::new(env!("CARGO_BIN_EXE_spmonitor")), &args);

    // Status on for all: three blocks at once, three more a second later.
    mon.send_line("0\nall\n");
    let out = wait_for(&mon, "Status at d", 6);
    assert!(
        out.contains(M01_D1_BLOCK),
        "d1's block as the original printed it:\n{out}"
    );
    for d in ["d2", "d3"] {
        assert!(
            out.contains(&format!("Status at {d} V 4.04. 0 (state 1, gstate 1)")),
            "{out}"
        );
    }
    assert!(out.matches("Monitor: send status query").count() >= 2, "{out}");
    mon.send_line("0\nnone\n");
    // Partition {d1,d2} / {d3}, sent twice to each; then terminate d3.
    mon.send_line("1\n0\n0\n1");
    mon.send_line("2");
    mon.send_line("8\nd3\n");
    mon.send_line("r");
    mon.send_line("9");
    let (out, code) = mon.finish(Duration::from_secs(10));
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("\td1\t0\n\td2\t0\n\td3\t1\n"),
        "the partition map:\n{out}"
    );
    assert!(out.contains("Monitor: Terminating d3\n"), "{out}");
    assert!(
        out.contains("All Status, Partition, FC, etc commands are reset by configuration reload!"),
        "{out}"
    );
    assert!(out.ends_with("Bye.\n"), "{out}");

    std::thread::sleep(Duration::from_millis(100));
    let got = daemons.received();
    let partitions = kinds(&got, 0x0200_0000);
    let mut split: Vec<usize> = partitions
        .iter()
        .filter(|(_, d)| d[40..46] == [0, 0, 0, 0, 1, 0])
        .map(|(i, _)| *i)
        .collect();
    split.sort();
    assert_eq!(split, [0, 0, 1, 1, 2, 2], "the partition, twice to each daemon");
    let kill: Vec<usize> = partitions
        .iter()
        .filter(|(_, d)| d[44..46] == [0xff, 0xff])
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(kill, [2, 2], "terminate goes to d3 only, twice");
    let mut reloads: Vec<usize> = kinds(&got, 0x0800_0000).iter().map(|(i, _)| *i).collect();
    reloads.sort();
    assert_eq!(reloads, [0, 1, 2]);
    for (_, d) in &got {
        // The monitor is d1 and wants replies on its port.
        assert_eq!(d[8..12], 0x7f00_0001u32.to_le_bytes());
        assert_eq!(d[20..24], u32::from(reply_port).to_le_bytes());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `text` with every run of digits replaced by `#` and the daemon name
/// replaced by `NAME`: the shape of a status block.
fn shape(text: &str, name: &str) -> String {
    let t = text.replace(name, "NAME");
    let mut out = String::new();
    let mut in_number = false;
    for c in t.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    // Column padding depends on the values.
    out.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The menu against our own daemon: its status block has the original's
/// shape, flow control changes the windows it reports, terminate stops it.
#[test]
fn spmonitor_menu_against_our_daemon() {
    // One daemon alone: it runs no ring, yet answers as the original does.
    let mut daemon = common::Daemon::start("DangerousMonitor = true\n", &[]);
    let reply_port = pick_port();
    let conf = daemon.dir.join("spread.conf");
    let args: Vec<String> = ["-c", conf.to_str().unwrap(), "-p", &reply_port.to_string()]
        .map(String::from)
        .to_vec();
    let mut mon = Tool::start(std::path::Path::new(env!("CARGO_BIN_EXE_spmonitor")), &args);
    mon.send_line("0\nall\n");
    let out = wait_for(&mon, "Status at localhost", 1);
    let block = out
        .split("============================\n")
        .nth(1)
        .and_then(|b| b.split("==================================\n").next())
        .unwrap_or_else(|| panic!("a status block:\n{out}"));
    let original = M01_D1_BLOCK
        .split("============================\n")
        .nth(1)
        .and_then(|b| b.split("==================================\n").next())
        .unwrap();
    assert_eq!(shape(block, "localhost"), shape(original, "d1"));
    assert!(block.contains("Status at localhost V 4.04. 0 (state "), "{block}");
    mon.send_line("0\nnone\n");
    // Window 100, personal window 10.
    mon.send_line("5\n100\n10\n");
    mon.send_line("6");
    mon.send_line("0\nall\n");
    let out = wait_for(&mon, "Status at localhost", 2);
    let last = out.rsplit("Status at localhost").next().unwrap();
    assert!(last.contains("Window     :     100\n"), "the new Window:\n{last}");
    assert!(
        last.contains("P/A Window :      10/0\n"),
        "the new personal window:\n{last}"
    );
    mon.send_line("0\nnone\n");
    mon.send_line("8\nlocalhost\n");
    mon.send_line("9");
    let (out, code) = mon.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{}", String::from_utf8_lossy(&out));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon.exited() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        daemon.exited(),
        "terminate stops the daemon; its log:\n{}",
        daemon.log()
    );
}

/// `spmonitor --status --json` against one daemon alone in its
/// configuration (it orders locally, without a ring): it answers with the
/// counters the original's one-daemon ring shows, moved by real traffic.
#[test]
fn spmonitor_status_json_for_a_daemon_alone() {
    use spread_tools::mailbox::{name_slot, Mailbox};
    use spread_wire::client::service::AGREED_MESS;

    let daemon = common::Daemon::start("", &[]);
    let conf = daemon.dir.join("spread.conf");
    let status = || -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_spmonitor"))
            .arg("-c")
            .arg(&conf)
            .args([
                "-p",
                &pick_port().to_string(),
                "--status",
                "--json",
                "--wait",
                "3",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run spmonitor");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            daemon.log()
        );
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("no JSON ({e}): {text}"))
    };
    let v = status();
    assert_eq!(v["all_answered"], true, "{v}");
    let s = &v["daemons"][0]["status"];
    for (field, want) in [
        ("num_procs", 1),
        ("num_segments", 1),
        ("state", 1),
        ("num_sessions", 0),
        ("num_groups", 0),
        ("message_delivered", 0),
        ("membership_changes", 1),
        ("window", 160),
        ("personal_window", 20),
        ("major_version", 4),
        ("minor_version", 4),
        ("patch_version", 0),
    ] {
        assert_eq!(s[field], want, "{field} in {v}");
    }
    assert_eq!(s["my_id"], "127.0.0.1", "{v}");
    assert_eq!(s["leader_id"], "127.0.0.1", "{v}");
    assert_eq!(s["leader"], "localhost", "{v}");

    let name = format!("{}@127.0.0.1", daemon.port);
    let alice = Mailbox::connect(name.as_bytes(), b"alice", true, Some(Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("connect to {name}: {e:?}"));
    alice.join(b"g").unwrap();
    for k in 0..3 {
        alice
            .multicast(AGREED_MESS, &[name_slot(b"g")], 0, format!("m{k}").as_bytes())
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let v = loop {
        let v = status();
        if v["daemons"][0]["status"]["message_delivered"] == 3 || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let s = &v["daemons"][0]["status"];
    // The join and three messages: four packets, sequence marks at four.
    for (field, want) in [
        ("message_delivered", 3),
        ("num_sessions", 1),
        ("num_groups", 1),
        ("packet_sent", 4),
        ("packet_delivered", 4),
        ("aru", 4),
        ("highest_seq", 4),
    ] {
        assert_eq!(s[field], want, "{field} in {v}");
    }
}
