//! Whole daemons on the simulated network: each node runs the daemon's
//! sans-IO [`Engine`] (sessions, groups, ring), and simulated clients talk
//! to it with the real client protocol bytes (connect request, auth choice,
//! join/leave/multicast/disconnect as the C library sends them). Everything
//! a client reads is decoded with `spread_wire` and logged per client for
//! the virtual synchrony checker in `sim_groups.rs`.
//!
//! The network model is the one of [`super::Sim`]: seeded loss,
//! duplication, delay (FIFO per link or reordering), partitions into
//! components, crashes and restarts.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use spread_daemon::clock::Clock;
use spread_daemon::engine::{Engine, EngineConfig, Output};
use spread_daemon::ring::{Channel, Destination, RingParams};
use spread_daemon::session::{ConnId, Peer};
use spread_wire::client::service::*;
use spread_wire::client::{
    hint_for, AuthChoice, AuthMethodList, ConnectRequest, GroupId, GroupName, MembershipBody, Message,
    MessageHeader, SessionReply,
};
use spread_wire::endian::ByteOrder;

use super::{node_id, node_of, params_in, set_ctx, NetParams, Rng, Wire};

/// Identifies a workload message: the sending client and its counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgKey {
    pub client: u32,
    pub counter: u32,
}

const MAGIC: u32 = 0x4752_5053;

impl MsgKey {
    pub fn encode(&self, size: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(size.max(12));
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&self.client.to_le_bytes());
        b.extend_from_slice(&self.counter.to_le_bytes());
        let fill = (self.counter as u8) ^ (self.client as u8);
        while b.len() < size {
            b.push(fill.wrapping_add(b.len() as u8));
        }
        b
    }

    pub fn decode(b: &[u8]) -> Option<MsgKey> {
        if b.len() < 12 || u32::from_le_bytes(b[0..4].try_into().ok()?) != MAGIC {
            return None;
        }
        let key = MsgKey {
            client: u32::from_le_bytes(b[4..8].try_into().ok()?),
            counter: u32::from_le_bytes(b[8..12].try_into().ok()?),
        };
        let fill = (key.counter as u8) ^ (key.client as u8);
        let intact = b[12..]
            .iter()
            .enumerate()
            .all(|(i, x)| *x == fill.wrapping_add((i + 12) as u8));
        intact.then_some(key)
    }
}

/// What a client read from its daemon, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// A regular membership notice (`REG_MEMB_MESS | CAUSED_BY_*`).
    View {
        group: GroupName,
        id: GroupId,
        /// The `CAUSED_BY_*` bit.
        cause: u32,
        members: Vec<GroupName>,
        vs_sets: Vec<Vec<GroupName>>,
        mine: usize,
    },
    /// A transitional notice (`TRANSITION_MESS`), carrying the old id.
    Trans { group: GroupName, id: GroupId },
    /// The client's own leave of a group.
    SelfLeave { group: GroupName },
    /// A workload message (`service`: its service and SELF_DISCARD bits).
    Msg {
        key: MsgKey,
        sender: GroupName,
        groups: Vec<GroupName>,
        service: u32,
    },
    /// Anything else: undecodable bytes, rejects, corrupted payloads.
    Bad(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connect request sent, waiting for the auth method list.
    AwaitList,
    /// Auth choice sent, waiting for the accept.
    AwaitAccept,
    Up,
    Closed,
}

/// A client's idea of its membership in one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Joining,
    Member,
    Leaving,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The client disconnected (KILL message or closed socket).
    Disconnected,
    /// Its daemon crashed.
    Crashed,
    /// The daemon closed the session.
    Dropped,
}

/// A message a client sent (one entry per destination group).
#[derive(Clone, Debug)]
pub struct Sent {
    pub key: MsgKey,
    pub group: GroupName,
    pub service: u32,
    /// Length of the client's log when it was sent.
    pub at_log: usize,
}

