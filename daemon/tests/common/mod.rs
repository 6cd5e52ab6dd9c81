//! Shared harness of the daemon's integration tests: start the real `spread`
//! binary on a free loopback port, and talk to it with a raw client built
//! on the `spread_wire::client` codecs over std sockets.
//!
//! Every wait is bounded; the daemon is killed and its files removed when
//! the [`Daemon`] is dropped, also while a failing test unwinds.

#![allow(dead_code)]

pub mod impair;
pub mod loopback_ring;
pub mod netns;
pub mod order;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use spread_wire::client::limits::MESSAGE_HEADER_LEN;
use spread_wire::client::service::*;
use spread_wire::client::{
    hint_for, AuthChoice, AuthMethodList, ConnectRequest, GroupName, MembershipBody, Message, MessageHeader,
    Version,
};
use spread_wire::endian::ByteOrder;

/// How long any single expected event may take.
pub const WAIT: Duration = Duration::from_secs(3);

/// The daemon name every test configuration uses (as in the captures).
pub const DAEMON_NAME: &str = "localhost";

static STARTED: AtomicUsize = AtomicUsize::new(0);

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.write_u32(std::process::id());
    h.write_usize(STARTED.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A port in 30000..40000 nobody seems to use: TCP and UDP on it and the
/// next one are free on 127.0.0.1 and there is no `/tmp/<port>`.
fn pick_port() -> u16 {
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

/// The daemon under test: ours, or (for a local comparison only) another
/// binary with the same flags named by `SPREAD_TEST_DAEMON`.
pub fn daemon_binary() -> PathBuf {
    match std::env::var_os("SPREAD_TEST_DAEMON") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_spread")),
    }
}

/// How a client reaches the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Unix,
}

