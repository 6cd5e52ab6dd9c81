//! The library on our daemon's record path (`/tmp/<port>.seq`): chosen for
//! local sessions, left silently for the stream socket when it is not
//! there; messages of every size, notices, and BUFFER_TOO_SHORT /
//! GROUPS_TOO_SHORT with the message left in the socket (still seen by
//! `poll`) until a buffer is large enough, as on the stream.

mod common;

use std::ffi::{c_char, c_int, CString};
use std::path::PathBuf;

use common::*;
use spread::ffi_sp::*;

const AGREED: service = 0x10;
const DROP_RECV: service = 0x0100_0000;
const REG_MEMB: service = 0x1000;

fn record_path(d: &Daemon) -> PathBuf {
    PathBuf::from(format!("/tmp/{}.seq", d.port))
}

fn connect(name: &str, spread: &str) -> mailbox {
    let spread = CString::new(spread).expect("name");
    let user = CString::new(name).expect("name");
    let mut m: mailbox = -1;
    let mut group = [0 as c_char; 32];
    // SAFETY: valid strings and out-pointers.
    let ret = unsafe { SP_connect(spread.as_ptr(), user.as_ptr(), 0, 1, &mut m, group.as_mut_ptr()) };
    assert_eq!(ret, 1, "{name}: SP_connect");
    m
}

fn socket_type(m: mailbox) -> c_int {
    let mut t: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: SO_TYPE writes one int through the pointers given.
    let r = unsafe {
        libc::getsockopt(
            m,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut t as *mut c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0);
    t
}

fn join(m: mailbox, g: &str) {
    let g = CString::new(g).expect("group");
    // SAFETY: a valid string.
    assert_eq!(unsafe { SP_join(m, g.as_ptr()) }, 0);
}

fn multicast(m: mailbox, g: &str, mess_type: i16, body: &[u8]) {
    let g = CString::new(g).expect("group");
    // SAFETY: valid string and buffer.
    let ret = unsafe {
        SP_multicast(
            m,
            AGREED,
            g.as_ptr(),
            mess_type,
            body.len() as c_int,
            body.as_ptr().cast(),
        )
    };
    assert_eq!(ret, body.len() as c_int);
}

#[derive(Debug, Default)]
struct Got {
    ret: c_int,
    service: service,
    num_groups: c_int,
    mess_type: i16,
    endian: c_int,
    groups: Vec<String>,
    body: Vec<u8>,
}

fn receive(m: mailbox, flags: service, max_groups: usize, max_body: usize) -> Got {
    let mut g = Got {
        service: flags,
        ..Default::default()
    };
    let mut sender = [0 as c_char; 32];
    let mut groups = vec![[0 as c_char; 32]; max_groups.max(1)];
    let mut body = vec![0u8; max_body];
    // SAFETY: all buffers are valid for the sizes given.
    g.ret = unsafe {
        SP_receive(
            m,
            &mut g.service,
            sender.as_mut_ptr(),
            max_groups as c_int,
            &mut g.num_groups,
            groups.as_mut_ptr(),
            &mut g.mess_type,
            &mut g.endian,
            max_body as c_int,
            body.as_mut_ptr().cast(),
        )
    };
    let n = if g.ret >= 0 || g.ret == -15 {
        (g.num_groups.max(0) as usize).min(max_groups)
    } else {
        0
    };
    g.groups = groups[..n]
        .iter()
        .map(|x| {
            let b: Vec<u8> = x.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
            String::from_utf8_lossy(&b).into_owned()
        })
        .collect();
    g.body = body[..if g.ret > 0 { g.ret as usize } else { 0 }].to_vec();
    g
}

/// Receives until a data message comes (notices are skipped).
fn receive_data(m: mailbox, max_groups: usize, max_body: usize) -> Got {
    loop {
        let g = receive(m, 0, max_groups, max_body);
        if g.ret < 0 || g.service & 0x3f != 0 {
            return g;
        }
    }
}

/// Whether poll(2) sees the mailbox readable within `ms` milliseconds.
fn readable_within(m: mailbox, ms: c_int) -> bool {
    let mut p = libc::pollfd {
        fd: m,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) == 1 }
}

/// Readable (the rest of a message may still be on its way).
fn readable(m: mailbox) -> bool {
    readable_within(m, 2000)
}

