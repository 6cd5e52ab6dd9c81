//! The daemon's sans-IO engine: client sessions and process groups over an
//! ordering layer.
//!
//! The I/O shell feeds it accepted connections, bytes read, closed sockets
//! and the clock; it answers with bytes to write ([`Engine::output_chunks`])
//! and [`Output`] requests. Client messages pass through the ordering layer
//! before they take effect, the way they pass through the ring in a
//! multi-daemon configuration: joins, leaves and disconnects are applied at
//! their place in the total order, and every receiver sees one order.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use log::{debug, info, warn};
use spread_wire::client::limits::{DEFAULT_MAX_MESSAGE_BODY, MAX_GROUPS_PER_MESSAGE, MESSAGE_HEADER_LEN};
use spread_wire::client::service::*;
use spread_wire::client::{
    code, emit_group_names, emit_reject, hint_for, AuthMethodList, GroupId, GroupName, MembId,
    MembershipBody, MessageHeader, SessionReply, Version,
};
use spread_wire::endian::ByteOrder;

use crate::auth::AuthPolicy;
use crate::clock::Clock;
use crate::groups::{Cause, Change, Exchange, Groups, Member, Notice, MAX_LOCAL_GROUP_MEMBERS};
use crate::ring::{
    Channel, DeliveryThreshold, DownQueue, Outgoing, PacketType, RingEngine, RingEvent, RingParams, Transmit,
};
use crate::session::{validate_ring_header, Bytes, ClientMessage, ConnId, Peer, Phase, Session};
use spread_wire::daemon::{groups_message_header, synced_set_size_of, GroupsBody};

/// Sessions one daemon serves, as the original's descriptor budget allows.
pub const MAX_SESSIONS: usize = (2000 - 5) / 2;

/// What the engine needs to know about its daemon.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub daemon_name: Vec<u8>,
    pub daemon_ip: Ipv4Addr,
    /// This daemon's place in the configuration (orders members in notices).
    pub daemon_rank: u32,
    /// Names of all configured daemons, in configuration order.
    pub daemon_names: Vec<Vec<u8>>,
    /// Their ids (IPv4 addresses as host-order integers), same order.
    pub daemon_ids: Vec<i32>,
    pub auth: AuthPolicy,
    /// Messages queued to a client that stops reading before it is dropped.
    pub max_session_messages: usize,
    /// Largest client message: header + names + body.
    pub max_message_body: usize,
    pub max_sessions: usize,
    /// Seeds the invented private names.
    pub seed: u64,
}

impl EngineConfig {
    pub fn new(daemon_name: &str, daemon_ip: Ipv4Addr) -> EngineConfig {
        EngineConfig {
            daemon_name: daemon_name.as_bytes().to_vec(),
            daemon_ip,
            daemon_rank: 0,
            daemon_names: vec![daemon_name.as_bytes().to_vec()],
            daemon_ids: vec![u32::from(daemon_ip) as i32],
            auth: AuthPolicy::default(),
            max_session_messages: 1000,
            max_message_body: DEFAULT_MAX_MESSAGE_BODY,
            max_sessions: MAX_SESSIONS,
            seed: 0x5eed,
        }
    }
}

/// Requests to the I/O shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// The session has bytes to write.
    Wake(ConnId),
    /// Write `last_words` if the socket takes them at once, then close.
    Close { conn: ConnId, last_words: Vec<u8> },
}

pub struct Engine {
    cfg: EngineConfig,
    sessions: HashMap<ConnId, Session>,
    /// Sessions by private group name, reserved from the connect request on.
    by_private: HashMap<GroupName, ConnId>,
    groups: Groups,
    /// The current ring's membership id (group ids are made from it).
    memb_id: MembId,
    /// Where client messages get their place in the total order.
    ordering: Ordering,
    /// Client messages held while the groups state exchange runs.
    held: VecDeque<ClientMessage>,
    exchanging: bool,
    outputs: VecDeque<Output>,
    delivery_stamp: u64,
    rng: u64,
    /// Scratch list of a delivery's receivers.
    receivers: Vec<ConnId>,
    /// Client messages from the ring refused as malformed.
    dropped_ring_messages: u64,
}

impl Engine {
    pub fn new(cfg: EngineConfig, now: Clock) -> Engine {
        let memb_id = MembId {
            proc_id: u32::from(cfg.daemon_ip) as i32,
            time: now.unix_secs as i32,
        };
        let rng = cfg.seed | 1;
        let (daemon_ids, daemon_rank) = (cfg.daemon_ids.clone(), cfg.daemon_rank);
        Engine {
            cfg,
            sessions: HashMap::new(),
            by_private: HashMap::new(),
            groups: Groups::new(daemon_ids, daemon_rank, memb_id),
            memb_id,
            ordering: Ordering::Local(VecDeque::new()),
            held: VecDeque::new(),
            exchanging: false,
            outputs: VecDeque::new(),
            delivery_stamp: 0,
            rng,
            receivers: Vec::new(),
            dropped_ring_messages: 0,
        }
    }

