//! The library against a scripted daemon on loopback: byte-exact requests,
//! replies from the 4.4.0 captures (conn 1 of c27: a little-endian client
//! next to a big-endian one), big-endian deliveries, rejects, failures.
//! Needs no daemon and no C compiler.

use std::ffi::{c_char, c_int, CStr, CString};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use spread::ffi_events::sp_time;
use spread::ffi_sp::*;
use spread_wire::client::{
    hint_for, GroupId, GroupName, MembId, MembershipBody, MembershipNotice, MessageHeader,
};
use spread_wire::endian::ByteOrder;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn name32(s: &str) -> String {
    let mut h: String = s.bytes().map(|b| format!("{b:02x}")).collect();
    while h.len() < 64 {
        h.push('0');
    }
    h
}

enum Step {
    /// Bytes the library must send next.
    Expect(Vec<u8>),
    /// Like `Expect`, comparing a trailing 32-byte name only up to its NUL.
    ExpectName(Vec<u8>),
    Send(Vec<u8>),
    /// Close the connection.
    Close,
    /// The library must close its side.
    ExpectEof,
}
use Step::*;

/// A one-connection daemon following `steps`; returns the port.
fn scripted(steps: Vec<Step>) -> (u16, JoinHandle<Result<(), String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        for (i, step) in steps.into_iter().enumerate() {
            match step {
                Expect(want) | ExpectName(want) if want.is_empty() => {}
                Expect(want) => {
                    let mut got = vec![0u8; want.len()];
                    s.read_exact(&mut got).map_err(|e| format!("step {i}: {e}"))?;
                    if got != want {
                        return Err(format!("step {i}: got {got:02x?}\nwant {want:02x?}"));
                    }
                }
                ExpectName(want) => {
                    let mut got = vec![0u8; want.len()];
                    s.read_exact(&mut got).map_err(|e| format!("step {i}: {e}"))?;
                    let split = want.len() - 32;
                    let a = GroupName::from_raw(got[split..].try_into().expect("32"));
                    let b = GroupName::from_raw(want[split..].try_into().expect("32"));
                    if got[..split] != want[..split] || a != b {
                        return Err(format!("step {i}: got {got:02x?}\nwant {want:02x?}"));
                    }
                }
                Send(b) => s.write_all(&b).map_err(|e| format!("step {i}: {e}"))?,
                Close => return Ok(()),
                ExpectEof => {
                    let mut b = [0u8; 1];
                    match s.read(&mut b) {
                        Ok(0) => {}
                        other => return Err(format!("step {i}: expected EOF, got {other:?}")),
                    }
                }
            }
        }
        Ok(())
    });
    (port, h)
}

