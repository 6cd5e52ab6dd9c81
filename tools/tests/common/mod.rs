//! Harness of the tools' tests: a `spread` daemon on a free loopback port,
//! the tools run as child processes with a scripted standard input, and
//! their output compared with transcripts of the original tools.
//!
//! Every wait is bounded; daemons and tools are killed, and the daemon's
//! directory removed, when their guards drop (also while a test unwinds).
//!
//! Set `SPREAD_TEST_DAEMON` to run another daemon with the same flags (the
//! original, by hand), `SPUSER_BIN` / `SPFLOODER_BIN` to run other tools, and
//! `SPREAD_TOOLS_RECORD=1` to write the transcripts instead of comparing.

#![allow(dead_code)]

/// The daemon's tests' loopback ring harness, shared by path.
#[path = "../../../daemon/tests/common/loopback_ring.rs"]
pub mod loopback_ring;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.write_u32(std::process::id());
    h.write_usize(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A port in 30000..40000 with TCP and UDP free on it and the next one on
/// 127.0.0.1, and no `/tmp/<port>`.
pub fn pick_port() -> u16 {
    loop {
        let port = 30000 + (random_u64() % 9998) as u16;
        let free = TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok()
            && !Path::new(&format!("/tmp/{port}")).exists();
        if free {
            return port;
        }
    }
}

/// `target/<profile>/`, where cargo puts the workspace's binaries.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// The daemon under test: `SPREAD_TEST_DAEMON`, or the workspace's own
/// `spread` (built here if this test was built alone).
pub fn daemon_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SPREAD_TEST_DAEMON") {
        return PathBuf::from(p);
    }
    let path = target_dir().join("spread");
    if !path.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "spread-daemon", "--bin", "spread"]);
        if target_dir().file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo to build the daemon");
        assert!(status.success(), "building the spread daemon failed");
    }
    path
}

/// Whether the daemon is not ours (then it may need root's settings).
pub fn foreign_daemon() -> bool {
    std::env::var_os("SPREAD_TEST_DAEMON").is_some()
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// A running daemon, killed on drop.
pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

impl Daemon {
    /// One daemon named `localhost` on a free loopback port; `extra` lines
    /// follow the segment in its configuration.
    pub fn start(extra: &str, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_in_segment("", extra, env)
    }

    /// As `start`, with `others` (daemon entries) in the segment after
    /// `localhost`.
    pub fn start_in_segment(others: &str, extra: &str, env: &[(&str, &str)]) -> Daemon {
        let mut last_log = String::new();
        for _ in 0..8 {
            let port = pick_port();
            let dir = std::env::temp_dir().join(format!(
                "spread-tools-test-{}-{}-{}",
                std::process::id(),
                port,
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("create the test directory");
            let mut conf = format!(
                "Spread_Segment 127.0.0.255:{port} {{\n\tlocalhost 127.0.0.1 {{ D 127.0.0.1 C 127.0.0.1 }}\n{others}}}\n{extra}\n"
            );
            if foreign_daemon() && is_root() {
                // The original refuses to run as root without somewhere to chroot.
                conf.push_str(&format!(
                    "RuntimeDir = {}\nDaemonUser = root\nDaemonGroup = root\n",
                    dir.display()
                ));
            }
            std::fs::write(dir.join("spread.conf"), conf).expect("write the configuration");
            let log = std::fs::File::create(dir.join("daemon.log")).expect("create the daemon log");
            let mut cmd = Command::new(daemon_binary());
            cmd.args(["-n", "localhost", "-c"])
                .arg(dir.join("spread.conf"))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone the log handle"))
                .stderr(log);
            for (k, v) in env {
                cmd.env(k, v);
            }
            let child = cmd.spawn().expect("start the daemon");
            let mut d = Daemon {
                child: Some(child),
                port,
                dir,
            };
            if d.wait_ready() {
                return d;
            }
            last_log = d.log();
        }
        panic!("the daemon did not start on any port; last log:\n{last_log}");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                return false;
            }
            // Its Unix socket takes clients (the TCP address depends on
            // the daemon's interface).
            if std::os::unix::net::UnixStream::connect(format!("/tmp/{}", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// Whether it has exited on its own.
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(Some(_))),
            None => true,
        }
    }

    /// Kill it now (SIGKILL) and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(format!("/tmp/{}", self.port));
        // and our daemon's record socket beside it (a SIGKILL leaves it)
        let _ = std::fs::remove_file(format!("/tmp/{}.seq", self.port));
    }

    /// Stop it with SIGTERM (so it can say goodbye in its log); SIGKILL
    /// after 5 s.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(format!("/tmp/{}", self.port));
        // and our daemon's record socket beside it (a SIGKILL leaves it)
        let _ = std::fs::remove_file(format!("/tmp/{}.seq", self.port));
    }
}

