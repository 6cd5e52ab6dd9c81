//! The record path (`/tmp/<port>.seq`, `SOCK_SEQPACKET`): the same session
//! protocol cut into records, as `spread_wire::client::records` defines it,
//! checked record by record with a raw client; and what the daemon does
//! with a client that breaks the framing or stops reading.

mod common;

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use socket2::{Domain, SockAddr, Socket, Type};
use spread_wire::client::records::{record_path, CHUNK};
use spread_wire::client::service::*;
use spread_wire::client::{hint_for, AuthChoice, ConnectRequest, GroupName, Message, MessageHeader};
use spread_wire::endian::ByteOrder;

/// A raw client of the record path.
struct RecordClient {
    socket: Socket,
    private_group: GroupName,
}

fn path_of(daemon: &Daemon) -> PathBuf {
    record_path(&daemon.unix_path())
}

/// Whether the kernel lets the daemon offer the record path: it asks for a
/// 1 MiB send buffer per record connection (granted up to twice
/// `net.core.wmem_max`) and stays on the stream socket without it.
fn kernel_grants_record_buffers() -> bool {
    let max: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    max * 2 >= 1 << 20
}

/// A daemon with the record path; `None` (said on stderr, and checked in
/// the daemon's log) where the kernel's buffer cap keeps it off.
fn record_daemon() -> Option<Daemon> {
    let daemon = Daemon::start();
    if kernel_grants_record_buffers() {
        return Some(daemon);
    }
    assert!(!path_of(&daemon).exists(), "no record path under this buffer cap");
    assert!(daemon.log().contains("net.core.wmem_max"), "{}", daemon.log());
    eprintln!("skipped: net.core.wmem_max is below 512 KiB, the daemon offers no record path");
    None
}

fn open(daemon: &Daemon) -> Socket {
    let s = Socket::new(Domain::UNIX, Type::SEQPACKET, None).expect("socket");
    s.connect(&SockAddr::unix(path_of(daemon)).expect("address"))
        .expect("connect to the record socket");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s
}

/// One record (at most `max` bytes; a longer one fails the test).
fn recv_record(s: &Socket, max: usize) -> Vec<u8> {
    let mut buf = vec![0u8; max + 1];
    // SAFETY: `buf` is writable for its length; the descriptor is open.
    let n = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) };
    assert!(n >= 0, "recv: {}", std::io::Error::last_os_error());
    assert!((n as usize) <= max, "a record of {n} bytes, more than {max}");
    buf.truncate(n as usize);
    buf
}

fn send_record(s: &Socket, bytes: &[u8]) {
    let n = s.send(bytes).expect("send a record");
    assert_eq!(n, bytes.len());
}

impl RecordClient {
    fn connect(daemon: &Daemon, name: &str) -> RecordClient {
        let socket = open(daemon);
        send_record(&socket, &ConnectRequest::new(name.as_bytes(), true, 0).emit());
        let list = recv_record(&socket, 1000);
        assert_eq!(list, b"\x05NULL ", "the auth list is one record");
        send_record(&socket, &AuthChoice::new(&["NULL"]).emit());
        let accept = recv_record(&socket, 1000);
        let group = format!("#{name}#{DAEMON_NAME}");
        let mut want = vec![1, 4, 4, 0, group.len() as u8];
        want.extend_from_slice(group.as_bytes());
        assert_eq!(accept, want, "the accept reply is one record");
        RecordClient {
            socket,
            private_group: GroupName::new(group.as_bytes()).expect("name"),
        }
    }

    fn message(&self, service: u32, groups: &[&str], body: &[u8]) -> Vec<u8> {
        Message {
            header: MessageHeader {
                service_type: service,
                sender: self.private_group,
                num_groups: groups.len() as i32,
                hint: hint_for(7, ByteOrder::NATIVE),
                data_len: body.len() as i32,
            },
            groups: groups
                .iter()
                .map(|g| GroupName::new(g.as_bytes()).expect("group"))
                .collect(),
            body: body.to_vec(),
        }
        .emit(ByteOrder::NATIVE)
    }