fn connect(port: u16, name: &str, membership: bool) -> (c_int, mailbox, String) {
    let spread = CString::new(format!("{port}@127.0.0.1")).expect("cstring");
    let name = CString::new(name).expect("cstring");
    let mut mbox: mailbox = -1;
    let mut pg = [0 as c_char; 32];
    let t = sp_time { sec: 5, usec: 0 };
    // SAFETY: valid C strings and output buffers.
    let ret = unsafe {
        SP_connect_timeout(
            spread.as_ptr(),
            name.as_ptr(),
            0,
            membership as c_int,
            &mut mbox,
            pg.as_mut_ptr(),
            t,
        )
    };
    // SAFETY: NUL-terminated by the library (or still all zeros).
    let pg = unsafe { CStr::from_ptr(pg.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    (ret, mbox, pg)
}

#[derive(Debug, Default)]
struct Got {
    ret: c_int,
    service: service,
    sender: String,
    num_groups: c_int,
    groups: Vec<String>,
    mess_type: i16,
    endian: c_int,
    body: Vec<u8>,
}

fn cstr(b: &[c_char]) -> String {
    let bytes: Vec<u8> = b.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// SP_scat_receive into a body split in three pieces (7, 20, rest).
fn receive(mbox: mailbox, flags: service, max_groups: usize, max_body: usize) -> Got {
    let mut g = Got {
        service: flags,
        ..Default::default()
    };
    let mut sender = [0 as c_char; 32];
    let mut groups = vec![[0 as c_char; 32]; max_groups.max(1)];
    let mut body = vec![0u8; max_body];
    let (a, rest) = body.split_at_mut(7.min(max_body));
    let (b, c) = rest.split_at_mut(20.min(rest.len()));
    // SAFETY: a zeroed scatter is valid (NULL pointers, zero lengths).
    let mut scat: Box<scatter> = Box::new(unsafe { std::mem::zeroed() });
    scat.num_elements = 3;
    for (e, piece) in scat.elements.iter_mut().zip([a, b, c]) {
        e.buf = piece.as_mut_ptr().cast();
        e.len = piece.len();
    }
    // SAFETY: all buffers are valid for the sizes given.
    g.ret = unsafe {
        SP_scat_receive(
            mbox,
            &mut g.service,
            sender.as_mut_ptr(),
            max_groups as c_int,
            &mut g.num_groups,
            groups.as_mut_ptr(),
            &mut g.mess_type,
            &mut g.endian,
            &mut *scat,
        )
    };
    g.sender = cstr(&sender);
    let n = if g.ret >= 0 {
        g.num_groups.unsigned_abs() as usize
    } else {
        0
    };
    g.groups = groups.iter().take(n.min(max_groups)).map(|x| cstr(x)).collect();
    g.body = body[..if g.ret > 0 { g.ret as usize } else { 0 }].to_vec();
    g
}

/// The connect exchange of c27 conn 1 (`little`), as steps.
fn handshake_little() -> Vec<Step> {
    vec![
        Expect(hex("04040001066c6974746c65")),
        Send(hex("054e554c4c20")),
        Expect({
            let mut v = b"NULL".to_vec();
            v.resize(90, 0);
            v
        }),
        Send(hex("01 040400 11236c6974746c65236c6f63616c686f7374")),
    ]
}

#[test]
fn replays_the_capture_of_a_little_endian_client() {
    let mut steps = handshake_little();
    steps.extend([
        // SP_join(gbe)
        Expect(hex(&format!(
            "80000180{}010000008000008000000000{}",
            name32("#little#localhost"),
            name32("gbe")
        ))),
        // its own join, then bigend's, then bigend's AGREED "hello" (hint in big-endian order)
        Send(hex(&format!(
            "801100806762650000000000000000000000000000000000000000000000000000000000010000008000008038000000\
             {}0100007f4ae6036b01000000010000000000000001000000{}",
            name32("#little#localhost"),
            name32("#little#localhost")
        ))),
        Send(hex(&format!(
            "801100806762650000000000000000000000000000000000000000000000000000000000020000008000008038000000\
             {}{}0100007f4ae6036b0200000001000000000000000100000023626967656e64236c6f63616c686f7374{}",
            name32("#bigend#localhost"),
            name32("#little#localhost"),
            "00".repeat(15)
        ))),
        Send(hex(&format!(
            "90000080{}010000000001020005000000{}68656c6c6f",
            name32("#bigend#localhost"),
            name32("gbe")
        ))),
        // SP_multicast(AGREED, gbe, 772, "from-little")
        Expect(hex(&format!(
            "90000080{}01000000800403800b000000{}66726f6d2d6c6974746c65",
            name32("#little#localhost"),
            name32("gbe")
        ))),
        // bigend disconnects
        Send(hex(&format!(
            "801400806762650000000000000000000000000000000000000000000000000000000000010000008000008038000000\
             {}0100007f4ae6036b0300000001000000000000000100000023626967656e64236c6f63616c686f7374{}",
            name32("#little#localhost"),
            "00".repeat(15)
        ))),
        // SP_disconnect: KILL naming our own private group
        ExpectName(hex(&format!(
            "80000480{}010000008000008000000000{}",
            name32("#little#localhost"),
            name32("#little#localhost")
        ))),
        ExpectEof,
    ]);
    let (port, daemon) = scripted(steps);
    let (ret, m, pg) = connect(port, "little", true);
    assert_eq!((ret, pg.as_str()), (1, "#little#localhost"));
    let gbe = CString::new("gbe").expect("cstring");
    // SAFETY: valid C string.
    assert_eq!(unsafe { SP_join(m, gbe.as_ptr()) }, 0);

    let r = receive(m, 0, 10, 200);
    assert_eq!(
        (
            r.ret,
            r.service,
            r.sender.as_str(),
            r.num_groups,
            r.mess_type,
            r.endian
        ),
        (56, 0x1100, "gbe", 1, 0, 0)
    );
    let r = receive(m, 0, 10, 200);
    assert_eq!(
        (r.ret, r.num_groups, r.mess_type),
        (56, 2, 1),
        "little is member 1"
    );
    assert_eq!(r.groups, ["#bigend#localhost", "#little#localhost"]);
    let mut mi: membership_info = membership_info {
        gid: group_id { id: [0; 3] },
        changed_member: [0; 32],
        num_vs_sets: 0,
        my_vs_set: vs_set_info {
            num_members: 0,
            members_offset: 0,
        },
    };
    // SAFETY: the body as received, a valid output struct.
    assert_eq!(
        unsafe { SP_get_memb_info(r.body.as_ptr().cast(), r.service, &mut mi) },
        1
    );
    assert_eq!(mi.gid.id, [0x7f00_0001, 0x6b03_e64a, 2]);
    assert_eq!(cstr(&mi.changed_member), "#bigend#localhost");

    let r = receive(m, 0, 10, 200);
    assert_eq!(
        (
            r.ret,
            r.service,
            r.sender.as_str(),
            r.mess_type,
            r.endian,
            r.body.as_slice()
        ),
        (5, 0x10, "#bigend#localhost", 258, 1, &b"hello"[..])
    );

    let body = CString::new("from-little").expect("cstring");
    // SAFETY: valid strings and lengths.
    assert_eq!(
        unsafe { SP_multicast(m, 0x10, gbe.as_ptr(), 772, 11, body.as_ptr()) },
        11
    );
    let r = receive(m, 0, 10, 200);
    assert_eq!(
        (r.ret, r.service, cstr_vec(&r.groups)),
        (56, 0x1400, "#little#localhost".into())
    );
    assert_eq!(SP_disconnect(m), 0);
    daemon
        .join()
        .expect("daemon thread")
        .expect("daemon saw the expected bytes");
}

fn cstr_vec(v: &[String]) -> String {
    v.join(",")
}

fn other_order() -> ByteOrder {
    match ByteOrder::NATIVE {
        ByteOrder::Little => ByteOrder::Big,
        ByteOrder::Big => ByteOrder::Little,
    }
}

#[test]
fn foreign_order_reject_and_bad_messages() {
    let order = other_order();
    let g1 = GroupName::new(b"g1").expect("name");
    let me = GroupName::new(b"#little#localhost").expect("name");
    let other = GroupName::new(b"#other#remote").expect("name");
    // A membership notice from a daemon of the other byte order, two vs sets.
    let body = MembershipBody {
        group_id: GroupId {
            memb_id: MembId {
                proc_id: 0x0a00_0001,
                time: 77,
            },
            index: 3,
        },
        vs_sets: vec![vec![other], vec![me]],
        my_vs_set: 1,
    };
    let memb = MembershipNotice::Regular {
        cause: 0x0800, // CAUSED_BY_NETWORK
        group: g1,
        members: vec![other, me],
        body: body.clone(),
    }
    .emit(order);
    // A reject of our SAFE message: header, old type word, names, body.
    let rej_header = MessageHeader {
        service_type: 0x0040_0000,
        sender: me,
        num_groups: 2,
        hint: hint_for(9, ByteOrder::NATIVE),
        data_len: 3,
    };
    let reject = spread_wire::client::emit_reject(&rej_header, 0x20, &[g1, me], b"abc", ByteOrder::NATIVE);
    // A header claiming -1 names.
    let mut bad = MessageHeader {
        service_type: 0x10,
        sender: other,
        num_groups: -1,
        hint: hint_for(0, ByteOrder::NATIVE),
        data_len: 0,
    }
    .emit(ByteOrder::NATIVE)
    .to_vec();
    bad.truncate(48);

    let mut steps = handshake_little();
    steps.extend([Send(memb), Send(reject), Send(bad), Close]);
    let (port, daemon) = scripted(steps);
    let (ret, m, _) = connect(port, "little", true);
    assert_eq!(ret, 1);

    // Too little room for the names: told how many, header kept.
    let r = receive(m, 0, 1, 500);
    assert_eq!((r.ret, r.num_groups, r.service), (-16, -2, 0x1800));
    let r = receive(m, 0, 4, 500);
    assert_eq!(
        (r.ret, r.num_groups, r.mess_type, r.endian),
        (body.encoded_len() as c_int, 2, 1, 0)
    );
    // The body words were turned to host order in place (across pieces).
    let mut sets = [vs_set_info {
        num_members: 0,
        members_offset: 0,
    }; 4];
    let mut mine = 99u32;
    // SAFETY: the received body, room for 4 sets.
    let n = unsafe { SP_get_vs_sets_info(r.body.as_ptr().cast(), sets.as_mut_ptr(), 4, &mut mine) };
    assert_eq!((n, mine), (2, 1));
    assert_eq!(
        (
            sets[0].num_members,
            sets[0].members_offset,
            sets[1].members_offset
        ),
        (1, 24, 60)
    );
    let mut names = [[0 as c_char; 32]; 2];
    // SAFETY: as above, room for 2 names.
    assert_eq!(
        unsafe { SP_get_vs_set_members(r.body.as_ptr().cast(), &sets[1], names.as_mut_ptr(), 2) },
        1
    );
    assert_eq!(cstr(&names[0]), "#little#localhost");
    assert_eq!(&r.body[..4], &0x0a00_0001i32.to_ne_bytes());

    // The reject: old type merged, names include our own group.
    let r = receive(m, 0, 4, 100);
    assert_eq!(
        (r.ret, r.service, r.mess_type, r.body.as_slice()),
        (3, 0x0040_0020, 9, &b"abc"[..])
    );
    assert_eq!(r.groups, ["g1", "#little#localhost"]);

    let r = receive(m, 0, 4, 100);
    assert_eq!(r.ret, -13, "negative num_groups is ILLEGAL_MESSAGE");
    // The daemon then hangs up.
    let r = receive(m, 0, 4, 100);
    assert_eq!(r.ret, -8, "CONNECTION_CLOSED");
    let r = receive(m, 0, 4, 100);
    assert_eq!(r.ret, -18, "NET_ERROR_ON_SESSION afterwards");
    assert_eq!(SP_poll(m), 0);
    assert_eq!(SP_disconnect(m), 0);
    assert_eq!(SP_poll(m), -11);
    daemon.join().expect("daemon thread").expect("script");
}

#[test]
fn connect_failures() {
    // A reject byte in place of the auth list.
    let (port, d) = scripted(vec![
        Expect(hex("04040001036162 63")),
        Send(vec![0xfa]),
        ExpectEof,
    ]);
    assert_eq!(connect(port, "abc", true).0, -6, "REJECT_NOT_UNIQUE");
    d.join().expect("thread").expect("script");

    // Only a method we do not have.
    let (port, d) = scripted(vec![
        Expect(hex("04040000036162 63")),
        Send(hex("04464f4f20")),
        ExpectEof,
    ]);
    assert_eq!(connect(port, "abc", false).0, -9, "REJECT_AUTH");
    d.join().expect("thread").expect("script");

    // A daemon older than 3.1.0.
    let mut steps = vec![
        Expect(hex("04040001036162 63")),
        Send(hex("054e554c4c20")),
        Expect({
            let mut v = b"NULL".to_vec();
            v.resize(90, 0);
            v
        }),
    ];
    steps.push(Send(hex("01 030000")));
    steps.push(ExpectEof);
    let (port, d) = scripted(steps);
    assert_eq!(connect(port, "abc", true).0, -7, "REJECT_VERSION");
    d.join().expect("thread").expect("script");

    // A daemon that never answers: the timeout is honoured.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let holder = std::thread::spawn(move || {
        let conn: Option<TcpStream> = listener.accept().ok().map(|(s, _)| s);
        std::thread::sleep(Duration::from_millis(1500));
        drop(conn);
    });
    let spread = CString::new(format!("{port}@127.0.0.1")).expect("cstring");
    let name = CString::new("slow").expect("cstring");
    let mut mbox = -1;
    let mut pg = [0 as c_char; 32];
    let start = Instant::now();
    // SAFETY: valid arguments.
    let ret = unsafe {
        SP_connect_timeout(
            spread.as_ptr(),
            name.as_ptr(),
            0,
            1,
            &mut mbox,
            pg.as_mut_ptr(),
            sp_time {
                sec: 0,
                usec: 300_000,
            },
        )
    };
    let took = start.elapsed();
    assert_eq!(ret, -8, "CONNECTION_CLOSED after the timeout");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1200),
        "took {took:?}"
    );
    holder.join().expect("holder");

    // Nothing listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    assert_eq!(connect(port, "abc", true).0, -2, "COULD_NOT_CONNECT");
}

