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

/// The hash flip of the captures (`spread4-wire/monitor/README.md`): a LAN
/// file without an AcceleratedRing line hashes with '0' when first read and
/// with '1' after a reload.
#[cfg(test)]
mod reload_tests {
    use crate::configuration::Configuration;

    fn conf(daemons: &[u8], extra: &str) -> Configuration {
        let body: String = daemons.iter().map(|d| format!("  d{d} 10.99.0.{d}\n")).collect();
        let text = format!("Spread_Segment 10.99.0.255:4803 {{\n{body}}}\n{extra}");
        Configuration::parse(&text, "spread.conf").expect("parses")
    }

    #[test]
    fn the_captured_hashes_before_and_after_a_reload() {
        assert_eq!(conf(&[1, 2, 3], "").hash(), 778_066_868);
        assert_eq!(conf(&[1, 2, 3, 4], "").hash(), 906_131_042);
        assert_eq!(conf(&[1, 2, 3, 4], "").hash_after_reload(), 599_773_661);
        assert_eq!(conf(&[1, 3, 4], "").hash(), 2_797_780_337);
        assert_eq!(conf(&[1, 3, 4], "").hash_after_reload(), 2_498_763_212);
    }

    #[test]
    fn an_explicit_accelerated_ring_line_avoids_the_flip() {
        for line in ["AcceleratedRing = true\n", "AcceleratedRing = false\n"] {
            let c = conf(&[1, 2, 3], line);
            assert_eq!(c.hash(), c.hash_after_reload(), "{line}");
        }
    }
}
