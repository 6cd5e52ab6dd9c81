//! Seeded simulation of whole daemons (sessions, groups, ring) with a
//! client-level virtual synchrony checker.
//!
//! Each seed builds a random scenario: 2-5 daemons start staggered, then
//! random partitions (healed later), daemon crashes and restarts, loss up to
//! 20%, duplication and delays, while clients connect to the daemons with
//! the real client protocol (writing in either byte order), join and leave
//! groups (sometimes leaving before the join is answered), multicast FIFO,
//! AGREED and SAFE messages (some with SELF_DISCARD, some to two groups) to
//! the groups they are in, and disconnect (by KILL message or by closing the
//! socket), at random times and in bursts while the daemons change
//! membership. Then the network heals and goes quiet, and what every client
//! read is checked by the client-level checker (`checks/groups.rs`), one
//! named check per guarantee: well-formed views, the client's own
//! membership, transitional notices, no duplicates, nothing from outside the
//! view, a well-formed stream, self delivery, view agreement and order,
//! virtual synchrony, AGREED total order, answered requests, sessions that
//! survive, one last view. The table at the top of that module says what
//! each promises and how `checker_catches_violations` breaks it; a failure
//! names its check.
//!
//! The scenario's disturbances come from `simnet::scenario` (shared with
//! `sim.rs`), the daemons run on `simnet::Net<DaemonNode>`.
//!
//! Each seed is reproducible; a failing one prints its rerun command.
//! `SIM_SEEDS=n` sets the sweep size (default 1000), `SIM_FIRST_SEED` its
//! first seed, `SIM_TIMES=1` prints each seed's cost, `SIM_FINGERPRINTS=1`
//! each seed's fingerprint (to show a refactor replays every seed the same); `SIM_SEED=s` runs one
//! seed (`one_seed`) and prints its scenario, every client's log and every
//! violation (`RUST_LOG=spread=debug` adds the daemons' logs in virtual
//! time).

#[path = "checks/groups.rs"]
mod checks;
mod simnet;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use checks::{check, cname, gname, id_str, History, Violation};
use simnet::engines::{Client, End, Ev, MsgKey, Sent, Status, World};
use simnet::scenario::{self, secs};
use simnet::Rng;
use spread_wire::client::service::*;
use spread_wire::client::GroupName;
use spread_wire::endian::ByteOrder;

const GROUPS: [&str; 3] = ["g0", "g1", "g2"];

fn group(i: usize) -> GroupName {
    GroupName::new(GROUPS[i].as_bytes()).expect("legal name")
}

#[derive(Clone, Debug)]
enum Work {
    /// Connect a client to this node.
    Connect(usize),
    /// One random client operation.
    Op,
}

type Action = scenario::Action<Work>;

/// How long the network settles after the last disturbance.
const SETTLE: f64 = 12.0;

const SHAPE: scenario::Shape = scenario::Shape {
    mix: (0x9e37_79b9_7f4a_7c15, 0x6770),
    // A quarter of the runs of three daemons or more cut them in two segments.
    segments_from: 3,
    segments_chance: 0.25,
    third_segment: false,
    chaos_from: 2.5,
    chaos_min: 3.0,
    chaos_extra: 7.0,
    max_gap: 2.5,
};

