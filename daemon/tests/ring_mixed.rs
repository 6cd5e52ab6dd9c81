//! A ring that mixes the original C daemon (4.4.0) and ours on loopback
//! segments, as users replace one daemon at a time: the ring forms, clients
//! on either kind share groups with one order of AGREED and SAFE messages,
//! and a kill of either kind leaves a working ring that merges back when
//! the daemon returns.
//!
//! Opt-in: the original is not part of this repository and CI does not
//! build it. Set `SPREAD_REF_DAEMON` to its `sbin/spread` (or `REF_PREFIX`
//! to its install prefix, as for `../shared/bench`); without either the
//! tests say so and pass.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::loopback_ring::{LoopbackRing, FORM_WITHIN, REFORM_WITHIN};
use common::{Client, Received};
use spread_wire::client::service::*;

/// What the original needs here: run as root and chroot to a directory
/// that exists (it would drop to user "spread" in /var/run/spread), and
/// take its TCP port back at a restart while the old connections linger.
const EXTRA: &str = "DaemonUser = root\nDaemonGroup = root\nRuntimeDir = /tmp\nSocketPortReuse = ON\n";

fn original_daemon() -> Option<PathBuf> {
    let path = match (
        std::env::var_os("SPREAD_REF_DAEMON"),
        std::env::var_os("REF_PREFIX"),
    ) {
        (Some(d), _) => PathBuf::from(d),
        (None, Some(prefix)) => PathBuf::from(prefix).join("sbin/spread"),
        (None, None) => {
            eprintln!("skipped: set SPREAD_REF_DAEMON (or REF_PREFIX) to run a mixed ring with the original");
            return None;
        }
    };
    assert!(path.is_file(), "no original daemon at {}", path.display());
    Some(path)
}

/// `true` in slot `i` runs the original there, `false` ours.
fn start_mixed(original: &Path, kinds: &[bool]) -> LoopbackRing {
    let binaries: Vec<PathBuf> = kinds
        .iter()
        .map(|&c| {
            if c {
                original.to_path_buf()
            } else {
                common::daemon_binary()
            }
        })
        .collect();
    LoopbackRing::start_each(&binaries, "mixed", kinds.len(), EXTRA)
}

fn recv(c: &mut Client) -> Received {
    c.recv_within(Duration::from_secs(8))
        .expect("a message within 8 s")
}

/// One client per daemon joins `group`; returns once each has seen a
/// membership holding all of them: the daemons form one ring (the
/// original's log does not say so on one line, so the clients tell).
fn clients_on_one_ring(ring: &LoopbackRing, n: usize, group: &str, within: Duration) -> Vec<Client> {
    let mut clients: Vec<Client> = (0..n)
        .map(|i| Client::on_ring(ring, i, &format!("c{i}")))
        .collect();
    for c in clients.iter_mut() {
        c.join(group);
    }
    let deadline = Instant::now() + within;
    for c in clients.iter_mut() {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = c
                .recv_within(left)
                .unwrap_or_else(|e| panic!("no ring of {n} within {within:?}: {e:?}"));
            if r.service_type() & REG_MEMB_MESS != 0 && r.sender() == group && r.groups().len() == n {
                break;
            }
        }
    }
    clients
}

/// Every client sends `rounds` AGREED and SAFE messages; all see the same
/// order, FIFO per sender, SAFE within it.
fn one_order(clients: &mut [Client], group: &str, rounds: usize) {
    for round in 0..rounds {
        for (i, c) in clients.iter_mut().enumerate() {
            let service = if round.is_multiple_of(2) {
                AGREED_MESS
            } else {
                SAFE_MESS
            };
            c.multicast(service, &[group], i as i16, format!("m{round}-{i}").as_bytes());
        }
    }
    let total = rounds * clients.len();
    let orders: Vec<Vec<(u32, Vec<u8>)>> = clients
        .iter_mut()
        .map(|c| {
            (0..total)
                .map(|_| {
                    let r = recv(c);
                    (r.service_type(), r.body().to_vec())
                })
                .collect()
        })
        .collect();
    for o in &orders[1..] {
        assert_eq!(o, &orders[0], "two members saw different orders");
    }
    for i in 0..clients.len() {
        let own: Vec<Vec<u8>> = orders[0]
            .iter()
            .map(|(_, b)| b.clone())
            .filter(|b| b.ends_with(format!("-{i}").as_bytes()))
            .collect();
        let expected: Vec<Vec<u8>> = (0..rounds).map(|r| format!("m{r}-{i}").into_bytes()).collect();
        assert_eq!(own, expected, "sender {i} out of FIFO order");
    }
    for (service, body) in &orders[0] {
        let round: usize = std::str::from_utf8(&body[1..])
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let want = if round.is_multiple_of(2) {
            AGREED_MESS
        } else {
            SAFE_MESS
        };
        assert_eq!(service & (AGREED_MESS | SAFE_MESS), want);
    }
}