    /// An engine whose messages are ordered by the ring protocol.
    pub fn with_ring(cfg: EngineConfig, ring: RingParams, now: Clock) -> Engine {
        let mut engine = Engine::new(cfg, now);
        engine.ordering = Ordering::Ring(Box::new(RingEngine::new(ring, now)));
        engine
    }

    /// A datagram from another daemon.
    pub fn handle_datagram(&mut self, channel: Channel, bytes: &[u8], now: Clock) {
        if let Ordering::Ring(ring) = &mut self.ordering {
            ring.handle_datagram(channel, bytes, now);
        }
        self.run_ordering(now);
    }

    /// A datagram from `from` (see [`RingEngine::handle_datagram_from`]).
    pub fn handle_datagram_from(
        &mut self,
        channel: Channel,
        from: std::net::SocketAddr,
        bytes: &[u8],
        now: Clock,
    ) {
        if let Ordering::Ring(ring) = &mut self.ordering {
            ring.handle_datagram_from(channel, from, bytes, now);
        }
        self.run_ordering(now);
    }

    /// The ring engine (`None` for a daemon alone in its configuration).
    pub fn ring(&self) -> Option<&RingEngine> {
        match &self.ordering {
            Ordering::Ring(ring) => Some(ring),
            _ => None,
        }
    }

    /// The ring engine, to change it at run time (the monitor's partition
    /// and flow-control commands).
    pub fn ring_mut(&mut self) -> Option<&mut RingEngine> {
        match &mut self.ordering {
            Ordering::Ring(ring) => Some(ring),
            _ => None,
        }
    }

    /// The ring's counters (`None` without a ring).
    pub fn ring_stats(&self) -> Option<crate::ring::RingStats> {
        match &self.ordering {
            Ordering::Ring(ring) => Some(ring.stats()),
            _ => None,
        }
    }

    /// A datagram the ring wants sent.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        match &mut self.ordering {
            Ordering::Ring(ring) => ring.poll_transmit(),
            Ordering::Local(_) => None,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn groups(&self) -> &Groups {
        &self.groups
    }

    pub fn membership_id(&self) -> MembId {
        self.memb_id
    }

    /// Client messages from the ring refused as malformed (logged and
    /// dropped, see [`crate::session::validate_ring_header`]).
    pub fn dropped_ring_messages(&self) -> u64 {
        self.dropped_ring_messages
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    // ----- events from the shell -----

    /// A client connected.
    pub fn handle_accept(&mut self, conn: ConnId, peer: Peer, fd: i32, now: Clock) {
        if self.sessions.len() >= self.cfg.max_sessions {
            warn!(target: "spread::session", "rejecting connection {conn} from {peer:?}: {} sessions (quota)", self.sessions.len());
            self.outputs.push_back(Output::Close {
                conn,
                last_words: vec![code::REJECT_QUOTA as u8],
            });
            return;
        }
        debug!(target: "spread::session", "accepted connection {conn} from {peer:?}");
        self.sessions.insert(conn, Session::new(conn, peer, fd, now.mono));
    }

    /// Bytes arrived from a client.
    pub fn handle_client_data(&mut self, conn: ConnId, bytes: &[u8], now: Clock) {
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        session.receive(bytes);
        self.process_input(conn, now);
        self.run_ordering(now);
    }

    /// The client closed its side, or the socket failed.
    pub fn handle_client_closed(&mut self, conn: ConnId, now: Clock) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        match session.phase {
            // The original's one read of the auth choice comes back short.
            Phase::AwaitAuth => self.deny(conn, "connection closed before the auth choice"),
            Phase::Operational => self.kill_session(conn, "connection closed", now),
            _ => self.drop_session(conn, Vec::new()),
        }
        self.run_ordering(now);
    }

