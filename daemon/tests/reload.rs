//! Dynamic Configuration on real daemons (loopback segments 127.0.0.1..4,
//! one port per segment): a ring of 3 grows to 4 and shrinks to 2 by editing
//! spread.conf and reloading every daemon (the monitor's RELOAD packet, and
//! SIGHUP, which runs the same reload), with clients connected throughout on the
//! surviving daemons; a broken file is refused with file:line:col.

mod common;

use std::time::{Duration, Instant};

use common::loopback_ring::{LoopbackRing, FORM_WITHIN, REFORM_WITHIN};
use common::Client;
use spread_wire::client::service::*;

/// Room for d1..d4; d1, d2 and d3 in spread.conf and started.
fn start_ring() -> LoopbackRing {
    LoopbackRing::start(common::daemon_binary(), "reload", 4, 3, "")
}

/// The monitor's RELOAD command to daemon `i` (40 bytes, as spmonitor
/// sends it).
fn reload_packet(ring: &LoopbackRing, i: usize) {
    use spread_wire::monitor::{Command, CommandPacket};
    let packet = CommandPacket::new(0x7f00_0001, 0, Command::Reload { body: Vec::new() })
        .emit(spread_wire::endian::ByteOrder::NATIVE);
    assert_eq!(packet.len(), 40);
    let socket = std::net::UdpSocket::bind(("127.0.0.1", 0)).expect("monitor socket");
    socket.send_to(&packet, ring.addr(i)).expect("send RELOAD");
}

fn members_of(c: &mut Client, cause: u32) -> Vec<String> {
    let r = c.recv_membership(cause, Duration::from_secs(15));
    let mut g = r.groups();
    g.sort();
    g
}

#[test]
fn a_ring_of_three_grows_to_four_and_shrinks_to_two_by_reloading() {
    let mut ring = start_ring();
    ring.wait_for_ring(&[0, 1, 2], &[0, 1, 2], FORM_WITHIN);
    let mut alice = Client::on_ring(&ring, 0, "alice");
    let mut carol = Client::on_ring(&ring, 2, "carol");
    alice.join("g");
    assert_eq!(members_of(&mut alice, CAUSED_BY_JOIN).len(), 1);
    carol.join("g");
    assert_eq!(members_of(&mut carol, CAUSED_BY_JOIN).len(), 2);
    assert_eq!(members_of(&mut alice, CAUSED_BY_JOIN).len(), 2);

    // Grow: d4 in every file, d4 started (alone, with a client), all reload.
    ring.write_conf(&[0, 1, 2, 3]);
    ring.launch(3);
    ring.wait_for_ring(&[3], &[3], FORM_WITHIN);
    let mut dan = Client::on_ring(&ring, 3, "dan");
    dan.join("g");
    assert_eq!(members_of(&mut dan, CAUSED_BY_JOIN).len(), 1);
    // The old daemons by the monitor's RELOAD, the new one by SIGHUP (it
    // must reload once too: the hash flip).
    for i in 0..3 {
        reload_packet(&ring, i);
    }
    ring.signal(3, "-HUP");
    ring.wait_for_ring(&[0, 1, 2, 3], &[0, 1, 2, 3], REFORM_WITHIN);
    // The merge: alice and carol see dan, dan sees them.
    let want = |g: &[String]| g.len() == 3;
    let deadline = Instant::now() + Duration::from_secs(15);
    for c in [&mut alice, &mut carol, &mut dan] {
        loop {
            assert!(Instant::now() < deadline, "no merged view of g");
            if want(&members_of(c, CAUSED_BY_NETWORK)) {
                break;
            }
        }
    }

    // A broken file is refused with file:line:col; nothing changes.
    let conf_path = ring.conf_path();
    let good = std::fs::read_to_string(&conf_path).unwrap();
    std::fs::write(
        &conf_path,
        format!("{good}Spread_Segment 127.0.0.255:1 {{\n  bogus\n"),
    )
    .unwrap();
    ring.signal(0, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ring.log(0).contains("reload refused") {
        assert!(Instant::now() < deadline, "no refusal in d1's log");
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = ring
        .log(0)
        .lines()
        .rfind(|l| l.contains("reload refused"))
        .unwrap()
        .to_string();
    let located = line.contains("spread.conf:");
    assert!(located, "refusal names file:line:col: {line}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        alice.recv_within(Duration::from_millis(100)).is_err(),
        "no notice after a refused reload"
    );
    ring.wait_for_ring(&[0, 1, 2, 3], &[0, 1, 2, 3], Duration::from_secs(1));

    // Shrink: d2 and d4 leave every file; they exit, d1 and d3 re-form.
    ring.write_conf(&[0, 2]);
    for i in 0..4 {
        ring.signal(i, "-HUP");
    }
    ring.wait_exit(1, Duration::from_secs(10));
    ring.wait_exit(3, Duration::from_secs(10));
    ring.wait_for_ring(&[0, 2], &[0, 2], REFORM_WITHIN);
    for c in [&mut alice, &mut carol] {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert!(Instant::now() < deadline, "no view of g without dan");
            if members_of(c, CAUSED_BY_NETWORK).len() == 2 {
                break;
            }
        }
    }
    // Traffic flows in one order afterwards.
    for k in 0..5u8 {
        alice.multicast(AGREED_MESS, &["g"], 0, &[b'a', k]);
        carol.multicast(AGREED_MESS, &["g"], 0, &[b'c', k]);
    }
    let mut seen = [Vec::new(), Vec::new()];
    for (n, c) in [&mut alice, &mut carol].into_iter().enumerate() {
        while seen[n].len() < 10 {
            let r = c
                .recv_within(Duration::from_secs(8))
                .expect("a message within 8 s");
            if !r.is_membership() {
                seen[n].push(r.body().to_vec());
            }
        }
    }
    assert_eq!(seen[0], seen[1], "one order at both daemons");
}