fn scenario(seed: u64) -> (World, Vec<(Duration, Action)>, Duration) {
    // One or two clients connect after a daemon's first start, one after a
    // restart.
    let mut plan = scenario::disturbances(seed, &SHAPE, |r, i, t, first| {
        if first {
            (0..r.range(1, 3))
                .map(|_| (t + 0.1 + r.f64(), Work::Connect(i)))
                .collect()
        } else {
            vec![(t + 0.2, Work::Connect(i))]
        }
    });
    let world = plan.net(|n, net| World::new(n, seed, net));
    let (r, acts) = (&mut plan.r, &mut plan.acts);
    let rate = [8.0, 20.0, 40.0][r.range(0, 3) as usize];
    let traffic_end = plan.heal + 1.5;
    acts.push((secs(traffic_end + SETTLE - 7.0), Action::Calm(0.0)));
    let mut tt = 0.5;
    while tt < traffic_end {
        tt += -(1.0 - r.f64()).ln() / rate;
        acts.push((secs(tt), Action::Work(Work::Op)));
    }
    // Bursts of operations while the daemons change membership (the ring
    // notices a partition, crash or merge within about 1-3 s): joins, leaves
    // and messages that meet the transitional configuration and the groups
    // state exchange.
    let changes: Vec<f64> = acts
        .iter()
        .filter(|(_, a)| {
            matches!(
                a,
                Action::Partition(_) | Action::Heal | Action::Crash(_) | Action::Start(_)
            )
        })
        .map(|(t, _)| t.as_secs_f64())
        .collect();
    for c in changes {
        if r.chance(0.5) {
            let at = c + r.f64() * 3.0;
            for _ in 0..r.range(3, 10) {
                acts.push((secs(at + r.f64() * 0.05), Action::Work(Work::Op)));
            }
        }
    }
    acts.sort_by_key(|(t, _)| *t);
    (world, plan.acts, secs(traffic_end + SETTLE))
}

/// One random client operation, as an application would do it: only
/// members multicast to a group, and only to groups they are in.
fn op(world: &mut World, w: &mut Rng) {
    let up: Vec<usize> = (0..world.app.clients.len())
        .filter(|&k| world.app.clients[k].is_up())
        .collect();
    let nodes: Vec<usize> = (0..world.n).filter(|&i| world.is_up(i)).collect();
    if nodes.is_empty() {
        return;
    }
    if up.is_empty() || (w.chance(0.05) && up.len() < 3 * world.n) {
        let node = nodes[w.range(0, nodes.len() as u64) as usize];
        connect(world, w, node);
        return;
    }
    let k = up[w.range(0, up.len() as u64) as usize];
    let c = &world.app.clients[k];
    let members: Vec<GroupName> = c
        .groups
        .iter()
        .filter(|(_, s)| **s == Status::Member)
        .map(|(g, _)| *g)
        .collect();
    let outside: Vec<GroupName> = (0..GROUPS.len())
        .map(group)
        .filter(|g| !c.groups.contains_key(g))
        .collect();
    let joining: Vec<GroupName> = c
        .groups
        .iter()
        .filter(|(_, s)| **s == Status::Joining)
        .map(|(g, _)| *g)
        .collect();
    let x = w.f64();
    if x < 0.02 && !joining.is_empty() {
        // A leave that overtakes the answer to the join.
        let g = joining[w.range(0, joining.len() as u64) as usize];
        world.leave(k, g);
    } else if x < 0.2 || members.is_empty() {
        if !outside.is_empty() {
            let g = outside[w.range(0, outside.len() as u64) as usize];
            world.join(k, g);
        }
    } else if x < 0.27 {
        let g = members[w.range(0, members.len() as u64) as usize];
        world.leave(k, g);
    } else if x < 0.3 {
        world.disconnect(k, w.chance(0.5));
    } else {
        let g = members[w.range(0, members.len() as u64) as usize];
        let mut dest = vec![g];
        // Some messages go to two groups the sender is in.
        if members.len() > 1 && w.chance(0.15) {
            dest.push(*members.iter().find(|h| **h != g).expect("two groups"));
        }
        let mut service = [FIFO_MESS, AGREED_MESS, SAFE_MESS][w.range(0, 3) as usize];
        if w.chance(0.05) {
            service |= SELF_DISCARD;
        }
        let size = if w.chance(0.05) {
            w.range(1500, 4000)
        } else {
            w.range(12, 200)
        } as usize;
        world.multicast(k, &dest, service, size);
    }
}

