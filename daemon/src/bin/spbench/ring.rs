//! `spbench --ring 3,8,16`: rings of N daemons, each daemon in its own
//! network namespace on one bridge (real broadcast), for several daemon
//! binaries side by side (ours and the original by default).
//!
//! Per ring size and binary: the time until every daemon's witness client
//! sees a group with one member per daemon (the ring formed and carries
//! group state); 1 KB AGREED and SAFE throughput from one sender on d1 to
//! receivers on other daemons (rate of the slowest receiver) with the CPU
//! the daemons spent per message; the 1 KB round trip d1 <-> a receiver's
//! daemon, AGREED and SAFE, p50/p99; then d2 (d1's successor on the ring)
//! is SIGKILLed: the time until every surviving witness sees the view
//! without it, and AGREED throughput on the re-formed ring. Once per size,
//! without Spread: UDP broadcast of 1,000-byte datagrams from d1's
//! namespace (goodput at the slowest receiver) and a UDP round trip, the
//! floors of the shared harness's letter g.
//!
//! Names embed this process's pid ("sb" + pid digits + a letter + "n3",
//! "v3" or "br"); the subnet is 10.a.b.0/24 with a in 190..=249, chosen
//! from the pid and skipping any in use (the shared harness's pb1..pb3,
//! pbbr0 and 10.97.0.0/24 are never touched, nor the tests' "sf" names and
//! 10.100-189). Everything created is removed on every way out: return,
//! error, panic (drop guard) and SIGINT/SIGTERM (a watcher thread); what a
//! SIGKILLed spbench left is swept by the next one. Only traffic to the
//! own namespaces and the host's own address on the bridge.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use spread_wire::client::service::{AGREED_MESS, REG_MEMB_MESS, SAFE_MESS};
use spread_wire::client::GroupName;

use super::{latency, read_message, throughput, Client};

/// What the ring runs created, released by [`release_all`] on every way out.
struct Held {
    children: Vec<(u32, Child)>,
    namespaces: Vec<String>,
    links: Vec<String>,
    dirs: Vec<PathBuf>,
}

static HELD: Mutex<Held> = Mutex::new(Held {
    children: Vec::new(),
    namespaces: Vec::new(),
    links: Vec::new(),
    dirs: Vec::new(),
});
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

fn held() -> std::sync::MutexGuard<'static, Held> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kills every process started, removes namespaces (killing anything left
/// in them), links and directories. Idempotent.
fn release_all() {
    let mut h = held();
    for (_, mut child) in h.children.drain(..) {
        let _ = child.kill();
        let _ = child.wait();
    }
    for ns in h.namespaces.drain(..) {
        for pid in lines(&["ip", "netns", "pids", &ns]) {
            quiet(&["kill", "-9", pid.trim()]);
        }
        quiet(&["ip", "netns", "del", &ns]);
    }
    for link in h.links.drain(..) {
        quiet(&["ip", "link", "del", &link]);
    }
    for dir in h.dirs.drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Releases everything when dropped (also while a panic unwinds).
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        release_all();
    }
}

/// A watcher thread that releases everything and exits on SIGINT/SIGTERM.
fn release_on_signals() -> std::io::Result<()> {
    let (mut reader, writer) = std::io::pipe()?;
    // The write end must stay open for the life of the process.
    let fd = std::os::fd::IntoRawFd::into_raw_fd(writer);
    spread_daemon::os::notify_signals_to(fd);
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        if std::io::Read::read_exact(&mut reader, &mut byte).is_ok() {
            eprintln!("spbench: signal {}: removing the namespaces and daemons", byte[0]);
            release_all();
            std::process::exit(130);
        }
    });
    Ok(())
}

