//! Real daemons in their own network namespaces on one bridge: one segment
//! with real broadcast, a private `/tmp` per daemon (each owns its
//! `/tmp/<port>`), link cuts, iptables impairments inside the namespaces,
//! stop/continue/kill/restart of single daemons.
//!
//! Names and subnets are unique per test process and per [`Net`] (pid and
//! a counter), so tests of other helpers and of this binary can create
//! namespaces at the same time. Everything is removed on drop, also while
//! a failing test unwinds: daemons first (killed by pid), then the
//! namespaces (with their iptables rules) and the host links. What a test
//! process killed with SIGKILL left behind is swept by the next one: names
//! embed the creator's pid, and [`sweep_stale`] removes those of dead pids.
//!
//! Needs root, `ip` (iproute2), `unshare` and `mount` (util-linux), and
//! `iptables` for impairments. [`Net::create`] returns `None` without them;
//! [`skip_or_fail`] turns that into a pass outside CI and a failure under
//! `CI=true`.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{Client, Conn, ConnectFailure};

static NETS: AtomicU32 = AtomicU32::new(0);
static SWEEP: std::sync::Once = std::sync::Once::new();

/// The creator's pid digits (`pid % 100_000`) of a name this harness makes:
/// "sf" + digits + a letter + a suffix ("n1", "v1", "c1", "br", "cb").
pub fn creator_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("sf")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (pid, tail) = rest.split_at(digits);
    let mut tail = tail.chars();
    let letter_ok = tail.next().is_some_and(|c| c.is_ascii_lowercase());
    let suffix: String = tail.collect();
    let suffix_ok = matches!(suffix.as_str(), "br" | "cb")
        || (suffix.len() >= 2
            && matches!(&suffix[..1], "n" | "v" | "c")
            && suffix[1..].bytes().all(|b| b.is_ascii_digit()));
    if digits == 0 || !letter_ok || !suffix_ok {
        return None;
    }
    pid.parse().ok()
}

/// Whether some live process has these pid digits (names keep only
/// `pid % 100_000`, so any live match counts as the owner).
pub fn creator_alive(digits: u32) -> bool {
    std::fs::read_dir("/proc").is_ok_and(|entries| {
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .any(|pid| pid % 100_000 == digits)
    })
}

