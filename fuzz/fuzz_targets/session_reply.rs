//! The library's reading of accept / reject. Input: one flag byte (bit 0 =
//! the library expects a patch byte, i.e. >= 3.15), then the reply bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::client::SessionReply;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, reply)) = data.split_first() else {
        return;
    };
    let patch = flag & 1 == 1;
    match SessionReply::parse(reply, patch) {
        Ok((r, used)) => {
            assert!(used <= reply.len());
            assert_eq!(r.emit(patch), &reply[..used]);
            if let SessionReply::Accept { private_group, .. } = &r {
                let _ = (private_group.private_parts(), private_group.is_private());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
