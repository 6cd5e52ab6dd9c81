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
//! read is checked:
//!
//! * views: every regular membership notice lists the receiver; a network
//!   notice's vs-sets partition its members and the receiver's set holds the
//!   receiver; a join/leave/disconnect notice carries one vs-set with the
//!   member that changed (in the members after a join, not after a leave);
//!   receivers of one group id that see each other see the same members;
//! * view order: for every pair of clients in a group, the views both saw
//!   come in the same order;
//! * virtual synchrony: two clients that both go from view V to view V' of a
//!   group in the same vs-set of V' delivered the same messages of the
//!   group between them, in the same order, with the transitional notice
//!   (if any) at the same place; and members of one vs-set came from the
//!   same view;
//! * total order: messages two clients both delivered are in the same
//!   relative order;
//! * no client delivers a message of a group it is not in, nor from a
//!   sender outside its current view, nor a message twice;
//! * a transitional notice carries the current group id and comes before
//!   a network view: the next view after it is a network view (a view may
//!   also drop members for a network reason without one: like the original,
//!   the daemon sends none when the change cascades during a state
//!   exchange, when no message can come in between);
//! * self delivery: a client delivers its own messages before it sees
//!   itself leave the group, and all of them if it stays connected (and
//!   none sent with SELF_DISCARD);
//! * sessions: no daemon closes a client's session on its own (membership
//!   changes reach clients only as notices);
//! * liveness: at the end every join and leave was answered, and all
//!   members of a group agree on one last view listing exactly them.
//!
//! Each seed is reproducible; a failing one prints its rerun command.
//! `SIM_SEEDS=n` sets the sweep size (default 1000), `SIM_FIRST_SEED` its
//! first seed, `SIM_TIMES=1` prints each seed's cost; `SIM_SEED=s` runs one
//! seed (`one_seed`) and prints its scenario, every client's log and every
//! violation (`RUST_LOG=spread=debug` adds the daemons' logs in virtual
//! time).

mod simnet;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use simnet::engines::{Client, End, Ev, MsgKey, Phase, Status, World};
use simnet::{NetParams, Rng};
use spread_wire::client::service::*;
use spread_wire::client::{GroupId, GroupName};
use spread_wire::endian::ByteOrder;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

const GROUPS: [&str; 3] = ["g0", "g1", "g2"];

fn group(i: usize) -> GroupName {
    GroupName::new(GROUPS[i].as_bytes()).expect("legal name")
}

#[derive(Clone, Debug)]
enum Action {
    Start(usize),
    Crash(usize),
    Partition(Vec<u32>),
    Heal,
    Calm(f64),
    /// Connect a client to this node.
    Connect(usize),
    /// One random client operation.
    Op,
}

/// How long the network settles after the last disturbance.
const SETTLE: f64 = 12.0;

fn scenario(seed: u64) -> (World, Vec<(Duration, Action)>, Duration) {
    let mut r = Rng::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x6770);
    let n = r.range(2, 6) as usize;
    let mut net = NetParams {
        loss: [0.0, 0.01, 0.05, 0.1, 0.2][r.range(0, 5) as usize],
        dup: if r.chance(0.5) { 0.03 } else { 0.0 },
        delay_min_ms: 0.2,
        delay_max_ms: [0.5, 2.0, 8.0][r.range(0, 3) as usize],
        fifo: true,
    };
    // Some reordering between two daemons (see sim.rs for why it is kept
    // to a few milliseconds).
    if r.chance(0.25) {
        net.fifo = false;
        net.delay_max_ms = net.delay_max_ms.min(2.0);
    }
    let mut world = World::new(n, seed, net);
    world.accelerated = r.chance(0.5);
    if n >= 3 && r.chance(0.25) {
        let cut = r.range(1, n as u64) as usize;
        world.layout = vec![cut, n - cut];
    }
    world.tweak = |p| p.timeouts.lookup = Duration::from_secs(3);
    let mut acts = Vec::new();
    for i in 0..n {
        let t = r.f64() * 2.0;
        acts.push((secs(t), Action::Start(i)));
        for _ in 0..r.range(1, 3) {
            acts.push((secs(t + 0.1 + r.f64()), Action::Connect(i)));
        }
    }
    let chaos_end = 3.0 + r.f64() * 7.0;
    let mut t = 2.5;
    let mut down = vec![false; n];
    let mut crashed_at = vec![0.0; n];
    while t < chaos_end {
        t += 0.5 + r.f64() * 2.5;
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
                    acts.push((secs(t + 0.2), Action::Connect(i)));
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
    acts.push((secs(heal), Action::Calm(0.01)));
    for (i, d) in down.iter().enumerate() {
        if *d {
            let at = heal.max(crashed_at[i] + 4.0);
            acts.push((secs(at), Action::Start(i)));
            acts.push((secs(at + 0.2), Action::Connect(i)));
        }
    }
    let rate = [8.0, 20.0, 40.0][r.range(0, 3) as usize];
    let traffic_end = heal + 1.5;
    acts.push((secs(traffic_end + SETTLE - 7.0), Action::Calm(0.0)));
    let mut tt = 0.5;
    while tt < traffic_end {
        tt += -(1.0 - r.f64()).ln() / rate;
        acts.push((secs(tt), Action::Op));
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
                acts.push((secs(at + r.f64() * 0.05), Action::Op));
            }
        }
    }
    acts.sort_by_key(|(t, _)| *t);
    (world, acts, secs(traffic_end + SETTLE))
}