/// A running `spread` daemon, killed on drop.
pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    pub started_unix_secs: u64,
    exit: Option<ExitStatus>,
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Daemon {
    /// A daemon with the default configuration.
    pub fn start() -> Daemon {
        Daemon::start_with("", &[])
    }

    /// A daemon whose configuration has `extra` lines after the segment, run
    /// in a fresh directory that also holds `files` (name, content).
    pub fn start_with(extra: &str, files: &[(&str, &str)]) -> Daemon {
        Daemon::start_logging(extra, files, Some("debug"))
    }

    /// As `start_with`, with `RUST_LOG` set to `rust_log` (`None`: unset,
    /// so the configuration alone decides what is logged).
    pub fn start_logging(extra: &str, files: &[(&str, &str)], rust_log: Option<&str>) -> Daemon {
        let mut last_log = String::new();
        for _attempt in 0..8 {
            let port = pick_port();
            let dir = std::env::temp_dir().join(format!(
                "spread-rs-test-{}-{}-{}",
                std::process::id(),
                port,
                STARTED.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("create the test directory");
            // Explicit interfaces keep every socket on loopback (without
            // them a daemon listens for clients on all addresses).
            let conf = format!(
                "Spread_Segment 127.0.0.255:{port} {{\n\tlocalhost 127.0.0.1 {{ D 127.0.0.1 C 127.0.0.1 }}\n}}\n{extra}\n"
            );
            // Test configurations, too, must be ones the original reads.
            if let Err(e) =
                spread_daemon::configuration::Configuration::check_original_grammar(&conf, "test spread.conf")
            {
                panic!("{e}");
            }
            std::fs::write(dir.join("spread.conf"), conf).expect("write the test configuration");
            for (name, content) in files {
                std::fs::write(dir.join(name), content).expect("write a test file");
            }
            let log = std::fs::File::create(dir.join("daemon.log")).expect("create the daemon log");
            let started_unix_secs = unix_now();
            let mut command = Command::new(daemon_binary());
            match rust_log {
                Some(filter) => command.env("RUST_LOG", filter),
                None => command.env_remove("RUST_LOG"),
            };
            let child = command
                .args(["-n", DAEMON_NAME, "-c"])
                .arg(dir.join("spread.conf"))
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone the log handle"))
                .stderr(log)
                .spawn()
                .expect("start the spread binary");
            let mut daemon = Daemon {
                child: Some(child),
                port,
                dir,
                started_unix_secs,
                exit: None,
            };
            if daemon.wait_ready() {
                return daemon;
            }
            last_log = daemon.log();
            // Dropping kills it and removes its files; try another port.
        }
        panic!("the daemon did not start on any port; last log:\n{last_log}");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.exit = Some(status);
                    return false;
                }
            }
            let tcp = TcpStream::connect_timeout(&self.tcp_addr(), Duration::from_millis(200)).is_ok();
            if tcp && self.unix_path().exists() && UnixStream::connect(self.unix_path()).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn tcp_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn unix_path(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/{}", self.port))
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(child) => match child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => {
                    self.exit = Some(status);
                    false
                }
                Err(_) => false,
            },
        }
    }

    /// Send `signal` and wait (bounded) for the exit status.
    pub fn signal_and_wait(&mut self, signal: i32, within: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill(2) on the pid of a child we started and have not reaped.
        unsafe {
            libc::kill(pid, signal);
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.exit = Some(status);
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// A raw TCP or Unix connection, no handshake.
    pub fn raw(&self, transport: Transport) -> Conn {
        Conn::open(self, transport)
    }

    /// A client connected with the NULL method; panics on a reject.
    pub fn client(&self, transport: Transport, name: &str, membership: bool) -> Client {
        match Client::connect(self, transport, name.as_bytes(), membership) {
            Ok(c) => c,
            Err(e) => panic!(
                "connect {name:?} over {transport:?}: {e:?}\ndaemon log:\n{}",
                self.log()
            ),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: String = log
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            eprintln!(
                "---- daemon log (port {}, last lines) ----\n{tail}\n----",
                self.port
            );
        }
        let _ = std::fs::remove_file(self.unix_path());
        let _ = std::fs::remove_file(spread_wire::client::records::record_path(&self.unix_path()));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One stream to the daemon, TCP or Unix.
pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Why a read did not produce what was asked.
#[derive(Debug)]
pub enum RecvError {
    Timeout { got: usize },
    Closed { got: usize },
    Io(io::Error),
    Decode(String),
}

impl Conn {
    pub fn open(daemon: &Daemon, transport: Transport) -> Conn {
        match transport {
            Transport::Tcp => {
                let s =
                    TcpStream::connect_timeout(&daemon.tcp_addr(), WAIT).expect("TCP connect to the daemon");
                let _ = s.set_nodelay(true);
                Conn::Tcp(s)
            }
            Transport::Unix => Conn::Unix(UnixStream::connect(daemon.unix_path()).expect("Unix connect")),
        }
    }

    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
        })
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_read_timeout(t),
            Conn::Unix(s) => s.set_read_timeout(t),
        }
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_write_timeout(t),
            Conn::Unix(s) => s.set_write_timeout(t),
        }
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.shutdown(how),
            Conn::Unix(s) => s.shutdown(how),
        }
    }

    /// Send bytes in one write call (bounded by a write timeout).
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.set_write_timeout(Some(WAIT))?;
        self.write_all(bytes)
    }

    /// Read exactly `buf.len()` bytes before `deadline`.
    pub fn read_exact_by(&mut self, buf: &mut [u8], deadline: Instant) -> Result<(), RecvError> {
        let mut got = 0;
        while got < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvError::Timeout { got });
            }
            self.set_read_timeout(Some(left)).map_err(RecvError::Io)?;
            match self.read(&mut buf[got..]) {
                Ok(0) => return Err(RecvError::Closed { got }),
                Ok(n) => got += n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Err(RecvError::Timeout { got })
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_reset(&e) => return Err(RecvError::Closed { got }),
                Err(e) => return Err(RecvError::Io(e)),
            }
        }
        Ok(())
    }

    /// Everything that arrives before the peer closes or `within` passes;
    /// `true` if the peer closed (EOF or reset).
    pub fn read_until_closed(&mut self, within: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.set_read_timeout(Some(left)).is_err() {
                return (out, false);
            }
            match self.read(&mut buf) {
                Ok(0) => return (out, true),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_reset(&e) => return (out, true),
                Err(_) => return (out, false),
            }
        }
    }
}

pub fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe
    )
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How a connect attempt ended when it was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The daemon answered this (negative) code.
    Rejected(i8),
    /// The daemon closed without an answer.
    Closed,
    Timeout,
}

/// A whole message as received, decoded, plus its raw bytes.
#[derive(Clone, Debug)]
pub struct Received {
    pub message: Message,
    pub order: ByteOrder,
    pub raw: Vec<u8>,
}

impl Received {
    pub fn service_type(&self) -> u32 {
        self.message.header.service_type
    }
    pub fn sender(&self) -> String {
        self.message.header.sender.to_string_lossy()
    }
    pub fn groups(&self) -> Vec<String> {
        self.message.groups.iter().map(|g| g.to_string_lossy()).collect()
    }
    pub fn body(&self) -> &[u8] {
        &self.message.body
    }
    pub fn is_membership(&self) -> bool {
        self.service_type() & MEMBERSHIP_MESS != 0
    }
    /// The membership body of a regular membership notice.
    pub fn membership(&self) -> MembershipBody {
        MembershipBody::parse(&self.message.body, self.order).expect("a membership body")
    }
}

