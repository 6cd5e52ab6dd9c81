//! The membership algorithm alone: a packet store, a clock, datagrams in
//! and out; no ring.

use super::*;
use crate::ring_conf::{Channel, Conf, SegmentConf};
use spread_wire::daemon::{bits, rep_kind, MembersInfo, PacketHeader, RepsInfo};

use super::reps::tests::conf;

fn refer(id: u32, kind: i16) -> MembId {
    MembId {
        proc_id: id as i32,
        time: i32::from(kind),
    }
}

fn site(my_id: u32) -> Site {
    Site::new(my_id, conf(), 7, crate::configuration::MembershipTimeouts::LAN)
}

#[test]
fn only_gather_takes_a_refer_of_a_known_daemon_and_kind() {
    let mut m = Membership::new(site(1));
    m.handle_refer(refer(11, rep_kind::SEG));
    assert!(m.potential_reps.is_empty(), "OP ignores REFER");

    m.state = State::Gather;
    m.handle_refer(refer(99, rep_kind::SEG));
    m.handle_refer(refer(12, 7));
    assert!(m.potential_reps.is_empty(), "unknown daemon or kind ignored");

    m.handle_refer(refer(12, rep_kind::POTENTIAL));
    m.handle_refer(refer(11, rep_kind::SEG));
    let reps: Vec<_> = m
        .potential_reps
        .iter()
        .map(|r| (r.proc_id, r.kind, r.seg_index))
        .collect();
    // The SEG referral replaces segment 1's potential representative.
    assert_eq!(reps, [(11, rep_kind::SEG, 1)]);
}

#[test]
fn transitional_is_the_commit_sets_head_in_configuration_order() {
    let mut m = Membership::new(site(3));
    m.commit_set = CommitSet {
        members: vec![3, 2, 12, 1],
        num_trans: 2,
    };
    m.f_trans_memb_time = 42;
    m.build_transitional();
    assert_eq!(m.trans_membership.ids(), [2, 3]);
    assert_eq!(m.commit_membership.ids(), [1, 2, 3, 12]);
    assert_eq!(m.trans_memb_id, MembId { proc_id: 2, time: 42 });

    // An empty commit set: the transitional id falls back to me.
    m.commit_set = CommitSet::default();
    m.build_transitional();
    assert_eq!(m.trans_memb_id.proc_id, 3);
    assert!(m.trans_membership.ids().is_empty());
}

fn clock(t0: Instant, ms: u64) -> Clock {
    Clock::new(t0 + Duration::from_millis(ms), 1_700_000_000 + (ms / 1000) as u32)
}

/// Runs the membership's own timers until `until`, collecting what it sends.
fn run_until(m: &mut Membership, store: &PacketStore, t0: Instant, until_ms: u64) -> Vec<Transmit> {
    let mut sent = Vec::new();
    while let Some(at) = m.poll_timeout() {
        if at > t0 + Duration::from_millis(until_ms) {
            break;
        }
        let now = Clock::new(at, 1_700_000_000);
        assert!(m.handle_timeout(now, store));
        sent.extend(std::iter::from_fn(|| m.poll_transmit()));
    }
    sent
}

fn events(m: &mut Membership) -> Vec<MembershipEvent> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

#[test]
fn a_lone_daemon_forms_its_singleton_ring_through_its_own_form_tokens() {
    let lone = Conf::new(vec![SegmentConf {
        bcast: 0xff,
        port: 4803,
        daemons: vec![1],
    }]);
    let site = Site::new(1, lone, 7, crate::configuration::MembershipTimeouts::LAN);
    let t0 = Instant::now();
    let mut store = PacketStore::default();
    let mut m = Membership::start(site, clock(t0, 0), &mut store);
    assert_eq!(m.state(), State::Seg);
    assert_eq!(events(&mut m), [MembershipEvent::TokenLost]);

    // Alone in its segment it broadcasts nothing, gathers, and sends
    // itself a FORM1 that ends as a FORM2 (twice, as the original).
    let sent = run_until(&mut m, &store, t0, 60_000);
    assert_eq!(m.state(), State::Form);
    assert_eq!(events(&mut m), [MembershipEvent::FormSent]);
    let token = Destination::Daemon {
        id: 1,
        channel: Channel::Token,
    };
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|t| t.to == token));
    let form2 = wire::parse_form(&sent[0].bytes).expect("a FORM2");
    assert!(form2.header.kind & bits::FORM2 != 0);
    assert_eq!(form2.members.ids, [1]);

    let accepted = m
        .handle_form(clock(t0, 60_001), &sent[0].bytes, &mut store)
        .expect("well formed")
        .expect("my own FORM2 is accepted");
    assert_eq!(m.future_members().ids(), [1]);
    assert!(
        m.start_evs(clock(t0, 60_001), accepted, &mut store),
        "the last member starts the token"
    );
    assert_eq!(m.state(), State::Evs);
    assert!(m.token_alive());
    let first: Vec<_> = std::iter::from_fn(|| m.poll_transmit()).collect();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|t| t.to == token));

    m.build_transitional();
    m.install_regular(clock(t0, 60_002));
    assert_eq!(m.state(), State::Op);
    assert_eq!(m.members().ids(), [1]);
    assert!(m.take_just_installed() && !m.take_just_installed());
    assert!(m.timers.is_set(Timer::Lookup), "the leader looks for others");
}

