//! The GROUPS state-exchange message (daemon <-> daemon, inside data packets).
//!
//! After a membership change that adds daemons, one representative per
//! synced set sends its group state as ordinary ring messages. The message
//! header has type `GROUPS_MESS | AGREED_MESS` on the last buffer and
//! `GROUPS_MESS | RELIABLE_MESS` on earlier ones, the daemon's name as
//! sender with the synced-set size in the field's last 4 bytes, no group
//! names, a hint with only the marker. The body (no alignment):
//!
//! ```text
//! memb_id        8    the new ring id
//! flag           1    1 = first buffer of this synced set, 0 = a later one
//! if flag == 1:  uint32 synced-set size, then that many int32 daemon ids
//! per group:
//!     name           32
//!     group_id       12   memb_id 8 + index 4
//!     changed        2    uint16 0/1
//!     num_daemons    2    uint16
//!     per daemon:
//!         proc_id        4
//!         memb_id        8
//!         num_members    2    uint16
//!         members        num_members x 32
//! ```
//! Integers in the order of the message header.

use super::{put_memb_id, DecodeError};
use crate::client::limits::{MAX_GROUP_NAME, MAX_PROC_NAME};
use crate::client::service::{AGREED_MESS, GROUPS_MESS, RELIABLE_MESS};
use crate::client::{hint_for, GroupId, GroupName, MembId, MessageHeader};
use crate::codec::{self, PResult};
use crate::endian::ByteOrder;

/// What one daemon knows of a group: its local members.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DaemonMembers {
    pub proc_id: i32,
    /// The group's memb id as known at that daemon.
    pub memb_id: MembId,
    pub members: Vec<GroupName>,
}

/// One group in a GROUPS message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupState {
    pub name: GroupName,
    pub group_id: GroupId,
    /// 0 or 1 as sent (receivers treat any non-zero as changed).
    pub changed: u16,
    pub daemons: Vec<DaemonMembers>,
}

/// The body of a GROUPS message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupsBody {
    pub memb_id: MembId,
    /// Present (flag 1) in the first buffer of a synced set.
    pub synced_set: Option<Vec<i32>>,
    pub groups: Vec<GroupState>,
}

/// The flag byte and, when it is 1, the synced set.
fn synced_set(flag_at: &[u8], o: ByteOrder) -> PResult<'_, Option<Vec<i32>>> {
    let (at, flag) = codec::u8(flag_at, "groups.flag")?;
    match flag {
        1 => {
            let (i, n) = codec::u32(at, o, "groups.synced_set_size")?;
            let (i, ()) = codec::fits(i, at, n as usize, 4, "groups.synced_set_size")?;
            let (i, set) = codec::i32_vec(i, o, n as usize, "groups.synced_set")?;
            Ok((i, Some(set)))
        }
        0 => Ok((at, None)),
        _ => codec::bad(flag_at, "groups.flag", "neither 0 nor 1"),
    }
}

impl GroupState {
    fn parse(i: &[u8], o: ByteOrder) -> PResult<'_, GroupState> {
        let (i, name) = codec::array(i, "groups.group_name")?;
        let (i, memb_id) = codec::memb_id(i, o, "groups.group_id")?;
        let (i, index) = codec::i32(i, o, "groups.group_id")?;
        let (i, changed) = codec::u16(i, o, "groups.changed")?;
        let count_at = i;
        let (i, num_daemons) = codec::u16(i, o, "groups.num_daemons")?;
        let (i, ()) = codec::fits(i, count_at, num_daemons as usize, 14, "groups.num_daemons")?;
        let (i, daemons) = nom::multi::count(|i| DaemonMembers::parse(i, o), num_daemons as usize)(i)?;
        let group = GroupState {
            name: GroupName::from_raw(name),
            group_id: GroupId { memb_id, index },
            changed,
            daemons,
        };
        Ok((i, group))
    }
}

impl DaemonMembers {
    fn parse(i: &[u8], o: ByteOrder) -> PResult<'_, DaemonMembers> {
        let (i, proc_id) = codec::i32(i, o, "groups.daemon.proc_id")?;
        let (i, memb_id) = codec::memb_id(i, o, "groups.daemon.memb_id")?;
        let count_at = i;
        let (i, n) = codec::u16(i, o, "groups.daemon.num_members")?;
        let (i, ()) = codec::fits(
            i,
            count_at,
            n as usize,
            MAX_GROUP_NAME,
            "groups.daemon.num_members",
        )?;
        let (i, members) = nom::multi::count(
            |i| codec::array(i, "groups.daemon.member").map(|(i, raw)| (i, GroupName::from_raw(raw))),
            n as usize,
        )(i)?;
        let daemon = DaemonMembers {
            proc_id,
            memb_id,
            members,
        };
        Ok((i, daemon))
    }
}

impl GroupsBody {
    pub fn encoded_len(&self) -> usize {
        let set = self.synced_set.as_ref().map_or(0, |s| 4 + 4 * s.len());
        let groups: usize = self
            .groups
            .iter()
            .map(|g| {
                MAX_GROUP_NAME
                    + GroupId::LEN
                    + 4
                    + g.daemons
                        .iter()
                        .map(|d| 14 + MAX_GROUP_NAME * d.members.len())
                        .sum::<usize>()
            })
            .sum();
        9 + set + groups
    }