/// `n` daemons `d1..dn`, each alone in a segment of its own (so they all
/// fit on loopback: 127.0.0.i, their own ports), in one ring.
pub fn start_ring(n: usize) -> Vec<Daemon> {
    // The ports are picked before the daemons start: one may be taken in
    // between (30000..40000 overlaps the ephemeral range), so a bind
    // failure picks new ports, a bounded number of times.
    for _ in 0..4 {
        if let Some(daemons) = try_start_ring(n) {
            return daemons;
        }
    }
    try_start_ring(n).expect("a ring's ports were taken five times in a row")
}

fn try_start_ring(n: usize) -> Option<Vec<Daemon>> {
    let ports: Vec<u16> = (0..n).map(|_| pick_port()).collect();
    let segments: String = (0..n)
        .map(|i| {
            format!(
                "Spread_Segment 127.0.0.255:{} {{\n\td{} 127.0.0.{}\n}}\n",
                ports[i],
                i + 1,
                i + 1
            )
        })
        .collect();
    let mut daemons = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let dir = std::env::temp_dir().join(format!(
            "spread-tools-test-{}-{}-{}",
            std::process::id(),
            port,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        let mut conf = segments.clone();
        if foreign_daemon() && is_root() {
            conf.push_str(&format!(
                "RuntimeDir = {}\nDaemonUser = root\nDaemonGroup = root\n",
                dir.display()
            ));
        }
        std::fs::write(dir.join("spread.conf"), conf).expect("write the configuration");
        let log = std::fs::File::create(dir.join("daemon.log")).expect("create the daemon log");
        let child = Command::new(daemon_binary())
            .args(["-n", &format!("d{}", i + 1), "-c"])
            .arg(dir.join("spread.conf"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start the daemon");
        let mut d = Daemon {
            child: Some(child),
            port: *port,
            dir,
        };
        if !d.wait_ready() {
            let log = d.log();
            if log.contains("Address already in use") {
                eprintln!("d{}: its port was taken after it was picked; new ports", i + 1);
                return None;
            }
            panic!("d{} did not start:\n{log}", i + 1);
        }
        daemons.push(d);
    }
    Some(daemons)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A tool run as a child: its standard input is ours to write, its output
/// is collected on a thread.
pub struct Tool {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<u8>>>,
    last_output: Arc<Mutex<Instant>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Tool {
    pub fn start(binary: &Path, args: &[String]) -> Tool {
        let mut child = Command::new(binary)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("the tool's stdout");
        let out = Arc::new(Mutex::new(Vec::new()));
        let last_output = Arc::new(Mutex::new(Instant::now()));
        let (o, l) = (out.clone(), last_output.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().extend_from_slice(&buf[..n]);
                *l.lock().unwrap() = Instant::now();
            }
        });
        Tool {
            child,
            stdin,
            out,
            last_output,
            reader: Some(reader),
        }
    }

    pub fn send_line(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            // A tool that already quit cannot read it; its output says so.
            let _ = s.write_all(format!("{line}\n").as_bytes());
            let _ = s.flush();
        }
    }

    /// When it last printed something.
    pub fn last_output(&self) -> Instant {
        *self.last_output.lock().unwrap()
    }

    pub fn output(&self) -> Vec<u8> {
        self.out.lock().unwrap().clone()
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Close its input and wait (bounded) for it to exit; its whole output
    /// and exit code.
    pub fn finish(mut self, within: Duration) -> (Vec<u8>, Option<i32>) {
        self.stdin = None;
        let deadline = Instant::now() + within;
        let mut code = None;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                code = status.code();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if code.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (self.output(), code)
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until none of `tools` printed anything for `quiet` (at most `max`).
pub fn settle(tools: &[&Tool], quiet: Duration, max: Duration) {
    let start = Instant::now();
    std::thread::sleep(quiet);
    while start.elapsed() < max {
        let newest = tools.iter().map(|t| t.last_output()).max();
        match newest {
            Some(t) if t.elapsed() < quiet => std::thread::sleep(quiet - t.elapsed()),
            _ => return,
        }
    }
}

/// Whether the transcripts are to be written rather than compared.
pub fn recording() -> bool {
    std::env::var_os("SPREAD_TOOLS_RECORD").is_some_and(|v| v == "1")
}

/// The test transcripts directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("transcripts")
}

/// Transcripts of several programs in one file: `######## <name> <args>`
/// headers, each followed by that program's standard output.
pub fn join_transcripts(parts: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (header, bytes) in parts {
        out.extend_from_slice(format!("######## {header}\n").as_bytes());
        out.extend_from_slice(bytes);
        if !bytes.ends_with(b"\n") {
            out.extend_from_slice(b"\n######## (no newline at the end)\n");
        }
    }
    out
}

/// Replace every maximal run of ASCII digits following `prefix` in `text`.
pub fn mask_number_after(text: &str, prefix: &str, mask: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let (head, tail) = rest.split_at(i + prefix.len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str(mask);
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// Cut the block from the line `first` through the next line starting
/// with one of `last`, replaced by `mask` (one line).
pub fn mask_block(text: &str, first: &str, last: &[&str], mask: &str) -> String {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        if !inside && line.trim_end_matches('\n') == first {
            inside = true;
            out.push(format!("{mask}\n"));
        }
        if inside {
            if last.iter().any(|l| line.starts_with(l)) {
                inside = false;
            }
            continue;
        }
        out.push(line.to_string());
    }
    out.concat()
}

/// Compare `got` with the stored transcript `name` after `normalise`, or
/// store it when recording. On a mismatch the first differing line and
/// both texts are printed.
pub fn check_transcript(name: &str, got: &[u8], normalise: &dyn Fn(&str) -> String) {
    let path = fixtures_dir().join(name);
    if recording() {
        std::fs::create_dir_all(fixtures_dir()).unwrap();
        std::fs::write(&path, got).unwrap();
        eprintln!("recorded {}", path.display());
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let want = normalise(&String::from_utf8_lossy(&want));
    let got = normalise(&String::from_utf8_lossy(got));
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        panic!(
            "{name}: output differs from the original's from line {} on\n--- original (normalised)\n{want}\n--- ours (normalised)\n{got}",
            line + 1
        );
    }
}

/// Wait (at most 30 s) until the daemons on `ports` form one ring: a
/// member of a probe group on the first sees one member per daemon.
pub fn wait_for_ring(ports: &[u16]) {
    use spread_tools::mailbox::Mailbox;
    let probes: Vec<Mailbox> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let m = Mailbox::connect(
                p.to_string().as_bytes(),
                format!("probe{i}").as_bytes(),
                true,
                None,
            )
            .unwrap_or_else(|e| panic!("probe on {p}: {e}"));
            m.join(b"probe").expect("probe join");
            m
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut groups = vec![[0u8; 32]; 100];
    let mut body = vec![0u8; 10_000];
    loop {
        assert!(
            Instant::now() < deadline,
            "the daemons on {ports:?} did not form one ring"
        );
        if probes[0].poll().unwrap_or(0) <= 0 {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let r = probes[0].receive(0, &mut groups, &mut body);
        let regular = r.delivery.is_some_and(|d| d.service_type & 0x1000 != 0);
        if regular && r.delivery.unwrap().num_groups as usize == ports.len() {
            break;
        }
    }
    for p in &probes {
        p.disconnect();
    }
}