pub struct Client {
    pub id: u32,
    pub node: usize,
    pub conn: ConnId,
    pub private_group: GroupName,
    pub phase: Phase,
    /// Byte order the client writes its messages in.
    pub order: ByteOrder,
    inbuf: Vec<u8>,
    pub log: Vec<Ev>,
    pub groups: BTreeMap<GroupName, Status>,
    pub sent: Vec<Sent>,
    counter: u32,
    pub end: Option<End>,
}

impl Client {
    pub fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }

    fn header(&self, service_type: u32, groups: &[GroupName], data_len: usize) -> MessageHeader {
        MessageHeader {
            service_type,
            sender: self.private_group,
            num_groups: groups.len() as i32,
            hint: hint_for(0, self.order),
            data_len: data_len as i32,
        }
    }

    fn message(&self, service_type: u32, groups: &[GroupName], body: Vec<u8>) -> Vec<u8> {
        Message {
            header: self.header(service_type, groups, body.len()),
            groups: groups.to_vec(),
            body,
        }
        .emit(self.order)
    }

    /// Decodes what arrived; returns bytes to send back (the auth choice).
    fn read(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.inbuf.extend_from_slice(bytes);
        let mut reply = None;
        loop {
            match self.phase {
                Phase::AwaitList => match AuthMethodList::parse(&self.inbuf) {
                    Ok((list, used)) => {
                        self.inbuf.drain(..used);
                        if !list.methods.iter().any(|m| m == "NULL") {
                            self.log.push(Ev::Bad(format!("auth methods {:?}", list.methods)));
                        }
                        reply = Some(AuthChoice::new(&["NULL"]).emit());
                        self.phase = Phase::AwaitAccept;
                    }
                    Err(_) => return reply,
                },
                Phase::AwaitAccept => match SessionReply::parse(&self.inbuf, true) {
                    Ok((SessionReply::Accept { private_group, .. }, used)) => {
                        self.inbuf.drain(..used);
                        if private_group != self.private_group {
                            self.log.push(Ev::Bad(format!("accepted as {private_group}")));
                        }
                        self.phase = Phase::Up;
                    }
                    Ok((SessionReply::Reject(code), _)) => {
                        self.log.push(Ev::Bad(format!("session rejected: {code}")));
                        self.phase = Phase::Closed;
                        return reply;
                    }
                    Err(_) => return reply,
                },
                Phase::Up => match Message::parse(&self.inbuf) {
                    Ok((msg, order, used)) => {
                        self.inbuf.drain(..used);
                        let ev = decode(msg, order);
                        self.note(&ev);
                        self.log.push(ev);
                    }
                    Err(_) => return reply,
                },
                Phase::Closed => return reply,
            }
        }
    }

    /// Follows the client's own membership in its groups.
    fn note(&mut self, ev: &Ev) {
        match ev {
            Ev::View { group, members, .. }
                if members.contains(&self.private_group)
                    && self.groups.get(group) == Some(&Status::Joining) =>
            {
                self.groups.insert(*group, Status::Member);
            }
            Ev::SelfLeave { group } => {
                self.groups.remove(group);
            }
            _ => {}
        }
    }
}

