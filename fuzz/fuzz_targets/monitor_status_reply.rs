//! A STATUS reply as a monitor receives it (the 30-field record, maybe our
//! extension). A decoded reply must re-encode to its own bytes (canonical
//! type word) and survive the other byte order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::endian::{ByteOrder, ENDIAN_MARKER};
use spread_wire::monitor::StatusReply;

fuzz_target!(|data: &[u8]| {
    match StatusReply::parse(data) {
        Ok((r, order)) => {
            let enc = r.emit(order);
            let marker = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) & ENDIAN_MARKER;
            if marker == 0 || marker == ENDIAN_MARKER {
                assert_eq!(enc, data);
            } else {
                assert_eq!(&enc[4..], &data[4..]);
            }
            let other = match order {
                ByteOrder::Little => ByteOrder::Big,
                ByteOrder::Big => ByteOrder::Little,
            };
            assert_eq!(StatusReply::parse(&r.emit(other)), Ok((r, other)));
        }
        Err(e) => {
            let _ = e.to_string();
            if let Some(needed) = e.bytes_needed() {
                assert!(needed > data.len());
            }
        }
    }
});
