//! Two whole engines with a ring between them on a virtual clock, and
//! clients speaking the client protocol to them.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use spread_wire::client::service::*;
use spread_wire::client::{
    hint_for, AuthChoice, AuthMethodList, ConnectRequest, GroupName, Message, MessageHeader, SessionReply,
};
use spread_wire::endian::ByteOrder;

use super::{Engine, EngineConfig, Sequencer};
use crate::clock::Clock;
use crate::ring::{Channel, Destination, Outgoing, PacketType, RingParams, SegmentConf};
use crate::session::{ConnId, Peer};

const IDS: [u32; 2] = [0x0a00_0001, 0x0a00_0002];

fn name(i: usize) -> String {
    format!("d{}", i + 1)
}

/// Two daemons d1 and d2 in one segment; datagrams arrive at once.
struct Pair {
    engines: Vec<Engine>,
    base: Clock,
    now: Duration,
    wire: VecDeque<(usize, Channel, Vec<u8>)>,
}

impl Pair {
    /// One engine alone in its configuration (`cfg`), on a fresh clock.
    fn alone(cfg: EngineConfig) -> Pair {
        let base = Clock::new(Instant::now(), 1_700_000_000);
        Pair {
            engines: vec![Engine::new(cfg, base)],
            base,
            now: Duration::ZERO,
            wire: VecDeque::new(),
        }
    }

    fn new() -> Pair {
        let base = Clock::new(Instant::now(), 1_700_000_000);
        let engines = (0..2)
            .map(|i| {
                let mut cfg = EngineConfig::new(&name(i), Ipv4Addr::from(IDS[i]));
                cfg.daemon_rank = i as u32;
                cfg.daemon_names = (0..2).map(|k| name(k).into_bytes()).collect();
                cfg.daemon_ids = IDS.iter().map(|&id| id as i32).collect();
                let seg = SegmentConf {
                    bcast: 0x0a00_00ff,
                    port: 4803,
                    daemons: IDS.to_vec(),
                };
                Engine::with_ring(cfg, RingParams::new(IDS[i], vec![seg], 7), base)
            })
            .collect();
        Pair {
            engines,
            base,
            now: Duration::ZERO,
            wire: VecDeque::new(),
        }
    }

    fn clock(&self) -> Clock {
        Clock::after(self.base, self.now)
    }

    fn collect(&mut self) {
        for from in 0..2 {
            while let Some(tx) = self.engines[from].poll_transmit() {
                match tx.to {
                    Destination::Segment(_) => self.wire.push_back((1 - from, Channel::Data, tx.bytes)),
                    Destination::Daemon { id, channel } => {
                        if let Some(to) = IDS.iter().position(|&d| d == id) {
                            self.wire.push_back((to, channel, tx.bytes));
                        }
                    }
                }
            }
        }
    }

    /// Runs datagrams and timers for `d` of virtual time.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.collect();
            if let Some((to, channel, bytes)) = self.wire.pop_front() {
                let now = self.clock();
                self.engines[to].handle_datagram(channel, &bytes, now);
                continue;
            }
            let next = self
                .engines
                .iter()
                .filter_map(|e| e.poll_timeout())
                .min()
                .map(|t| t.saturating_duration_since(self.base.mono));
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.clock();
                    for e in &mut self.engines {
                        if e.poll_timeout().is_some_and(|t| t <= now.mono) {
                            e.handle_timeout(now);
                        }
                    }
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// Everything a client has been sent, consumed.
    fn take_output(&mut self, i: usize, conn: ConnId) -> Vec<u8> {
        let out: Vec<u8> = self.engines[i].output_chunks(conn).flatten().copied().collect();
        self.engines[i].consume_output(conn, out.len());
        out
    }

