//! Three real daemons on loopback segments (127.0.0.1/2/3, one port per
//! segment): the ring forms within the original's timeouts, clients on
//! different daemons share groups with one message order, a killed daemon
//! leaves a ring of two with network notices at the survivors' clients, and
//! its restart merges back.

mod common;

use std::time::Duration;

use common::loopback_ring::{LoopbackRing, FORM_WITHIN, REFORM_WITHIN};
use common::{Client, Received};
use spread_wire::client::service::*;

fn start_ring() -> LoopbackRing {
    LoopbackRing::start(common::daemon_binary(), "ring", 3, 3, "")
}

fn recv(c: &mut Client) -> Received {
    c.recv_within(Duration::from_secs(8))
        .expect("a message within 8 s")
}

fn recv_membership(c: &mut Client, cause: u32) -> Received {
    c.recv_membership(cause, Duration::from_secs(10))
}

#[test]
fn three_daemons_form_a_ring_and_share_groups_in_one_order() {
    let ring = start_ring();
    ring.wait_for_ring(&[0, 1, 2], &[0, 1, 2], FORM_WITHIN);

    let mut clients: Vec<Client> = (0..3)
        .map(|i| Client::on_ring(&ring, i, &format!("c{i}")))
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.join("g");
        // Wait for our own join before the next client joins: a fixed order.
        loop {
            let r = recv(c);
            if r.service_type() & CAUSED_BY_JOIN != 0 && r.groups().len() == i + 1 {
                break;
            }
        }
    }
    // Earlier members see the later joins.
    for (i, c) in clients.iter_mut().enumerate() {
        for _ in i + 1..3 {
            let r = recv_membership(c, CAUSED_BY_JOIN);
            assert_eq!(r.sender(), "g");
        }
    }
    // Everyone multicasts AGREED; everyone sees the same order.
    for round in 0..5 {
        for (i, c) in clients.iter_mut().enumerate() {
            c.multicast(AGREED_MESS, &["g"], i as i16, format!("m{round}-{i}").as_bytes());
        }
    }
    let orders: Vec<Vec<Vec<u8>>> = clients
        .iter_mut()
        .map(|c| (0..15).map(|_| recv(c).body().to_vec()).collect())
        .collect();
    assert_eq!(orders[0], orders[1]);
    assert_eq!(orders[1], orders[2]);
    // FIFO per sender inside the total order.
    for i in 0..3 {
        let own: Vec<&Vec<u8>> = orders[0]
            .iter()
            .filter(|b| b.ends_with(format!("-{i}").as_bytes()))
            .collect();
        let expected: Vec<Vec<u8>> = (0..5).map(|r| format!("m{r}-{i}").into_bytes()).collect();
        assert_eq!(own.into_iter().cloned().collect::<Vec<_>>(), expected);
    }
}

#[test]
fn killed_daemon_leaves_a_ring_of_two_and_merges_back_on_restart() {
    let mut ring = start_ring();
    ring.wait_for_ring(&[0, 1, 2], &[0, 1, 2], FORM_WITHIN);
    let mut a = Client::on_ring(&ring, 0, "alice");
    let mut b = Client::on_ring(&ring, 1, "bob");
    let mut d = Client::on_ring(&ring, 2, "dave");
    for c in [&mut a, &mut b, &mut d] {
        c.join("g");
    }
    for c in [&mut a, &mut b] {
        // Joins arrive in the ring's order: wait for the view of three.
        while recv_membership(c, CAUSED_BY_JOIN).groups().len() < 3 {}
    }

    ring.kill(2);
    drop(d);
    ring.wait_for_ring(&[0, 1], &[0, 1], REFORM_WITHIN);
    let mut seen = Vec::new();
    for c in [&mut a, &mut b] {
        let t = recv(c);
        assert_eq!(t.service_type(), TRANSITION_MESS, "transitional notice first");
        let n = recv_membership(c, CAUSED_BY_NETWORK);
        let body = n.membership();
        assert_eq!(n.groups(), vec!["#alice#d1".to_string(), "#bob#d2".to_string()]);
        assert_eq!(body.vs_sets.len(), 1, "the survivors moved together");
        assert_eq!(body.vs_sets[0].len(), 2);
        assert_eq!(body.group_id.index, 1);
        seen.push(body.group_id);
    }
    assert_eq!(seen[0], seen[1], "both survivors report the same view");

    // Traffic still flows between the survivors.
    a.multicast(SAFE_MESS, &["g"], 7, b"after the crash");
    assert_eq!(recv(&mut b).body(), b"after the crash");
    assert_eq!(recv(&mut a).body(), b"after the crash");

    ring.launch(2);
    ring.wait_for_ring(&[0, 1, 2], &[0, 1, 2], REFORM_WITHIN);
    let mut e = Client::on_ring(&ring, 2, "erin");
    e.join("g");
    for c in [&mut a, &mut b, &mut e] {
        let r = recv_membership(c, CAUSED_BY_JOIN);
        assert_eq!(
            r.groups(),
            vec![
                "#alice#d1".to_string(),
                "#bob#d2".to_string(),
                "#erin#d3".to_string()
            ]
        );
        assert_eq!(
            r.membership().group_id.memb_id,
            seen[0].memb_id,
            "a merge without members keeps the view"
        );
    }
    e.multicast(AGREED_MESS, &["g"], 1, b"hello from the restarted daemon");
    for c in [&mut a, &mut b, &mut e] {
        assert_eq!(recv(c).body(), b"hello from the restarted daemon");
    }
}
