//! Dynamic Configuration on real daemons (loopback segments 127.0.0.1..4,
//! one port per segment): a ring of 3 grows to 4 and shrinks to 2 by editing
//! spread.conf and reloading every daemon (the monitor's RELOAD packet, and
//! SIGHUP, which runs the same reload), with clients connected throughout on the
//! surviving daemons; a broken file is refused with file:line:col.

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Conn};
use spread_wire::client::service::*;

/// Ring formation: gather (1.25 s) after the start, plus the form tokens;
/// generous on a loaded 2-core CI machine.
const FORM_WITHIN: Duration = Duration::from_secs(12);
/// Token loss (1.25 s) + gather (1.25 s) + form, with the same margin.
const REFORM_WITHIN: Duration = Duration::from_secs(12);

struct Ring {
    dir: PathBuf,
    ports: [u16; 4],
    children: [Option<Child>; 4],
}

const NAMES: [&str; 4] = ["d1", "d2", "d3", "d4"];

fn free_port_block() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    for _ in 0..500 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        h.write_u32(std::process::id());
        // Blocks of 40 ports in 20000..29960, each daemon at +0, +10, +20, +30.
        let base = 20000 + (h.finish() % 249) as u16 * 40;
        let ok = (0..4).all(|i| {
            let p = base + 10 * i;
            std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
                && std::net::UdpSocket::bind(("0.0.0.0", p)).is_ok()
                && std::net::UdpSocket::bind(("0.0.0.0", p + 1)).is_ok()
                && !std::path::Path::new(&format!("/tmp/{p}")).exists()
        });
        if ok {
            return base;
        }
    }
    panic!("no free block of ports");
}