    /// A client `who` at daemon `i`, through the handshake.
    fn connect(&mut self, i: usize, conn: ConnId, who: &str) -> GroupName {
        let now = self.clock();
        self.engines[i].handle_accept(conn, Peer::Unix, conn as i32, now);
        let request = ConnectRequest::new(who.as_bytes(), true, 0).emit();
        self.engines[i].handle_client_data(conn, &request, now);
        let list = self.take_output(i, conn);
        AuthMethodList::parse(&list).expect("auth methods offered");
        self.engines[i].handle_client_data(conn, &AuthChoice::new(&["NULL"]).emit(), now);
        let accept = self.take_output(i, conn);
        match SessionReply::parse(&accept, true) {
            Ok((SessionReply::Accept { private_group, .. }, _)) => private_group,
            other => panic!("session not accepted: {other:?}"),
        }
    }

    fn join(&mut self, i: usize, conn: ConnId, me: GroupName, group: &str) {
        let group = GroupName::new(group.as_bytes()).expect("group name");
        let msg = Message {
            header: control_header(JOIN_MESS, me, 1),
            groups: vec![group],
            body: Vec::new(),
        };
        let now = self.clock();
        self.engines[i].handle_client_data(conn, &msg.emit(ByteOrder::NATIVE), now);
    }

    /// Puts raw bytes on the ring from daemon `i`, unchecked, as a peer
    /// that does not validate its clients (or a broken one) would.
    fn submit_raw(&mut self, i: usize, bytes: Vec<u8>) {
        let now = self.clock();
        let Sequencer::Ring(ring) = &mut self.engines[i].sequencer else {
            panic!("a ring engine");
        };
        ring.submit(
            now,
            Outgoing {
                packet_type: PacketType::Agreed,
                bytes,
            },
        );
    }
}

fn control_header(service_type: u32, sender: GroupName, num_groups: i32) -> MessageHeader {
    MessageHeader {
        service_type,
        sender,
        num_groups,
        hint: hint_for(0, ByteOrder::NATIVE),
        data_len: 0,
    }
}

/// Membership notices in what a client was sent: (group, members).
fn views(bytes: &[u8]) -> Vec<(GroupName, Vec<GroupName>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Ok((msg, _, used)) = Message::parse(rest) {
        if msg.header.service_type & REG_MEMB_MESS != 0 {
            out.push((
                msg.header.sender.clean(),
                msg.groups.iter().map(|g| g.clean()).collect(),
            ));
        }
        rest = &rest[used..];
    }
    out
}

/// A JOIN or LEAVE with no group that comes off the ring from another
/// daemon is logged and dropped; the daemon carries on serving its clients
/// and the ring.
#[test]
fn a_join_without_a_group_from_the_ring_is_dropped_and_the_daemon_carries_on() {
    let mut pair = Pair::new();
    pair.run_for(Duration::from_secs(10));
    for e in &pair.engines {
        let Sequencer::Ring(ring) = &e.sequencer else {
            unreachable!()
        };
        assert_eq!(ring.membership().1, IDS, "the ring of two formed");
        assert!(!e.exchanging, "the groups exchange finished");
    }
    let alice = pair.connect(0, 1, "alice");
    pair.join(0, 1, alice, "g1");
    pair.run_for(Duration::from_secs(1));
    let seen = views(&pair.take_output(0, 1));
    assert!(
        seen.iter().any(|(g, m)| g.as_bytes() == b"g1" && m == &[alice]),
        "{seen:?}"
    );

    // From d2: a session of d2 joins and leaves no group.
    let bob = GroupName::private_group(b"bob", b"d2");
    for kind in [JOIN_MESS, LEAVE_MESS] {
        let bytes = control_header(kind, bob, 0).emit(ByteOrder::NATIVE).to_vec();
        pair.submit_raw(1, bytes);
    }
    // And one that claims a session of d1 though d2 sent it.
    let forged = GroupName::private_group(b"mallory", b"d1");
    let mut bytes = control_header(JOIN_MESS, forged, 1)
        .emit(ByteOrder::NATIVE)
        .to_vec();
    bytes.extend_from_slice(GroupName::new(b"g1").unwrap().raw());
    pair.submit_raw(1, bytes);
    pair.run_for(Duration::from_secs(1));
    assert_eq!(pair.engines[0].dropped_ring_messages(), 3);
    assert_eq!(pair.engines[1].dropped_ring_messages(), 3);
    assert!(views(&pair.take_output(0, 1)).is_empty(), "nothing changed in g1");

    // Both daemons still serve: a client of d2 joins g1 and alice sees it.
    let carol = pair.connect(1, 2, "carol");
    pair.join(1, 2, carol, "g1");
    pair.run_for(Duration::from_secs(1));
    let seen = views(&pair.take_output(0, 1));
    assert!(
        seen.iter()
            .any(|(g, m)| g.as_bytes() == b"g1" && m.contains(&alice) && m.contains(&carol)),
        "{seen:?}"
    );
}