    /// Time passed: connections that sent no connect request in 1 s go;
    /// the ring's timers run.
    pub fn handle_timeout(&mut self, now: Clock) {
        if let Ordering::Ring(ring) = &mut self.ordering {
            if ring.poll_timeout().is_some_and(|t| t <= now.mono) {
                ring.handle_timeout(now);
            }
        }
        let expired: Vec<ConnId> = self
            .sessions
            .values()
            .filter(|s| matches!(s.phase, Phase::AwaitConnect { deadline } if deadline <= now.mono))
            .map(|s| s.conn)
            .collect();
        for conn in expired {
            self.process_connect(conn);
        }
        self.run_ordering(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let ring = match &self.ordering {
            Ordering::Ring(ring) => ring.poll_timeout(),
            Ordering::Local(_) => None,
        };
        let sessions = self
            .sessions
            .values()
            .filter_map(|s| match s.phase {
                Phase::AwaitConnect { deadline } => Some(deadline),
                _ => None,
            })
            .min();
        match (ring, sessions) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Unwritten bytes of a session, oldest first.
    pub fn output_chunks(&self, conn: ConnId) -> impl Iterator<Item = &[u8]> {
        self.sessions
            .get(&conn)
            .into_iter()
            .flat_map(|s| s.output_chunks())
    }

    /// `n` bytes of the session's output were written.
    pub fn consume_output(&mut self, conn: ConnId, n: usize) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.consume_output(n);
        }
    }

