//! A ring of real daemons on loopback, without namespaces: daemon `dk` at
//! 127.0.0.k, alone in a segment of its own (broadcast 127.0.0.255, a port
//! of its own), so several fit on one host. The one harness of the tests
//! that start such a ring: the daemon's (`reload`, `ring_loopback`) and the
//! tools' (`monitor_ring`, which include this file by path), so it uses
//! nothing but std.
//!
//! Every wait is bounded; the daemons are killed, their Unix sockets and
//! the ring's directory removed when the [`LoopbackRing`] drops, also while
//! a test unwinds (then their logs are printed).

#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Ports of one daemon: the segment's (data) port and the next (token); a
/// block leaves ten per daemon.
const PORT_STRIDE: u16 = 10;
/// Blocks are picked below the kernel's ephemeral range (32768 on), where
/// an outgoing socket cannot take a port between its pick and the bind.
const PORTS_FROM: u16 = 20000;
const PORTS_TO: u16 = 32000;

/// Ring formation: gather (1.25 s) after the start, plus the form tokens;
/// generous on a loaded 2-core CI machine.
pub const FORM_WITHIN: Duration = Duration::from_secs(12);
/// Token loss (1.25 s) + gather (1.25 s) + form, with the same margin.
pub const REFORM_WITHIN: Duration = Duration::from_secs(12);

/// The name of daemon `i` (0-based): `d1`, `d2`, ...
pub fn daemon_name(i: usize) -> String {
    format!("d{}", i + 1)
}

/// The address of daemon `i`: 127.0.0.(i+1).
pub fn daemon_ip(i: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(127, 0, 0, i as u8 + 1)
}

fn random_u64() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

/// A block of `slots` daemons' ports, all free now: TCP, both UDP ports
/// and no `/tmp/<port>`.
fn free_port_block(slots: usize) -> Vec<u16> {
    let width = PORT_STRIDE * slots as u16;
    let blocks = (PORTS_TO - PORTS_FROM) / width;
    for _ in 0..500 {
        let base = PORTS_FROM + (random_u64() % blocks as u64) as u16 * width;
        let ports: Vec<u16> = (0..slots as u16).map(|i| base + PORT_STRIDE * i).collect();
        let free = ports.iter().all(|&p| {
            TcpListener::bind(("0.0.0.0", p)).is_ok()
                && UdpSocket::bind(("0.0.0.0", p)).is_ok()
                && UdpSocket::bind(("0.0.0.0", p + 1)).is_ok()
                && !Path::new(&format!("/tmp/{p}")).exists()
        });
        if free {
            return ports;
        }
    }
    panic!("no free block of {slots} daemons' ports in {PORTS_FROM}..{PORTS_TO}");
}

/// Daemons `d1..dn` on loopback, each in its own segment, in one ring.
pub struct LoopbackRing {
    /// spread.conf and the daemons' logs.
    pub dir: PathBuf,
    /// Daemon `i`'s segment port (clients connect to it too).
    pub ports: Vec<u16>,
    /// The program of each slot: ours, or in a mixed ring the original's.
    binaries: Vec<PathBuf>,
    /// Lines after the segments in spread.conf.
    extra: String,
    children: Vec<Option<Child>>,
}

impl LoopbackRing {
    /// Room for `slots` daemons of `binary`; the first `n` in spread.conf
    /// (followed by `extra`) and started; `tag` names the ring's directory.
    /// A daemon whose port was taken after the pick makes the ring start
    /// again on new ports (a bounded number of times).
    pub fn start(binary: impl Into<PathBuf>, tag: &str, slots: usize, n: usize, extra: &str) -> LoopbackRing {
        let binary = binary.into();
        LoopbackRing::start_each(&vec![binary; slots], tag, n, extra)
    }

    /// As [`LoopbackRing::start`], slot `i` running `binaries[i]`.
    pub fn start_each(binaries: &[PathBuf], tag: &str, n: usize, extra: &str) -> LoopbackRing {
        for _ in 0..5 {
            let mut ring = LoopbackRing::new(binaries[0].clone(), tag, binaries.len(), extra);
            ring.binaries = binaries.to_vec();
            ring.write_conf(&(0..n).collect::<Vec<_>>());
            for i in 0..n {
                ring.launch(i);
            }
            let Some(i) = (0..n).find(|&i| !ring.wait_listening(i)) else {
                return ring;
            };
            let log = ring.log(i);
            assert!(
                log.contains("Address already in use"),
                "{} did not start:\n{log}",
                daemon_name(i)
            );
            eprintln!(
                "{}: its port was taken after it was picked; new ports",
                daemon_name(i)
            );
        }
        panic!("a loopback ring's ports were taken five times in a row");
    }

