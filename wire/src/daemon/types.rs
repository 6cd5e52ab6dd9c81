//! Type-word bits, sizes and limits of the daemon protocol.

use crate::endian::ENDIAN_MARKER;

/// A daemon's id: its IPv4 address in host order.
///
/// The original sends it as a signed 32-bit int; the sign is representation
/// only (the bytes on the wire are the same), so ids are `u32` here: the
/// engines compare, sort and print them as addresses in many places, and a
/// sign would make 128.0.0.0 and up sort before 10.0.0.0.
pub type DaemonId = u32;

/// Bits of a packet or token type word (`net_types.h` facts, without their
/// `_TYPE` suffix).
///
/// Stored and compared without the endian marker ([`ENDIAN_MARKER`]).
pub mod bits {
    pub const UNRELIABLE: u32 = 0x0000_0001;
    pub const RELIABLE: u32 = 0x0000_0002;
    pub const FIFO: u32 = 0x0000_0004;
    pub const AGREED: u32 = 0x0000_0008;
    pub const SAFE: u32 = 0x0000_0010;
    /// Any of the five service levels of a data packet.
    pub const REGULAR: u32 = 0x0000_001f;
    /// Forwarded to another segment (multi-segment only).
    pub const ROUTED: u32 = 0x0000_0020;
    /// Asks the leader to release a held token.
    pub const HURRY: u32 = 0x0000_0040;
    pub const ALIVE: u32 = 0x0000_0100;
    pub const JOIN: u32 = 0x0000_0200;
    pub const REFER: u32 = 0x0000_0400;
    pub const MEMBERSHIP: u32 = 0x0000_0700;
    pub const FORM1: u32 = 0x0000_1000;
    pub const FORM2: u32 = 0x0000_2000;
    pub const FORM: u32 = 0x0000_3000;
    /// 4-bit counter the leader advances on every token pass.
    pub const ARQ_MASK: u32 = 0x000f_0000;
    pub const ARQ_SHIFT: u32 = 16;
    /// 4-bit counter of hurry retransmissions of a held token.
    pub const RETRANS_MASK: u32 = 0x00f0_0000;
    pub const RETRANS_SHIFT: u32 = 20;
    /// Monitor status request/reply.
    pub const STATUS: u32 = 0x0100_0000;
    /// Monitor-imposed partition.
    pub const PARTITION: u32 = 0x0200_0000;
    /// Monitor flow-control parameters.
    pub const FC: u32 = 0x0400_0000;
    /// Configuration reload.
    pub const RELOAD: u32 = 0x0800_0000;
    pub const CONTROL: u32 = 0x0f00_0000;
}

use bits::*;

/// Largest datagram (`MAX_PACKET_SIZE`).
pub const MAX_PACKET_SIZE: usize = 1472;
/// Packet and token headers are both 40 bytes.
pub const HEADER_LEN: usize = 40;
/// Bytes of fragments a data packet can carry (`packet_body`).
pub const BODY_LEN: usize = MAX_PACKET_SIZE - HEADER_LEN;
/// Header of a packed (non-first) fragment: index and length, 2 bytes each.
pub const FRAGMENT_HEADER_LEN: usize = 4;
/// Largest token body: an IP datagram less the IP, UDP and token headers.
pub const MAX_TOKEN_BODY: usize = 65535 - 20 - 8 - HEADER_LEN;
/// Most pieces one message may be cut into (`MAX_SCATTER_ELEMENTS`).
pub const MAX_MESSAGE_PIECES: usize = 100;
/// Daemons in one ring (`MAX_PROCS_RING`): slots of a full `members_info`.
pub const MAX_PROCS_RING: usize = 128;
/// Representatives in one gather (`MAX_REPS`): slots of a full `reps_info`.
pub const MAX_REPS: usize = 25;
/// A full `members_info`: two int16 counts and 128 int32 ids.
pub const MEMBERS_INFO_LEN: usize = 4 + 4 * MAX_PROCS_RING;
/// One `rep_info`: int32 proc_id, int16 type, int16 seg_index.
pub const REP_INFO_LEN: usize = 8;
/// A full `reps_info`: two int16 and 25 rep_info.
pub const REPS_INFO_LEN: usize = 4 + REP_INFO_LEN * MAX_REPS;
/// A `ring_info` without its holes and commit list.
pub const RING_INFO_LEN: usize = 28;
/// A `ring_rtr` without its sequence numbers.
pub const RING_RTR_LEN: usize = 16;
/// Largest GROUPS buffer (`GROUPS_BUF_SIZE`).
pub const GROUPS_BUF_SIZE: usize = 100_000;
/// `conf_hash` of packets from the monitor program.
pub const MONITOR_HASH: u32 = 1100;
/// Memb id the monitor puts in its partition packets.
pub const MONITOR_MEMB_PROC_ID: i32 = 15_051_963;

/// Representative types of a `rep_info` (`POTENTIAL_REP`, `SEG_REP`,
/// `RING_REP`; also the time field of a REFER).
pub mod rep_kind {
    pub const POTENTIAL: i16 = 0;
    pub const SEG: i16 = 1;
    pub const RING: i16 = 2;
}

/// Strip the endian marker from a host-order type word.
pub fn strip_marker(word: u32) -> u32 {
    word & !ENDIAN_MARKER
}

/// The ARQ counter of a token type word.
pub fn arq(type_word: u32) -> u8 {
    ((type_word & ARQ_MASK) >> ARQ_SHIFT) as u8
}

/// `type_word` with its ARQ counter set to `v` (mod 16).
pub fn with_arq(type_word: u32, v: u8) -> u32 {
    (type_word & !ARQ_MASK) | ((u32::from(v) << ARQ_SHIFT) & ARQ_MASK)
}

