//! Three real daemons on loopback segments (127.0.0.1/2/3, one port per
//! segment): the ring forms within the original's timeouts, clients on
//! different daemons share groups with one message order, a killed daemon
//! leaves a ring of two with network notices at the survivors' clients, and
//! its restart merges back.

mod common;

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Conn, Received};
use spread_wire::client::service::*;

/// Ring formation: gather (1.25 s) after the start, plus the form tokens;
/// generous on a loaded 2-core CI machine.
const FORM_WITHIN: Duration = Duration::from_secs(12);
/// Token loss (1.25 s) + gather (1.25 s) + form, with the same margin.
const REFORM_WITHIN: Duration = Duration::from_secs(12);

struct Ring {
    dir: PathBuf,
    ports: [u16; 3],
    children: [Option<Child>; 3],
}

const NAMES: [&str; 3] = ["d1", "d2", "d3"];

fn free_port_block() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    for _ in 0..500 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        h.write_u32(std::process::id());
        // Blocks of 30 ports in 40000..49990, each daemon at +0, +10, +20.
        let base = 40000 + (h.finish() % 333) as u16 * 30;
        let ok = (0..3).all(|i| {
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
        let ports = [base, base + 10, base + 20];
        let dir = std::env::temp_dir().join(format!("spread-ring-{}-{base}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf: String = (0..3)
            .map(|i| {
                format!(
                    "Spread_Segment 127.0.0.255:{} {{\n  {} 127.0.0.{}\n}}\n",
                    ports[i],
                    NAMES[i],
                    i + 1
                )
            })
            .collect();
        std::fs::write(dir.join("spread.conf"), conf).unwrap();
        let mut ring = Ring {
            dir,
            ports,
            children: [None, None, None],
        };
        for i in 0..3 {
            ring.launch(i);
        }
        ring
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
        for i in 0..3 {
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

fn recv(c: &mut Client) -> Received {
    c.recv_within(Duration::from_secs(8))
        .expect("a message within 8 s")
}

fn recv_membership(c: &mut Client, cause: u32) -> Received {
    c.recv_membership(cause, Duration::from_secs(10))
}

#[test]
fn three_daemons_form_a_ring_and_share_groups_in_one_order() {
    let ring = Ring::start();
    ring.wait_for_ring(&[0, 1, 2], &[0, 1, 2], FORM_WITHIN);

    let mut clients: Vec<Client> = (0..3).map(|i| ring.client(i, &format!("c{i}"))).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.join("g");
        // Wait for our own join before the next client joins: a fixed order.
        loop {
            let r = recv(c);
            if r.service_type() & CAUSED_BY_JOIN != 0 && r.groups().len() == i + 1 {
                break;
            }
        }
    }
    // Earlier members see the later joins.
    for (i, c) in clients.iter_mut().enumerate() {
        for _ in i + 1..3 {
            let r = recv_membership(c, CAUSED_BY_JOIN);
            assert_eq!(r.sender(), "g");
        }
    }
    // Everyone multicasts AGREED; everyone sees the same order.
    for round in 0..5 {
        for (i, c) in clients.iter_mut().enumerate() {
            c.multicast(AGREED_MESS, &["g"], i as i16, format!("m{round}-{i}").as_bytes());
        }
    }
    let orders: Vec<Vec<Vec<u8>>> = clients
        .iter_mut()
        .map(|c| (0..15).map(|_| recv(c).body().to_vec()).collect())
        .collect();
    assert_eq!(orders[0], orders[1]);
    assert_eq!(orders[1], orders[2]);
    // FIFO per sender inside the total order.
    for i in 0..3 {
        let own: Vec<&Vec<u8>> = orders[0]
            .iter()
            .filter(|b| b.ends_with(format!("-{i}").as_bytes()))
            .collect();
        let expected: Vec<Vec<u8>> = (0..5).map(|r| format!("m{r}-{i}").into_bytes()).collect();
        assert_eq!(own.into_iter().cloned().collect::<Vec<_>>(), expected);
    }
}

#[test]
fn killed_daemon_leaves_a_ring_of_two_and_merges_back_on_restart() {
    let mut ring = Ring::start();
    ring.wait_for_ring(&[0, 1, 2], &[0, 1, 2], FORM_WITHIN);
    let mut a = ring.client(0, "alice");
    let mut b = ring.client(1, "bob");
    let mut d = ring.client(2, "dave");
    for c in [&mut a, &mut b, &mut d] {
        c.join("g");
    }
    for c in [&mut a, &mut b] {
        // Joins arrive in the ring's order: wait for the view of three.
        while recv_membership(c, CAUSED_BY_JOIN).groups().len() < 3 {}
    }

    ring.kill(2);
    drop(d);
    ring.wait_for_ring(&[0, 1], &[0, 1], REFORM_WITHIN);
    let mut seen = Vec::new();
    for c in [&mut a, &mut b] {
        let t = recv(c);
        assert_eq!(t.service_type(), TRANSITION_MESS, "transitional notice first");
        let n = recv_membership(c, CAUSED_BY_NETWORK);
        let body = n.membership();
        assert_eq!(n.groups(), vec!["#alice#d1".to_string(), "#bob#d2".to_string()]);
        assert_eq!(body.vs_sets.len(), 1, "the survivors moved together");
        assert_eq!(body.vs_sets[0].len(), 2);
        assert_eq!(body.group_id.index, 1);
        seen.push(body.group_id);
    }
    assert_eq!(seen[0], seen[1], "both survivors report the same view");

    // Traffic still flows between the survivors.
    a.multicast(SAFE_MESS, &["g"], 7, b"after the crash");
    assert_eq!(recv(&mut b).body(), b"after the crash");
    assert_eq!(recv(&mut a).body(), b"after the crash");

    ring.launch(2);
    ring.wait_for_ring(&[0, 1, 2], &[0, 1, 2], REFORM_WITHIN);
    let mut e = ring.client(2, "erin");
    e.join("g");
    for c in [&mut a, &mut b, &mut e] {
        let r = recv_membership(c, CAUSED_BY_JOIN);
        assert_eq!(
            r.groups(),
            vec![
                "#alice#d1".to_string(),
                "#bob#d2".to_string(),
                "#erin#d3".to_string()
            ]
        );
        assert_eq!(
            r.membership().group_id.memb_id,
            seen[0].memb_id,
            "a merge without members keeps the view"
        );
    }
    e.multicast(AGREED_MESS, &["g"], 1, b"hello from the restarted daemon");
    for c in [&mut a, &mut b, &mut e] {
        assert_eq!(recv(c).body(), b"hello from the restarted daemon");
    }
}