fn quiet(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn must(args: &[&str]) -> std::io::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn lines(args: &[&str]) -> Vec<String> {
    let out = Command::new(args[0]).args(&args[1..]).output();
    String::from_utf8_lossy(&out.map(|o| o.stdout).unwrap_or_default())
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The creator's pid digits of a name made here: "sb" + digits + a
/// lowercase letter + "br", or "n"/"v" and a number.
fn creator_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("sb")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (pid, tail) = rest.split_at(digits);
    let mut tail = tail.chars();
    let letter_ok = tail.next().is_some_and(|c| c.is_ascii_lowercase());
    let suffix: String = tail.collect();
    let suffix_ok = suffix == "br"
        || (suffix.len() >= 2
            && matches!(&suffix[..1], "n" | "v")
            && suffix[1..].bytes().all(|b| b.is_ascii_digit()));
    (digits > 0 && letter_ok && suffix_ok).then(|| pid.parse().ok())?
}

fn creator_alive(digits: u32) -> bool {
    std::fs::read_dir("/proc").is_ok_and(|entries| {
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .any(|pid| pid % 100_000 == digits)
    })
}

/// Removes what spbench processes that are gone (SIGKILLed) left behind.
fn sweep_stale() {
    for line in lines(&["ip", "netns", "list"]) {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        if creator_of(ns).is_some_and(|d| !creator_alive(d)) {
            for pid in lines(&["ip", "netns", "pids", ns]) {
                quiet(&["kill", "-9", pid.trim()]);
            }
            quiet(&["ip", "netns", "del", ns]);
            eprintln!("spbench: removed namespace {ns} of a dead spbench");
        }
    }
    for line in lines(&["ip", "-o", "link", "show"]) {
        let Some(field) = line.split_whitespace().nth(1) else {
            continue;
        };
        let name = field.trim_end_matches(':').split('@').next().unwrap_or("");
        if creator_of(name).is_some_and(|d| !creator_alive(d)) {
            quiet(&["ip", "link", "del", name]);
            eprintln!("spbench: removed link {name} of a dead spbench");
        }
    }
}

/// Starts `command` and holds it (killed by [`release_all`]); its id.
fn spawn_held(command: &mut Command) -> std::io::Result<u32> {
    let child = command.spawn()?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    held().children.push((id, child));
    Ok(id)
}

/// Takes a held process back (to wait for it or kill it).
fn take_held(id: u32) -> Option<Child> {
    let mut h = held();
    let at = h.children.iter().position(|(i, _)| *i == id)?;
    Some(h.children.remove(at).1)
}

fn pid_of(id: u32) -> Option<u32> {
    held()
        .children
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, c)| c.id())
}

/// `count` namespaces on one bridge; the host has .254 on the bridge.
struct Net {
    tag: String,
    a: u8,
    b: u8,
    count: usize,
}

static NETS: AtomicU32 = AtomicU32::new(0);

impl Net {
    fn create(count: usize) -> std::io::Result<Net> {
        let n = NETS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{}{}", pid % 100_000, (b'a' + (n % 26) as u8) as char);
        let in_use = lines(&["ip", "-o", "-4", "addr", "show"]).join("\n");
        let mut index = (pid.wrapping_mul(7).wrapping_add(n)) % (60 * 256);
        let (a, b) = loop {
            let (a, b) = (190 + (index / 256) as u8, (index % 256) as u8);
            if !in_use.contains(&format!(" 10.{a}.{b}.")) {
                break (a, b);
            }
            index = (index + 1) % (60 * 256);
        };
        let net = Net { tag, a, b, count };
        {
            let mut h = held();
            h.links.push(net.bridge());
            for i in 0..count {
                h.namespaces.push(net.ns(i));
                h.links.push(net.veth(i));
            }
        }
        let bridge = net.bridge();
        must(&["ip", "link", "add", &bridge, "type", "bridge"])?;
        must(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", net.ip(253)),
            "dev",
            &bridge,
        ])?;
        must(&["ip", "link", "set", &bridge, "up"])?;
        for i in 0..count {
            let (ns, veth) = (net.ns(i), net.veth(i));
            must(&["ip", "netns", "add", &ns])?;
            must(&[
                "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            must(&["ip", "link", "set", &veth, "master", &bridge])?;
            must(&["ip", "link", "set", &veth, "up"])?;
            let addr = format!("{}/24", net.ip(i));
            must(&[
                "ip", "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", "eth0",
            ])?;
            must(&["ip", "netns", "exec", &ns, "ip", "link", "set", "eth0", "up"])?;
            must(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn ns(&self, i: usize) -> String {
        format!("sb{}n{}", self.tag, i + 1)
    }
    fn veth(&self, i: usize) -> String {
        format!("sb{}v{}", self.tag, i + 1)
    }
    fn bridge(&self) -> String {
        format!("sb{}br", self.tag)
    }
    /// Daemon `i`'s address (i = 253: the host's, on the bridge).
    fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.a, self.b, i as u8 + 1)
    }
    fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.a, self.b, 255)
    }
}

/// The daemons of one ring in the namespaces of a [`Net`].
struct Ring {
    ids: Vec<Option<u32>>,
    addrs: Vec<String>,
    dir: PathBuf,
}

