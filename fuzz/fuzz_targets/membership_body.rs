//! The body of a membership notice. Input: one byte (bit 0: 0 = the
//! daemon wrote little-endian, 1 = big-endian), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::client::{GroupId, MembershipBody};
use spread_wire::endian::ByteOrder;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, body)) = data.split_first() else {
        return;
    };
    let order = if flag & 1 == 0 {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    let _ = GroupId::parse(body, order);
    let Ok(m) = MembershipBody::parse(body, order) else {
        return;
    };
    let enc = m.emit(order);
    assert_eq!(enc.len(), m.encoded_len());
    assert!(enc.len() <= body.len());
    let offset = order.read_u32([body[16], body[17], body[18], body[19]]);
    if !m.vs_sets.is_empty() || offset == 0 {
        assert_eq!(enc, &body[..enc.len()]);
    }
    assert_eq!(MembershipBody::parse(&enc, order).as_ref(), Ok(&m));
});