fn decode(msg: Message, order: ByteOrder) -> Ev {
    let t = msg.header.service_type;
    if t & REGULAR_MESS != 0 {
        return match MsgKey::decode(&msg.body) {
            Some(key) => Ev::Msg {
                key,
                sender: msg.header.sender.clean(),
                groups: msg.groups.iter().map(|g| g.clean()).collect(),
                service: t & (REGULAR_MESS | SELF_DISCARD),
            },
            None => Ev::Bad(format!("corrupted message of type {t:#x}")),
        };
    }
    let group = msg.header.sender.clean();
    if t & REG_MEMB_MESS != 0 {
        return match MembershipBody::parse(&msg.body, order) {
            Ok(body) => Ev::View {
                group,
                id: body.group_id,
                cause: t & (CAUSED_BY_JOIN | CAUSED_BY_LEAVE | CAUSED_BY_DISCONNECT | CAUSED_BY_NETWORK),
                members: msg.groups.iter().map(|g| g.clean()).collect(),
                vs_sets: body.vs_sets,
                mine: body.my_vs_set,
            },
            Err(e) => Ev::Bad(format!("membership body: {e}")),
        };
    }
    if t & TRANSITION_MESS != 0 {
        return match GroupId::parse(&msg.body, order) {
            Ok(id) => Ev::Trans { group, id },
            Err(e) => Ev::Bad(format!("transitional body: {e}")),
        };
    }
    if t & CAUSED_BY_LEAVE != 0 {
        return Ev::SelfLeave { group };
    }
    Ev::Bad(format!("unexpected message type {t:#x}"))
}

/// Names of the simulated daemons: d1, d2, ...
pub fn daemon_name(i: usize) -> String {
    format!("d{}", i + 1)
}

pub struct World {
    pub n: usize,
    pub base: Instant,
    pub now: Duration,
    /// Drives the network's losses and delays.
    pub rng: Rng,
    pub net: NetParams,
    pub engines: Vec<Option<Engine>>,
    /// Times each node was started.
    pub starts: Vec<u32>,
    pub component: Vec<u32>,
    pub layout: Vec<usize>,
    pub accelerated: bool,
    pub tweak: fn(&mut RingParams),
    pub clients: Vec<Client>,
    by_conn: HashMap<ConnId, usize>,
    next_conn: ConnId,
    wire: Wire,
    pub unix_base: u32,
    pub steps: u64,
    seed: u64,
}

impl World {
    pub fn new(n: usize, seed: u64, net: NetParams) -> World {
        World {
            n,
            base: Instant::now(),
            now: Duration::ZERO,
            rng: Rng::new(seed),
            net,
            engines: (0..n).map(|_| None).collect(),
            starts: vec![0; n],
            component: vec![0; n],
            layout: vec![n],
            accelerated: false,
            tweak: |_| {},
            clients: Vec::new(),
            by_conn: HashMap::new(),
            next_conn: 1,
            wire: Wire::default(),
            unix_base: 1_700_000_000,
            steps: 0,
            seed,
        }
    }

    fn unix(&self) -> u32 {
        self.unix_base + self.now.as_secs() as u32
    }

    fn instant(&self) -> Instant {
        self.base + self.now
    }

    /// The virtual time as the engines take it.
    pub fn clock(&self) -> Clock {
        Clock::new(self.instant(), self.unix())
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.engines[i].is_some()
    }

    /// The engine configuration of node `i`, as the daemon binary builds it
    /// from a configuration listing d1..dn in order.
    pub fn engine_config(&self, i: usize) -> EngineConfig {
        let mut cfg = EngineConfig::new(&daemon_name(i), Ipv4Addr::from(node_id(i)));
        cfg.daemon_rank = i as u32;
        cfg.daemon_names = (0..self.n).map(|k| daemon_name(k).into_bytes()).collect();
        cfg.daemon_ids = (0..self.n).map(|k| node_id(k) as i32).collect();
        cfg.seed = self.seed ^ ((i as u64) << 40) ^ ((self.starts[i] as u64) << 48);
        cfg
    }

    pub fn start(&mut self, i: usize) {
        if self.engines[i].is_some() {
            return;
        }
        self.starts[i] += 1;
        let mut p = params_in(&self.layout, i);
        p.flow.accelerated_ring = self.accelerated;
        (self.tweak)(&mut p);
        let cfg = self.engine_config(i);
        set_ctx(self.now, i);
        self.engines[i] = Some(Engine::with_ring(cfg, p, self.clock()));
        self.pump(i);
    }