impl Ring {
    fn start(
        net: &Net,
        binary: &Path,
        port: u16,
        dir: &Path,
        conf_lines: &[String],
    ) -> std::io::Result<Ring> {
        let mut conf = format!("Spread_Segment {}:{port} {{\n", net.broadcast());
        for i in 0..net.count {
            conf.push_str(&format!("  d{} {}\n", i + 1, net.ip(i)));
        }
        // Started as root, both daemons chroot and change user: here into
        // their private /tmp, staying root.
        conf.push_str("}\nDaemonUser = root\nDaemonGroup = root\nRuntimeDir = /tmp\n");
        for line in conf_lines {
            conf.push_str(line);
            conf.push('\n');
        }
        let mut ring = Ring {
            ids: Vec::new(),
            addrs: Vec::new(),
            dir: dir.to_path_buf(),
        };
        for i in 0..net.count {
            let d = dir.join(format!("d{}", i + 1));
            std::fs::create_dir_all(&d)?;
            std::fs::write(d.join("spread.conf"), &conf)?;
            let log = std::fs::File::create(dir.join(format!("d{}.log", i + 1)))?;
            // A private mount namespace whose /tmp is the daemon's own
            // directory, so the daemons' /tmp/<port> sockets do not collide.
            // `ip netns exec`, `unshare` and the shell exec in place: the
            // child's pid is the daemon's.
            let script = format!(
                "mount --bind '{}' /tmp && exec '{}' -n d{} -c /tmp/spread.conf",
                d.display(),
                binary.display(),
                i + 1
            );
            let mut command = Command::new("ip");
            command
                .args([
                    "netns",
                    "exec",
                    &net.ns(i),
                    "unshare",
                    "-m",
                    "--propagation",
                    "private",
                ])
                .args(["sh", "-c", &script])
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log);
            if let Ok(filter) = std::env::var("SPBENCH_DAEMON_LOG") {
                command.env("RUST_LOG", filter);
            }
            ring.ids.push(Some(spawn_held(&mut command)?));
            ring.addrs.push(format!("{}:{port}", net.ip(i)));
        }
        Ok(ring)
    }

    /// SIGKILL daemon `i` and reap it.
    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.ids[i].take().and_then(take_held) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM to every daemon, up to 2 s to exit (a daemon under a
    /// profiler writes its figures then), SIGKILL for the rest.
    fn stop_all(&mut self) {
        for id in self.ids.iter().flatten() {
            if let Some(pid) = pid_of(*id) {
                quiet(&["kill", "-TERM", &pid.to_string()]);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && self.dead().len() < self.ids.iter().flatten().count() {
            std::thread::sleep(Duration::from_millis(20));
        }
        for i in 0..self.ids.len() {
            self.kill(i);
        }
    }

    /// Whether every daemon not killed still runs.
    fn dead(&self) -> Vec<usize> {
        let mut h = held();
        let mut dead = Vec::new();
        for (i, id) in self.ids.iter().enumerate() {
            if let Some(id) = id {
                if let Some((_, c)) = h.children.iter_mut().find(|(j, _)| j == id) {
                    if !matches!(c.try_wait(), Ok(None)) {
                        dead.push(i);
                    }
                }
            }
        }
        dead
    }

    /// CPU seconds (user + system) the running daemons used so far.
    fn cpu_secs(&self) -> f64 {
        self.ids
            .iter()
            .flatten()
            .filter_map(|&id| pid_of(id))
            .filter_map(cpu_secs_of)
            .sum()
    }

    fn log_tail(&self, i: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join(format!("d{}.log", i + 1))).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// utime + stime of a process, from /proc (USER_HZ is 100 on Linux).
fn cpu_secs_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A notified client of daemon `addr` in the witnesses' group, connected
/// once the daemon listens.
fn witness(addr: &str, name: &str, group: GroupName, deadline: Instant) -> std::io::Result<Client> {
    loop {
        match Client::connect(addr, name) {
            Ok(mut c) => {
                c.join(group)?;
                return Ok(c);
            }
            Err(e) if Instant::now() > deadline => {
                return Err(std::io::Error::other(format!("no session on {addr}: {e}")));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Reads each witness's notices until its view of the group has `members`
/// members.
fn wait_views(witnesses: &mut [(usize, Client)], members: usize, deadline: Instant) -> std::io::Result<()> {
    let mut buf = Vec::new();
    for (i, w) in witnesses.iter_mut() {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::other(format!(
                    "d{}'s witness never saw {members} members",
                    *i + 1
                )));
            }
            w.stream.set_read_timeout(Some(left))?;
            let (service, len) = read_message(&mut w.stream, &mut buf)
                .map_err(|e| std::io::Error::other(format!("d{}'s witness: {e}", *i + 1)))?;
            if service & REG_MEMB_MESS != 0 && (buf.len() - len) / 32 == members {
                break;
            }
        }
        w.stream.set_read_timeout(None)?;
    }
    Ok(())
}

/// Reads what the witnesses have queued (each read waits at most 50 ms
/// for the next message); returns how many regular views they got, all
/// witnesses summed.
fn drain_views(witnesses: &mut [(usize, Client)]) -> std::io::Result<usize> {
    let mut buf = Vec::new();
    let mut views = 0;
    for (_, w) in witnesses.iter_mut() {
        w.stream.set_read_timeout(Some(Duration::from_millis(50)))?;
        loop {
            match read_message(&mut w.stream, &mut buf) {
                Ok((service, _)) => views += usize::from(service & REG_MEMB_MESS != 0),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => return Err(e),
            }
        }
        w.stream.set_read_timeout(None)?;
    }
    Ok(views)
}

/// One ring run's figures (`Err`: why that figure is missing).
#[derive(Default)]
struct Figures {
    form_s: Option<f64>,
    agreed: Option<f64>,
    safe: Option<f64>,
    cpu_us_per_msg: Option<f64>,
    rt_agreed: Option<(f64, f64)>,
    rt_safe: Option<(f64, f64)>,
    reform_ms: Option<f64>,
    after_kill: Option<f64>,
    /// Regular views the witnesses saw between formation and the kill.
    unplanned_views: usize,
    errors: Vec<String>,
}

pub struct Options {
    pub sizes: Vec<usize>,
    pub sides: Vec<(String, PathBuf)>,
    pub pairs: usize,
    pub receivers: usize,
    pub count: usize,
    pub rounds: usize,
    pub window: u64,
    pub floor: bool,
    /// Lines appended to every daemon's spread.conf (the original's grammar).
    pub conf_lines: Vec<String>,
}

/// Indices of the receivers' daemons: spread over d2..dN, farthest last.
fn receiver_indices(n: usize, k: usize) -> Vec<usize> {
    let k = k.clamp(1, n - 1);
    let mut v: Vec<usize> = (1..=k).map(|j| (j * (n - 1)).div_ceil(k)).collect();
    v.dedup();
    v
}

static RUNS: AtomicU32 = AtomicU32::new(0);

fn run_ring(net: &Net, binary: &Path, opts: &Options, work: &Path) -> Figures {
    let mut f = Figures::default();
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let port = 4803 + 10 * (run % 100) as u16;
    let dir = work.join(format!("run{run}"));
    let n = net.count;
    let t0 = Instant::now();
    let mut ring = match Ring::start(net, binary, port, &dir, &opts.conf_lines) {
        Ok(r) => r,
        Err(e) => {
            f.errors.push(format!("start: {e}"));
            return f;
        }
    };
    let group = GroupName::new(format!("ringw{run}").as_bytes()).expect("short");
    let deadline = t0 + Duration::from_secs(90);
    let mut witnesses = Vec::new();
    for (i, addr) in ring.addrs.iter().enumerate() {
        match witness(addr, &format!("w{i}"), group, deadline) {
            Ok(c) => witnesses.push((i, c)),
            Err(e) => {
                f.errors
                    .push(format!("form: {e}; d{} log:\n{}", i + 1, ring.log_tail(i)));
                return f;
            }
        }
    }
    if let Err(e) = wait_views(&mut witnesses, n, deadline) {
        f.errors.push(format!("form: {e}; d1 log:\n{}", ring.log_tail(0)));
        return f;
    }
    f.form_s = Some(t0.elapsed().as_secs_f64());
    let rx = receiver_indices(n, opts.receivers);
    let receivers: Vec<String> = rx.iter().map(|&i| ring.addrs[i].clone()).collect();
    let sender = ring.addrs[0].clone();
    for service in [AGREED_MESS, SAFE_MESS] {
        let cpu0 = ring.cpu_secs();
        match throughput(&sender, &receivers, service, 1000, opts.count, opts.window) {
            Ok((rate, _)) if service == AGREED_MESS => {
                f.agreed = Some(rate);
                f.cpu_us_per_msg = Some((ring.cpu_secs() - cpu0) / opts.count as f64 * 1e6);
            }
            Ok((rate, _)) => f.safe = Some(rate),
            Err(e) => f.errors.push(format!("throughput {service:#x}: {e}")),
        }
    }
    let peer = receivers[0].clone();
    for service in [AGREED_MESS, SAFE_MESS] {
        match latency(&sender, &peer, opts.rounds, service, 1000) {
            Ok((p50, p99)) => {
                let v = Some((super::us(p50), super::us(p99)));
                if service == AGREED_MESS {
                    f.rt_agreed = v;
                } else {
                    f.rt_safe = v;
                }
            }
            Err(e) => f.errors.push(format!("round trip {service:#x}: {e}")),
        }
    }
    let dead = ring.dead();
    if !dead.is_empty() {
        f.errors.push(format!("daemons died before the kill: {dead:?}"));
        return f;
    }
    // Views the witnesses got since the ring formed: the ring changed
    // under the traffic (a token loss on a loaded machine). They must not
    // be taken for the view after the kill.
    match drain_views(&mut witnesses) {
        Ok(0) => {}
        Ok(views) => {
            f.unplanned_views = views;
            eprintln!("spbench: {n} daemons: the ring changed {views} time(s) under the traffic (seen by the witnesses)");
        }
        Err(e) => {
            f.errors.push(format!("witnesses before the kill: {e}"));
            return f;
        }
    }
    // Kill d2, d1's successor on the ring (addresses in order).
    let victim = 1;
    witnesses.retain(|(i, _)| *i != victim);
    let t = Instant::now();
    ring.kill(victim);
    match wait_views(&mut witnesses, n - 1, t + Duration::from_secs(60)) {
        Ok(()) => f.reform_ms = Some(t.elapsed().as_secs_f64() * 1e3),
        Err(e) => {
            f.errors.push(format!("re-form after killing d2: {e}"));
            return f;
        }
    }
    let survivors: Vec<String> = rx
        .iter()
        .filter(|&&i| i != victim)
        .map(|&i| ring.addrs[i].clone())
        .collect();
    match throughput(
        &sender,
        &survivors,
        AGREED_MESS,
        1000,
        opts.count / 2,
        opts.window,
    ) {
        Ok((rate, _)) => f.after_kill = Some(rate),
        Err(e) => f.errors.push(format!("throughput after the kill: {e}")),
    }
    let dead = ring.dead();
    if !dead.is_empty() {
        f.errors.push(format!("daemons died: {dead:?}"));
    }
    drop(witnesses);
    ring.stop_all();
    f
}

/// The figures without Spread of one ring size (msgs/s; p50, p99 in us).
#[derive(Default)]
struct Floors {
    broadcast: Option<f64>,
    legs: Option<f64>,
    round_trip: Option<(f64, f64)>,
    errors: Vec<String>,
}

/// Floors without Spread on `net`: UDP broadcast goodput of 1,000-byte
/// datagrams from d1's namespace at the slowest of `rx`, the same with the
/// client legs, and the UDP round trip d1 <-> rx[0].
fn floors(net: &Net, rx: &[usize], opts: &Options) -> Floors {
    let mut errors = Vec::new();
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            return Floors {
                errors: vec![format!("floor: {e}")],
                ..Floors::default()
            }
        }
    };
    let in_ns = |i: usize, args: &[String]| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &net.ns(i)])
            .arg(&exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        c
    };
    let role = |r: &str, addr: String, secs: f64| {
        vec![
            "--floor-role".to_string(),
            r.to_string(),
            "--floor-addr".to_string(),
            addr,
            "--floor-secs".to_string(),
            secs.to_string(),
            "--rounds".to_string(),
            opts.rounds.to_string(),
        ]
    };
    let port = 4900;
    let secs = 1.5;
    let result = |id: u32| -> std::io::Result<String> {
        let child = take_held(id).ok_or_else(|| std::io::Error::other("floor process gone"))?;
        let out = child.wait_with_output()?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .to_string())
    };
    // Broadcast goodput.
    let mut broadcast = None;
    let mut ids = Vec::new();
    let started = (|| -> std::io::Result<()> {
        for &i in rx {
            ids.push(start_ready(
                &mut in_ns(i, &role("recv", port.to_string(), secs)),
                "UDP receiver",
            )?);
        }
        Ok(())
    })();
    match started {
        Err(e) => errors.push(format!("UDP floor: {e}")),
        Ok(()) => {
            let send = in_ns(0, &role("send", format!("{}:{port}", net.broadcast()), secs))
                .stdout(Stdio::null())
                .status();
            if let Err(e) = send {
                errors.push(format!("UDP floor sender: {e}"));
            }
            broadcast = slowest_rate(ids.drain(..), "UDP receiver", &mut errors);
        }
    }
    // Round trip.
    let mut rt = None;
    let mut pong = in_ns(rx[0], &role("pong", port.to_string(), 30.0));
    let pong = spawn_held(pong.stdout(Stdio::null()));
    match pong {
        Err(e) => errors.push(format!("UDP pong: {e}")),
        Ok(pong) => {
            std::thread::sleep(Duration::from_millis(300));
            let ping = spawn_held(&mut in_ns(
                0,
                &role("ping", format!("{}:{port}", net.ip(rx[0])), 30.0),
            ));
            match ping.and_then(result) {
                Ok(line) => match line.split_whitespace().collect::<Vec<_>>()[..] {
                    [p50, p99] => rt = p50.parse().ok().zip(p99.parse().ok()),
                    _ => errors.push(format!("UDP ping said {line:?}")),
                },
                Err(e) => errors.push(format!("UDP ping: {e}")),
            }
            if let Some(mut c) = take_held(pong) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let legs = legs_floor(net, rx, opts, &mut errors);
    Floors {
        broadcast,
        legs,
        round_trip: rt,
        errors,
    }
}

/// Starts `command` (its stdout piped), holds it, and waits for its READY
/// line; its id and the rest of its output.
fn start_ready(command: &mut Command, what: &str) -> std::io::Result<(u32, BufReader<ChildStdout>)> {
    let mut child = command.spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut reader = BufReader::new(stdout);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    held().children.push((id, child));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.trim() != "READY" {
        return Err(std::io::Error::other(format!("{what} said {line:?}")));
    }
    Ok((id, reader))
}

/// The lowest `count seconds` rate the started receivers print (each is
/// waited for); None when any of them gave none.
fn slowest_rate(
    receivers: impl Iterator<Item = (u32, BufReader<ChildStdout>)>,
    what: &str,
    errors: &mut Vec<String>,
) -> Option<f64> {
    let mut rates = Vec::new();
    let mut expected = 0;
    for (id, mut reader) in receivers {
        expected += 1;
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        if let Some(mut c) = take_held(id) {
            let _ = c.wait();
        }
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            [count, secs] => match (count.parse::<f64>(), secs.parse::<f64>()) {
                (Ok(c), Ok(s)) if s > 0.0 => rates.push(c / s),
                _ => errors.push(format!("{what} said {line:?}")),
            },
            _ => errors.push(format!("{what} said {line:?}")),
        }
    }
    if rates.len() == expected {
        rates.into_iter().reduce(f64::min)
    } else {
        None
    }
}

