//! The client-level virtual synchrony checker of the whole-daemon simulator
//! (`sim_groups.rs`): what Spread promises its clients, one named check per
//! guarantee, over everything each client read from its daemon.
//!
//! | Guarantee (check)             | Promise                                                                   | Broken on purpose in `checker_catches_violations` by |
//! |-------------------------------|---------------------------------------------------------------------------|------------------------------------------------------|
//! | `views_well_formed`           | a regular membership notice lists the receiver once; a network notice's vs-sets partition its members with the receiver in its own; a join/leave/disconnect notice names the one member that changed | a join notice that says the joiner left |
//! | `own_membership`              | the first view after a join is the client's own join, and a leave notice comes only in a view | a leave notice of a group the client never joined |
//! | `transitional_notices`        | a transitional notice comes within a view, carries its group id, and is followed by a network view | a transitional notice with another view's id |
//! | `no_duplicates`               | no client delivers a message twice                                        | a message delivered again right after itself |
//! | `nothing_from_outside_the_view` | a client delivers only messages of groups it is in, from senders in its current view | a message from a sender outside the view |
//! | `well_formed_stream`          | everything a client reads is a well-formed message it expects (no rejects, no corrupted payloads) | an undecodable message |
//! | `self_delivery`               | a client delivers its own messages after sending them and before it sees itself leave, all of them while connected, none sent with SELF_DISCARD | a message sent that never comes back |
//! | `views_agree`                 | members that list each other in views of one id see the same members, and the views two members share come in the same order | a stranger added to one client's copy of a view |
//! | `virtual_synchrony`           | clients that move together (same vs-set) from one view to the next delivered the same messages of the group in the same order, the transitional notice at the same place; members of one vs-set came from the same view | a message moved before the transitional notice at one client |
//! | `agreed_total_order`          | messages two clients both delivered are in the same relative order       | two messages of different groups swapped at one client |
//! | `requests_answered`           | at the end every join and leave was answered and every handshake finished | a join nobody answered |
//! | `sessions_survive`            | no daemon closes a client's session on its own (membership changes reach clients only as notices) | a session the daemon closed |
//! | `last_view_agrees`            | at the end all members of a group agree on one last view listing exactly them | a client that thinks it is a member nobody sees |
//!
//! A view may drop members for a network reason without a transitional
//! notice: as in the original, none is sent when the change cascades during a
//! state exchange (no message can come in between).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::simnet::engines::{Client, End, Ev, MsgKey, Phase, Status, World};
use super::{group, GROUPS};
use spread_wire::client::service::*;
use spread_wire::client::{GroupId, GroupName};

/// A broken guarantee: the check that found it and what it saw.
#[derive(Clone, Debug)]
pub struct Violation {
    pub check: &'static str,
    pub what: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.check, self.what)
    }
}

type Check = fn(&World, &History) -> Vec<String>;

/// Every guarantee, by name, in the order they run.
pub const CHECKS: &[(&str, Check)] = &[
    ("views_well_formed", views_well_formed),
    ("own_membership", own_membership),
    ("transitional_notices", transitional_notices),
    ("no_duplicates", no_duplicates),
    ("nothing_from_outside_the_view", nothing_from_outside_the_view),
    ("well_formed_stream", well_formed_stream),
    ("self_delivery", self_delivery),
    ("views_agree", views_agree),
    ("virtual_synchrony", virtual_synchrony),
    ("agreed_total_order", agreed_total_order),
    ("requests_answered", requests_answered),
    ("sessions_survive", sessions_survive),
    ("last_view_agrees", last_view_agrees),
];

/// Runs every check; returns the violations found, each naming its check.
pub fn check(world: &World) -> Vec<Violation> {
    let h = History::of(world);
    CHECKS
        .iter()
        .flat_map(|(check, f)| f(world, &h).into_iter().map(|what| Violation { check, what }))
        .collect()
}

/// A view as clients see it: group id and members. Group ids can repeat
/// (a group that empties and is created again in the same ring), so the
/// members are part of the key.
pub type ViewKey = (GroupId, Vec<GroupName>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Msg(MsgKey),
    Trans,
}

