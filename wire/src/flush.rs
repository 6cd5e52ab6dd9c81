//! What the Flush layer (libspread's `FL_*`) adds to ordinary Spread messages.
//!
//! The flush layer talks to its peers with ordinary messages of the group:
//!
//! * a *flush ok* (a member agrees to install a view): FIFO, mess_type
//!   [`FLUSH_OK_MESS`], body = the 12-byte group id of the daemon view it agrees to;
//! * a *flush received* (a member installed a view): FIFO, mess_type
//!   [`FLUSH_RECV_MESS`], body = the 12-byte group id of the installed view;
//! * a *vulnerable* data message (FIFO or weaker, sent while the sender's view
//!   may not be installed everywhere yet): mess_type [`VULNERABLE_MESS`], the
//!   body followed by the program's mess_type (2 bytes) and the sender's view id;
//! * a *subgroupcast*: service bit [`SUBGROUP_CAST`], sent to the receivers'
//!   private groups, the body followed by the 32-byte name of the group.
//!
//! Words are in the sender's byte order; the receiver swaps them when the
//! message says the orders differ. A subgroupcast's group name comes last,
//! after the vulnerable trailer if there is one.

use crate::client::limits::MAX_GROUP_NAME;
use crate::client::{GroupId, GroupName};
use crate::endian::ByteOrder;

/// The writer's order: ours, or the other one when `swapped`.
fn writer_order(swapped: bool) -> ByteOrder {
    match (swapped, ByteOrder::NATIVE) {
        (false, o) => o,
        (true, ByteOrder::Little) => ByteOrder::Big,
        (true, ByteOrder::Big) => ByteOrder::Little,
    }
}

/// Service bits of the flush layer (`fl.h`).
pub const DONT_BLOCK: u32 = 0x1000_0000;
pub const FLUSH_REQ_MESS: u32 = 0x2000_0000;
pub const SUBGROUP_CAST: u32 = 0x4000_0000;

/// Reserved message types; programs may use `FL_MIN_LEGAL_MESS_TYPE` and up.
pub const FLUSH_OK_MESS: i16 = -32768;
pub const FLUSH_RECV_MESS: i16 = -32767;
pub const VULNERABLE_MESS: i16 = -32766;
pub const FL_MIN_LEGAL_MESS_TYPE: i16 = -32765;

/// Size of a group id on the wire.
pub const GID_LEN: usize = GroupId::LEN;

/// The group id (12 bytes) as a message from a host of the same
/// (`swapped == false`) or the other byte order wrote it.
pub fn gid_from_bytes(b: [u8; GID_LEN], swapped: bool) -> GroupId {
    GroupId::from_bytes(b, writer_order(swapped))
}

/// Where a flush view's set count starts (`FL_get_num_vs_offset_memb_mess`).
pub const VIEW_NUM_VS_OFFSET: usize = GID_LEN;
/// Where its set's names start (`FL_get_vs_set_offset_memb_mess`).
pub const VIEW_VS_SET_OFFSET: usize = GID_LEN + 4;

/// The body of a membership message the flush layer delivers to its program
/// when it installs a view: the view's group id, then one set of members (an
/// int32 count and the names), in this host's order. Unlike the daemon's
/// regular membership body there is one set and no set index.
pub fn view_body(gid: GroupId, vs_set: &[GroupName]) -> Vec<u8> {
    let mut body = Vec::with_capacity(VIEW_VS_SET_OFFSET + vs_set.len() * MAX_GROUP_NAME);
    body.extend_from_slice(&gid.to_native());
    ByteOrder::NATIVE.put_u32(&mut body, vs_set.len() as u32);
    for n in vs_set {
        body.extend_from_slice(n.raw());
    }
    body
}

/// What a received regular message is, once the flush layer looked at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    FlushOk(GroupId),
    FlushRecv(GroupId),
    /// A program's message; `vulnerable` names the view it was sent in when
    /// it was sent as a vulnerable message.
    Data {
        mess_type: i16,
        vulnerable: Option<GroupId>,
    },
}

/// A received regular message, with the flush trailers taken off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub kind: Decoded,
    /// The group the message is for: the first destination, or for a
    /// subgroupcast the group named in its trailer.
    pub group: GroupName,
    /// The destinations as the program is shown them: for a subgroupcast,
    /// the receivers then the group.
    pub groups: Vec<GroupName>,
    /// Length of the program's body (a prefix of the received body).
    pub body_len: usize,
}

/// Why a received message cannot be a flush-layer message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrailerError {
    /// The body is shorter than the trailers its type announces.
    Short { needed: usize, got: usize },
    /// No destination at all.
    NoGroup,
}

