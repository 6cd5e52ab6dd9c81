//! Delivery and notices: ordered client messages applied to the groups
//! (joins, leaves, disconnects) or handed to their receivers, and the
//! membership notices local members get.

use std::net::Ipv4Addr;
use std::sync::Arc;

use log::{debug, warn};
use spread_wire::client::limits::MESSAGE_HEADER_LEN;
use spread_wire::client::service::*;
use spread_wire::client::{GroupId, GroupName, MembershipBody, MembershipNotice, MessageHeader};
use spread_wire::endian::ByteOrder;

use crate::groups::{Cause, Change, Member, Notice};
use crate::session::{validate_ring_header, Bytes, ClientMessage, ConnId};

use super::sessions::queue_on;
use super::Engine;

impl Engine {
    /// A client message another daemon (or this one) put on the ring,
    /// checked as strictly as one from a local client; a bad one is logged,
    /// counted and dropped, and the daemon carries on.
    pub(super) fn message_from_ring(&mut self, bytes: Vec<u8>, from: u32) -> Option<ClientMessage> {
        let daemon = self
            .cfg
            .daemon_ids
            .iter()
            .position(|&id| id as u32 == from)
            .and_then(|i| self.cfg.daemon_names.get(i));
        let result = match daemon {
            Some(name) => decode_ring_message(bytes, name),
            None => Err("not a configured daemon".to_string()),
        };
        match result {
            Ok(msg) => Some(msg),
            Err(why) => {
                self.dropped_ring_messages += 1;
                warn!(target: "spread::ring", "dropped a client message from daemon {}: {why} ({} dropped in all)",
                    Ipv4Addr::from(from), self.dropped_ring_messages);
                None
            }
        }
    }

    pub(super) fn deliver(&mut self, msg: ClientMessage) {
        let t = msg.header.service_type;
        if t & (JOIN_MESS | LEAVE_MESS | KILL_MESS) == 0 {
            return self.deliver_data(msg);
        }
        let sender = msg.header.sender.clean();
        if t & (JOIN_MESS | LEAVE_MESS) != 0 {
            // Both ways in (a local client, the ring) refuse a join or leave
            // without a group; should one slip through, it changes nothing.
            let Some(group) = msg.first_group().map(|g| g.clean()) else {
                warn!(target: "spread::groups", "{sender}: join/leave without a group ignored");
                return;
            };
            let notices = if t & JOIN_MESS != 0 {
                let member = Member {
                    daemon_rank: self.daemon_rank_of(&sender),
                    name: sender,
                };
                self.groups.join(group, member)
            } else {
                self.groups.leave(&group, &sender)
            };
            self.render(notices);
        } else {
            let notices = self.groups.disconnect(&sender);
            self.render(notices);
        }
    }

    /// Hand notices of the group layer to the local members concerned.
    pub(super) fn render(&mut self, notices: Vec<Notice>) {
        for notice in notices {
            match notice {
                Notice::Change(change) => self.notify(&change),
                Notice::SelfLeave { group, member } => {
                    if let Some(conn) = self
                        .session_of(&member)
                        .filter(|c| self.sessions[c].wants_membership)
                    {
                        self.queue_to(
                            conn,
                            Arc::new(MembershipNotice::SelfLeave { group }.emit(ByteOrder::NATIVE)),
                        );
                    }
                }
                Notice::Transitional { group, id } => {
                    let rank = self.cfg.daemon_rank;
                    let local: Vec<ConnId> = match self.groups.get(&group) {
                        Some(g) => g
                            .members_on(rank)
                            .filter_map(|m| self.session_of(&m.name))
                            .filter(|c| self.sessions[c].wants_membership)
                            .collect(),
                        None => Vec::new(),
                    };
                    let bytes =
                        Arc::new(MembershipNotice::Transitional { group, id }.emit(ByteOrder::NATIVE));
                    for conn in local {
                        self.queue_to(conn, bytes.clone());
                    }
                }
                Notice::Network {
                    group,
                    id,
                    members,
                    vs_sets,
                    mine,
                    joiner,
                } => {
                    debug!(target: "spread::groups", "group {group}: network view {} members in {} vs-sets (id index {})",
                        members.len(), vs_sets.len(), id.index);
                    let rank = self.cfg.daemon_rank;
                    let local: Vec<(ConnId, GroupName)> = members
                        .iter()
                        .filter(|m| m.daemon_rank == rank)
                        .filter_map(|m| self.session_of(&m.name).map(|c| (c, m.name)))
                        .filter(|(c, _)| self.sessions[c].wants_membership)
                        .collect();
                    let standard = network_notice(&group, id, &members, &vs_sets, mine);
                    let local_joiner = joiner.filter(|j| j.daemon_rank == rank).map(|j| j.name);
                    for (conn, name) in local {
                        if Some(name) == local_joiner {
                            let own = network_notice(&group, id, &members, &vs_sets, vs_sets.len() - 1);
                            self.queue_to(conn, own);
                        } else {
                            self.queue_to(conn, standard.clone());
                        }
                    }
                }
            }
        }
    }