#[test]
fn layouts_of_the_rust_types() {
    use std::mem::{offset_of, size_of};
    assert_eq!(size_of::<scat_element>(), 16);
    assert_eq!(offset_of!(scat_element, len), 8);
    assert_eq!(size_of::<scatter>(), 1608);
    assert_eq!(offset_of!(scatter, elements), 8);
    assert_eq!(size_of::<group_id>(), 12);
    assert_eq!(size_of::<vs_set_info>(), 8);
    assert_eq!(size_of::<membership_info>(), 56);
    assert_eq!(offset_of!(membership_info, changed_member), 12);
    assert_eq!(offset_of!(membership_info, num_vs_sets), 44);
    assert_eq!(offset_of!(membership_info, my_vs_set), 48);
    assert_eq!(size_of::<sp_time>(), 16);
}

#[test]
fn drop_recv_after_a_short_receive_consumes_exactly_one_message() {
    let me = GroupName::new(b"#little#localhost").expect("name");
    let g1 = GroupName::new(b"g1").expect("name");
    let data = |n: usize, fill: u8| {
        spread_wire::client::Message {
            header: MessageHeader {
                service_type: 0x10,
                sender: me,
                num_groups: 1,
                hint: hint_for(4, ByteOrder::NATIVE),
                data_len: 0,
            },
            groups: vec![g1],
            body: vec![fill; n],
        }
        .emit(ByteOrder::NATIVE)
    };
    let mut steps = handshake_little();
    steps.extend([Send(data(1000, b'x')), Send(data(7, b'y')), Close]);
    let (port, daemon) = scripted(steps);
    let (ret, m, _) = connect(port, "little", true);
    assert_eq!(ret, 1);
    // Too short: nothing consumed but the header, which the library keeps.
    let r = receive(m, 0, 4, 10);
    assert_eq!((r.ret, r.endian, r.num_groups, r.mess_type), (-15, -1000, 0, 4));
    // DROP_RECV with the same short buffer: the first 10 bytes, the rest dropped.
    let r = receive(m, 0x0100_0000, 4, 10);
    assert_eq!((r.ret, r.service, r.num_groups), (-15, 0x10, 1));
    // The next message is intact.
    let r = receive(m, 0, 4, 100);
    assert_eq!((r.ret, r.body.as_slice()), (7, &b"yyyyyyy"[..]));
    assert_eq!(SP_disconnect(m), 0);
    daemon.join().expect("daemon thread").expect("script");
}