/// One random client operation, as an application would do it: only
/// members multicast to a group, and only to groups they are in.
fn op(world: &mut World, w: &mut Rng) {
    let up: Vec<usize> = (0..world.clients.len())
        .filter(|&k| world.clients[k].is_up())
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
    let c = &world.clients[k];
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
        if w.chance(0.8) && world.clients[k].is_up() {
            let g = group(w.range(0, GROUPS.len() as u64) as usize);
            world.join(k, g);
        }
    }
}

fn run(seed: u64) -> World {
    let (mut world, acts, end) = scenario(seed);
    let mut w = Rng::new(seed ^ 0x00c1_1e47);
    for (t, a) in acts {
        world.run_until(t);
        match a {
            Action::Start(i) => world.start(i),
            Action::Crash(i) => world.crash(i),
            Action::Partition(g) => world.partition(&g),
            Action::Heal => world.heal(),
            Action::Calm(loss) => world.net.loss = world.net.loss.min(loss),
            Action::Connect(i) => connect(&mut world, &mut w, i),
            Action::Op => op(&mut world, &mut w),
        }
    }
    world.run_until(end);
    world
}

// ----- the checker -----

/// A view as clients see it: group id and members. Group ids can repeat
/// (a group that empties and is created again in the same ring), so the
/// members are part of the key.
type ViewKey = (GroupId, Vec<GroupName>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Msg(MsgKey),
    Trans,
}

/// What one client saw of one group from one view to the next.
#[derive(Debug)]
struct Seg {
    view: ViewKey,
    items: Vec<Item>,
    next: Option<ViewKey>,
    /// Who moved on to the next view together with this client: its
    /// vs-set in a network view, everyone in a join/leave/disconnect view.
    together: Vec<GroupName>,
    /// The cause bit of the next view.
    next_cause: u32,
}

fn cname(c: &Client) -> String {
    format!("{} (d{})", c.private_group, c.node + 1)
}

fn gname(g: &GroupName) -> String {
    g.to_string_lossy()
}

fn id_str(id: &GroupId) -> String {
    format!("({:x},{},{})", id.memb_id.proc_id, id.memb_id.time, id.index)
}