    /// The configuration rank of a member's daemon (members of unknown
    /// daemons sort last).
    pub(super) fn daemon_rank_of(&self, member: &GroupName) -> u32 {
        let Some((_, daemon)) = member.private_parts() else {
            return u32::MAX;
        };
        if daemon == self.cfg.daemon_name.as_slice() {
            return self.cfg.daemon_rank;
        }
        self.cfg
            .daemon_names
            .iter()
            .position(|n| n.as_slice() == daemon)
            .map_or(u32::MAX, |i| i as u32)
    }

    pub(super) fn session_of(&self, member: &GroupName) -> Option<ConnId> {
        self.by_private
            .get(member)
            .copied()
            .filter(|c| self.sessions.get(c).is_some_and(|s| s.is_operational()))
    }

    pub(super) fn deliver_data(&mut self, msg: ClientMessage) {
        self.delivery_stamp += 1;
        let stamp = self.delivery_stamp;
        let discard = (msg.header.service_type & SELF_DISCARD != 0).then(|| msg.header.sender.clean());
        let mut receivers = std::mem::take(&mut self.receivers);
        receivers.clear();
        let rank = self.cfg.daemon_rank;
        // Connections by name only: whether each session is operational is
        // checked once below, where it is looked up to queue the bytes.
        for dest in msg.groups() {
            if dest.is_private() {
                receivers.extend(self.by_private.get(&dest).copied());
            } else if let Some(group) = self.groups.get(&dest) {
                receivers.extend(
                    group
                        .members_on(rank)
                        .filter_map(|m| self.by_private.get(&m.name).copied()),
                );
            }
        }
        let limits = self.queue_limits();
        for &conn in &receivers {
            let Some(session) = self.sessions.get_mut(&conn) else {
                continue;
            };
            if !session.is_operational()
                || session.last_delivery == stamp
                || discard == Some(session.private_group)
            {
                continue;
            }
            session.last_delivery = stamp;
            queue_on(session, msg.bytes.clone(), limits, &mut self.outputs);
        }
        self.receivers = receivers;
        self.pool.recycle(msg.bytes);
    }

    /// Membership notices of one group change to its local members.
    pub(super) fn notify(&mut self, change: &Change) {
        let cause = match change.cause {
            Cause::Join => CAUSED_BY_JOIN,
            Cause::Leave => CAUSED_BY_LEAVE,
            Cause::Disconnect => CAUSED_BY_DISCONNECT,
        };
        debug!(target: "spread::groups", "{} {} group {} ({} members, id index {})", change.changed.name,
            match change.cause { Cause::Join => "joined", Cause::Leave => "left", Cause::Disconnect => "disconnected from" },
            change.group, change.members.len(), change.id.index);
        if change.members.is_empty() {
            return;
        }
        let notice = membership_notice(change, cause);
        let rank = self.cfg.daemon_rank;
        let local: Vec<ConnId> = change
            .members
            .iter()
            .filter(|m| m.daemon_rank == rank)
            .filter_map(|m| self.session_of(&m.name))
            .filter(|c| self.sessions[c].wants_membership)
            .collect();
        for conn in local {
            self.queue_to(conn, notice.clone());
        }
    }
}

pub(super) fn ids(members: &[u32]) -> String {
    members
        .iter()
        .map(|m| Ipv4Addr::from(*m).to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A message the ring delivered, its header converted to our byte order
/// (the hint stays as its writer wrote it), or why it is refused.
pub(super) fn decode_ring_message(mut bytes: Vec<u8>, daemon_name: &[u8]) -> Result<ClientMessage, String> {
    let (header, order) = MessageHeader::parse(&bytes).map_err(|e| e.to_string())?;
    validate_ring_header(&header, daemon_name).map_err(|e| e.to_string())?;
    // Validated: both counts are small and non-negative.
    let expected = MESSAGE_HEADER_LEN + 32 * header.num_groups as usize + header.data_len as usize;
    if bytes.len() != expected {
        return Err(format!("{} bytes, the header says {expected}", bytes.len()));
    }
    if order != ByteOrder::NATIVE {
        bytes[..MESSAGE_HEADER_LEN].copy_from_slice(&header.emit(ByteOrder::NATIVE));
    }
    Ok(ClientMessage {
        header,
        bytes: Arc::new(bytes),
    })
}

/// A join, leave or disconnect notice: all members as the names, one vs
/// set holding only the member that changed.
fn membership_notice(change: &Change, cause: u32) -> Bytes {
    let notice = MembershipNotice::Regular {
        cause,
        group: change.group,
        members: change.members.iter().map(|m| m.name).collect(),
        body: MembershipBody {
            group_id: change.id,
            vs_sets: vec![vec![change.changed.name]],
            my_vs_set: 0,
        },
    };
    Arc::new(notice.emit(ByteOrder::NATIVE))
}

/// A view after a daemon membership change: all members as the names, the
/// vs-sets, and the receiver's set.
fn network_notice(
    group: &GroupName,
    id: GroupId,
    members: &[Member],
    vs_sets: &[Vec<GroupName>],
    mine: usize,
) -> Bytes {
    let notice = MembershipNotice::Regular {
        cause: CAUSED_BY_NETWORK,
        group: *group,
        members: members.iter().map(|m| m.name).collect(),
        body: MembershipBody {
            group_id: id,
            vs_sets: vs_sets.to_vec(),
            my_vs_set: mine,
        },
    };
    Arc::new(notice.emit(ByteOrder::NATIVE))
}