/// What one client saw of one group from one view to the next.
#[derive(Debug)]
pub struct Seg {
    pub view: ViewKey,
    pub items: Vec<Item>,
    pub next: Option<ViewKey>,
    /// Who moved on to the next view together with this client: its
    /// vs-set in a network view, everyone in a join/leave/disconnect view.
    pub together: Vec<GroupName>,
    /// The cause bit of the next view.
    pub next_cause: u32,
    /// `view` and `next` as numbers (see [`History::view_ids`]).
    pub view_no: u32,
    pub next_no: Option<u32>,
}

/// What the checks share: each client's segments per group, with views
/// as numbers so member lists are hashed once.
pub struct History {
    pub segs: Vec<BTreeMap<GroupName, Vec<Seg>>>,
    /// The group id of each view number.
    pub view_ids: Vec<GroupId>,
}

impl History {
    pub fn of(world: &World) -> History {
        let mut segs: Vec<BTreeMap<GroupName, Vec<Seg>>> = world.app.clients.iter().map(segments).collect();
        let mut view_ids = Vec::new();
        let assigned: Vec<(u32, Option<u32>)> = {
            let mut numbers: HashMap<&ViewKey, u32> = HashMap::new();
            let mut number = |k| view_number(&mut numbers, &mut view_ids, k);
            segs.iter()
                .flat_map(|per| per.values().flatten())
                .map(|s| (number(&s.view), s.next.as_ref().map(&mut number)))
                .collect()
        };
        for (s, (view_no, next_no)) in segs
            .iter_mut()
            .flat_map(|per| per.values_mut().flatten())
            .zip(assigned)
        {
            s.view_no = view_no;
            s.next_no = next_no;
        }
        History { segs, view_ids }
    }
}

fn view_number<'a>(numbers: &mut HashMap<&'a ViewKey, u32>, ids: &mut Vec<GroupId>, k: &'a ViewKey) -> u32 {
    if let Some(n) = numbers.get(k) {
        return *n;
    }
    let n = numbers.len() as u32;
    numbers.insert(k, n);
    ids.push(k.0);
    n
}

pub fn cname(c: &Client) -> String {
    format!("{} (d{})", c.private_group, c.node + 1)
}

pub fn gname(g: &GroupName) -> String {
    g.to_string_lossy()
}

pub fn id_str(id: &GroupId) -> String {
    format!("({:x},{},{})", id.memb_id.proc_id, id.memb_id.time, id.index)
}

/// A client's standing in its groups while its log is read.
#[derive(Default)]
pub struct Standing<'a> {
    /// The current view of each group the client is in (not left).
    pub views: HashMap<GroupName, (&'a GroupId, &'a Vec<GroupName>)>,
    /// Groups with a transitional notice since their current view.
    pub trans: HashSet<GroupName>,
}

impl Standing<'_> {
    pub fn in_view(&self, g: &GroupName) -> bool {
        self.views.contains_key(g)
    }
}

/// Calls `f` on every event of `c`'s log with the client's standing just
/// before it.
pub fn walk<'a>(c: &'a Client, mut f: impl FnMut(usize, &'a Ev, &Standing<'a>)) {
    let mut st = Standing::default();
    for (pos, ev) in c.log.iter().enumerate() {
        f(pos, ev, &st);
        match ev {
            Ev::View {
                group, id, members, ..
            } => {
                st.views.insert(*group, (id, members));
                st.trans.remove(group);
            }
            Ev::Trans { group, .. } if st.in_view(group) => {
                st.trans.insert(*group);
            }
            Ev::SelfLeave { group } => {
                st.views.remove(group);
                st.trans.remove(group);
            }
            _ => {}
        }
    }
}