impl std::fmt::Display for TrailerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrailerError::Short { needed, got } => {
                write!(f, "flush trailer needs {needed} bytes, message has {got}")
            }
            TrailerError::NoGroup => f.write_str("message without destination"),
        }
    }
}

impl std::error::Error for TrailerError {}

/// Take a received regular message apart.
///
/// `swapped`: the sender's byte order differs from ours (`endian_mismatch`).
pub fn decode(
    service_type: u32,
    mess_type: i16,
    swapped: bool,
    groups: &[GroupName],
    body: &[u8],
) -> Result<Incoming, TrailerError> {
    let mut end = body.len();
    let mut shown: Vec<GroupName> = groups.iter().map(GroupName::clean).collect();
    let group = if service_type & SUBGROUP_CAST != 0 {
        if end < MAX_GROUP_NAME {
            return Err(TrailerError::Short {
                needed: MAX_GROUP_NAME,
                got: end,
            });
        }
        end -= MAX_GROUP_NAME;
        let g = GroupName::truncated(&body[end..end + MAX_GROUP_NAME]);
        shown.push(g);
        g
    } else {
        *shown.first().ok_or(TrailerError::NoGroup)?
    };
    let kind = if mess_type < FL_MIN_LEGAL_MESS_TYPE {
        let extra = if mess_type == VULNERABLE_MESS {
            GID_LEN + 2
        } else {
            GID_LEN
        };
        if end < extra {
            return Err(TrailerError::Short {
                needed: extra + (body.len() - end),
                got: body.len(),
            });
        }
        end -= GID_LEN;
        let mut raw = [0u8; GID_LEN];
        raw.copy_from_slice(&body[end..end + GID_LEN]);
        let gid = gid_from_bytes(raw, swapped);
        match mess_type {
            FLUSH_OK_MESS => Decoded::FlushOk(gid),
            FLUSH_RECV_MESS => Decoded::FlushRecv(gid),
            _ => {
                end -= 2;
                let t = writer_order(swapped).read_u16([body[end], body[end + 1]]) as i16;
                Decoded::Data {
                    mess_type: t,
                    vulnerable: Some(gid),
                }
            }
        }
    } else {
        Decoded::Data {
            mess_type,
            vulnerable: None,
        }
    };
    Ok(Incoming {
        kind,
        group,
        groups: shown,
        body_len: end,
    })
}

