//! The daemon-to-daemon UDP sockets, bound as the original binds them.
//!
//! * data channel: the segment port, on each daemon interface (0.0.0.0 for
//!   an implicit "any" interface), plus the segment's broadcast address when
//!   the daemon has a specific interface and segment peers;
//! * token channel: segment port + 1 on the same interfaces;
//! * one unbound send socket (ephemeral source port, broadcast allowed):
//!   receivers identify senders by packet fields, not by source port.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::ring_conf::{Channel, Destination};

use mio::net::UdpSocket;

/// Where the ring's datagrams go: each segment's broadcast address and
/// port, and each daemon's segment port.
#[derive(Clone, Debug, Default)]
pub struct RingAddresses {
    pub segments: Vec<(Ipv4Addr, u16)>,
    pub daemon_ports: HashMap<u32, u16>,
}

impl RingAddresses {
    /// Every segment's broadcast address and every daemon's port.
    pub fn from_configuration(config: &crate::configuration::Configuration) -> RingAddresses {
        RingAddresses {
            segments: config.segments.iter().map(|s| (s.address, s.port)).collect(),
            daemon_ports: config
                .segments
                .iter()
                .flat_map(|s| s.daemons.iter().map(|d| (u32::from(d.ip), s.port)))
                .collect(),
        }
    }

    pub(crate) fn resolve(&self, to: Destination) -> Option<std::net::SocketAddrV4> {
        match to {
            Destination::Segment(i) => self
                .segments
                .get(i)
                .map(|&(ip, port)| std::net::SocketAddrV4::new(ip, port)),
            Destination::Daemon { id, channel } => {
                let port = *self.daemon_ports.get(&id)?;
                let port = if channel == Channel::Token { port + 1 } else { port };
                Some(std::net::SocketAddrV4::new(Ipv4Addr::from(id), port))
            }
        }
    }
}

/// Which channel a datagram arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    Data,
    Token,
}

/// A daemon interface the ring uses.
#[derive(Clone, Copy, Debug)]
pub struct DaemonInterface {
    /// `None`: any address (the implicit interface of a daemon without an
    /// interface block).
    pub ip: Option<Ipv4Addr>,
}

pub struct UdpChannels {
    pub receivers: Vec<(ChannelKind, UdpSocket)>,
    pub sender: UdpSocket,
}

