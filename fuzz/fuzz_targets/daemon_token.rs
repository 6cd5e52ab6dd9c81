//! A datagram arriving on the daemon's token port (regular, FORM1, FORM2
//! tokens). A decoded token must re-encode to as many bytes, which decode
//! to the same value and re-encode to themselves (bytes that carry nothing,
//! alignment fill and unused slots, come back as zeros), and survive a trip
//! through the other byte order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::daemon::{AnyToken, TokenHeader};
use spread_wire::endian::{ByteOrder, ENDIAN_MARKER};

fuzz_target!(|data: &[u8]| {
    let _ = TokenHeader::parse(data);
    match AnyToken::parse(data) {
        Ok((t, order)) => {
            let enc = t.emit(order);
            assert_eq!(enc.len(), data.len());
            let (back, o) = AnyToken::parse(&enc).expect("a re-encoding decodes");
            assert_eq!((&back, o), (&t, order));
            assert_eq!(back.emit(order), enc);
            let strip = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & !ENDIAN_MARKER;
            assert_eq!(strip(&enc), strip(data));
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