/// Checks one client's log on its own; returns its segments per group.
fn check_client(c: &Client, errs: &mut Vec<String>) -> BTreeMap<GroupName, Vec<Seg>> {
    let me = c.private_group;
    let mut segs: BTreeMap<GroupName, Vec<Seg>> = BTreeMap::new();
    // Per group: in a view (not left), and a transitional notice since it.
    let mut open: HashMap<GroupName, bool> = HashMap::new();
    let mut trans: HashMap<GroupName, bool> = HashMap::new();
    let mut seen = HashSet::new();
    for (pos, ev) in c.log.iter().enumerate() {
        match ev {
            Ev::View {
                group,
                id,
                cause,
                members,
                vs_sets,
                mine,
            } => {
                let at = format!("{} at {pos}: view {} of {}", cname(c), id_str(id), gname(group));
                if !members.contains(&me) {
                    errs.push(format!("{at} does not list the receiver"));
                }
                let set: BTreeSet<GroupName> = members.iter().copied().collect();
                if set.len() != members.len() {
                    errs.push(format!("{at} lists a member twice"));
                }
                match *cause {
                    CAUSED_BY_NETWORK => {
                        if !vs_sets.get(*mine).is_some_and(|s| s.contains(&me)) {
                            errs.push(format!("{at}: the receiver's vs-set {mine} does not hold it"));
                        }
                        let mut union = BTreeSet::new();
                        let total: usize = vs_sets.iter().map(|s| s.len()).sum();
                        union.extend(vs_sets.iter().flatten().copied());
                        if union != set || total != members.len() {
                            errs.push(format!("{at}: vs-sets {vs_sets:?} do not partition the members"));
                        }
                    }
                    CAUSED_BY_JOIN | CAUSED_BY_LEAVE | CAUSED_BY_DISCONNECT => {
                        let ok = match &vs_sets[..] {
                            [s] if s.len() == 1 => set.contains(&s[0]) == (*cause == CAUSED_BY_JOIN),
                            _ => false,
                        };
                        if !ok {
                            errs.push(format!("{at}: cause {cause:#x} with vs-sets {vs_sets:?}"));
                        }
                    }
                    other => errs.push(format!("{at}: cause bits {other:#x}")),
                }
                let list = segs.entry(*group).or_default();
                let in_view = open.get(group).copied().unwrap_or(false);
                if in_view {
                    // A view may drop members for a network reason without
                    // a transitional notice: as in the original, none is
                    // sent when the change cascades during a state exchange
                    // (no message can come in between).
                    let prev = list.last_mut().expect("open view");
                    let had_trans = trans.get(group).copied().unwrap_or(false);
                    if had_trans && *cause != CAUSED_BY_NETWORK {
                        errs.push(format!(
                            "{at}: cause {cause:#x} after a transitional notice (expected a network view)"
                        ));
                    }
                    prev.next = Some((*id, members.clone()));
                    prev.next_cause = *cause;
                    prev.together = if *cause == CAUSED_BY_NETWORK {
                        vs_sets.get(*mine).cloned().unwrap_or_default()
                    } else {
                        members.clone()
                    };
                } else {
                    // A join while the group is changed by a daemon
                    // membership change comes as a network view with the
                    // joiner in a vs-set of its own.
                    let own = match *cause {
                        CAUSED_BY_JOIN => vs_sets.first().is_some_and(|s| s == &[me]),
                        CAUSED_BY_NETWORK => vs_sets.get(*mine).is_some_and(|s| s == &[me]),
                        _ => false,
                    };
                    if !own {
                        errs.push(format!("{at}: the first view after joining is not its own join"));
                    }
                }
                list.push(Seg {
                    view: (*id, members.clone()),
                    items: Vec::new(),
                    next: None,
                    together: Vec::new(),
                    next_cause: 0,
                });
                open.insert(*group, true);
                trans.insert(*group, false);
            }
            Ev::Trans { group, id } => {
                let at = format!("{} at {pos}: transitional notice of {}", cname(c), gname(group));
                if !open.get(group).copied().unwrap_or(false) {
                    errs.push(format!("{at} outside any view"));
                    continue;
                }
                let seg = segs.get_mut(group).and_then(|l| l.last_mut()).expect("open view");
                if seg.view.0 != *id {
                    errs.push(format!(
                        "{at} carries id {} in view {}",
                        id_str(id),
                        id_str(&seg.view.0)
                    ));
                }
                seg.items.push(Item::Trans);
                trans.insert(*group, true);
            }
            Ev::SelfLeave { group } => {
                if !open.get(group).copied().unwrap_or(false) {
                    errs.push(format!(
                        "{} at {pos}: leave notice of {} outside any view",
                        cname(c),
                        gname(group)
                    ));
                }
                open.insert(*group, false);
            }
            Ev::Msg {
                key,
                sender,
                groups,
                service,
            } => {
                let at = format!("{} at {pos}: message {key:?} ({service:#x})", cname(c));
                if !seen.insert(*key) {
                    errs.push(format!("{at} delivered twice"));
                }
                // A message to several groups reaches members of any of them.
                let in_any = groups.iter().any(|g| open.get(g).copied().unwrap_or(false));
                if !in_any {
                    errs.push(format!(
                        "{at} to {} outside any view of them",
                        groups.iter().map(gname).collect::<Vec<_>>().join(",")
                    ));
                }
                for g in groups {
                    if !open.get(g).copied().unwrap_or(false) {
                        continue;
                    }
                    let seg = segs.get_mut(g).and_then(|l| l.last_mut()).expect("open view");
                    if !seg.view.1.contains(sender) {
                        errs.push(format!(
                            "{at} from {sender}, outside view {} of {}",
                            id_str(&seg.view.0),
                            gname(g)
                        ));
                    }
                    // Its sender does not get a SELF_DISCARD message, so
                    // such messages are left out of the comparison.
                    if service & SELF_DISCARD == 0 {
                        seg.items.push(Item::Msg(*key));
                    }
                }
            }
            Ev::Bad(what) => errs.push(format!("{} at {pos}: {what}", cname(c))),
        }
    }
    // Self delivery.
    let pos_of: HashMap<MsgKey, usize> = c
        .log
        .iter()
        .enumerate()
        .filter_map(|(p, e)| match e {
            Ev::Msg { key, .. } => Some((*key, p)),
            _ => None,
        })
        .collect();
    let mut leaves: HashMap<GroupName, Vec<usize>> = HashMap::new();
    for (p, e) in c.log.iter().enumerate() {
        if let Ev::SelfLeave { group } = e {
            leaves.entry(*group).or_default().push(p);
        }
    }
    for s in &c.sent {
        let left = leaves.get(&s.group).and_then(|l| {
            let i = l.partition_point(|p| *p < s.at_log);
            l.get(i).copied()
        });
        let got = pos_of.get(&s.key).copied();
        if s.service & SELF_DISCARD != 0 {
            if got.is_some() {
                errs.push(format!("{} got back its own SELF_DISCARD {:?}", cname(c), s.key));
            }
            continue;
        }
        match (left, got) {
            (Some(l), Some(p)) if p < l => {}
            (Some(l), _) => errs.push(format!(
                "{} sent {:?} to {} but saw itself leave (at {l}) before delivering its own message",
                cname(c),
                s.key,
                gname(&s.group)
            )),
            (None, None) if c.end.is_none() => errs.push(format!(
                "{} never delivered its own {:?} to {}",
                cname(c),
                s.key,
                gname(&s.group)
            )),
            _ => {}
        }
        if got.is_some_and(|p| p < s.at_log) {
            errs.push(format!("{} delivered {:?} before sending it", cname(c), s.key));
        }
    }
    segs
}

