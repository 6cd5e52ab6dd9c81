//! A datagram arriving on the daemon's segment port (data, ALIVE, JOIN,
//! REFER, HURRY, monitor packets). A decoded datagram must re-encode to as many
//! bytes, which decode to the same value and re-encode to themselves (bytes
//! that carry nothing, such as alignment fill, come back as zeros), and
//! survive a trip through the other byte order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::daemon::{AnyPacket, PacketHeader};
use spread_wire::endian::{ByteOrder, ENDIAN_MARKER};

fuzz_target!(|data: &[u8]| {
    let _ = PacketHeader::parse(data);
    match AnyPacket::parse(data) {
        Ok((p, order)) => {
            let enc = p.emit(order);
            assert_eq!(enc.len(), data.len());
            let (back, o) = AnyPacket::parse(&enc).expect("a re-encoding decodes");
            assert_eq!((&back, o), (&p, order));
            assert_eq!(back.emit(order), enc);
            let strip = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & !ENDIAN_MARKER;
            assert_eq!(strip(&enc), strip(data));
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