/// One client's log cut into segments per group.
pub fn segments(c: &Client) -> BTreeMap<GroupName, Vec<Seg>> {
    let mut segs: BTreeMap<GroupName, Vec<Seg>> = BTreeMap::new();
    walk(c, |_, ev, st| match ev {
        Ev::View {
            group,
            id,
            cause,
            members,
            vs_sets,
            mine,
        } => {
            let list = segs.entry(*group).or_default();
            if st.in_view(group) {
                let prev = list.last_mut().expect("open view");
                prev.next = Some((*id, members.clone()));
                prev.next_cause = *cause;
                prev.together = if *cause == CAUSED_BY_NETWORK {
                    vs_sets.get(*mine).cloned().unwrap_or_default()
                } else {
                    members.clone()
                };
            }
            list.push(Seg {
                view: (*id, members.clone()),
                items: Vec::new(),
                next: None,
                together: Vec::new(),
                next_cause: 0,
                view_no: 0,
                next_no: None,
            });
        }
        Ev::Trans { group, .. } if st.in_view(group) => {
            let seg = segs.get_mut(group).and_then(|l| l.last_mut()).expect("open view");
            seg.items.push(Item::Trans);
        }
        Ev::Msg {
            key, groups, service, ..
        } => {
            for g in groups.iter().filter(|g| st.in_view(g)) {
                // Its sender does not get a SELF_DISCARD message, so such
                // messages are left out of the comparison.
                if service & SELF_DISCARD == 0 {
                    let seg = segs.get_mut(g).and_then(|l| l.last_mut()).expect("open view");
                    seg.items.push(Item::Msg(*key));
                }
            }
        }
        _ => {}
    });
    segs
}

fn view_at(c: &Client, pos: usize, group: &GroupName, id: &GroupId) -> String {
    format!("{} at {pos}: view {} of {}", cname(c), id_str(id), gname(group))
}

/// Membership notices are well formed: a regular membership notice lists
/// the receiver, each member once; a network notice's vs-sets partition its
/// members and the receiver's own vs-set holds it; a join, leave or
/// disconnect notice carries one vs-set with the member that changed (among
/// the members after a join, not after a leave).
fn views_well_formed(world: &World, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for c in &world.app.clients {
        let me = c.private_group;
        for (pos, ev) in c.log.iter().enumerate() {
            let Ev::View {
                group,
                id,
                cause,
                members,
                vs_sets,
                mine,
            } = ev
            else {
                continue;
            };
            let at = view_at(c, pos, group, id);
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
                    let union: BTreeSet<GroupName> = vs_sets.iter().flatten().copied().collect();
                    let total: usize = vs_sets.iter().map(|s| s.len()).sum();
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
        }
    }
    errs
}

/// A client's own membership: the first view it gets of a group it is not
/// in is its own join (a join during a daemon membership change comes as a
/// network view with the joiner in a vs-set of its own), and it sees itself
/// leave only a group it is in.
fn own_membership(world: &World, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for c in &world.app.clients {
        let me = c.private_group;
        walk(c, |pos, ev, st| match ev {
            Ev::View {
                group,
                id,
                cause,
                vs_sets,
                mine,
                ..
            } if !st.in_view(group) => {
                let own = match *cause {
                    CAUSED_BY_JOIN => vs_sets.first().is_some_and(|s| s == &[me]),
                    CAUSED_BY_NETWORK => vs_sets.get(*mine).is_some_and(|s| s == &[me]),
                    _ => false,
                };
                if !own {
                    errs.push(format!(
                        "{}: the first view after joining is not its own join",
                        view_at(c, pos, group, id)
                    ));
                }
            }
            Ev::SelfLeave { group } if !st.in_view(group) => errs.push(format!(
                "{} at {pos}: leave notice of {} outside any view",
                cname(c),
                gname(group)
            )),
            _ => {}
        });
    }
    errs
}