fn bind(addr: SocketAddrV4, reuse: bool) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if reuse {
        socket.set_reuse_address(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.set_broadcast(true)?;
    // Bursts of a fast ring must not overflow the default buffers.
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&SocketAddr::V4(addr).into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

/// The kernel hands a broadcast back to the sender's own host: a socket
/// filter drops the datagrams of this daemon's own send socket (source port
/// `sender_port` from `own_ip` or a loopback address) before they wake the
/// daemon, which would only discard them after a read and a parse (the
/// ring's own packets are in its store already). Only the sender socket of
/// this network namespace sends from that port (it is bound without reuse),
/// and a source address of this host or 127/8 does not come from another
/// host. Without the filter (an old kernel) the daemon discards them itself.
fn skip_own_datagrams(socket: &UdpSocket, own_ip: Ipv4Addr, sender_port: u16) {
    // Classic BPF offsets from the network header (SKF_NET_OFF).
    const NET: u32 = (-0x100000i32) as u32;
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let (ld_w, ld_h) = (
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        libc::BPF_LD | libc::BPF_H | libc::BPF_ABS,
    );
    let (jeq, ret) = (
        libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
        libc::BPF_RET | libc::BPF_K,
    );
    let alu_and = libc::BPF_ALU | libc::BPF_AND | libc::BPF_K;
    let own = u32::from(own_ip);
    let program = [
        // UDP source port (the header right after a 20-byte IP header: our
        // own datagrams carry no IP options).
        op(ld_h, 0, 0, NET + 20),
        op(jeq, 0, 5, u32::from(sender_port)),
        op(ld_w, 0, 0, NET + 12),
        op(jeq, 2, 0, own),
        op(alu_and, 0, 0, 0xff00_0000),
        op(jeq, 0, 1, 0x7f00_0000),
        op(ret, 0, 0, 0),
        op(ret, 0, 0, u32::MAX),
    ];
    if let Err(e) = socket2::SockRef::from(socket).attach_filter(&program) {
        log::debug!(target: "spread::network", "no filter for the own broadcasts: {e}");
    }
}

impl UdpChannels {
    /// Bind the receive channels on `port` / `port + 1` and the send socket.
    pub fn bind(
        port: u16,
        interfaces: &[DaemonInterface],
        broadcast: Option<Ipv4Addr>,
        multicast: Option<Ipv4Addr>,
    ) -> io::Result<UdpChannels> {
        let sender = bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), false)?;
        let mut receivers = Vec::new();
        let mut broadcast_bound = false;
        for iface in interfaces {
            let ip = iface.ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
            if let (Some(_), Some(bcast)) = (iface.ip, broadcast) {
                // A socket bound to one address does not see broadcasts:
                // bind the broadcast address too.
                if !broadcast_bound && multicast.is_none() {
                    receivers.push((ChannelKind::Data, bind(SocketAddrV4::new(bcast, port), true)?));
                    broadcast_bound = true;
                }
            }
            let data = bind(SocketAddrV4::new(ip, port), true)?;
            if let Some(group) = multicast {
                let socket = socket2::SockRef::from(&data);
                socket.join_multicast_v4(&group, &ip)?;
                socket.set_multicast_loop_v4(false)?;
            }
            receivers.push((ChannelKind::Data, data));
            receivers.push((ChannelKind::Token, bind(SocketAddrV4::new(ip, port + 1), false)?));
        }
        if multicast.is_some() {
            socket2::SockRef::from(&sender).set_multicast_ttl_v4(1)?;
        }
        Ok(UdpChannels { receivers, sender })
    }

    /// Filters this daemon's own datagrams out of its data sockets (see
    /// [`skip_own_datagrams`]); `own_ip` is the daemon's address, the
    /// source address its broadcasts leave with.
    pub fn skipping_own_datagrams(self, own_ip: Ipv4Addr) -> UdpChannels {
        if let Ok(addr) = self.sender.local_addr() {
            for (kind, socket) in &self.receivers {
                if *kind == ChannelKind::Data {
                    skip_own_datagrams(socket, own_ip, addr.port());
                }
            }
        }
        self
    }

    /// Send these datagrams in order, [`crate::os::SEND_BATCH`] per system
    /// call; a full socket buffer drops the rest, as UDP may. A datagram the
    /// kernel refuses is logged and skipped.
    pub fn send_all(&self, datagrams: &[(SocketAddrV4, &[u8])]) {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.sender);
        let mut rest = datagrams;
        while !rest.is_empty() {
            match crate::os::send_datagrams(fd, rest) {
                Ok(0) => return,
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::debug!(target: "spread::network", "send to {} failed: {e}", rest[0].0);
                    rest = &rest[1..];
                }
            }
        }
    }

    /// Send one datagram; a full socket buffer drops it, as UDP may.
    pub fn send(&self, to: SocketAddrV4, bytes: &[u8]) -> io::Result<()> {
        match self.sender.send_to(bytes, SocketAddr::V4(to)) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_data_and_token_channels_and_carries_datagrams() {
        // An ephemeral pair of free ports.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let Ok(ch) = UdpChannels::bind(
            port,
            &[DaemonInterface {
                ip: Some(Ipv4Addr::LOCALHOST),
            }],
            None,
            None,
        ) else {
            // port + 1 was taken by someone else; nothing to test then.
            return;
        };
        assert_eq!(ch.receivers.len(), 2);
        ch.send(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port + 1), b"token")
            .unwrap();
        let mut buf = [0u8; 16];
        let token = &ch
            .receivers
            .iter()
            .find(|(k, _)| *k == ChannelKind::Token)
            .unwrap()
            .1;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match token.recv_from(&mut buf) {
                Ok((n, _)) => {
                    assert_eq!(&buf[..n], b"token");
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(e) => panic!("no datagram: {e}"),
            }
        }
    }
}