impl Ring {
    fn start() -> Ring {
        let base = free_port_block();
        let ports = [base, base + 10, base + 20, base + 30];
        let dir = std::env::temp_dir().join(format!("spread-reload-{}-{base}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::create_dir_all(&dir);
        let mut ring = Ring {
            dir,
            ports,
            children: [None, None, None, None],
        };
        ring.write_conf(&[0, 1, 2]);
        for i in 0..3 {
            ring.launch(i);
        }
        ring
    }

    /// spread.conf listing daemons `which`.
    fn write_conf(&self, which: &[usize]) {
        let conf: String = which
            .iter()
            .map(|&i| {
                format!(
                    "Spread_Segment 127.0.0.255:{} {{\n  {} 127.0.0.{}\n}}\n",
                    self.ports[i],
                    NAMES[i],
                    i + 1
                )
            })
            .collect();
        std::fs::write(self.dir.join("spread.conf.new"), conf).unwrap();
        std::fs::rename(self.dir.join("spread.conf.new"), self.dir.join("spread.conf")).unwrap();
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", NAMES[i]))
    }

    fn launch(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_spread"))
            .args(["-n", NAMES[i], "-c"])
            .arg(self.dir.join("spread.conf"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start spread");
        self.children[i] = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// The members of the last regular configuration daemon `i` installed.
    fn last_membership(&self, i: usize) -> Option<String> {
        let log = self.log(i);
        let line = log.lines().rfind(|l| l.contains("Membership id is ("))?;
        Some(line.rsplit("): ").next().unwrap_or("").to_string())
    }

    /// Wait until daemons `which` all report a ring of exactly `members`.
    fn wait_for_ring(&self, which: &[usize], members: &[usize], within: Duration) {
        let want: Vec<String> = members.iter().map(|i| format!("127.0.0.{}", i + 1)).collect();
        let want = want.join(" ");
        let deadline = Instant::now() + within;
        loop {
            if which
                .iter()
                .all(|&i| self.last_membership(i).as_deref() == Some(want.as_str()))
            {
                return;
            }
            if Instant::now() > deadline {
                for &i in which {
                    eprintln!("---- {} ----\n{}", NAMES[i], self.log(i));
                }
                panic!("ring {want} did not form within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn client(&self, i: usize, name: &str) -> Client {
        let addr = format!("127.0.0.{}:{}", i + 1, self.ports[i]);
        let stream =
            TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3)).expect("connect");
        stream.set_nodelay(true).unwrap();
        Client::connect_with(Conn::Tcp(stream), name.as_bytes(), true, &["NULL"]).expect("session accepted")
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        for i in 0..4 {
            self.kill(i);
            let _ = std::fs::remove_file(format!("/tmp/{}", self.ports[i]));
        }
        if std::thread::panicking() {
            for (i, name) in NAMES.iter().enumerate() {
                eprintln!("---- {name} log ----\n{}", self.log(i));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Ring {
    fn hup(&self, i: usize) {
        let pid = self.children[i].as_ref().expect("running").id();
        let ok = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// The monitor's RELOAD command (40 bytes, as spmonitor sends it).
    fn reload_packet(&self, i: usize) {
        use spread_wire::monitor::{Command, CommandPacket};
        let packet = CommandPacket::new(0x7f00_0001, 0, Command::Reload { body: Vec::new() })
            .emit(spread_wire::endian::ByteOrder::NATIVE);
        assert_eq!(packet.len(), 40);
        let socket = std::net::UdpSocket::bind(("127.0.0.1", 0)).expect("monitor socket");
        let to = format!("127.0.0.{}:{}", i + 1, self.ports[i]);
        socket.send_to(&packet, to.as_str()).expect("send RELOAD");
    }

    fn wait_exit(&mut self, i: usize, within: Duration) {
        let deadline = Instant::now() + within;
        let c = self.children[i].as_mut().expect("running");
        while Instant::now() < deadline {
            if c.try_wait().expect("wait").is_some() {
                self.children[i] = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not exit within {within:?}", NAMES[i]);
    }
}

fn members_of(c: &mut Client, cause: u32) -> Vec<String> {
    let r = c.recv_membership(cause, Duration::from_secs(15));
    let mut g = r.groups();
    g.sort();
    g
}

#[test]
fn a_ring_of_three_grows_to_four_and_shrinks_to_two_by_reloading() {
    let mut ring = Ring::start();
    ring.wait_for_ring(&[0, 1, 2], &[0, 1, 2], FORM_WITHIN);
    let mut alice = ring.client(0, "alice");
    let mut carol = ring.client(2, "carol");
    alice.join("g");
    assert_eq!(members_of(&mut alice, CAUSED_BY_JOIN).len(), 1);
    carol.join("g");
    assert_eq!(members_of(&mut carol, CAUSED_BY_JOIN).len(), 2);
    assert_eq!(members_of(&mut alice, CAUSED_BY_JOIN).len(), 2);

    // Grow: d4 in every file, d4 started (alone, with a client), all reload.
    ring.write_conf(&[0, 1, 2, 3]);
    ring.launch(3);
    ring.wait_for_ring(&[3], &[3], FORM_WITHIN);
    let mut dan = ring.client(3, "dan");
    dan.join("g");
    assert_eq!(members_of(&mut dan, CAUSED_BY_JOIN).len(), 1);
    // The old daemons by the monitor's RELOAD, the new one by SIGHUP (it
    // must reload once too: the hash flip).
    for i in 0..3 {
        ring.reload_packet(i);
    }
    ring.hup(3);
    ring.wait_for_ring(&[0, 1, 2, 3], &[0, 1, 2, 3], REFORM_WITHIN);
    // The merge: alice and carol see dan, dan sees them.
    let want = |g: &[String]| g.len() == 3;
    let deadline = Instant::now() + Duration::from_secs(15);
    for c in [&mut alice, &mut carol, &mut dan] {
        loop {
            assert!(Instant::now() < deadline, "no merged view of g");
            if want(&members_of(c, CAUSED_BY_NETWORK)) {
                break;
            }
        }
    }

    // A broken file is refused with file:line:col; nothing changes.
    let conf_path = ring.dir.join("spread.conf");
    let _ = &ring.dir;
    let good = std::fs::read_to_string(&conf_path).unwrap();
    std::fs::write(
        &conf_path,
        format!("{good}Spread_Segment 127.0.0.255:1 {{\n  bogus\n"),
    )
    .unwrap();
    ring.hup(0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ring.log(0).contains("reload refused") {
        assert!(Instant::now() < deadline, "no refusal in d1's log");
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = ring
        .log(0)
        .lines()
        .rfind(|l| l.contains("reload refused"))
        .unwrap()
        .to_string();
    let located = line.contains("spread.conf:");
    assert!(located, "refusal names file:line:col: {line}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        alice.recv_within(Duration::from_millis(100)).is_err(),
        "no notice after a refused reload"
    );
    ring.wait_for_ring(&[0, 1, 2, 3], &[0, 1, 2, 3], Duration::from_secs(1));

    // Shrink: d2 and d4 leave every file; they exit, d1 and d3 re-form.
    ring.write_conf(&[0, 2]);
    for i in 0..4 {
        ring.hup(i);
    }
    ring.wait_exit(1, Duration::from_secs(10));
    ring.wait_exit(3, Duration::from_secs(10));
    ring.wait_for_ring(&[0, 2], &[0, 2], REFORM_WITHIN);
    for c in [&mut alice, &mut carol] {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert!(Instant::now() < deadline, "no view of g without dan");
            if members_of(c, CAUSED_BY_NETWORK).len() == 2 {
                break;
            }
        }
    }
    // Traffic flows in one order afterwards.
    for k in 0..5u8 {
        alice.multicast(AGREED_MESS, &["g"], 0, &[b'a', k]);
        carol.multicast(AGREED_MESS, &["g"], 0, &[b'c', k]);
    }
    let mut seen = [Vec::new(), Vec::new()];
    for (n, c) in [&mut alice, &mut carol].into_iter().enumerate() {
        while seen[n].len() < 10 {
            let r = c
                .recv_within(Duration::from_secs(8))
                .expect("a message within 8 s");
            if !r.is_membership() {
                seen[n].push(r.body().to_vec());
            }
        }
    }
    assert_eq!(seen[0], seen[1], "one order at both daemons");
}
