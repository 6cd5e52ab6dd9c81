//! Reading membership bodies in place, contiguous or scattered (the
//! program's buffers), by the layout of `spread_wire::client::membership`.
//! Words are in host order once received.

use spread_wire::client::limits::MAX_GROUP_NAME;
use spread_wire::client::service::{
    CAUSED_BY_DISCONNECT, CAUSED_BY_JOIN, CAUSED_BY_LEAVE, CAUSED_BY_NETWORK, MEMBERSHIP_MESS, REG_MEMB_MESS,
};

use spread_wire::client::GroupId;
use spread_wire::endian::ByteOrder;

use crate::error::SpError;

// The layout's offsets are the codec's own.
pub use spread_wire::client::membership::{
    FIRST_VS_SET_OFFSET, GROUP_ID_OFFSET as GID_OFFSET, MY_VS_SET_OFFSET, NUM_VS_SETS_OFFSET,
};

/// Bytes of a message body, wherever they are.
pub trait BodyBytes {
    /// Copy `out.len()` bytes starting at `offset`.
    fn read(&self, offset: usize, out: &mut [u8]);

    fn word(&self, offset: usize) -> u32 {
        let mut w = [0u8; 4];
        self.read(offset, &mut w);
        u32::from_ne_bytes(w)
    }
}

/// A body split over the pieces of a scatter.
pub struct Pieces<'a>(pub &'a [&'a [u8]]);

impl BodyBytes for Pieces<'_> {
    fn read(&self, mut offset: usize, out: &mut [u8]) {
        let mut done = 0;
        for piece in self.0 {
            if done == out.len() {
                break;
            }
            if offset >= piece.len() {
                offset -= piece.len();
                continue;
            }
            let n = (piece.len() - offset).min(out.len() - done);
            out[done..done + n].copy_from_slice(&piece[offset..offset + n]);
            done += n;
            offset = 0;
        }
        // Beyond the pieces reads as zeros.
        out[done..].fill(0);
    }
}

/// `membership_info` in Rust terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MembInfo {
    pub gid: GroupId,
    /// `None`: leave the program's field as it was.
    pub changed_member: Option<[u8; MAX_GROUP_NAME]>,
    pub num_vs_sets: u32,
    pub my_vs_set: VsSet,
}

/// `vs_set_info` in Rust terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VsSet {
    pub num_members: u32,
    /// From the start of the body.
    pub members_offset: u32,
}

pub fn is_membership(service_type: u32) -> bool {
    // Inside the library a reject bit does not matter (unlike the sp.h macro).
    service_type & MEMBERSHIP_MESS != 0
}

/// What `SP_get_memb_info` reports.
pub fn memb_info(body: &dyn BodyBytes, service_type: u32) -> Result<MembInfo, SpError> {
    if !is_membership(service_type) {
        return Err(SpError::IllegalMessage);
    }
    let mut raw = [0u8; GroupId::LEN];
    body.read(GID_OFFSET, &mut raw);
    let gid = GroupId::from_bytes(raw, ByteOrder::NATIVE);
    if service_type & REG_MEMB_MESS == 0 {
        // Transitional: only the group id.
        return Ok(MembInfo {
            gid,
            changed_member: None,
            num_vs_sets: 0,
            my_vs_set: VsSet::default(),
        });
    }
    let changed_member = if service_type & (CAUSED_BY_JOIN | CAUSED_BY_LEAVE | CAUSED_BY_DISCONNECT) != 0 {
        let mut name = [0u8; MAX_GROUP_NAME];
        body.read(FIRST_VS_SET_OFFSET + 4, &mut name);
        Some(name)
    } else if service_type & CAUSED_BY_NETWORK != 0 {
        Some([0u8; MAX_GROUP_NAME])
    } else {
        None
    };
    let mine = FIRST_VS_SET_OFFSET + body.word(MY_VS_SET_OFFSET) as usize;
    Ok(MembInfo {
        gid,
        changed_member,
        num_vs_sets: body.word(NUM_VS_SETS_OFFSET),
        my_vs_set: VsSet {
            num_members: body.word(mine),
            members_offset: (mine + 4) as u32,
        },
    })
}

/// What `SP_get_vs_sets_info` reports: the sets and the index of the
/// receiver's set (`None` if no set starts at the announced offset).
pub fn vs_sets(body: &dyn BodyBytes, room: i32) -> Result<(Vec<VsSet>, Option<u32>), SpError> {
    let count = body.word(NUM_VS_SETS_OFFSET);
    if i64::from(room) < i64::from(count) {
        return Err(SpError::BufferTooShort);
    }
    let mine = FIRST_VS_SET_OFFSET as u64 + u64::from(body.word(MY_VS_SET_OFFSET));
    let mut sets = Vec::with_capacity(count as usize);
    let mut my_index = None;
    let mut at = FIRST_VS_SET_OFFSET as u64;
    for i in 0..count {
        if at == mine {
            my_index = Some(i);
        }
        let num_members = body.word(at as usize);
        sets.push(VsSet {
            num_members,
            members_offset: (at + 4) as u32,
        });
        at += 4 + u64::from(num_members) * MAX_GROUP_NAME as u64;
    }
    Ok((sets, my_index))
}

