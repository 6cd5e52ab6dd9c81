//! The daemon's sans-IO engine: client sessions and process groups over a
//! sequencer.
//!
//! The I/O shell feeds it accepted connections, bytes read, closed sockets
//! and the clock; it answers with bytes to write ([`Engine::output_chunks`])
//! and [`Output`] requests. Client messages pass through the sequencer
//! before they take effect, the way they pass through the ring in a
//! multi-daemon configuration: joins, leaves and disconnects are applied at
//! their place in the total order, and every receiver sees one order.
//!
//! This module is the handle/poll surface; the jobs behind it:
//! * `handshake`: connect request, auth exchange, accept or reject;
//! * `sessions`: client messages in, rejects, disconnects, output queues;
//! * `sequencer`: the total order (local, or the ring) and its event loop;
//! * `delivery`: ordered messages applied to groups or handed to receivers,
//!   membership notices;
//! * `exchange`: the groups state exchange after a daemon membership change;
//! * `config`: the engine's and the ring's parameters from the configuration.
//!
//! Dependencies run one way: engine -> groups, session, ring (ring and
//! membership are one engine); nothing below calls back into the engine.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Instant;

use log::{debug, warn};
use spread_wire::client::limits::{AUTH_CHOICE_LEN, DEFAULT_MAX_MESSAGE_BODY};
use spread_wire::client::{code, ConnectRequest, GroupName, MembId};

use crate::auth::AuthPolicy;
use crate::clock::Clock;
use crate::fasthash::FastMap;
use crate::groups::Groups;
use crate::ring::{Channel, RingEngine, RingParams, Transmit};
use crate::session::{BufferPool, ClientMessage, ConnId, Peer, Phase, Session};

mod alone;
mod config;
mod delivery;
mod exchange;
mod handshake;
mod intake;
mod sequencer;
mod sessions;

pub use intake::{RING_WATER_MARK, STALL};
use sequencer::Sequencer;

/// Sessions one daemon serves unless the extensions file's `MaxSessions`
/// says otherwise: the original's ceiling.
pub const MAX_SESSIONS: usize = crate::configuration::DEFAULT_MAX_SESSIONS;

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
    /// A receiver that reads, only slower than the senders write, slows
    /// the local senders down instead of being cut (`ReceiverBackPressure`).
    pub receiver_back_pressure: bool,
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
            receiver_back_pressure: true,
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
    /// `records` are the lengths of the units they are made of (what was
    /// still queued, then the reject code), each one record on the
    /// record path.
    Close {
        conn: ConnId,
        last_words: Vec<u8>,
        records: Vec<usize>,
    },
}