fn readable_now(m: mailbox) -> bool {
    readable_within(m, 0)
}

fn body_of(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 13 + size) as u8).collect()
}

#[test]
fn local_sessions_take_the_record_path_and_fall_back_to_the_stream() {
    let Some(daemon) = daemon_or_skip("records") else {
        return;
    };
    let unix = daemon.unix_name();
    let a = connect("a", &unix);
    assert_eq!(socket_type(a), libc::SOCK_SEQPACKET, "the record path");
    assert_eq!(socket_type(connect("tcp", &daemon.tcp_name())), libc::SOCK_STREAM);
    join(a, "g");

    // No record socket (an original daemon): the stream socket.
    let path = record_path(&daemon);
    std::fs::remove_file(&path).expect("remove the record socket");
    let b = connect("b", &unix);
    assert_eq!(socket_type(b), libc::SOCK_STREAM, "no such file");
    // A stale file with nobody listening: refused.
    drop(std::os::unix::net::UnixDatagram::bind(&path).expect("bind"));
    assert_eq!(socket_type(connect("c", &unix)), libc::SOCK_STREAM, "refused");
    std::fs::remove_file(&path).expect("remove");
    // A socket of another type there.
    let _other = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    assert_eq!(socket_type(connect("d", &unix)), libc::SOCK_STREAM, "wrong type");
    let _ = std::fs::remove_file(&path);

    // Both kinds of session talk to each other.
    join(b, "g");
    let _ = receive(a, 0, 100, 1000);
    multicast(a, "g", 5, b"from records");
    multicast(b, "g", 6, b"from the stream");
    // AGREED: both see the two messages in the same order.
    let seen: Vec<Vec<(i16, Vec<u8>)>> = [a, b]
        .iter()
        .map(|&m| {
            (0..2)
                .map(|_| {
                    let got = receive_data(m, 100, 1000);
                    (got.mess_type, got.body)
                })
                .collect()
        })
        .collect();
    assert_eq!(seen[0], seen[1], "one order");
    let mut both = seen[0].clone();
    both.sort();
    assert_eq!(
        both,
        vec![(5, b"from records".to_vec()), (6, b"from the stream".to_vec())]
    );
}

/// Every size up to the largest message, in roomy buffers (one recvmsg
/// for one-record messages) and in small ones (header peeked first),
/// arrives whole; notices carry their members and our index.
#[test]
fn messages_and_notices_arrive_whole_on_the_record_path() {
    let Some(daemon) = daemon_or_skip("records") else {
        return;
    };
    let unix = daemon.unix_name();
    let a = connect("a", &unix);
    let b = connect("b", &unix);
    assert_eq!(socket_type(b), libc::SOCK_SEQPACKET);
    join(a, "g");
    let _ = receive(a, 0, 100, 1000);
    join(b, "g");
    for m in [a, b] {
        let n = receive(m, 0, 100, 1000);
        assert_ne!(n.service & REG_MEMB, 0, "a notice");
        assert_eq!(n.groups, vec!["#a#localhost", "#b#localhost"]);
        assert_eq!(n.num_groups, 2);
        assert_eq!(n.mess_type, if m == a { 0 } else { 1 }, "our index");
    }
    for size in [0usize, 1, 100, 1000, 8192, 8193, 65_536, 143_920] {
        let body = body_of(size);
        multicast(a, "g", 9, &body);
        let roomy = receive_data(b, 100, 200_000);
        assert_eq!(roomy.ret, size as c_int, "{size} B");
        assert_eq!(roomy.body, body, "{size} B");
        assert_eq!((roomy.num_groups, roomy.mess_type), (1, 9));
        assert_eq!(roomy.groups, vec!["g"]);
        let small = receive_data(a, 2, size.max(1));
        assert_eq!(small.ret, size as c_int, "{size} B, small buffers");
        assert_eq!(small.body, body, "{size} B, small buffers");
        assert_eq!(small.groups, vec!["g"]);
    }
    // Mixed counts of names one after another: each lands in place.
    let c = connect("c", &unix);
    join(c, "g");
    join(c, "h");
    for _ in 0..2 {
        let _ = receive(c, 0, 100, 1000);
    }
    let _ = receive(a, 0, 100, 1000);
    let _ = receive(b, 0, 100, 1000);
    join(b, "h");
    let _ = receive(b, 0, 100, 1000);
    let _ = receive(c, 0, 100, 1000);
    let mut both = [[0 as c_char; 32]; 2];
    both[0][0] = b'g' as c_char;
    both[1][0] = b'h' as c_char;
    let body = body_of(500);
    // SAFETY: valid group names and body.
    let ret = unsafe { SP_multigroup_multicast(c, AGREED, 2, both.as_ptr(), 3, 500, body.as_ptr().cast()) };
    assert_eq!(ret, 500);
    multicast(c, "g", 4, b"one group again");
    let got = receive_data(b, 100, 1000);
    assert_eq!(
        (got.groups.clone(), got.body.clone()),
        (vec!["g".to_string(), "h".to_string()], body)
    );
    let got = receive_data(b, 100, 1000);
    assert_eq!(
        (got.groups, got.body.as_slice()),
        (vec!["g".to_string()], &b"one group again"[..])
    );
}

