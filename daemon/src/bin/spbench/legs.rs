//! The client-legs floor of `spbench --ring`: what every message of the
//! ring's throughput figure must cross besides the UDP broadcast, done by
//! trivial relays instead of daemons, so nothing orders, stores, retransmits
//! or passes a token.
//!
//! A sending client writes 1,000-byte messages over TCP to a relay in d1's
//! namespace (as a Spread client writes to its daemon's address), at most
//! a window of them ahead of its own copies. That relay broadcasts each
//! message in one datagram and writes it back to the client (the sender's
//! own copy, which a Spread sender receives too). A relay in each
//! receiver's namespace writes every datagram it gets to its local client
//! over TCP. The figure is the goodput at the slowest receiving client.
//!
//! The floor is kind to itself where a daemon cannot be: its clients read
//! in 64 KB chunks (a Spread client reads a message at a time), and lost
//! datagrams are simply not counted (a ring has flow control instead).

use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// One floor message, as the ring's throughput figure sends.
pub const MESSAGE: usize = 1000;
/// Datagrams a receiving relay takes before it writes to its client.
const BATCH: usize = 64;
/// Quiet time after traffic at which a receiving side stops.
const IDLE: Duration = Duration::from_millis(500);

fn invalid(what: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string())
}

fn parse<T: std::str::FromStr>(field: Option<&str>, what: &str) -> std::io::Result<T> {
    field
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| invalid(format!("floor address: no {what}")))
}

/// `legs-relay` with `TCP_PORT/UDP_PORT` (a receiver's relay) or
/// `TCP_PORT/BROADCAST:PORT` (the sender's relay). Prints READY once both
/// sockets are bound, then serves the one client that connects.
pub fn relay(addr: &str, secs: f64, out: &mut impl Write) -> std::io::Result<()> {
    let mut fields = addr.split('/');
    let tcp_port: u16 = parse(fields.next(), "TCP port")?;
    let udp = fields
        .next()
        .ok_or_else(|| invalid("floor address: no UDP side"))?;
    let listener = TcpListener::bind(("0.0.0.0", tcp_port))?;
    if let Ok(broadcast) = udp.parse::<SocketAddr>() {
        let sock = UdpSocket::bind("0.0.0.0:0")?;
        sock.set_broadcast(true)?;
        writeln!(out, "READY")?;
        out.flush()?;
        let (client, _) = listener.accept()?;
        return broadcast_from(client, &sock, broadcast);
    }
    let port: u16 = parse(Some(udp), "UDP port")?;
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    // As deep as the daemons' own receive buffers.
    sock.set_recv_buffer_size(8 << 20)?;
    sock.bind(&SocketAddr::from(([0, 0, 0, 0], port)).into())?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    writeln!(out, "READY")?;
    out.flush()?;
    let (client, _) = listener.accept()?;
    deliver_to(client, &sock, secs)
}

