//! A deterministic network of ring engines for tests.
//!
//! N [`RingEngine`]s on one segment, a virtual clock, a seeded PRNG, and a
//! fake network that loses, duplicates, delays (and so reorders) datagrams,
//! partitions daemons and crashes/restarts them. Everything the engines
//! deliver is logged per daemon incarnation for the EVS checker in
//! `sim.rs`; every datagram can be traced for the timing tests.

#![allow(dead_code)]

pub mod engines;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use spread_daemon::clock::Clock;
use spread_daemon::ring::{
    Channel, DeliveryThreshold, Destination, MembId, Outgoing, PacketType, RingEngine, RingEvent, RingParams,
    SegmentConf,
};

thread_local! {
    /// Virtual time of the running simulation, for log lines.
    static NOW: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
    /// Node whose engine is running, for log lines.
    static NODE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Logs with virtual time and node (`RUST_LOG=spread_daemon=debug`).
pub fn init_logging() {
    use std::io::Write;
    let _ = env_logger::builder()
        .is_test(true)
        .format(|f, r| {
            writeln!(
                f,
                "{:9.4} d{} {:5} {}",
                NOW.with(|n| n.get()).as_secs_f64(),
                NODE.with(|n| n.get()) + 1,
                r.level(),
                r.args()
            )
        })
        .try_init();
}

fn set_ctx(now: Duration, node: usize) {
    NOW.with(|n| n.set(now));
    NODE.with(|n| n.set(node));
}

/// splitmix64: tiny, seedable, good enough for scheduling decisions.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next_u64() % (hi - lo)
        }
    }
    pub fn dur_ms(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::from_secs_f64((lo + (hi - lo) * self.f64()) / 1000.0)
    }
}

/// Daemon id of node `i`: 10.99.0.(i+1), as in the captures.
pub fn node_id(i: usize) -> u32 {
    0x0a63_0001 + i as u32
}

pub fn node_of(id: u32) -> Option<usize> {
    id.checked_sub(0x0a63_0001).map(|i| i as usize)
}

pub const CONF_HASH: u32 = 778_066_868;

pub fn params(n: usize, i: usize) -> RingParams {
    params_in(&[n], i)
}

/// Parameters of node `i` when the nodes are cut into segments of the given
/// sizes (in node order; segment `k` uses port 4803 + 10k).
pub fn params_in(layout: &[usize], i: usize) -> RingParams {
    let mut first = 0;
    let segs = layout
        .iter()
        .enumerate()
        .map(|(k, &size)| {
            let seg = SegmentConf {
                bcast: 0x0a63_00ff,
                port: 4803 + 10 * k as u16,
                daemons: (first..first + size).map(node_id).collect(),
            };
            first += size;
            seg
        })
        .collect();
    RingParams::new(node_id(i), segs, CONF_HASH)
}

/// A message the workload submitted, identified by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgId {
    pub origin: u32,
    pub incarnation: u32,
    pub ordered: bool,
    pub counter: u32,
}

const MAGIC: u32 = 0x5349_4d21;

