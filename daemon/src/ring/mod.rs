//! The daemon ring: Spread's token protocol as a sans-IO state machine.
//!
//! [`RingEngine`] is one daemon's ring protocol. It owns the packet store
//! ([`crate::packet_store`]) and the membership algorithm
//! ([`crate::membership::Membership`]), feeds the latter its datagrams and
//! acts on what it answers; membership never calls back. It never reads a
//! clock or touches a socket: the I/O shell feeds it datagrams
//! ([`RingEngine::handle_datagram`]) and timer expiries
//! ([`RingEngine::handle_timeout`]), and drains what it asks for
//! ([`RingEngine::poll_transmit`], [`RingEngine::poll_event`],
//! [`RingEngine::poll_timeout`]).
//!
//! What it does: sequence numbers, the token's aru / aru_last_id, retransmission
//! requests and answers, flow control (Window, PersonalWindow, accelerated
//! ring), delivery (RELIABLE at once, FIFO/AGREED in total order, SAFE once
//! the token shows every member has it), the idle hold of the token at the
//! leader with a hurry retransmission every `hurry` timeout, token loss.
//!
//! What it deliberately does not do: client sessions and groups (the layer
//! above decodes delivered message bytes), sockets, configuration parsing.
//!
//! Where the guarantees are shown:
//! * `daemon/tests/sim.rs`: the seeded simulator (loss, duplication,
//!   reordering, partitions, crashes, several segments) with the EVS checker
//!   (total order, virtual synchrony, SAFE, self delivery, no gaps), 1,000
//!   seeds per run;
//! * `daemon/tests/sim_facts.rs`: the original's observed timing (idle token
//!   every 0.5 s with RETRANS 1, token loss after 1.25 s, ring formation,
//!   FORM tokens twice, lookup merge after 30 s, flow control windows, the
//!   configuration hash keeping a daemon out);
//! * `daemon/tests/ring_replay.rs`: the captured 4.4 ring formation replayed
//!   to one engine as d1, d2 and d3, answered byte for byte;
//! * `wire.rs` tests: every captured datagram converts and re-encodes to the
//!   same bytes.

mod flow_control;
mod monitor;
mod protocol;
mod reload;
mod reply_hold;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

pub use crate::ring_conf::{Channel, Destination, Members, SegmentConf};
pub(crate) use monitor::is_client_data_message;
pub use monitor::RingStatus;
pub use spread_wire::client::MembId;

pub(crate) use crate::packet_store::{PacketStore, Slot, Stored, MAX_PACKETS_AHEAD};
pub(crate) use crate::ring_conf::{ip, Conf};
pub(crate) use crate::timers::{RingTimer as Timer, Timers};
pub(crate) use flow_control::FlowControl;
use spread_wire::daemon::{self as wire, bits, Fragment, PacketHeader, TokenHeader};

use crate::clock::Clock;
use crate::membership::{AcceptedForm2, Membership, MembershipEvent, Rejected};
use crate::ring_conf::Site;

/// The membership timeouts: the configuration's own type (LAN and
/// wide-area defaults of the original there; the file may override).
pub use crate::configuration::MembershipTimeouts as Timeouts;

/// Flow control parameters (`spread_params.h` defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowParams {
    /// Packets the whole ring may send per token rotation.
    pub window: i32,
    /// Packets one daemon may send per token visit.
    pub personal_window: i32,
    /// Send the token before the last `accelerated_window` new packets.
    pub accelerated_ring: bool,
    pub accelerated_window: i32,
}

impl Default for FlowParams {
    /// The original's effective defaults. Its membership code turns the
    /// accelerated ring on for LAN configurations, but only after flow
    /// control has read the setting, so unless the configuration file sets
    /// `AcceleratedRing` the token waits for a daemon's new packets (the
    /// captures show data before the token).
    fn default() -> Self {
        FlowParams {
            window: 160,
            personal_window: 20,
            accelerated_ring: false,
            accelerated_window: 15,
        }
    }
}

/// Everything the engine needs to know about the configuration.
#[derive(Clone, Debug)]
pub struct RingParams {
    /// This daemon's id (its IPv4 address as a host-order integer).
    pub my_id: u32,
    pub segments: Vec<SegmentConf>,
    /// Hash of the configuration; traffic with another value is dropped.
    pub conf_hash: u32,
    pub timeouts: Timeouts,
    pub flow: FlowParams,
    /// Longest reply hold of the token (see `reply_hold`); zero: never.
    pub reply_hold: Duration,
}

