//! Seeded simulation of the ring and membership engines with an extended
//! virtual synchrony (EVS) checker.
//!
//! Each seed builds a random scenario: 2-5 daemons start staggered, then
//! random partitions (healed later), crashes and restarts, loss up to 20%,
//! duplication, and delays that reorder, all under random client traffic of
//! every service (some messages span several packets). Then the network heals
//! and goes quiet, and the logs are checked by the EVS checker
//! (`checks/evs.rs`), one named check per guarantee: configuration agreement,
//! self inclusion, transitional within regular, no duplicates, intact
//! payloads, FIFO without gaps, virtual synchrony, transitional delivery,
//! AGREED total order, SAFE stability, self delivery, one ring at the end.
//! The table at the top of that module says what each promises and how
//! `checker_catches_violations` breaks it; a failure names its check.
//!
//! The scenario's disturbances come from `simnet::scenario` (shared with
//! `sim_groups.rs`), the daemons run on `simnet::Net<RingNode>`.
//!
//! `SIM_SEEDS=n` sets the sweep size (default 1000), `SIM_FIRST_SEED` its
//! first seed, `SIM_FINGERPRINTS=1` prints each seed's fingerprint (to show a
//! refactor replays every seed the same); `SIM_SEED=s` runs one seed
//! (`one_seed`) with a full report.

#[path = "checks/evs.rs"]
mod evs;
mod simnet;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use evs::{check, name, Violation};
use simnet::scenario::{self, secs};
use simnet::{Incarnation, MsgId, NetParams, Rec, Sim};
use spread_daemon::ring::{MembId, PacketType};

#[derive(Clone, Debug)]
enum Work {
    Submit(usize, PacketType, usize),
}

type Action = scenario::Action<Work>;

/// How long the network settles after the last disturbance.
const SETTLE: f64 = 14.0;

const SHAPE: scenario::Shape = scenario::Shape {
    mix: (0x2545_f491_4f6c_dd1d, 0x1234),
    // A third of the runs cut the daemons into two or three segments.
    segments_from: 2,
    segments_chance: 0.33,
    third_segment: true,
    chaos_from: 3.0,
    chaos_min: 4.0,
    chaos_extra: 8.0,
    max_gap: 3.0,
};

/// A random scenario for `seed`; returns the sim and the scripted actions.
fn scenario(seed: u64) -> (Sim, Vec<(Duration, Action)>, Duration) {
    let mut plan = scenario::disturbances(seed, &SHAPE, |_, _, _, _| Vec::new());
    let sim = plan.net(|n, net| Sim::new(n, seed, net));
    let r = &mut plan.r;
    // Traffic until shortly after the heal (it also triggers the merges).
    let rate = [2.0, 6.0, 15.0][r.range(0, 3) as usize];
    let traffic_end = plan.heal + 2.0;
    // The last 8 s are lossless, so the final check sees a settled ring.
    plan.acts
        .push((secs(traffic_end + SETTLE - 8.0), Action::Calm(0.0)));
    for i in 0..plan.n {
        let mut tt = 1.0 + r.f64();
        while tt < traffic_end {
            tt += -(1.0 - r.f64()).ln() / rate;
            let ptype = [
                PacketType::Reliable,
                PacketType::Fifo,
                PacketType::Agreed,
                PacketType::Safe,
            ][r.range(0, 4) as usize];
            let size = if r.chance(0.08) {
                r.range(1400, 5000)
            } else {
                r.range(17, 300)
            } as usize;
            plan.acts
                .push((secs(tt), Action::Work(Work::Submit(i, ptype, size))));
        }
    }
    plan.acts.sort_by_key(|(t, _)| *t);
    (sim, plan.acts, secs(traffic_end + SETTLE))
}

fn run(seed: u64) -> Sim {
    let (mut sim, acts, end) = scenario(seed);
    sim.play(acts, end, |sim, Work::Submit(i, p, s)| {
        sim.submit(i, p, s);
    });
    sim
}

fn repro(seed: u64) -> String {
    format!("SIM_SEED={seed} cargo test -p spread-daemon --test sim -- one_seed --nocapture")
}

/// A hash of everything a run delivered and of its step count: a change
/// that must not alter the simulation (a refactor) leaves every seed's
/// fingerprint as it was (`SIM_FINGERPRINTS=1`; same toolchain).
fn fingerprint(sim: &Sim) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{:?}", sim.app.incarnations).hash(&mut h);
    sim.steps.hash(&mut h);
    h.finish()
}

