//! A deterministic network of daemons for tests.
//!
//! N daemons on one or more segments, a virtual clock, a seeded PRNG, and a
//! fake network ([`Wire`]) that loses, duplicates, delays (and so reorders)
//! datagrams, partitions daemons, crashes/restarts and stops them: one event
//! loop ([`Net`]) over one [`Daemon`] trait, with two kinds of daemon:
//!
//! * [`ring::RingNode`]: the ring engine alone, its deliveries logged per
//!   incarnation for the EVS checker (`sim.rs`, `sim_facts.rs`);
//! * [`engines::DaemonNode`]: the whole daemon engine with simulated clients
//!   speaking the client protocol (`sim_groups.rs`).
//!
//! [`scenario`] draws the random disturbances both simulators share. Every
//! datagram can be traced for the timing tests.

#![allow(dead_code)]

pub mod engines;
pub mod ring;
pub mod scenario;

#[allow(unused_imports)]
pub use ring::Sim;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use spread_daemon::clock::Clock;
use spread_daemon::ring::{Channel, Destination, MembId, PacketType, RingParams, SegmentConf, Transmit};

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

/// A daemon on the simulated network, as one simulator runs it. Its impls
/// ([`ring::RingNode`]: the ring engine alone; [`engines::DaemonNode`]: the
/// whole daemon with clients) are the only code that calls into the
/// engines.
pub trait Daemon: Sized {
    /// What the simulation keeps above the daemons: what they delivered,
    /// their clients. It outlives the daemons' crashes.
    type App;
    /// Starts node `i` with `params` at `clock`.
    fn start(i: usize, params: RingParams, clock: Clock, app: &mut Self::App) -> Self;
    /// Node `i` crashed.
    fn crashed(self, i: usize, app: &mut Self::App);
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_datagram(&mut self, channel: Channel, bytes: &[u8], clock: Clock);
    fn handle_timeout(&mut self, clock: Clock);
    /// One round of the engine's output: the datagrams it wants sent go
    /// into `out`, everything else to `app`. Returns whether anything
    /// besides datagrams came out.
    fn poll(
        &mut self,
        i: usize,
        at: Duration,
        clock: Clock,
        app: &mut Self::App,
        out: &mut Vec<Transmit>,
    ) -> bool;
}

/// N daemons on the simulated network: a virtual clock, the [`Wire`],
/// partitions, crashes and restarts, stopped (frozen) daemons, and one
/// event loop: datagrams first, then due timers, at each instant.
pub struct Net<D: Daemon> {
    pub n: usize,
    pub base: Instant,
    pub now: Duration,
    /// Drives the network's losses and delays.
    pub rng: Rng,
    pub net: NetParams,
    /// The running daemons (None: down).
    pub nodes: Vec<Option<D>>,
    pub app: D::App,
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
    /// their socket buffer until they are continued.
    pub frozen: Vec<bool>,
    held: Vec<Vec<(Channel, Vec<u8>)>>,
}

impl<D: Daemon> Net<D> {
    pub fn with_app(n: usize, seed: u64, net: NetParams, app: D::App) -> Net<D> {
        Net {
            n,
            base: Instant::now(),
            now: Duration::ZERO,
            rng: Rng::new(seed),
            net,
            nodes: (0..n).map(|_| None).collect(),
            app,
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

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    /// Starts node `i` (if it is down) with the layout's parameters.
    pub fn start(&mut self, i: usize) {
        if self.nodes[i].is_some() {
            return;
        }
        let mut p = params_in(&self.layout, i);
        p.flow.accelerated_ring = self.accelerated;
        (self.tweak)(&mut p);
        set_ctx(self.now, i);
        let d = D::start(i, p, self.clock(), &mut self.app);
        self.nodes[i] = Some(d);
        self.pump(i);
    }

    pub fn crash(&mut self, i: usize) {
        self.frozen[i] = false;
        self.held[i].clear();
        if let Some(d) = self.nodes[i].take() {
            d.crashed(i, &mut self.app);
        }
    }

    /// Stops node `i` (like SIGSTOP): time passes without it.
    pub fn freeze(&mut self, i: usize) {
        self.frozen[i] = true;
    }

    /// Continues node `i` (like SIGCONT) without reading what waited.
    fn unfreeze(&mut self, i: usize) {
        self.frozen[i] = false;
    }

    /// Every datagram that waited for a stopped node, at once.
    fn deliver_held(&mut self, i: usize) {
        let clock = self.clock();
        for (channel, bytes) in std::mem::take(&mut self.held[i]) {
            set_ctx(self.now, i);
            if let Some(d) = self.nodes[i].as_mut() {
                d.handle_datagram(channel, &bytes, clock);
            }
            self.pump(i);
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

    /// Moves what node `i` wants sent onto the network and the rest of its
    /// output to the app, until it is quiet.
    pub fn pump(&mut self, i: usize) {
        loop {
            let (at, clock) = (self.now, self.clock());
            let Some(d) = self.nodes[i].as_mut() else {
                return;
            };
            let mut txs = Vec::new();
            let local = d.poll(i, at, clock, &mut self.app, &mut txs);
            let progressed = local || !txs.is_empty();
            for t in txs {
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
            .filter_map(|(d, _)| d.as_ref()?.poll_timeout())
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
            // Datagrams first, then timers, both at this instant.
            if let Some(arrival) = self.wire.take_due(self.now) {
                if let Some(f) = arrival {
                    if self.frozen[f.to] {
                        self.held[f.to].push((f.channel, f.bytes));
                        continue;
                    }
                    let clock = self.clock();
                    set_ctx(self.now, f.to);
                    if let Some(d) = self.nodes[f.to].as_mut() {
                        d.handle_datagram(f.channel, &f.bytes, clock);
                        self.pump(f.to);
                    }
                }
                continue;
            }
            let clock = self.clock();
            for i in 0..self.n {
                if self.frozen[i] {
                    continue;
                }
                let due = self.nodes[i]
                    .as_ref()
                    .and_then(|d| d.poll_timeout())
                    .is_some_and(|d| d <= clock.mono);
                if due {
                    set_ctx(self.now, i);
                    if let Some(d) = self.nodes[i].as_mut() {
                        d.handle_timeout(clock);
                    }
                    self.pump(i);
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
