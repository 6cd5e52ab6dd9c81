//! The monitor protocol against three real daemons of ours on loopback
//! segments (127.0.0.1/2/3, one port each): `spmonitor --status --json`
//! sees all three with counters that move with traffic; with
//! `DangerousMonitor = true` a PARTITION splits the ring (clients get the
//! network views) and cancelling it merges the ring again; FC changes the
//! windows in status; with the default the same commands change nothing;
//! malformed monitor packets and a flood of 10,000 STATUS requests leave a
//! rate-limited log line and a daemon that keeps serving.
//!
//! Commands are sent as spmonitor sends them (the wire codec's
//! `CommandPacket`, monitor identity d1 = 127.0.0.1, twice per daemon).
//! Takes about 45 s (the merge waits for the leaders' 30 s lookup).

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::loopback_ring::{daemon_ip, LoopbackRing};
use serde_json::Value;
use spread_tools::mailbox::{name_slot, Mailbox};

type NameSlot = [u8; 32];
use spread_wire::client::service::{AGREED_MESS, CAUSED_BY_NETWORK, REG_MEMB_MESS};
use spread_wire::endian::ByteOrder;
use spread_wire::monitor::{Command as MonitorCommand, CommandPacket, FcTable, PartitionTable};

const FORM_WITHIN: Duration = Duration::from_secs(20);
/// Cancel -> the leaders' lookup (30 s after the split ring's install) ->
/// gather and form; generous on a loaded machine.
const MERGE_WITHIN: Duration = Duration::from_secs(60);

/// The ring, and the monitor's view of it.
struct Ring {
    ring: LoopbackRing,
}