/// The EVS properties over many seeds.
#[test]
fn evs_sweep() {
    let n: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let first: u64 = std::env::var("SIM_FIRST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let seeds: Vec<u64> = (first..first + n).collect();
    let fingerprints = std::env::var_os("SIM_FINGERPRINTS").is_some();
    let threads = 2;
    // (failures, [configurations, shrinking transitions, deliveries, crashes,
    // reply holds of the daemons up at the end, of which answered])
    type Outcome = (Vec<(u64, Vec<Violation>)>, [u64; 6]);
    let (failures, stats): Outcome = std::thread::scope(|s| {
        let hs: Vec<_> = seeds
            .chunks(seeds.len().div_ceil(threads).max(1))
            .map(|chunk| {
                s.spawn(move || {
                    let mut fails = Vec::new();
                    let mut st = [0u64; 6];
                    for &seed in chunk {
                        let sim = run(seed);
                        if fingerprints {
                            eprintln!(
                                "seed {seed} fingerprint {:016x} steps {}",
                                fingerprint(&sim),
                                sim.steps
                            );
                        }
                        for inc in &sim.app.incarnations {
                            let mut prev_reg = 0;
                            for r in &inc.log {
                                match r {
                                    Rec::Reg { members, .. } => {
                                        st[0] += 1;
                                        prev_reg = members.len();
                                    }
                                    Rec::Trans { members, .. } if members.len() < prev_reg => st[1] += 1,
                                    Rec::Deliver { .. } => st[2] += 1,
                                    _ => {}
                                }
                            }
                            st[3] += u64::from(!inc.alive);
                        }
                        for ring in (0..sim.nodes.len()).filter_map(|i| sim.engine(i)) {
                            st[4] += ring.stats().reply_holds;
                            st[5] += ring.stats().reply_holds_answered;
                        }
                        let errs = check(&sim);
                        if !errs.is_empty() {
                            fails.push((seed, errs));
                        }
                    }
                    (fails, st)
                })
            })
            .collect();
        let mut all = (Vec::new(), [0u64; 6]);
        for h in hs {
            let (f, st) = h.join().unwrap();
            all.0.extend(f);
            for (a, b) in all.1.iter_mut().zip(st) {
                *a += b;
            }
        }
        all
    });
    eprintln!(
        "installed {} configurations ({} with daemons left behind), {} deliveries, {} crashes",
        stats[0], stats[1], stats[2], stats[3]
    );
    eprintln!("{} reply holds of the token, {} answered", stats[4], stats[5]);
    assert!(
        stats[1] > 0 && stats[3] > 0,
        "the sweep exercised no partitions or crashes"
    );
    // A few in a thousand seeds: the workload does not answer on purpose.
    assert!(
        n < 500 || stats[5] > 0,
        "the sweep exercised no answered reply hold"
    );
    eprintln!("{} seeds, {} failed", n, failures.len());
    for (seed, errs) in &failures {
        eprintln!("seed {seed} FAILED: {}\n  rerun: {}", errs[0], repro(*seed));
    }
    assert!(failures.is_empty(), "{} of {} seeds failed", failures.len(), n);
}

/// The checks that fail on `sim`, by name.
fn failing(sim: &Sim) -> BTreeSet<&'static str> {
    check(sim).iter().map(|v| v.check).collect()
}

/// A message no daemon submitted, from a daemon that does not exist.
fn stranger_message() -> (MsgId, Rec) {
    let id = MsgId {
        origin: 9,
        incarnation: 0,
        ordered: true,
        counter: 1,
    };
    let rec = Rec::Deliver {
        id,
        ptype: PacketType::Agreed,
        from: simnet::node_id(9),
        at: Duration::ZERO,
    };
    (id, rec)
}

/// Where in `inc`'s log the transitional configuration `trans` that ended
/// the regular configuration `reg` was installed.
fn trans_position(inc: &Incarnation, reg: MembId, trans: MembId) -> usize {
    let mut current = None;
    for (p, r) in inc.log.iter().enumerate() {
        match r {
            Rec::Reg { id, .. } => current = Some(*id),
            Rec::Trans { id, .. } if *id == trans && current == Some(reg) => return p,
            _ => {}
        }
    }
    panic!("no transitional {trans:?} after {reg:?}")
}

/// The last configuration an incarnation installed is a regular one.
fn ends_in_regular(inc: &Incarnation) -> Option<&Vec<u32>> {
    match inc
        .log
        .iter()
        .rev()
        .find(|r| matches!(r, Rec::Reg { .. } | Rec::Trans { .. }))
    {
        Some(Rec::Reg { members, .. }) => Some(members),
        _ => None,
    }
}