impl RingParams {
    /// Parameters with the original's defaults: LAN timeouts unless the
    /// segments are on different /16 networks, default flow control.
    pub fn new(my_id: u32, segments: Vec<SegmentConf>, conf_hash: u32) -> RingParams {
        let wide = Conf::new(segments.clone()).wide_area();
        RingParams {
            my_id,
            segments,
            conf_hash,
            timeouts: Timeouts::defaults(wide),
            flow: FlowParams::default(),
            reply_hold: crate::configuration::DEFAULT_TOKEN_REPLY_HOLD,
        }
    }
}

pub use crate::ring_conf::Transmit;

/// How a message travels in the ring (the packet type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PacketType {
    Reliable,
    Fifo,
    Agreed,
    Safe,
}

impl PacketType {
    pub fn bits(self) -> u32 {
        match self {
            PacketType::Reliable => bits::RELIABLE,
            PacketType::Fifo => bits::FIFO,
            PacketType::Agreed => bits::AGREED,
            PacketType::Safe => bits::SAFE,
        }
    }

    /// The type of the lowest service bit of a packet type word.
    pub fn of_bits(t: u32) -> Option<PacketType> {
        if t & bits::SAFE != 0 {
            Some(PacketType::Safe)
        } else if t & bits::AGREED != 0 {
            Some(PacketType::Agreed)
        } else if t & bits::FIFO != 0 {
            Some(PacketType::Fifo)
        } else if t & (bits::RELIABLE | 1) != 0 {
            Some(PacketType::Reliable)
        } else {
            None
        }
    }

    /// The packet type for a client service: UNRELIABLE travels as RELIABLE,
    /// CAUSAL as AGREED, control requests (no service bit) as AGREED.
    pub fn for_service(service: u32) -> PacketType {
        use spread_wire::client::service::*;
        if service & SAFE_MESS != 0 {
            PacketType::Safe
        } else if service & (AGREED_MESS | CAUSAL_MESS) != 0 {
            PacketType::Agreed
        } else if service & FIFO_MESS != 0 {
            PacketType::Fifo
        } else if service & (RELIABLE_MESS | UNRELIABLE_MESS) != 0 {
            PacketType::Reliable
        } else {
            PacketType::Agreed
        }
    }
}

/// A message for the ring: the session layer's encoding of a client message
/// (48-byte header, group names, body) and how it travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub packet_type: PacketType,
    pub bytes: Vec<u8>,
}

/// What the engine tells the layer above, in EVS order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RingEvent {
    /// A whole message, in delivery order.
    Deliver {
        packet_type: PacketType,
        from: u32,
        bytes: Vec<u8>,
    },
    /// The transitional configuration: old-ring members moving on together.
    Transitional { memb_id: MembId, members: Vec<u32> },
    /// A new regular configuration is installed.
    Regular { memb_id: MembId, members: Vec<u32> },
}

/// The lowest service the engine delivers on its own (the groups layer
/// raises it during a state exchange, like `Prot_set_delivery_threshold`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeliveryThreshold {
    /// Everything flows (normal operation).
    Reliable,
    Fifo,
    Agreed,
    Safe,
    /// Only delivery tied to stability and membership happens.
    Blocked,
}

/// The two send queues: client traffic and the groups state exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DownQueue {
    Normal,
    Groups,
}

