//! Process groups: who is in which group, the ids of their views, and how
//! the table survives daemon membership changes (the state exchange).
//!
//! Joins, leaves, disconnects and GROUPS messages are applied in the order
//! the ring delivers them, so every daemon holds the same table. A group
//! keeps its members per daemon (in configuration order, then by private
//! group name: the order of membership notices), and for each daemon the
//! ring membership in which its members were last known to be together.
//!
//! After a daemon membership change that adds daemons, each *synced set*
//! (daemons that already agree on the table) sends its view of every group
//! in GROUPS messages; once every daemon of the new ring is accounted for,
//! groups whose member sets came from different views get a network
//! notice whose vs-sets say which members moved together. A purely
//! subtractive change needs no exchange. Cascading changes during an
//! exchange follow the original's four states (Op, Trans, Gather,
//! GatherTrans) so a mixed ring of C and Rust daemons stays in step.
//!
//! Every lookup is a B-tree search; a notice necessarily lists all members.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use log::{debug, error, info, warn};
use spread_wire::client::limits::MAX_GROUP_NAME;
use spread_wire::client::{GroupId, GroupName, MembId};
use spread_wire::daemon::{DaemonMembers as WireDaemon, GroupState, GroupsBody};

/// Local members a group may have, as bounded by the original's group-state
/// buffer: (100000 - 9 - 48 - 14) / 32.
pub const MAX_LOCAL_GROUP_MEMBERS: usize = (100_000 - 9 - 48 - 14) / 32;

/// Largest GROUPS message body.
const GROUPS_BUF_SIZE: usize = 100_000;
/// Room a group's name, id, changed flag and daemon count take, plus the
/// message header the original reserves.
const GROUP_INFO_NEEDS: usize = 48 + 48;
/// Room a daemon's id, membership id and member count take, plus header.
const DAEMON_INFO_NEEDS: usize = 14 + 48;

/// The membership id of a daemon whose members were cut off from us.
pub const UNKNOWN_MEMB: MembId = MembId {
    proc_id: -1,
    time: -1,
};

/// A member of a group: its daemon's rank in the configuration and its
/// private group name. The derived order is the order of notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    pub daemon_rank: u32,
    pub name: GroupName,
}

/// One daemon's part in a group; its members are in `Group::members`.
#[derive(Clone, Copy, Debug)]
struct DaemonPart {
    rank: u32,
    proc_id: i32,
    /// The ring membership in which these members were last together with
    /// ours; `UNKNOWN_MEMB` while partitioned from us.
    memb_id: MembId,
}

impl DaemonPart {
    fn is_partitioned(&self) -> bool {
        self.memb_id.proc_id == -1
    }
}

/// Room for one more element: exactly one for the first (most groups have
/// one member on one daemon), then doubling.
fn room_for_one<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len().max(1));
    }
}

/// Give back most of a vector's room once three quarters of it are unused.
fn shrink_if_sparse<T>(v: &mut Vec<T>) {
    if v.capacity() > 4 && v.len() < v.capacity() / 4 {
        v.shrink_to(v.len() * 2);
    }
}

/// A group: two sorted vectors rather than maps of maps, because every
/// change already costs a notice naming all members, and a group of one
/// member then takes two small allocations.
#[derive(Clone, Debug)]
pub struct Group {
    pub id: GroupId,
    /// Changed by a daemon membership change and not yet announced.
    pub changed: bool,
    /// Daemons with members here, by rank.
    daemons: Vec<DaemonPart>,
    /// Members in notice order (daemon rank, then name).
    members: Vec<Member>,
}

impl Group {
    fn new(id: GroupId) -> Group {
        Group {
            id,
            changed: false,
            daemons: Vec::new(),
            members: Vec::new(),
        }
    }