impl MsgId {
    pub fn encode(&self, size: usize) -> Vec<u8> {
        let mut b = Vec::with_capacity(size.max(17));
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&self.origin.to_le_bytes());
        b.extend_from_slice(&self.incarnation.to_le_bytes());
        b.push(u8::from(self.ordered));
        b.extend_from_slice(&self.counter.to_le_bytes());
        let fill = (self.counter as u8).wrapping_add(self.origin as u8);
        while b.len() < size {
            b.push(fill.wrapping_add(b.len() as u8));
        }
        b
    }
    pub fn decode(b: &[u8]) -> Option<MsgId> {
        if b.len() < 17 || u32::from_le_bytes(b[0..4].try_into().ok()?) != MAGIC {
            return None;
        }
        let id = MsgId {
            origin: u32::from_le_bytes(b[4..8].try_into().ok()?),
            incarnation: u32::from_le_bytes(b[8..12].try_into().ok()?),
            ordered: b[12] != 0,
            counter: u32::from_le_bytes(b[13..17].try_into().ok()?),
        };
        let fill = (id.counter as u8).wrapping_add(id.origin as u8);
        if b[17..]
            .iter()
            .enumerate()
            .any(|(i, x)| *x != fill.wrapping_add((i + 17) as u8))
        {
            return None;
        }
        Some(id)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rec {
    Deliver {
        id: MsgId,
        ptype: PacketType,
        from: u32,
        at: Duration,
    },
    Trans {
        id: MembId,
        members: Vec<u32>,
    },
    Reg {
        id: MembId,
        members: Vec<u32>,
    },
    /// Bytes that are not a workload message.
    Garbage,
}

/// One run of one daemon process.
#[derive(Debug)]
pub struct Incarnation {
    pub node: usize,
    pub number: u32,
    pub log: Vec<Rec>,
    pub submitted: Vec<MsgId>,
    /// Still running at the end of the simulation.
    pub alive: bool,
}

pub struct Node {
    pub engine: Option<RingEngine>,
    /// Index into `Sim::incarnations` of the running one.
    pub current: Option<usize>,
    pub counters: [u32; 2],
}

#[derive(Clone, Debug)]
pub struct TraceRec {
    pub at: Duration,
    pub from: usize,
    pub to: Destination,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct NetParams {
    pub loss: f64,
    pub dup: f64,
    pub delay_min_ms: f64,
    pub delay_max_ms: f64,
    /// Datagrams between two daemons arrive in the order sent (like one
    /// switched LAN path); otherwise random delays reorder them.
    pub fifo: bool,
}

impl Default for NetParams {
    fn default() -> Self {
        NetParams {
            loss: 0.0,
            dup: 0.0,
            delay_min_ms: 0.1,
            delay_max_ms: 0.5,
            fifo: true,
        }
    }
}

struct InFlight {
    to: usize,
    channel: Channel,
    bytes: Vec<u8>,
}

/// Datagrams in flight between nodes: delay, loss, duplication, FIFO
/// links and partitions, shared by both simulators.
#[derive(Default)]
pub struct Wire {
    flights: Vec<Option<InFlight>>,
    free: Vec<usize>,
    queue: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    /// Last arrival time per (from, to), for FIFO links.
    last_arrival: std::collections::HashMap<(usize, usize), Duration>,
    seq: u64,
}

/// A datagram that reached its node.
pub struct Arrival {
    pub to: usize,
    pub channel: Channel,
    pub bytes: Vec<u8>,
}

impl Wire {
    /// Put a datagram on the wire at `now`, unless the partition `component`
    /// separates the nodes or `net` loses it; it may be duplicated.
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &mut self,
        rng: &mut Rng,
        net: &NetParams,
        component: &[u32],
        now: Duration,
        (from, to): (usize, usize),
        channel: Channel,
        bytes: &[u8],
    ) {
        if component[from] != component[to] {
            return;
        }
        let lossy = from != to;
        if lossy && rng.chance(net.loss) {
            return;
        }
        let copies = if lossy && rng.chance(net.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let d = rng.dur_ms(net.delay_min_ms, net.delay_max_ms);
            let mut at = now + d;
            if net.fifo {
                let last = self.last_arrival.entry((from, to)).or_default();
                at = at.max(*last);
                *last = at;
            }
            let f = InFlight {
                to,
                channel,
                bytes: bytes.to_vec(),
            };
            let slot = match self.free.pop() {
                Some(s) => {
                    self.flights[s] = Some(f);
                    s
                }
                None => {
                    self.flights.push(Some(f));
                    self.flights.len() - 1
                }
            };
            self.seq += 1;
            self.queue.push(Reverse((at, self.seq, slot)));
        }
    }

    /// When the next datagram arrives.
    pub fn next_at(&self) -> Option<Duration> {
        self.queue.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Take the next datagram if it has arrived by `now`. `Some(None)`: a
    /// slot came due but held nothing.
    pub fn take_due(&mut self, now: Duration) -> Option<Option<Arrival>> {
        let Reverse((at, _, slot)) = self.queue.peek().copied()?;
        if at > now {
            return None;
        }
        self.queue.pop();
        let f = self.flights[slot].take();
        self.free.push(slot);
        Some(f.map(|f| Arrival {
            to: f.to,
            channel: f.channel,
            bytes: f.bytes,
        }))
    }
}

pub struct Sim {
    pub n: usize,
    pub base: Instant,
    pub now: Duration,
    pub rng: Rng,
    pub net: NetParams,
    pub nodes: Vec<Node>,
    pub incarnations: Vec<Incarnation>,
    /// Component of each node; datagrams only flow within a component.
    pub component: Vec<u32>,
    /// Segment sizes, in node order.
    pub layout: Vec<usize>,
    pub trace: Option<Vec<TraceRec>>,
    /// Adjusts the parameters of every engine started.
    pub tweak: fn(&mut RingParams),
    /// Run the accelerated ring (the `AcceleratedRing` config setting).
    pub accelerated: bool,
    wire: Wire,
    pub unix_base: u32,
    pub steps: u64,
    /// Stopped nodes (SIGSTOP): no timers run, arriving datagrams wait in
    /// their socket buffer until [`Sim::thaw`].
    pub frozen: Vec<bool>,
    held: Vec<Vec<(Channel, Vec<u8>)>>,
}

impl Sim {
    pub fn new(n: usize, seed: u64, net: NetParams) -> Sim {
        Sim {
            n,
            base: Instant::now(),
            now: Duration::ZERO,
            rng: Rng::new(seed),
            net,
            nodes: (0..n)
                .map(|_| Node {
                    engine: None,
                    current: None,
                    counters: [0, 0],
                })
                .collect(),
            incarnations: Vec::new(),
            component: vec![0; n],
            layout: vec![n],
            trace: None,
            tweak: |_| {},
            accelerated: false,
            wire: Wire::default(),
            unix_base: 1_700_000_000,
            steps: 0,
            frozen: vec![false; n],
            held: (0..n).map(|_| Vec::new()).collect(),
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

    pub fn start(&mut self, i: usize) {
        if self.nodes[i].engine.is_some() {
            return;
        }
        let mut p = params_in(&self.layout, i);
        p.flow.accelerated_ring = self.accelerated;
        (self.tweak)(&mut p);
        let e = RingEngine::new(p, self.clock());
        let number = self.incarnations.iter().filter(|x| x.node == i).count() as u32;
        self.incarnations.push(Incarnation {
            node: i,
            number,
            log: Vec::new(),
            submitted: Vec::new(),
            alive: true,
        });
        self.nodes[i].engine = Some(e);
        self.nodes[i].current = Some(self.incarnations.len() - 1);
        self.nodes[i].counters = [0, 0];
        self.drain(i);
    }

    /// Stops node `i` (like SIGSTOP): time passes without it.
    pub fn freeze(&mut self, i: usize) {
        self.frozen[i] = true;
    }

    /// Continues node `i` (like SIGCONT): first its clients' messages that
    /// waited are read (`submit_first`, as the shell reads clients before
    /// ring sockets), then every datagram that waited, at once, with its
    /// timers long expired. Returns the ids of the submitted messages.
    pub fn thaw(&mut self, i: usize, submit_first: &[(PacketType, usize)]) -> Vec<MsgId> {
        self.frozen[i] = false;
        let ids = submit_first
            .iter()
            .filter_map(|&(ptype, size)| self.submit(i, ptype, size))
            .collect();
        let now = self.clock();
        for (channel, bytes) in std::mem::take(&mut self.held[i]) {
            set_ctx(self.now, i);
            if let Some(e) = self.nodes[i].engine.as_mut() {
                e.handle_datagram(channel, &bytes, now);
            }
            self.drain(i);
        }
        ids
    }

    pub fn crash(&mut self, i: usize) {
        self.frozen[i] = false;
        self.held[i].clear();
        self.nodes[i].engine = None;
        if let Some(c) = self.nodes[i].current.take() {
            self.incarnations[c].alive = false;
        }
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].engine.is_some()
    }

    pub fn engine(&self, i: usize) -> Option<&RingEngine> {
        self.nodes[i].engine.as_ref()
    }

    pub fn engine_mut(&mut self, i: usize) -> Option<&mut RingEngine> {
        self.nodes[i].engine.as_mut()
    }

    /// Submits a workload message of `size` bytes from node `i`.
    pub fn submit(&mut self, i: usize, ptype: PacketType, size: usize) -> Option<MsgId> {
        let c = self.nodes[i].current?;
        let ordered = ptype != PacketType::Reliable;
        let k = usize::from(ordered);
        self.nodes[i].counters[k] += 1;
        let id = MsgId {
            origin: i as u32,
            incarnation: self.incarnations[c].number,
            ordered,
            counter: self.nodes[i].counters[k],
        };
        self.incarnations[c].submitted.push(id);
        let now = self.clock();
        let e = self.nodes[i].engine.as_mut()?;
        e.submit(
            now,
            Outgoing {
                packet_type: ptype,
                bytes: id.encode(size),
            },
        );
        self.drain(i);
        Some(id)
    }

    /// Submits raw bytes (for tests that look at the wire).
    pub fn submit_raw(&mut self, i: usize, msg: Outgoing) {
        let now = self.clock();
        if let Some(e) = self.nodes[i].engine.as_mut() {
            e.submit(now, msg);
            self.drain(i);
        }
    }

    pub fn partition(&mut self, groups: &[u32]) {
        self.component.copy_from_slice(groups);
    }

    pub fn heal(&mut self) {
        self.component.iter_mut().for_each(|c| *c = 0);
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

    /// Moves everything node `i` wants to send onto the network and records
    /// what it delivers.
    pub fn drain(&mut self, i: usize) {
        loop {
            let Some(e) = self.nodes[i].engine.as_mut() else {
                return;
            };
            let mut progressed = false;
            let mut txs = Vec::new();
            while let Some(t) = e.poll_transmit() {
                txs.push(t);
            }
            let mut evs = Vec::new();
            while let Some(ev) = e.poll_event() {
                evs.push(ev);
            }
            for t in txs {
                progressed = true;
                if let Some(tr) = self.trace.as_mut() {
                    tr.push(TraceRec {
                        at: self.now,
                        from: i,
                        to: t.to,
                        bytes: t.bytes.clone(),
                    });
                }
                match t.to {
                    Destination::Segment(k) => {
                        let first: usize = self.layout.iter().take(k).sum();
                        let size = self.layout.get(k).copied().unwrap_or(0);
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
            let mut open = false;
            for ev in evs {
                progressed = true;
                let rec = match ev {
                    RingEvent::Deliver {
                        packet_type,
                        from,
                        bytes,
                    } => match MsgId::decode(&bytes) {
                        Some(id) => Rec::Deliver {
                            id,
                            ptype: packet_type,
                            from,
                            at: self.now,
                        },
                        None => Rec::Garbage,
                    },
                    RingEvent::Transitional { memb_id, members } => Rec::Trans { id: memb_id, members },
                    RingEvent::Regular { memb_id, members } => {
                        open = true;
                        Rec::Reg { id: memb_id, members }
                    }
                };
                if let Some(c) = self.nodes[i].current {
                    self.incarnations[c].log.push(rec);
                }
            }
            if open {
                // The groups layer would exchange state first; here it opens at once.
                if let Some(e) = self.nodes[i].engine.as_mut() {
                    e.set_delivery_threshold(DeliveryThreshold::Reliable);
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Time of the next thing that happens, if any.
    fn next_event(&self) -> Option<Duration> {
        let msg = self.wire.next_at();
        let timer = self
            .nodes
            .iter()
            .zip(&self.frozen)
            .filter(|(_, frozen)| !**frozen)
            .filter_map(|(n, _)| n.engine.as_ref()?.poll_timeout())
            .map(|t| t.saturating_duration_since(self.base))
            .min();
        match (msg, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the network until `end` (virtual time).
    pub fn run_until(&mut self, end: Duration) {
        while let Some(t) = self.next_event() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.steps += 1;
            // Datagrams first, then timers, both at this instant.
            if let Some(arrival) = self.wire.take_due(self.now) {
                if let Some(f) = arrival {
                    if self.frozen[f.to] {
                        self.held[f.to].push((f.channel, f.bytes));
                        continue;
                    }
                    let now = self.clock();
                    set_ctx(self.now, f.to);
                    if let Some(e) = self.nodes[f.to].engine.as_mut() {
                        e.handle_datagram(f.channel, &f.bytes, now);
                        self.drain(f.to);
                    }
                }
                continue;
            }
            let now = self.clock();
            for i in 0..self.n {
                if self.frozen[i] {
                    continue;
                }
                let due = self.nodes[i]
                    .engine
                    .as_ref()
                    .and_then(|e| e.poll_timeout())
                    .is_some_and(|d| d <= now.mono);
                if due {
                    set_ctx(self.now, i);
                    if let Some(e) = self.nodes[i].engine.as_mut() {
                        e.handle_timeout(now);
                    }
                    self.drain(i);
                }
            }
        }
        self.now = self.now.max(end);
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end);
    }
}