    pub fn crash(&mut self, i: usize) {
        self.engines[i] = None;
        for c in self
            .clients
            .iter_mut()
            .filter(|c| c.node == i && c.phase != Phase::Closed)
        {
            c.phase = Phase::Closed;
            c.end = Some(End::Crashed);
        }
    }

    pub fn partition(&mut self, groups: &[u32]) {
        self.component.copy_from_slice(groups);
    }

    pub fn heal(&mut self) {
        self.component.iter_mut().for_each(|c| *c = 0);
    }

    /// A new client connects to node `i`; returns its index.
    pub fn connect(&mut self, i: usize, order: ByteOrder) -> Option<usize> {
        self.engines[i].as_ref()?;
        let id = self.clients.len() as u32;
        let name = format!("c{id}");
        let conn = self.next_conn;
        self.next_conn += 1;
        self.clients.push(Client {
            id,
            node: i,
            conn,
            private_group: GroupName::private_group(name.as_bytes(), daemon_name(i).as_bytes()),
            phase: Phase::AwaitList,
            order,
            inbuf: Vec::new(),
            log: Vec::new(),
            groups: BTreeMap::new(),
            sent: Vec::new(),
            counter: 0,
            end: None,
        });
        let k = self.clients.len() - 1;
        self.by_conn.insert(conn, k);
        let now = self.clock();
        set_ctx(self.now, i);
        let e = self.engines[i].as_mut()?;
        e.handle_accept(conn, Peer::Unix, conn as i32, now);
        e.handle_client_data(conn, &ConnectRequest::new(name.as_bytes(), true, 0).emit(), now);
        self.pump(i);
        Some(k)
    }

    fn send(&mut self, k: usize, bytes: &[u8]) {
        let (i, conn) = (self.clients[k].node, self.clients[k].conn);
        let now = self.clock();
        set_ctx(self.now, i);
        if let Some(e) = self.engines[i].as_mut() {
            e.handle_client_data(conn, bytes, now);
            self.pump(i);
        }
    }

    pub fn join(&mut self, k: usize, group: GroupName) {
        let c = &mut self.clients[k];
        c.groups.insert(group, Status::Joining);
        let bytes = c.message(JOIN_MESS, &[group], Vec::new());
        self.send(k, &bytes);
    }

    pub fn leave(&mut self, k: usize, group: GroupName) {
        let c = &mut self.clients[k];
        c.groups.insert(group, Status::Leaving);
        let bytes = c.message(LEAVE_MESS, &[group], Vec::new());
        self.send(k, &bytes);
    }

    pub fn multicast(&mut self, k: usize, groups: &[GroupName], service: u32, size: usize) {
        let c = &mut self.clients[k];
        c.counter += 1;
        let key = MsgKey {
            client: c.id,
            counter: c.counter,
        };
        for &group in groups {
            c.sent.push(Sent {
                key,
                group,
                service,
                at_log: c.log.len(),
            });
        }
        let bytes = c.message(service, groups, key.encode(size));
        self.send(k, &bytes);
    }

    /// The client leaves: with a KILL message as `SP_disconnect` sends it,
    /// or by closing its socket.
    pub fn disconnect(&mut self, k: usize, kill_message: bool) {
        if self.clients[k].phase == Phase::Closed {
            return;
        }
        self.clients[k].end = Some(End::Disconnected);
        if kill_message {
            let c = &self.clients[k];
            let bytes = c.message(KILL_MESS, &[c.private_group], Vec::new());
            self.send(k, &bytes);
        }
        let c = &mut self.clients[k];
        if c.phase != Phase::Closed {
            c.phase = Phase::Closed;
            let (i, conn) = (c.node, c.conn);
            let now = self.clock();
            set_ctx(self.now, i);
            if let Some(e) = self.engines[i].as_mut() {
                e.handle_client_closed(conn, now);
                self.pump(i);
            }
        }
    }