    /// Decode a body (the bytes after the message header) written in `order`.
    pub fn parse(buf: &[u8], order: ByteOrder) -> Result<GroupsBody, DecodeError> {
        codec::run_all(buf, 0, "groups", |i| {
            let (i, memb_id) = codec::memb_id(i, order, "groups.memb_id")?;
            let (mut i, synced_set) = synced_set(i, order)?;
            let mut groups = Vec::new();
            while !i.is_empty() {
                let (rest, group) = GroupState::parse(i, order)?;
                groups.push(group);
                i = rest;
            }
            let body = GroupsBody {
                memb_id,
                synced_set,
                groups,
            };
            Ok((i, body))
        })
    }

    pub fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        put_memb_id(order, out, self.memb_id);
        match &self.synced_set {
            Some(set) => {
                out.push(1);
                order.put_u32(out, set.len() as u32);
                for &id in set {
                    order.put_i32(out, id);
                }
            }
            None => out.push(0),
        }
        for g in &self.groups {
            out.extend_from_slice(g.name.raw());
            g.group_id.emit_into(order, out);
            order.put_u16(out, g.changed);
            order.put_u16(out, g.daemons.len() as u16);
            for d in &g.daemons {
                order.put_i32(out, d.proc_id);
                put_memb_id(order, out, d.memb_id);
                order.put_u16(out, d.members.len() as u16);
                for m in &d.members {
                    out.extend_from_slice(m.raw());
                }
            }
        }
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.emit_into(order, &mut out);
        out
    }
}

/// The sender field of a GROUPS message: the daemon name (cut to
/// `MAX_PROC_NAME - 1` bytes), NUL padded, the synced-set size in the last
/// 4 bytes.
pub fn groups_sender(daemon_name: &[u8], synced_set_size: u32, order: ByteOrder) -> GroupName {
    let len = daemon_name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(daemon_name.len())
        .min(MAX_PROC_NAME - 1);
    let mut raw = [0u8; MAX_GROUP_NAME];
    raw[..len].copy_from_slice(&daemon_name[..len]);
    raw[MAX_GROUP_NAME - 4..].copy_from_slice(&order.u32_bytes(synced_set_size));
    GroupName::from_raw(raw)
}

/// The synced-set size carried in a GROUPS sender field.
pub fn synced_set_size_of(sender: &GroupName, order: ByteOrder) -> u32 {
    let raw = sender.raw();
    order.read_u32([
        raw[MAX_GROUP_NAME - 4],
        raw[MAX_GROUP_NAME - 3],
        raw[MAX_GROUP_NAME - 2],
        raw[MAX_GROUP_NAME - 1],
    ])
}

/// The message header of one GROUPS buffer of `body_len` bytes; `last` for
/// the final (or only) buffer, which goes AGREED, earlier ones RELIABLE.
pub fn groups_message_header(
    daemon_name: &[u8],
    synced_set_size: u32,
    last: bool,
    body_len: usize,
    order: ByteOrder,
) -> MessageHeader {
    MessageHeader {
        service_type: GROUPS_MESS | if last { AGREED_MESS } else { RELIABLE_MESS },
        sender: groups_sender(daemon_name, synced_set_size, order),
        num_groups: 0,
        hint: hint_for(0, order),
        data_len: body_len as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// d01: d1's GROUPS message for synced set {d1}: header + 17-byte body.
    const GROUPS_D1: &str = "9000088064310000000000000000000000000000000000000000000000000000010000000000000080000080110000000100630affe6036b01010000000100630a";

    #[test]
    fn groups_message_of_d01() {
        let bytes = hex(GROUPS_D1);
        let (h, order) = MessageHeader::parse(&bytes).unwrap();
        assert_eq!(h.service_type, GROUPS_MESS | AGREED_MESS);
        assert_eq!(h.sender.as_bytes(), b"d1");
        assert_eq!(synced_set_size_of(&h.sender, order), 1);
        assert_eq!(groups_message_header(b"d1", 1, true, 17, order), h);
        let body = GroupsBody::parse(&bytes[48..], order).unwrap();
        assert_eq!(
            body.memb_id,
            MembId {
                proc_id: 0x0a63_0001,
                time: 1_795_417_855
            }
        );
        assert_eq!(body.synced_set, Some(vec![0x0a63_0001]));
        assert!(body.groups.is_empty());
        assert_eq!(body.emit(order), &bytes[48..]);
        assert_eq!(body.encoded_len(), 17);
    }

    #[test]
    fn groups_round_trip_and_checks() {
        let body = GroupsBody {
            memb_id: MembId { proc_id: 1, time: 2 },
            synced_set: None,
            groups: vec![GroupState {
                name: GroupName::new(b"g").unwrap(),
                group_id: GroupId {
                    memb_id: MembId { proc_id: 1, time: 2 },
                    index: 3,
                },
                changed: 1,
                daemons: vec![DaemonMembers {
                    proc_id: 1,
                    memb_id: MembId { proc_id: 1, time: 2 },
                    members: vec![
                        GroupName::new(b"#a#d1").unwrap(),
                        GroupName::new(b"#b#d1").unwrap(),
                    ],
                }],
            }],
        };
        for order in [ByteOrder::Little, ByteOrder::Big] {
            let bytes = body.emit(order);
            assert_eq!(bytes.len(), body.encoded_len());
            assert_eq!(GroupsBody::parse(&bytes, order).unwrap(), body);
            for cut in 0..bytes.len() {
                // Every proper prefix that ends inside a group fails cleanly.
                if cut >= 9 {
                    let r = GroupsBody::parse(&bytes[..cut], order);
                    assert!(cut == 9 || r.is_err(), "cut {cut}");
                }
            }
        }
        let mut bad = body.emit(ByteOrder::Little);
        bad[8] = 2;
        assert!(GroupsBody::parse(&bad, ByteOrder::Little).is_err());
    }
}