    /// Room for `slots` daemons (ports picked, nothing written or started).
    pub fn new(binary: impl Into<PathBuf>, tag: &str, slots: usize, extra: &str) -> LoopbackRing {
        let ports = free_port_block(slots);
        let dir = std::env::temp_dir().join(format!("spread-{tag}-{}-{}", std::process::id(), ports[0]));
        std::fs::create_dir_all(&dir).expect("create the ring's directory");
        LoopbackRing {
            dir,
            ports,
            binaries: vec![binary.into(); slots],
            extra: extra.to_string(),
            children: (0..slots).map(|_| None).collect(),
        }
    }

    pub fn conf_path(&self) -> PathBuf {
        self.dir.join("spread.conf")
    }

    /// spread.conf listing daemons `which` (replaced in one rename, so a
    /// daemon reloading meanwhile reads the old file or the new one).
    pub fn write_conf(&self, which: &[usize]) {
        let mut conf: String = which
            .iter()
            .map(|&i| {
                format!(
                    "Spread_Segment 127.0.0.255:{} {{\n  {} {}\n}}\n",
                    self.ports[i],
                    daemon_name(i),
                    daemon_ip(i)
                )
            })
            .collect();
        conf.push_str(&self.extra);
        let new = self.dir.join("spread.conf.new");
        std::fs::write(&new, conf).expect("write spread.conf");
        std::fs::rename(&new, self.conf_path()).expect("replace spread.conf");
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", daemon_name(i)))
    }

    /// Starts daemon `i` (its log is appended to across restarts).
    pub fn launch(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("open the daemon's log");
        // The original logs on stdout: both streams go to the log.
        let stdout = log.try_clone().expect("share the daemon's log");
        let child = Command::new(&self.binaries[i])
            .args(["-n", &daemon_name(i), "-c"])
            .arg(self.conf_path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .expect("start spread");
        self.children[i] = Some(child);
    }

    /// Waits (10 s at most) until daemon `i` takes clients on its Unix
    /// socket; false if it exited or did not get there.
    fn wait_listening(&mut self, i: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.children[i].as_mut().map(|c| c.try_wait()) {
                Some(Ok(None)) => {}
                _ => return false,
            }
            if std::os::unix::net::UnixStream::connect(format!("/tmp/{}", self.ports[i])).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGKILLs daemon `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(|c| c.id())
    }

    /// Sends `signal` (e.g. "-HUP") to daemon `i`.
    pub fn signal(&self, i: usize, signal: &str) {
        let pid = self.pid(i).expect("the daemon runs");
        let ok = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill {signal} {pid}");
    }

    /// Waits until daemon `i` exits by itself; panics after `within`.
    pub fn wait_exit(&mut self, i: usize, within: Duration) {
        let deadline = Instant::now() + within;
        let c = self.children[i].as_mut().expect("the daemon runs");
        while Instant::now() < deadline {
            if c.try_wait().expect("wait").is_some() {
                self.children[i] = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not exit within {within:?}", daemon_name(i));
    }

    /// Every daemon started is still running.
    pub fn all_running(&mut self) -> bool {
        self.children
            .iter_mut()
            .flatten()
            .all(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// Every daemon's log, each under its name.
    pub fn logs(&self) -> String {
        (0..self.ports.len())
            .map(|i| format!("---- {} log ----\n{}", daemon_name(i), self.log(i)))
            .collect()
    }

    /// The members of the last regular configuration daemon `i` logged.
    pub fn last_membership(&self, i: usize) -> Option<String> {
        let log = self.log(i);
        let line = log.lines().rfind(|l| l.contains("Membership id is ("))?;
        Some(line.rsplit("): ").next().unwrap_or("").to_string())
    }

    /// Waits until daemons `which` all report a ring of exactly `members`.
    pub fn wait_for_ring(&self, which: &[usize], members: &[usize], within: Duration) {
        let want: Vec<String> = members.iter().map(|&i| daemon_ip(i).to_string()).collect();
        let want = want.join(" ");
        let deadline = Instant::now() + within;
        loop {
            if which
                .iter()
                .all(|&i| self.last_membership(i).as_deref() == Some(want.as_str()))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ring {want} did not form within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where daemon `i` takes TCP clients (and monitor datagrams).
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(daemon_ip(i), self.ports[i]))
    }
}

impl Drop for LoopbackRing {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
            let _ = std::fs::remove_file(format!("/tmp/{}", self.ports[i]));
            // and our daemon's record socket beside it (a SIGKILL leaves it)
            let _ = std::fs::remove_file(format!("/tmp/{}.seq", self.ports[i]));
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
