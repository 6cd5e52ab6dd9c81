//! A stream of whole messages (header, names, body), read as a peer reads
//! it: one message after the other until the bytes run out. The same bytes
//! are also read as a reject delivery.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::client::{Message, MessageHeader, RejectDelivery};
use spread_wire::endian::ENDIAN_MARKER;

fn marker_consistent(b: &[u8]) -> bool {
    let m = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & ENDIAN_MARKER;
    m == 0 || m == ENDIAN_MARKER
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        match Message::parse(rest) {
            Ok((m, order, used)) => {
                assert!(used >= MessageHeader::LEN && used <= rest.len());
                assert_eq!(used, m.encoded_len());
                if marker_consistent(rest) {
                    assert_eq!(m.emit(order), &rest[..used]);
                }
                rest = &rest[used..];
            }
            Err(e) if e.is_truncated() => {
                assert!(e.bytes_needed().unwrap() > rest.len());
                break;
            }
            Err(e) => {
                let _ = e.to_string();
                break;
            }
        }
    }
    if let Ok((r, order, used)) = RejectDelivery::parse(data) {
        assert!(used <= data.len());
        // Canonical when the type word is, and the old-type word carries the
        // same marker (both are written in the daemon's order).
        let marker = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & ENDIAN_MARKER;
        if marker_consistent(data) && marker(data) == marker(&data[MessageHeader::LEN..]) {
            assert_eq!(r.emit(order), &data[..used]);
        }
    }
});