/// A message waiting to be sent, cut into packet-sized pieces.
#[derive(Clone, Debug)]
pub(crate) struct DownMessage {
    pub packet_type: u32,
    pub pieces: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct SendQueue {
    pub messages: VecDeque<DownMessage>,
    /// Pieces of the first message already put in packets.
    pub cur_piece: usize,
}

/// A packet built but not yet on the wire (accelerated ring).
#[derive(Clone, Debug)]
pub(crate) struct PendingBcast {
    pub seq: i32,
}

/// The token the leader holds on an idle ring, built but never sent: what
/// its visit needs to be done again with the leader's own new packets.
#[derive(Clone, Debug)]
pub(crate) struct HeldToken {
    /// The token as built (equal to `last_token` while it is still held).
    pub token: TokenHeader,
    /// The flow-control count of the token as it arrived.
    pub fc_in: i32,
    /// The retransmission requests it carries.
    pub rtr: Vec<spread_wire::daemon::RingRtr>,
    /// Held for a local answer (any daemon), not on an idle ring (leader).
    pub for_reply: bool,
}

/// Statistics for tests and the monitor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    pub tokens_handled: u64,
    pub retransmissions_sent: u64,
    pub packets_sent: u64,
    pub memberships_installed: u64,
    pub dropped_conf_hash: u64,
    /// Datagrams dropped as malformed or foreign: too short, wrong length,
    /// unknown type, another configuration's hash, from a daemon or an
    /// address outside the configuration (the monitor's `status` shows it).
    pub dropped_datagrams: u64,
    /// New data packets taken from other daemons (status `packet_recv`).
    pub packets_received: u64,
    /// Data packets delivered, own and others' (status `packet_delivered`).
    pub packets_delivered: u64,
    /// Retransmissions by unicast, to a segment, by broadcast.
    pub retrans_unicast: u64,
    pub retrans_segment: u64,
    pub retrans_broadcast: u64,
    /// Leader: its hurry re-sends of the token; others: new tokens that
    /// carried a retransmission count (the original's `token_hurry`).
    pub token_hurries: u64,
    /// Client data messages delivered (status `message_delivered`).
    pub messages_delivered: u64,
    /// Packets and tokens ignored because of the monitor's partition.
    pub dropped_by_partition: u64,
    /// Token visits held for a local answer, and how many got one.
    pub reply_holds: u64,
    pub reply_holds_answered: u64,
}

/// How often the ring says it dropped datagrams (one line per window, with
/// the count, however many arrive: a flood must not flood the log).
pub(crate) const DROP_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Rate limit of the dropped-datagram log line.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DropLog {
    last_line: Option<Instant>,
    unlogged: u64,
}

/// One daemon's ring protocol and membership engine.
pub struct RingEngine {
    pub(crate) fc: FlowControl,
    pub(crate) timers: Timers<Timer>,

    // --- ring protocol state (`Aru`, `My_aru`, ... of the original) ---
    pub(crate) store: PacketStore,
    pub(crate) last_seq: i32,
    pub(crate) token_rounds: i32,
    pub(crate) received_token_rounds: i32,
    pub(crate) token_counter: i32,
    /// Regular tokens this daemon handled in `OP` since the configuration
    /// was installed (the early SAFE rule waits until the ring's token
    /// carries only this configuration's aru, see `successor_stable`).
    pub(crate) op_visits: u32,
    /// The last token this daemon passed on (header only, as re-sent).
    pub(crate) last_token: TokenHeader,
    /// The token held and not sent yet (see [`HeldToken`]): by the leader
    /// of an idle ring, or by any daemon for a local answer.
    pub(crate) held: Option<HeldToken>,
    pub(crate) reply_hold: reply_hold::ReplyHold,
    pub(crate) down: [SendQueue; 2],
    pub(crate) active_down: usize,
    pub(crate) up: HashMap<usize, Vec<Vec<u8>>>,
    pub(crate) pending_bcast: VecDeque<PendingBcast>,
    pub(crate) threshold: DeliveryThreshold,
    pub(crate) prev_proc: u32,
    /// Accelerated ring: the previous round's packets are all in, so the
    /// shell should read the token port before the data port.
    pub(crate) token_has_priority: bool,
    /// Where tokens go: membership that `Net_set_membership` last got.
    pub(crate) net_members: Members,

    /// The membership algorithm; it also holds this daemon's [`Site`].
    pub(crate) memb: Membership,

    pub(crate) out: VecDeque<Transmit>,
    pub(crate) events: VecDeque<RingEvent>,
    pub(crate) stats: RingStats,
    pub(crate) drop_log: DropLog,
    /// The monitor's partition: component per daemon id.
    pub(crate) partition: Option<HashMap<u32, i16>>,
    /// A configuration reload postponed until the ring is in OP.
    pub(crate) pending_reload: Option<reload::PendingReload>,
    /// A reload's singleton partition: every other daemon is ignored until
    /// this daemon's singleton ring is installed.
    pub(crate) reload_singleton: bool,
}

