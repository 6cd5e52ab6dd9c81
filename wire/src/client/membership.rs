//! Bodies of membership notices (daemon -> client).
//!
//! Regular membership (`REG_MEMB_MESS | CAUSED_BY_*`):
//! ```text
//! 0   group_id: memb_id.proc_id, memb_id.time, index   (3 x int32)
//! 12  num_vs_sets
//! 16  my_vs_set_offset   byte offset of the receiver's set, counted from byte 20
//! 20  per set: member count, then count x 32-byte names
//! ```
//! Transitional (`TRANSITION_MESS`): just the 12-byte group id.
//! All integers in the daemon's order (that of the header).

use super::header::{emit_group_names, hint_for, MessageHeader};
use super::limits::{MAX_GROUP_NAME, MESSAGE_HEADER_LEN};
use super::names::GroupName;
use super::service::{CAUSED_BY_LEAVE, REG_MEMB_MESS, TRANSITION_MESS};
use super::DecodeError;
use crate::codec::{self, run, PResult};
use crate::endian::ByteOrder;
use crate::error::ErrorKind;

/// Offset of the group id, in a regular and a transitional body.
pub const GROUP_ID_OFFSET: usize = 0;
/// Offset of the number of vs sets in a regular body.
pub const NUM_VS_SETS_OFFSET: usize = 12;
/// Offset of the word locating the receiver's vs set.
pub const MY_VS_SET_OFFSET: usize = 16;
/// Offset of the first vs set; `my_vs_set_offset` counts from here.
pub const FIRST_VS_SET_OFFSET: usize = 20;

/// A ring membership id: the leader's IP and the time the ring formed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MembId {
    pub proc_id: i32,
    pub time: i32,
}

/// A group's view id: the ring id it was created in and a change counter.
///
/// The one group-id type of the project: the daemon's group table and
/// notices, the client library's membership info and the flush layer's view
/// ids all use it. C's `group_id` is its three words, see [`GroupId::words`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId {
    pub memb_id: MembId,
    pub index: i32,
}

impl GroupId {
    pub const LEN: usize = 12;

    /// The id from C's `group_id.id[3]`: `memb_id.proc_id`, `memb_id.time`,
    /// `index`.
    pub const fn from_words(w: [i32; 3]) -> GroupId {
        GroupId {
            memb_id: MembId {
                proc_id: w[0],
                time: w[1],
            },
            index: w[2],
        }
    }

    /// The three words of C's `group_id`.
    pub const fn words(self) -> [i32; 3] {
        [self.memb_id.proc_id, self.memb_id.time, self.index]
    }

    pub fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes(order));
    }

    /// The 12 bytes in `order`.
    pub fn to_bytes(self, order: ByteOrder) -> [u8; GroupId::LEN] {
        let mut out = [0u8; GroupId::LEN];
        for (chunk, w) in out.chunks_exact_mut(4).zip(self.words()) {
            chunk.copy_from_slice(&order.u32_bytes(w as u32));
        }
        out
    }

    /// The 12 bytes in this machine's order, as the libraries send them.
    pub fn to_native(self) -> [u8; GroupId::LEN] {
        self.to_bytes(ByteOrder::NATIVE)
    }

    /// Decode 12 bytes written in `order` (cannot fail).
    pub fn from_bytes(b: [u8; GroupId::LEN], order: ByteOrder) -> GroupId {
        let w = |i: usize| order.read_u32([b[i], b[i + 1], b[i + 2], b[i + 3]]) as i32;
        GroupId::from_words([w(0), w(4), w(8)])
    }

    pub fn parse(buf: &[u8], order: ByteOrder) -> Result<GroupId, DecodeError> {
        if buf.len() < Self::LEN {
            return Err(DecodeError::truncated("group_id", 0, Self::LEN));
        }
        Ok(run(buf, 0, |i| Self::fields(i, order))?.1)
    }

    pub(crate) fn fields(i: &[u8], o: ByteOrder) -> PResult<'_, GroupId> {
        let (i, memb_id) = codec::memb_id(i, o, "group_id.memb_id")?;
        let (i, index) = codec::i32(i, o, "group_id.index")?;
        Ok((i, GroupId { memb_id, index }))
    }
}

/// The body of a regular membership notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipBody {
    pub group_id: GroupId,
    /// Sets of members that moved together (one set holding the changed
    /// member for join/leave/disconnect).
    pub vs_sets: Vec<Vec<GroupName>>,
    /// Which set is the receiver's.
    pub my_vs_set: usize,
}