    /// The shell wrote all the socket would take: a client with more than
    /// MaxSessionMessages messages still waiting has stopped reading and is
    /// dropped, as the original does, so the others keep being served.
    pub fn check_backlog(&mut self, conn: ConnId, now: Clock) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        let n = session.queued_messages();
        if n > self.cfg.max_session_messages {
            self.kill_session(conn, &format!("not reading: {n} messages queued"), now);
            self.run_ordering(now);
        }
    }

    pub fn has_output(&self, conn: ConnId) -> bool {
        self.sessions.get(&conn).is_some_and(|s| s.has_output())
    }

    // ----- the handshake -----

    fn process_input(&mut self, conn: ConnId, now: Clock) {
        loop {
            let Some(session) = self.sessions.get(&conn) else {
                return;
            };
            match session.phase {
                Phase::AwaitConnect { .. } => {
                    if !self.process_connect(conn) {
                        return;
                    }
                }
                Phase::AwaitAuth => {
                    if session.input_len() == 0 || !self.process_auth(conn) {
                        return;
                    }
                }
                Phase::Operational => return self.process_messages(conn, now),
                Phase::Closed => return,
            }
        }
    }

    /// Read the connect request from what arrived; true if the session moved on.
    fn process_connect(&mut self, conn: ConnId) -> bool {
        let Some(session) = self.sessions.get_mut(&conn) else {
            return false;
        };
        let request = match session.take_connect_request() {
            Ok(request) => request,
            Err(e) => {
                info!(target: "spread::session", "connection {conn}: {e}");
                let last_words = e.reject_code().map(|c| vec![c as u8]).unwrap_or_default();
                self.drop_session(conn, last_words);
                return false;
            }
        };
        let name = if request.name.is_empty() {
            self.invent_name(session_fd(&self.sessions, conn))
        } else {
            request.name.clone()
        };
        let private_group = GroupName::private_group(&name, &self.cfg.daemon_name);
        if self.by_private.contains_key(&private_group) {
            debug!(target: "spread::session", "connection {conn}: private name {:?} is in use", String::from_utf8_lossy(&name));
            self.drop_session(conn, vec![code::REJECT_NOT_UNIQUE as u8]);
            return false;
        }
        self.by_private.insert(private_group, conn);
        let session = self.sessions.get_mut(&conn).expect("present");
        session.version = request.version;
        session.wants_membership = request.wants_membership();
        session.priority = request.priority();
        session.name = name;
        session.private_group = private_group;
        if !request.version.does_auth_exchange() {
            let peer = session.peer;
            match self.cfg.auth.authorize_old_library(peer) {
                Ok(()) => self.authorize(conn),
                Err(e) => self.deny(conn, &e.to_string()),
            }
            return true;
        }
        let list = AuthMethodList {
            methods: self.cfg.auth.offered(),
        }
        .emit();
        if self.cfg.auth.offered().is_empty() {
            self.deny(conn, "no AllowedAuthMethods configured");
            return false;
        }
        let session = self.sessions.get_mut(&conn).expect("present");
        session.queue(Arc::new(list));
        session.phase = Phase::AwaitAuth;
        self.wake(conn);
        true
    }

    /// `r<0..9998>-<fd>`, unique among the sessions, as the original invents.
    fn invent_name(&mut self, fd: i32) -> Vec<u8> {
        loop {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let mut name = format!("r{}-{}", self.rng % 9999, fd).into_bytes();
            name.truncate(9);
            if !self
                .by_private
                .contains_key(&GroupName::private_group(&name, &self.cfg.daemon_name))
            {
                return name;
            }
        }
    }

    fn process_auth(&mut self, conn: ConnId) -> bool {
        let session = self.sessions.get_mut(&conn).expect("present");
        let Some(choice) = session.take_auth_choice() else {
            // One read must bring all 90 bytes, as in the original.
            self.deny(conn, "short auth choice");
            return false;
        };
        let peer = session.peer;
        match self.cfg.auth.authorize(&choice.methods(), peer) {
            Ok(()) => {
                self.authorize(conn);
                true
            }
            Err(e) => {
                self.deny(conn, &e.to_string());
                false
            }
        }
    }

    fn authorize(&mut self, conn: ConnId) {
        let session = self.sessions.get_mut(&conn).expect("present");
        let reply = SessionReply::Accept {
            daemon_version: Version::SPREAD_4_4_0,
            private_group: session.private_group,
        };
        session.queue(Arc::new(reply.emit(session.version.expects_patch_in_accept())));
        session.phase = Phase::Operational;
        debug!(target: "spread::session", "session {} connected (connection {conn}, {:?}, membership {})",
            session.private_group, session.peer, if session.wants_membership { "on" } else { "off" });
        self.wake(conn);
    }

    fn deny(&mut self, conn: ConnId, why: &str) {
        info!(target: "spread::session", "connection {conn}: session denied: {why}");
        self.drop_session(conn, vec![code::REJECT_AUTH as u8]);
    }

    // ----- operational sessions -----

    fn process_messages(&mut self, conn: ConnId, now: Clock) {
        loop {
            let session = self.sessions.get_mut(&conn).expect("present");
            match session.next_message(&self.cfg.daemon_name, self.cfg.max_message_body) {
                Ok(Some(msg)) => self.handle_client_message(conn, msg, now),
                Ok(None) => return,
                Err(e) => {
                    let name = session.private_group;
                    self.kill_session(conn, &format!("invalid message header from {name}: {e}"), now);
                    return;
                }
            }
            if !self.sessions.get(&conn).is_some_and(|s| s.is_operational()) {
                return;
            }
        }
    }

    fn handle_client_message(&mut self, conn: ConnId, msg: ClientMessage, now: Clock) {
        let t = msg.header.service_type;
        if t & KILL_MESS != 0 {
            self.kill_session(conn, "disconnect requested", now);
            return;
        }
        if t & (JOIN_MESS | LEAVE_MESS) != 0 && msg.header.num_groups < 1 {
            warn!(target: "spread::session", "{}: join/leave without a group ignored", msg.header.sender.clean());
            return;
        }
        if t & JOIN_MESS != 0 {
            let group = msg.first_group().expect("num_groups checked").clean();
            let local = self
                .groups
                .get(&group)
                .map_or(0, |g| g.members_on(self.cfg.daemon_rank).count());
            if local >= MAX_LOCAL_GROUP_MEMBERS {
                warn!(target: "spread::session", "{} may not join {group}: {local} local members already", msg.header.sender.clean());
                let old_type = (t & !JOIN_MESS) | CAUSED_BY_JOIN;
                self.deliver_reject(conn, &msg, old_type);
                return;
            }
        }
        self.submit(msg, now);
    }

    /// Send a refused message back to its sender as a REJECT_MESS.
    fn deliver_reject(&mut self, conn: ConnId, msg: &ClientMessage, old_type: u32) {
        let mut groups: Vec<GroupName> = msg.groups().collect();
        let me = msg.header.sender.clean();
        if groups.len() >= MAX_GROUPS_PER_MESSAGE {
            groups[MAX_GROUPS_PER_MESSAGE - 1] = me;
        } else {
            groups.push(me);
        }
        let header = MessageHeader {
            service_type: REJECT_MESS | (msg.header.service_type & SELF_DISCARD),
            num_groups: groups.len() as i32,
            ..msg.header
        };
        let body_at = MESSAGE_HEADER_LEN + msg.header.num_groups as usize * 32;
        let bytes = emit_reject(
            &header,
            old_type,
            &groups,
            &msg.bytes[body_at..],
            ByteOrder::NATIVE,
        );
        self.queue_to(conn, Arc::new(bytes));
    }

    /// Drop a session that was operational: its departure is ordered like
    /// any message, so members see the disconnect at one place in the order.
    fn kill_session(&mut self, conn: ConnId, why: &str, now: Clock) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        let me = session.private_group;
        debug!(target: "spread::session", "session {me} (connection {conn}) leaves: {why}");
        if session.is_operational() {
            let header = MessageHeader {
                service_type: KILL_MESS,
                sender: me,
                num_groups: 1,
                hint: hint_for(0, ByteOrder::NATIVE),
                data_len: 0,
            };
            let mut bytes = Vec::with_capacity(MESSAGE_HEADER_LEN + 32);
            header.emit_into(ByteOrder::NATIVE, &mut bytes);
            emit_group_names(&[me], &mut bytes);
            self.submit(
                ClientMessage {
                    header,
                    bytes: Arc::new(bytes),
                },
                now,
            );
        }
        self.drop_session(conn, Vec::new());
    }

    /// Forget a session and ask the shell to close its socket.
    fn drop_session(&mut self, conn: ConnId, mut last_words: Vec<u8>) {
        let Some(mut session) = self.sessions.remove(&conn) else {
            return;
        };
        if !session.private_group.is_empty() && self.by_private.get(&session.private_group) == Some(&conn) {
            self.by_private.remove(&session.private_group);
        }
        if !last_words.is_empty() {
            // Anything still queued (the auth list) goes first.
            let mut pending: Vec<u8> = session.output_chunks().flatten().copied().collect();
            pending.append(&mut last_words);
            last_words = pending;
        }
        session.phase = Phase::Closed;
        session.drop_output();
        self.outputs.push_back(Output::Close { conn, last_words });
    }

    fn wake(&mut self, conn: ConnId) {
        self.outputs.push_back(Output::Wake(conn));
    }

    /// Queue bytes to one session, dropping it if it stopped reading.
    /// Queue bytes to one session. Whether it keeps up is judged when the
    /// shell has written what the socket takes ([`Engine::check_backlog`]),
    /// so a burst delivered in one go does not count against a reader.
    fn queue_to(&mut self, conn: ConnId, bytes: Bytes) {
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        let was_idle = !session.has_output();
        session.queue(bytes);
        // Wake the shell when output starts, and again when the backlog
        // passes the bound, so a client that stopped reading is judged.
        if was_idle || session.queued_messages() == self.cfg.max_session_messages + 1 {
            self.wake(conn);
        }
    }

    // ----- delivery in order -----

    fn submit(&mut self, msg: ClientMessage, now: Clock) {
        if self.exchanging {
            self.held.push_back(msg);
            return;
        }
        match &mut self.ordering {
            Ordering::Local(queue) => queue.push_back(msg),
            Ordering::Ring(ring) => ring.submit(
                now,
                Outgoing {
                    packet_type: PacketType::for_service(msg.header.service_type),
                    bytes: msg.bytes.as_ref().clone(),
                },
            ),
        }
    }

    /// Deliver what the ordering layer has put in order.
    fn run_ordering(&mut self, now: Clock) {
        loop {
            let event = match &mut self.ordering {
                Ordering::Local(queue) => match queue.pop_front() {
                    Some(msg) => Ordered::Local(msg),
                    None => return,
                },
                Ordering::Ring(ring) => match ring.poll_event() {
                    Some(event) => Ordered::Ring(event),
                    None => return,
                },
            };
            match event {
                Ordered::Local(msg) => self.deliver(msg),
                Ordered::Ring(RingEvent::Deliver { bytes, from, .. }) => {
                    if is_groups_message(&bytes) {
                        self.deliver_groups_message(&bytes, from, now);
                    } else if let Some(msg) = self.message_from_ring(bytes, from) {
                        self.deliver(msg);
                    }
                }
                Ordered::Ring(RingEvent::Transitional { memb_id, members }) => {
                    info!(target: "spread::membership", "transitional configuration {memb_id:?}: {}", ids(&members));
                    let members: Vec<i32> = members.iter().map(|&m| m as i32).collect();
                    let notices = self.groups.transitional(&members, memb_id);
                    self.render(notices);
                }
                Ordered::Ring(RingEvent::Regular { memb_id, members }) => {
                    info!(target: "spread::membership", "Membership id is ({}, {}): {}",
                        Ipv4Addr::from(memb_id.proc_id as u32), memb_id.time, ids(&members));
                    self.memb_id = memb_id;
                    let members: Vec<i32> = members.iter().map(|&m| m as i32).collect();
                    let (notices, exchange) = self.groups.regular(&members, memb_id);
                    self.render(notices);
                    self.apply_exchange(exchange, now);
                }
            }
        }
    }

    /// A client message another daemon (or this one) put on the ring,
    /// checked as strictly as one from a local client; a bad one is logged,
    /// counted and dropped, and the daemon carries on.
    fn message_from_ring(&mut self, bytes: Vec<u8>, from: u32) -> Option<ClientMessage> {
        let daemon = self
            .cfg
            .daemon_ids
            .iter()
            .position(|&id| id as u32 == from)
            .and_then(|i| self.cfg.daemon_names.get(i));
        let result = match daemon {
            Some(name) => decode_ring_message(bytes, name),
            None => Err("not a configured daemon".to_string()),
        };
        match result {
            Ok(msg) => Some(msg),
            Err(why) => {
                self.dropped_ring_messages += 1;
                warn!(target: "spread::ring", "dropped a client message from daemon {}: {why} ({} dropped in all)",
                    Ipv4Addr::from(from), self.dropped_ring_messages);
                None
            }
        }
    }

    fn deliver(&mut self, msg: ClientMessage) {
        let t = msg.header.service_type;
        let sender = msg.header.sender.clean();
        if t & (JOIN_MESS | LEAVE_MESS) != 0 {
            // Both ways in (a local client, the ring) refuse a join or leave
            // without a group; should one slip through, it changes nothing.
            let Some(group) = msg.first_group().map(|g| g.clean()) else {
                warn!(target: "spread::groups", "{sender}: join/leave without a group ignored");
                return;
            };
            let notices = if t & JOIN_MESS != 0 {
                let member = Member {
                    daemon_rank: self.daemon_rank_of(&sender),
                    name: sender,
                };
                self.groups.join(group, member)
            } else {
                self.groups.leave(&group, &sender)
            };
            self.render(notices);
        } else if t & KILL_MESS != 0 {
            let notices = self.groups.disconnect(&sender);
            self.render(notices);
        } else {
            self.deliver_data(msg);
        }
    }

    /// Hand notices of the group layer to the local members concerned.
    fn render(&mut self, notices: Vec<Notice>) {
        for notice in notices {
            match notice {
                Notice::Change(change) => self.notify(&change),
                Notice::SelfLeave { group, member } => {
                    if let Some(conn) = self
                        .session_of(&member)
                        .filter(|c| self.sessions[c].wants_membership)
                    {
                        self.queue_to(conn, self_leave_notice(&group));
                    }
                }
                Notice::Transitional { group, id } => {
                    let rank = self.cfg.daemon_rank;
                    let local: Vec<ConnId> = match self.groups.get(&group) {
                        Some(g) => g
                            .members_on(rank)
                            .filter_map(|m| self.session_of(&m.name))
                            .filter(|c| self.sessions[c].wants_membership)
                            .collect(),
                        None => Vec::new(),
                    };
                    let bytes = transitional_notice(&group, id);
                    for conn in local {
                        self.queue_to(conn, bytes.clone());
                    }
                }
                Notice::Network {
                    group,
                    id,
                    members,
                    vs_sets,
                    mine,
                    joiner,
                } => {
                    debug!(target: "spread::groups", "group {group}: network view {} members in {} vs-sets (id index {})",
                        members.len(), vs_sets.len(), id.index);
                    let rank = self.cfg.daemon_rank;
                    let local: Vec<(ConnId, GroupName)> = members
                        .iter()
                        .filter(|m| m.daemon_rank == rank)
                        .filter_map(|m| self.session_of(&m.name).map(|c| (c, m.name)))
                        .filter(|(c, _)| self.sessions[c].wants_membership)
                        .collect();
                    let standard = network_notice(&group, id, &members, &vs_sets, mine);
                    let local_joiner = joiner.filter(|j| j.daemon_rank == rank).map(|j| j.name);
                    for (conn, name) in local {
                        if Some(name) == local_joiner {
                            let own = network_notice(&group, id, &members, &vs_sets, vs_sets.len() - 1);
                            self.queue_to(conn, own);
                        } else {
                            self.queue_to(conn, standard.clone());
                        }
                    }
                }
            }
        }
    }

    /// Switch message flow for the groups state exchange.
    fn apply_exchange(&mut self, exchange: Exchange, now: Clock) {
        let Ordering::Ring(ring) = &mut self.ordering else {
            return;
        };
        match exchange {
            Exchange::None => {}
            Exchange::Start {
                bodies,
                synced_set_size,
            } => {
                ring.set_down_queue(DownQueue::Groups);
                ring.set_delivery_threshold(DeliveryThreshold::Agreed);
                self.exchanging = true;
                let n = bodies.len();
                for (i, body) in bodies.into_iter().enumerate() {
                    let last = i + 1 == n;
                    let encoded = body.emit(ByteOrder::NATIVE);
                    let header = groups_message_header(
                        &self.cfg.daemon_name,
                        synced_set_size,
                        last,
                        encoded.len(),
                        ByteOrder::NATIVE,
                    );
                    let mut bytes = Vec::with_capacity(MESSAGE_HEADER_LEN + encoded.len());
                    header.emit_into(ByteOrder::NATIVE, &mut bytes);
                    bytes.extend_from_slice(&encoded);
                    let packet_type = if last {
                        PacketType::Agreed
                    } else {
                        PacketType::Reliable
                    };
                    ring.submit(now, Outgoing { packet_type, bytes });
                }
            }
            Exchange::Done => {
                ring.set_down_queue(DownQueue::Normal);
                ring.set_delivery_threshold(DeliveryThreshold::Reliable);
                self.exchanging = false;
                while let Some(msg) = self.held.pop_front() {
                    self.submit(msg, now);
                }
            }
        }
    }

    fn deliver_groups_message(&mut self, bytes: &[u8], from: u32, now: Clock) {
        let Ok((header, order)) = MessageHeader::parse(bytes) else {
            return;
        };
        let body = match GroupsBody::parse(&bytes[MESSAGE_HEADER_LEN..], order) {
            Ok(body) => body,
            Err(e) => {
                warn!(target: "spread::groups", "bad GROUPS message from {}: {e}", Ipv4Addr::from(from));
                return;
            }
        };
        let sender = header.sender.as_bytes();
        let rank = self
            .cfg
            .daemon_names
            .iter()
            .position(|n| n.as_slice() == sender)
            .map(|r| r as u32);
        let size = synced_set_size_of(&header.sender, order);
        let last = header.service_type & AGREED_MESS != 0;
        let (notices, exchange) = self.groups.groups_message(rank, body, size, last);
        self.render(notices);
        self.apply_exchange(exchange, now);
    }

    /// The configuration rank of a member's daemon (members of unknown
    /// daemons sort last).
    fn daemon_rank_of(&self, member: &GroupName) -> u32 {
        let Some((_, daemon)) = member.private_parts() else {
            return u32::MAX;
        };
        if daemon == self.cfg.daemon_name.as_slice() {
            return self.cfg.daemon_rank;
        }
        self.cfg
            .daemon_names
            .iter()
            .position(|n| n.as_slice() == daemon)
            .map_or(u32::MAX, |i| i as u32)
    }

    fn session_of(&self, member: &GroupName) -> Option<ConnId> {
        self.by_private
            .get(member)
            .copied()
            .filter(|c| self.sessions.get(c).is_some_and(|s| s.is_operational()))
    }

    fn deliver_data(&mut self, msg: ClientMessage) {
        self.delivery_stamp += 1;
        let stamp = self.delivery_stamp;
        let discard = (msg.header.service_type & SELF_DISCARD != 0).then(|| msg.header.sender.clean());
        let mut receivers = std::mem::take(&mut self.receivers);
        receivers.clear();
        let rank = self.cfg.daemon_rank;
        for dest in msg.groups() {
            if dest.is_private() {
                if let Some(conn) = self.session_of(&dest) {
                    receivers.push(conn);
                }
            } else if let Some(group) = self.groups.get(&dest) {
                receivers.extend(group.members_on(rank).filter_map(|m| self.session_of(&m.name)));
            }
        }
        for &conn in &receivers {
            let Some(session) = self.sessions.get_mut(&conn) else {
                continue;
            };
            if session.last_delivery == stamp || discard == Some(session.private_group) {
                continue;
            }
            session.last_delivery = stamp;
            self.queue_to(conn, msg.bytes.clone());
        }
        self.receivers = receivers;
    }

    /// Membership notices of one group change to its local members.
    fn notify(&mut self, change: &Change) {
        let cause = match change.cause {
            Cause::Join => CAUSED_BY_JOIN,
            Cause::Leave => CAUSED_BY_LEAVE,
            Cause::Disconnect => CAUSED_BY_DISCONNECT,
        };
        debug!(target: "spread::groups", "{} {} group {} ({} members, id index {})", change.changed.name,
            match change.cause { Cause::Join => "joined", Cause::Leave => "left", Cause::Disconnect => "disconnected from" },
            change.group, change.members.len(), change.id.index);
        if change.members.is_empty() {
            return;
        }
        let notice = membership_notice(change, cause);
        let rank = self.cfg.daemon_rank;
        let local: Vec<ConnId> = change
            .members
            .iter()
            .filter(|m| m.daemon_rank == rank)
            .filter_map(|m| self.session_of(&m.name))
            .filter(|c| self.sessions[c].wants_membership)
            .collect();
        for conn in local {
            self.queue_to(conn, notice.clone());
        }
    }
}