impl RingEngine {
    /// A daemon that has just started: alone, probing for others.
    pub fn new(params: RingParams, now: Clock) -> RingEngine {
        let conf = Conf::new(params.segments);
        if !conf.knows(params.my_id) {
            log::error!("ring: my id {} is not in the configuration", ip(params.my_id));
        }
        let me = conf.ordered([params.my_id]);
        let site = Site::new(params.my_id, conf, params.conf_hash, params.timeouts);
        let mut store = PacketStore::default();
        let memb = Membership::start(site, now, &mut store);
        let mut e = RingEngine {
            fc: FlowControl::new(params.flow),
            timers: Timers::default(),
            store,
            last_seq: 0,
            token_rounds: 0,
            received_token_rounds: 0,
            token_counter: 0,
            op_visits: 0,
            last_token: TokenHeader::default(),
            held: None,
            reply_hold: reply_hold::ReplyHold::new(params.reply_hold),
            down: [SendQueue::default(), SendQueue::default()],
            active_down: 0,
            up: HashMap::new(),
            pending_bcast: VecDeque::new(),
            threshold: DeliveryThreshold::Blocked,
            prev_proc: 0,
            token_has_priority: false,
            net_members: me,
            memb,
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: RingStats::default(),
            drop_log: DropLog::default(),
            partition: None,
            pending_reload: None,
            reload_singleton: false,
        };
        e.absorb_membership(now);
        e
    }

    /// Queues a message for the ring (on the active send queue); on an idle
    /// ring it asks for the token at `now`.
    pub fn submit(&mut self, now: Clock, msg: Outgoing) {
        let pieces: Vec<Vec<u8>> = if msg.bytes.is_empty() {
            vec![Vec::new()]
        } else {
            msg.bytes.chunks(wire::BODY_LEN).map(|c| c.to_vec()).collect()
        };
        let q = &mut self.down[self.active_down];
        q.messages.push_back(DownMessage {
            packet_type: msg.packet_type.bits(),
            pieces,
        });
        if q.messages.len() == 1 {
            if self.is_reply_held() {
                self.end_reply_hold(now, true);
            } else if self.is_token_held() {
                self.ask_for_token(now);
            }
        }
    }

    /// Messages waiting on the active send queue (the original blocks
    /// sessions above 500).
    pub fn queued_messages(&self) -> usize {
        self.down[self.active_down].messages.len()
    }

    /// Selects the queue [`RingEngine::submit`] appends to and packets are
    /// taken from (`Prot_set_down_queue`).
    pub fn set_down_queue(&mut self, q: DownQueue) {
        self.active_down = match q {
            DownQueue::Normal => 0,
            DownQueue::Groups => 1,
        };
    }

    /// Changes the delivery threshold; lowering it delivers what it held back.
    pub fn set_delivery_threshold(&mut self, t: DeliveryThreshold) {
        let old = self.threshold;
        self.threshold = t;
        if t < old {
            if t <= DeliveryThreshold::Reliable {
                self.deliver_reliable(1, self.store.highest_seq);
            }
            if t <= DeliveryThreshold::Agreed {
                self.deliver_agreed();
            }
        }
    }

    pub fn delivery_threshold(&self) -> DeliveryThreshold {
        self.threshold
    }

    /// A datagram that arrived on `channel`.
    pub fn handle_datagram(&mut self, channel: Channel, bytes: &[u8], now: Clock) {
        // Timers that expired before this datagram was read run first, as
        // the original's event loop runs due timers before reading sockets:
        // after a stall (SIGSTOP, a VM pause) a token that waited in the
        // socket through the token-loss timeout belongs to a dead ring.
        if self.poll_timeout().is_some_and(|due| due < now.mono) {
            self.handle_timeout(now);
        }
        match channel {
            Channel::Data => self.handle_packet(now, bytes),
            Channel::Token => self.handle_token_datagram(now, bytes),
        }
    }

    /// A datagram that arrived on `channel` from `from`. Datagrams from an
    /// address that is neither a configured daemon's nor this host's
    /// loopback are dropped and counted (monitor packets excepted: the
    /// monitor program may run anywhere): a forged or mangled copy of a
    /// real packet from outside the ring must not enter its order.
    pub fn handle_datagram_from(
        &mut self,
        channel: Channel,
        from: std::net::SocketAddr,
        bytes: &[u8],
        now: Clock,
    ) {
        let known = match from.ip() {
            std::net::IpAddr::V4(a) => a.is_loopback() || self.site().conf.knows(u32::from(a)),
            std::net::IpAddr::V6(_) => false,
        };
        let monitor = channel == Channel::Data && protocol::is_monitor_packet(bytes);
        if !(known || monitor) {
            self.drop_datagram(
                now,
                format_args!("from {from}, an address outside the configuration"),
            );
            return;
        }
        self.handle_datagram(channel, bytes, now);
    }

