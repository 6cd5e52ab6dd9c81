//! Opening a session: socket, connect request, auth exchange, accept.

use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};
use spread_wire::client::limits::{AUTH_CHOICE_LEN, MAX_GROUP_NAME, MAX_PRIVATE_NAME};
use spread_wire::client::{code, AuthChoice, AuthMethodList, ConnectRequest, Version};

use super::address::DaemonAddress;
use super::stream::Stream;
use crate::error::SpError;

/// Socket buffers the library asks for (the original grows them to 200 KiB).
const SOCKET_BUFFER: usize = 200 * 1024;

/// What `SP_connect` was asked for.
pub struct ConnectOptions<'a> {
    pub address: DaemonAddress,
    /// At most 10 bytes are sent; empty asks the daemon to pick a name.
    pub private_name: &'a [u8],
    pub priority: i32,
    pub membership: bool,
    /// `None`: wait as long as it takes.
    pub timeout: Option<Duration>,
}

/// An authentication method registered by the program.
pub trait Authenticator {
    /// Names of the methods to offer, in order (each shorter than 30 bytes).
    fn names(&self) -> Vec<Vec<u8>>;
    /// Run method `index` on the connected socket; `false` refuses.
    fn authenticate(&self, index: usize, fd: std::os::fd::RawFd) -> bool;
}

/// A session that the daemon accepted.
pub struct Accepted {
    pub stream: Stream,
    /// `#name#daemon`, at most 31 bytes.
    pub private_group: Vec<u8>,
}

/// The environment variable that keeps the library off the record path
/// (any value but empty or `0`): local sessions then use the stream socket,
/// as the original library does.
pub const STREAM_ONLY_ENV: &str = "SPREAD_LOCAL_STREAM";