/// The ordering layer: immediate for a daemon alone in its configuration,
/// the ring protocol otherwise.
enum Ordering {
    Local(VecDeque<ClientMessage>),
    Ring(Box<RingEngine>),
}

enum Ordered {
    Local(ClientMessage),
    Ring(RingEvent),
}

fn ids(members: &[u32]) -> String {
    members
        .iter()
        .map(|m| Ipv4Addr::from(*m).to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether delivered message bytes are a daemons' GROUPS message.
fn is_groups_message(bytes: &[u8]) -> bool {
    MessageHeader::parse(bytes).is_ok_and(|(h, _)| h.service_type & GROUPS_MESS != 0)
}

/// A message the ring delivered, its header converted to our byte order
/// (the hint stays as its writer wrote it), or why it is refused.
fn decode_ring_message(mut bytes: Vec<u8>, daemon_name: &[u8]) -> Result<ClientMessage, String> {
    let (header, order) = MessageHeader::parse(&bytes).map_err(|e| e.to_string())?;
    validate_ring_header(&header, daemon_name).map_err(|e| e.to_string())?;
    // Validated: both counts are small and non-negative.
    let expected = MESSAGE_HEADER_LEN + 32 * header.num_groups as usize + header.data_len as usize;
    if bytes.len() != expected {
        return Err(format!("{} bytes, the header says {expected}", bytes.len()));
    }
    if order != ByteOrder::NATIVE {
        bytes[..MESSAGE_HEADER_LEN].copy_from_slice(&header.emit(ByteOrder::NATIVE));
    }
    Ok(ClientMessage {
        header,
        bytes: Arc::new(bytes),
    })
}

fn session_fd(sessions: &HashMap<ConnId, Session>, conn: ConnId) -> i32 {
    sessions.get(&conn).map_or(0, |s| s.fd)
}

/// A join, leave or disconnect notice: all members as the names, one vs
/// set holding only the member that changed.
pub fn membership_notice(change: &Change, cause: u32) -> Bytes {
    let body = MembershipBody {
        group_id: change.id,
        vs_sets: vec![vec![change.changed.name]],
        my_vs_set: 0,
    };
    let header = MessageHeader {
        service_type: REG_MEMB_MESS | cause,
        sender: change.group,
        num_groups: change.members.len() as i32,
        hint: hint_for(0, ByteOrder::NATIVE),
        data_len: body.encoded_len() as i32,
    };
    let mut out = Vec::with_capacity(MESSAGE_HEADER_LEN + 32 * change.members.len() + body.encoded_len());
    header.emit_into(ByteOrder::NATIVE, &mut out);
    for m in &change.members {
        out.extend_from_slice(m.name.raw());
    }
    body.emit_into(ByteOrder::NATIVE, &mut out);
    Arc::new(out)
}

/// The notice a leaving member gets: CAUSED_BY_LEAVE alone, no body.
pub fn self_leave_notice(group: &GroupName) -> Bytes {
    let header = MessageHeader {
        service_type: CAUSED_BY_LEAVE,
        sender: *group,
        num_groups: 0,
        hint: hint_for(0, ByteOrder::NATIVE),
        data_len: 0,
    };
    Arc::new(header.emit(ByteOrder::NATIVE).to_vec())
}

/// A view after a daemon membership change: all members as the names, the
/// vs-sets, and the receiver's set.
pub fn network_notice(
    group: &GroupName,
    id: GroupId,
    members: &[Member],
    vs_sets: &[Vec<GroupName>],
    mine: usize,
) -> Bytes {
    let body = MembershipBody {
        group_id: id,
        vs_sets: vs_sets.to_vec(),
        my_vs_set: mine,
    };
    let header = MessageHeader {
        service_type: REG_MEMB_MESS | CAUSED_BY_NETWORK,
        sender: *group,
        num_groups: members.len() as i32,
        hint: hint_for(0, ByteOrder::NATIVE),
        data_len: body.encoded_len() as i32,
    };
    let mut out = Vec::with_capacity(MESSAGE_HEADER_LEN + 32 * members.len() + body.encoded_len());
    header.emit_into(ByteOrder::NATIVE, &mut out);
    for m in members {
        out.extend_from_slice(m.name.raw());
    }
    body.emit_into(ByteOrder::NATIVE, &mut out);
    Arc::new(out)
}

/// A transitional notice: the group's (old) id as the whole body.
pub fn transitional_notice(group: &GroupName, id: GroupId) -> Bytes {
    let header = MessageHeader {
        service_type: TRANSITION_MESS,
        sender: *group,
        num_groups: 0,
        hint: hint_for(0, ByteOrder::NATIVE),
        data_len: GroupId::LEN as i32,
    };
    let mut out = Vec::with_capacity(MESSAGE_HEADER_LEN + GroupId::LEN);
    header.emit_into(ByteOrder::NATIVE, &mut out);
    id.emit_into(ByteOrder::NATIVE, &mut out);
    Arc::new(out)
}

#[cfg(test)]
mod tests;
