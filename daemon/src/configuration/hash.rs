//! The configuration hash every daemon-to-daemon packet carries.
//!
//! Daemons only talk to daemons whose hash equals theirs. The hash is taken
//! over a text rendering of the segments, the major.minor version and the
//! `AcceleratedRing` setting of the file.

use std::fmt::Write;

use super::defaults::{VERSION_MAJOR, VERSION_MINOR};
use super::{Configuration, InterfaceKinds};

/// The text the hash is computed over.
pub(super) fn text(conf: &Configuration) -> String {
    text_with(conf, conf.flow.accelerated_ring_set && conf.flow.accelerated_ring)
}

/// The text with the given last character (the effective AcceleratedRing).
pub(super) fn text_with(conf: &Configuration, accelerated: bool) -> String {
    let mut out = String::new();
    for seg in &conf.segments {
        // Writing to a String cannot fail.
        let _ = write!(out, "Segment {}:{} ", seg.address, seg.port);
        for d in &seg.daemons {
            let _ = write!(out, "{} {} ", d.name, d.ip);
            for ifc in &d.interfaces {
                for (flag, label) in [
                    (InterfaceKinds::ANY, "ANY "),
                    (InterfaceKinds::DAEMON, "D "),
                    (InterfaceKinds::CLIENT, "C "),
                    (InterfaceKinds::MONITOR, "M "),
                ] {
                    if ifc.kinds.contains(flag) {
                        out.push_str(label);
                    }
                }
                let _ = write!(out, "{} ", ifc.ip);
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "Version: {VERSION_MAJOR}.{VERSION_MINOR}");
    out.push(if accelerated { '1' } else { '0' });
    out
}

/// The original's 32-bit string hash (a one-at-a-time variant seeded with the
/// length). Bytes are added as *signed* chars, as the C code does on x86.
pub fn conf_hash(bytes: &[u8]) -> u32 {
    let len = bytes.len() as u32;
    let mut h = len ^ (len << 8) ^ (len << 16) ^ (len << 24);
    for &b in bytes {
        h = h.wrapping_add(b as i8 as i32 as u32);
        h = h.wrapping_add(h << 10);
        h ^= h >> 6;
    }
    h = h.wrapping_add(h << 3);
    h ^= h >> 11;
    h.wrapping_add(h << 15)
}

#[cfg(test)]
mod tests {
    use super::conf_hash;

    #[test]
    fn known_vectors() {
        let ring = "Segment 10.99.0.255:4803 d1 10.99.0.1 ANY D C M 10.99.0.1 d2 10.99.0.2 ANY D C M \
                    10.99.0.2 d3 10.99.0.3 ANY D C M 10.99.0.3 \nVersion: 4.4\n0";
        assert_eq!(conf_hash(ring.as_bytes()), 778_066_868);
        let single = "Segment 127.0.0.255:5803 localhost 127.0.0.1 ANY D C M 127.0.0.1 \nVersion: 4.4\n0";
        assert_eq!(conf_hash(single.as_bytes()), 60_662_246);
    }

    #[test]
    fn bytes_are_signed() {
        // 0xff added as -1 differs from 0xff added as 255.
        assert_ne!(conf_hash(&[0xff]), conf_hash(&[0x7f]));
        let mut h: u32 = 1 ^ (1 << 8) ^ (1 << 16) ^ (1 << 24);
        h = h.wrapping_add(u32::MAX);
        h = h.wrapping_add(h << 10);
        h ^= h >> 6;
        h = h.wrapping_add(h << 3);
        h ^= h >> 11;
        h = h.wrapping_add(h << 15);
        assert_eq!(conf_hash(&[0xff]), h);
    }

    #[test]
    fn empty_input() {
        assert_eq!(conf_hash(b""), 0);
    }
}