fn free_udp_port() -> u16 {
    UdpSocket::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Ring {
    fn start(extra: &str) -> Ring {
        Ring {
            ring: LoopbackRing::start(common::daemon_binary(), "monitor-ring", 3, 3, extra),
        }
    }

    fn conf(&self) -> PathBuf {
        self.ring.conf_path()
    }

    fn log(&self, i: usize) -> String {
        self.ring.log(i)
    }

    fn logs(&self) -> String {
        self.ring.logs()
    }

    fn all_running(&mut self) -> bool {
        self.ring.all_running()
    }

    /// `spmonitor --status --json`: exit code and the parsed object.
    fn status(&self) -> (i32, Value) {
        // The free port may be taken between the probe and spmonitor's
        // bind (another daemon of the run): then again with another one.
        let mut tries = 0;
        let out = loop {
            let out = Command::new(env!("CARGO_BIN_EXE_spmonitor"))
                .arg("-c")
                .arg(self.conf())
                .args([
                    "-n",
                    "d1",
                    "-p",
                    &free_udp_port().to_string(),
                    "--status",
                    "--json",
                    "--wait",
                    "3",
                ])
                .stdin(Stdio::null())
                .output()
                .expect("run spmonitor");
            tries += 1;
            let taken = String::from_utf8_lossy(&out.stderr).contains("Address already in use");
            if !taken || tries == 5 {
                break out;
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
            panic!(
                "spmonitor printed no JSON ({e}): {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), v)
    }

    fn field(v: &Value, i: usize, name: &str) -> i64 {
        v["daemons"][i]["status"][name].as_i64().unwrap_or(-1)
    }

    /// Poll status until `ok` holds for it, or panic after `within`.
    fn wait_status(&self, what: &str, within: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (code, v) = self.status();
            if code == 0 && ok(&v) {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "{what}: not reached within {within:?}; last status {v}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn procs(v: &Value) -> [i64; 3] {
        [0, 1, 2].map(|i| Ring::field(v, i, "num_procs"))
    }

    /// Send a monitor command as spmonitor does: twice to every daemon,
    /// from d1's address, identity d1.
    fn command(&self, cmd: MonitorCommand) {
        let socket = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
        let id = u32::from(Ipv4Addr::new(127, 0, 0, 1));
        let bytes = CommandPacket::new(id, 6543, cmd).emit(ByteOrder::NATIVE);
        for i in 0..self.ring.ports.len() {
            let to = self.ring.addr(i);
            for _ in 0..2 {
                socket.send_to(&bytes, to).unwrap();
            }
        }
    }

    fn send_raw(&self, daemon: usize, bytes: &[u8]) {
        let socket = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
        socket.send_to(bytes, self.ring.addr(daemon)).unwrap();
    }

    fn client(&self, daemon: usize, user: &str) -> Mailbox {
        let name = format!("{}@{}", self.ring.ports[daemon], daemon_ip(daemon));
        let m = Mailbox::connect(
            name.as_bytes(),
            user.as_bytes(),
            true,
            Some(Duration::from_secs(5)),
        )
        .unwrap_or_else(|e| panic!("connect {user} to {name}: {e:?}"));
        m.join(b"g").unwrap();
        m
    }
}

fn partition(entries: &[i16]) -> MonitorCommand {
    MonitorCommand::Partition(Box::new(PartitionTable::from_entries(entries)))
}

fn flow_control() -> MonitorCommand {
    // Window 80; personal 8, 9, 10; accelerated 0 (what the original sends
    // when its file has no AcceleratedRing line).
    let mut t = FcTable([[0, 0]; 128]);
    t.0[0] = [8, 0];
    t.0[1] = [9, 0];
    t.0[2] = [10, 0];
    t.0[3] = [80, 0];
    MonitorCommand::FlowControl(Box::new(t))
}

/// Wait for a regular membership of `g` caused by the network with `n`
/// members at `m`; other messages are skipped.
fn wait_view(m: &Mailbox, n: i32, within: Duration) {
    let deadline = Instant::now() + within;
    let mut groups: Vec<NameSlot> = vec![name_slot(b""); 16];
    let mut body = vec![0u8; 64 * 1024];
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if m.poll().unwrap_or(0) <= 0 {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let r = m.receive(0, &mut groups, &mut body);
        assert!(r.ret >= 0, "receive failed: {}", r.ret);
        let Some(d) = r.delivery else { continue };
        seen.push((d.service_type, d.num_groups));
        if d.service_type & REG_MEMB_MESS != 0 && d.service_type & CAUSED_BY_NETWORK != 0 && d.num_groups == n
        {
            return;
        }
    }
    panic!("no network view of {n} members within {within:?}; saw (service type, groups) {seen:x?}");
}

#[test]
fn dangerous_monitor_partitions_merges_and_sets_windows() {
    let mut ring = Ring::start("DangerousMonitor = true\n");
    let v = ring.wait_status("ring of 3", FORM_WITHIN, |v| Ring::procs(v) == [3, 3, 3]);
    for i in 0..3 {
        let s = &v["daemons"][i]["status"];
        assert_eq!(s["state_name"], "OP", "{v}");
        assert_eq!(
            (s["major_version"].as_i64(), s["minor_version"].as_i64()),
            (Some(4), Some(4))
        );
        assert_eq!(s["my_id"], format!("127.0.0.{}", i + 1));
        assert_eq!(s["leader_id"], "127.0.0.1", "{v}");
        assert_eq!(
            (s["window"].as_i64(), s["personal_window"].as_i64()),
            (Some(160), Some(20))
        );
        assert!(
            v["daemons"][i]["extension"]["dropped_datagrams"].is_i64(),
            "our extension: {v}"
        );
    }
    assert_eq!(v["all_answered"], true);

    // Traffic moves the counters on every daemon.
    let alice = ring.client(0, "alice");
    let carol = ring.client(2, "carol");
    std::thread::sleep(Duration::from_millis(500));
    let before = ring.status().1;
    for k in 0..5 {
        alice
            .multicast(AGREED_MESS, &[name_slot(b"g")], 0, format!("m{k}").as_bytes())
            .unwrap();
    }
    let after = ring.wait_status("messages counted", Duration::from_secs(10), |v| {
        (0..3).all(|i| {
            Ring::field(v, i, "message_delivered") >= Ring::field(&before, i, "message_delivered") + 5
        })
    });
    for i in 0..3 {
        assert!(Ring::field(&after, i, "packet_delivered") > Ring::field(&before, i, "packet_delivered"));
        assert!(Ring::field(&after, i, "highest_seq") > Ring::field(&before, i, "highest_seq"));
    }
    assert!(Ring::field(&after, 0, "packet_sent") > Ring::field(&before, 0, "packet_sent"));
    assert!(Ring::field(&after, 2, "packet_recv") > Ring::field(&before, 2, "packet_recv"));
    assert_eq!(Ring::field(&after, 0, "num_sessions"), 1);
    assert_eq!(Ring::field(&after, 1, "num_groups"), 1);

    // Partition {d1, d2} / {d3}: two rings, clients see the network views.
    ring.command(partition(&[0, 0, 1]));
    let v = ring.wait_status("partition", Duration::from_secs(20), |v| {
        Ring::procs(v) == [2, 2, 1]
    });
    assert_eq!(v["daemons"][2]["status"]["leader_id"], "127.0.0.3");
    wait_view(&alice, 1, Duration::from_secs(10));
    wait_view(&carol, 1, Duration::from_secs(10));
    assert!(
        ring.log(2).contains("Got monitor message, component 1"),
        "{}",
        ring.logs()
    );

    // FC while partitioned: windows visible in status.
    ring.command(flow_control());
    let v = ring.wait_status("flow control", Duration::from_secs(10), |v| {
        (0..3).all(|i| Ring::field(v, i, "window") == 80)
    });
    let personal: Vec<i64> = (0..3).map(|i| Ring::field(&v, i, "personal_window")).collect();
    assert_eq!(personal, [8, 9, 10]);
    assert!((0..3).all(|i| Ring::field(&v, i, "accelerated_window") == 0));

    // Cancel: one ring again once a lookup crosses, as in the original.
    ring.command(partition(&[]));
    ring.wait_status("merge", MERGE_WITHIN, |v| Ring::procs(v) == [3, 3, 3]);
    wait_view(&alice, 2, Duration::from_secs(10));
    wait_view(&carol, 2, Duration::from_secs(10));
    assert!(ring.all_running());
}

#[test]
fn default_monitor_refuses_commands_and_survives_bad_input() {
    let mut ring = Ring::start("");
    let v = ring.wait_status("ring of 3", FORM_WITHIN, |v| Ring::procs(v) == [3, 3, 3]);
    let changes: Vec<i64> = (0..3).map(|i| Ring::field(&v, i, "membership_changes")).collect();

    ring.command(partition(&[0, 0, 1]));
    ring.command(flow_control());
    ring.command(partition(&[0, 0, -1]));

    // Malformed and truncated monitor packets.
    let id = u32::from(Ipv4Addr::new(127, 0, 0, 1));
    let status =
        CommandPacket::new(id, 6543, MonitorCommand::Status { body: vec![] }).emit(ByteOrder::NATIVE);
    let part = CommandPacket::new(id, 6543, partition(&[0, 0, 1])).emit(ByteOrder::NATIVE);
    let mut wrong_len = status.clone();
    wrong_len[32] = 4;
    let mut garbage = part.clone();
    for (k, b) in garbage.iter_mut().enumerate().skip(40) {
        *b = (k * 37) as u8;
    }
    for d in 0..3 {
        ring.send_raw(d, &status[..20]);
        ring.send_raw(d, &wrong_len);
        ring.send_raw(d, &part[..100]);
        ring.send_raw(d, &garbage);
    }
    // A flood of STATUS requests at d2 (replies go to d1's port 6543).
    let socket = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    let to = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), ring.ring.ports[1]);
    for _ in 0..10_000 {
        let _ = socket.send_to(&status, to);
    }

    std::thread::sleep(Duration::from_secs(4));
    let v = ring.wait_status("still serving", Duration::from_secs(10), |v| {
        Ring::procs(v) == [3, 3, 3]
    });
    for (i, &changes) in changes.iter().enumerate() {
        assert_eq!(
            Ring::field(&v, i, "membership_changes"),
            changes,
            "ring untouched: {v}"
        );
        assert_eq!(
            (
                Ring::field(&v, i, "window"),
                Ring::field(&v, i, "personal_window")
            ),
            (160, 20)
        );
        assert_eq!(Ring::field(&v, i, "accelerated_window"), 15);
        let log = ring.log(i);
        assert!(
            log.contains(
                "Request to set partition or kill daemons from (127.0.0.1) denied. Monitor in safe mode"
            ),
            "{}",
            ring.logs()
        );
        let denied = log.matches("Monitor in safe mode").count();
        assert!(denied <= 8, "denials rate-limited: {denied} lines");
    }
    let flood = ring.log(1);
    assert_eq!(flood.matches("STATUS requests a second").count(), 1, "{flood}");
    assert!(flood.lines().count() < 100, "flood logged rate-limited:\n{flood}");
    assert!(ring.all_running(), "{}", ring.logs());
}
