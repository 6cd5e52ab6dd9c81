//! The ring engines alone on the simulated network (`sim.rs`,
//! `sim_facts.rs`): the workload submits [`MsgId`]-stamped messages straight
//! into each [`RingEngine`], and everything a daemon delivers is logged per
//! incarnation for the EVS checker.

use std::time::{Duration, Instant};

use spread_daemon::clock::Clock;
use spread_daemon::ring::{
    Channel, DeliveryThreshold, Outgoing, PacketType, RingEngine, RingEvent, RingParams, Transmit,
};

use super::{Daemon, Incarnation, MsgId, Net, NetParams, Rec};

/// The ring simulator's view above the daemons: one log per incarnation.
#[derive(Debug, Default)]
pub struct Deliveries {
    pub incarnations: Vec<Incarnation>,
}

/// A running ring engine and the incarnation it logs into.
pub struct RingNode {
    pub engine: RingEngine,
    /// Index into [`Deliveries::incarnations`].
    pub current: usize,
    /// Workload messages submitted, [RELIABLE, ordered].
    counters: [u32; 2],
}

pub type Sim = Net<RingNode>;

impl Daemon for RingNode {
    type App = Deliveries;

    fn start(i: usize, params: RingParams, clock: Clock, app: &mut Deliveries) -> RingNode {
        let engine = RingEngine::new(params, clock);
        let number = app.incarnations.iter().filter(|x| x.node == i).count() as u32;
        app.incarnations.push(Incarnation {
            node: i,
            number,
            log: Vec::new(),
            submitted: Vec::new(),
            alive: true,
        });
        RingNode {
            engine,
            current: app.incarnations.len() - 1,
            counters: [0, 0],
        }
    }

    fn crashed(self, _: usize, app: &mut Deliveries) {
        app.incarnations[self.current].alive = false;
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

    fn poll(
        &mut self,
        _: usize,
        at: Duration,
        _: Clock,
        app: &mut Deliveries,
        out: &mut Vec<Transmit>,
    ) -> bool {
        let e = &mut self.engine;
        while let Some(t) = e.poll_transmit() {
            out.push(t);
        }
        let mut any = false;
        let mut open = false;
        while let Some(ev) = e.poll_event() {
            any = true;
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
                        at,
                    },
                    None => Rec::Garbage,
                },
                RingEvent::Transitional { memb_id, members } => Rec::Trans { id: memb_id, members },
                RingEvent::Regular { memb_id, members } => {
                    open = true;
                    Rec::Reg { id: memb_id, members }
                }
            };
            app.incarnations[self.current].log.push(rec);
        }
        if open {
            // The groups layer would exchange state first; here it opens at once.
            e.set_delivery_threshold(DeliveryThreshold::Reliable);
        }
        any
    }
}

impl RingNode {
    fn submit(&mut self, clock: Clock, msg: Outgoing) {
        self.engine.submit(clock, msg);
    }
}

impl Net<RingNode> {
    pub fn new(n: usize, seed: u64, net: NetParams) -> Sim {
        Net::with_app(n, seed, net, Deliveries::default())
    }

    pub fn engine(&self, i: usize) -> Option<&RingEngine> {
        self.nodes[i].as_ref().map(|d| &d.engine)
    }

    pub fn engine_mut(&mut self, i: usize) -> Option<&mut RingEngine> {
        self.nodes[i].as_mut().map(|d| &mut d.engine)
    }

    /// The incarnation node `i` runs, if it is up.
    pub fn current(&self, i: usize) -> Option<&Incarnation> {
        let d = self.nodes[i].as_ref()?;
        Some(&self.app.incarnations[d.current])
    }

    /// Continues node `i` (like SIGCONT): first its clients' messages that
    /// waited are read (`submit_first`, as the shell reads clients before
    /// ring sockets), then every datagram that waited, at once, with its
    /// timers long expired. Returns the ids of the submitted messages.
    pub fn thaw(&mut self, i: usize, submit_first: &[(PacketType, usize)]) -> Vec<MsgId> {
        self.unfreeze(i);
        let ids = submit_first
            .iter()
            .filter_map(|&(ptype, size)| self.submit(i, ptype, size))
            .collect();
        self.deliver_held(i);
        ids
    }

    /// Submits a workload message of `size` bytes from node `i`.
    pub fn submit(&mut self, i: usize, ptype: PacketType, size: usize) -> Option<MsgId> {
        let clock = self.clock();
        let d = self.nodes[i].as_mut()?;
        let inc = &mut self.app.incarnations[d.current];
        let ordered = ptype != PacketType::Reliable;
        let k = usize::from(ordered);
        d.counters[k] += 1;
        let id = MsgId {
            origin: i as u32,
            incarnation: inc.number,
            ordered,
            counter: d.counters[k],
        };
        inc.submitted.push(id);
        d.submit(
            clock,
            Outgoing {
                packet_type: ptype,
                bytes: id.encode(size),
            },
        );
        self.pump(i);
        Some(id)
    }

    /// Submits raw bytes (for tests that look at the wire).
    pub fn submit_raw(&mut self, i: usize, msg: Outgoing) {
        let clock = self.clock();
        if let Some(d) = self.nodes[i].as_mut() {
            d.submit(clock, msg);
            self.pump(i);
        }
    }
}
