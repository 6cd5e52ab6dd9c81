//! The library's reading of the daemon's auth-method list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::client::AuthMethodList;

fuzz_target!(|data: &[u8]| {
    match AuthMethodList::parse(data) {
        Ok((list, used)) => {
            assert!(used >= 1 && used <= data.len() && used <= 91);
            assert!(list.methods.iter().all(|m| !m.is_empty() && !m.contains(' ')));
            let again = list.emit();
            assert!(!again.is_empty() && again.len() <= 256);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