fn connect(world: &mut World, w: &mut Rng, node: usize) {
    let order = if w.chance(0.5) {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    if let Some(k) = world.connect(node, order) {
        // Most clients join a group at once.
        if w.chance(0.8) && world.app.clients[k].is_up() {
            let g = group(w.range(0, GROUPS.len() as u64) as usize);
            world.join(k, g);
        }
    }
}

fn run(seed: u64) -> World {
    let (mut world, acts, end) = scenario(seed);
    let mut w = Rng::new(seed ^ 0x00c1_1e47);
    world.play(acts, end, |world, work| match work {
        Work::Connect(i) => connect(world, &mut w, i),
        Work::Op => op(world, &mut w),
    });
    world
}

fn repro(seed: u64) -> String {
    format!("SIM_SEED={seed} cargo test -p spread-daemon --test sim_groups -- one_seed --nocapture")
}

/// Counts what a run exercised: [views, network views, network views with
/// several vs-sets, transitional notices, messages, messages delivered in a
/// transitional view, sessions lost in crashes].
fn stats(world: &World) -> [u64; 7] {
    let mut st = [0u64; 7];
    for c in &world.app.clients {
        let mut in_trans: HashSet<GroupName> = HashSet::new();
        for e in &c.log {
            match e {
                Ev::View {
                    group,
                    cause,
                    vs_sets,
                    ..
                } => {
                    st[0] += 1;
                    if *cause == CAUSED_BY_NETWORK {
                        st[1] += 1;
                        st[2] += u64::from(vs_sets.len() > 1);
                    }
                    in_trans.remove(group);
                }
                Ev::Trans { group, .. } => {
                    st[3] += 1;
                    in_trans.insert(*group);
                }
                Ev::Msg { groups, .. } => {
                    st[4] += 1;
                    st[5] += u64::from(groups.iter().any(|g| in_trans.contains(g)));
                }
                _ => {}
            }
        }
        st[6] += u64::from(c.end == Some(End::Crashed));
    }
    st
}

/// A hash of everything the clients read and sent and of the step count:
/// a change that must not alter the simulation (a refactor) leaves every
/// seed's fingerprint as it was (`SIM_FINGERPRINTS=1`; same toolchain).
fn fingerprint(world: &World) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for c in &world.app.clients {
        let sent: Vec<_> = c.sent.iter().map(|s| (s.key, s.at_log)).collect();
        format!(
            "{} {} {:?} {:?} {:?} {:?}",
            c.id, c.node, c.log, c.groups, c.end, sent
        )
        .hash(&mut h);
    }
    world.steps.hash(&mut h);
    h.finish()
}

/// The client-level properties over many seeds.
#[test]
fn vs_sweep() {
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
    type Outcome = (Vec<(u64, Vec<Violation>)>, [u64; 7]);
    let started = std::time::Instant::now();
    let (failures, st): Outcome = std::thread::scope(|s| {
        let hs: Vec<_> = seeds
            .chunks(seeds.len().div_ceil(threads).max(1))
            .map(|chunk| {
                s.spawn(move || {
                    let mut fails = Vec::new();
                    let mut st = [0u64; 7];
                    for &seed in chunk {
                        let t0 = std::time::Instant::now();
                        let world = run(seed);
                        let t1 = t0.elapsed();
                        if fingerprints {
                            eprintln!(
                                "seed {seed} fingerprint {:016x} steps {}",
                                fingerprint(&world),
                                world.steps
                            );
                        }
                        for (a, b) in st.iter_mut().zip(stats(&world)) {
                            *a += b;
                        }
                        let errs = check(&world);
                        if std::env::var_os("SIM_TIMES").is_some() {
                            eprintln!(
                                "seed {seed}: n {} clients {} steps {} run {:.0} ms check {:.0} ms",
                                world.n,
                                world.app.clients.len(),
                                world.steps,
                                t1.as_secs_f64() * 1e3,
                                (t0.elapsed() - t1).as_secs_f64() * 1e3
                            );
                        }
                        if !errs.is_empty() {
                            fails.push((seed, errs));
                        }
                    }
                    (fails, st)
                })
            })
            .collect();
        let mut all = (Vec::new(), [0u64; 7]);
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
        "{} views ({} network, {} with several vs-sets), {} transitional notices, {} messages \
         ({} in transitional views), {} sessions lost in crashes; {:.1} s",
        st[0],
        st[1],
        st[2],
        st[3],
        st[4],
        st[5],
        st[6],
        started.elapsed().as_secs_f64()
    );
    assert!(
        n < 50 || (st[2] > 0 && st[3] > 0 && st[5] > 0 && st[6] > 0),
        "the sweep exercised no merges, transitional deliveries or crashes"
    );
    eprintln!("{} seeds, {} failed", n, failures.len());
    for (seed, errs) in failures.iter().take(20) {
        eprintln!(
            "seed {seed} FAILED ({} violations): {}\n  rerun: {}",
            errs.len(),
            errs[0],
            repro(*seed)
        );
    }
    assert!(failures.is_empty(), "{} of {} seeds failed", failures.len(), n);
}

/// The checks that fail on `world`, by name.
fn failing(world: &World) -> BTreeSet<&'static str> {
    check(world).iter().map(|v| v.check).collect()
}

