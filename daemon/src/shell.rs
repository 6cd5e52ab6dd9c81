//! The I/O shell: a mio event loop that carries bytes between sockets and
//! the [`Engine`], and nothing else.
//!
//! Listeners: TCP on the daemon's port for each client interface, the
//! Unix stream socket `/tmp/<port>` (mode 0666, like the original), and
//! beside it the record socket `/tmp/<port>.seq` (`SOCK_SEQPACKET`, same
//! mode), where spread-rs's own library speaks the same protocol cut into
//! records (see [`spread_wire::client::records`]).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};

use crate::clock::Clock;
use crate::engine::{Engine, Output};
use crate::fasthash::FastMap;
use crate::monitor::{is_monitor_datagram, MonitorAction, MonitorEngine};
pub use crate::network::RingAddresses;
use crate::network::{ChannelKind, UdpChannels};
use crate::os;
pub use crate::os::{
    drop_privileges, host_ipv4_addrs, host_name, raise_open_files_limit, read_clock, StartupPages,
};
use crate::ring::Channel;
use crate::session::{ConnId, Peer};

const SIGNAL: Token = Token(0);
const UNIX_LISTENER: Token = Token(1);
const RECORD_LISTENER: Token = Token(2);
const SHORT_TIMER: Token = Token(3);
const FIRST_TCP_LISTENER: usize = 4;
const FIRST_UDP: usize = 32;
const FIRST_CONN: usize = 64;
/// Bytes read from one client per wakeup before others get a turn.
const READ_BUDGET: usize = 256 * 1024;
/// Slices handed to one vectored write.
const WRITE_SLICES: usize = 64;
/// Records read from one record-path client per wakeup before others get
/// a turn.
const RECORD_BUDGET: usize = 256;
/// Bytes of one datagram slot of a batched ring read (the largest UDP
/// datagram; the pages of a slot are touched only as far as a datagram
/// fills them).
const DATA_SLOT: usize = 64 * 1024;

/// Where the daemon listens for clients.
#[derive(Clone, Debug)]
pub struct Listen {
    pub tcp: Vec<SocketAddr>,
    /// The Unix socket path, e.g. `/tmp/4803`; `None` to skip it.
    pub unix: Option<PathBuf>,
}

#[derive(Debug)]
pub enum ShellError {
    Bind { what: String, source: io::Error },
    Io(io::Error),
}

impl std::fmt::Display for ShellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShellError::Bind { what, source } => write!(f, "cannot listen on {what}: {source}"),
            ShellError::Io(e) => write!(f, "event loop failed: {e}"),
        }
    }
}

impl std::error::Error for ShellError {}

impl From<io::Error> for ShellError {
    fn from(e: io::Error) -> Self {
        ShellError::Io(e)
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// A non-blocking `SOCK_SEQPACKET` connection of the record path.
    Records(socket2::Socket),
}

impl Stream {
    /// Hands the socket to `f` as a mio source (to register it).
    fn with_source<R>(&mut self, f: impl FnOnce(&mut dyn mio::event::Source) -> R) -> R {
        match self {
            Stream::Tcp(s) => f(s),
            Stream::Unix(s) => f(s),
            Stream::Records(s) => f(&mut mio::unix::SourceFd(&s.as_raw_fd())),
        }
    }