/// A member of the final ring, another member, and a SAFE message the
/// other delivered in it that the first could lose without a gap in its
/// sender's messages or one of its own going missing.
fn safe_victim(sim: &Sim) -> Option<(usize, usize)> {
    let h = evs::History::of(sim);
    let incs = &sim.app.incarnations;
    for (b, spb) in h.spans.iter().enumerate() {
        let last = spb.last()?;
        if !incs[b].alive || last.reg.is_none() || last.trans.is_some() {
            continue;
        }
        let msgs = evs::ordered(&last.reg_msgs);
        for (p, (m, ptype)) in last.reg_msgs.iter().enumerate() {
            let own = m.origin == incs[b].node as u32 && m.incarnation == incs[b].number;
            let later = last.reg_msgs[p + 1..]
                .iter()
                .any(|(x, _)| x.ordered && (x.origin, x.incarnation) == (m.origin, m.incarnation));
            let elsewhere = (0..incs.len()).any(|a| {
                a != b
                    && h.spans[a]
                        .iter()
                        .any(|s| s.reg == last.reg && s.reg_msgs.iter().any(|(x, _)| x == m))
            });
            if *ptype == PacketType::Safe && !own && !later && elsewhere && msgs.contains(m) {
                let at = incs[b]
                    .log
                    .iter()
                    .position(|r| matches!(r, Rec::Deliver { id, .. } if id == m))?;
                return Some((b, at));
            }
        }
    }
    None
}

/// A seed whose run passes and has what every breaking case needs.
fn rich_seed() -> (u64, Sim) {
    (1..300u64)
        .map(|s| (s, run(s)))
        .find(|(_, sim)| {
            let h = evs::History::of(sim);
            let with_next = h.spans.iter().enumerate().any(|(a, sa)| {
                sa.iter().any(|s| {
                    s.trans.is_some() && s.next.is_some() && {
                        h.spans.iter().skip(a + 1).any(|sb| {
                            sb.iter()
                                .any(|t| t.reg == s.reg && t.trans == s.trans && t.next == s.next)
                        })
                    }
                })
            });
            sim.app.incarnations.iter().filter(|i| i.alive).count() >= 3
                && with_next
                && safe_victim(sim).is_some()
                && check(sim).is_empty()
        })
        .expect("no passing seed with SAFE traffic in the final ring and a shared transitional configuration")
}