    /// Runs every timer due at `now`, the ring's and the membership
    /// algorithm's, earliest first.
    pub fn handle_timeout(&mut self, now: Clock) {
        // Bounded: a configuration with zero timeouts must not spin here.
        for _ in 0..64 {
            let ring = self.timers.peek_due(now.mono);
            let memb = self.memb.next_due(now.mono);
            match (ring, memb) {
                (None, None) => break,
                // On equal deadlines the ring's timer runs first.
                (Some((t, due)), m) if m.is_none_or(|m| due.0 <= m.0) => {
                    self.timers.clear(t);
                    self.fire(now, t);
                }
                _ => {
                    self.memb.handle_timeout(now, &self.store);
                    self.absorb_membership(now);
                }
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.timers.next(), self.memb.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_event(&mut self) -> Option<RingEvent> {
        self.events.pop_front()
    }

    pub fn my_id(&self) -> u32 {
        self.memb.site.my_id
    }

    /// This daemon in its configuration.
    pub(crate) fn site(&self) -> &Site {
        &self.memb.site
    }

    /// The regular membership and its id.
    pub fn membership(&self) -> (MembId, &[u32]) {
        (self.memb.membership_id(), self.memb.members().ids())
    }

    /// Whether a ring is installed and its token circulates (`OP`, or the
    /// leader's periodic `GATHER` probe).
    pub fn is_operational(&self) -> bool {
        use crate::membership::State;
        self.memb.token_alive() && matches!(self.memb.state(), State::Op | State::Gather)
    }

    /// Whether the shell should serve the token port before the data port
    /// (the accelerated ring's priority switch: set once a packet of a newer
    /// round arrives from the predecessor, cleared when a token is handled).
    pub fn token_has_priority(&self) -> bool {
        self.token_has_priority
    }

    pub fn stats(&self) -> RingStats {
        self.stats
    }

    /// Counts a datagram dropped as malformed or foreign and says so in the
    /// log at most once per [`DROP_LOG_INTERVAL`] (the rest at debug level).
    pub(crate) fn drop_datagram(&mut self, now: Clock, why: std::fmt::Arguments<'_>) {
        self.stats.dropped_datagrams += 1;
        let due = self
            .drop_log
            .last_line
            .is_none_or(|t| now.mono.saturating_duration_since(t) >= DROP_LOG_INTERVAL);
        if due {
            log::warn!(
                "ring: dropped a datagram: {why} ({} more dropped since the last such line, {} in all)",
                self.drop_log.unlogged,
                self.stats.dropped_datagrams
            );
            self.drop_log = DropLog {
                last_line: Some(now.mono),
                unlogged: 0,
            };
        } else {
            self.drop_log.unlogged += 1;
            log::debug!("ring: dropped a datagram: {why}");
        }
    }

    fn fire(&mut self, now: Clock, t: Timer) {
        match t {
            Timer::TokenLoss => self.token_loss(now),
            Timer::Hurry => self.token_hurry(now),
            Timer::Reload => self.run_pending_reload(now),
            Timer::ReplyHold => self.end_reply_hold(now, false),
        }
    }

    /// Declares the ring lost to the membership algorithm.
    pub(crate) fn token_loss(&mut self, now: Clock) {
        self.memb.token_loss(now, &mut self.store);
        self.absorb_membership(now);
    }

    /// Takes what the membership algorithm asked for: its datagrams, in
    /// order, and the ring's part of its events.
    pub(crate) fn absorb_membership(&mut self, now: Clock) {
        while let Some(t) = self.memb.poll_transmit() {
            self.out.push_back(t);
        }
        while let Some(e) = self.memb.poll_event() {
            match e {
                MembershipEvent::TokenLost => {
                    self.drop_reply_hold();
                    self.threshold = DeliveryThreshold::Blocked;
                    self.disarm(Timer::TokenLoss);
                    self.disarm(Timer::Hurry);
                    self.last_token.kind = 0;
                    self.last_token.seq = 0;
                    self.last_token.aru = 0;
                }
                MembershipEvent::FormSent => {
                    self.drop_reply_hold();
                    let form = self.site().timeouts.form;
                    self.arm(now, Timer::TokenLoss, form);
                    self.disarm(Timer::Hurry);
                    self.threshold = DeliveryThreshold::Blocked;
                }
            }
        }
    }

    /// Drops a membership datagram the membership algorithm refused.
    pub(crate) fn membership_rejected(&mut self, now: Clock, r: Result<(), Rejected>) {
        if let Err(why) = r {
            self.drop_datagram(now, format_args!("{why}"));
        }
    }

    /// A FORM1 or FORM2 token.
    pub(crate) fn handle_form(&mut self, now: Clock, bytes: &[u8]) {
        match self.memb.handle_form(now, bytes, &mut self.store) {
            Err(why) => self.drop_datagram(now, format_args!("{why}")),
            Ok(None) => self.absorb_membership(now),
            Ok(Some(accepted)) => {
                self.absorb_membership(now);
                self.begin_evs(now, accepted);
            }
        }
    }

    /// The ring's part of a FORM2: tokens go to the new ring, the old ring
    /// delivers what it can, then the membership algorithm enters EVS and
    /// the new ring's token starts.
    fn begin_evs(&mut self, now: Clock, accepted: AcceptedForm2) {
        let me = self.my_id();
        self.last_seq = accepted.seq();
        self.net_members = self.memb.future_members().clone();
        self.prev_proc = self.net_members.previous_of(me).unwrap_or(me);
        self.fc.new_configuration();
        // Still in FORM: delivers the old ring's packets up to its aru.
        self.discard_packets(now);
        let first_token = self.memb.start_evs(now, accepted, &mut self.store);
        self.absorb_membership(now);
        self.token_rounds = i32::from(first_token);
        let token = self.site().timeouts.token;
        self.arm(now, Timer::TokenLoss, token);
        self.received_token_rounds = 0;
        self.last_token = TokenHeader::default();
        self.store.aru = 0;
        self.op_visits = 0;
    }

    pub(crate) fn arm(&mut self, now: Clock, t: Timer, after: Duration) {
        self.timers.set(t, now.mono + after);
    }

    pub(crate) fn disarm(&mut self, t: Timer) {
        self.timers.clear(t);
    }

    pub(crate) fn send(&mut self, to: Destination, bytes: Vec<u8>) {
        self.out.push_back(Transmit { to, bytes });
    }

    /// The leader of the ring currently in use (future ring in EVS).
    pub(crate) fn active_leader(&self) -> Option<u32> {
        self.memb.active().leader()
    }

    pub(crate) fn i_am_leader(&self) -> bool {
        self.active_leader() == Some(self.my_id())
    }

    /// `Net_bcast`: to my segment, and to the first member of every other
    /// segment of the ring with the ROUTED bit.
    pub(crate) fn net_bcast(&mut self, header: &PacketHeader, frags: &[Fragment]) {
        let site = &self.memb.site;
        let mut h = *header;
        h.transmitter = site.my_id;
        h.conf_hash = site.conf_hash;
        let other_segs: Vec<u32> = (0..site.conf.segments.len())
            .filter(|s| *s != site.my_seg)
            .filter_map(|s| self.net_members.first_in_segment(&site.conf, s))
            .collect();
        if !other_segs.is_empty() {
            let mut routed = h;
            routed.kind |= bits::ROUTED;
            let bytes = wire::emit_data(&routed, frags);
            for id in other_segs {
                self.send(
                    Destination::Daemon {
                        id,
                        channel: Channel::Data,
                    },
                    bytes.clone(),
                );
            }
        }
        if self.site().bcast_needed() {
            let seg = self.site().my_seg;
            self.send(Destination::Segment(seg), wire::emit_data(&h, frags));
        }
    }

    /// `Net_send_token`: to the next daemon of the net membership.
    pub(crate) fn send_token_next(&mut self, bytes: Vec<u8>) {
        let me = self.my_id();
        let next = self.net_members.next_of(me).unwrap_or(me);
        self.send(
            Destination::Daemon {
                id: next,
                channel: Channel::Token,
            },
            bytes,
        );
    }
}

#[cfg(test)]
mod tests;