/// Datagrams to the data port in the captures of the original's rings.
fn captured_data_datagrams() -> Option<Vec<Vec<u8>>> {
    // `../shared` next to the repository, or where SPREAD4_WIRE says.
    let dir = std::env::var_os("SPREAD4_WIRE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spread4-wire"))
        .join("daemon");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "captures missing under CI"
        );
        eprintln!("skipping: no captures at {}", dir.display());
        return None;
    };
    let mut out = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        for line in text.lines() {
            let field = |key: &str| -> Option<&str> {
                let at = line.find(&format!("\"{key}\": \""))? + key.len() + 5;
                Some(&line[at..at + line[at..].find('"')?])
            };
            let (Some(dst), Some(hex)) = (field("dst"), field("hex")) else {
                continue;
            };
            if dst.ends_with(":4803") {
                out.push(
                    (0..hex.len() / 2)
                        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                        .collect(),
                );
            }
        }
    }
    Some(out)
}

/// What the original's daemons put on the ring passes the ring check:
/// every whole client message in the captures (data and joins; they hold
/// no leave or disconnect), from the daemon that sent it (10.99.0.k is dk).
#[test]
fn the_originals_ring_messages_pass_the_ring_check() {
    use crate::session::validate_ring_header;
    use spread_wire::daemon::DataPacket;
    let Some(datagrams) = captured_data_datagrams() else {
        return;
    };
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for b in &datagrams {
        let Ok((packet, _)) = DataPacket::parse(b) else {
            continue;
        };
        let daemon = format!("d{}", packet.header.proc_id & 0xff);
        for f in packet.fragments.iter().filter(|f| f.index == -1) {
            let (header, _) = MessageHeader::parse(&f.bytes).expect("a message header");
            let t = header.service_type;
            if t & GROUPS_MESS != 0 {
                continue;
            }
            if let Err(e) = validate_ring_header(&header, daemon.as_bytes()) {
                panic!("{header:?} from {daemon}: {e}");
            }
            let kind = match t {
                t if t & JOIN_MESS != 0 => "join",
                t if t & LEAVE_MESS != 0 => "leave",
                t if t & KILL_MESS != 0 => "kill",
                _ => "data",
            };
            *seen.entry(kind).or_default() += 1;
        }
    }
    eprintln!("checked {seen:?}");
    for k in ["join", "data"] {
        assert!(seen.contains_key(k), "no {k} in the captures");
    }
}

/// A message of `size` body bytes from `me` to `group`.
fn data_message(me: GroupName, group: &str, size: usize) -> Vec<u8> {
    Message {
        header: MessageHeader {
            service_type: AGREED_MESS,
            sender: me,
            num_groups: 1,
            hint: hint_for(0, ByteOrder::NATIVE),
            data_len: size as i32,
        },
        groups: vec![GroupName::new(group.as_bytes()).expect("group name")],
        body: vec![b'x'; size],
    }
    .emit(ByteOrder::NATIVE)
}

