//! The daemon's reading of a connect request (raw bytes as they arrived).
#![no_main]

use libfuzzer_sys::fuzz_target;
use spread_wire::client::ConnectRequest;

fuzz_target!(|data: &[u8]| {
    match ConnectRequest::parse(data) {
        Ok((req, used)) => {
            assert!(used <= data.len());
            // Everything the daemon accepted re-encodes to the same bytes.
            assert_eq!(req.emit(), &data[..used]);
            assert!(req.version.is_supported_client());
            assert!(req.name.len() <= 10);
            let _ = (req.wants_membership(), req.priority());
        }
        Err(e) => {
            let _ = (e.reject_code(), e.to_string());
        }
    }
});
