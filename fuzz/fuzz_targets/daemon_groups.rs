//! The body of a GROUPS state-exchange message. Input: one byte (bit 0:
//! 0 = the daemon wrote little-endian, 1 = big-endian), then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::daemon::GroupsBody;
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
    let Ok(g) = GroupsBody::parse(body, order) else {
        return;
    };
    let enc = g.emit(order);
    assert_eq!(enc.len(), g.encoded_len());
    assert_eq!(enc, body);
    let other = match order {
        ByteOrder::Little => ByteOrder::Big,
        ByteOrder::Big => ByteOrder::Little,
    };
    assert_eq!(GroupsBody::parse(&g.emit(other), other).as_ref(), Ok(&g));
});