/// The client-legs floor (see [`super::legs`]) on `net`: the goodput at the
/// slowest of `rx`'s clients.
fn legs_floor(net: &Net, rx: &[usize], opts: &Options, errors: &mut Vec<String>) -> Option<f64> {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            errors.push(format!("client-legs floor: {e}"));
            return None;
        }
    };
    let secs = 1.5;
    let in_ns = |i: usize, role: &str, addr: String| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &net.ns(i)])
            .arg(&exe)
            .args(["--floor-role", role, "--floor-addr", &addr])
            .arg("--floor-secs")
            .arg(secs.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        c
    };
    let (tcp, udp) = (4910, 4911);
    let (mut relays, mut clients) = (Vec::new(), Vec::new());
    let started = (|| -> std::io::Result<()> {
        for &i in rx {
            let relay = start_ready(
                &mut in_ns(i, "legs-relay", format!("{tcp}/{udp}")),
                "receiving relay",
            )?;
            relays.push(relay.0);
            let addr = format!("{}:{tcp}", net.ip(i));
            clients.push(start_ready(&mut in_ns(i, "legs-recv", addr), "receiving client")?);
        }
        let sender_relay = format!("{tcp}/{}:{udp}", net.broadcast());
        relays.push(start_ready(&mut in_ns(0, "legs-relay", sender_relay), "sending relay")?.0);
        let sender = format!("{}:{tcp}/{}", net.ip(0), opts.window);
        let status = in_ns(0, "legs-send", sender).stdout(Stdio::null()).status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!("sending client: {status}")));
        }
        Ok(())
    })();
    let rate = match started {
        Ok(()) => slowest_rate(clients.into_iter(), "client-legs receiver", errors),
        Err(e) => {
            errors.push(format!("client-legs floor: {e}"));
            None
        }
    };
    for id in relays {
        if let Some(mut relay) = take_held(id) {
            let _ = relay.kill();
            let _ = relay.wait();
        }
    }
    rate
}