#[test]
fn ours_between_two_originals_forms_one_ring_with_one_order() {
    let Some(original) = original_daemon() else { return };
    let ring = start_mixed(&original, &[true, false, true]);
    let mut clients = clients_on_one_ring(&ring, 3, "g", FORM_WITHIN * 2);
    one_order(&mut clients, "g", 6);
}

#[test]
fn an_original_between_two_of_ours_forms_one_ring_with_one_order() {
    let Some(original) = original_daemon() else { return };
    let ring = start_mixed(&original, &[false, true, false]);
    let mut clients = clients_on_one_ring(&ring, 3, "g", FORM_WITHIN * 2);
    one_order(&mut clients, "g", 6);
}

/// The survivors' clients get the transitional notice, then a network
/// membership of the survivors only.
fn survivors_see_the_partition(clients: &mut [&mut Client], group: &str, members: &[&str]) {
    for c in clients.iter_mut() {
        let deadline = Instant::now() + REFORM_WITHIN * 2;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = c.recv_within(left).expect("a network notice");
            if r.service_type() & REG_MEMB_MESS != 0 && r.service_type() & CAUSED_BY_NETWORK != 0 {
                assert_eq!(r.sender(), group);
                assert_eq!(r.groups(), members);
                break;
            }
            assert!(
                r.service_type() & TRANSITION_MESS != 0,
                "only the transitional notice comes before: {:#x}",
                r.service_type()
            );
        }
    }
}

#[test]
fn a_kill_of_either_kind_leaves_a_working_ring_that_merges_back() {
    let Some(original) = original_daemon() else { return };
    let mut ring = start_mixed(&original, &[false, true, false]);
    let mut clients = clients_on_one_ring(&ring, 3, "g", FORM_WITHIN * 2);
    let mut third = clients.pop().unwrap();
    let mut second = clients.pop().unwrap();
    let mut first = clients.pop().unwrap();

    // The original (d2) dies: ours (d1, d3) carry on.
    ring.kill(1);
    drop(second);
    survivors_see_the_partition(&mut [&mut first, &mut third], "g", &["#c0#d1", "#c2#d3"]);
    first.multicast(SAFE_MESS, &["g"], 1, b"without the original");
    for c in [&mut first, &mut third] {
        assert_eq!(recv(c).body(), b"without the original");
    }

    // It comes back and merges; a client on it joins and is heard.
    ring.launch(1);
    second = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match std::net::TcpStream::connect(ring.addr(1)) {
                Ok(_) => break Client::on_ring(&ring, 1, "c1"),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("the original did not come back: {e}"),
            }
        }
    };
    second.join("g");
    let deadline = Instant::now() + REFORM_WITHIN * 2;
    for c in [&mut first, &mut third, &mut second] {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = c.recv_within(left).expect("the merged membership");
            if r.service_type() & REG_MEMB_MESS != 0 && r.groups().len() == 3 {
                assert_eq!(r.groups(), ["#c0#d1", "#c1#d2", "#c2#d3"]);
                break;
            }
        }
    }
    let mut all = [first, second, third];
    one_order(&mut all, "g", 4);

    // Now one of ours (d1) dies: the original and ours (d2, d3) carry on.
    let [first, mut second, mut third] = all;
    ring.kill(0);
    drop(first);
    survivors_see_the_partition(&mut [&mut second, &mut third], "g", &["#c1#d2", "#c2#d3"]);
    let mut two = [second, third];
    one_order(&mut two, "g", 4);
}