/// One daemon alone, driven as the shell drives it: a sender, a reader
/// that consumes, a reader that does not.
#[test]
fn a_consuming_receiver_pauses_the_senders_and_a_silent_one_only_for_a_second() {
    let cfg = EngineConfig::new("d1", Ipv4Addr::from(IDS[0]));
    let (high, low, cut) = (500, 250, cfg.max_session_messages);
    let mut pair = Pair::alone(cfg);
    let base = pair.base;
    let sender = pair.connect(0, 1, "sender");
    let live = pair.connect(0, 2, "live");
    let silent = pair.connect(0, 3, "silent");
    pair.join(0, 2, live, "g");
    pair.join(0, 3, silent, "g");
    pair.take_output(0, 2);
    pair.take_output(0, 3);
    let t0 = pair.clock();
    let e = &mut pair.engines[0];
    // A connection still in its handshake.
    e.handle_accept(4, Peer::Unix, 4, t0);
    let burst = |e: &mut Engine, n: usize, now: Clock| {
        let bytes: Vec<u8> = (0..n).flat_map(|_| data_message(sender, "g", 100)).collect();
        e.handle_client_data(1, &bytes, now);
    };
    let queued = |e: &Engine, conn: ConnId| e.sessions[&conn].queued_messages();
    // Written what the socket took (nothing): the shell asks.
    let flushed = |e: &mut Engine, now: Clock| {
        e.check_backlog(2, now);
        e.check_backlog(3, now);
    };

    burst(e, high - 1, t0);
    flushed(e, t0);
    assert!(!e.reading_paused(t0), "below the high-water mark");
    burst(e, 1, t0);
    flushed(e, t0);
    assert!(e.reading_paused(t0));
    assert!(!e.may_read(1, t0), "the sender is not read");
    assert!(e.may_read(4, t0), "a handshake is read");
    e.handle_client_closed(4, t0);
    while e.poll_output().is_some() {}

    // The live reader consumes down to just above low water: still paused.
    let at = |d: u64| Clock::after(base, t0.mono - base.mono + Duration::from_millis(d));
    let bytes_of = |e: &Engine, conn: ConnId, msgs: usize| -> usize {
        e.sessions[&conn]
            .output_chunks()
            .take(msgs)
            .map(|c| c.len())
            .sum()
    };
    let n = bytes_of(e, 2, high - low - 1);
    e.consume_output(2, n);
    e.check_backlog(2, at(500));
    assert_eq!(queued(e, 2), low + 1);
    // ... the silent one holds the senders back until its second is up.
    assert!(e.reading_paused(at(500)));
    let n = bytes_of(e, 2, 1);
    e.consume_output(2, n);
    e.check_backlog(2, at(500));
    assert!(e.reading_paused(at(500)), "the silent reader, for 1 s");
    assert_eq!(e.poll_timeout(), Some(t0.mono + super::STALL));
    e.handle_timeout(at(1000));
    assert!(!e.reading_paused(at(1000)));
    assert!(e.may_read(1, at(1000)));
    assert_eq!(e.poll_timeout(), None, "no timer for a stalled reader");

    // Reading resumes: the live reader falls behind again and pauses the
    // sender; the silent one passes the cut and is dropped.
    burst(e, cut + 1 - high, at(1100));
    flushed(e, at(1100));
    assert!(!e.sessions.contains_key(&3), "the silent reader was cut");
    let closed: Vec<_> = std::iter::from_fn(|| e.poll_output())
        .filter_map(|o| match o {
            super::Output::Close { conn, .. } => Some(conn),
            _ => None,
        })
        .collect();
    assert_eq!(closed, vec![3]);
    // The burst, and the notice that the silent reader left g.
    assert_eq!(queued(e, 2), low + (cut + 1 - high) + 1);
    assert!(e.reading_paused(at(1100)), "the live reader is far behind");
    // It reads on, slowly (within every second): the pause lasts.
    for k in 1..=3u64 {
        let n = bytes_of(e, 2, 10);
        e.consume_output(2, n);
        e.check_backlog(2, at(1100 + 900 * k));
        e.handle_timeout(at(1100 + 900 * k));
        assert!(e.reading_paused(at(1100 + 900 * k)), "round {k}");
    }
    let n = bytes_of(e, 2, queued(e, 2) - low);
    e.consume_output(2, n);
    e.check_backlog(2, at(5000));
    assert!(!e.reading_paused(at(5000)), "caught up to low water");
}

