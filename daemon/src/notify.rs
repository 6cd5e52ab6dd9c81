//! Service manager notifications (the `sd_notify` protocol of systemd),
//! part of the daemon's OS layer.
//!
//! A unit with `Type=notify` starts the daemon with `NOTIFY_SOCKET` naming a
//! Unix datagram socket (a path, or `@name` for the abstract namespace); the
//! daemon sends `READY=1` there once it accepts clients. The protocol is one
//! datagram of `KEY=value` lines, so a std `UnixDatagram` is all it takes.
//! Without `NOTIFY_SOCKET` every call does nothing.

use std::io;
use std::os::unix::net::UnixDatagram;

/// The environment variable the service manager sets.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<UnixDatagram>,
}

impl Notifier {
    /// Connect to `$NOTIFY_SOCKET` when it is set. The variable is removed
    /// from the environment so that no child inherits it. Connecting now,
    /// before the daemon may chroot, keeps a path socket reachable.
    pub fn from_env() -> io::Result<Notifier> {
        let Some(target) = std::env::var_os(NOTIFY_SOCKET_ENV) else {
            return Ok(Notifier { socket: None });
        };
        std::env::remove_var(NOTIFY_SOCKET_ENV);
        let target = target.to_string_lossy().into_owned();
        let socket = UnixDatagram::unbound()?;
        connect(&socket, &target)?;
        Ok(Notifier { socket: Some(socket) })
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier { socket: None }
    }

    /// Whether a service manager is listening.
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Send one notification (`KEY=value` lines).
    pub fn notify(&self, state: &str) -> io::Result<()> {
        match &self.socket {
            Some(socket) => socket.send(state.as_bytes()).map(|_| ()),
            None => Ok(()),
        }
    }

    /// The daemon accepts clients.
    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.notify(&format!(
            "READY=1\nSTATUS={status}\nMAINPID={}",
            std::process::id()
        ))
    }

    /// The daemon re-reads its configuration; [`Notifier::ready`] follows.
    pub fn reloading(&self) -> io::Result<()> {
        self.notify("RELOADING=1")
    }

    /// The daemon shuts down.
    pub fn stopping(&self) -> io::Result<()> {
        self.notify("STOPPING=1")
    }
}

#[cfg(target_os = "linux")]
fn connect(socket: &UnixDatagram, target: &str) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    match target.strip_prefix('@') {
        Some(name) => {
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            socket.connect_addr(&addr)
        }
        None => socket.connect(target),
    }
}

#[cfg(not(target_os = "linux"))]
fn connect(socket: &UnixDatagram, target: &str) -> io::Result<()> {
    socket.connect(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_ready_to_a_path_socket() {
        let path = std::env::temp_dir().join(format!("spread-notify-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let manager = UnixDatagram::bind(&path).unwrap();
        manager
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let socket = UnixDatagram::unbound().unwrap();
        connect(&socket, &path.to_string_lossy()).unwrap();
        let notifier = Notifier { socket: Some(socket) };
        notifier.ready("serving").unwrap();
        let mut buf = [0u8; 256];
        let n = manager.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with("READY=1\nSTATUS=serving\nMAINPID="), "{text}");
        let _ = std::fs::remove_file(&path);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("spread-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let manager = UnixDatagram::bind_addr(&addr).unwrap();
        manager
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let socket = UnixDatagram::unbound().unwrap();
        connect(&socket, &format!("@{name}")).unwrap();
        Notifier { socket: Some(socket) }.stopping().unwrap();
        let mut buf = [0u8; 64];
        let n = manager.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn disabled_sends_nothing() {
        let n = Notifier::disabled();
        assert!(!n.is_enabled());
        n.ready("x").unwrap();
    }
}