/// The floor processes (run inside a namespace by [`floors`]).
pub fn floor_role(role: &str, addr: &str, secs: f64, rounds: usize) -> ExitCode {
    match floor_role_inner(role, addr, secs, rounds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spbench floor {role}: {e}");
            ExitCode::from(1)
        }
    }
}

fn floor_role_inner(role: &str, addr: &str, secs: f64, rounds: usize) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    let mut buf = vec![0u8; 2048];
    match role {
        "recv" => {
            // A deep receive buffer, as the daemons' own: the floor is the
            // path, not a queue the reader lets overflow.
            let port = addr.parse::<u16>().map_err(std::io::Error::other)?;
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
            sock.set_recv_buffer_size(8 << 20)?;
            sock.bind(&std::net::SocketAddr::from(([0, 0, 0, 0], port)).into())?;
            let sock: UdpSocket = sock.into();
            sock.set_read_timeout(Some(Duration::from_millis(100)))?;
            writeln!(out, "READY")?;
            out.flush()?;
            let start = Instant::now();
            let (mut count, mut first, mut last) = (0u64, None, start);
            loop {
                match sock.recv(&mut buf) {
                    Ok(_) => {
                        let now = Instant::now();
                        first.get_or_insert(now);
                        last = now;
                        count += 1;
                    }
                    Err(_) if first.is_some() && last.elapsed() > Duration::from_millis(500) => break,
                    Err(_) if start.elapsed() > Duration::from_secs_f64(secs + 10.0) => break,
                    Err(_) => {}
                }
            }
            let span = first.map_or(0.0, |f| (last - f).as_secs_f64());
            writeln!(out, "{} {span}", count.saturating_sub(1))?;
        }
        "send" => {
            let sock = UdpSocket::bind("0.0.0.0:0")?;
            sock.set_broadcast(true)?;
            let payload = vec![0xabu8; 1000];
            let end = Instant::now() + Duration::from_secs_f64(secs);
            let mut sent = 0u64;
            while Instant::now() < end {
                for _ in 0..64 {
                    // ENOBUFS when the queue is full: the floor is the goodput.
                    if sock.send_to(&payload, addr).is_ok() {
                        sent += 1;
                    }
                }
            }
            writeln!(out, "{sent}")?;
        }
        "pong" => {
            let sock = UdpSocket::bind(("0.0.0.0", addr.parse::<u16>().map_err(std::io::Error::other)?))?;
            sock.set_read_timeout(Some(Duration::from_secs_f64(secs)))?;
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                sock.send_to(&buf[..n], from)?;
            }
        }
        "ping" => {
            let sock = UdpSocket::bind("0.0.0.0:0")?;
            sock.connect(addr)?;
            sock.set_read_timeout(Some(Duration::from_millis(500)))?;
            let payload = vec![7u8; 1000];
            let mut samples = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let t = Instant::now();
                sock.send(&payload)?;
                if sock.recv(&mut buf).is_ok() {
                    samples.push(t.elapsed());
                }
            }
            if samples.is_empty() {
                return Err(std::io::Error::other("no answer"));
            }
            samples.sort();
            let p = |q: usize| super::us(samples[(samples.len() * q / 100).min(samples.len() - 1)]);
            writeln!(out, "{:.1} {:.1}", p(50), p(99))?;
        }
        "legs-relay" => super::legs::relay(addr, secs, &mut out)?,
        "legs-send" => super::legs::send(addr, secs, &mut out)?,
        "legs-recv" => super::legs::receive(addr, secs, &mut out)?,
        other => return Err(std::io::Error::other(format!("unknown floor role {other}"))),
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// Runs every ring size for every side and prints the table.
pub fn run(opts: &Options) -> ExitCode {
    let uid = lines(&["id", "-u"]);
    if uid.first().map(String::as_str) != Some("0")
        || !quiet(&["ip", "-V"])
        || !quiet(&["unshare", "--version"])
    {
        eprintln!("spbench --ring needs root, iproute2 (ip) and util-linux (unshare, mount)");
        return ExitCode::from(2);
    }
    for (name, binary) in &opts.sides {
        if !binary.exists() {
            eprintln!("spbench: {name}'s daemon {} does not exist", binary.display());
            return ExitCode::from(2);
        }
        // Each daemon's private /tmp covers the host's.
        let real = binary.canonicalize().unwrap_or_else(|_| binary.clone());
        if real.starts_with("/tmp") {
            eprintln!(
                "spbench: {name}'s daemon {} is under /tmp, which each ring daemon's own /tmp hides: copy it elsewhere",
                binary.display()
            );
            return ExitCode::from(2);
        }
    }
    let _guard = Guard;
    if let Err(e) = release_on_signals() {
        eprintln!("spbench: cannot watch for signals: {e}");
        return ExitCode::from(1);
    }
    sweep_stale();
    let work = std::env::temp_dir().join(format!("spbench-ring-{}", std::process::id()));
    held().dirs.push(work.clone());
    let load_before = loadavg();
    println!(
        "spbench ring: 1 KB messages, {} per throughput run, {} round trips, window {}; {} pair(s); load {load_before}",
        opts.count, opts.rounds, opts.window, opts.pairs
    );
    for line in &opts.conf_lines {
        println!("spbench ring: every spread.conf ends with: {line}");
    }
    let mut failed = false;
    let mut table: Vec<(String, Vec<String>)> = Vec::new();
    for &n in &opts.sizes {
        if n < 3 {
            eprintln!("spbench: a ring needs at least 3 daemons (the kill leaves 2)");
            return ExitCode::from(2);
        }
        let net = match Net::create(n) {
            Ok(net) => net,
            Err(e) => {
                eprintln!("spbench: namespaces for {n} daemons: {e}");
                return ExitCode::from(1);
            }
        };
        let rx = receiver_indices(n, opts.receivers);
        let mut per_side: Vec<Vec<Figures>> = (0..opts.sides.len()).map(|_| Vec::new()).collect();
        let load = loadavg();
        for pair in 0..opts.pairs {
            let mut order: Vec<usize> = (0..opts.sides.len()).collect();
            if pair % 2 == 1 {
                order.reverse();
            }
            for s in order {
                let (name, binary) = &opts.sides[s];
                let f = run_ring(&net, binary, opts, &work);
                for e in &f.errors {
                    eprintln!("spbench: {n} daemons, {name}: {e}");
                    failed = true;
                }
                eprintln!(
                    "  {n} daemons, {name}, pair {}: formed {} s, AGREED {} / SAFE {} msgs/s, re-form {} ms{}",
                    pair + 1,
                    cell(f.form_s, 2),
                    cell(f.agreed, 0),
                    cell(f.safe, 0),
                    cell(f.reform_ms, 0),
                    if f.unplanned_views > 0 {
                        format!(", {} unplanned view(s) under the traffic", f.unplanned_views)
                    } else {
                        String::new()
                    }
                );
                per_side[s].push(f);
            }
        }
        let floor = if opts.floor {
            floors(&net, &rx, opts)
        } else {
            Floors::default()
        };
        for e in &floor.errors {
            eprintln!("spbench: {n} daemons floor: {e}");
        }
        drop(net);
        release_all_namespaces();
        type Pick = fn(&Figures) -> Option<f64>;
        let rows: [(&str, Pick, usize); 11] = [
            ("ring formed, s", |f| f.form_s, 2),
            ("AGREED 1 KB, msgs/s (slowest receiver)", |f| f.agreed, 0),
            ("SAFE 1 KB, msgs/s", |f| f.safe, 0),
            (
                "daemon CPU per AGREED msg, us (all daemons)",
                |f| f.cpu_us_per_msg,
                1,
            ),
            ("round trip AGREED p50, us", |f| f.rt_agreed.map(|v| v.0), 0),
            ("round trip AGREED p99, us", |f| f.rt_agreed.map(|v| v.1), 0),
            ("round trip SAFE p50, us", |f| f.rt_safe.map(|v| v.0), 0),
            ("round trip SAFE p99, us", |f| f.rt_safe.map(|v| v.1), 0),
            ("new view after SIGKILL of d2, ms", |f| f.reform_ms, 0),
            ("AGREED 1 KB after the kill, msgs/s", |f| f.after_kill, 0),
            (
                "ring changes under the traffic (before the kill)",
                |f| Some(f.unplanned_views as f64),
                0,
            ),
        ];
        let rx_names: Vec<String> = rx.iter().map(|i| format!("d{}", i + 1)).collect();
        table.push((
            format!(
                "{n} daemons (sender d1, receivers {}, load {load})",
                rx_names.join("+")
            ),
            Vec::new(),
        ));
        for (label, pick, digits) in rows.iter() {
            let meds: Vec<Option<f64>> = per_side
                .iter()
                .map(|runs| median(runs.iter().filter_map(pick).collect()))
                .collect();
            let mut cells: Vec<String> = meds.iter().map(|m| cell(*m, *digits)).collect();
            if let [Some(a), Some(b)] = meds[..] {
                cells.push(if b != 0.0 {
                    format!("{:.2}x", a / b)
                } else {
                    "-".into()
                });
            }
            table.push((format!("  {label}"), cells));
        }
        if opts.floor {
            let share_of = |floor_rate: Option<f64>| -> String {
                let of = |v: Option<f64>| match (v, floor_rate) {
                    (Some(v), Some(fl)) => format!(" ({:.2} of it)", v / fl),
                    _ => String::new(),
                };
                let agreed: Vec<String> = per_side
                    .iter()
                    .zip(&opts.sides)
                    .map(|(runs, (name, _))| {
                        format!(
                            "{name} AGREED{}",
                            of(median(runs.iter().filter_map(|f| f.agreed).collect()))
                        )
                    })
                    .collect();
                agreed.join(", ")
            };
            table.push((
                format!(
                    "  floor: UDP broadcast 1,000 B d1 -> {}, datagrams/s: {}; {}",
                    rx_names.join("+"),
                    cell(floor.broadcast, 0),
                    share_of(floor.broadcast)
                ),
                Vec::new(),
            ));
            table.push((
                format!(
                    "  floor: the same with the client legs (TCP in, own copy, TCP out), msgs/s: {}; {}",
                    cell(floor.legs, 0),
                    share_of(floor.legs)
                ),
                Vec::new(),
            ));
            table.push((
                format!(
                    "  floor: UDP round trip 1,000 B d1 <-> {}, p50 / p99 us: {} / {}",
                    rx_names[0],
                    cell(floor.round_trip.map(|v| v.0), 1),
                    cell(floor.round_trip.map(|v| v.1), 1)
                ),
                Vec::new(),
            ));
        }
    }
    let load_after = loadavg();
    println!();
    let mut header = format!("{:<50}", "figure (median of the pairs)");
    for (name, _) in &opts.sides {
        header.push_str(&format!(" {name:>12}"));
    }
    if opts.sides.len() == 2 {
        header.push_str(&format!(
            " {:>12}",
            format!("{}/{}", opts.sides[0].0, opts.sides[1].0)
        ));
    }
    println!("{header}");
    for (label, cells) in &table {
        if cells.is_empty() {
            println!("{label}");
        } else {
            let mut line = format!("{label:<50}");
            for c in cells {
                line.push_str(&format!(" {c:>12}"));
            }
            println!("{line}");
        }
    }
    println!("load average: {load_before} at the start, {load_after} at the end");
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Removes the namespaces and links of the nets released so far (each
/// size gets a fresh net; processes and the work directory stay held).
fn release_all_namespaces() {
    let (namespaces, links) = {
        let mut h = held();
        (std::mem::take(&mut h.namespaces), std::mem::take(&mut h.links))
    };
    for ns in namespaces {
        for pid in lines(&["ip", "netns", "pids", &ns]) {
            quiet(&["kill", "-9", pid.trim()]);
        }
        quiet(&["ip", "netns", "del", &ns]);
    }
    for link in links {
        quiet(&["ip", "link", "del", &link]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_creators_pid() {
        assert_eq!(creator_of("sb4242an1"), Some(4242));
        assert_eq!(creator_of("sb4242bv16"), Some(4242));
        assert_eq!(creator_of("sb7zbr"), Some(7));
        for other in [
            "sban1", "sb12n1", "sb12Av1", "sb12ac1", "pb1", "pbbr0", "sf12an1", "sb12abr0",
        ] {
            assert_eq!(creator_of(other), None, "{other}");
        }
    }

    #[test]
    fn receivers_are_spread_with_the_farthest_last() {
        assert_eq!(receiver_indices(3, 2), vec![1, 2]);
        assert_eq!(receiver_indices(8, 2), vec![4, 7]);
        assert_eq!(receiver_indices(16, 2), vec![8, 15]);
        assert_eq!(receiver_indices(3, 5), vec![1, 2]);
    }
}