/// A raw client session.
pub struct Client {
    pub conn: Conn,
    pub name: Vec<u8>,
    pub private_group: GroupName,
    /// Byte order this client writes its headers in.
    pub order: ByteOrder,
}

impl Client {
    /// Connect request, NULL auth, accept; the name may be empty.
    pub fn connect(
        daemon: &Daemon,
        transport: Transport,
        name: &[u8],
        membership: bool,
    ) -> Result<Client, ConnectFailure> {
        Client::connect_with(daemon.raw(transport), name, membership, &["NULL"])
    }

    /// A session of `name` (with membership notices) at daemon `i` of a
    /// loopback ring, over TCP.
    pub fn on_ring(ring: &loopback_ring::LoopbackRing, i: usize, name: &str) -> Client {
        let stream = TcpStream::connect_timeout(&ring.addr(i), Duration::from_secs(3)).expect("connect");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Client::connect_with(Conn::Tcp(stream), name.as_bytes(), true, &["NULL"]).expect("session accepted")
    }

    pub fn connect_with(
        mut conn: Conn,
        name: &[u8],
        membership: bool,
        methods: &[&str],
    ) -> Result<Client, ConnectFailure> {
        let deadline = Instant::now() + WAIT;
        let fail = |e: RecvError| match e {
            RecvError::Timeout { .. } => ConnectFailure::Timeout,
            _ => ConnectFailure::Closed,
        };
        if let Err(e) = conn.send(&ConnectRequest::new(name, membership, 0).emit()) {
            // A daemon over its session limit refuses at the accept and
            // closes; on a loaded machine that can come before this write,
            // and the refusal still waits to be read.
            if !is_reset(&e) {
                return Err(ConnectFailure::Closed);
            }
        }
        let mut len = [0u8; 1];
        conn.read_exact_by(&mut len, deadline).map_err(fail)?;
        if (len[0] as i8) < 0 {
            return Err(ConnectFailure::Rejected(len[0] as i8));
        }
        let mut list = vec![0u8; len[0] as usize];
        conn.read_exact_by(&mut list, deadline).map_err(fail)?;
        conn.send(&AuthChoice::new(methods).emit())
            .map_err(|_| ConnectFailure::Closed)?;
        let mut head = [0u8; 1];
        conn.read_exact_by(&mut head, deadline).map_err(fail)?;
        if head[0] != 1 {
            return Err(ConnectFailure::Rejected(head[0] as i8));
        }
        let mut rest = [0u8; 4];
        conn.read_exact_by(&mut rest, deadline).map_err(fail)?;
        assert_eq!(&rest[..3], &[4, 4, 0], "daemon version bytes");
        let mut group = vec![0u8; rest[3] as usize];
        conn.read_exact_by(&mut group, deadline).map_err(fail)?;
        let private_group = GroupName::new(&group).expect("a private group name");
        let name = private_group.private_parts().expect("#name#daemon").0.to_vec();
        Ok(Client {
            conn,
            name,
            private_group,
            order: ByteOrder::NATIVE,
        })
    }

    /// The auth-method list the daemon offers, as bytes.
    pub fn offered_methods(conn: &mut Conn, name: &[u8]) -> Result<Vec<u8>, ConnectFailure> {
        conn.send(&ConnectRequest::new(name, true, 0).emit())
            .map_err(|_| ConnectFailure::Closed)?;
        let mut len = [0u8; 1];
        conn.read_exact_by(&mut len, Instant::now() + WAIT)
            .map_err(|_| ConnectFailure::Closed)?;
        if (len[0] as i8) < 0 {
            return Err(ConnectFailure::Rejected(len[0] as i8));
        }
        let mut list = vec![0u8; len[0] as usize];
        conn.read_exact_by(&mut list, Instant::now() + WAIT)
            .map_err(|_| ConnectFailure::Closed)?;
        let mut all = len.to_vec();
        all.extend_from_slice(&list);
        let _ = AuthMethodList::parse(&all);
        Ok(all)
    }

    pub fn private_group_str(&self) -> String {
        self.private_group.to_string_lossy()
    }

    /// The bytes of a message from this client.
    pub fn message_bytes(&self, service: u32, groups: &[&str], mess_type: i16, body: &[u8]) -> Vec<u8> {
        let header = MessageHeader {
            service_type: service,
            sender: self.private_group,
            num_groups: groups.len() as i32,
            hint: hint_for(mess_type, self.order),
            data_len: body.len() as i32,
        };
        let groups: Vec<GroupName> = groups
            .iter()
            .map(|g| GroupName::new(g.as_bytes()).expect("a group name"))
            .collect();
        Message {
            header,
            groups,
            body: body.to_vec(),
        }
        .emit(self.order)
    }