    /// All members in notice order.
    pub fn members(&self) -> impl Iterator<Item = Member> + '_ {
        self.members.iter().copied()
    }

    /// Members on one daemon.
    pub fn members_on(&self, daemon_rank: u32) -> impl Iterator<Item = Member> + '_ {
        self.on(daemon_rank).iter().copied()
    }

    fn on(&self, daemon_rank: u32) -> &[Member] {
        let lo = self.members.partition_point(|m| m.daemon_rank < daemon_rank);
        let hi = lo + self.members[lo..].partition_point(|m| m.daemon_rank == daemon_rank);
        &self.members[lo..hi]
    }

    fn daemon(&self, rank: u32) -> Option<&DaemonPart> {
        let i = self.daemons.binary_search_by_key(&rank, |d| d.rank).ok()?;
        Some(&self.daemons[i])
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn member_names(&self) -> Vec<GroupName> {
        self.members().map(|m| m.name).collect()
    }

    fn contains(&self, member: &Member) -> bool {
        self.members.binary_search(member).is_ok()
    }

    /// Members split into vs-sets: daemons grouped by the membership id
    /// their members share (partitioned daemons alone), sets ordered by
    /// that id, daemons by configuration; `joiner` (a join while the group
    /// is changed) in a set of its own at the end. Also returns the index
    /// of the set holding `my_rank`'s members.
    fn vs_sets(&self, my_rank: u32, joiner: Option<&Member>) -> (Vec<Vec<GroupName>>, usize) {
        let mut daemons: Vec<&DaemonPart> = self.daemons.iter().collect();
        daemons.sort_by(|a, b| compare_memb_ids(&a.memb_id, &b.memb_id).then(a.rank.cmp(&b.rank)));
        let mut sets: Vec<Vec<GroupName>> = Vec::new();
        let mut current: Option<MembId> = None;
        let mut mine = 0;
        for d in daemons {
            let starts_set = match current {
                None => true,
                Some(id) => id.proc_id == -1 || id != d.memb_id,
            };
            if starts_set {
                sets.push(Vec::new());
                current = Some(d.memb_id);
            }
            if d.rank == my_rank {
                mine = sets.len() - 1;
            }
            let set = sets.last_mut().expect("pushed above");
            set.extend(
                self.on(d.rank)
                    .iter()
                    .map(|m| m.name)
                    .filter(|n| joiner.is_none_or(|j| j.name != *n)),
            );
        }
        if let Some(j) = joiner {
            sets.push(vec![j.name]);
        }
        (sets, mine)
    }

    fn insert(&mut self, member: Member, proc_id: i32, memb_id: MembId) -> bool {
        let Err(at) = self.members.binary_search(&member) else {
            return false;
        };
        if let Err(d) = self.daemons.binary_search_by_key(&member.daemon_rank, |d| d.rank) {
            room_for_one(&mut self.daemons);
            self.daemons.insert(
                d,
                DaemonPart {
                    rank: member.daemon_rank,
                    proc_id,
                    memb_id,
                },
            );
        }
        room_for_one(&mut self.members);
        self.members.insert(at, member);
        true
    }

    fn remove(&mut self, member: &Member) -> bool {
        let Ok(at) = self.members.binary_search(member) else {
            return false;
        };
        self.members.remove(at);
        shrink_if_sparse(&mut self.members);
        if self.on(member.daemon_rank).is_empty() {
            self.daemons.retain(|d| d.rank != member.daemon_rank);
        }
        true
    }

    /// Remove a daemon and its members; returns their names.
    fn remove_daemon(&mut self, rank: u32) -> Vec<GroupName> {
        self.daemons.retain(|d| d.rank != rank);
        let lo = self.members.partition_point(|m| m.daemon_rank < rank);
        let hi = lo + self.members[lo..].partition_point(|m| m.daemon_rank == rank);
        let gone = self.members.drain(lo..hi).map(|m| m.name).collect();
        shrink_if_sparse(&mut self.members);
        gone
    }

    /// New ranks for the daemons (by proc id), members re-sorted to match.
    fn rerank(&mut self, rank_of: impl Fn(i32) -> u32) {
        let mut old_to_new = Vec::with_capacity(self.daemons.len());
        for d in &mut self.daemons {
            let new = rank_of(d.proc_id);
            old_to_new.push((d.rank, new));
            d.rank = new;
        }
        self.daemons.sort_by_key(|d| d.rank);
        for m in &mut self.members {
            if let Some(&(_, new)) = old_to_new.iter().find(|(old, _)| *old == m.daemon_rank) {
                m.daemon_rank = new;
            }
        }
        self.members.sort();
    }

    fn update_daemon_memb_ids(&mut self) {
        let id = self.id.memb_id;
        for d in self.daemons.iter_mut().filter(|d| !d.is_partitioned()) {
            d.memb_id = id;
        }
    }
}

/// The original's order of membership ids (unknown last); differences are
/// taken with 32-bit wrap-around as it does.
fn compare_memb_ids(a: &MembId, b: &MembId) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.proc_id == -1, b.proc_id == -1) {
        (true, true) => return Equal,
        (true, false) => return Greater,
        (false, true) => return Less,
        _ => {}
    }
    let d = a.proc_id.wrapping_sub(b.proc_id);
    if d != 0 {
        return d.cmp(&0);
    }
    a.time.wrapping_sub(b.time).cmp(&0)
}

/// Why a group's membership changed, for join/leave/disconnect notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Join,
    Leave,
    Disconnect,
}

/// One group's new view after a join, leave or disconnect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub group: GroupName,
    pub cause: Cause,
    pub changed: Member,
    /// The new group id (unchanged id if the group is now empty).
    pub id: GroupId,
    /// Members after the change, in notice order (empty: group removed).
    pub members: Vec<Member>,
}

/// What the local members of a group must be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A join, leave or disconnect of one member (one vs-set with it).
    Change(Change),
    /// The leaving member's own notice.
    SelfLeave { group: GroupName, member: GroupName },
    /// A view after a daemon membership change (or a join, leave or
    /// disconnect while the group is changed): vs-sets of members that
    /// moved together; `mine` is the set of this daemon's members, and a
    /// local `joiner`'s own set is the last one.
    Network {
        group: GroupName,
        id: GroupId,
        members: Vec<Member>,
        vs_sets: Vec<Vec<GroupName>>,
        mine: usize,
        joiner: Option<Member>,
    },
    /// The group is entering a transitional view; the body is its old id.
    Transitional { group: GroupName, id: GroupId },
}

/// The group layer's state across daemon membership changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Operational.
    Op,
    /// A transitional configuration was delivered.
    Trans,
    /// Gathering GROUPS messages of the new regular configuration.
    Gather,
    /// A transitional configuration arrived while gathering.
    GatherTrans,
}

/// What the engine must do for the state exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// Nothing changes in how messages flow.
    None,
    /// Hold client traffic and deliver only from AGREED up; send these
    /// GROUPS bodies (last one AGREED, the others RELIABLE), if any.
    Start {
        bodies: Vec<GroupsBody>,
        synced_set_size: u32,
    },
    /// Client traffic flows again.
    Done,
}