fn command_lines(args: &[&str]) -> Vec<String> {
    let out = Command::new(args[0]).args(&args[1..]).output();
    String::from_utf8_lossy(&out.map(|o| o.stdout).unwrap_or_default())
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Remove the namespaces (and the daemons left in them) and host links
/// whose creator is dead. Returns the names removed.
pub fn sweep_stale() -> Vec<String> {
    let mut removed = Vec::new();
    for line in command_lines(&["ip", "netns", "list"]) {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        if creator_of(ns).is_some_and(|d| !creator_alive(d)) {
            for pid in command_lines(&["ip", "netns", "pids", ns]) {
                run(&["kill", "-9", pid.trim()]);
            }
            run(&["ip", "netns", "del", ns]);
            removed.push(ns.to_owned());
        }
    }
    // "7: sf123av1@if2: <...>": the name is the second field, before any '@'.
    for line in command_lines(&["ip", "-o", "link", "show"]) {
        let Some(field) = line.split_whitespace().nth(1) else {
            continue;
        };
        let name = field.trim_end_matches(':').split('@').next().unwrap_or("");
        if creator_of(name).is_some_and(|d| !creator_alive(d)) {
            run(&["ip", "link", "del", name]);
            removed.push(name.to_owned());
        }
    }
    if !removed.is_empty() {
        eprintln!("netns: swept what dead test processes left: {removed:?}");
    }
    removed
}

pub fn run(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn must(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Whether namespace tests can run here; `false` (after saying why) when
/// they cannot and this is not CI; panics when they cannot under CI.
pub fn skip_or_fail(why_missing: &str) -> bool {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must be able to run namespace tests: {why_missing}"
    );
    eprintln!("skipped: {why_missing}");
    false
}

/// The namespaces, veth pairs and bridges of one test, removed on drop.
pub struct Net {
    tag: String,
    /// Second octet and third octet of the daemons' /24 (10.a.b.0/24);
    /// the clients' network, when asked for, is 10.a.(b+1).0/24.
    a: u8,
    b: u8,
    pub count: usize,
    client_link: bool,
}

impl Net {
    /// `count` namespaces on one bridge; with `client_link`, a second link
    /// per namespace on a second bridge (clients keep reaching a daemon
    /// whose segment link is cut).
    pub fn create(count: usize, client_link: bool) -> Option<Net> {
        if !is_root() || !run(&["ip", "-V"]) || !run(&["unshare", "--version"]) {
            return None;
        }
        SWEEP.call_once(|| {
            sweep_stale();
        });
        let n = NETS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Interface names stay under 15 bytes: "sf" + 5 + 1 + "c9v2".
        let tag = format!("{}{}", pid % 100_000, (b'a' + (n % 26) as u8) as char);
        // Subnets from 10.100.0.0 up: two /24s per Net, skipping any in use.
        let mut index = (pid.wrapping_mul(16).wrapping_add(n * 2)) % (90 * 128);
        let in_use = String::from_utf8_lossy(
            &Command::new("ip")
                .args(["-o", "-4", "addr", "show"])
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default(),
        )
        .into_owned();
        let (a, b) = loop {
            let a = 100 + (index / 128) as u8;
            let b = ((index % 128) * 2) as u8;
            let used = |b: u8| in_use.contains(&format!(" 10.{a}.{b}."));
            if !used(b) && !used(b + 1) {
                break (a, b);
            }
            index = (index + 1) % (90 * 128);
        };
        let net = Net {
            tag,
            a,
            b,
            count,
            client_link,
        };
        net.destroy();
        must(&["ip", "link", "add", &net.bridge(), "type", "bridge"]);
        must(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", net.host_ip()),
            "dev",
            &net.bridge(),
        ]);
        must(&["ip", "link", "set", &net.bridge(), "up"]);
        if client_link {
            must(&["ip", "link", "add", &net.client_bridge(), "type", "bridge"]);
            must(&[
                "ip",
                "addr",
                "add",
                &format!("10.{a}.{}.254/24", b + 1),
                "dev",
                &net.client_bridge(),
            ]);
            must(&["ip", "link", "set", &net.client_bridge(), "up"]);
        }
        for i in 0..count {
            let ns = net.ns(i);
            must(&["ip", "netns", "add", &ns]);
            net.add_link(
                i,
                &net.host_veth(i),
                "eth0",
                &net.bridge(),
                &net.ip(i).to_string(),
            );
            if client_link {
                net.add_link(
                    i,
                    &net.client_veth(i),
                    "eth1",
                    &net.client_bridge(),
                    &net.client_ip(i).to_string(),
                );
            }
            must(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        }
        Some(net)
    }

    fn add_link(&self, i: usize, host: &str, inner: &str, bridge: &str, ip: &str) {
        let ns = self.ns(i);
        must(&[
            "ip", "link", "add", host, "type", "veth", "peer", "name", inner, "netns", &ns,
        ]);
        must(&["ip", "link", "set", host, "master", bridge]);
        must(&["ip", "link", "set", host, "up"]);
        must(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "ip",
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            inner,
        ]);
        must(&["ip", "netns", "exec", &ns, "ip", "link", "set", inner, "up"]);
    }

    pub fn ns(&self, i: usize) -> String {
        format!("sf{}n{}", self.tag, i + 1)
    }
    fn host_veth(&self, i: usize) -> String {
        format!("sf{}v{}", self.tag, i + 1)
    }
    fn client_veth(&self, i: usize) -> String {
        format!("sf{}c{}", self.tag, i + 1)
    }
    fn bridge(&self) -> String {
        format!("sf{}br", self.tag)
    }
    fn client_bridge(&self) -> String {
        format!("sf{}cb", self.tag)
    }
    /// Daemon `i`'s address on the segment.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.a, self.b, i as u8 + 1)
    }
    /// Daemon `i`'s address on the clients' network (the segment address
    /// without a client link).
    pub fn client_ip(&self, i: usize) -> Ipv4Addr {
        if self.client_link {
            Ipv4Addr::new(10, self.a, self.b + 1, i as u8 + 1)
        } else {
            self.ip(i)
        }
    }
    /// The host's own address on the segment: outside every configuration.
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.a, self.b, 254)
    }
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.a, self.b, 255)
    }

    /// Takes namespace `i`'s segment link down or up (from the host side).
    pub fn set_link(&self, i: usize, up: bool) {
        must(&[
            "ip",
            "link",
            "set",
            &self.host_veth(i),
            if up { "up" } else { "down" },
        ]);
    }

    /// Runs `iptables ARGS` inside namespace `i`.
    pub fn iptables(&self, i: usize, args: &[&str]) {
        let ns = self.ns(i);
        let mut all = vec!["ip", "netns", "exec", &ns, "iptables", "-w", "5"];
        all.extend_from_slice(args);
        must(&all);
    }

    /// Removes every iptables rule in namespace `i` (filter and mangle).
    pub fn clear_impairments(&self, i: usize) {
        self.iptables(i, &["-F"]);
        self.iptables(i, &["-t", "mangle", "-F"]);
    }

    fn destroy(&self) {
        for i in 0..self.count {
            run(&["ip", "netns", "del", &self.ns(i)]);
            run(&["ip", "link", "del", &self.host_veth(i)]);
            run(&["ip", "link", "del", &self.client_veth(i)]);
        }
        run(&["ip", "link", "del", &self.bridge()]);
        run(&["ip", "link", "del", &self.client_bridge()]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// Whether `iptables` runs inside a namespace of `net`.
pub fn has_iptables(net: &Net) -> bool {
    run(&[
        "ip",
        "netns",
        "exec",
        &net.ns(0),
        "iptables",
        "-w",
        "5",
        "-L",
        "-n",
    ])
}

/// One daemon of a [`Ring`]: its process and private directory (bind
/// mounted over its `/tmp`).
struct Member {
    child: Option<Child>,
    dir: PathBuf,
    log_path: PathBuf,
    name: String,
    ns: String,
    /// How many times it was started (each start appends to the same log).
    starts: u32,
}

/// Daemons of one configuration in the namespaces of a [`Net`], killed on
/// drop. Daemon `i` runs in namespace `i` under the name `d<i+1>`.
pub struct Ring {
    pub port: u16,
    dir: PathBuf,
    members: Vec<Member>,
    binary: PathBuf,
}

/// A port pair for a ring in namespaces: nothing else binds in them, so
/// only the host's `/tmp` naming matters; spread over 20000..29998.
fn ring_port() -> u16 {
    let n = NETS.fetch_add(1, Ordering::Relaxed);
    20000 + ((std::process::id().wrapping_mul(7).wrapping_add(n * 2)) % 4999 * 2) as u16
}

impl Ring {
    /// Configuration text: one segment holding daemons `in_conf` of `net`.
    pub fn conf_text(net: &Net, port: u16, in_conf: &[usize]) -> String {
        let mut conf = format!("Spread_Segment {}:{port} {{\n", net.broadcast());
        for &i in in_conf {
            conf.push_str(&format!("  d{} {}\n", i + 1, net.ip(i)));
        }
        conf.push_str("}\n");
        // Started as root, the original (and ours) chroots and changes user;
        // in the test that is the daemon's private /tmp and root.
        conf.push_str("DaemonUser = root\nDaemonGroup = root\nRuntimeDir = /tmp\n");
        conf
    }

    /// Starts daemons `which` of `net` with a configuration naming
    /// `in_conf` (normally the same), on a fresh port.
    pub fn start(net: &Net, which: &[usize], in_conf: &[usize]) -> Ring {
        let port = ring_port();
        Ring::start_on(net, port, which, &Ring::conf_text(net, port, in_conf))
    }

    /// Starts daemons `which` of `net` with configuration `conf` on `port`.
    pub fn start_on(net: &Net, port: u16, which: &[usize], conf: &str) -> Ring {
        let dir = std::env::temp_dir().join(format!(
            "spread-faults-{}-{}",
            std::process::id(),
            NETS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the ring's directory");
        let mut ring = Ring {
            port,
            dir: dir.clone(),
            members: Vec::new(),
            binary: super::daemon_binary(),
        };
        for i in 0..net.count {
            let d = dir.join(format!("d{}", i + 1));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("spread.conf"), conf).unwrap();
            ring.members.push(Member {
                child: None,
                log_path: dir.join(format!("d{}.log", i + 1)),
                dir: d,
                name: format!("d{}", i + 1),
                ns: net.ns(i),
                starts: 0,
            });
        }
        for &i in which {
            ring.start_daemon(i);
        }
        ring
    }

    /// (Re)starts daemon `i`; its log continues.
    pub fn start_daemon(&mut self, i: usize) {
        let m = &mut self.members[i];
        assert!(m.child.is_none(), "{} already runs", m.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log_path)
            .unwrap();
        // `ip netns exec` and `unshare` exec in place and the shell execs the
        // daemon, so the child's pid is the daemon's (stop/cont/kill hit it).
        // Another daemon (the original, by hand) writes its log with stdio:
        // line-buffer it so the test sees memberships as they happen.
        let line_buffered = if self.binary.as_path() == std::path::Path::new(env!("CARGO_BIN_EXE_spread")) {
            ""
        } else {
            "stdbuf -oL "
        };
        let script = format!(
            "mount --bind '{}' /tmp && exec {line_buffered}'{}' -n {} -c /tmp/spread.conf",
            m.dir.display(),
            self.binary.display(),
            m.name
        );
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &m.ns,
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
            ])
            .arg(script)
            .env(
                "RUST_LOG",
                std::env::var("SPREAD_FAULTS_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start spread in a namespace");
        m.child = Some(child);
        m.starts += 1;
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(|c| c.id())
    }

    pub fn signal(&self, i: usize, signal: i32) {
        if let Some(pid) = self.pid(i) {
            // SAFETY: kill(2) on the pid of a child we started and have not
            // reaped yet (reaping sets `child` to None).
            unsafe {
                libc::kill(pid as libc::pid_t, signal);
            }
        }
    }

    /// SIGSTOP: the daemon freezes (sockets stay open, nothing is read).
    pub fn freeze(&self, i: usize) {
        self.signal(i, libc::SIGSTOP);
    }

    pub fn thaw(&self, i: usize) {
        self.signal(i, libc::SIGCONT);
    }

    /// SIGKILL and reap daemon `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether daemon `i` still runs (a crash shows here).
    pub fn is_running(&mut self, i: usize) -> bool {
        match self.members[i].child.as_mut() {
            None => false,
            Some(c) => matches!(c.try_wait(), Ok(None)),
        }
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.members[i].log_path).unwrap_or_default()
    }

    /// The member list of the last membership daemon `i` logged: ours logs
    /// "Membership id is (ip, time): ip ip ip"; the original logs
    /// "Membership id is ( n, time)" and then its configuration block with
    /// the members (for comparisons by hand).
    pub fn last_ring(&self, i: usize) -> Option<String> {
        let log = self.log(i);
        let lines: Vec<&str> = log.lines().collect();
        let at = lines.iter().rposition(|l| l.contains("Membership id is ("))?;
        if let Some(members) = lines[at].split_once("): ") {
            return Some(members.1.to_string());
        }
        let mut ips = Vec::new();
        for l in &lines[at + 1..] {
            if l.starts_with("====") {
                return Some(ips.join(" "));
            }
            if l.contains("Num Segments") {
                continue;
            }
            let found = l.split_whitespace().filter_map(|w| w.parse::<Ipv4Addr>().ok());
            ips.extend(found.filter(|ip| ip.octets()[3] != 255).map(|ip| ip.to_string()));
        }
        None
    }

    /// How many memberships daemon `i` installed so far.
    pub fn memberships_installed(&self, i: usize) -> usize {
        self.log(i).matches("Membership id is (").count()
    }

    /// Waits until daemons `which` all last logged the ring of `members`.
    pub fn wait_for_ring(&self, net: &Net, which: &[usize], members: &[usize], within: Duration) {
        let want = members
            .iter()
            .map(|&i| net.ip(i).to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let deadline = Instant::now() + within;
        loop {
            if which
                .iter()
                .all(|&i| self.last_ring(i).as_deref() == Some(want.as_str()))
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

    pub fn client_addr(&self, net: &Net, i: usize) -> SocketAddr {
        SocketAddr::from((net.client_ip(i), self.port))
    }

    /// A session on daemon `i` (NULL method), or why not.
    pub fn try_client(&self, net: &Net, i: usize, name: &str) -> Result<Client, ConnectFailure> {
        let stream = TcpStream::connect_timeout(&self.client_addr(net, i), Duration::from_secs(3))
            .map_err(|_| ConnectFailure::Closed)?;
        let _ = stream.set_nodelay(true);
        Client::connect_with(Conn::Tcp(stream), name.as_bytes(), true, &["NULL"])
    }

    /// A session on daemon `i`; retried for a few seconds while the daemon
    /// starts.
    pub fn client(&self, net: &Net, i: usize, name: &str) -> Client {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.try_client(net, i, name) {
                Ok(c) => return c,
                Err(e) => {
                    assert!(Instant::now() < deadline, "client {name} on d{}: {e:?}", i + 1);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Kills every daemon still running.
    pub fn stop_all(&mut self) {
        for i in 0..self.members.len() {
            // A stopped process does not die of SIGKILL until continued? It
            // does; continue anyway so no frozen process lingers.
            self.thaw(i);
            self.kill(i);
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.stop_all();
        if std::thread::panicking() {
            for (i, m) in self.members.iter().enumerate() {
                let log = self.log(i);
                let tail: Vec<&str> = log.lines().rev().take(80).collect();
                eprintln!(
                    "---- {} log (last lines) ----\n{}",
                    m.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