    pub fn multicast(&mut self, service: u32, groups: &[&str], mess_type: i16, body: &[u8]) {
        let bytes = self.message_bytes(service, groups, mess_type, body);
        self.conn.send(&bytes).expect("send a message");
    }

    pub fn join(&mut self, group: &str) {
        self.multicast(JOIN_MESS, &[group], 0, b"");
    }

    pub fn leave(&mut self, group: &str) {
        self.multicast(LEAVE_MESS, &[group], 0, b"");
    }

    /// `SP_disconnect`: a KILL naming our own private group, then close.
    pub fn disconnect(mut self) {
        let me = self.private_group_str();
        self.multicast(KILL_MESS, &[&me], 0, b"");
        let _ = self.conn.shutdown(Shutdown::Both);
    }

    /// `SP_kill`: just close the socket.
    pub fn kill(self) {
        let _ = self.conn.shutdown(Shutdown::Both);
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.conn.send(bytes)
    }

    /// One whole message (header, names, body) within `within`.
    pub fn recv_within(&mut self, within: Duration) -> Result<Received, RecvError> {
        let deadline = Instant::now() + within;
        let mut raw = vec![0u8; MESSAGE_HEADER_LEN];
        self.conn.read_exact_by(&mut raw, deadline)?;
        let (header, _) = MessageHeader::parse(&raw).map_err(|e| RecvError::Decode(e.to_string()))?;
        if header.num_groups < 0 || header.data_len < 0 || header.data_len > 20_000_000 {
            return Err(RecvError::Decode(format!("bad header {header:?}")));
        }
        let mut extra = 0;
        if header.service_type & REJECT_MESS != 0 {
            extra = 4;
        }
        let rest = extra + header.num_groups as usize * 32 + header.data_len as usize;
        raw.resize(MESSAGE_HEADER_LEN + rest, 0);
        self.conn
            .read_exact_by(&mut raw[MESSAGE_HEADER_LEN..], deadline)?;
        let parse_from: Vec<u8> = if extra > 0 {
            let mut v = raw[..MESSAGE_HEADER_LEN].to_vec();
            v.extend_from_slice(&raw[MESSAGE_HEADER_LEN + extra..]);
            v
        } else {
            raw.clone()
        };
        let (message, order, _) =
            Message::parse(&parse_from).map_err(|e| RecvError::Decode(e.to_string()))?;
        Ok(Received { message, order, raw })
    }

    /// One whole message within the standard wait; panics otherwise.
    /// Receive until a regular membership notice with `cause` arrives.
    pub fn recv_membership(&mut self, cause: u32, within: Duration) -> Received {
        let deadline = Instant::now() + within;
        loop {
            let r = self
                .recv_within(deadline.saturating_duration_since(Instant::now()))
                .expect("membership notice");
            if r.service_type() & cause != 0 && r.service_type() & REG_MEMB_MESS != 0 {
                return r;
            }
        }
    }

    pub fn recv(&mut self) -> Received {
        match self.recv_within(WAIT) {
            Ok(m) => m,
            Err(e) => panic!("{}: expected a message: {e:?}", self.private_group_str()),
        }
    }

    /// Wait until the daemon has applied everything this client sent: a
    /// message to our own private group comes back after all of it.
    /// Returns what arrived before it.
    pub fn barrier(&mut self) -> Vec<Received> {
        let me = self.private_group_str();
        self.multicast(FIFO_MESS, &[&me], 0x7ff, b"barrier");
        let mut before = Vec::new();
        loop {
            let m = self.recv();
            if m.sender() == me && m.body() == b"barrier" && m.service_type() == FIFO_MESS {
                return before;
            }
            before.push(m);
        }
    }

    /// Panics if any byte arrives within `ms` milliseconds.
    pub fn expect_nothing(&mut self, ms: u64) {
        let mut b = [0u8; 1];
        match self
            .conn
            .read_exact_by(&mut b, Instant::now() + Duration::from_millis(ms))
        {
            Err(RecvError::Timeout { got: 0 }) => {}
            other => panic!(
                "{}: expected nothing, got {other:?} (byte {:02x})",
                self.private_group_str(),
                b[0]
            ),
        }
    }

    /// Whether the daemon closes this session (EOF or reset) within `within`;
    /// bytes that arrive first are returned.
    pub fn closed_within(&mut self, within: Duration) -> (Vec<u8>, bool) {
        self.conn.read_until_closed(within)
    }
}

/// The hex of bytes, for failure messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// The 32-byte NUL-padded field of a name.
pub fn name_field(name: &str) -> [u8; 32] {
    *GroupName::new(name.as_bytes()).expect("a name").raw()
}

pub const V440: Version = Version::SPREAD_4_4_0;