impl MembershipBody {
    /// Offset of set `i`, counted from byte 20 as `my_vs_set_offset` is.
    pub fn vs_set_offset(&self, i: usize) -> usize {
        // `take`, not a slice: an index past the end must not panic.
        self.vs_sets
            .iter()
            .take(i)
            .map(|s| 4 + s.len() * MAX_GROUP_NAME)
            .sum()
    }

    pub fn encoded_len(&self) -> usize {
        FIRST_VS_SET_OFFSET + self.vs_set_offset(self.vs_sets.len())
    }

    pub fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        self.group_id.emit_into(order, out);
        order.put_u32(out, self.vs_sets.len() as u32);
        let offset = if self.vs_sets.is_empty() {
            0
        } else {
            self.vs_set_offset(self.my_vs_set)
        };
        order.put_u32(out, offset as u32);
        for set in &self.vs_sets {
            order.put_u32(out, set.len() as u32);
            for m in set {
                out.extend_from_slice(m.raw());
            }
        }
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.emit_into(order, &mut out);
        out
    }

    pub fn parse(buf: &[u8], order: ByteOrder) -> Result<MembershipBody, DecodeError> {
        let group_id = GroupId::parse(buf, order)?;
        if buf.len() < FIRST_VS_SET_OFFSET {
            return Err(DecodeError::truncated("vs_sets header", NUM_VS_SETS_OFFSET, 8));
        }
        let (_, (num_sets, vs_sets, my_vs_set)) = run(&buf[GroupId::LEN..], GroupId::LEN, |i| {
            let (i, num_sets) = codec::u32(i, order, "num_vs_sets")?;
            let (mut i, my_offset) = codec::u32(i, order, "my_vs_set_offset")?;
            let sets_start = i.len();
            let mut vs_sets = Vec::new();
            let mut my_vs_set = None;
            for _ in 0..num_sets {
                if (sets_start - i.len()) as u64 == u64::from(my_offset) {
                    my_vs_set = Some(vs_sets.len());
                }
                let (rest, set) = vs_set(i, order)?;
                vs_sets.push(set);
                i = rest;
            }
            Ok((i, (num_sets, vs_sets, my_vs_set)))
        })?;
        let my_vs_set = match (num_sets, my_vs_set) {
            (0, _) => 0,
            (_, Some(i)) => i,
            (_, None) => {
                return Err(DecodeError::bad(
                    "my_vs_set_offset",
                    MY_VS_SET_OFFSET,
                    "does not point at a vs set",
                ))
            }
        };
        Ok(MembershipBody {
            group_id,
            vs_sets,
            my_vs_set,
        })
    }
}

/// A whole membership notice as a daemon writes it to a member: the header
/// (sender = the group, mess_type 0), the names, the body. The layout lives
/// here once; the daemon sends these and test peers fake them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipNotice {
    /// `REG_MEMB_MESS | cause`: every member of the group as the names,
    /// then the regular body.
    Regular {
        /// One of `CAUSED_BY_*`.
        cause: u32,
        group: GroupName,
        members: Vec<GroupName>,
        body: MembershipBody,
    },
    /// `TRANSITION_MESS`: no names, the group's (old) id as the whole body.
    Transitional { group: GroupName, id: GroupId },
    /// What the leaver itself gets: `CAUSED_BY_LEAVE` alone, no names, no body.
    SelfLeave { group: GroupName },
}

impl MembershipNotice {
    pub fn service_type(&self) -> u32 {
        match self {
            MembershipNotice::Regular { cause, .. } => REG_MEMB_MESS | cause,
            MembershipNotice::Transitional { .. } => TRANSITION_MESS,
            MembershipNotice::SelfLeave { .. } => CAUSED_BY_LEAVE,
        }
    }

    fn names(&self) -> &[GroupName] {
        match self {
            MembershipNotice::Regular { members, .. } => members,
            _ => &[],
        }
    }

    fn body_len(&self) -> usize {
        match self {
            MembershipNotice::Regular { body, .. } => body.encoded_len(),
            MembershipNotice::Transitional { .. } => GroupId::LEN,
            MembershipNotice::SelfLeave { .. } => 0,
        }
    }

    pub fn encoded_len(&self) -> usize {
        MESSAGE_HEADER_LEN + self.names().len() * MAX_GROUP_NAME + self.body_len()
    }