/// The RETRANS counter of a token type word.
pub fn retrans(type_word: u32) -> u8 {
    ((type_word & RETRANS_MASK) >> RETRANS_SHIFT) as u8
}

/// `type_word` with its RETRANS counter set to `v` (mod 16).
pub fn with_retrans(type_word: u32, v: u8) -> u32 {
    (type_word & !RETRANS_MASK) | ((u32::from(v) << RETRANS_SHIFT) & RETRANS_MASK)
}

/// How a receiver dispatches a datagram from the packet port, in the
/// original's order of tests: partition, status, flow control, reload,
/// membership (alive, join, refer), hurry, data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketKind {
    Partition,
    Status,
    FlowControl,
    Reload,
    Alive,
    Join,
    Refer,
    Hurry,
    Data,
    Unknown,
}

impl PacketKind {
    pub fn of(type_word: u32) -> PacketKind {
        let t = strip_marker(type_word);
        if t & PARTITION != 0 {
            PacketKind::Partition
        } else if t & STATUS != 0 {
            PacketKind::Status
        } else if t & FC != 0 {
            PacketKind::FlowControl
        } else if t & RELOAD != 0 {
            PacketKind::Reload
        } else if t & ALIVE != 0 {
            PacketKind::Alive
        } else if t & JOIN != 0 {
            PacketKind::Join
        } else if t & REFER != 0 {
            PacketKind::Refer
        } else if t & HURRY != 0 {
            PacketKind::Hurry
        } else if t & REGULAR != 0 {
            PacketKind::Data
        } else {
            PacketKind::Unknown
        }
    }
}

/// How a receiver dispatches a datagram from the token port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Form1,
    Form2,
    Regular,
}

impl TokenKind {
    pub fn of(type_word: u32) -> TokenKind {
        let t = strip_marker(type_word);
        if t & FORM1 != 0 {
            TokenKind::Form1
        } else if t & FORM2 != 0 {
            TokenKind::Form2
        } else {
            TokenKind::Regular
        }
    }
}

/// Whether a message of packet type `next` may be packed into a packet of
/// type `current`: same type, or both FIFO/AGREED.
pub fn packable_together(current: u32, next: u32) -> bool {
    let fifo_or_agreed = |t: u32| t & (FIFO | AGREED) != 0;
    strip_marker(current) == strip_marker(next) || (fifo_or_agreed(current) && fifo_or_agreed(next))
}

/// The packet type that carries a message of service `service_type`: the
/// lowest service bit decides (client UNRELIABLE travels as RELIABLE, CAUSAL
/// as AGREED); join/leave/kill requests go AGREED; `None` for anything else.
pub fn packet_type_for_service(service_type: u32) -> Option<u32> {
    use crate::client::service::*;
    let t = service_type;
    if t & (UNRELIABLE_MESS | RELIABLE_MESS) != 0 {
        Some(RELIABLE)
    } else if t & FIFO_MESS != 0 {
        Some(FIFO)
    } else if t & (CAUSAL_MESS | AGREED_MESS) != 0 {
        Some(AGREED)
    } else if t & SAFE_MESS != 0 {
        Some(SAFE)
    } else if t & CONTROL_MESS != 0 {
        Some(AGREED)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arq_and_retrans_of_captured_idle_token() {
        // `80 00 17 80`: ARQ 7, RETRANS 1, marker.
        let w = u32::from_le_bytes([0x80, 0x00, 0x17, 0x80]);
        assert_eq!(arq(w), 7);
        assert_eq!(retrans(w), 1);
        assert_eq!(with_retrans(with_arq(w, 3), 2), 0x8023_0080);
        assert_eq!(arq(with_arq(0, 17)), 1);
    }

    #[test]
    fn dispatch_follows_original_precedence() {
        assert_eq!(PacketKind::of(0x8000_00c0), PacketKind::Hurry);
        assert_eq!(PacketKind::of(0x8000_0088), PacketKind::Data);
        assert_eq!(PacketKind::of(0x8000_0180), PacketKind::Alive);
        assert_eq!(PacketKind::of(ALIVE | HURRY), PacketKind::Alive);
        assert_eq!(PacketKind::of(STATUS | AGREED), PacketKind::Status);
        assert_eq!(PacketKind::of(0x8000_0080), PacketKind::Unknown);
        assert_eq!(TokenKind::of(0x8000_1080), TokenKind::Form1);
        assert_eq!(TokenKind::of(0x8000_2080), TokenKind::Form2);
        assert_eq!(TokenKind::of(0x8017_0080), TokenKind::Regular);
    }

    #[test]
    fn packing_compatibility() {
        assert!(packable_together(AGREED, FIFO));
        assert!(packable_together(FIFO, AGREED));
        assert!(packable_together(SAFE, SAFE));
        assert!(!packable_together(AGREED, SAFE));
        assert!(!packable_together(RELIABLE, FIFO));
    }

    #[test]
    fn service_to_packet_type() {
        use crate::client::service::*;
        assert_eq!(packet_type_for_service(UNRELIABLE_MESS), Some(RELIABLE));
        assert_eq!(packet_type_for_service(CAUSAL_MESS), Some(AGREED));
        assert_eq!(packet_type_for_service(SAFE_MESS | SELF_DISCARD), Some(SAFE));
        assert_eq!(packet_type_for_service(JOIN_MESS), Some(AGREED));
        assert_eq!(
            packet_type_for_service(GROUPS_MESS | RELIABLE_MESS),
            Some(RELIABLE)
        );
        assert_eq!(packet_type_for_service(GROUPS_MESS | AGREED_MESS), Some(AGREED));
        assert_eq!(packet_type_for_service(REG_MEMB_MESS), None);
    }
}
