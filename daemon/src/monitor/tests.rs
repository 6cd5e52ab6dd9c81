use super::*;
use spread_wire::monitor::{FcTable, PartitionTable};

fn id(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

fn cfg(dangerous: bool) -> MonitorConfig {
    let ids = vec![id("10.99.0.1"), id("10.99.0.2"), id("10.99.0.3")];
    MonitorConfig {
        my_id: ids[2],
        daemon_addrs: ids.iter().map(|&i| Ipv4Addr::from(i)).collect(),
        daemon_ids: ids,
        conf_hash: 778_066_868,
        dangerous,
    }
}

fn from() -> SocketAddr {
    "10.99.0.1:58934".parse().unwrap()
}

fn inputs() -> StatusInputs {
    StatusInputs {
        ring: crate::ring::RingStatus {
            state: 1,
            aru: 2,
            my_aru: 2,
            highest_seq: 2,
            token_rounds: 22,
            leader_id: id("10.99.0.1"),
            num_procs: 3,
            num_segments: 1,
            window: 160,
            personal_window: 20,
            accelerated_ring: false,
            accelerated_window: 15,
        },
        gstate: 1,
        num_sessions: 1,
        num_groups: 2,
        membership_changes: 2,
        ..StatusInputs::default()
    }
}

fn command(c: Command) -> Vec<u8> {
    CommandPacket::new(id("10.99.0.1"), 6543, c).emit(ByteOrder::Little)
}

#[test]
fn status_is_answered_to_the_queries_proc_id_and_port() {
    let now = Instant::now();
    let mut m = MonitorEngine::new(cfg(false), now);
    let q = command(Command::Status { body: vec![] });
    assert!(is_monitor_datagram(&q, 1));
    let Some(MonitorAction::Reply { to, datagram }) =
        m.handle(now + Duration::from_secs(11), from(), &q, inputs)
    else {
        panic!("no reply")
    };
    assert_eq!(to, "10.99.0.1:6543".parse().unwrap());
    assert_eq!(datagram.len(), 136);
    let (r, _) = StatusReply::parse(&datagram).unwrap();
    assert_eq!(r.header.proc_id, id("10.99.0.3"));
    assert_eq!(
        (r.header.conf_hash, r.header.seq, r.header.memb_id.proc_id),
        (0, 0, 0)
    );
    assert_eq!(r.status.sec, 11);
    assert_eq!(
        (r.status.num_procs, r.status.window, r.status.personal_window),
        (3, 160, 20)
    );
    assert_eq!(
        (
            r.status.major_version,
            r.status.minor_version,
            r.status.patch_version
        ),
        (4, 4, 0)
    );
    assert_eq!(r.status.my_id as u32, id("10.99.0.3"));
    assert!(r.extension.is_none());
}

#[test]
fn extension_only_when_asked() {
    let now = Instant::now();
    let mut m = MonitorEngine::new(cfg(false), now);
    let mut p = CommandPacket::new(id("10.99.0.1"), 7777, Command::Status { body: vec![] });
    p.header.token_round = spread_wire::monitor::EXTENSION_REQUEST;
    let mut i = inputs();
    i.ring_stats.dropped_datagrams = 7;
    let Some(MonitorAction::Reply { datagram, .. }) = m.handle(now, from(), &p.emit(ByteOrder::Big), || i)
    else {
        panic!()
    };
    let (r, _) = StatusReply::parse(&datagram).unwrap();
    let ext = r.extension.unwrap();
    assert!(ext.counters.contains(&("dropped_datagrams".to_string(), 7)));
}

#[test]
fn status_refused_for_foreign_proc_id_or_missing_magic() {
    let now = Instant::now();
    let mut m = MonitorEngine::new(cfg(false), now);
    let foreign = CommandPacket::new(id("10.99.0.9"), 6543, Command::Status { body: vec![] });
    assert_eq!(
        m.handle(now, from(), &foreign.emit(ByteOrder::Little), inputs),
        None
    );
    let mut no_magic = CommandPacket::new(id("10.99.0.1"), 6543, Command::Status { body: vec![] });
    no_magic.header.memb_id.proc_id = 0;
    assert_eq!(
        m.handle(now, from(), &no_magic.emit(ByteOrder::Little), inputs),
        None
    );
    // Magic 0 but a member transmitter: passes the component check, then
    // STATUS needs the magic (m08 case 9: no reply).
    no_magic.header.transmitter = id("10.99.0.2");
    assert_eq!(
        m.handle(now, from(), &no_magic.emit(ByteOrder::Little), inputs),
        None
    );
    // data_len 4 without a body (m08 case 7).
    let mut bad = command(Command::Status { body: vec![] });
    bad[32] = 4;
    assert_eq!(m.handle(now, from(), &bad, inputs), None);
    assert_eq!(m.handle(now, from(), &bad[..20], inputs), None);
    assert_eq!(m.stats().status_answered, 0);
}

#[test]
fn partition_terminate_and_fc_need_dangerous_monitor() {
    let now = Instant::now();
    let part = command(Command::Partition(Box::new(PartitionTable::from_entries(&[
        0, 0, 1,
    ]))));
    let term = command(Command::Partition(Box::new(PartitionTable::from_entries(&[
        0, 0, -1,
    ]))));
    let mut fc = FcTable([[0, 0]; 128]);
    fc.0[2] = [10, 5];
    fc.0[3] = [80, 0];
    let fc = command(Command::FlowControl(Box::new(fc)));
    let mut safe = MonitorEngine::new(cfg(false), now);
    for p in [&part, &term, &fc] {
        assert_eq!(safe.handle(now, from(), p, inputs), None);
    }
    let mut m = MonitorEngine::new(cfg(true), now);
    let Some(MonitorAction::SetPartition(Some(c))) = m.handle(now, from(), &part, inputs) else {
        panic!()
    };
    assert_eq!((c[&id("10.99.0.1")], c[&id("10.99.0.3")]), (0, 1));
    assert_eq!(m.poll_timeout(), Some(now + PARTITION_TIMEOUT));
    assert_eq!(m.handle_timeout(now + Duration::from_secs(59)), None);
    assert_eq!(
        m.handle_timeout(now + PARTITION_TIMEOUT),
        Some(MonitorAction::SetPartition(None))
    );
    assert_eq!(
        m.handle(now, from(), &term, inputs),
        Some(MonitorAction::Terminate)
    );
    assert_eq!(
        m.handle(now, from(), &fc, inputs),
        Some(MonitorAction::FlowControl {
            window: Some(80),
            personal_window: Some(10),
            accelerated_window: Some(5)
        })
    );
    // The same commands from an address outside the configuration.
    let outsider: SocketAddr = "192.0.2.7:4000".parse().unwrap();
    assert_eq!(m.handle(now, outsider, &part, inputs), None);
    assert_eq!(m.handle(now, outsider, &fc, inputs), None);
    let cancel = command(Command::Partition(Box::new(PartitionTable::NONE)));
    assert_eq!(
        m.handle(now, from(), &cancel, inputs),
        Some(MonitorAction::SetPartition(None))
    );
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn reload_is_honoured_without_magic_from_a_member_transmitter_only() {
    let now = Instant::now();
    let mut m = MonitorEngine::new(cfg(false), now);
    assert_eq!(
        m.handle(now, from(), &command(Command::Reload { body: vec![] }), inputs),
        Some(MonitorAction::Reload)
    );
    let mut p = CommandPacket::new(id("10.99.0.2"), 6543, Command::Reload { body: vec![] });
    p.header.memb_id.proc_id = 0;
    assert_eq!(m.handle(now, from(), &p.emit(ByteOrder::Little), inputs), None);
    p.header.transmitter = id("10.99.0.1");
    assert_eq!(
        m.handle(now, from(), &p.emit(ByteOrder::Little), inputs),
        Some(MonitorAction::Reload)
    );
}

#[test]
fn a_status_flood_is_answered_up_to_the_rate_limit() {
    let now = Instant::now();
    let mut m = MonitorEngine::new(cfg(false), now);
    let q = command(Command::Status { body: vec![] });
    let answered = (0..10_000)
        .filter(|_| m.handle(now, from(), &q, inputs).is_some())
        .count();
    assert_eq!(answered, STATUS_REPLIES_PER_SECOND as usize);
    assert_eq!(
        m.stats().status_rate_limited,
        10_000 - u64::from(STATUS_REPLIES_PER_SECOND)
    );
    // A second later the daemon answers again.
    assert!(m
        .handle(now + Duration::from_secs(1), from(), &q, inputs)
        .is_some());
}

#[test]
fn captured_queries_of_the_original_are_answered() {
    // m01 little-endian and m08 big-endian queries, m08 4-byte body.
    for h in [
        "80000081000000000100630abbace500000000008f190000000000004c0400000000000000000000",
        "01000000000000000a63000100e5acbb0000000000001e61000000000000044c0000000000000000",
        "80000081000000000100630abbace50000000000611e0000000000004c040000040000000000000001020304",
    ] {
        let bytes: Vec<u8> = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect();
        let now = Instant::now();
        let mut m = MonitorEngine::new(cfg(false), now);
        assert!(is_monitor_datagram(&bytes, 0), "{h}");
        assert!(
            matches!(
                m.handle(now, from(), &bytes, inputs),
                Some(MonitorAction::Reply { .. })
            ),
            "{h}"
        );
    }
}

/// Mutated and truncated commands of every kind, both settings: the engine
/// never panics, and every reply it sends is a well-formed status reply.
#[test]
fn mangled_commands_never_panic() {
    let now = Instant::now();
    let mut engines = [
        MonitorEngine::new(cfg(false), now),
        MonitorEngine::new(cfg(true), now),
    ];
    let seeds = [
        command(Command::Status { body: vec![] }),
        command(Command::Reload { body: vec![] }),
        command(Command::Partition(Box::new(PartitionTable::from_entries(&[
            0, 1, -1,
        ])))),
        command(Command::FlowControl(Box::new(FcTable::KEEP_ALL))),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..20_000u32 {
        let mut bytes = seeds[round as usize % seeds.len()].clone();
        for _ in 0..(next() % 6) {
            let at = next() as usize % bytes.len();
            bytes[at] = next() as u8;
        }
        if next() % 4 == 0 {
            bytes.truncate(next() as usize % (bytes.len() + 1));
        }
        let t = now + Duration::from_millis(u64::from(round));
        for m in engines.iter_mut() {
            if let Some(MonitorAction::Reply { datagram, .. }) = m.handle(t, from(), &bytes, inputs) {
                assert!(StatusReply::parse(&datagram).is_ok());
            }
            let _ = m.handle_timeout(t);
        }
    }
}