/// The client's log has a view, notice or message of `g`.
fn touches(c: &Client, g: &GroupName) -> bool {
    c.log.iter().any(|e| match e {
        Ev::View { group, .. } | Ev::Trans { group, .. } | Ev::SelfLeave { group } => group == g,
        Ev::Msg { groups, .. } => groups.contains(g),
        Ev::Bad(_) => false,
    })
}

/// Positions in `c`'s log with the client's standing before each.
fn standings(c: &Client) -> Vec<HashSet<GroupName>> {
    let mut out = Vec::new();
    checks::walk(c, |_, _, st| out.push(st.views.keys().copied().collect()));
    out
}

/// A client's view of `g` at `pos` whose segment another client shares:
/// the same view, the same next view and the same companions, each step
/// taken once.
fn shared_step(h: &History, k: usize, g: &GroupName, view_pos: usize, c: &Client) -> bool {
    let Some(list) = h.segs[k].get(g) else {
        return false;
    };
    // The segment of `g` that contains the position: count views before it.
    let idx = c.log[..=view_pos]
        .iter()
        .filter(|e| matches!(e, Ev::View { group, .. } if group == g))
        .count();
    let Some(seg) = idx.checked_sub(1).and_then(|i| list.get(i)) else {
        return false;
    };
    let Some(next) = &seg.next else { return false };
    let unique = |l: &[checks::Seg], s: &checks::Seg| {
        l.iter().filter(|x| x.view == s.view && x.next == s.next).count() == 1
    };
    unique(list, seg)
        && h.segs.iter().enumerate().any(|(j, per)| {
            j != k
                && per.get(g).is_some_and(|l| {
                    l.iter().any(|x| {
                        x.view == seg.view
                            && x.next.as_ref() == Some(next)
                            && x.together == seg.together
                            && unique(l, x)
                    })
                })
        })
}

/// A seed whose run passes and has what every breaking case needs.
fn rich_seed() -> (u64, World) {
    (1..300u64)
        .map(|s| (s, run(s)))
        .find(|(_, w)| {
            let st = stats(w);
            st[3] > 0
                && st[4] > 20
                && w.app.clients.iter().any(|c| c.end.is_some())
                && vs_case(w).is_some()
                && check(w).is_empty()
        })
        .expect("no passing seed with transitional notices, traffic and a closed session")
}