/// The bytes a data message carries after the program's body, and the
/// mess_type it travels with.
pub fn data_trailer(
    mess_type: i16,
    vulnerable: Option<GroupId>,
    subgroup_of: Option<&GroupName>,
) -> (i16, Vec<u8>) {
    let mut t = Vec::with_capacity(2 + GID_LEN + MAX_GROUP_NAME);
    let mut sent_type = mess_type;
    if let Some(gid) = vulnerable {
        ByteOrder::NATIVE.put_u16(&mut t, mess_type as u16);
        t.extend_from_slice(&gid.to_native());
        sent_type = VULNERABLE_MESS;
    }
    if let Some(g) = subgroup_of {
        t.extend_from_slice(g.clean().raw());
    }
    (sent_type, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> GroupName {
        GroupName::new(s.as_bytes()).unwrap()
    }

    #[test]
    fn reserved_types_sit_below_the_legal_range() {
        assert_eq!(FLUSH_OK_MESS, i16::MIN);
        assert_eq!(FLUSH_RECV_MESS, FLUSH_OK_MESS + 1);
        assert_eq!(VULNERABLE_MESS, FLUSH_RECV_MESS + 1);
        assert_eq!(FL_MIN_LEGAL_MESS_TYPE, VULNERABLE_MESS + 1);
    }

    #[test]
    fn flush_ok_body_is_the_gid_in_host_order() {
        let gid = GroupId::from_words([0x7f00_0001, 0x5f00_0000, 3]);
        let body = gid.to_native();
        // Little-endian hosts write the first word as 01 00 00 7f.
        if cfg!(target_endian = "little") {
            assert_eq!(&body[..4], &[1, 0, 0, 0x7f]);
            assert_eq!(&body[8..], &[3, 0, 0, 0]);
        }
        let d = decode(0x4, FLUSH_OK_MESS, false, &[name("g")], &body).unwrap();
        assert_eq!(d.kind, Decoded::FlushOk(gid));
        assert_eq!(d.body_len, 0);
        assert_eq!(d.group, name("g"));
        let d = decode(0x4, FLUSH_RECV_MESS, false, &[name("g")], &body).unwrap();
        assert_eq!(d.kind, Decoded::FlushRecv(gid));
    }

    #[test]
    fn foreign_order_gid_is_swapped() {
        let gid = GroupId::from_words([1, 2, -3]);
        let mut foreign = [0u8; GID_LEN];
        for (c, w) in foreign.chunks_exact_mut(4).zip(gid.words()) {
            c.copy_from_slice(&w.swap_bytes().to_ne_bytes());
        }
        let d = decode(0x4, FLUSH_OK_MESS, true, &[name("g")], &foreign).unwrap();
        assert_eq!(d.kind, Decoded::FlushOk(gid));
    }

    #[test]
    fn vulnerable_subgroupcast_round_trip() {
        let gid = GroupId::from_words([9, 8, 7]);
        let g = name("grp");
        let (t, trailer) = data_trailer(42, Some(gid), Some(&g));
        assert_eq!(t, VULNERABLE_MESS);
        assert_eq!(trailer.len(), 2 + 12 + 32);
        // Layout: mess_type, gid, group name.
        assert_eq!(&trailer[..2], &42i16.to_ne_bytes());
        assert_eq!(&trailer[2..14], &gid.to_native());
        assert_eq!(&trailer[14..17], b"grp");
        let mut body = b"hello".to_vec();
        body.extend_from_slice(&trailer);
        let recvrs = [name("#a#h"), name("#b#h")];
        let d = decode(0x4 | SUBGROUP_CAST, t, false, &recvrs, &body).unwrap();
        assert_eq!(
            d.kind,
            Decoded::Data {
                mess_type: 42,
                vulnerable: Some(gid)
            }
        );
        assert_eq!(d.body_len, 5);
        assert_eq!(d.group, g);
        assert_eq!(d.groups, vec![name("#a#h"), name("#b#h"), g]);
    }

    #[test]
    fn both_orders_and_a_foreign_vulnerable_type() {
        let gid = GroupId::from_words([0x0102_0304, -2, 5]);
        for order in [ByteOrder::Little, ByteOrder::Big] {
            assert_eq!(GroupId::from_bytes(gid.to_bytes(order), order), gid);
        }
        assert_eq!(&gid.to_bytes(ByteOrder::Big)[..4], &[1, 2, 3, 4]);
        // A vulnerable message from a host of the other order.
        let foreign = writer_order(true);
        let mut body = b"x".to_vec();
        body.extend_from_slice(&foreign.u16_bytes(7));
        body.extend_from_slice(&gid.to_bytes(foreign));
        let d = decode(0x4, VULNERABLE_MESS, true, &[name("g")], &body).unwrap();
        assert_eq!(
            d.kind,
            Decoded::Data {
                mess_type: 7,
                vulnerable: Some(gid)
            }
        );
        assert_eq!(d.body_len, 1);
    }

    #[test]
    fn view_body_layout() {
        let gid = GroupId::from_words([0x0a63_0001, 77, 4]);
        let body = view_body(gid, &[name("#a#h"), name("#b#h")]);
        assert_eq!(body.len(), VIEW_VS_SET_OFFSET + 2 * 32);
        assert_eq!(&body[..GID_LEN], &gid.to_native());
        assert_eq!(&body[VIEW_NUM_VS_OFFSET..VIEW_VS_SET_OFFSET], &2u32.to_ne_bytes());
        assert_eq!(&body[VIEW_VS_SET_OFFSET..VIEW_VS_SET_OFFSET + 4], b"#a#h");
        assert_eq!(&body[VIEW_VS_SET_OFFSET + 32..VIEW_VS_SET_OFFSET + 36], b"#b#h");
        assert_eq!(view_body(gid, &[]).len(), 16);
    }

    #[test]
    fn plain_message_is_untouched() {
        let (t, trailer) = data_trailer(-5, None, None);
        assert_eq!((t, trailer.len()), (-5, 0));
        let d = decode(0x10, -5, false, &[name("g")], b"abc").unwrap();
        assert_eq!(
            d.kind,
            Decoded::Data {
                mess_type: -5,
                vulnerable: None
            }
        );
        assert_eq!(d.body_len, 3);
        assert_eq!(d.groups, vec![name("g")]);
    }

    #[test]
    fn short_trailers_are_errors_not_panics() {
        assert!(matches!(
            decode(0x4, FLUSH_OK_MESS, false, &[name("g")], &[0; 11]),
            Err(TrailerError::Short { .. })
        ));
        assert!(matches!(
            decode(0x4, VULNERABLE_MESS, false, &[name("g")], &[0; 13]),
            Err(TrailerError::Short { .. })
        ));
        assert!(matches!(
            decode(0x4 | SUBGROUP_CAST, 0, false, &[name("g")], &[0; 31]),
            Err(TrailerError::Short { .. })
        ));
        assert_eq!(decode(0x4, 0, false, &[], b"x"), Err(TrailerError::NoGroup));
    }
}
