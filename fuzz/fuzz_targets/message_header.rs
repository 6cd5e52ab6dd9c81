//! The 48-byte message header, read by either side.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::client::{hint_for, MessageHeader};
use spread_wire::endian::{ByteOrder, ENDIAN_MARKER};

fuzz_target!(|data: &[u8]| {
    let Ok((h, order)) = MessageHeader::parse(data) else {
        assert!(data.len() < MessageHeader::LEN);
        return;
    };
    assert_eq!(h.service_type & ENDIAN_MARKER, 0);
    let marker = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) & ENDIAN_MARKER;
    if marker == 0 || marker == ENDIAN_MARKER {
        assert_eq!(&h.emit(order)[..], &data[..MessageHeader::LEN]);
    }
    // Converting to the other order and back changes nothing.
    let other = match order {
        ByteOrder::Little => ByteOrder::Big,
        ByteOrder::Big => ByteOrder::Little,
    };
    let (back, back_order) = MessageHeader::parse(&h.emit(other)).expect("48 bytes");
    assert_eq!((back, back_order), (h, other));
    assert_eq!(back.sender.raw(), h.sender.raw());
    let _ = (
        h.raw_hint(),
        hint_for(h.mess_type(), h.hint_order()),
        h.sender.private_parts(),
    );
});