fn stream_only() -> bool {
    std::env::var_os(STREAM_ONLY_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// connect(2), bounded by `deadline` if there is one; `None` if it has
/// passed already.
fn connect_by(socket: &Socket, addr: &SockAddr, deadline: Option<Instant>) -> Option<std::io::Result<()>> {
    match deadline {
        None => Some(socket.connect(addr)),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            (!left.is_zero()).then(|| socket.connect_timeout(addr, left))
        }
    }
}

/// Our daemon's record socket beside the stream socket at `path`, if it
/// listens there. Anything else (no such file: an original daemon, or
/// ours with the record path off; refused; not a seqpacket socket) is
/// `None`, and the stream socket is used: silently, it is the normal case
/// with another daemon.
fn open_records(path: &std::path::Path, deadline: Option<Instant>) -> Option<Stream> {
    let path = spread_wire::client::records::record_path(path);
    let addr = SockAddr::unix(&path).ok()?;
    let socket = Socket::new_raw(Domain::UNIX, Type::SEQPACKET, None).ok()?;
    // The largest message is one record: the send buffer must hold it.
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    match connect_by(&socket, &addr, deadline)? {
        Ok(()) => Some(Stream::Records(socket)),
        Err(e) => {
            log::debug!("SP_connect: no record path at {}: {e}", path.display());
            None
        }
    }
}

fn open_socket(address: &DaemonAddress, deadline: Option<Instant>) -> Result<Stream, SpError> {
    let (domain, addr) = match address {
        DaemonAddress::Unix(path) => (
            Domain::UNIX,
            SockAddr::unix(path).map_err(|_| SpError::CouldNotConnect)?,
        ),
        DaemonAddress::Tcp(v4) => (Domain::IPV4, SockAddr::from(*v4)),
    };
    // Like the original: a plain blocking socket, inherited across exec.
    let socket = Socket::new_raw(domain, Type::STREAM, None).map_err(|_| SpError::CouldNotConnect)?;
    if domain == Domain::IPV4 {
        if let Err(e) = socket.set_nodelay(true) {
            log::warn!("SP_connect: setting TCP_NODELAY failed: {e}");
        }
        if let Err(e) = socket.set_keepalive(true) {
            log::warn!("SP_connect: setting SO_KEEPALIVE failed: {e}");
        }
    }
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let connected = connect_by(&socket, &addr, deadline).ok_or(SpError::CouldNotConnect)?;
    if let Err(e) = connected {
        log::debug!("SP_connect: could not connect to {address:?}: {e}");
        return Err(SpError::CouldNotConnect);
    }
    Ok(match domain {
        Domain::UNIX => Stream::Unix(socket.into()),
        _ => Stream::Tcp(socket.into()),
    })
}

/// Open a session with the daemon at `opts.address`.
pub fn connect(opts: &ConnectOptions<'_>, auth: &dyn Authenticator) -> Result<Accepted, SpError> {
    let deadline = opts.timeout.map(|t| Instant::now() + t);
    // The record path for a local daemon, unless the program's own auth
    // methods (which talk on the socket themselves) are in play.
    let records = match &opts.address {
        DaemonAddress::Unix(path) if !stream_only() && auth.names().iter().all(|n| n == b"NULL") => {
            open_records(path, deadline)
        }
        _ => None,
    };
    let stream = match records {
        Some(s) => s,
        None => open_socket(&opts.address, deadline)?,
    };
    handshake(stream, opts, auth, deadline)
}

/// The session's opening exchange on a connected `stream`.
fn handshake(
    stream: Stream,
    opts: &ConnectOptions<'_>,
    auth: &dyn Authenticator,
    deadline: Option<Instant>,
) -> Result<Accepted, SpError> {
    let closed = |_| SpError::ConnectionClosed;

    let name = &opts.private_name[..opts.private_name.len().min(MAX_PRIVATE_NAME)];
    let priority = opts.priority.clamp(0, 1) as u8;
    let request = ConnectRequest::new(name, opts.membership, priority);
    if stream.write_all(&request.emit()).is_err() {
        // A daemon that refuses at the accept (its session limit) writes its
        // reject code and closes before reading the request: the write may
        // fail while the code is still there to read.
        return Err(reject_after_failed_write(&stream, deadline));
    }

    // The daemon's list of methods, or a negative reject code in its place.
    let list = if stream.is_records() {
        let mut unit = [0u8; 1 + AUTH_CHOICE_LEN];
        let n = stream.recv_record_until(&mut unit, deadline).map_err(closed)?;
        let list_len = unit[0] as i8;
        if list_len < 0 {
            return Err(SpError::from_code(list_len.into()));
        }
        if n != 1 + list_len as usize {
            return Err(SpError::ConnectionClosed);
        }
        unit[..n].to_vec()
    } else {
        let mut len = [0u8; 1];
        stream.read_exact_until(&mut len, deadline).map_err(closed)?;
        let list_len = len[0] as i8;
        if list_len < 0 {
            return Err(SpError::from_code(list_len.into()));
        }
        if list_len as usize > AUTH_CHOICE_LEN {
            return Err(SpError::ConnectionClosed);
        }
        let mut list = vec![0u8; 1 + list_len as usize];
        list[0] = list_len as u8;
        stream
            .read_exact_until(&mut list[1..], deadline)
            .map_err(closed)?;
        list
    };
    let (offered, _) = AuthMethodList::parse(&list).map_err(|_| SpError::ConnectionClosed)?;

    let names = auth.names();
    let mut chosen = Vec::with_capacity(names.len());
    for n in &names {
        let n = String::from_utf8_lossy(n).into_owned();
        if !offered.methods.contains(&n) {
            log::debug!("SP_connect: auth method {n} is not offered by the daemon");
            return Err(SpError::RejectAuth);
        }
        chosen.push(n);
    }
    let chosen: Vec<&str> = chosen.iter().map(String::as_str).collect();
    stream
        .write_all(&AuthChoice::new(&chosen).emit())
        .map_err(closed)?;
    let fd = stream.raw_fd();
    let mut refused = false;
    for i in 0..names.len() {
        if !auth.authenticate(i, fd) {
            refused = true;
        }
    }
    if refused {
        return Err(SpError::RejectAuth);
    }

    // Accept byte (or a reject code), daemon version, private group.
    if stream.is_records() {
        return accept_record(stream, deadline, priority);
    }
    let mut answer = [0u8; 1];
    stream.read_exact_until(&mut answer, deadline).map_err(closed)?;
    let answer = answer[0] as i8 as i32;
    if answer != code::ACCEPT_SESSION {
        return Err(SpError::from_code(answer));
    }
    let mut v = [0u8; 3];
    stream.read_exact_until(&mut v, deadline).map_err(closed)?;
    let daemon = Version::new(v[0] as i8, v[1] as i8, v[2] as i8);
    if daemon.number() < 30100 || (daemon.number() < 30800 && priority > 0) {
        return Err(SpError::RejectVersion);
    }
    let mut len = [0u8; 1];
    stream.read_exact_until(&mut len, deadline).map_err(closed)?;
    let mut group = vec![0u8; len[0] as usize];
    if group.is_empty() {
        return Err(SpError::ConnectionClosed);
    }
    stream.read_exact_until(&mut group, deadline).map_err(closed)?;
    group.truncate(MAX_GROUP_NAME - 1);
    Ok(Accepted {
        stream,
        private_group: group,
    })
}

/// The daemon's reject code if one waits on `stream`, else `ConnectionClosed`.
fn reject_after_failed_write(stream: &Stream, deadline: Option<Instant>) -> SpError {
    let mut unit = [0u8; 1 + AUTH_CHOICE_LEN];
    let code = if stream.is_records() {
        stream
            .recv_record_until(&mut unit, deadline)
            .ok()
            .filter(|&n| n >= 1)
            .map(|_| unit[0] as i8)
    } else {
        stream
            .read_exact_until(&mut unit[..1], deadline)
            .ok()
            .map(|_| unit[0] as i8)
    };
    match code {
        Some(c) if c < 0 => SpError::from_code(c.into()),
        _ => SpError::ConnectionClosed,
    }
}

/// The accept reply of the record path: one record of the accept byte, the
/// daemon's version, the name's length and the name; or a reject code.
fn accept_record(stream: Stream, deadline: Option<Instant>, priority: u8) -> Result<Accepted, SpError> {
    let mut unit = [0u8; 5 + 255];
    let n = stream
        .recv_record_until(&mut unit, deadline)
        .map_err(|_| SpError::ConnectionClosed)?;
    let answer = unit[0] as i8 as i32;
    if answer != code::ACCEPT_SESSION {
        return Err(SpError::from_code(answer));
    }
    if n < 5 {
        return Err(SpError::ConnectionClosed);
    }
    let daemon = Version::new(unit[1] as i8, unit[2] as i8, unit[3] as i8);
    if daemon.number() < 30100 || (daemon.number() < 30800 && priority > 0) {
        return Err(SpError::RejectVersion);
    }
    let len = unit[4] as usize;
    if len == 0 || n != 5 + len {
        return Err(SpError::ConnectionClosed);
    }
    let mut group = unit[5..n].to_vec();
    group.truncate(MAX_GROUP_NAME - 1);
    Ok(Accepted {
        stream,
        private_group: group,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct NullAuth;
    impl Authenticator for NullAuth {
        fn names(&self) -> Vec<Vec<u8>> {
            vec![b"NULL".to_vec()]
        }
        fn authenticate(&self, _: usize, _: std::os::fd::RawFd) -> bool {
            true
        }
    }

    fn options() -> ConnectOptions<'static> {
        ConnectOptions {
            address: DaemonAddress::Unix("/nonexistent".into()),
            private_name: b"q",
            priority: 0,
            membership: true,
            timeout: Some(Duration::from_secs(3)),
        }
    }

    const REJECT_QUOTA: u8 = code::REJECT_QUOTA as i8 as u8;

    // The session limit's race, made certain: the daemon has written its
    // reject code and closed before the library writes its request (EPIPE).
    #[test]
    fn a_reject_written_before_the_request_is_read_after_the_failed_write() {
        let (ours, mut daemon) = std::os::unix::net::UnixStream::pair().expect("pair");
        daemon.write_all(&[REJECT_QUOTA]).expect("reject");
        drop(daemon);
        let got = handshake(Stream::Unix(ours), &options(), &NullAuth, None);
        assert_eq!(got.err(), Some(SpError::RejectQuota));
    }

    #[test]
    fn the_same_on_the_record_path() {
        let (ours, daemon) = Socket::pair(Domain::UNIX, Type::SEQPACKET, None).expect("pair");
        daemon.send(&[REJECT_QUOTA]).expect("reject");
        drop(daemon);
        let got = handshake(Stream::Records(ours), &options(), &NullAuth, None);
        assert_eq!(got.err(), Some(SpError::RejectQuota));
    }

    #[test]
    fn a_peer_gone_without_a_word_is_a_closed_connection() {
        let (ours, daemon) = std::os::unix::net::UnixStream::pair().expect("pair");
        drop(daemon);
        let got = handshake(Stream::Unix(ours), &options(), &NullAuth, None);
        assert_eq!(got.err(), Some(SpError::ConnectionClosed));
    }
}