    /// Encode in `order`; the counts and lengths come from the parts.
    pub fn emit_into(&self, order: ByteOrder, out: &mut Vec<u8>) {
        let group = match self {
            MembershipNotice::Regular { group, .. }
            | MembershipNotice::Transitional { group, .. }
            | MembershipNotice::SelfLeave { group } => *group,
        };
        let header = MessageHeader {
            service_type: self.service_type(),
            sender: group,
            num_groups: self.names().len() as i32,
            hint: hint_for(0, order),
            data_len: self.body_len() as i32,
        };
        header.emit_into(order, out);
        emit_group_names(self.names(), out);
        match self {
            MembershipNotice::Regular { body, .. } => body.emit_into(order, out),
            MembershipNotice::Transitional { id, .. } => id.emit_into(order, out),
            MembershipNotice::SelfLeave { .. } => {}
        }
    }

    pub fn emit(&self, order: ByteOrder) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.emit_into(order, &mut out);
        out
    }
}

/// One vs set: the member count, then the names. A truncation names the
/// whole set, so a stream reader knows how much to wait for.
fn vs_set(at: &[u8], o: ByteOrder) -> PResult<'_, Vec<GroupName>> {
    let (i, count) = codec::u32(at, o, "vs_set.count")?;
    let count = count as usize;
    match count.checked_mul(MAX_GROUP_NAME) {
        Some(needed) if needed <= i.len() => {}
        Some(needed) => {
            return codec::fail(at, "vs_set", ErrorKind::Truncated { needed: 4 + needed });
        }
        None => return codec::bad(at, "vs_set.count", "too large"),
    }
    nom::multi::count(
        |i| codec::array(i, "vs_set.member").map(|(i, raw)| (i, GroupName::from_raw(raw))),
        count,
    )(i)
}

#[cfg(test)]
mod tests {
    use super::super::header::Message;
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn join_body_of_c09() {
        let mut bytes = hex("0100007ff4e5036b02000000010000000000000001000000");
        bytes.extend_from_slice(GroupName::new(b"#bob#localhost").unwrap().raw());
        let body = MembershipBody::parse(&bytes, ByteOrder::Little).unwrap();
        assert_eq!(body.group_id.memb_id.proc_id, 0x7f00_0001);
        assert_eq!(body.group_id.index, 2);
        assert_eq!(
            body.vs_sets,
            vec![vec![GroupName::new(b"#bob#localhost").unwrap()]]
        );
        assert_eq!(body.emit(ByteOrder::Little), bytes);
    }

    #[test]
    fn notices_carry_their_counts_and_types() {
        let group = GroupName::new(b"g").unwrap();
        let id = GroupId {
            memb_id: MembId { proc_id: 1, time: 2 },
            index: 3,
        };
        let t = MembershipNotice::Transitional { group, id }.emit(ByteOrder::Big);
        let (m, order, used) = Message::parse(&t).unwrap();
        assert_eq!((order, used), (ByteOrder::Big, 48 + 12));
        assert_eq!(m.header.service_type, TRANSITION_MESS);
        assert_eq!(GroupId::parse(&m.body, order).unwrap(), id);
        let leave = MembershipNotice::SelfLeave { group }.emit(ByteOrder::Little);
        let (m, _, used) = Message::parse(&leave).unwrap();
        assert_eq!((m.header.service_type, used), (CAUSED_BY_LEAVE, 48));
        let a = GroupName::new(b"#a#d1").unwrap();
        let body = MembershipBody {
            group_id: id,
            vs_sets: vec![vec![a]],
            my_vs_set: 0,
        };
        let notice = MembershipNotice::Regular {
            cause: super::super::service::CAUSED_BY_JOIN,
            group,
            members: vec![a, group],
            body: body.clone(),
        };
        let bytes = notice.emit(ByteOrder::Little);
        assert_eq!(bytes.len(), notice.encoded_len());
        let (m, _, _) = Message::parse(&bytes).unwrap();
        assert_eq!(m.groups, vec![a, group]);
        assert_eq!(m.header.service_type, notice.service_type());
        assert_eq!(MembershipBody::parse(&m.body, ByteOrder::Little).unwrap(), body);
    }

    #[test]
    fn offset_points_at_receivers_set() {
        let a = GroupName::new(b"#alice#d1").unwrap();
        let d = GroupName::new(b"#dave#d3").unwrap();
        let body = MembershipBody {
            group_id: GroupId::default(),
            vs_sets: vec![vec![a], vec![d]],
            my_vs_set: 1,
        };
        let bytes = body.emit(ByteOrder::Big);
        assert_eq!(&bytes[16..20], &[0, 0, 0, 0x24]);
        assert_eq!(MembershipBody::parse(&bytes, ByteOrder::Big).unwrap(), body);
    }
}