/// Bytes of the body that `SP_get_vs_set_members` copies out.
pub fn vs_set_members_len(set: &VsSet, room: i32) -> Result<usize, SpError> {
    if i64::from(room) < i64::from(set.num_members) {
        return Err(SpError::BufferTooShort);
    }
    Ok(set.num_members as usize * MAX_GROUP_NAME)
}

/// Turn the words of a membership body written in the other byte order into
/// host order, in the program's buffers (only the `len` bytes received).
pub fn flip_membership_body(body: &mut [&mut [u8]], len: usize) {
    let mut view = PiecesMut { pieces: body, len };
    for off in [0, 4, 8, NUM_VS_SETS_OFFSET, MY_VS_SET_OFFSET] {
        view.swap_word(off);
    }
    let sets = view.word(NUM_VS_SETS_OFFSET);
    let mut at = FIRST_VS_SET_OFFSET;
    for _ in 0..sets {
        if at + 4 > len {
            break;
        }
        view.swap_word(at);
        at += 4 + view.word(at) as usize * MAX_GROUP_NAME;
    }
}

struct PiecesMut<'a, 'b> {
    pieces: &'a mut [&'b mut [u8]],
    len: usize,
}

impl PiecesMut<'_, '_> {
    fn locate(&self, offset: usize) -> Option<(usize, usize)> {
        let mut off = offset;
        for (i, p) in self.pieces.iter().enumerate() {
            if off < p.len() {
                return Some((i, off));
            }
            off -= p.len();
        }
        None
    }

    fn byte(&self, offset: usize) -> u8 {
        match self.locate(offset) {
            Some((i, o)) if offset < self.len => self.pieces[i][o],
            _ => 0,
        }
    }

    fn set_byte(&mut self, offset: usize, v: u8) {
        if offset < self.len {
            if let Some((i, o)) = self.locate(offset) {
                self.pieces[i][o] = v;
            }
        }
    }

    fn word(&self, offset: usize) -> u32 {
        u32::from_ne_bytes([0, 1, 2, 3].map(|k| self.byte(offset + k)))
    }

    fn swap_word(&mut self, offset: usize) {
        let b = [0, 1, 2, 3].map(|k| self.byte(offset + k));
        for k in 0..4 {
            self.set_byte(offset + k, b[3 - k]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spread_wire::client::{GroupName, MembershipBody};

    fn body(order: ByteOrder) -> Vec<u8> {
        let a = GroupName::new(b"#alice#d1").unwrap();
        let b = GroupName::new(b"#bob#d1").unwrap();
        let d = GroupName::new(b"#dave#d3").unwrap();
        MembershipBody {
            group_id: spread_wire::client::GroupId {
                memb_id: spread_wire::client::MembId {
                    proc_id: 0x7f00_0001,
                    time: 1234,
                },
                index: 7,
            },
            vs_sets: vec![vec![a, b], vec![d]],
            my_vs_set: 1,
        }
        .emit(order)
    }

    #[test]
    fn reads_sets_across_pieces() {
        let bytes = body(ByteOrder::NATIVE);
        let (x, rest) = bytes.split_at(7);
        let (y, z) = rest.split_at(50);
        let pieces = [x, y, z];
        let b = Pieces(&pieces);
        let info = memb_info(&b, REG_MEMB_MESS | CAUSED_BY_NETWORK).unwrap();
        assert_eq!(info.gid.words(), [0x7f00_0001, 1234, 7]);
        assert_eq!(info.num_vs_sets, 2);
        assert_eq!(info.changed_member, Some([0; 32]));
        assert_eq!(
            info.my_vs_set,
            VsSet {
                num_members: 1,
                members_offset: 20 + 4 + 64 + 4
            }
        );
        let (sets, mine) = vs_sets(&b, 2).unwrap();
        assert_eq!(mine, Some(1));
        assert_eq!(
            sets[0],
            VsSet {
                num_members: 2,
                members_offset: 24
            }
        );
        assert_eq!(vs_sets(&b, 1), Err(SpError::BufferTooShort));
        let mut name = [0u8; 32];
        b.read(sets[0].members_offset as usize + 32, &mut name);
        assert_eq!(GroupName::from_raw(name).as_bytes(), b"#bob#d1");
        assert_eq!(memb_info(&b, 0x10), Err(SpError::IllegalMessage));
    }

    #[test]
    fn flips_foreign_order_in_place() {
        let other = match ByteOrder::NATIVE {
            ByteOrder::Little => ByteOrder::Big,
            ByteOrder::Big => ByteOrder::Little,
        };
        let mut foreign = body(other);
        let native = body(ByteOrder::NATIVE);
        let len = foreign.len();
        let (x, y) = foreign.split_at_mut(30);
        let mut pieces = [x, y];
        flip_membership_body(&mut pieces, len);
        assert_eq!(foreign, native);
    }
}
