//! Whole daemons on the simulated network: each node runs the daemon's
//! sans-IO [`Engine`] (sessions, groups, ring), and simulated clients talk
//! to it with the real client protocol bytes (connect request, auth choice,
//! join/leave/multicast/disconnect as the C library sends them). Everything
//! a client reads is decoded with `spread_wire` and logged per client for
//! the virtual synchrony checker in `sim_groups.rs`.
//!
//! The network and its event loop are [`super::Net`]'s: seeded loss,
//! duplication, delay (FIFO per link or reordering), partitions into
//! components, crashes and restarts. [`DaemonNode`] is the only code here
//! that calls into the engine.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use spread_daemon::clock::Clock;
use spread_daemon::engine::{Engine, EngineConfig, Output};
use spread_daemon::ring::{Channel, RingParams, Transmit};
use spread_daemon::session::{ConnId, Peer};
use spread_wire::client::service::*;
use spread_wire::client::{
    hint_for, AuthChoice, AuthMethodList, ConnectRequest, GroupId, GroupName, MembershipBody, Message,
    MessageHeader, SessionReply,
};
use spread_wire::endian::ByteOrder;

use super::{node_id, set_ctx, Daemon, Net, NetParams};

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

/// The whole-daemon simulator's view above the daemons: the clients.
pub struct Clients {
    /// Daemons in the configuration.
    n: usize,
    /// The run's seed (each engine's seed derives from it).
    seed: u64,
    /// Times each node was started.
    pub starts: Vec<u32>,
    pub clients: Vec<Client>,
    by_conn: HashMap<ConnId, usize>,
    next_conn: ConnId,
}

impl Clients {
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
}

/// A running daemon engine (sessions, groups, ring).
pub struct DaemonNode {
    pub engine: Engine,
}

pub type World = Net<DaemonNode>;

impl Daemon for DaemonNode {
    type App = Clients;

    fn start(i: usize, params: RingParams, clock: Clock, app: &mut Clients) -> DaemonNode {
        app.starts[i] += 1;
        let cfg = app.engine_config(i);
        DaemonNode {
            engine: Engine::with_ring(cfg, params, clock),
        }
    }

    fn crashed(self, i: usize, app: &mut Clients) {
        for c in app
            .clients
            .iter_mut()
            .filter(|c| c.node == i && c.phase != Phase::Closed)
        {
            c.phase = Phase::Closed;
            c.end = Some(End::Crashed);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.engine.poll_timeout()
    }

    fn handle_datagram(&mut self, channel: Channel, bytes: &[u8], clock: Clock) {
        self.engine.handle_datagram(channel, bytes, clock);
    }

    fn handle_timeout(&mut self, clock: Clock) {
        self.engine.handle_timeout(clock);
    }

    /// Also moves what the daemon wrote to its clients into them, and their
    /// answers (the auth choice) back.
    fn poll(
        &mut self,
        i: usize,
        _: Duration,
        clock: Clock,
        app: &mut Clients,
        out: &mut Vec<Transmit>,
    ) -> bool {
        let e = &mut self.engine;
        while let Some(t) = e.poll_transmit() {
            out.push(t);
        }
        let mut closed = Vec::new();
        while let Some(o) = e.poll_output() {
            if let Output::Close { conn, last_words, .. } = o {
                closed.push((conn, last_words));
            }
        }
        let mut reads = Vec::new();
        for c in app
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
        let any = !closed.is_empty() || !reads.is_empty();
        for (conn, bytes) in reads {
            let Some(&k) = app.by_conn.get(&conn) else {
                continue;
            };
            if let Some(reply) = app.clients[k].read(&bytes) {
                e.handle_client_data(conn, &reply, clock);
            }
        }
        for (conn, last_words) in closed {
            let Some(&k) = app.by_conn.get(&conn) else {
                continue;
            };
            let c = &mut app.clients[k];
            if !last_words.is_empty() {
                c.read(&last_words);
            }
            c.phase = Phase::Closed;
            c.end.get_or_insert(End::Dropped);
        }
        any
    }
}

impl DaemonNode {
    fn client_connected(&mut self, conn: ConnId, name: &str, clock: Clock) {
        self.engine.handle_accept(conn, Peer::Unix, conn as i32, clock);
        self.engine
            .handle_client_data(conn, &ConnectRequest::new(name.as_bytes(), true, 0).emit(), clock);
    }

    fn client_data(&mut self, conn: ConnId, bytes: &[u8], clock: Clock) {
        self.engine.handle_client_data(conn, bytes, clock);
    }

    fn client_closed(&mut self, conn: ConnId, clock: Clock) {
        self.engine.handle_client_closed(conn, clock);
    }
}

impl Net<DaemonNode> {
    pub fn new(n: usize, seed: u64, net: NetParams) -> World {
        let clients = Clients {
            n,
            seed,
            starts: vec![0; n],
            clients: Vec::new(),
            by_conn: HashMap::new(),
            next_conn: 1,
        };
        Net::with_app(n, seed, net, clients)
    }

    /// A new client connects to node `i`; returns its index.
    pub fn connect(&mut self, i: usize, order: ByteOrder) -> Option<usize> {
        self.nodes[i].as_ref()?;
        let app = &mut self.app;
        let id = app.clients.len() as u32;
        let name = format!("c{id}");
        let conn = app.next_conn;
        app.next_conn += 1;
        app.clients.push(Client {
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
        let k = app.clients.len() - 1;
        app.by_conn.insert(conn, k);
        let clock = self.clock();
        set_ctx(self.now, i);
        self.nodes[i].as_mut()?.client_connected(conn, &name, clock);
        self.pump(i);
        Some(k)
    }

    fn send(&mut self, k: usize, bytes: &[u8]) {
        let (i, conn) = (self.app.clients[k].node, self.app.clients[k].conn);
        let clock = self.clock();
        set_ctx(self.now, i);
        if let Some(d) = self.nodes[i].as_mut() {
            d.client_data(conn, bytes, clock);
            self.pump(i);
        }
    }

    pub fn join(&mut self, k: usize, group: GroupName) {
        let c = &mut self.app.clients[k];
        c.groups.insert(group, Status::Joining);
        let bytes = c.message(JOIN_MESS, &[group], Vec::new());
        self.send(k, &bytes);
    }

    pub fn leave(&mut self, k: usize, group: GroupName) {
        let c = &mut self.app.clients[k];
        c.groups.insert(group, Status::Leaving);
        let bytes = c.message(LEAVE_MESS, &[group], Vec::new());
        self.send(k, &bytes);
    }

    pub fn multicast(&mut self, k: usize, groups: &[GroupName], service: u32, size: usize) {
        let c = &mut self.app.clients[k];
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
        if self.app.clients[k].phase == Phase::Closed {
            return;
        }
        self.app.clients[k].end = Some(End::Disconnected);
        if kill_message {
            let c = &self.app.clients[k];
            let bytes = c.message(KILL_MESS, &[c.private_group], Vec::new());
            self.send(k, &bytes);
        }
        let c = &mut self.app.clients[k];
        if c.phase != Phase::Closed {
            c.phase = Phase::Closed;
            let (i, conn) = (c.node, c.conn);
            let clock = self.clock();
            set_ctx(self.now, i);
            if let Some(d) = self.nodes[i].as_mut() {
                d.client_closed(conn, clock);
                self.pump(i);
            }
        }
    }
}