    fn send(&self, service: u32, groups: &[&str], body: &[u8]) {
        send_record(&self.socket, &self.message(service, groups, body));
    }

    /// One message as its records arrived: the records' lengths and the
    /// message's bytes.
    fn recv(&self) -> (Vec<usize>, Vec<u8>) {
        let first = recv_record(&self.socket, 64 * 1024);
        assert!(first.len() >= 48, "a record of {} bytes", first.len());
        let (h, _) = MessageHeader::parse(&first).expect("header");
        let reject = if h.service_type & REJECT_MESS != 0 { 4 } else { 0 };
        let total = 48 + reject + h.num_groups as usize * 32 + h.data_len as usize;
        let mut lens = vec![first.len()];
        let mut bytes = first;
        while bytes.len() < total {
            let r = recv_record(&self.socket, CHUNK);
            lens.push(r.len());
            bytes.extend_from_slice(&r);
        }
        assert_eq!(bytes.len(), total, "the records add up to the message");
        (lens, bytes)
    }

    /// The next data message (membership notices are skipped).
    fn recv_data(&self) -> (Vec<usize>, Vec<u8>) {
        loop {
            let (lens, bytes) = self.recv();
            let (h, _) = MessageHeader::parse(&bytes).expect("header");
            if h.service_type & MEMBERSHIP_MESS == 0 {
                return (lens, bytes);
            }
        }
    }
}

#[test]
fn the_record_socket_sits_beside_the_stream_socket_and_goes_with_the_daemon() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let Some(mut daemon) = record_daemon() else {
        return;
    };
    let path = path_of(&daemon);
    let meta = std::fs::metadata(&path).expect("the record socket exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o666);
    let status = daemon.signal_and_wait(libc::SIGTERM, Duration::from_secs(5));
    assert!(status.is_some(), "the daemon stops on SIGTERM");
    assert!(!path.exists(), "the record socket is removed at shutdown");
    assert!(!daemon.unix_path().exists(), "and so is the stream socket");
}

/// Every unit of the session is one record, and the bytes are the stream
/// protocol's: a stream client in the same group gets the same message.
#[test]
fn messages_are_records_with_the_stream_protocols_bytes() {
    let Some(daemon) = record_daemon() else {
        return;
    };
    let a = RecordClient::connect(&daemon, "rec");
    let mut b = daemon.client(Transport::Unix, "str", true);
    a.send(JOIN_MESS, &["g"], b"");
    let (lens, notice) = a.recv();
    assert_eq!(lens, vec![notice.len()], "a notice is one record");
    b.join("g");
    let _ = b.recv_membership(CAUSED_BY_JOIN, WAIT);
    let (_, notice) = a.recv();
    let (h, _) = MessageHeader::parse(&notice).expect("header");
    assert_ne!(h.service_type & REG_MEMB_MESS, 0, "the join of str");

    for size in [0usize, 100, 8192, 8193, 20_000, 143_920] {
        let body: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
        a.send(AGREED_MESS, &["g"], &body);
        let (lens, got) = a.recv_data();
        let from_stream = b.recv();
        assert_eq!(got, from_stream.raw, "{size} B: the same bytes on both paths");
        let total = 48 + 32 + size;
        if size <= 8192 {
            assert_eq!(lens, vec![total], "{size} B: one record");
        } else {
            let mut want = vec![48];
            let mut rest = total - 48;
            while rest > 0 {
                want.push(rest.min(CHUNK));
                rest -= rest.min(CHUNK);
            }
            assert_eq!(lens, want, "{size} B: the header, then the rest in chunks");
        }
    }
    // And from the stream client to the record client.
    b.multicast(FIFO_MESS, &["g"], 3, b"from the stream");
    let (lens, got) = a.recv_data();
    assert_eq!(lens.len(), 1);
    assert_eq!(&got[got.len() - 15..], b"from the stream");
}

/// Builds a record that breaks the framing for a client.
type BadRecord = Box<dyn Fn(&RecordClient) -> Vec<u8>>;