/// The checker catches each broken guarantee by name: a passing run, and
/// for every check one forged log that breaks that guarantee alone.
#[test]
fn checker_catches_violations() {
    let (seed, base) = rich_seed();
    assert!(check(&base).is_empty(), "seed {seed} should pass");
    let mut proven = BTreeSet::new();
    let mut expect = |name: &'static str, sim: &Sim| {
        let got = failing(sim);
        assert_eq!(
            got,
            BTreeSet::from([name]),
            "seed {seed}: breaking {name}: {:?}",
            check(sim)
        );
        proven.insert(name);
    };
    let alive_ending_in_regular = |sim: &Sim| {
        (0..sim.app.incarnations.len())
            .find(|&k| sim.app.incarnations[k].alive && ends_in_regular(&sim.app.incarnations[k]).is_some())
            .expect("a running daemon in a regular configuration")
    };
    let stranger = simnet::node_id(9);
    let fake_id = MembId {
        proc_id: stranger as i32,
        time: 1,
    };

    // One daemon's copy of a shared ring lists a stranger.
    let mut sim = run(seed);
    let shared = |sim: &Sim| {
        for (k, inc) in sim.app.incarnations.iter().enumerate() {
            for (p, r) in inc.log.iter().enumerate() {
                if let Rec::Reg { id, .. } = r {
                    let others = sim.app.incarnations.iter().enumerate().any(|(j, o)| {
                        j != k
                            && o.log
                                .iter()
                                .any(|x| matches!(x, Rec::Reg { id: y, .. } if y == id))
                    });
                    if others {
                        return (k, p);
                    }
                }
            }
        }
        panic!("no ring installed by two daemons");
    };
    let (k, p) = shared(&sim);
    if let Rec::Reg { members, .. } = &mut sim.app.incarnations[k].log[p] {
        members.push(stranger);
    }
    expect("configuration_agreement", &sim);

    // A daemon installs a ring without itself.
    let mut sim = run(seed);
    let k = alive_ending_in_regular(&sim);
    sim.app.incarnations[k].log.push(Rec::Reg {
        id: fake_id,
        members: vec![stranger],
    });
    expect("installer_is_member", &sim);

    // A transitional configuration with a member from outside its ring.
    let mut sim = run(seed);
    let k = alive_ending_in_regular(&sim);
    let mut members = ends_in_regular(&sim.app.incarnations[k]).unwrap().clone();
    members.push(stranger);
    sim.app.incarnations[k]
        .log
        .push(Rec::Trans { id: fake_id, members });
    expect("transitional_within_regular", &sim);

    // A RELIABLE message delivered twice.
    let mut sim = run(seed);
    let (k, p) = sim
        .app
        .incarnations
        .iter()
        .enumerate()
        .find_map(|(k, inc)| {
            inc.log
                .iter()
                .position(|r| {
                    matches!(
                        r,
                        Rec::Deliver {
                            ptype: PacketType::Reliable,
                            ..
                        }
                    )
                })
                .map(|p| (k, p))
        })
        .expect("a RELIABLE delivery");
    let again = sim.app.incarnations[k].log[p].clone();
    sim.app.incarnations[k].log.push(again);
    expect("no_duplicates", &sim);

    // Corrupted bytes delivered.
    let mut sim = run(seed);
    sim.app.incarnations[0].log.push(Rec::Garbage);
    expect("payloads_intact", &sim);

    // A message lost everywhere (and never submitted, so no daemon misses
    // its own) between two of its sender's messages in one configuration.
    let mut sim = run(seed);
    let lost = evs::History::of(&sim)
        .spans
        .iter()
        .flat_map(|sp| sp.iter())
        .find_map(|sp| {
            let msgs = evs::ordered(&sp.reg_msgs);
            let same = |x: &MsgId, m: &MsgId| (x.origin, x.incarnation) == (m.origin, m.incarnation);
            msgs.iter().enumerate().find_map(|(i, m)| {
                let before = msgs[..i].iter().any(|x| same(x, m));
                let after = msgs[i + 1..].iter().any(|x| same(x, m));
                (before && after).then_some(*m)
            })
        })
        .expect("three ordered messages of one sender in one configuration");
    for inc in &mut sim.app.incarnations {
        inc.log
            .retain(|r| !matches!(r, Rec::Deliver { id, .. } if *id == lost));
        inc.submitted.retain(|m| *m != lost);
    }
    expect("fifo_without_gaps", &sim);

    // Two daemons move from one ring to the same transitional configuration
    // (and on to the same next ring), but only one delivered a message in
    // the ring: the other got it in the transitional configuration.
    let pair = |sim: &Sim| {
        let h = evs::History::of(sim);
        for (a, sa) in h.spans.iter().enumerate() {
            for s in sa.iter().filter(|s| s.trans.is_some() && s.next.is_some()) {
                for (b, sb) in h.spans.iter().enumerate().skip(a + 1) {
                    if sb
                        .iter()
                        .any(|t| t.reg == s.reg && t.trans == s.trans && t.next == s.next)
                    {
                        return (a, b, s.reg.unwrap(), s.trans.unwrap());
                    }
                }
            }
        }
        panic!("no two daemons through one transitional configuration");
    };
    let mut sim = run(seed);
    let (a, b, reg, trans) = pair(&sim);
    let (_, fake) = stranger_message();
    let pa = trans_position(&sim.app.incarnations[a], reg, trans);
    sim.app.incarnations[a].log.insert(pa, fake.clone());
    let pb = trans_position(&sim.app.incarnations[b], reg, trans);
    sim.app.incarnations[b].log.insert(pb + 1, fake);
    expect("virtual_synchrony", &sim);

    // Only one of them delivered a message in the transitional configuration.
    let mut sim = run(seed);
    let (a, _, reg, trans) = pair(&sim);
    let (_, fake) = stranger_message();
    let pa = trans_position(&sim.app.incarnations[a], reg, trans);
    sim.app.incarnations[a].log.insert(pa + 1, fake);
    expect("transitional_delivery", &sim);

    // Two ordered messages from different senders, which another daemon
    // also delivered, swapped at one daemon (each sender's order intact).
    let mut sim = run(seed);
    let swap = (0..sim.app.incarnations.len())
        .find_map(|k| {
            let log = &sim.app.incarnations[k].log;
            let mut prev: Option<(usize, MsgId)> = None;
            for (p, r) in log.iter().enumerate() {
                match r {
                    Rec::Deliver { id, ptype, .. } if *ptype != PacketType::Reliable => {
                        if let Some((q, m)) = prev {
                            let both_elsewhere = sim.app.incarnations.iter().enumerate().any(|(j, o)| {
                                j != k
                                    && [m, *id].iter().all(|x| {
                                        o.log
                                            .iter()
                                            .any(|r| matches!(r, Rec::Deliver { id, .. } if id == x))
                                    })
                            });
                            if m.origin != id.origin && both_elsewhere {
                                return Some((k, q, p));
                            }
                        }
                        prev = Some((p, *id));
                    }
                    Rec::Deliver { .. } => {}
                    _ => prev = None,
                }
            }
            None
        })
        .expect("two consecutive ordered messages from two senders");
    let (k, q, p) = swap;
    sim.app.incarnations[k].log.swap(q, p);
    expect("agreed_total_order", &sim);

    // A SAFE message one member of the final ring never delivers.
    let mut sim = run(seed);
    let (b, at) = safe_victim(&sim).unwrap();
    sim.app.incarnations[b].log.remove(at);
    expect("safe_stability", &sim);

    // A daemon that never gets its own message back.
    let mut sim = run(seed);
    let k = sim.app.incarnations.iter().position(|i| i.alive).unwrap();
    let fake = MsgId {
        origin: sim.app.incarnations[k].node as u32,
        incarnation: sim.app.incarnations[k].number,
        ordered: true,
        counter: 999_999,
    };
    sim.app.incarnations[k].submitted.push(fake);
    expect("self_delivery", &sim);

    // A daemon stops after the network went quiet; the others still list it.
    let mut sim = run(seed);
    let i = (0..sim.n).find(|&i| sim.is_up(i)).unwrap();
    sim.crash(i);
    expect("one_ring_at_the_end", &sim);

    let all: BTreeSet<&str> = evs::CHECKS.iter().map(|(name, _)| *name).collect();
    assert_eq!(proven, all, "a guarantee without a breaking case");
}

