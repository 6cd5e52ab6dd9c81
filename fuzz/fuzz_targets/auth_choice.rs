//! The daemon's reading of a client's auth choice (3 x 30 bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::client::{limits::AUTH_CHOICE_LEN, AuthChoice};

fuzz_target!(|data: &[u8]| {
    match AuthChoice::parse(data) {
        Ok(choice) => {
            assert_eq!(choice.emit(), &data[..AUTH_CHOICE_LEN]);
            assert!(choice.methods().len() <= 3);
        }
        Err(e) => {
            assert!(data.len() < AUTH_CHOICE_LEN);
            let _ = e.to_string();
        }
    }
});