/// `ReceiverBackPressure = false` (spread-rs.toml) is the original's behaviour: a receiver
/// that reads, only slower than the sender writes, never pauses the sender
/// and is cut at MaxSessionMessages.
#[test]
fn without_receiver_back_pressure_a_slow_reader_is_cut_and_never_pauses_the_sender() {
    let mut cfg = EngineConfig::new("d1", Ipv4Addr::from(IDS[0]));
    cfg.receiver_back_pressure = false;
    let cut = cfg.max_session_messages;
    let mut pair = Pair::alone(cfg);
    let sender = pair.connect(0, 1, "sender");
    let slow = pair.connect(0, 2, "slow");
    pair.join(0, 2, slow, "g");
    pair.take_output(0, 2);
    let t0 = pair.clock();
    let e = &mut pair.engines[0];
    let mut sent = 0;
    while sent < cut && e.sessions.contains_key(&2) {
        let bytes: Vec<u8> = (0..50).flat_map(|_| data_message(sender, "g", 100)).collect();
        e.handle_client_data(1, &bytes, t0);
        sent += 50;
        // It reads one message per burst: consuming, but falling behind.
        let n: usize = e.sessions[&2].output_chunks().take(1).map(|c| c.len()).sum();
        e.consume_output(2, n);
        e.check_backlog(2, t0);
        assert!(!e.reading_paused(t0), "paused with {sent} sent");
    }
    let bytes: Vec<u8> = (0..100).flat_map(|_| data_message(sender, "g", 100)).collect();
    e.handle_client_data(1, &bytes, t0);
    e.check_backlog(2, t0);
    assert!(!e.sessions.contains_key(&2), "the slow reader is cut at {cut}");
    assert!(!e.reading_paused(t0));
}

/// The queue toward the ring pauses the senders at the original's water
/// mark and releases them once the ring has taken the messages.
#[test]
fn the_queue_toward_the_ring_pauses_the_senders_at_its_water_mark() {
    let mut pair = Pair::new();
    pair.run_for(Duration::from_secs(10));
    let sender = pair.connect(0, 1, "sender");
    let now = pair.clock();
    // The leader holds the idle ring's token: the first message leaves on
    // it at once, the rest wait for its next visit.
    let bytes: Vec<u8> = (0..super::RING_WATER_MARK + 1)
        .flat_map(|_| data_message(sender, "g", 100))
        .collect();
    pair.engines[0].handle_client_data(1, &bytes, now);
    assert!(pair.engines[0].messages_toward_ring() >= super::RING_WATER_MARK);
    assert!(pair.engines[0].reading_paused(now));
    assert!(!pair.engines[0].may_read(1, now));
    pair.run_for(Duration::from_secs(1));
    assert_eq!(pair.engines[0].messages_toward_ring(), 0);
    assert!(!pair.engines[0].reading_paused(pair.clock()));
}

/// STATUS counts sessions as the original does: from the accept on, not
/// while connecting.
#[test]
fn only_accepted_sessions_are_counted() {
    let cfg = EngineConfig::new("d1", Ipv4Addr::from(IDS[0]));
    let mut pair = Pair::alone(cfg);
    let now = pair.clock();
    pair.engines[0].handle_accept(7, Peer::Unix, 7, now);
    assert_eq!(
        pair.engines[0].session_count(),
        0,
        "a connection in its handshake"
    );
    pair.connect(0, 1, "alice");
    assert_eq!(pair.engines[0].session_count(), 1);
    pair.engines[0].handle_client_closed(7, now);
    assert_eq!(pair.engines[0].session_count(), 1);
}