/// A record that is not exactly one message, or longer than any message
/// may be, drops its session (one log line); the daemon serves on.
#[test]
fn a_record_that_breaks_the_framing_drops_only_its_session() {
    let Some(daemon) = record_daemon() else {
        return;
    };
    let mut watcher = daemon.client(Transport::Unix, "watch", true);
    watcher.join("g");
    let _ = watcher.recv_membership(CAUSED_BY_JOIN, WAIT);
    let cases: [(&str, BadRecord); 3] = [
        (
            "cut",
            Box::new(|c: &RecordClient| {
                let m = c.message(AGREED_MESS, &["g"], &[1; 100]);
                m[..m.len() - 1].to_vec()
            }),
        ),
        (
            "two",
            Box::new(|c: &RecordClient| {
                let mut m = c.message(AGREED_MESS, &["g"], b"x");
                m.extend(c.message(AGREED_MESS, &["g"], b"y"));
                m
            }),
        ),
        (
            "long",
            Box::new(|c: &RecordClient| {
                let mut m = c.message(AGREED_MESS, &["g"], &[0; 143_920]);
                m.extend_from_slice(&[0; 100]);
                m
            }),
        ),
    ];
    for (name, bad) in cases {
        let c = RecordClient::connect(&daemon, name);
        c.send(JOIN_MESS, &["g"], b"");
        let _ = watcher.recv_membership(CAUSED_BY_JOIN, WAIT);
        send_record(&c.socket, &bad(&c));
        let left = watcher.recv_membership(CAUSED_BY_DISCONNECT, WAIT);
        assert!(
            left.body().windows(name.len()).any(|w| w == name.as_bytes()),
            "{name}: its session left"
        );
        // Its own notices, then the end of the session.
        let deadline = Instant::now() + WAIT;
        while !recv_record(&c.socket, 64 * 1024).is_empty() {
            assert!(Instant::now() < deadline, "{name}: closed");
        }
    }
    let log = daemon.log();
    assert!(log.contains("a record of 179 bytes is not one message"), "{log}");
    assert!(log.contains("a record of 162 bytes is not one message"), "{log}");
    assert!(log.contains("a record longer than 144048 bytes"), "{log}");
    // Served on.
    watcher.multicast(AGREED_MESS, &["g"], 1, b"still");
    assert_eq!(watcher.recv().body(), b"still");
}

/// A handshake unit cut into the wrong records is refused.
#[test]
fn the_handshake_is_framed_too() {
    let Some(daemon) = record_daemon() else {
        return;
    };
    // An auth choice in two records.
    let s = open(&daemon);
    send_record(&s, &ConnectRequest::new(b"half", true, 0).emit());
    assert_eq!(recv_record(&s, 100), b"\x05NULL ");
    let choice = AuthChoice::new(&["NULL"]).emit();
    send_record(&s, &choice[..45]);
    assert_eq!(
        recv_record(&s, 100),
        vec![spread_wire::client::code::REJECT_AUTH as u8]
    );
    // A connect request (with the longest name, so the name is complete)
    // and a byte more.
    let s = open(&daemon);
    let mut request = ConnectRequest::new(b"tenletters", true, 0).emit();
    request.push(0);
    send_record(&s, &request);
    assert_eq!(recv_record(&s, 100), b"", "closed without an answer");
    assert!(
        daemon.log().contains("a connect request record of"),
        "{}",
        daemon.log()
    );
    // The same name can still connect properly.
    let _ok = RecordClient::connect(&daemon, "tenletters");
}