/// The elements that occur exactly once.
fn once<T: Eq + std::hash::Hash + Copy>(items: &[T]) -> HashSet<T> {
    let mut count: HashMap<T, usize> = HashMap::new();
    for x in items {
        *count.entry(*x).or_default() += 1;
    }
    count
        .into_iter()
        .filter(|(_, n)| *n == 1)
        .map(|(x, _)| x)
        .collect()
}

fn first_diff(a: &[Item], b: &[Item]) -> String {
    let i = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    format!(
        "{} vs {} items, first difference at {i}: {:?} vs {:?}",
        a.len(),
        b.len(),
        a.get(i),
        b.get(i)
    )
}

/// Checks every property; returns the violations found.
fn check(world: &World) -> Vec<String> {
    let mut errs = Vec::new();
    let clients = &world.clients;
    let segs: Vec<BTreeMap<GroupName, Vec<Seg>>> =
        clients.iter().map(|c| check_client(c, &mut errs)).collect();

    // Two members that list each other in views of one id saw the same
    // members. (A group that empties and is created again in the same ring
    // reuses its ids, so one id can name several views: it is enough that
    // one of the views that list each other is common.)
    let mut by_id: HashMap<(GroupName, GroupId, GroupName), Vec<&Vec<GroupName>>> = HashMap::new();
    for (k, per) in segs.iter().enumerate() {
        for (g, list) in per {
            for s in list {
                by_id
                    .entry((*g, s.view.0, clients[k].private_group))
                    .or_default()
                    .push(&s.view.1);
            }
        }
    }
    for ((g, id, a), views) in &by_id {
        let others: BTreeSet<&GroupName> = views.iter().flat_map(|v| v.iter()).filter(|m| *m > a).collect();
        for b in others {
            let Some(theirs) = by_id.get(&(*g, *id, *b)) else {
                continue;
            };
            let mine: Vec<&&Vec<GroupName>> = views.iter().filter(|v| v.contains(b)).collect();
            let yours: Vec<&&Vec<GroupName>> = theirs.iter().filter(|v| v.contains(a)).collect();
            if !mine.is_empty() && !yours.is_empty() && !mine.iter().any(|v| yours.contains(v)) {
                errs.push(format!(
                    "view {} of {}: {a} sees {:?}, {b} sees {:?}",
                    id_str(id),
                    gname(g),
                    mine[0],
                    yours[0]
                ));
            }
        }
    }

    // Views as numbers, so member lists are hashed once.
    let mut numbers: HashMap<&ViewKey, u32> = HashMap::new();
    for per in &segs {
        for list in per.values() {
            for s in list {
                for k in std::iter::once(&s.view).chain(&s.next) {
                    let next = numbers.len() as u32;
                    numbers.entry(k).or_insert(next);
                }
            }
        }
    }
    for g in (0..GROUPS.len()).map(group) {
        // Per member of the group: its views in order, the views it saw
        // once (a recreated group repeats its ids), its steps.
        struct Hist<'a> {
            k: usize,
            views: Vec<u32>,
            once: HashSet<u32>,
            segs: &'a [Seg],
        }
        let hists: Vec<Hist> = segs
            .iter()
            .enumerate()
            .filter_map(|(k, per)| per.get(&g).map(|l| (k, l)))
            .map(|(k, list)| {
                let views: Vec<u32> = list.iter().map(|s| numbers[&s.view]).collect();
                Hist {
                    k,
                    once: once(&views),
                    views,
                    segs: list,
                }
            })
            .collect();
        // Shared views in the same order.
        for (i, ha) in hists.iter().enumerate() {
            for hb in hists.iter().skip(i + 1) {
                let shared = |v: &&u32| ha.once.contains(v) && hb.once.contains(v);
                let ca: Vec<u32> = ha.views.iter().filter(shared).copied().collect();
                let cb: Vec<u32> = hb.views.iter().filter(shared).copied().collect();
                if ca != cb {
                    let d = ca.iter().zip(&cb).position(|(x, y)| x != y).unwrap_or(0);
                    let show = |v: Option<&u32>| {
                        v.and_then(|v| numbers.iter().find(|(_, n)| *n == v))
                            .map_or("-".into(), |(k, _)| id_str(&k.0))
                    };
                    errs.push(format!(
                        "{} and {} see the views of {} they share in different orders (at shared view {d}: {} vs {})",
                        cname(&clients[ha.k]),
                        cname(&clients[hb.k]),
                        gname(&g),
                        show(ca.get(d)),
                        show(cb.get(d)),
                    ));
                }
            }
        }
        // Virtual synchrony: clients that go together (same vs-set) from
        // one view to the same next view delivered the same messages in
        // the same order, the transitional notice at the same place.
        let mut sets: HashMap<&Vec<GroupName>, u32> = HashMap::new();
        let mut steps: HashMap<(u32, u32, u32), (usize, &Vec<Item>)> = HashMap::new();
        let mut arrivals: HashMap<(u32, u32), (usize, u32)> = HashMap::new();
        for h in &hists {
            let pairs: Vec<(u32, u32)> = h
                .segs
                .iter()
                .filter_map(|s| s.next.as_ref().map(|n| (numbers[&s.view], numbers[n])))
                .collect();
            let unique = once(&pairs);
            for s in h.segs {
                let Some(next) = &s.next else { continue };
                if !unique.contains(&(numbers[&s.view], numbers[next])) {
                    continue;
                }
                let n = sets.len() as u32;
                let step = (
                    numbers[&s.view],
                    numbers[next],
                    *sets.entry(&s.together).or_insert(n),
                );
                match steps.get(&step) {
                    None => {
                        steps.insert(step, (h.k, &s.items));
                    }
                    Some((first, items)) if *items != &s.items => errs.push(format!(
                        "{} and {} both went from view {} to {} of {} but delivered differently: {}",
                        cname(&clients[*first]),
                        cname(&clients[h.k]),
                        id_str(&s.view.0),
                        id_str(&next.0),
                        gname(&g),
                        first_diff(items, &s.items)
                    )),
                    Some(_) => {}
                }
                // Members of one vs-set of a network view came from the
                // same view.
                if s.next_cause != CAUSED_BY_NETWORK {
                    continue;
                }
                match arrivals.get(&(step.1, step.2)) {
                    None => {
                        arrivals.insert((step.1, step.2), (h.k, step.0));
                    }
                    Some((first, from)) if *from != step.0 => errs.push(format!(
                        "{} and {} share a vs-set of view {} of {} but came from different views",
                        cname(&clients[*first]),
                        cname(&clients[h.k]),
                        id_str(&next.0),
                        gname(&g),
                    )),
                    Some(_) => {}
                }
            }
        }
    }

    // Total order of everything two clients both delivered.
    let mut msg_numbers: HashMap<MsgKey, usize> = HashMap::new();
    let orders: Vec<Vec<usize>> = clients
        .iter()
        .map(|c| {
            c.log
                .iter()
                .filter_map(|e| match e {
                    Ev::Msg { key, .. } => {
                        let next = msg_numbers.len();
                        Some(*msg_numbers.entry(*key).or_insert(next))
                    }
                    _ => None,
                })
                .collect()
        })
        .collect();
    let mut pos = vec![usize::MAX; msg_numbers.len()];
    for a in 0..clients.len() {
        pos.iter_mut().for_each(|p| *p = usize::MAX);
        for (i, m) in orders[a].iter().enumerate() {
            pos[*m] = i;
        }
        for b in a + 1..clients.len() {
            let mut last = None;
            for m in &orders[b] {
                let p = pos[*m];
                if p == usize::MAX {
                    continue;
                }
                if last.is_some_and(|l| p < l) {
                    let key = msg_numbers.iter().find(|(_, n)| **n == *m).map(|(k, _)| *k);
                    errs.push(format!(
                        "{} and {} disagree on the order of {:?}",
                        cname(&clients[a]),
                        cname(&clients[b]),
                        key
                    ));
                    break;
                }
                last = Some(p);
            }
        }
    }

    // Liveness: answered requests and one last view per group.
    let live: Vec<usize> = (0..clients.len())
        .filter(|&k| clients[k].end.is_none() && clients[k].phase == Phase::Up)
        .collect();
    for &k in &live {
        for (g, s) in &clients[k].groups {
            if *s != Status::Member {
                errs.push(format!(
                    "{}: {} of {} never answered",
                    cname(&clients[k]),
                    if *s == Status::Joining { "join" } else { "leave" },
                    gname(g)
                ));
            }
        }
    }
    for c in clients {
        if c.phase != Phase::Closed && c.phase != Phase::Up {
            errs.push(format!("{}: handshake never finished", cname(c)));
        }
        // Daemon membership changes never cost a client its session.
        if c.end == Some(End::Dropped) {
            errs.push(format!("{}: the daemon closed the session", cname(c)));
        }
    }
    for g in (0..GROUPS.len()).map(group) {
        let holders: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&k| clients[k].groups.get(&g) == Some(&Status::Member))
            .collect();
        let want: BTreeSet<GroupName> = holders.iter().map(|&k| clients[k].private_group).collect();
        for &k in &holders {
            let last = segs[k].get(&g).and_then(|l| l.last()).map(|s| &s.view);
            let got: Option<BTreeSet<GroupName>> = last.map(|v| v.1.iter().copied().collect());
            if got.as_ref() != Some(&want) {
                errs.push(format!(
                    "at the end {} sees {} as {:?}, but its members are {:?}",
                    cname(&clients[k]),
                    gname(&g),
                    got,
                    want
                ));
            }
        }
    }
    errs
}