#[derive(Debug)]
struct Gathered {
    rep: i32,
    bodies: Vec<GroupsBody>,
    complete: bool,
}

pub struct Groups {
    groups: BTreeMap<GroupName, Group>,
    /// Each member's daemon rank and groups, so a disconnect touches only
    /// those and a removal is a direct B-tree search.
    memberships: BTreeMap<GroupName, (u32, BTreeSet<GroupName>)>,
    /// Daemon ids by configuration rank.
    daemon_ids: Vec<i32>,
    my_rank: u32,
    state: State,
    trans_memb: Vec<i32>,
    trans_memb_id: MembId,
    reg_memb: Vec<i32>,
    reg_memb_id: MembId,
    /// Daemons that agree with us on the table, in configuration order;
    /// the first one speaks for them in the exchange.
    synced_set: Vec<i32>,
    gathered: Vec<Gathered>,
    own_complete: bool,
    /// Daemons of the new membership whose synced set's state is in (the
    /// original counts the sizes its peers claim; a set cannot be fooled
    /// by a bogus size).
    covered: BTreeSet<i32>,
}

impl Groups {
    /// A table for daemon `my_rank` of the daemons `daemon_ids` (by rank),
    /// starting in ring `memb_id`.
    pub fn new(daemon_ids: Vec<i32>, my_rank: u32, memb_id: MembId) -> Groups {
        let me = daemon_ids.get(my_rank as usize).copied().unwrap_or(0);
        Groups {
            groups: BTreeMap::new(),
            memberships: BTreeMap::new(),
            daemon_ids,
            my_rank,
            state: State::Op,
            trans_memb: vec![me],
            trans_memb_id: memb_id,
            reg_memb: vec![me],
            reg_memb_id: memb_id,
            synced_set: vec![me],
            gathered: Vec::new(),
            own_complete: false,
            covered: BTreeSet::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// A reloaded configuration: daemon ids by their new ranks, ours at
    /// `my_rank`. Members keep their daemon (by id); daemons no longer in
    /// the file keep a rank after the configured ones until the membership
    /// change the reload causes removes their members.
    pub fn adopt_configuration(&mut self, mut daemon_ids: Vec<i32>, my_rank: u32) {
        let old_ids = std::mem::take(&mut self.daemon_ids);
        for id in self
            .groups
            .values()
            .flat_map(|g| g.daemons.iter().map(|d| d.proc_id))
        {
            if !daemon_ids.contains(&id) {
                daemon_ids.push(id);
            }
        }
        for id in self
            .memberships
            .values()
            .filter_map(|(rank, _)| old_ids.get(*rank as usize))
        {
            if !daemon_ids.contains(id) {
                daemon_ids.push(*id);
            }
        }
        let rank_of = |id: i32| daemon_ids.iter().position(|&x| x == id).unwrap_or(0) as u32;
        for g in self.groups.values_mut() {
            g.rerank(rank_of);
        }
        for (rank, _) in self.memberships.values_mut() {
            if let Some(&id) = old_ids.get(*rank as usize) {
                *rank = rank_of(id);
            }
        }
        self.daemon_ids = daemon_ids;
        self.my_rank = my_rank;
    }

    pub fn get(&self, name: &GroupName) -> Option<&Group> {
        self.groups.get(name)
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Groups by name.
    pub fn iter(&self) -> impl Iterator<Item = (&GroupName, &Group)> {
        self.groups.iter()
    }

    /// Groups `member` belongs to, in name order.
    pub fn groups_of(&self, member: &GroupName) -> impl Iterator<Item = &GroupName> {
        self.memberships
            .get(member)
            .into_iter()
            .flat_map(|(_, groups)| groups.iter())
    }

    fn proc_id(&self, rank: u32) -> i32 {
        self.daemon_ids.get(rank as usize).copied().unwrap_or(-1)
    }

    fn rank_of(&self, proc_id: i32) -> Option<u32> {
        self.daemon_ids
            .iter()
            .position(|&id| id == proc_id)
            .map(|r| r as u32)
    }

    fn in_trans(&self, proc_id: i32) -> bool {
        self.trans_memb.contains(&proc_id)
    }

    fn index_add(&mut self, group: GroupName, member: Member) {
        self.memberships
            .entry(member.name)
            .or_insert_with(|| (member.daemon_rank, BTreeSet::new()))
            .1
            .insert(group);
    }

    fn index_remove(&mut self, group: &GroupName, member: &GroupName) {
        if let Some((_, set)) = self.memberships.get_mut(member) {
            set.remove(group);
            if set.is_empty() {
                self.memberships.remove(member);
            }
        }
    }

    fn has_local_members(&self, group: &Group) -> bool {
        group.daemon(self.my_rank).is_some()
    }

    fn network_notice(&self, name: GroupName, group: &Group, joiner: Option<Member>) -> Notice {
        let (vs_sets, mine) = group.vs_sets(self.my_rank, joiner.as_ref());
        Notice::Network {
            group: name,
            id: group.id,
            members: group.members().collect(),
            vs_sets,
            mine,
            joiner,
        }
    }

    // ----- joins, leaves, disconnects -----

    /// Add `member` to `group`.
    pub fn join(&mut self, group: GroupName, member: Member) -> Vec<Notice> {
        if matches!(self.state, State::Gather | State::GatherTrans) {
            warn!(target: "spread::groups", "join of {} to {group} during the state exchange ignored", member.name);
            return Vec::new();
        }
        let group = group.clean();
        let memb_id = if self.state == State::Op {
            self.reg_memb_id
        } else {
            self.trans_memb_id
        };
        let proc_id = self.proc_id(member.daemon_rank);
        let daemon_memb = if self.state == State::Op || self.in_trans(proc_id) {
            None
        } else {
            Some(UNKNOWN_MEMB)
        };
        let g = self
            .groups
            .entry(group)
            .or_insert_with(|| Group::new(GroupId { memb_id, index: 0 }));
        let memb_for_daemon = daemon_memb.unwrap_or(g.id.memb_id);
        if !g.insert(member, proc_id, memb_for_daemon) {
            debug!(target: "spread::groups", "{} is already in {group}", member.name);
            return Vec::new();
        }
        g.id.index += 1;
        if g.daemon(member.daemon_rank).is_some_and(|d| d.is_partitioned()) {
            g.changed = true;
        }
        self.index_add(group, member);
        let g = &self.groups[&group];
        if !self.has_local_members(g) {
            return Vec::new();
        }
        if g.changed {
            let joiner = Some(member);
            vec![
                self.network_notice(group, g, joiner),
                Notice::Transitional { group, id: g.id },
            ]
        } else {
            vec![Notice::Change(Change {
                group,
                cause: Cause::Join,
                changed: member,
                id: g.id,
                members: g.members().collect(),
            })]
        }
    }

    /// Remove `member` from `group` by leave.
    pub fn leave(&mut self, group: &GroupName, member: &GroupName) -> Vec<Notice> {
        if matches!(self.state, State::Gather | State::GatherTrans) {
            warn!(target: "spread::groups", "leave of {member} from {group} during the state exchange ignored");
            return Vec::new();
        }
        let mut notices = Vec::new();
        let Some(&(rank, _)) = self.memberships.get(member) else {
            return notices;
        };
        let m = Member {
            daemon_rank: rank,
            name: member.clean(),
        };
        if !self.groups.get(group).is_some_and(|g| g.contains(&m)) {
            return notices;
        }
        if rank == self.my_rank {
            notices.push(Notice::SelfLeave {
                group: group.clean(),
                member: m.name,
            });
        }
        notices.extend(self.remove_member(group, m, Cause::Leave));
        notices
    }

    /// Remove `member` from every group it is in, in group-name order.
    pub fn disconnect(&mut self, member: &GroupName) -> Vec<Notice> {
        if matches!(self.state, State::Gather | State::GatherTrans) {
            warn!(target: "spread::groups", "disconnect of {member} during the state exchange ignored");
            return Vec::new();
        }
        let Some((rank, groups)) = self.memberships.get(member).cloned() else {
            return Vec::new();
        };
        let m = Member {
            daemon_rank: rank,
            name: member.clean(),
        };
        groups
            .iter()
            .flat_map(|g| self.remove_member(g, m, Cause::Disconnect))
            .collect()
    }

    fn remove_member(&mut self, group: &GroupName, m: Member, cause: Cause) -> Vec<Notice> {
        let Some(g) = self.groups.get_mut(group) else {
            return Vec::new();
        };
        if !g.remove(&m) {
            return Vec::new();
        }
        let name = group.clean();
        self.index_remove(&name, &m.name);
        let g = self.groups.get_mut(group).expect("present");
        if g.is_empty() {
            self.groups.remove(group);
            return Vec::new();
        }
        g.id.index += 1;
        let g = &self.groups[group];
        if !self.has_local_members(g) {
            return Vec::new();
        }
        if g.changed {
            vec![
                self.network_notice(name, g, None),
                Notice::Transitional {
                    group: name,
                    id: g.id,
                },
            ]
        } else {
            vec![Notice::Change(Change {
                group: name,
                cause,
                changed: m,
                id: g.id,
                members: g.members().collect(),
            })]
        }
    }

    // ----- daemon membership changes -----

    /// A transitional configuration: `members` move on together from the
    /// old ring.
    pub fn transitional(&mut self, members: &[i32], memb_id: MembId) -> Vec<Notice> {
        match self.state {
            State::Op => {
                self.trans_memb = members.to_vec();
                self.trans_memb_id = memb_id;
                let mut notices = Vec::new();
                let names: Vec<GroupName> = self.groups.keys().copied().collect();
                for name in names {
                    let trans = self.trans_memb.clone();
                    let g = self.groups.get_mut(&name).expect("listed");
                    let mut cut = false;
                    for d in g.daemons.iter_mut().filter(|d| !trans.contains(&d.proc_id)) {
                        d.memb_id = UNKNOWN_MEMB;
                        cut = true;
                    }
                    if !cut {
                        continue;
                    }
                    let old = g.id;
                    g.id = GroupId { memb_id, index: 1 };
                    g.changed = true;
                    g.update_daemon_memb_ids();
                    if self.has_local_members(&self.groups[&name]) {
                        notices.push(Notice::Transitional { group: name, id: old });
                    }
                }
                self.state = State::Trans;
                let trans = &self.trans_memb;
                self.synced_set.retain(|id| trans.contains(id));
                notices
            }
            State::Gather => {
                self.trans_memb = members.to_vec();
                self.trans_memb_id = memb_id;
                let trans = self.trans_memb.clone();
                for g in self.groups.values_mut() {
                    if g.daemons.iter().any(|d| !trans.contains(&d.proc_id)) {
                        g.changed = true;
                    }
                }
                self.state = State::GatherTrans;
                Vec::new()
            }
            State::Trans | State::GatherTrans => {
                error!(target: "spread::groups", "transitional configuration in state {:?} ignored", self.state);
                Vec::new()
            }
        }
    }

    /// A regular configuration `members` (ids) with id `memb_id`.
    pub fn regular(&mut self, members: &[i32], memb_id: MembId) -> (Vec<Notice>, Exchange) {
        match self.state {
            State::Op => {
                // The ring always announces a transitional configuration
                // first; be robust if it did not.
                warn!(target: "spread::groups", "regular configuration without a transitional one");
                let survivors: Vec<i32> = self
                    .reg_memb
                    .iter()
                    .copied()
                    .filter(|id| members.contains(id))
                    .collect();
                let mut notices = self.transitional(&survivors, memb_id);
                let (more, exchange) = self.regular(members, memb_id);
                notices.extend(more);
                (notices, exchange)
            }
            State::Trans => {
                self.reg_memb = members.to_vec();
                self.reg_memb_id = memb_id;
                let names: Vec<GroupName> = self
                    .groups
                    .iter()
                    .filter(|(_, g)| g.changed)
                    .map(|(n, _)| *n)
                    .collect();
                if self.trans_memb.len() == self.reg_memb.len() {
                    // Only daemons left: no state to exchange.
                    let mut notices = Vec::new();
                    for name in names {
                        if !self.eliminate_partitioned(&name, false) {
                            continue;
                        }
                        let g = self.groups.get_mut(&name).expect("kept");
                        g.id = GroupId { memb_id, index: 1 };
                        g.changed = false;
                        g.update_daemon_memb_ids();
                        let g = &self.groups[&name];
                        if self.has_local_members(g) {
                            notices.push(self.network_notice(name, g, None));
                        }
                    }
                    self.state = State::Op;
                    info!(target: "spread::groups", "membership {memb_id:?}: daemons left, no state exchange");
                    return (notices, Exchange::None);
                }
                for name in names {
                    self.eliminate_partitioned(&name, false);
                }
                self.state = State::Gather;
                (Vec::new(), self.start_exchange())
            }
            State::GatherTrans => {
                self.reg_memb = members.to_vec();
                self.reg_memb_id = memb_id;
                if self.own_complete {
                    let gathered = std::mem::take(&mut self.gathered);
                    for g in gathered.into_iter().filter(|g| g.complete) {
                        self.apply_gathered(g);
                    }
                }
                self.gathered.clear();
                let names: Vec<GroupName> = self.groups.keys().copied().collect();
                for name in names {
                    self.eliminate_partitioned(&name, true);
                }
                let trans = self.trans_memb.clone();
                self.synced_set.retain(|id| trans.contains(id));
                self.state = State::Gather;
                (Vec::new(), self.start_exchange())
            }
            State::Gather => {
                error!(target: "spread::groups", "regular configuration while gathering ignored");
                (Vec::new(), Exchange::None)
            }
        }
    }

    /// Drop partitioned daemons (in GatherTrans: daemons outside the
    /// transitional configuration) from a group; marks it changed if any
    /// went (in GatherTrans). Returns whether the group still exists.
    fn eliminate_partitioned(&mut self, name: &GroupName, cascade: bool) -> bool {
        let trans = self.trans_memb.clone();
        let Some(g) = self.groups.get_mut(name) else {
            return false;
        };
        let gone: Vec<u32> = g
            .daemons
            .iter()
            .filter(|d| {
                if cascade {
                    !trans.contains(&d.proc_id)
                } else {
                    d.is_partitioned()
                }
            })
            .map(|d| d.rank)
            .collect();
        let mut removed = Vec::new();
        for &rank in &gone {
            removed.extend(g.remove_daemon(rank));
        }
        if cascade && !gone.is_empty() {
            g.changed = true;
        }
        let empty = g.is_empty();
        for m in removed {
            self.index_remove(name, &m);
        }
        if empty {
            self.groups.remove(name);
            return false;
        }
        true
    }

    fn i_lead_synced_set(&self) -> bool {
        self.synced_set.first() == Some(&self.proc_id(self.my_rank))
    }

    fn start_exchange(&mut self) -> Exchange {
        self.own_complete = false;
        self.covered.clear();
        let synced_set_size = self.synced_set.len() as u32;
        let bodies = if self.i_lead_synced_set() {
            self.build_groups_bodies()
        } else {
            Vec::new()
        };
        info!(target: "spread::groups", "state exchange for {:?}: sending {} GROUPS message(s)", self.reg_memb_id, bodies.len());
        Exchange::Start {
            bodies,
            synced_set_size,
        }
    }

    /// Our synced set's view of every group, cut into GROUPS bodies of at
    /// most 100000 bytes (a daemon's members never split).
    fn build_groups_bodies(&self) -> Vec<GroupsBody> {
        let mut bodies = Vec::new();
        let mut body = GroupsBody {
            memb_id: self.reg_memb_id,
            synced_set: Some(self.synced_set.clone()),
            groups: Vec::new(),
        };
        let mut used = 8 + 1 + 4 + 4 * self.synced_set.len();
        for (&name, g) in &self.groups {
            let mut daemons = g.daemons.iter().peekable();
            loop {
                if GROUP_INFO_NEEDS > GROUPS_BUF_SIZE - used {
                    bodies.push(std::mem::replace(
                        &mut body,
                        GroupsBody {
                            memb_id: self.reg_memb_id,
                            synced_set: None,
                            groups: Vec::new(),
                        },
                    ));
                    used = 9;
                }
                used += MAX_GROUP_NAME + 12 + 4;
                let mut state = GroupState {
                    name,
                    group_id: g.id,
                    changed: g.changed as u16,
                    daemons: Vec::new(),
                };
                let mut full = false;
                while let Some(d) = daemons.peek() {
                    let members = g.on(d.rank);
                    let needs = DAEMON_INFO_NEEDS + members.len() * MAX_GROUP_NAME;
                    if needs > GROUPS_BUF_SIZE - used {
                        full = true;
                        break;
                    }
                    used += 14 + members.len() * MAX_GROUP_NAME;
                    state.daemons.push(WireDaemon {
                        proc_id: d.proc_id,
                        // The original sends the group's id for every daemon.
                        memb_id: g.id.memb_id,
                        members: members.iter().map(|m| m.name).collect(),
                    });
                    daemons.next();
                }
                body.groups.push(state);
                if !full {
                    break;
                }
                used = GROUPS_BUF_SIZE; // forces a new body for the rest
            }
        }
        bodies.push(body);
        bodies
    }

    /// A GROUPS message was delivered: `sender` is the daemon's name as in
    /// the configuration, `last` whether it was its final (AGREED) one.
    pub fn groups_message(
        &mut self,
        sender_rank: Option<u32>,
        body: GroupsBody,
        synced_set_size: u32,
        last: bool,
    ) -> (Vec<Notice>, Exchange) {
        if !matches!(self.state, State::Gather | State::GatherTrans) {
            return (Vec::new(), Exchange::None);
        }
        if body.memb_id != self.reg_memb_id {
            debug!(target: "spread::groups", "GROUPS message of another membership {:?} dropped", body.memb_id);
            return (Vec::new(), Exchange::None);
        }
        let Some(rank) = sender_rank else {
            warn!(target: "spread::groups", "GROUPS message from an unknown daemon dropped");
            return (Vec::new(), Exchange::None);
        };
        let rep = self.proc_id(rank);
        let own = self.synced_set.first() == Some(&rep);
        let mut listed = None;
        if own {
            if last {
                self.own_complete = true;
                listed = Some(self.synced_set.clone());
            }
        } else {
            let entry = match self.gathered.iter_mut().position(|g| g.rep == rep) {
                Some(i) => &mut self.gathered[i],
                None => {
                    self.gathered.push(Gathered {
                        rep,
                        bodies: Vec::new(),
                        complete: false,
                    });
                    self.gathered.last_mut().expect("pushed")
                }
            };
            entry.bodies.push(body);
            if last {
                entry.complete = true;
                listed = entry.bodies.iter().find_map(|b| b.synced_set.clone());
            }
        }
        if last {
            self.count_synced_set(rep, listed.unwrap_or_default(), synced_set_size);
        }
        if !self.reg_memb.iter().all(|d| self.covered.contains(d)) {
            return (Vec::new(), Exchange::None);
        }
        let mut notices = self.compute_and_notify();
        let cascade = self.state == State::GatherTrans;
        self.state = State::Op;
        if cascade {
            let (trans, id) = (self.trans_memb.clone(), self.trans_memb_id);
            notices.extend(self.transitional(&trans, id));
        }
        (notices, Exchange::Done)
    }

    /// A synced set's state is complete: its daemons are covered. The size
    /// a peer claims in its header is checked on receipt against the set its
    /// first GROUPS message lists, and that set against the membership: a
    /// bogus size must not stall the exchange (nor a set count daemons twice
    /// or outside the ring).
    fn count_synced_set(&mut self, rep: i32, listed: Vec<i32>, claimed: u32) {
        let mut set: Vec<i32> = Vec::new();
        for id in listed.into_iter().chain([rep]) {
            if self.reg_memb.contains(&id) && !set.contains(&id) {
                set.push(id);
            } else if !self.reg_memb.contains(&id) {
                warn!(target: "spread::groups", "GROUPS message of {}: synced set names {}, not in the membership; ignored",
                    Ipv4Addr::from(rep as u32), Ipv4Addr::from(id as u32));
            }
        }
        if set.len() != claimed as usize {
            warn!(target: "spread::groups", "GROUPS message of {}: synced set of {claimed} daemons claimed, {} listed; counting the listed ones",
                Ipv4Addr::from(rep as u32), set.len());
        }
        if set.iter().any(|id| self.covered.contains(id)) {
            warn!(target: "spread::groups", "GROUPS message of {}: synced set {:?} overlaps another one",
                Ipv4Addr::from(rep as u32), set);
        }
        self.covered.extend(set);
    }

    fn apply_gathered(&mut self, gathered: Gathered) {
        let mut synced = Vec::new();
        for body in gathered.bodies {
            if let Some(set) = body.synced_set {
                synced = set;
            }
            for state in body.groups {
                let name = state.name.clean();
                let g = self
                    .groups
                    .entry(name)
                    .or_insert_with(|| Group::new(state.group_id));
                if state.changed != 0 {
                    g.changed = true;
                }
                let mut added = Vec::new();
                for d in state.daemons {
                    let Some(rank) = self
                        .daemon_ids
                        .iter()
                        .position(|&id| id == d.proc_id)
                        .map(|r| r as u32)
                    else {
                        warn!(target: "spread::groups", "GROUPS message names unknown daemon {}", d.proc_id);
                        continue;
                    };
                    if g.id.memb_id != d.memb_id {
                        g.changed = true;
                    }
                    for m in d.members {
                        let member = Member {
                            daemon_rank: rank,
                            name: m.clean(),
                        };
                        if g.insert(member, d.proc_id, d.memb_id) {
                            added.push(member);
                        }
                    }
                }
                for m in added {
                    self.index_add(name, m);
                }
            }
        }
        for id in synced {
            if !self.synced_set.contains(&id) && self.rank_of(id).is_some() {
                self.synced_set.push(id);
            }
        }
        let ids = &self.daemon_ids;
        self.synced_set.sort_by_key(|id| ids.iter().position(|x| x == id));
    }

    fn compute_and_notify(&mut self) -> Vec<Notice> {
        let gathered = std::mem::take(&mut self.gathered);
        for g in gathered {
            self.apply_gathered(g);
        }
        let mut notices = Vec::new();
        let reg = self.reg_memb_id;
        let names: Vec<GroupName> = self
            .groups
            .iter()
            .filter(|(_, g)| g.changed)
            .map(|(n, _)| *n)
            .collect();
        for name in names {
            let g = self.groups.get_mut(&name).expect("listed");
            g.id = GroupId {
                memb_id: reg,
                index: 1,
            };
            g.changed = false;
            let g = &self.groups[&name];
            if self.has_local_members(g) {
                notices.push(self.network_notice(name, g, None));
            }
            self.groups
                .get_mut(&name)
                .expect("listed")
                .update_daemon_memb_ids();
        }
        self.own_complete = false;
        self.covered.clear();
        info!(target: "spread::groups", "state exchange for {reg:?} complete: {} groups", self.groups.len());
        notices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> GroupName {
        GroupName::new(s.as_bytes()).unwrap()
    }

    fn m(rank: u32, s: &str) -> Member {
        Member {
            daemon_rank: rank,
            name: name(s),
        }
    }

    const RING: MembId = MembId {
        proc_id: 1,
        time: 1000,
    };

    fn table() -> Groups {
        Groups::new(vec![1, 2, 3], 0, RING)
    }

    fn change(n: &[Notice]) -> &Change {
        match n {
            [Notice::Change(c)] => c,
            other => panic!("expected one change, got {other:?}"),
        }
    }

    #[test]
    fn join_counts_index_and_orders_members() {
        let mut groups = table();
        let c1 = change(&groups.join(name("g"), m(0, "#little#d"))).clone();
        assert_eq!(c1.id.index, 1);
        let c2 = change(&groups.join(name("g"), m(0, "#bigend#d"))).clone();
        assert_eq!(
            c2.id,
            GroupId {
                memb_id: RING,
                index: 2
            }
        );
        assert_eq!(c2.members, vec![m(0, "#bigend#d"), m(0, "#little#d")]);
        assert!(groups.join(name("g"), m(0, "#bigend#d")).is_empty());
        let c3 = change(&groups.join(name("g"), m(1, "#aaa#e"))).clone();
        assert_eq!(c3.members.last(), Some(&m(1, "#aaa#e")));
        assert_eq!(groups.get(&name("g")).unwrap().members_on(0).count(), 2);
    }

    #[test]
    fn leave_of_non_member_is_ignored_and_empty_groups_vanish() {
        let mut groups = table();
        groups.join(name("g"), m(0, "#a#d"));
        assert!(groups.leave(&name("g"), &name("#b#d")).is_empty());
        let n = groups.leave(&name("g"), &name("#a#d"));
        assert_eq!(
            n,
            vec![Notice::SelfLeave {
                group: name("g"),
                member: name("#a#d")
            }]
        );
        assert!(groups.get(&name("g")).is_none());
        assert_eq!(change(&groups.join(name("g"), m(0, "#a#d"))).id.index, 1);
    }

    #[test]
    fn disconnect_touches_each_group_in_name_order() {
        let mut groups = table();
        for g in ["g3", "g1", "g2"] {
            groups.join(name(g), m(0, "#a#d"));
            groups.join(name(g), m(0, "#b#d"));
        }
        let notices = groups.disconnect(&name("#a#d"));
        let order: Vec<_> = notices
            .iter()
            .map(|n| change(std::slice::from_ref(n)).group.to_string())
            .collect();
        assert_eq!(order, ["g1", "g2", "g3"]);
        assert_eq!(groups.groups_of(&name("#a#d")).count(), 0);
    }

    #[test]
    fn remote_only_changes_produce_no_local_notices() {
        let mut groups = table();
        assert!(groups.join(name("g"), m(1, "#x#e")).is_empty());
        assert_eq!(groups.get(&name("g")).unwrap().len(), 1);
    }

    #[test]
    fn subtractive_change_gives_one_vs_set_of_survivors() {
        let mut groups = table();
        groups.join(name("g"), m(0, "#a#d1"));
        groups.join(name("g"), m(2, "#c#d3"));
        let t = groups.transitional(
            &[1, 2],
            MembId {
                proc_id: 1,
                time: 1001,
            },
        );
        assert_eq!(
            t,
            vec![Notice::Transitional {
                group: name("g"),
                id: GroupId {
                    memb_id: RING,
                    index: 2
                }
            }]
        );
        let (n, ex) = groups.regular(
            &[1, 2],
            MembId {
                proc_id: 1,
                time: 1002,
            },
        );
        assert_eq!(ex, Exchange::None);
        match &n[..] {
            [Notice::Network {
                id,
                members,
                vs_sets,
                mine,
                ..
            }] => {
                assert_eq!(
                    *id,
                    GroupId {
                        memb_id: MembId {
                            proc_id: 1,
                            time: 1002
                        },
                        index: 1
                    }
                );
                assert_eq!(members, &vec![m(0, "#a#d1")]);
                assert_eq!(vs_sets, &vec![vec![name("#a#d1")]]);
                assert_eq!(*mine, 0);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(groups.state(), State::Op);
    }

    #[test]
    fn merge_exchanges_state_and_reports_two_vs_sets() {
        // d1 (us) and d3 were apart, each with a member of g; they merge.
        let mut d1 = Groups::new(vec![1, 2, 3], 0, MembId { proc_id: 1, time: 10 });
        d1.join(name("g"), m(0, "#alice#d1"));
        let mut d3 = Groups::new(vec![1, 2, 3], 2, MembId { proc_id: 3, time: 11 });
        d3.join(name("g"), m(2, "#dave#d3"));
        let merged = MembId { proc_id: 1, time: 20 };
        assert!(d1.transitional(&[1], MembId { proc_id: 1, time: 19 }).is_empty());
        assert!(d3.transitional(&[3], MembId { proc_id: 3, time: 19 }).is_empty());
        let (_, ex1) = d1.regular(&[1, 3], merged);
        let (_, ex3) = d3.regular(&[1, 3], merged);
        let (
            Exchange::Start {
                bodies: b1,
                synced_set_size: s1,
            },
            Exchange::Start {
                bodies: b3,
                synced_set_size: s3,
            },
        ) = (ex1, ex3)
        else {
            panic!("both start the exchange")
        };
        assert_eq!((b1.len(), b3.len(), s1, s3), (1, 1, 1, 1));
        // Every daemon delivers both messages in the same (agreed) order.
        for table in [&mut d1, &mut d3] {
            let (n, ex) = table.groups_message(Some(0), b1[0].clone(), 1, true);
            assert!(n.is_empty() && ex == Exchange::None);
            let (n, ex) = table.groups_message(Some(2), b3[0].clone(), 1, true);
            assert_eq!(ex, Exchange::Done);
            match &n[..] {
                [Notice::Network {
                    id, members, vs_sets, ..
                }] => {
                    assert_eq!(
                        *id,
                        GroupId {
                            memb_id: merged,
                            index: 1
                        }
                    );
                    assert_eq!(members, &vec![m(0, "#alice#d1"), m(2, "#dave#d3")]);
                    assert_eq!(vs_sets, &vec![vec![name("#alice#d1")], vec![name("#dave#d3")]]);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(table.state(), State::Op);
        }
    }

    /// A peer's GROUPS message that claims a bogus synced-set size (or
    /// lists daemons outside the ring) does not stall the exchange: the
    /// size is checked on receipt against the set it lists.
    #[test]
    fn a_bogus_synced_set_size_does_not_stall_the_exchange() {
        for (claimed, listed) in [
            (7, vec![3]),
            (0, vec![3]),
            (u32::MAX, vec![3]),
            (1, vec![3, 9, 3]),
        ] {
            let mut d1 = Groups::new(vec![1, 2, 3], 0, MembId { proc_id: 1, time: 10 });
            d1.join(name("g"), m(0, "#alice#d1"));
            let merged = MembId { proc_id: 1, time: 20 };
            assert!(d1.transitional(&[1], MembId { proc_id: 1, time: 19 }).is_empty());
            let (_, ex1) = d1.regular(&[1, 3], merged);
            let Exchange::Start { bodies: b1, .. } = ex1 else {
                panic!("d1 starts the exchange")
            };
            let d3 = GroupsBody {
                memb_id: merged,
                synced_set: Some(listed.clone()),
                groups: Vec::new(),
            };
            let (_, ex) = d1.groups_message(Some(0), b1[0].clone(), 1, true);
            assert_eq!(ex, Exchange::None);
            let (_, ex) = d1.groups_message(Some(2), d3, claimed, true);
            assert_eq!(ex, Exchange::Done, "claimed {claimed}, listed {listed:?}");
            assert_eq!(d1.state(), State::Op);
        }
    }

    #[test]
    fn memb_id_order_matches_the_original() {
        let a = MembId { proc_id: 5, time: 1 };
        let b = MembId { proc_id: 7, time: 0 };
        assert_eq!(compare_memb_ids(&a, &b), std::cmp::Ordering::Less);
        assert_eq!(compare_memb_ids(&UNKNOWN_MEMB, &a), std::cmp::Ordering::Greater);
        // 32-bit wrap-around, as the C subtraction does.
        let hi = MembId {
            proc_id: 0x7fff_ffff,
            time: 0,
        };
        let lo = MembId { proc_id: -2, time: 0 };
        assert_eq!(compare_memb_ids(&hi, &lo), std::cmp::Ordering::Less);
    }
}