/// A message the buffers cannot hold is reported and left to be read
/// again, visible to poll; DROP_RECV takes what fits.
#[test]
fn too_short_buffers_leave_the_message_in_the_socket() {
    let Some(daemon) = daemon_or_skip("records") else {
        return;
    };
    let unix = daemon.unix_name();
    let a = connect("a", &unix);
    let b = connect("b", &unix);
    join(a, "g");
    let _ = receive(a, 0, 100, 1000);
    join(b, "g");
    let _ = receive(a, 0, 100, 1000);
    let _ = receive(b, 0, 100, 1000);

    // A one-record message, small buffer: peeked, left whole.
    multicast(a, "g", 1, &body_of(100));
    let short = receive(b, 0, 100, 50);
    assert_eq!((short.ret, short.endian, short.num_groups), (-15, -100, 0));
    assert!(readable(b), "still readable");
    assert_eq!(SP_poll(b), 32 + 100, "names and body wait, as on a stream");
    let again = receive(b, 0, 100, 50);
    assert_eq!(again.ret, -15, "still too short");
    let got = receive(b, 0, 100, 1000);
    assert_eq!(got.body, body_of(100));
    assert!(!readable_now(b));

    // A split message in roomy buffers still too short for it: the header
    // record is read, the rest stays queued.
    multicast(a, "g", 2, &body_of(20_000));
    let short = receive(b, 0, 100, 10_000);
    assert_eq!((short.ret, short.endian), (-15, -20_000));
    assert!(readable(b), "still readable");
    let got = receive(b, 0, 100, 30_000);
    assert_eq!((got.ret, got.mess_type), (20_000, 2));
    assert_eq!(got.body, body_of(20_000));

    // Too few name slots for a notice: GROUPS_TOO_SHORT, then whole.
    let c = connect("c", &unix);
    join(c, "g");
    let short = receive(b, 0, 1, 1000);
    assert_eq!((short.ret, short.num_groups), (-16, -3));
    assert!(readable(b));
    let got = receive(b, 0, 100, 1000);
    assert_eq!(got.num_groups, 3);
    assert_eq!(got.groups.len(), 3);

    // DROP_RECV: what fits, the rest dropped, the message consumed.
    let _ = receive(a, 0, 100, 1000);
    multicast(a, "g", 3, &body_of(100));
    multicast(a, "g", 3, &body_of(30_000));
    multicast(a, "g", 4, b"next");
    for size in [100, 30_000] {
        let cut = receive(b, DROP_RECV, 100, 10);
        assert_eq!(cut.ret, -15, "{size} B dropped to 10");
        assert_eq!(cut.num_groups, 1);
    }
    let got = receive(b, 0, 100, 1000);
    assert_eq!((got.mess_type, got.body.as_slice()), (4, &b"next"[..]));
    assert!(!readable_now(b));
}

/// A session the daemon drops (here for a message over its limit) ends
/// with CONNECTION_CLOSED, not a hang, on the record path.
#[test]
fn a_session_the_daemon_drops_ends_cleanly() {
    let Some(daemon) = daemon_or_skip("records") else {
        return;
    };
    let a = connect("a", &daemon.unix_name());
    join(a, "g");
    let _ = receive(a, 0, 100, 1000);
    multicast(a, "g", 1, &body_of(143_968));
    let got = receive(a, 0, 100, 200_000);
    assert_eq!(got.ret, -8, "CONNECTION_CLOSED");
}
