//! A monitor command datagram (STATUS, PARTITION, FC, RELOAD) arriving on a
//! daemon's segment port. A decoded command must re-encode to its own bytes
//! (when the type word is canonical) and survive the other byte order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::endian::{ByteOrder, ENDIAN_MARKER};
use spread_wire::monitor::CommandPacket;

const COMMAND_BITS: u32 = 0x0f00_0000;

fuzz_target!(|data: &[u8]| {
    match CommandPacket::parse(data) {
        Ok((c, order)) => {
            let enc = c.emit(order);
            assert_eq!(enc.len(), data.len());
            let word = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            let marker = word & ENDIAN_MARKER;
            let bits = order.read_u32([data[0], data[1], data[2], data[3]]) & COMMAND_BITS;
            if (marker == 0 || marker == ENDIAN_MARKER) && bits.count_ones() == 1 {
                assert_eq!(enc, data);
            } else {
                assert_eq!(&enc[4..], &data[4..]);
            }
            let other = match order {
                ByteOrder::Little => ByteOrder::Big,
                ByteOrder::Big => ByteOrder::Little,
            };
            let (back, o2) = CommandPacket::parse(&c.emit(other)).expect("own encoding parses");
            assert_eq!(o2, other);
            assert_eq!(back.command, c.command);
            assert_eq!(back.emit(order), enc);
        }
        Err(e) => {
            let _ = e.to_string();
            if let Some(needed) = e.bytes_needed() {
                assert!(needed > data.len());
            }
        }
    }
});