/// A transitional notice followed by a message of its group from another
/// client, in a step another client took too.
fn vs_case(w: &World) -> Option<(usize, usize)> {
    let h = History::of(w);
    for (k, c) in w.app.clients.iter().enumerate() {
        for p in 0..c.log.len().saturating_sub(1) {
            if let (
                Ev::Trans { group, .. },
                Ev::Msg {
                    groups,
                    sender,
                    service,
                    ..
                },
            ) = (&c.log[p], &c.log[p + 1])
            {
                if groups == &[*group] && *sender != c.private_group && service & SELF_DISCARD == 0 {
                    let view = c.log[..p]
                        .iter()
                        .rposition(|e| matches!(e, Ev::View { group: g, .. } if g == group))?;
                    if shared_step(&h, k, group, view, c) {
                        return Some((k, p));
                    }
                }
            }
        }
    }
    None
}

/// The checker catches each broken guarantee by name: a passing run, and
/// for every check one forged log that breaks that guarantee alone.
#[test]
fn checker_catches_violations() {
    let (seed, base) = rich_seed();
    assert!(check(&base).is_empty());
    let mut proven = BTreeSet::new();
    let mut expect = |name: &'static str, w: &World| {
        assert_eq!(
            failing(w),
            BTreeSet::from([name]),
            "seed {seed}: breaking {name}: {:?}",
            check(w)
        );
        proven.insert(name);
    };
    let live = |w: &World| -> Vec<usize> {
        (0..w.app.clients.len())
            .filter(|&k| w.app.clients[k].end.is_none() && w.app.clients[k].is_up())
            .collect()
    };
    let intruder = GroupName::new(b"#intruder#d9").unwrap();

    // A join notice that says the joiner left.
    let mut w = run(seed);
    let (k, p) = w
        .app
        .clients
        .iter()
        .enumerate()
        .find_map(|(k, c)| {
            let st = standings(c);
            c.log.iter().enumerate().find_map(|(p, e)| match e {
                Ev::View { group, cause, .. } if *cause == CAUSED_BY_JOIN && st[p].contains(group) => {
                    Some((k, p))
                }
                _ => None,
            })
        })
        .expect("a member sees another join");
    if let Ev::View { cause, .. } = &mut w.app.clients[k].log[p] {
        *cause = CAUSED_BY_LEAVE;
    }
    expect("views_well_formed", &w);

    // A leave notice of a group the client never joined.
    let mut w = run(seed);
    let (k, g) = (0..w.app.clients.len())
        .find_map(|k| {
            (0..GROUPS.len())
                .map(group)
                .find(|g| !touches(&w.app.clients[k], g))
                .map(|g| (k, g))
        })
        .expect("a client outside some group");
    w.app.clients[k].log.push(Ev::SelfLeave { group: g });
    expect("own_membership", &w);

    // A transitional notice carrying another view's id.
    let mut w = run(seed);
    let (k, p) = w
        .app
        .clients
        .iter()
        .enumerate()
        .find_map(|(k, c)| {
            c.log
                .iter()
                .position(|e| matches!(e, Ev::Trans { .. }))
                .map(|p| (k, p))
        })
        .unwrap();
    if let Ev::Trans { id, .. } = &mut w.app.clients[k].log[p] {
        id.index += 1000;
    }
    expect("transitional_notices", &w);

    // A message delivered again right after itself, in the client's last
    // view of its group.
    let mut w = run(seed);
    let (k, p) = (0..w.app.clients.len())
        .find_map(|k| {
            let c = &w.app.clients[k];
            let st = standings(c);
            let mut end: HashSet<GroupName> = st.last()?.clone();
            if let Some(Ev::View { group, .. }) = c.log.last() {
                end.insert(*group);
            }
            (0..c.log.len()).rev().find_map(|p| match &c.log[p] {
                Ev::Msg { groups, .. }
                    if groups.len() == 1
                        && end.contains(&groups[0])
                        && !c.log[p..].iter().any(|e| matches!(e, Ev::View { group, .. } | Ev::SelfLeave { group } if *group == groups[0])) =>
                {
                    Some((k, p))
                }
                _ => None,
            })
        })
        .expect("a message in a last view");
    let again = w.app.clients[k].log[p].clone();
    w.app.clients[k].log.insert(p + 1, again);
    expect("no_duplicates", &w);

    // A message from a sender outside the view.
    let mut w = run(seed);
    let (k, p) = w
        .app
        .clients
        .iter()
        .enumerate()
        .find_map(|(k, c)| {
            c.log
                .iter()
                .position(|e| matches!(e, Ev::Msg { .. }))
                .map(|p| (k, p))
        })
        .unwrap();
    if let Ev::Msg { sender, .. } = &mut w.app.clients[k].log[p] {
        *sender = intruder;
    }
    expect("nothing_from_outside_the_view", &w);

    // Bytes a client cannot decode.
    let mut w = run(seed);
    w.app.clients[0].log.push(Ev::Bad("forged".into()));
    expect("well_formed_stream", &w);

    // A message a connected member sent that never comes back.
    let mut w = run(seed);
    let (k, g) = live(&w)
        .into_iter()
        .find_map(|k| {
            w.app.clients[k]
                .groups
                .iter()
                .find(|(_, s)| **s == Status::Member)
                .map(|(g, _)| (k, *g))
        })
        .expect("a connected member");
    let c = &mut w.app.clients[k];
    c.sent.push(Sent {
        key: MsgKey {
            client: c.id,
            counter: 999_999,
        },
        group: g,
        service: AGREED_MESS,
        at_log: c.log.len(),
    });
    expect("self_delivery", &w);

    // A stranger in one client's copy of a join/leave view another member
    // saw too (neither its last view nor one before a network view).
    let mut w = run(seed);
    let h = History::of(&w);
    let (k, p) = w
        .app
        .clients
        .iter()
        .enumerate()
        .find_map(|(k, c)| {
            let st = standings(c);
            c.log.iter().enumerate().find_map(|(p, e)| {
                let Ev::View {
                    group,
                    id,
                    cause,
                    members,
                    ..
                } = e
                else {
                    return None;
                };
                let list = h.segs[k].get(group)?;
                let i = c.log[..=p]
                    .iter()
                    .filter(|e| matches!(e, Ev::View { group: g, .. } if g == group))
                    .count()
                    - 1;
                let seg = &list[i];
                let ok = *cause != CAUSED_BY_NETWORK
                    && st[p].contains(group)
                    && seg.next.is_some()
                    && seg.next_cause != CAUSED_BY_NETWORK
                    && h.segs.iter().enumerate().any(|(j, per)| {
                        j != k
                            && members.contains(&w.app.clients[j].private_group)
                            && per.get(group).is_some_and(|l| {
                                l.iter()
                                    .any(|s| s.view.0 == *id && s.view.1.contains(&c.private_group))
                            })
                    });
                ok.then_some((k, p))
            })
        })
        .expect("a join or leave view two members saw");
    if let Ev::View { members, .. } = &mut w.app.clients[k].log[p] {
        members.push(intruder);
    }
    expect("views_agree", &w);

    // A message moved before the transitional notice at one client.
    let mut w = run(seed);
    let (k, p) = vs_case(&w).unwrap();
    w.app.clients[k].log.swap(p, p + 1);
    expect("virtual_synchrony", &w);

    // Two messages of different groups, from others, that another client
    // delivered too, swapped at one client.
    let mut w = run(seed);
    let delivered: Vec<HashSet<MsgKey>> = w
        .app
        .clients
        .iter()
        .map(|c| {
            c.log
                .iter()
                .filter_map(|e| match e {
                    Ev::Msg { key, .. } => Some(*key),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let (k, p) = w
        .app
        .clients
        .iter()
        .enumerate()
        .find_map(|(k, c)| {
            (1..c.log.len()).find_map(|p| match (&c.log[p - 1], &c.log[p]) {
                (
                    Ev::Msg {
                        key: x,
                        groups: gx,
                        sender: sx,
                        ..
                    },
                    Ev::Msg {
                        key: y,
                        groups: gy,
                        sender: sy,
                        ..
                    },
                ) if gx.iter().all(|g| !gy.contains(g))
                    && *sx != c.private_group
                    && *sy != c.private_group
                    && (0..w.app.clients.len())
                        .any(|j| j != k && delivered[j].contains(x) && delivered[j].contains(y)) =>
                {
                    Some((k, p))
                }
                _ => None,
            })
        })
        .expect("two messages of different groups in a row");
    w.app.clients[k].log.swap(p - 1, p);
    expect("agreed_total_order", &w);

    // A join nobody answered.
    let mut w = run(seed);
    let (k, g) = live(&w)
        .into_iter()
        .find_map(|k| {
            (0..GROUPS.len())
                .map(group)
                .find(|g| !w.app.clients[k].groups.contains_key(g))
                .map(|g| (k, g))
        })
        .expect("a connected client outside a group");
    w.app.clients[k].groups.insert(g, Status::Joining);
    expect("requests_answered", &w);

    // A session the daemon closed.
    let mut w = run(seed);
    let k = w.app.clients.iter().position(|c| c.end.is_some()).unwrap();
    w.app.clients[k].end = Some(End::Dropped);
    expect("sessions_survive", &w);

    // A client that thinks it is a member of a group whose members do not
    // see it.
    let mut w = run(seed);
    let (k, g) = live(&w)
        .into_iter()
        .find_map(|k| {
            (0..GROUPS.len())
                .map(group)
                .find(|g| !w.app.clients[k].groups.contains_key(g))
                .map(|g| (k, g))
        })
        .expect("a connected client outside a group");
    w.app.clients[k].groups.insert(g, Status::Member);
    expect("last_view_agrees", &w);

    let all: BTreeSet<&str> = checks::CHECKS.iter().map(|(name, _)| *name).collect();
    assert_eq!(proven, all, "a guarantee without a breaking case");
}

/// Reruns one seed (`SIM_SEED`) and prints its scenario, what each client
/// saw, and every violation.
#[test]
fn one_seed() {
    let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse::<u64>().ok()) else {
        return;
    };
    simnet::init_logging();
    let (_, acts, end) = scenario(seed);
    for (t, a) in &acts {
        if !matches!(a, Action::Work(Work::Op)) {
            eprintln!("{:8.3}s {:?}", t.as_secs_f64(), a);
        }
    }
    eprintln!("end {:.3}s", end.as_secs_f64());
    let world = run(seed);
    eprintln!(
        "net {:?}, accelerated ring {}, layout {:?}, {} steps",
        world.net, world.accelerated, world.layout, world.steps
    );
    for c in &world.app.clients {
        eprintln!("{}: end {:?}, groups {:?}", cname(c), c.end, c.groups);
        for (p, e) in c.log.iter().enumerate() {
            match e {
                Ev::View {
                    group,
                    id,
                    cause,
                    members,
                    vs_sets,
                    ..
                } => eprintln!(
                    "  {p:4} view {} {} cause {cause:#x} {:?} vs {:?}",
                    gname(group),
                    id_str(id),
                    members.iter().map(gname).collect::<Vec<_>>(),
                    vs_sets.iter().map(|s| s.len()).collect::<Vec<_>>()
                ),
                Ev::Trans { group, id } => eprintln!("  {p:4} trans {} {}", gname(group), id_str(id)),
                Ev::SelfLeave { group } => eprintln!("  {p:4} left {}", gname(group)),
                Ev::Msg { key, groups, .. } => eprintln!(
                    "  {p:4} msg {}.{} to {}",
                    key.client,
                    key.counter,
                    groups.iter().map(gname).collect::<Vec<_>>().join(",")
                ),
                Ev::Bad(s) => eprintln!("  {p:4} BAD {s}"),
            }
        }
    }
    let errs = check(&world);
    for e in &errs {
        eprintln!("VIOLATION: {e}");
    }
    assert!(errs.is_empty(), "seed {seed}: {} violations", errs.len());
}