/// A record client that stops reading does not stall the daemon: the
/// others are served and it is cut once MaxSessionMessages are queued.
#[test]
fn a_record_client_that_stops_reading_is_cut_and_holds_nobody_back() {
    let Some(daemon) = record_daemon() else {
        return;
    };
    let silent = RecordClient::connect(&daemon, "silent");
    silent.send(JOIN_MESS, &["g"], b"");
    let mut reader = daemon.client(Transport::Unix, "reader", true);
    reader.join("g");
    let _ = reader.recv_membership(CAUSED_BY_JOIN, WAIT);
    let mut sender = daemon.client(Transport::Unix, "sender", false);
    let body = vec![5u8; 1000];
    let started = Instant::now();
    let mut got = 0;
    let mut silent_left = false;
    let mut sent = 0;
    while got < 3000 {
        while sent < 3000 && sent < got + 100 {
            sender.multicast(AGREED_MESS, &["g"], 1, &body);
            sent += 1;
        }
        let m = reader
            .recv_within(Duration::from_secs(5))
            .expect("the reader is served");
        if m.is_membership() {
            silent_left |= m.service_type() & CAUSED_BY_DISCONNECT != 0;
        } else {
            got += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "slowed down: {got} in 30 s"
        );
    }
    while !silent_left {
        let m = reader.recv_within(Duration::from_secs(5)).expect("the notice");
        silent_left |= m.is_membership() && m.service_type() & CAUSED_BY_DISCONNECT != 0;
    }
    assert!(daemon.log().contains("not reading"), "{}", daemon.log());
    drop(silent);
}

/// A record client that vanishes (closed without a disconnect) leaves like
/// a stream client that does.
#[test]
fn a_vanished_record_client_leaves() {
    let Some(daemon) = record_daemon() else {
        return;
    };
    let mut watcher = daemon.client(Transport::Unix, "watch", true);
    watcher.join("g");
    let _ = watcher.recv_membership(CAUSED_BY_JOIN, WAIT);
    let c = RecordClient::connect(&daemon, "gone");
    c.send(JOIN_MESS, &["g"], b"");
    let _ = watcher.recv_membership(CAUSED_BY_JOIN, WAIT);
    c.send(AGREED_MESS, &["g"], b"last words");
    drop(c);
    let data = loop {
        let m = watcher.recv();
        if !m.is_membership() {
            break m;
        }
    };
    assert_eq!(data.body(), b"last words");
    let left = watcher.recv_membership(CAUSED_BY_DISCONNECT, WAIT);
    assert!(left.body().windows(4).any(|w| w == b"gone"));
}

/// A reader that pauses (here: does not read at all while 2,000 small
/// messages go by) keeps its session on the record path as it does on the
/// stream socket: both kernels' buffers and the daemon's 1,000 messages
/// hold them. With the default send buffer the record path held about
/// 280 of them and cut the reader.
#[test]
fn a_pausing_record_reader_is_held_as_long_as_a_stream_reader() {
    let Some(daemon) = record_daemon() else {
        return;
    };
    let paused_records = RecordClient::connect(&daemon, "precs");
    paused_records.send(JOIN_MESS, &["g"], b"");
    let mut paused_stream = daemon.client(Transport::Unix, "pstream", true);
    paused_stream.join("g");
    let _ = paused_stream.recv_membership(CAUSED_BY_JOIN, WAIT);
    let mut sender = daemon.client(Transport::Unix, "sender", true);
    const COUNT: usize = 2000;
    let body = [7u8; 50];
    for _ in 0..COUNT {
        sender.multicast(AGREED_MESS, &["g"], 1, &body);
    }
    // Every message has reached the daemon and its readers' queues.
    sender.join("marker");
    let _ = sender.recv_membership(CAUSED_BY_JOIN, WAIT);
    std::thread::sleep(Duration::from_millis(300));

    let mut got_stream = 0;
    while got_stream < COUNT {
        let m = paused_stream
            .recv_within(WAIT)
            .unwrap_or_else(|e| panic!("the stream reader after {got_stream}: {e:?}"));
        if !m.is_membership() {
            got_stream += 1;
        }
    }
    let mut got_records = 0;
    while got_records < COUNT {
        let (_, bytes) = paused_records.recv_data();
        assert_eq!(&bytes[bytes.len() - 50..], &body[..], "message {got_records}");
        got_records += 1;
    }
    assert!(!daemon.log().contains("not reading"), "{}", daemon.log());
}