/// Transitional notices: a transitional notice comes within a view of its
/// group and carries that view's group id, and the view that follows it is
/// a network view.
fn transitional_notices(world: &World, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for c in &world.app.clients {
        walk(c, |pos, ev, st| match ev {
            Ev::View { group, id, cause, .. } if st.trans.contains(group) && *cause != CAUSED_BY_NETWORK => {
                errs.push(format!(
                    "{}: cause {cause:#x} after a transitional notice (expected a network view)",
                    view_at(c, pos, group, id)
                ))
            }
            Ev::Trans { group, id } => {
                let at = format!("{} at {pos}: transitional notice of {}", cname(c), gname(group));
                match st.views.get(group) {
                    None => errs.push(format!("{at} outside any view")),
                    Some((view, _)) if *view != id => {
                        errs.push(format!("{at} carries id {} in view {}", id_str(id), id_str(view)))
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        });
    }
    errs
}

/// No duplication: a client delivers each message at most once.
fn no_duplicates(world: &World, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for c in &world.app.clients {
        let mut seen = HashSet::new();
        for (pos, ev) in c.log.iter().enumerate() {
            if let Ev::Msg { key, service, .. } = ev {
                if !seen.insert(*key) {
                    errs.push(format!(
                        "{} at {pos}: message {key:?} ({service:#x}) delivered twice",
                        cname(c)
                    ));
                }
            }
        }
    }
    errs
}

/// Nothing from outside the view: a client delivers a message only while
/// it is in (a view of) one of the message's groups, and only from a sender
/// that its current view of each such group lists.
fn nothing_from_outside_the_view(world: &World, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for c in &world.app.clients {
        walk(c, |pos, ev, st| {
            let Ev::Msg {
                key,
                sender,
                groups,
                service,
            } = ev
            else {
                return;
            };
            let at = format!("{} at {pos}: message {key:?} ({service:#x})", cname(c));
            // A message to several groups reaches members of any of them.
            if !groups.iter().any(|g| st.in_view(g)) {
                errs.push(format!(
                    "{at} to {} outside any view of them",
                    groups.iter().map(gname).collect::<Vec<_>>().join(",")
                ));
            }
            for g in groups {
                if let Some((id, members)) = st.views.get(g) {
                    if !members.contains(sender) {
                        errs.push(format!(
                            "{at} from {sender}, outside view {} of {}",
                            id_str(id),
                            gname(g)
                        ));
                    }
                }
            }
        });
    }
    errs
}

/// A well-formed stream: everything a client reads from its daemon decodes
/// as a message it expects (the handshake's answers, notices, intact
/// payloads), and the daemon never rejects it.
fn well_formed_stream(world: &World, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for c in &world.app.clients {
        for (pos, ev) in c.log.iter().enumerate() {
            if let Ev::Bad(what) = ev {
                errs.push(format!("{} at {pos}: {what}", cname(c)));
            }
        }
    }
    errs
}

/// Self delivery: a client delivers its own messages after sending them
/// and before it sees itself leave the group, all of them if it stays
/// connected, and none it sent with SELF_DISCARD.
fn self_delivery(world: &World, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    for c in &world.app.clients {
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
    }
    errs
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

/// Per member of group `g`: its index, its views in order, the views it
/// saw once (a recreated group repeats its ids), its segments.
struct Hist<'a> {
    k: usize,
    views: Vec<u32>,
    once: HashSet<u32>,
    segs: &'a [Seg],
}

fn hists<'a>(h: &'a History, g: &GroupName) -> Vec<Hist<'a>> {
    h.segs
        .iter()
        .enumerate()
        .filter_map(|(k, per)| per.get(g).map(|l| (k, l)))
        .map(|(k, list)| {
            let views: Vec<u32> = list.iter().map(|s| s.view_no).collect();
            Hist {
                k,
                once: once(&views),
                views,
                segs: list,
            }
        })
        .collect()
}

/// View agreement and order: two members that list each other in views of
/// one group id see the same members (a group that empties and is created
/// again in the same ring reuses its ids, so it is enough that one of the
/// views that list each other is common), and the views of a group that two
/// clients share come to both in the same order.
fn views_agree(world: &World, h: &History) -> Vec<String> {
    let mut errs = Vec::new();
    let clients = &world.app.clients;
    let mut by_id: HashMap<(GroupName, GroupId, GroupName), Vec<&Vec<GroupName>>> = HashMap::new();
    for (k, per) in h.segs.iter().enumerate() {
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
    for g in (0..GROUPS.len()).map(group) {
        let hists = hists(h, &g);
        for (i, ha) in hists.iter().enumerate() {
            for hb in hists.iter().skip(i + 1) {
                let shared = |v: &&u32| ha.once.contains(v) && hb.once.contains(v);
                let ca: Vec<u32> = ha.views.iter().filter(shared).copied().collect();
                let cb: Vec<u32> = hb.views.iter().filter(shared).copied().collect();
                if ca != cb {
                    let d = ca.iter().zip(&cb).position(|(x, y)| x != y).unwrap_or(0);
                    let show = |v: Option<&u32>| v.map_or("-".into(), |v| id_str(&h.view_ids[*v as usize]));
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
    }
    errs
}

/// Virtual synchrony: clients that move together (in one vs-set) from a
/// view of a group to the same next view delivered the same messages of the
/// group between them, in the same order, with the transitional notice (if
/// any) at the same place; and the members of one vs-set of a network view
/// came from the same view.
fn virtual_synchrony(world: &World, h: &History) -> Vec<String> {
    let mut errs = Vec::new();
    let clients = &world.app.clients;
    for g in (0..GROUPS.len()).map(group) {
        let hists = hists(h, &g);
        let mut sets: HashMap<&Vec<GroupName>, u32> = HashMap::new();
        let mut steps: HashMap<(u32, u32, u32), (usize, &Vec<Item>)> = HashMap::new();
        let mut arrivals: HashMap<(u32, u32), (usize, u32)> = HashMap::new();
        for hi in &hists {
            let pairs: Vec<(u32, u32)> = hi
                .segs
                .iter()
                .filter_map(|s| s.next_no.map(|n| (s.view_no, n)))
                .collect();
            let unique = once(&pairs);
            for s in hi.segs {
                let (Some(next), Some(next_no)) = (&s.next, s.next_no) else {
                    continue;
                };
                if !unique.contains(&(s.view_no, next_no)) {
                    continue;
                }
                let n = sets.len() as u32;
                let step = (s.view_no, next_no, *sets.entry(&s.together).or_insert(n));
                match steps.get(&step) {
                    None => {
                        steps.insert(step, (hi.k, &s.items));
                    }
                    Some((first, items)) if *items != &s.items => errs.push(format!(
                        "{} and {} both went from view {} to {} of {} but delivered differently: {}",
                        cname(&clients[*first]),
                        cname(&clients[hi.k]),
                        id_str(&s.view.0),
                        id_str(&next.0),
                        gname(&g),
                        first_diff(items, &s.items)
                    )),
                    Some(_) => {}
                }
                if s.next_cause != CAUSED_BY_NETWORK {
                    continue;
                }
                match arrivals.get(&(step.1, step.2)) {
                    None => {
                        arrivals.insert((step.1, step.2), (hi.k, step.0));
                    }
                    Some((first, from)) if *from != step.0 => errs.push(format!(
                        "{} and {} share a vs-set of view {} of {} but came from different views",
                        cname(&clients[*first]),
                        cname(&clients[hi.k]),
                        id_str(&next.0),
                        gname(&g),
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    errs
}

/// AGREED total order: the messages two clients both delivered (of any
/// group) are in the same relative order at both.
fn agreed_total_order(world: &World, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    let clients = &world.app.clients;
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
    errs
}

/// Clients still connected at the end, with their handshake done.
fn live(world: &World) -> Vec<usize> {
    let clients = &world.app.clients;
    (0..clients.len())
        .filter(|&k| clients[k].end.is_none() && clients[k].phase == Phase::Up)
        .collect()
}

/// Liveness of requests: at the end every handshake finished and every
/// join and leave of a connected client was answered.
fn requests_answered(world: &World, _: &History) -> Vec<String> {
    let mut errs = Vec::new();
    let clients = &world.app.clients;
    for k in live(world) {
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
    }
    errs
}

/// Sessions survive: no daemon closes a client's session on its own;
/// daemon membership changes reach clients only as notices.
fn sessions_survive(world: &World, _: &History) -> Vec<String> {
    world
        .app
        .clients
        .iter()
        .filter(|c| c.end == Some(End::Dropped))
        .map(|c| format!("{}: the daemon closed the session", cname(c)))
        .collect()
}

/// Liveness of views: at the end all members of a group agree on one last
/// view, and it lists exactly them.
fn last_view_agrees(world: &World, h: &History) -> Vec<String> {
    let mut errs = Vec::new();
    let clients = &world.app.clients;
    let live = live(world);
    for g in (0..GROUPS.len()).map(group) {
        let holders: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&k| clients[k].groups.get(&g) == Some(&Status::Member))
            .collect();
        let want: BTreeSet<GroupName> = holders.iter().map(|&k| clients[k].private_group).collect();
        for &k in &holders {
            let last = h.segs[k].get(&g).and_then(|l| l.last()).map(|s| &s.view);
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