/// The engine's ordered connect deadlines are exactly those of the
/// sessions still waiting for their connect request, whichever way a
/// session leaves that phase, so the next deadline is a real one and a
/// silent client still goes at its own.
#[test]
fn connect_deadlines_are_those_of_the_sessions_still_connecting() {
    use crate::session::Phase;
    let cfg = EngineConfig::new("d1", Ipv4Addr::from(IDS[0]));
    let mut pair = Pair::alone(cfg);
    let base = pair.base;
    let check = |e: &Engine| {
        let mut waiting: Vec<(Instant, ConnId)> = e
            .sessions
            .values()
            .filter_map(|s| match s.phase {
                Phase::AwaitConnect { deadline } => Some((deadline, s.conn)),
                _ => None,
            })
            .collect();
        waiting.sort();
        let kept: Vec<(Instant, ConnId)> = e.connect_deadlines.iter().copied().collect();
        assert_eq!(kept, waiting, "the kept deadlines are the sessions' own");
        assert_eq!(e.poll_timeout(), kept.first().map(|&(d, _)| d));
        kept.into_iter().map(|(_, conn)| conn).collect::<Vec<_>>()
    };
    let ms = |n| base.mono + Duration::from_millis(n);
    let accept = |pair: &mut Pair, at: u64, conn: ConnId| {
        pair.now = Duration::from_millis(at);
        let now = pair.clock();
        pair.engines[0].handle_accept(conn, Peer::Unix, conn as i32, now);
        now
    };
    // Through the whole handshake.
    pair.connect(0, 1, "alice");
    assert_eq!(check(&pair.engines[0]), Vec::<ConnId>::new());
    assert_eq!(pair.engines[0].poll_timeout(), None);
    // Silent.
    accept(&mut pair, 100, 2);
    // On to the auth exchange.
    let now = accept(&mut pair, 200, 3);
    let request = ConnectRequest::new(b"bob", true, 0).emit();
    pair.engines[0].handle_client_data(3, &request, now);
    // Closed before its request.
    let now = accept(&mut pair, 300, 4);
    pair.engines[0].handle_client_closed(4, now);
    // A record that is not one connect request.
    let now = accept(&mut pair, 400, 5);
    pair.engines[0].reject_record(5, "test", now);
    // A request cut short.
    let now = accept(&mut pair, 500, 6);
    pair.engines[0].handle_client_data(6, &[4, 4], now);
    // Silent.
    accept(&mut pair, 600, 7);
    // A private name in use.
    let now = accept(&mut pair, 700, 8);
    let request = ConnectRequest::new(b"alice", true, 0).emit();
    pair.engines[0].handle_client_data(8, &request, now);
    // A library older than the auth exchange, accepted at once.
    let now = accept(&mut pair, 800, 9);
    let request = ConnectRequest {
        version: spread_wire::client::Version::new(3, 15, 0),
        ..ConnectRequest::new(b"carol", true, 0)
    };
    pair.engines[0].handle_client_data(9, &request.emit(), now);
    assert!(pair.engines[0].sessions[&9].is_operational());
    assert_eq!(check(&pair.engines[0]), vec![2, 7]);
    assert_eq!(pair.engines[0].poll_timeout(), Some(ms(1100)));
    while pair.engines[0].poll_output().is_some() {}

    // Each silent one goes at its deadline, not before.
    pair.engines[0].handle_timeout(Clock::after(base, Duration::from_millis(1099)));
    assert_eq!(check(&pair.engines[0]), vec![2, 7]);
    pair.engines[0].handle_timeout(Clock::after(base, Duration::from_millis(1100)));
    assert_eq!(check(&pair.engines[0]), vec![7]);
    assert!(pair.engines[0]
        .poll_output()
        .is_some_and(|o| matches!(o, super::Output::Close { conn: 2, .. })));
    assert_eq!(pair.engines[0].poll_timeout(), Some(ms(1600)));
    pair.engines[0].handle_timeout(Clock::after(base, Duration::from_millis(1600)));
    assert_eq!(check(&pair.engines[0]), Vec::<ConnId>::new());
    assert_eq!(pair.engines[0].poll_timeout(), None);
    let left: Vec<ConnId> = {
        let mut v: Vec<ConnId> = pair.engines[0].sessions.keys().copied().collect();
        v.sort();
        v
    };
    assert_eq!(
        left,
        vec![1, 3, 9],
        "the connected ones and the one in its auth exchange stay"
    );
}
