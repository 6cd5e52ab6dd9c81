//! Process groups: who is in which group, and the group ids of their views.
//!
//! Joins, leaves and disconnects are applied here in the order the protocol
//! layer delivers them, so every daemon holds the same table. Members are
//! kept in the order membership notices list them: by their daemon's place
//! in the configuration, then by private group name. Every lookup is a
//! B-tree search (O(log n)); a notice necessarily lists all members.

use std::collections::{BTreeMap, BTreeSet};

use spread_wire::client::{GroupId, GroupName, MembId};

/// Local members a group may have, as bounded by the original's group-state
/// buffer: (100000 - 9 - 48 - 14) / 32.
pub const MAX_LOCAL_GROUP_MEMBERS: usize = (100_000 - 9 - 48 - 14) / 32;

/// A member of a group: its daemon's rank in the configuration and its
/// private group name. The derived order is the order of notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    pub daemon_rank: u32,
    pub name: GroupName,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub name: GroupName,
    pub id: GroupId,
    members: BTreeSet<Member>,
}

impl Group {
    pub fn members(&self) -> impl ExactSizeIterator<Item = &Member> + '_ {
        self.members.iter()
    }

    /// Members on one daemon (a contiguous range of the member order).
    pub fn members_on(&self, daemon_rank: u32) -> impl Iterator<Item = &Member> + '_ {
        let from = Member {
            daemon_rank,
            name: GroupName::EMPTY,
        };
        self.members
            .range(from..)
            .take_while(move |m| m.daemon_rank == daemon_rank)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn member_names(&self) -> Vec<GroupName> {
        self.members.iter().map(|m| m.name).collect()
    }
}

/// Why a group's membership changed.
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

#[derive(Default)]
pub struct Groups {
    groups: BTreeMap<GroupName, Group>,
    /// Each member's daemon rank and groups, so a disconnect touches only
    /// those and a removal is a direct B-tree search.
    memberships: BTreeMap<GroupName, (u32, BTreeSet<GroupName>)>,
}

impl Groups {
    pub fn new() -> Groups {
        Groups::default()
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

    pub fn iter(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// Groups `member` belongs to, in name order.
    pub fn groups_of(&self, member: &GroupName) -> impl Iterator<Item = &GroupName> {
        self.memberships
            .get(member)
            .into_iter()
            .flat_map(|(_, groups)| groups.iter())
    }

    /// Add `member` to `group`; a new group starts its ids in ring `memb_id`.
    /// `None` if it already is a member (the original ignores that).
    pub fn join(&mut self, group: GroupName, member: Member, memb_id: MembId) -> Option<Change> {
        let group = group.clean();
        let entry = self.groups.entry(group).or_insert_with(|| Group {
            name: group,
            id: GroupId { memb_id, index: 0 },
            members: BTreeSet::new(),
        });
        if !entry.members.insert(member) {
            return None;
        }
        entry.id.index += 1;
        self.memberships
            .entry(member.name)
            .or_insert_with(|| (member.daemon_rank, BTreeSet::new()))
            .1
            .insert(group);
        Some(Change {
            group,
            cause: Cause::Join,
            changed: member,
            id: entry.id,
            members: entry.members.iter().copied().collect(),
        })
    }

    /// Remove `member` from `group` by leave; `None` if it was not a member.
    pub fn leave(&mut self, group: &GroupName, member: &GroupName) -> Option<Change> {
        self.remove(group, member, Cause::Leave)
    }

    /// Remove `member` from every group it is in, in group-name order.
    pub fn disconnect(&mut self, member: &GroupName) -> Vec<Change> {
        let groups: Vec<GroupName> = self.groups_of(member).copied().collect();
        groups
            .iter()
            .filter_map(|g| self.remove(g, member, Cause::Disconnect))
            .collect()
    }

    fn remove(&mut self, group: &GroupName, member_name: &GroupName, cause: Cause) -> Option<Change> {
        let (daemon_rank, _) = self.memberships.get(member_name)?;
        let member = Member {
            daemon_rank: *daemon_rank,
            name: member_name.clean(),
        };
        let g = self.groups.get_mut(group)?;
        if !g.members.remove(&member) {
            return None;
        }
        g.id.index += 1;
        let change = Change {
            group: g.name,
            cause,
            changed: member,
            id: g.id,
            members: g.members.iter().copied().collect(),
        };
        if g.members.is_empty() {
            self.groups.remove(group);
        }
        if let Some((_, set)) = self.memberships.get_mut(member_name) {
            set.remove(group);
            if set.is_empty() {
                self.memberships.remove(member_name);
            }
        }
        Some(change)
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
        proc_id: 0x7f00_0001,
        time: 1000,
    };

    #[test]
    fn join_counts_index_and_orders_members() {
        let mut groups = Groups::new();
        let c1 = groups.join(name("g"), m(0, "#little#d"), RING).unwrap();
        assert_eq!(c1.id.index, 1);
        let c2 = groups.join(name("g"), m(0, "#bigend#d"), RING).unwrap();
        assert_eq!(
            c2.id,
            GroupId {
                memb_id: RING,
                index: 2
            }
        );
        assert_eq!(c2.members, vec![m(0, "#bigend#d"), m(0, "#little#d")]);
        assert!(groups.join(name("g"), m(0, "#bigend#d"), RING).is_none());
        let c3 = groups.join(name("g"), m(1, "#aaa#e"), RING).unwrap();
        assert_eq!(c3.members.last(), Some(&m(1, "#aaa#e")));
        assert_eq!(groups.get(&name("g")).unwrap().members_on(0).count(), 2);
    }

    #[test]
    fn leave_of_non_member_is_ignored_and_empty_groups_vanish() {
        let mut groups = Groups::new();
        groups.join(name("g"), m(0, "#a#d"), RING);
        assert!(groups.leave(&name("g"), &name("#b#d")).is_none());
        let c = groups.leave(&name("g"), &name("#a#d")).unwrap();
        assert!(c.members.is_empty());
        assert!(groups.get(&name("g")).is_none());
        // A group created again starts over at index 1.
        assert_eq!(groups.join(name("g"), m(0, "#a#d"), RING).unwrap().id.index, 1);
    }

    #[test]
    fn disconnect_touches_each_group_in_name_order() {
        let mut groups = Groups::new();
        for g in ["g3", "g1", "g2"] {
            groups.join(name(g), m(0, "#a#d"), RING);
            groups.join(name(g), m(0, "#b#d"), RING);
        }
        let changes = groups.disconnect(&name("#a#d"));
        let order: Vec<_> = changes.iter().map(|c| c.group.to_string()).collect();
        assert_eq!(order, ["g1", "g2", "g3"]);
        assert!(changes
            .iter()
            .all(|c| c.cause == Cause::Disconnect && c.id.index == 3));
        assert_eq!(groups.groups_of(&name("#a#d")).count(), 0);
    }
}