#[test]
fn a_message_from_a_daemon_outside_the_configuration_is_rejected() {
    let t0 = Instant::now();
    let mut store = PacketStore::default();
    let mut m = Membership::start(site(1), clock(t0, 0), &mut store);
    let h = PacketHeader {
        kind: bits::ALIVE,
        transmitter: 99,
        proc_id: 99,
        ..Default::default()
    };
    let bytes = wire::emit_probe(
        &h,
        &MembersInfo {
            done: 1,
            ids: vec![99],
        },
        None,
    );
    assert_eq!(
        m.handle_message(clock(t0, 1), &h, &bytes, &mut store),
        Err(Rejected::UnknownDaemon(99))
    );
    let h = PacketHeader {
        kind: bits::JOIN,
        proc_id: 2,
        ..h
    };
    assert!(matches!(
        m.handle_message(clock(t0, 1), &h, &bytes[..wire::HEADER_LEN + 2], &mut store),
        Err(Rejected::MalformedJoin { from: 2, .. })
    ));
}

#[test]
fn a_daemon_looking_for_its_segment_follows_the_representative_that_joins_it() {
    let t0 = Instant::now();
    let mut store = PacketStore::default();
    let mut m = Membership::start(site(2), clock(t0, 0), &mut store);
    events(&mut m);
    assert_eq!(m.state(), State::Seg);
    let h = PacketHeader {
        kind: bits::JOIN,
        transmitter: 1,
        proc_id: 1,
        conf_hash: 7,
        ..Default::default()
    };
    let reps = RepsInfo {
        rep_index: 0,
        reps: vec![Rep {
            proc_id: 1,
            kind: rep_kind::SEG,
            seg_index: 0,
        }],
    };
    let join = wire::emit_probe(
        &h,
        &MembersInfo {
            done: 1,
            ids: vec![1],
        },
        Some(&reps),
    );
    m.handle_message(clock(t0, 5), &h, &join, &mut store).unwrap();
    assert_eq!(m.state(), State::Represented);
    assert_eq!(m.my_seg_rep, Some(1));
    // It answers with an ALIVE to its segment, and waits for its representative.
    let sent: Vec<_> = std::iter::from_fn(|| m.poll_transmit()).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, Destination::Segment(0));
    let (alive, _) = PacketHeader::parse(&sent[0].bytes).unwrap();
    assert_eq!((alive.kind & bits::ALIVE, alive.proc_id), (bits::ALIVE, 2));
    assert!(m.timers.is_set(Timer::ShiftToSeg));
    assert!(!m.timers.is_set(Timer::GatherOrRepresented));
    assert!(events(&mut m).is_empty(), "nothing for the ring to do");
}

#[test]
fn losing_the_token_in_evs_backs_the_store_off_its_agreed_holes() {
    let t0 = Instant::now();
    let mut store = PacketStore::default();
    let mut m = Membership::start(site(1), clock(t0, 0), &mut store);
    events(&mut m);
    m.state = State::Evs;
    m.token_alive = true;
    m.future_membership = m.site.conf.ordered([1, 2, 11]);
    store.highest_seq = 4;
    store.adopt(3, 4);
    store.mark_holes(&[2, 3]);
    m.token_loss(clock(t0, 10), &mut store);
    assert_eq!(events(&mut m), [MembershipEvent::TokenLost]);
    assert!(!store.has(2) && !store.has(3), "agreed holes forgotten");
    assert_eq!(store.aru, store.last_discarded);
    assert_eq!(m.state(), State::Seg);
    assert!(!m.token_alive());
    // It will probe the other segment's daemon of the ring it tried.
    assert_eq!(
        m.potential_reps.iter().map(|r| r.proc_id).collect::<Vec<_>>(),
        [11]
    );
}
