//! The random disturbances both simulators share: how many daemons, the
//! network's loss, duplication and delays, segments, staggered starts, then
//! partitions, heals, crashes and restarts until the chaos ends, then a heal
//! and a calmer network. Each simulator adds its own workload after it with
//! the same generator, so a seed is one reproducible scenario.

use std::time::Duration;

use super::{Daemon, Net, NetParams, Rng};

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// One scripted step: a disturbance, or the simulator's own work `W`.
#[derive(Clone, Debug)]
pub enum Action<W> {
    Start(usize),
    Crash(usize),
    Partition(Vec<u32>),
    Heal,
    /// The network calms down: loss drops to this.
    Calm(f64),
    Work(W),
}

/// How a simulator's scenarios are shaped.
pub struct Shape {
    /// Mixes the seed into the scenario generator's seed: (multiplier, xor).
    pub mix: (u64, u64),
    /// Cut the daemons into segments: with this many daemons or more, with
    /// this chance, and a third segment with half that chance.
    pub segments_from: usize,
    pub segments_chance: f64,
    pub third_segment: bool,
    /// Chaos from `chaos_from` s until `chaos_min` s plus up to `chaos_extra` s,
    /// one disturbance every 0.5 s plus up to `max_gap` s.
    pub chaos_from: f64,
    pub chaos_min: f64,
    pub chaos_extra: f64,
    pub max_gap: f64,
}

/// A drawn scenario: the network, the disturbances, and the generator to
/// draw the workload from.
pub struct Plan<W> {
    pub r: Rng,
    pub n: usize,
    pub net: NetParams,
    pub accelerated: bool,
    pub layout: Vec<usize>,
    pub acts: Vec<(Duration, Action<W>)>,
    /// When the network heals for good.
    pub heal: f64,
}

/// Draws a scenario for `seed`. `started(r, i, t, first)` returns the work
/// that follows node `i`'s start at `t` (`first`: its first start).
pub fn disturbances<W>(
    seed: u64,
    shape: &Shape,
    mut started: impl FnMut(&mut Rng, usize, f64, bool) -> Vec<(f64, W)>,
) -> Plan<W> {
    let mut r = Rng::new(seed.wrapping_mul(shape.mix.0) ^ shape.mix.1);
    let n = r.range(2, 6) as usize;
    let mut net = NetParams {
        loss: [0.0, 0.01, 0.05, 0.1, 0.2][r.range(0, 5) as usize],
        dup: if r.chance(0.5) { 0.03 } else { 0.0 },
        delay_min_ms: 0.2,
        delay_max_ms: [0.5, 2.0, 8.0][r.range(0, 3) as usize],
        fifo: true,
    };
    // A quarter of the runs reorder datagrams between two daemons too (a
    // few milliseconds of jitter). Note: with much more, a JOIN overtaken by
    // the FORM2 its sender sent after it breaks every EVS attempt when two
    // gathering representatives run in step; the original has the same
    // window, which a LAN path (FIFO, sub-millisecond) keeps closed.
    if r.chance(0.25) {
        net.fifo = false;
        net.delay_max_ms = net.delay_max_ms.min(2.0);
    }
    let accelerated = r.chance(0.5);
    // Tokens and data cross segments by unicast (the ROUTED bit,
    // representatives, REFER).
    let mut layout = vec![n];
    if n >= shape.segments_from && r.chance(shape.segments_chance) {
        let cut = r.range(1, n as u64) as usize;
        layout = vec![cut, n - cut];
        if shape.third_segment && n - cut >= 2 && r.chance(0.5) {
            let cut2 = r.range(1, (n - cut) as u64) as usize;
            layout = vec![cut, cut2, n - cut - cut2];
        }
    }
    let mut acts = Vec::new();
    let push_work = |acts: &mut Vec<(Duration, Action<W>)>, work: Vec<(f64, W)>| {
        acts.extend(work.into_iter().map(|(t, w)| (secs(t), Action::Work(w))));
    };
    for i in 0..n {
        let t = r.f64() * 2.0;
        acts.push((secs(t), Action::Start(i)));
        let work = started(&mut r, i, t, true);
        push_work(&mut acts, work);
    }
    let chaos_end = shape.chaos_min + r.f64() * shape.chaos_extra;
    let mut t = shape.chaos_from;
    let mut down: Vec<bool> = vec![false; n];
    // A restarted daemon comes back after a few seconds: ids carry Unix
    // seconds, and a daemon that installed several rings in a row has used
    // seconds ahead of the clock, which a quick restart could reuse (the
    // original behaves the same).
    let mut crashed_at: Vec<f64> = vec![0.0; n];
    while t < chaos_end {
        t += 0.5 + r.f64() * shape.max_gap;
        match r.range(0, 4) {
            0 => {
                let groups: Vec<u32> = (0..n).map(|_| r.range(0, 2) as u32).collect();
                acts.push((secs(t), Action::Partition(groups)));
            }
            1 => acts.push((secs(t), Action::Heal)),
            2 => {
                let i = r.range(0, n as u64) as usize;
                if down[i] {
                    if t - crashed_at[i] < 4.0 {
                        continue;
                    }
                    acts.push((secs(t), Action::Start(i)));
                    let work = started(&mut r, i, t, false);
                    push_work(&mut acts, work);
                } else {
                    acts.push((secs(t), Action::Crash(i)));
                    crashed_at[i] = t;
                }
                down[i] = !down[i];
            }
            _ => {}
        }
    }
    let heal = t.max(chaos_end);
    acts.push((secs(heal), Action::Heal));
    // Liveness is only expected of a calmer network: sustained 20% loss makes
    // the original's ring lose its token every few seconds.
    acts.push((secs(heal), Action::Calm(0.01)));
    for (i, d) in down.iter().enumerate() {
        if *d {
            let at = heal.max(crashed_at[i] + 4.0);
            acts.push((secs(at), Action::Start(i)));
            let work = started(&mut r, i, at, false);
            push_work(&mut acts, work);
        }
    }
    Plan {
        r,
        n,
        net,
        accelerated,
        layout,
        acts,
        heal,
    }
}

impl<W> Plan<W> {
    /// The network the plan runs on: `D`'s simulator built by `new` with the
    /// plan's segments and ring setting, and the lookup probe after a heal
    /// at 3 s instead of 30 s (keeps the scenarios short; the configuration
    /// file may set every membership timeout).
    pub fn net<D: Daemon>(&self, new: impl FnOnce(usize, NetParams) -> Net<D>) -> Net<D> {
        let mut net = new(self.n, self.net.clone());
        net.accelerated = self.accelerated;
        net.layout = self.layout.clone();
        net.tweak = |p| p.timeouts.lookup = Duration::from_secs(3);
        net
    }
}

impl<D: Daemon> Net<D> {
    /// Plays the scripted actions in time order, `work` doing the
    /// simulator's own, then runs until `end`.
    pub fn play<W>(
        &mut self,
        acts: Vec<(Duration, Action<W>)>,
        end: Duration,
        mut work: impl FnMut(&mut Self, W),
    ) {
        for (t, a) in acts {
            self.run_until(t);
            match a {
                Action::Start(i) => self.start(i),
                Action::Crash(i) => self.crash(i),
                Action::Partition(g) => self.partition(&g),
                Action::Heal => self.heal(),
                Action::Calm(loss) => self.net.loss = self.net.loss.min(loss),
                Action::Work(w) => work(self, w),
            }
        }
        self.run_until(end);
    }
}