fn repro(seed: u64) -> String {
    format!("SIM_SEED={seed} cargo test -p spread-daemon --test sim_groups -- one_seed --nocapture")
}

/// Counts what a run exercised: [views, network views, network views with
/// several vs-sets, transitional notices, messages, messages delivered in a
/// transitional view, sessions lost in crashes].
fn stats(world: &World) -> [u64; 7] {
    let mut st = [0u64; 7];
    for c in &world.clients {
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
    let threads = 2;
    type Outcome = (Vec<(u64, Vec<String>)>, [u64; 7]);
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
                        for (a, b) in st.iter_mut().zip(stats(&world)) {
                            *a += b;
                        }
                        let errs = check(&world);
                        if std::env::var_os("SIM_TIMES").is_some() {
                            eprintln!(
                                "seed {seed}: n {} clients {} steps {} run {:.0} ms check {:.0} ms",
                                world.n,
                                world.clients.len(),
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

/// A seed whose run passes and has several clients in a group exchanging
/// messages across a transitional notice.
fn rich_seed() -> (u64, World) {
    (1..200u64)
        .map(|s| (s, run(s)))
        .find(|(_, w)| {
            let st = stats(w);
            st[3] > 0 && st[4] > 20 && check(w).is_empty()
        })
        .expect("no passing seed with transitional notices and traffic")
}

/// The checker catches broken logs: a passing run broken in the ways the
/// properties forbid.
#[test]
fn checker_catches_violations() {
    let (seed, base) = rich_seed();
    assert!(check(&base).is_empty());
    let msg_positions = |w: &World, k: usize| -> Vec<usize> {
        w.clients[k]
            .log
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, Ev::Msg { .. }))
            .map(|(p, _)| p)
            .collect()
    };
    // A client that delivered two messages of one group in a row.
    let busy = |w: &World| -> (usize, usize) {
        for (k, c) in w.clients.iter().enumerate() {
            for p in 1..c.log.len() {
                if let (Ev::Msg { groups: a, .. }, Ev::Msg { groups: b, .. }) = (&c.log[p - 1], &c.log[p]) {
                    if a == b {
                        return (k, p);
                    }
                }
            }
        }
        panic!("seed {seed}: no two consecutive messages");
    };

    // Two messages swapped at one client.
    let mut w = run(seed);
    let (k, p) = busy(&w);
    w.clients[k].log.swap(p - 1, p);
    let errs = check(&w);
    assert!(
        errs.iter()
            .any(|e| e.contains("order") || e.contains("delivered differently")),
        "swap not caught: {errs:?}"
    );

    // A message lost at one client.
    let mut w = run(seed);
    let (k, p) = busy(&w);
    let lost = w.clients[k].log.remove(p);
    let errs = check(&w);
    assert!(!errs.is_empty(), "loss of {lost:?} not caught");

    // A message delivered twice.
    let mut w = run(seed);
    let (k, p) = busy(&w);
    let again = w.clients[k].log[p].clone();
    w.clients[k].log.push(again);
    assert!(check(&w).iter().any(|e| e.contains("twice")));

    // A message from a sender outside the view.
    let mut w = run(seed);
    let (k, p) = busy(&w);
    if let Ev::Msg { sender, .. } = &mut w.clients[k].log[p] {
        *sender = GroupName::new(b"#intruder#d9").unwrap();
    }
    assert!(check(&w).iter().any(|e| e.contains("outside view")));

    // A transitional notice dropped.
    let mut w = run(seed);
    let (k, p) = w
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
    w.clients[k].log.remove(p);
    let errs = check(&w);
    assert!(
        errs.iter()
            .any(|e| e.contains("transitional") || e.contains("delivered differently")),
        "dropped transitional notice not caught: {errs:?}"
    );

    // A vs-set without the receiver.
    let mut w = run(seed);
    let (k, p) = w
        .clients
        .iter()
        .enumerate()
        .find_map(|(k, c)| {
            c.log
                .iter()
                .position(|e| matches!(e, Ev::View { cause, .. } if *cause == CAUSED_BY_NETWORK))
                .map(|p| (k, p))
        })
        .unwrap();
    let me = w.clients[k].private_group;
    if let Ev::View { vs_sets, mine, .. } = &mut w.clients[k].log[p] {
        vs_sets[*mine].retain(|m| *m != me);
    }
    assert!(check(&w).iter().any(|e| e.contains("vs-set")));

    // An own message that never comes back.
    let mut w = run(seed);
    let k = (0..w.clients.len())
        .find(|&k| w.clients[k].end.is_none() && !msg_positions(&w, k).is_empty())
        .unwrap();
    let own = w.clients[k].private_group;
    let p = w.clients[k]
        .log
        .iter()
        .position(|e| matches!(e, Ev::Msg { sender, .. } if *sender == own));
    let p = p.expect("a live sender delivers its own messages");
    w.clients[k].log.remove(p);
    let errs = check(&w);
    assert!(errs.iter().any(|e| e.contains("own")), "{errs:?}");
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
        if !matches!(a, Action::Op) {
            eprintln!("{:8.3}s {:?}", t.as_secs_f64(), a);
        }
    }
    eprintln!("end {:.3}s", end.as_secs_f64());
    let world = run(seed);
    eprintln!(
        "net {:?}, accelerated ring {}, layout {:?}, {} steps",
        world.net, world.accelerated, world.layout, world.steps
    );
    for c in &world.clients {
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
