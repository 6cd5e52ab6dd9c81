//! A datagram arriving on the daemon's segment port (data, ALIVE, JOIN,
//! REFER, HURRY, monitor packets). A decoded datagram must re-encode to its
//! own bytes and survive a trip through the other byte order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::daemon::{AnyPacket, PacketHeader};
use spread_wire::endian::{ByteOrder, ENDIAN_MARKER};

fn marker_consistent(b: &[u8]) -> bool {
    let m = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & ENDIAN_MARKER;
    m == 0 || m == ENDIAN_MARKER
}

fuzz_target!(|data: &[u8]| {
    let _ = PacketHeader::parse(data);
    match AnyPacket::parse(data) {
        Ok((p, order)) => {
            let enc = p.emit(order);
            assert_eq!(enc.len(), data.len());
            if marker_consistent(data) {
                assert_eq!(enc, data);
            } else {
                assert_eq!(&enc[4..], &data[4..]);
            }
            let other = match order {
                ByteOrder::Little => ByteOrder::Big,
                ByteOrder::Big => ByteOrder::Little,
            };
            let swapped = p.emit(other);
            assert_eq!(AnyPacket::parse(&swapped), Ok((p, other)));
        }
        Err(e) => {
            let _ = e.to_string();
            if let Some(needed) = e.bytes_needed() {
                assert!(needed > data.len());
            }
        }
    }
});
