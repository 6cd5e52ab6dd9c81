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
    let connected = match deadline {
        None => socket.connect(&addr),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SpError::CouldNotConnect);
            }
            socket.connect_timeout(&addr, left)
        }
    };
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
    let stream = open_socket(&opts.address, deadline)?;
    let closed = |_| SpError::ConnectionClosed;

    let name = &opts.private_name[..opts.private_name.len().min(MAX_PRIVATE_NAME)];
    let priority = opts.priority.clamp(0, 1) as u8;
    let request = ConnectRequest::new(name, opts.membership, priority);
    stream.write_all(&request.emit()).map_err(closed)?;

    // The daemon's list of methods, or a negative reject code in its place.
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