/// Reruns one seed (`SIM_SEED`) and prints its scenario and every violation.
#[test]
fn one_seed() {
    let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse::<u64>().ok()) else {
        return;
    };
    simnet::init_logging();
    let (_, acts, end) = scenario(seed);
    for (t, a) in &acts {
        if !matches!(a, Action::Work(_)) {
            eprintln!("{:8.3}s {:?}", t.as_secs_f64(), a);
        }
    }
    eprintln!("end {:.3}s", end.as_secs_f64());
    let sim = run(seed);
    eprintln!(
        "net {:?}, accelerated ring {}, {} steps",
        sim.net, sim.accelerated, sim.steps
    );
    for (k, inc) in sim.app.incarnations.iter().enumerate() {
        let confs: Vec<String> = inc
            .log
            .iter()
            .filter_map(|r| match r {
                Rec::Reg { id, members } => Some(format!("R({:x},{}){}", id.proc_id, id.time, members.len())),
                Rec::Trans { id, members } => {
                    Some(format!("T({:x},{}){}", id.proc_id, id.time, members.len()))
                }
                _ => None,
            })
            .collect();
        eprintln!(
            "{}: {} records, alive {}, configs {:?}",
            name(&sim, k),
            inc.log.len(),
            inc.alive,
            confs
        );
    }
    let errs = check(&sim);
    for e in &errs {
        eprintln!("VIOLATION: {e}");
    }
    assert!(errs.is_empty(), "seed {seed}: {} violations", errs.len());
}

/// Issue 14 scenario: a daemon stopped for 15 s (SIGSTOP) while the others
/// carry traffic, then continued. It must notice first that its ring is
/// gone (its token-loss timer expired long ago), as the original's event
/// loop runs due timers before reading sockets: the stale token in its
/// socket buffer must not let it send its clients' waiting messages into
/// that dead ring, where only it would deliver them. They go into the
/// merged ring, to everyone.
#[test]
fn frozen_daemon_sends_nothing_into_the_ring_it_was_left_out_of() {
    let mut sim = Sim::new(3, 14, NetParams::default());
    for i in 0..3 {
        sim.start(i);
    }
    sim.run_until(secs(5.0));
    let mut t = 5.0;
    while t < 23.0 {
        sim.run_until(secs(t));
        for i in 0..3 {
            if i < 2 || t < 8.0 {
                sim.submit(i, PacketType::Agreed, 100);
            }
        }
        if (t - 8.0).abs() < 0.01 {
            sim.freeze(2);
        }
        t += 0.025;
    }
    let waited = sim.thaw(2, &[(PacketType::Agreed, 100); 20]);
    sim.run_until(secs(45.0));
    let errs = check(&sim);
    assert!(errs.is_empty(), "{errs:?}");
    for i in 0..2 {
        let inc = sim.current(i).unwrap();
        let got: HashSet<MsgId> = inc
            .log
            .iter()
            .filter_map(|r| match r {
                Rec::Deliver { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        let lost: Vec<&MsgId> = waited.iter().filter(|m| !got.contains(m)).collect();
        assert!(
            lost.is_empty(),
            "node {i} never got {} of the thawed node's messages",
            lost.len()
        );
    }
}
