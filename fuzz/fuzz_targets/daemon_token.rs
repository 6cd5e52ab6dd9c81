//! A datagram arriving on the daemon's token port (regular, FORM1, FORM2
//! tokens). A decoded token must re-encode to its own bytes and survive a
//! trip through the other byte order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::daemon::{AnyToken, TokenHeader};
use spread_wire::endian::{ByteOrder, ENDIAN_MARKER};

fn marker_consistent(b: &[u8]) -> bool {
    let m = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & ENDIAN_MARKER;
    m == 0 || m == ENDIAN_MARKER
}

fuzz_target!(|data: &[u8]| {
    let _ = TokenHeader::parse(data);
    match AnyToken::parse(data) {
        Ok((t, order)) => {
            let enc = t.emit(order);
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
            let swapped = t.emit(other);
            assert_eq!(AnyToken::parse(&swapped), Ok((t, other)));
        }
        Err(e) => {
            let _ = e.to_string();
            if let Some(needed) = e.bytes_needed() {
                assert!(needed > data.len());
            }
        }
    }
});