pub struct Engine {
    cfg: EngineConfig,
    sessions: FastMap<ConnId, Session>,
    /// When each session still in its connect phase times out.
    connect_deadlines: handshake::ConnectDeadlines,
    /// Sessions by private group name, reserved from the connect request on.
    by_private: FastMap<GroupName, ConnId>,
    groups: Groups,
    /// The current ring's membership id (group ids are made from it).
    memb_id: MembId,
    /// Where client messages get their place in the total order.
    sequencer: Sequencer,
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
    /// A daemon alone: what its local order counted, for the monitor.
    alone: alone::AloneCounters,
    /// Receivers far behind, which may pause reading from local senders.
    intake: intake::Intake,
    /// Written message buffers, reused for the next client messages.
    pool: BufferPool,
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
            sessions: FastMap::default(),
            connect_deadlines: Default::default(),
            by_private: FastMap::default(),
            groups: Groups::new(daemon_ids, daemon_rank, memb_id),
            memb_id,
            sequencer: Sequencer::Local(VecDeque::new()),
            held: VecDeque::new(),
            exchanging: false,
            outputs: VecDeque::new(),
            delivery_stamp: 0,
            rng,
            receivers: Vec::new(),
            dropped_ring_messages: 0,
            alone: Default::default(),
            intake: Default::default(),
            pool: BufferPool::default(),
        }
    }

    /// Dynamic Configuration: adopts `cfg` (this daemon's entry in the
    /// re-read file) and, on a ring, `ring` with the singleton partition if
    /// `singleton`. Sessions stay connected; the ring re-forms (now, or once
    /// a membership change in progress completes) and clients see the
    /// notices its membership change causes. Returns whether the ring
    /// reloaded now (false: postponed, or no ring).
    pub fn reload(
        &mut self,
        now: Clock,
        cfg: EngineConfig,
        ring: Option<RingParams>,
        singleton: bool,
    ) -> bool {
        self.groups
            .adopt_configuration(cfg.daemon_ids.clone(), cfg.daemon_rank);
        let mut names = cfg.daemon_names.clone();
        let mut ids = cfg.daemon_ids.clone();
        // Names of daemons that left stay known until their members are gone.
        for (name, id) in self.cfg.daemon_names.iter().zip(&self.cfg.daemon_ids) {
            if !ids.contains(id) {
                names.push(name.clone());
                ids.push(*id);
            }
        }
        self.cfg.daemon_names = names;
        self.cfg.daemon_ids = ids;
        self.cfg.daemon_rank = cfg.daemon_rank;
        self.cfg.max_session_messages = cfg.max_session_messages;
        self.cfg.receiver_back_pressure = cfg.receiver_back_pressure;
        if !cfg.receiver_back_pressure {
            self.forget_all_intake();
        }
        match (&mut self.sequencer, ring) {
            (Sequencer::Ring(r), Some(params)) => r.reload(now, params, singleton),
            // A daemon alone: the monitor's FC is undone, as a reload undoes
            // it on a ring (the original's "reset by configuration reload"),
            // and the original's one-daemon ring counts a new membership.
            (Sequencer::Local(_), Some(params)) => {
                self.alone.flow = params.flow;
                self.alone.reloads += 1;
                false
            }
            _ => false,
        }
    }

    /// An engine whose messages are ordered by the ring protocol.
    pub fn with_ring(cfg: EngineConfig, ring: RingParams, now: Clock) -> Engine {
        let mut engine = Engine::new(cfg, now);
        engine.sequencer = Sequencer::Ring(Box::new(RingEngine::new(ring, now)));
        engine
    }

    /// A datagram from another daemon.
    pub fn handle_datagram(&mut self, channel: Channel, bytes: &[u8], now: Clock) {
        if let Sequencer::Ring(ring) = &mut self.sequencer {
            ring.handle_datagram(channel, bytes, now);
        }
        self.run_sequencer(now);
    }

    /// A datagram from `from` (see [`RingEngine::handle_datagram_from`]).
    pub fn handle_datagram_from(
        &mut self,
        channel: Channel,
        from: std::net::SocketAddr,
        bytes: &[u8],
        now: Clock,
    ) {
        if let Sequencer::Ring(ring) = &mut self.sequencer {
            ring.handle_datagram_from(channel, from, bytes, now);
        }
        self.run_sequencer(now);
    }

    /// The ring engine (`None` for a daemon alone in its configuration).
    pub fn ring(&self) -> Option<&RingEngine> {
        match &self.sequencer {
            Sequencer::Ring(ring) => Some(ring),
            _ => None,
        }
    }

    /// The ring engine, to change it at run time (the monitor's partition
    /// and flow-control commands).
    pub fn ring_mut(&mut self) -> Option<&mut RingEngine> {
        match &mut self.sequencer {
            Sequencer::Ring(ring) => Some(ring),
            _ => None,
        }
    }

    /// The ring's counters (`None` without a ring).
    pub fn ring_stats(&self) -> Option<crate::ring::RingStats> {
        match &self.sequencer {
            Sequencer::Ring(ring) => Some(ring.stats()),
            _ => None,
        }
    }

    /// A datagram the ring wants sent.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        match &mut self.sequencer {
            Sequencer::Ring(ring) => ring.poll_transmit(),
            Sequencer::Local(_) => None,
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

    /// Sessions past the handshake: what the original's STATUS counts (it
    /// counts a session once its connect is accepted), so a connection
    /// that is still connecting, or one that only probed the port and has
    /// not been seen to close yet, is not a session.
    pub fn session_count(&self) -> usize {
        self.sessions.values().filter(|s| s.is_operational()).count()
    }

    // ----- events from the shell -----

    /// A client connected.
    pub fn handle_accept(&mut self, conn: ConnId, peer: Peer, fd: i32, now: Clock) {
        if self.sessions.len() >= self.cfg.max_sessions {
            warn!(target: "spread::session", "rejecting connection {conn} from {peer:?}: {} sessions (quota)", self.sessions.len());
            self.outputs.push_back(Output::Close {
                conn,
                last_words: vec![code::REJECT_QUOTA as u8],
                records: vec![1],
            });
            return;
        }
        debug!(target: "spread::session", "accepted connection {conn} from {peer:?}");
        let session = Session::new(conn, peer, fd, now.mono);
        self.connect_deadlines.arm(&session);
        self.sessions.insert(conn, session);
    }

    /// Bytes arrived from a client.
    pub fn handle_client_data(&mut self, conn: ConnId, bytes: &[u8], now: Clock) {
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        if session.is_operational() && session.input_len() == 0 {
            // Nothing buffered: frame the messages where they were read.
            self.process_messages_in(conn, bytes, now);
        } else {
            session.receive(bytes);
            self.process_input(conn, now);
        }
        self.run_sequencer(now);
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
        self.run_sequencer(now);
    }

    /// Time passed: connections that sent no connect request in 1 s go;
    /// the ring's timers run.
    pub fn handle_timeout(&mut self, now: Clock) {
        if let Sequencer::Ring(ring) = &mut self.sequencer {
            if ring.poll_timeout().is_some_and(|t| t <= now.mono) {
                ring.handle_timeout(now);
            }
        }
        while let Some((due, conn)) = self.connect_deadlines.pop_due(now.mono) {
            let waiting = self.sessions.get(&conn).map(|s| s.phase);
            if waiting == Some(Phase::AwaitConnect { deadline: due }) {
                self.process_connect(conn);
            }
        }
        self.expire_intake(now);
        self.run_sequencer(now);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let ring = match &self.sequencer {
            Sequencer::Ring(ring) => ring.poll_timeout(),
            Sequencer::Local(_) => None,
        };
        [ring, self.connect_deadlines.next(), self.next_intake_deadline()]
            .into_iter()
            .flatten()
            .min()
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

    /// The session's next records on the record path, oldest first; the
    /// bytes of those written go to [`Engine::consume_output`].
    pub fn output_records(&self, conn: ConnId) -> impl Iterator<Item = &[u8]> {
        self.sessions
            .get(&conn)
            .into_iter()
            .flat_map(|s| s.output_records())
    }

    /// One record arrived from a client on the record path (see
    /// [`spread_wire::client::records`]): it must be exactly one handshake
    /// unit or one message; anything else drops the session.
    pub fn handle_client_record(&mut self, conn: ConnId, record: &[u8], now: Clock) {
        let Some(session) = self.sessions.get_mut(&conn) else {
            return;
        };
        match session.phase {
            Phase::Operational => {
                let mut fresh = record;
                let step = session.next_message_in(
                    &mut fresh,
                    &self.cfg.daemon_name,
                    self.cfg.max_message_body,
                    &mut self.pool,
                );
                match step {
                    Ok(Some(msg)) if fresh.is_empty() => self.handle_client_message(conn, msg, now),
                    Ok(_) => self.reject_record(
                        conn,
                        &format!("a record of {} bytes is not one message", record.len()),
                        now,
                    ),
                    Err(e) => {
                        let name = session.private_group;
                        self.kill_session(conn, &format!("invalid message header from {name}: {e}"), now);
                    }
                }
            }
            Phase::AwaitConnect { .. } => match ConnectRequest::parse(record) {
                Ok((_, used)) if used != record.len() => self.reject_record(
                    conn,
                    &format!("a connect request record of {} bytes holds {used}", record.len()),
                    now,
                ),
                // A bad request is refused as on the stream, with its code.
                _ => {
                    session.receive(record);
                    self.process_input(conn, now);
                }
            },
            Phase::AwaitAuth => {
                if record.len() == AUTH_CHOICE_LEN {
                    session.receive(record);
                    self.process_input(conn, now);
                } else {
                    self.deny(conn, &format!("an auth choice record of {} bytes", record.len()));
                }
            }
            Phase::Closed => {}
        }
        self.run_sequencer(now);
    }

    /// A client on the record path broke its framing (a record cut short
    /// or holding more than one unit): one log line, and the session goes
    /// as if it had disconnected.
    pub fn reject_record(&mut self, conn: ConnId, why: &str, now: Clock) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        warn!(target: "spread::session", "connection {conn} ({}): {why}; dropping the session", session.private_group);
        if session.is_operational() {
            self.kill_session(conn, why, now);
        } else {
            self.drop_session(conn, Vec::new());
        }
        self.run_sequencer(now);
    }

    /// `n` bytes of the session's output were written.
    pub fn consume_output(&mut self, conn: ConnId, n: usize) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.consume_output(n, &mut self.pool);
        }
    }

    /// The shell wrote all the socket would take: a client with more than
    /// MaxSessionMessages messages still waiting has stopped reading and is
    /// dropped, as the original does, so the others keep being served. One
    /// that is far behind but still reading may pause the senders instead
    /// (see [`Engine::reading_paused`]).
    pub fn check_backlog(&mut self, conn: ConnId, now: Clock) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        let n = session.queued_messages();
        if n > self.cfg.max_session_messages {
            self.kill_session(conn, &format!("not reading: {n} messages queued"), now);
            self.run_sequencer(now);
        } else {
            self.judge_intake(conn, now);
        }
    }

    pub fn has_output(&self, conn: ConnId) -> bool {
        self.sessions.get(&conn).is_some_and(|s| s.has_output())
    }
}

#[cfg(test)]
mod tests;