    fn enqueue(&mut self, from: usize, to: usize, channel: Channel, bytes: &[u8]) {
        self.wire.send(
            &mut self.rng,
            &self.net,
            &self.component,
            self.now,
            (from, to),
            channel,
            bytes,
        );
    }

    /// Moves what node `i` wants sent onto the network and what it wrote
    /// to its clients into them, until it is quiet.
    pub fn pump(&mut self, i: usize) {
        loop {
            let Some(e) = self.engines[i].as_mut() else {
                return;
            };
            let mut txs = Vec::new();
            while let Some(t) = e.poll_transmit() {
                txs.push(t);
            }
            let mut closed = Vec::new();
            while let Some(o) = e.poll_output() {
                if let Output::Close { conn, last_words } = o {
                    closed.push((conn, last_words));
                }
            }
            let mut reads = Vec::new();
            for c in self
                .clients
                .iter()
                .filter(|c| c.node == i && c.phase != Phase::Closed)
            {
                let bytes: Vec<u8> = e.output_chunks(c.conn).flatten().copied().collect();
                if !bytes.is_empty() {
                    reads.push((c.conn, bytes));
                }
            }
            for (conn, bytes) in &reads {
                e.consume_output(*conn, bytes.len());
            }
            let progressed = !txs.is_empty() || !closed.is_empty() || !reads.is_empty();
            for t in txs {
                match t.to {
                    Destination::Segment(s) => {
                        let first: usize = self.layout.iter().take(s).sum();
                        let size = self.layout.get(s).copied().unwrap_or(0);
                        for j in first..first + size {
                            if j != i {
                                self.enqueue(i, j, Channel::Data, &t.bytes);
                            }
                        }
                    }
                    Destination::Daemon { id, channel } => {
                        if let Some(j) = node_of(id).filter(|j| *j < self.n) {
                            self.enqueue(i, j, channel, &t.bytes);
                        }
                    }
                }
            }
            for (conn, bytes) in reads {
                let Some(&k) = self.by_conn.get(&conn) else {
                    continue;
                };
                if let Some(reply) = self.clients[k].read(&bytes) {
                    let now = self.clock();
                    if let Some(e) = self.engines[i].as_mut() {
                        e.handle_client_data(conn, &reply, now);
                    }
                }
            }
            for (conn, last_words) in closed {
                let Some(&k) = self.by_conn.get(&conn) else {
                    continue;
                };
                let c = &mut self.clients[k];
                if !last_words.is_empty() {
                    c.read(&last_words);
                }
                c.phase = Phase::Closed;
                c.end.get_or_insert(End::Dropped);
            }
            if !progressed {
                return;
            }
        }
    }

    fn next_event(&self) -> Option<Duration> {
        let msg = self.wire.next_at();
        let timer = self
            .engines
            .iter()
            .filter_map(|e| e.as_ref()?.poll_timeout())
            .map(|t| t.saturating_duration_since(self.base))
            .min();
        match (msg, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the network and the timers until `end` (virtual time).
    pub fn run_until(&mut self, end: Duration) {
        while let Some(t) = self.next_event() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.steps += 1;
            if let Some(arrival) = self.wire.take_due(self.now) {
                if let Some(f) = arrival {
                    let now = self.clock();
                    set_ctx(self.now, f.to);
                    if let Some(e) = self.engines[f.to].as_mut() {
                        e.handle_datagram(f.channel, &f.bytes, now);
                        self.pump(f.to);
                    }
                }
                continue;
            }
            let now = self.clock();
            for i in 0..self.n {
                let due = self.engines[i]
                    .as_ref()
                    .and_then(|e| e.poll_timeout())
                    .is_some_and(|d| d <= now.mono);
                if due {
                    set_ctx(self.now, i);
                    if let Some(e) = self.engines[i].as_mut() {
                        e.handle_timeout(now);
                    }
                    self.pump(i);
                }
            }
        }
        self.now = self.now.max(end);
    }
}