    fn raw_fd(&self) -> i32 {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Records(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Records(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Records(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
            Stream::Records(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Connection {
    stream: Stream,
    /// Registered for writability (output is waiting on a full socket).
    want_write: bool,
    /// Left unread while the engine paused reading (in `paused_reads`).
    read_paused: bool,
}

pub struct Shell {
    poll: Poll,
    engine: Engine,
    tcp_listeners: Vec<TcpListener>,
    unix_listener: Option<(UnixListener, PathBuf)>,
    /// The record path's listener beside the Unix socket.
    record_listener: Option<(socket2::Socket, PathBuf)>,
    /// [`os::RECORD_RECV_BATCH`] slots of [`Shell::record_slot`] bytes for
    /// batched record reads (allocated with the first record connection;
    /// pages are touched only as far as records fill them).
    record_bufs: Vec<u8>,
    /// The Unix socket's directory, kept open so the socket can be removed
    /// at shutdown even after a chroot.
    unix_dir: Option<std::fs::File>,
    signal_rx: mio::unix::pipe::Receiver,
    _signal_tx: mio::unix::pipe::Sender,
    conns: FastMap<ConnId, Connection>,
    next_conn: ConnId,
    /// Clients with unread bytes left after their read budget.
    read_again: VecDeque<ConnId>,
    /// Clients left unread while the engine paused reading from senders:
    /// their readiness was reported once (edge-triggered), so they are read
    /// again explicitly when it resumes.
    paused_reads: Vec<ConnId>,
    /// Token sockets to read again next turn: one token per turn, so that
    /// client messages that came meanwhile are read before the next token
    /// and leave with it (the original's event loop serves its clients
    /// between two tokens in the same way). Only when a read found a
    /// second datagram queued behind the token (kept in `token_kept`): a
    /// read that found one emptied the socket, and with edge-triggered
    /// epoll a later token raises a new event.
    token_again: Vec<usize>,
    /// Token sockets read this loop turn.
    token_turn: Vec<usize>,
    /// The second datagram of a token read, handled next turn.
    token_kept: Vec<(usize, Vec<u8>, SocketAddr)>,
    /// Two slots of [`DATA_SLOT`] bytes for token reads (apart from
    /// `data_bufs`: a token may be taken in the middle of a data batch).
    token_bufs: Vec<u8>,
    /// Data sockets left unread while a token went first, read next turn.
    data_again: Vec<usize>,
    /// Sessions with new output, written once per loop turn so that the
    /// messages of one read leave in one vectored write.
    to_flush: Vec<ConnId>,
    read_buf: Vec<u8>,
    /// [`os::RECV_BATCH`] slots of [`DATA_SLOT`] bytes for batched ring reads.
    data_bufs: Vec<u8>,
    /// The datagrams of one [`Shell::send_datagrams`] system call (kept to
    /// reuse its allocation).
    send_batch: Vec<(std::net::SocketAddrV4, Vec<u8>)>,
    udp: Option<(UdpChannels, RingAddresses)>,
    /// The monitor protocol and the unbound socket its replies leave from
    /// (the original answers from a socket of its own, not the ring's).
    monitor: Option<(MonitorEngine, std::net::UdpSocket)>,
    /// RELOADs from a monitor since the last [`Shell::take_reload_requests`]
    /// (each is carried out at once).
    reload_requests: u32,
    /// Re-reads the configuration file on RELOAD or SIGHUP.
    reloader: Option<crate::reload::Reloader>,
    /// Wakes the loop for a deadline under a millisecond away (none if the
    /// kernel refused one: such deadlines then wait a millisecond).
    short_timer: Option<os::ShortTimer>,
}

impl Shell {
    pub fn new(engine: Engine, listen: &Listen) -> Result<Shell, ShellError> {
        let poll = Poll::new()?;
        let (signal_tx, mut signal_rx) = mio::unix::pipe::new()?;
        poll.registry()
            .register(&mut signal_rx, SIGNAL, Interest::READABLE)?;
        os::notify_signals_to(signal_tx.as_raw_fd());
        let short_timer = match os::ShortTimer::new() {
            Ok(t) => {
                poll.registry().register(
                    &mut mio::unix::SourceFd(&t.raw_fd()),
                    SHORT_TIMER,
                    Interest::READABLE,
                )?;
                Some(t)
            }
            Err(e) => {
                warn!("no timerfd ({e}): deadlines under a millisecond wait a millisecond");
                None
            }
        };

        let mut tcp_listeners = Vec::new();
        for (i, addr) in listen.tcp.iter().enumerate() {
            let mut l = bind_tcp(*addr).map_err(|source| ShellError::Bind {
                what: format!("TCP {addr}"),
                source,
            })?;
            poll.registry()
                .register(&mut l, Token(FIRST_TCP_LISTENER + i), Interest::READABLE)?;
            info!(target: "spread::session", "listening for clients on TCP {addr}");
            tcp_listeners.push(l);
        }
        // Bound before the stream socket: a client (or a test) that finds
        // the stream socket connectable finds the record socket too.
        let record_listener = match &listen.unix {
            None => None,
            Some(path) => {
                let path = spread_wire::client::records::record_path(path);
                match bind_records(&path) {
                    Ok(l) => {
                        poll.registry().register(
                            &mut mio::unix::SourceFd(&l.as_raw_fd()),
                            RECORD_LISTENER,
                            Interest::READABLE,
                        )?;
                        info!(target: "spread::session", "listening for spread-rs clients on record socket {}", path.display());
                        Some((l, path))
                    }
                    // Our library then uses the stream socket.
                    // A kernel that cannot grant the buffer is no fault.
                    Err(e) => {
                        let level = if e.kind() == io::ErrorKind::Unsupported {
                            log::Level::Info
                        } else {
                            log::Level::Warn
                        };
                        log::log!(target: "spread::session", level, "no record socket {}: {e}", path.display());
                        None
                    }
                }
            }
        };
        let unix_listener = match &listen.unix {
            None => None,
            Some(path) => {
                // A stale socket of a previous run is replaced, as the original does.
                let _ = std::fs::remove_file(path);
                let mut l = UnixListener::bind(path).map_err(|source| ShellError::Bind {
                    what: format!("Unix socket {}", path.display()),
                    source,
                })?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
                poll.registry()
                    .register(&mut l, UNIX_LISTENER, Interest::READABLE)?;
                info!(target: "spread::session", "listening for clients on Unix socket {}", path.display());
                Some((l, path.clone()))
            }
        };
        let unix_dir = listen
            .unix
            .as_ref()
            .and_then(|p| p.parent())
            .and_then(|d| std::fs::File::open(d).ok());
        Ok(Shell {
            short_timer,
            unix_dir,
            poll,
            engine,
            tcp_listeners,
            unix_listener,
            record_listener,
            record_bufs: Vec::new(),
            signal_rx,
            _signal_tx: signal_tx,
            conns: FastMap::default(),
            next_conn: FIRST_CONN,
            read_again: VecDeque::new(),
            paused_reads: Vec::new(),
            token_again: Vec::new(),
            token_turn: Vec::new(),
            token_kept: Vec::new(),
            token_bufs: vec![0; 2 * DATA_SLOT],
            data_again: Vec::new(),
            to_flush: Vec::new(),
            read_buf: vec![0; 64 * 1024],
            data_bufs: vec![0; os::RECV_BATCH * DATA_SLOT],
            send_batch: Vec::with_capacity(os::SEND_BATCH),
            udp: None,
            monitor: None,
            reload_requests: 0,
            reloader: None,
        })
    }

    /// Carry the ring's datagrams over these sockets.
    pub fn attach_ring(
        &mut self,
        mut channels: UdpChannels,
        addresses: RingAddresses,
    ) -> Result<(), ShellError> {
        for (i, (_, socket)) in channels.receivers.iter_mut().enumerate() {
            self.poll
                .registry()
                .register(socket, Token(FIRST_UDP + i), Interest::READABLE)?;
        }
        self.udp = Some((channels, addresses));
        self.send_datagrams();
        Ok(())
    }

    /// Answer and obey the monitor protocol on the ring's data port (a
    /// daemon alone binds the ring's ports for it, as the original does).
    pub fn attach_monitor(&mut self, monitor: MonitorEngine) -> Result<(), ShellError> {
        let socket =
            std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|source| ShellError::Bind {
                what: "the monitor reply socket".to_string(),
                source,
            })?;
        socket.set_nonblocking(true)?;
        self.monitor = Some((monitor, socket));
        Ok(())
    }

    /// Carry out RELOAD and SIGHUP with this file (Dynamic Configuration).
    pub fn attach_reloader(&mut self, reloader: crate::reload::Reloader) {
        self.reloader = Some(reloader);
    }

    /// Re-reads the configuration file and hands it to the engines; a file
    /// that does not parse changes nothing; a daemon the file no longer
    /// has exits, as the original.
    fn reload(&mut self, now: Clock) {
        let Some(reloader) = &mut self.reloader else {
            warn!("reload asked for, but this daemon runs a built-in configuration: nothing to re-read");
            return;
        };
        info!("reloading configuration {}", reloader.path().display());
        match reloader.reload() {
            Err(crate::reload::ReloadError::Refused(m)) => {
                error!("reload refused, keeping the running configuration: {m}");
            }
            Err(crate::reload::ReloadError::Exit(m)) => {
                error!("{m}");
                error!("Exit caused by Alarm(EXIT)");
                self.shutdown();
                std::process::exit(0);
            }
            Ok(r) => {
                for d in &r.added {
                    info!("reload: daemon added: {} {}", d.name, d.ip);
                }
                for d in &r.removed {
                    info!("reload: daemon removed: {} {}", d.name, d.ip);
                }
                if r.singleton {
                    info!("reload: an entry changed inconsistently: singleton partition, then merge");
                }
                if self.engine.ring().is_none() {
                    warn!("reload: this daemon was started alone; a ring needs a restart");
                }
                if let Some((_, addresses)) = &mut self.udp {
                    *addresses = r.addresses;
                }
                if let Some((monitor, _)) = &mut self.monitor {
                    monitor.reconfigure(r.monitor);
                }
                self.engine.reload(now, r.engine, Some(r.ring), r.singleton);
                self.apply_outputs();
                self.send_datagrams();
            }
        }
    }

    /// The signals that arrived: true if one of them asks to shut down.
    fn read_signals(&mut self, now: Clock) -> bool {
        use std::io::Read;
        let mut buf = [0u8; 64];
        let mut stop = false;
        let mut hangup = false;
        loop {
            match self.signal_rx.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    for &sig in &buf[..n] {
                        if sig == os::SIGHUP {
                            hangup = true;
                        } else {
                            stop = true;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        if hangup && !stop {
            info!("SIGHUP: reloading the configuration");
            self.reload(now);
        }
        stop
    }

    /// RELOAD requests received since the last call. The reload machinery
    /// (Dynamic Configuration) takes them from here; each one asks for the
    /// configuration file to be read again.
    pub fn take_reload_requests(&mut self) -> u32 {
        std::mem::take(&mut self.reload_requests)
    }

    pub fn monitor(&self) -> Option<&MonitorEngine> {
        self.monitor.as_ref().map(|(m, _)| m)
    }

    /// A monitor datagram: hand it to the monitor engine, carry out what it says.
    fn handle_monitor(&mut self, from: SocketAddr, len: usize, now: Clock) {
        let Some((monitor, _)) = &mut self.monitor else {
            return;
        };
        let engine = &self.engine;
        let action = monitor.handle(now.mono, from, &self.read_buf[..len], || {
            crate::monitor::status_inputs(engine)
        });
        if let Some(action) = action {
            self.apply_monitor_action(action);
        }
    }

    fn apply_monitor_action(&mut self, action: MonitorAction) {
        match action {
            MonitorAction::Reply { to, datagram } => {
                if let Some((_, socket)) = &self.monitor {
                    if let Err(e) = socket.send_to(&datagram, to) {
                        debug!(target: "spread::network", "status reply to {to} failed: {e}");
                    }
                }
            }
            MonitorAction::SetPartition(components) => {
                if let Some(ring) = self.engine.ring_mut() {
                    ring.set_partition(components);
                }
            }
            MonitorAction::FlowControl {
                window,
                personal_window,
                accelerated_window,
            } => {
                self.engine
                    .set_flow_control(window, personal_window, accelerated_window);
            }
            MonitorAction::Terminate => {
                error!("Exit caused by Alarm(EXIT)");
                self.shutdown();
                std::process::exit(0);
            }
            MonitorAction::Reload => {
                self.reload_requests += 1;
                self.reload(read_clock());
            }
        }
    }

    /// Reads a data socket [`os::RECV_BATCH`] datagrams per system call
    /// until it is empty (a batch that is not full emptied it: with
    /// edge-triggered epoll a later datagram raises a new event).
    fn read_data(&mut self, index: usize, now: Clock) {
        let mut token_tried = false;
        loop {
            let Some((channels, _)) = &self.udp else { return };
            let Some((_, socket)) = channels.receivers.get(index) else {
                return;
            };
            let fd = socket.as_raw_fd();
            let mut lens = [0; os::RECV_BATCH];
            let mut froms = [std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0); os::RECV_BATCH];
            let got = match os::recv_datagrams(fd, &mut self.data_bufs, DATA_SLOT, &mut lens, &mut froms) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    debug!(target: "spread::network", "receive failed: {e}");
                    return;
                }
            };
            let mut token_taken = false;
            for (i, (&n, &from)) in lens.iter().zip(&froms).take(got).enumerate() {
                let at = i * DATA_SLOT;
                // The ring's hash; a daemon alone has only the monitor's.
                let own_hash = self
                    .monitor
                    .as_ref()
                    .map(|(m, _)| self.engine.ring().map_or(m.conf_hash(), |r| r.conf_hash()));
                if own_hash.is_some_and(|h| is_monitor_datagram(&self.data_bufs[at..at + n], h)) {
                    self.read_buf[..n].copy_from_slice(&self.data_bufs[at..at + n]);
                    self.handle_monitor(SocketAddr::V4(from), n, now);
                    continue;
                }
                self.engine.handle_datagram_from(
                    Channel::Data,
                    SocketAddr::V4(from),
                    &self.data_bufs[at..at + n],
                    now,
                );
                self.send_datagrams();
                self.apply_outputs();
                // Accelerated ring: a packet of my predecessor's next
                // round shows it passed the token on after all of this
                // round's packets; the token is taken before the rest of
                // its packets (the original raises the token channel's
                // priority over the data channel then). What this batch
                // already read is handled after it.
                if !token_tried && self.engine.ring().is_some_and(|r| r.token_has_priority()) {
                    token_tried = true;
                    token_taken = self.take_token_first(now);
                }
            }
            if token_taken {
                if !self.data_again.contains(&index) {
                    self.data_again.push(index);
                }
                return;
            }
            if got < os::RECV_BATCH {
                return;
            }
        }
    }

    fn read_datagrams(&mut self, index: usize, now: Clock) {
        if self.udp.as_ref().is_some_and(|(c, _)| {
            c.receivers
                .get(index)
                .is_some_and(|(k, _)| *k == ChannelKind::Data)
        }) {
            return self.read_data(index, now);
        }
        self.read_token(index, now);
    }

    /// Handles one token datagram of token socket `index`: the one kept
    /// from the last read, or the first of a read of up to two (a second
    /// is kept for the next turn). True if one was handled.
    fn read_token(&mut self, index: usize, now: Clock) -> bool {
        if self.token_turn.contains(&index) {
            // Read this turn already (taken before a data batch): next turn.
            if !self.token_again.contains(&index) {
                self.token_again.push(index);
            }
            return false;
        }
        self.token_turn.push(index);
        if let Some(at) = self.token_kept.iter().position(|(i, ..)| *i == index) {
            let (_, bytes, from) = self.token_kept.swap_remove(at);
            self.engine
                .handle_datagram_from(Channel::Token, from, &bytes, now);
            self.send_datagrams();
            self.apply_outputs();
            // More may wait behind it.
            if !self.token_again.contains(&index) {
                self.token_again.push(index);
            }
            return true;
        }
        let Some((channels, _)) = &self.udp else {
            return false;
        };
        let Some((_, socket)) = channels.receivers.get(index) else {
            return false;
        };
        let fd = socket.as_raw_fd();
        let mut lens = [0; os::RECV_BATCH];
        let mut froms = [std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0); os::RECV_BATCH];
        let got = match os::recv_datagrams(fd, &mut self.token_bufs, DATA_SLOT, &mut lens, &mut froms) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) => {
                debug!(target: "spread::network", "receive failed: {e}");
                return false;
            }
        };
        if got == 0 {
            return false;
        }
        if got > 1 {
            let second = self.token_bufs[DATA_SLOT..DATA_SLOT + lens[1]].to_vec();
            self.token_kept.push((index, second, SocketAddr::V4(froms[1])));
            if !self.token_again.contains(&index) {
                self.token_again.push(index);
            }
        }
        self.engine.handle_datagram_from(
            Channel::Token,
            SocketAddr::V4(froms[0]),
            &self.token_bufs[..lens[0]],
            now,
        );
        self.send_datagrams();
        self.apply_outputs();
        true
    }

    /// Reads one token from each token socket not read this turn; true if
    /// a token came.
    fn take_token_first(&mut self, now: Clock) -> bool {
        let Some((channels, _)) = &self.udp else {
            return false;
        };
        let tokens: Vec<usize> = (0..channels.receivers.len())
            .filter(|&i| channels.receivers[i].0 == ChannelKind::Token && !self.token_turn.contains(&i))
            .collect();
        let mut taken = false;
        for index in tokens {
            taken |= self.read_token(index, now);
        }
        taken
    }

    fn send_datagrams(&mut self) {
        let Some((channels, addresses)) = &self.udp else {
            return;
        };
        // What the engine asks for leaves in batches: one system call for
        // a token visit's packets, the token among them in its place.
        let mut batch = std::mem::take(&mut self.send_batch);
        loop {
            while batch.len() < os::SEND_BATCH {
                let Some(t) = self.engine.poll_transmit() else {
                    break;
                };
                match addresses.resolve(t.to) {
                    Some(to) => batch.push((to, t.bytes)),
                    None => warn!(target: "spread::network", "no address for {:?}", t.to),
                }
            }
            if batch.is_empty() {
                break;
            }
            let mut views =
                [(std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), &[][..]); os::SEND_BATCH];
            for (view, (to, bytes)) in views.iter_mut().zip(&batch) {
                *view = (*to, bytes.as_slice());
            }
            channels.send_all(&views[..batch.len()]);
            let full = batch.len() == os::SEND_BATCH;
            batch.clear();
            if !full {
                break;
            }
        }
        self.send_batch = batch;
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Run until SIGINT or SIGTERM.
    pub fn run(&mut self) -> Result<(), ShellError> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout =
                if !self.read_again.is_empty() || !self.token_again.is_empty() || !self.data_again.is_empty()
                {
                    Some(Duration::ZERO)
                } else {
                    let monitor = self.monitor.as_ref().and_then(|(m, _)| m.poll_timeout());
                    let deadline = [self.engine.poll_timeout(), monitor].into_iter().flatten().min();
                    // The clock is read only when a deadline needs it.
                    let wait = deadline.map(|t| t.saturating_duration_since(Instant::now()));
                    self.set_short_timer(deadline.zip(wait));
                    wait
                };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            let now = read_clock();
            let token_pending = std::mem::take(&mut self.token_again);
            self.token_turn.clear();
            let data_pending = std::mem::take(&mut self.data_again);
            // Clients before the ring sockets: a message that arrived with
            // the token leaves with it instead of a whole rotation later.
            let ring_socket = |e: &mio::event::Event| (FIRST_UDP..FIRST_CONN).contains(&e.token().0);
            let clients = events.iter().filter(|e| !ring_socket(e));
            for event in clients.chain(events.iter().filter(|e| ring_socket(e))) {
                match event.token() {
                    SIGNAL => {
                        if self.read_signals(now) {
                            info!("signal received: shutting down");
                            self.shutdown();
                            return Ok(());
                        }
                    }
                    SHORT_TIMER => {
                        if let Some(t) = &mut self.short_timer {
                            t.clear();
                        }
                    }
                    UNIX_LISTENER => self.accept_unix(now),
                    RECORD_LISTENER => self.accept_records(now),
                    Token(t) if (FIRST_UDP..FIRST_CONN).contains(&t) => {
                        self.read_datagrams(t - FIRST_UDP, now)
                    }
                    Token(t) if t < FIRST_CONN => self.accept_tcp(t - FIRST_TCP_LISTENER, now),
                    Token(conn) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            let drain = event.is_read_closed() || event.is_error();
                            self.read_client(conn, now, drain);
                        }
                        if event.is_writable() {
                            self.flush(conn, now);
                        }
                    }
                }
                self.apply_outputs();
                // A HURRY for the token leaves at once.
                self.send_datagrams();
            }
            for index in data_pending {
                if !self.data_again.contains(&index) {
                    self.read_datagrams(index, now);
                    self.apply_outputs();
                }
            }
            for index in token_pending {
                if !self.token_turn.contains(&index) {
                    self.read_datagrams(index, now);
                    self.apply_outputs();
                }
            }
            for _ in 0..self.read_again.len() {
                if let Some(conn) = self.read_again.pop_front() {
                    // The event that put it here may have carried the end
                    // of stream: read to the end.
                    self.read_client(conn, now, true);
                    self.apply_outputs();
                }
            }
            if self.engine.poll_timeout().is_some_and(|t| t <= now.mono) {
                self.engine.handle_timeout(now);
                self.apply_outputs();
            }
            if let Some(action) = self
                .monitor
                .as_mut()
                .and_then(|(m, _)| m.handle_timeout(now.mono))
            {
                self.apply_monitor_action(action);
            }
            self.send_datagrams();
            self.flush_woken(now);
            self.resume_paused_reads(now);
        }
    }

    /// Arms the short timer for a deadline (and the wait until it) under a
    /// millisecond away, which `epoll_wait` would round up to one; disarms
    /// it when the nearest deadline is further or gone.
    fn set_short_timer(&mut self, next: Option<(Instant, Duration)>) {
        let Some(timer) = &mut self.short_timer else {
            return;
        };
        let result = match next {
            Some((at, wait)) if wait < Duration::from_millis(1) => timer.arm(at, wait),
            _ => timer.disarm(),
        };
        if let Err(e) = result {
            warn!("timerfd: {e}; deadlines under a millisecond wait a millisecond");
            self.short_timer = None;
        }
    }

    /// Once the engine no longer pauses reading, the clients left unread
    /// are read next turn.
    fn resume_paused_reads(&mut self, now: Clock) {
        if self.paused_reads.is_empty() || self.engine.reading_paused(now) {
            return;
        }
        for conn in self.paused_reads.drain(..) {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.read_paused = false;
                self.read_again.push_back(conn);
            }
        }
    }

    /// The Unix socket paths this daemon listens on.
    fn unix_paths(&self) -> Vec<&std::path::Path> {
        let unix = self.unix_listener.as_ref().map(|(_, p)| p.as_path());
        let records = self.record_listener.as_ref().map(|(_, p)| p.as_path());
        unix.into_iter().chain(records).collect()
    }

    fn shutdown(&mut self) {
        let Some(dir) = &self.unix_dir else {
            return;
        };
        for path in self.unix_paths() {
            let Some(name) = path
                .file_name()
                .and_then(|n| std::ffi::CString::new(n.as_encoded_bytes()).ok())
            else {
                continue;
            };
            if let Err(e) = os::unlink_at(dir, &name) {
                warn!(target: "spread::session", "cannot remove {}: {e}", path.display());
            }
        }
    }

    /// Drop root (see [`drop_privileges`]), handing the Unix socket to the
    /// new user first so it can still remove it at shutdown.
    pub fn drop_privileges(
        &mut self,
        user: &str,
        group: &str,
        runtime_dir: &std::path::Path,
    ) -> Result<(), String> {
        drop_privileges(user, group, runtime_dir, &self.unix_paths())
    }

    fn accept_tcp(&mut self, index: usize, now: Clock) {
        loop {
            let Some(listener) = self.tcp_listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let _ = socket2::SockRef::from(&stream).set_keepalive(true);
                    let ip = match addr {
                        SocketAddr::V4(a) => *a.ip(),
                        SocketAddr::V6(a) => a.ip().to_ipv4().unwrap_or(Ipv4Addr::UNSPECIFIED),
                    };
                    self.add_conn(Stream::Tcp(stream), Peer::Tcp(ip), now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!(target: "spread::session", "accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn accept_unix(&mut self, now: Clock) {
        loop {
            let Some((listener, _)) = &self.unix_listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => self.add_conn(Stream::Unix(stream), Peer::Unix, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!(target: "spread::session", "accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn accept_records(&mut self, now: Clock) {
        loop {
            let Some((listener, _)) = &self.record_listener else {
                return;
            };
            match listener.accept() {
                Ok((socket, _)) => {
                    if let Err(e) = socket.set_nonblocking(true) {
                        warn!(target: "spread::session", "record connection: {e}");
                        continue;
                    }
                    // The listener's check showed the kernel grants it.
                    if let Err(e) = set_record_send_buffer(&socket) {
                        warn!(target: "spread::session", "record connection: send buffer: {e}");
                    }
                    if self.record_bufs.is_empty() {
                        self.record_bufs = vec![0; os::RECORD_RECV_BATCH * self.record_slot()];
                    }
                    self.add_conn(Stream::Records(socket), Peer::Unix, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!(target: "spread::session", "accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Bytes of one record slot: a header and the largest body, plus one
    /// so a longer record shows as cut (one up to that length is judged by
    /// the same header checks as on the stream).
    fn record_slot(&self) -> usize {
        self.engine.config().max_message_body.max(1024) + spread_wire::client::limits::MESSAGE_HEADER_LEN + 1
    }

    fn add_conn(&mut self, mut stream: Stream, peer: Peer, now: Clock) {
        let conn = self.next_conn;
        self.next_conn += 1;
        let registry = self.poll.registry();
        if let Err(e) = stream.with_source(|s| registry.register(s, Token(conn), Interest::READABLE)) {
            error!(target: "spread::session", "cannot watch a new connection: {e}");
            return;
        }
        let fd = stream.raw_fd();
        self.conns.insert(
            conn,
            Connection {
                stream,
                want_write: false,
                read_paused: false,
            },
        );
        self.engine.handle_accept(conn, peer, fd, now);
        self.apply_outputs();
    }

    /// Read what `conn` sent, up to the read budget. A read that does not
    /// fill the buffer emptied the socket's queue: with edge-triggered
    /// epoll any later byte (or the end of stream) raises a new event, so
    /// the read that would only return EAGAIN is skipped (one system call
    /// less per message). `drain` (the event reported the end of stream or
    /// an error, which raise no new event) reads on to EAGAIN or EOF.
    /// While the engine pauses reading from senders, the client is left
    /// unread and read again when it resumes.
    fn read_client(&mut self, conn: ConnId, now: Clock, drain: bool) {
        if matches!(
            self.conns.get(&conn),
            Some(Connection {
                stream: Stream::Records(_),
                ..
            })
        ) {
            return self.read_records(conn, now);
        }
        let mut budget = READ_BUDGET;
        loop {
            if !self.may_read_now(conn, now) {
                return;
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            match c.stream.read(&mut self.read_buf) {
                Ok(0) => {
                    debug!(target: "spread::session", "connection {conn}: end of stream");
                    self.engine.handle_client_closed(conn, now);
                    return;
                }
                Ok(n) => {
                    let emptied = n < self.read_buf.len() && !drain;
                    self.engine.handle_client_data(conn, &self.read_buf[..n], now);
                    if emptied {
                        return;
                    }
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        self.read_again.push_back(conn);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!(target: "spread::session", "connection {conn}: read failed: {e}");
                    self.engine.handle_client_closed(conn, now);
                    return;
                }
            }
        }
    }

    /// Whether connection `conn` may be read now: it exists and is not
    /// paused; one the engine holds back is paused until it may.
    fn may_read_now(&mut self, conn: ConnId, now: Clock) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if c.read_paused {
            return false;
        }
        if !self.engine.may_read(conn, now) {
            c.read_paused = true;
            self.paused_reads.push(conn);
            return false;
        }
        true
    }

    /// [`Shell::read_client`] for a record-path client: a batch of records
    /// per system call, each handed to the engine as one unit, until a
    /// batch comes back short (the queue is empty: edge-triggered epoll
    /// raises a new event for the next record) or the budget is spent.
    fn read_records(&mut self, conn: ConnId, now: Clock) {
        let slot = self.record_slot();
        let mut budget = RECORD_BUDGET;
        let mut reset_seen = false;
        loop {
            if !self.may_read_now(conn, now) {
                return;
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let mut lens = [os::RecordLen::default(); os::RECORD_RECV_BATCH];
            let got = match os::recv_records(c.stream.raw_fd(), &mut self.record_bufs, slot, &mut lens) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // A client that closed with unread records of its own
                // leaves this error in front of the records it sent last;
                // reading it clears it, and they follow, then the end.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !reset_seen => {
                    reset_seen = true;
                    continue;
                }
                Err(e) => {
                    debug!(target: "spread::session", "connection {conn}: read failed: {e}");
                    self.engine.handle_client_closed(conn, now);
                    return;
                }
            };
            for (i, r) in lens.iter().take(got).enumerate() {
                if !self.conns.contains_key(&conn) {
                    return;
                }
                if r.len == 0 {
                    debug!(target: "spread::session", "connection {conn}: end of stream");
                    self.engine.handle_client_closed(conn, now);
                    return;
                }
                if r.truncated {
                    self.engine
                        .reject_record(conn, &format!("a record longer than {} bytes", slot - 1), now);
                    return;
                }
                let at = i * slot;
                self.engine
                    .handle_client_record(conn, &self.record_bufs[at..at + r.len], now);
            }
            if got < os::RECORD_RECV_BATCH {
                return;
            }
            budget = budget.saturating_sub(got);
            if budget == 0 {
                self.read_again.push_back(conn);
                return;
            }
        }
    }

    fn apply_outputs(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Wake(conn) => self.to_flush.push(conn),
                Output::Close {
                    conn,
                    last_words,
                    records,
                } => self.close(conn, &last_words, &records),
            }
        }
    }

    fn flush_woken(&mut self, now: Clock) {
        while !self.to_flush.is_empty() {
            let woken = std::mem::take(&mut self.to_flush);
            for conn in woken {
                self.flush(conn, now);
            }
            // A failed write may have dropped a session and woken others.
            self.apply_outputs();
        }
    }

    /// Write what the engine holds for `conn` until the socket is full.
    fn flush(&mut self, conn: ConnId, now: Clock) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let records = matches!(c.stream, Stream::Records(_));
        loop {
            if records {
                let mut batch: [&[u8]; os::RECORD_SEND_BATCH] = [&[]; os::RECORD_SEND_BATCH];
                let mut count = 0;
                for (slot, r) in batch.iter_mut().zip(self.engine.output_records(conn)) {
                    *slot = r;
                    count += 1;
                }
                if count == 0 {
                    break;
                }
                match os::send_records(c.stream.raw_fd(), &batch[..count]) {
                    Ok(sent) => {
                        let n = batch[..sent].iter().map(|r| r.len()).sum();
                        self.engine.consume_output(conn, n);
                        if sent < count {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        debug!(target: "spread::session", "connection {conn}: write failed: {e}");
                        self.engine.handle_client_closed(conn, now);
                        return;
                    }
                }
                continue;
            }
            // On the stack: no allocation per write.
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let mut count = 0;
            for (slot, chunk) in slices.iter_mut().zip(self.engine.output_chunks(conn)) {
                *slot = IoSlice::new(chunk);
                count += 1;
            }
            if count == 0 {
                break;
            }
            match c.stream.write_vectored(&slices[..count]) {
                Ok(n) => {
                    self.engine.consume_output(conn, n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!(target: "spread::session", "connection {conn}: write failed: {e}");
                    self.engine.handle_client_closed(conn, now);
                    return;
                }
            }
        }
        self.engine.check_backlog(conn, now);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let pending = self.engine.has_output(conn);
        if pending != c.want_write {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let registry = self.poll.registry();
            if c.stream
                .with_source(|s| registry.reregister(s, Token(conn), interest))
                .is_ok()
            {
                c.want_write = pending;
            }
        }
    }

    fn close(&mut self, conn: ConnId, last_words: &[u8], records: &[usize]) {
        let Some(mut c) = self.conns.remove(&conn) else {
            return;
        };
        if let Stream::Records(s) = &c.stream {
            // Each unit of the last words is one record.
            let mut units = Vec::new();
            let mut at = 0;
            for &n in records {
                if let Some(unit) = last_words.get(at..at + n) {
                    units.push(unit);
                }
                at += n;
            }
            let _ = os::send_records(s.as_raw_fd(), &units);
        } else if !last_words.is_empty() {
            let _ = c.stream.write(last_words);
        }
        let registry = self.poll.registry();
        let _ = c.stream.with_source(|s| registry.deregister(s));
        debug!(target: "spread::session", "connection {conn} closed");
    }
}

/// The send buffer of a record connection. The kernel charges each record
/// its own buffer (about 770 bytes for a 100-byte message, against a few
/// bytes on the stream socket, where writes coalesce), so the default
/// buffer would hold a fifth of the messages the stream socket holds for a
/// client that pauses; with this one it holds more, and a pausing reader is
/// not cut sooner on the record path than on the stream.
const RECORD_SEND_BUFFER: usize = 1 << 20;

/// Ask for [`RECORD_SEND_BUFFER`] (the kernel doubles what it grants, up
/// to twice `net.core.wmem_max`); what was granted.
fn set_record_send_buffer(socket: &socket2::Socket) -> io::Result<usize> {
    socket.set_send_buffer_size(RECORD_SEND_BUFFER)?;
    socket.send_buffer_size()
}

/// The record path's listener: a non-blocking `SOCK_SEQPACKET` socket at
/// `path` (a stale one of a previous run is replaced), mode 0666 like the
/// stream socket.
fn bind_records(path: &std::path::Path) -> io::Result<socket2::Socket> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::SEQPACKET, None)?;
    let granted = set_record_send_buffer(&socket)?;
    if granted < RECORD_SEND_BUFFER {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "the kernel grants {granted} bytes of send buffer, not {RECORD_SEND_BUFFER} \
                 (raise net.core.wmem_max to {} or more); our library uses the stream socket",
                RECORD_SEND_BUFFER / 2
            ),
        ));
    }
    socket.set_nonblocking(true)?;
    socket.bind(&socket2::SockAddr::unix(path)?)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    socket.listen(128)?;
    Ok(socket)
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(TcpListener::from_std(socket.into()))
}
