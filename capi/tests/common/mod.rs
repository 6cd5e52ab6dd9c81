//! Helpers of the integration tests: paths, temp dirs, compiling C with
//! `cc`, running with time limits, and a daemon to talk to.
#![allow(dead_code)]

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("capi has a parent")
        .to_path_buf()
}

pub fn include_dir() -> PathBuf {
    repo_root().join("include")
}

pub fn compat_dir() -> PathBuf {
    repo_root().join("compat-tests")
}

/// `target/<profile>`: where cargo put this test's crate outputs.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Our shared library as cargo built it.
pub fn built_library() -> PathBuf {
    let lib = profile_dir().join("libspread.so");
    assert!(
        lib.exists(),
        "{} not built (cargo builds it with the tests)",
        lib.display()
    );
    lib
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("spread-capi-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A lib directory holding `libspread.so.3` (a copy of our library) and
/// the `libspread.so` link, as an installation has.
pub fn lib_dir(tmp: &TempDir) -> PathBuf {
    let dir = tmp.path().join("lib");
    std::fs::create_dir_all(&dir).expect("lib dir");
    std::fs::copy(built_library(), dir.join("libspread.so.3")).expect("copy library");
    std::os::unix::fs::symlink("libspread.so.3", dir.join("libspread.so")).expect("symlink");
    dir
}

/// Compile C sources into `out` with our headers and library.
pub fn cc(sources: &[PathBuf], out: &Path, lib: &Path, extra: &[&str]) {
    let mut cmd = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cmd.args(["-std=gnu11", "-Wall", "-Werror", "-O1", "-o"])
        .arg(out)
        .arg("-I")
        .arg(include_dir())
        .args(sources)
        .arg("-L")
        .arg(lib)
        .arg("-lspread")
        .args(extra);
    let o = cmd
        .output()
        .expect("run cc (a C compiler is needed for these tests)");
    assert!(
        o.status.success(),
        "cc failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Run a command to completion, killing it after `limit`.
pub fn run_limited(cmd: &mut Command, stdin: Option<&[u8]>, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input).expect("write stdin");
    }
    // Read both pipes on threads so a chatty child cannot block.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status: ExitStatus = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let s = child.wait().expect("wait after kill");
            let stdout = t_out.join().unwrap_or_default();
            panic!(
                "{cmd:?} did not finish within {limit:?} ({s}); output so far:\n{}",
                String::from_utf8_lossy(&stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// Wait for a started child (stdout piped), killing it after `limit`.
pub fn wait_limited(mut child: Child, limit: Duration) -> Output {
    let mut out = child.stdout.take().expect("stdout piped");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: reader.join().unwrap_or_default(),
        stderr: Vec::new(),
    }
}

/// A port in 20000..30000 free for TCP and UDP on loopback right now.
pub fn free_port() -> u16 {
    // Tests of one binary start daemons in parallel: each call draws its
    // own sequence (the clock alone gave every thread the same ports).
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seed = std::process::id() as u64 ^ clock ^ call.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for _ in 0..200 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let port = 20000 + ((x >> 33) % 10000) as u16;
        let lo = Ipv4Addr::LOCALHOST;
        let ok = TcpListener::bind(SocketAddrV4::new(lo, port)).is_ok()
            && UdpSocket::bind(SocketAddrV4::new(lo, port)).is_ok()
            && UdpSocket::bind(SocketAddrV4::new(lo, port + 1)).is_ok()
            && !Path::new(&format!("/tmp/{port}")).exists();
        if ok {
            return port;
        }
    }
    panic!("no free port found");
}

/// Where the daemon to test against is: `$SPREAD_DAEMON`, else the
/// workspace's `spread` binary next to this test (`cargo build -p spread-daemon`).
pub fn daemon_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SPREAD_DAEMON") {
        let p = PathBuf::from(p);
        assert!(p.exists(), "SPREAD_DAEMON={} does not exist", p.display());
        return Some(p);
    }
    let p = profile_dir().join("spread");
    p.exists().then_some(p)
}

/// A running daemon on a loopback port; killed when dropped.
pub struct Daemon {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl Daemon {
    /// Start `bin` with a one-daemon configuration on a free port, and wait
    /// (at most 15 s) until it accepts clients.
    pub fn start(bin: &Path) -> Daemon {
        let dir = TempDir::new("daemon");
        let port = free_port();
        let conf = dir.path().join("spread.conf");
        std::fs::write(
            &conf,
            format!("Spread_Segment 127.0.0.255:{port} {{\n    localhost 127.0.0.1\n}}\n"),
        )
        .expect("write config");
        let log = std::fs::File::create(dir.path().join("daemon.log")).expect("log file");
        let child = Command::new(bin)
            .arg("-n")
            .arg("localhost")
            .arg("-c")
            .arg(&conf)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut d = Daemon {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("daemon exited early ({status}); log:\n{}", d.log());
            }
            let tcp = TcpStream::connect_timeout(
                &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into(),
                Duration::from_millis(200),
            );
            if tcp.is_ok() && Path::new(&format!("/tmp/{port}")).exists() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "daemon not ready in 15 s; log:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Sessions are accepted before the daemon's ring is operational; wait
        // until a join comes back as a membership notice.
        if let Err(e) = wait_operational(&d.tcp_name(), Duration::from_secs(20)) {
            panic!("daemon not operational: {e}; log:\n{}", d.log());
        }
        d
    }

    pub fn tcp_name(&self) -> String {
        format!("{}@127.0.0.1", self.port)
    }

    pub fn unix_name(&self) -> String {
        self.port.to_string()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("daemon.log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(format!("/tmp/{}", self.port));
        // and our daemon's record socket beside it (a SIGKILL leaves it)
        let _ = std::fs::remove_file(format!("/tmp/{}.seq", self.port));
        let _ = std::fs::remove_file(format!("/tmp/{}.seq", self.port));
    }
}

/// The daemon to test against, or `None` (with a message) when there is
/// none and this is not CI; in CI (`CI=true`) a missing daemon fails.
pub fn daemon_or_skip(test: &str) -> Option<Daemon> {
    match daemon_binary() {
        Some(bin) => Some(Daemon::start(&bin)),
        None => {
            let msg = format!(
                "{test}: no daemon: set SPREAD_DAEMON or run `cargo build -p spread-daemon --bin spread` first"
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            eprintln!("SKIP {msg}");
            None
        }
    }
}

struct NullAuth;

impl spread::client::connect::Authenticator for NullAuth {
    fn names(&self) -> Vec<Vec<u8>> {
        vec![b"NULL".to_vec()]
    }

    fn authenticate(&self, _index: usize, _fd: i32) -> bool {
        true
    }
}

/// Connect with the library's Rust core, join a probe group and wait for
/// the membership notice (the socket has a read timeout as the bound).
fn wait_operational(spread_name: &str, limit: Duration) -> Result<(), String> {
    use spread::client::{address::DaemonAddress, connect, session};
    static PROBES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let private = format!("pr{}x{n}", std::process::id() % 100000);
    let opts = connect::ConnectOptions {
        address: DaemonAddress::parse(Some(spread_name.as_bytes())).map_err(|e| e.to_string())?,
        private_name: private.as_bytes(),
        priority: 0,
        membership: true,
        timeout: Some(limit),
    };
    let accepted = connect::connect(&opts, &NullAuth).map_err(|e| e.to_string())?;
    let name = format!("probe{}", std::process::id());
    let mut group = [0u8; 32];
    group[..name.len()].copy_from_slice(name.as_bytes());
    let mbox = session::register(accepted).map_err(|e| e.to_string())?;
    let s = session::lookup(mbox).map_err(|e| e.to_string())?;
    s.send(spread_wire_join(), &[group], 0, &[])
        .map_err(|e| e.to_string())?;
    // Bound the wait: a reader thread, and a kill of the session on timeout.
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = s.clone();
    std::thread::spawn(move || {
        let mut groups = [[0u8; 32]; 4];
        let mut body = [0u8; 256];
        let (code, d) = s2.receive(false, 4, &mut groups, &mut [&mut body[..]]);
        let _ = tx.send((code, d.map(|d| d.service_type)));
    });
    let result = rx.recv_timeout(limit);
    session::kill(mbox);
    match result {
        Ok((code, Some(st))) if code >= 0 && st & 0x1000 != 0 => Ok(()),
        Ok(other) => Err(format!("unexpected answer to the probe join: {other:?}")),
        Err(_) => Err(format!("no membership notice within {limit:?}")),
    }
}

/// JOIN_MESS of the client protocol.
fn spread_wire_join() -> u32 {
    0x0001_0000
}