/// The sender's relay: every whole message read from the client goes out
/// in one datagram and back to the client, until the client closes.
fn broadcast_from(mut client: TcpStream, sock: &UdpSocket, to: SocketAddr) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = 0;
    // The client leaves with own copies unread: a reset is its end too.
    let ended = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        )
    };
    loop {
        let n = match client.read(&mut buf[have..]) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if ended(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        have += n;
        let whole = have - have % MESSAGE;
        for message in buf[..whole].chunks(MESSAGE) {
            // ENOBUFS when the queue is full: the floor is the goodput.
            let _ = sock.send_to(message, to);
        }
        match client.write_all(&buf[..whole]) {
            Ok(()) => {}
            Err(e) if ended(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
}

/// A receiver's relay: datagrams in batches of up to [`BATCH`], each batch
/// written to the client in one call, until the traffic stops.
fn deliver_to(mut client: TcpStream, sock: &socket2::Socket, secs: f64) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    // What a datagram held is not looked at: the client counts bytes, and
    // writing these zeroes copies as many bytes as the datagrams had.
    let zeroes = vec![0u8; BATCH * 1472];
    let mut slot = vec![MaybeUninit::<u8>::uninit(); 1472];
    let start = Instant::now();
    let mut last = None::<Instant>;
    loop {
        let first = match sock.recv(&mut slot) {
            Ok(n) => n,
            Err(_) if last.is_some_and(|l| l.elapsed() > IDLE) => return Ok(()),
            Err(_) if start.elapsed() > Duration::from_secs_f64(secs + 10.0) => return Ok(()),
            Err(_) => continue,
        };
        let mut batch = first;
        for _ in 1..BATCH {
            match sock.recv_with_flags(&mut slot, libc::MSG_DONTWAIT) {
                Ok(n) => batch += n,
                Err(_) => break,
            }
        }
        last = Some(Instant::now());
        client.write_all(&zeroes[..batch])?;
    }
}

/// `legs-send` with `IP:PORT/WINDOW`: floods the relay for `secs` with at
/// most WINDOW messages ahead of the own copies; prints the messages sent.
pub fn send(addr: &str, secs: f64, out: &mut impl Write) -> std::io::Result<()> {
    let mut fields = addr.split('/');
    let relay: SocketAddr = parse(fields.next(), "relay address")?;
    let window: u64 = parse(fields.next(), "window")?;
    let mut stream = TcpStream::connect(relay)?;
    stream.set_nodelay(true)?;
    let message = vec![0xabu8; MESSAGE];
    let mut back = vec![0u8; 64 * 1024];
    let (mut sent, mut returned_bytes) = (0u64, 0u64);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        while sent - returned_bytes / MESSAGE as u64 >= window {
            let n = stream.read(&mut back)?;
            if n == 0 {
                return Err(std::io::Error::other("the relay closed"));
            }
            returned_bytes += n as u64;
        }
        stream.write_all(&message)?;
        sent += 1;
    }
    writeln!(out, "{sent}")?;
    Ok(())
}

/// `legs-recv` with `IP:PORT`: counts the messages the relay writes; prints
/// READY once connected, then `count seconds` between the first and the
/// last bytes.
pub fn receive(addr: &str, secs: f64, out: &mut impl Write) -> std::io::Result<()> {
    let relay: SocketAddr = parse(Some(addr), "relay address")?;
    let mut stream = TcpStream::connect(relay)?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    writeln!(out, "READY")?;
    out.flush()?;
    let mut buf = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let (mut bytes, mut first, mut last) = (0u64, None::<Instant>, start);
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let now = Instant::now();
                // The first message's bytes start the clock, so they are
                // not counted (as the UDP floor leaves its first datagram).
                if first.is_none() {
                    first = Some(now);
                } else {
                    bytes += n as u64;
                }
                last = now;
            }
            Err(_) if first.is_some() && last.elapsed() > IDLE => break,
            Err(_) if start.elapsed() > Duration::from_secs_f64(secs + 10.0) => break,
            Err(_) => {}
        }
    }
    let span = first.map_or(0.0, |f| (last - f).as_secs_f64());
    writeln!(out, "{} {span}", bytes / MESSAGE as u64)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// What a role prints, line by line, to the test.
    struct Lines(mpsc::Sender<String>, Vec<u8>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.1.extend_from_slice(buf);
            while let Some(end) = self.1.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.1.drain(..=end).collect();
                let _ = self.0.send(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn role(
        run: impl FnOnce(&mut Lines) -> std::io::Result<()> + Send + 'static,
    ) -> (
        mpsc::Receiver<String>,
        std::thread::JoinHandle<std::io::Result<()>>,
    ) {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::spawn(move || run(&mut Lines(tx, Vec::new())));
        (rx, handle)
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn next(lines: &mpsc::Receiver<String>) -> String {
        lines.recv_timeout(Duration::from_secs(20)).expect("a line")
    }

    #[test]
    fn messages_cross_both_legs_and_are_counted_at_the_receiver() {
        let (tcp_rx, udp, tcp_tx) = (free_port(), free_port(), free_port());
        let (relay_lines, receiving_relay) = role(move |out| relay(&format!("{tcp_rx}/{udp}"), 1.0, out));
        assert_eq!(next(&relay_lines), "READY");
        let (recv_lines, receiver) = role(move |out| receive(&format!("127.0.0.1:{tcp_rx}"), 1.0, out));
        assert_eq!(next(&recv_lines), "READY");
        let (sender_relay_lines, sender_relay) =
            role(move |out| relay(&format!("{tcp_tx}/127.0.0.1:{udp}"), 1.0, out));
        assert_eq!(next(&sender_relay_lines), "READY");
        let (send_lines, sender) = role(move |out| send(&format!("127.0.0.1:{tcp_tx}/50"), 0.3, out));
        let sent: u64 = next(&send_lines).parse().expect("a count");
        sender.join().unwrap().expect("the sender");
        sender_relay
            .join()
            .unwrap()
            .expect("the sending relay ends with its client");
        let counted = next(&recv_lines);
        let (count, span) = counted.split_once(' ').expect("count and span");
        let (count, span): (u64, f64) = (count.parse().unwrap(), span.parse().unwrap());
        assert!(sent > 100, "the window lets the sender run: {sent}");
        assert!(count > 0 && count < sent, "received {count} of {sent}");
        assert!(span > 0.0 && span < 1.0, "span {span}");
        receiver.join().unwrap().expect("the receiver");
        receiving_relay
            .join()
            .unwrap()
            .expect("the receiving relay stops when the traffic does");
    }

    #[test]
    fn a_malformed_floor_address_is_an_error() {
        assert!(relay("x/1", 0.1, &mut Vec::new()).is_err());
        assert!(send("127.0.0.1:1", 0.1, &mut Vec::new()).is_err());
    }
}
