//! A fast keyed hash for the maps every client message goes through
//! (sessions by connection, sessions by private name).
//!
//! The standard SipHash cost about a quarter of the daemon's instructions
//! per message. This one folds 8 bytes at a time through one 64x64->128
//! multiply (the scheme foldhash and aHash fall back to). Both the start
//! state and the multiplier are random per process, so keys a client
//! chooses (private names) cannot be aimed at one bucket by a client that
//! does not know them: with a public multiplier, inputs whose product folds
//! to the same value would collide under every seed.
//! Connection ids are chosen by the shell.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A `HashMap` with the fast keyed hash.
pub type FastMap<K, V> = HashMap<K, V, FastState>;

const FINAL: u64 = 0xbf58_476d_1ce4_e5b9;

fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The process's seed and multiplier, drawn once from the standard
/// library's random keys (the multiplier odd, so it is never a zero
/// divisor of the fold).
fn process_keys() -> (u64, u64) {
    static KEYS: OnceLock<(u64, u64)> = OnceLock::new();
    *KEYS.get_or_init(|| {
        let random = std::collections::hash_map::RandomState::new();
        (
            random.hash_one(0x5eed_u64) | 1,
            random.hash_one(0x6d75_6c74_u64) | 1,
        )
    })
}

/// Builds [`FastHasher`]s with the process's keys.
#[derive(Clone, Copy, Debug)]
pub struct FastState {
    seed: u64,
    multiplier: u64,
}

impl Default for FastState {
    fn default() -> Self {
        let (seed, multiplier) = process_keys();
        FastState { seed, multiplier }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher {
            state: self.seed,
            seed: self.seed,
            multiplier: self.multiplier,
        }
    }
}

pub struct FastHasher {
    state: u64,
    seed: u64,
    multiplier: u64,
}

impl FastHasher {
    fn mix(&mut self, word: u64) {
        self.state = fold(self.state ^ word, self.multiplier);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.mix(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        fold(self.state, FINAL ^ self.seed.rotate_left(29))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash<T: std::hash::Hash>(s: &FastState, v: T) -> u64 {
        s.hash_one(v)
    }

    #[test]
    fn equal_keys_hash_alike_and_near_keys_apart() {
        let s = FastState::default();
        assert_eq!(hash(&s, b"#alice#d1"), hash(&s, b"#alice#d1"));
        assert_ne!(hash(&s, b"#alice#d1"), hash(&s, b"#alicf#d1"));
        assert_ne!(hash(&s, &b"a"[..]), hash(&s, &b"a\0"[..]));
        assert_ne!(hash(&s, 64usize), hash(&s, 65usize));
    }

    /// Consecutive connection ids spread over the buckets a small table
    /// uses (hashbrown takes the low bits for the bucket).
    #[test]
    fn consecutive_ids_fill_distinct_buckets() {
        let s = FastState::default();
        let buckets: std::collections::HashSet<u64> =
            (64usize..64 + 256).map(|i| hash(&s, i) & 1023).collect();
        assert!(
            buckets.len() > 200,
            "{} distinct buckets of 256 keys",
            buckets.len()
        );
    }

    /// A different seed or multiplier gives different hashes (both key it).
    #[test]
    fn the_seed_and_the_multiplier_key_the_hash() {
        let m = 0x9e37_79b9_7f4a_7c15;
        let a = FastState {
            seed: 1,
            multiplier: m,
        };
        let b = FastState {
            seed: 3,
            multiplier: m,
        };
        let c = FastState {
            seed: 1,
            multiplier: m ^ 0x10,
        };
        assert_ne!(hash(&a, b"#alice#d1"), hash(&b, b"#alice#d1"));
        assert_ne!(hash(&a, b"#alice#d1"), hash(&c, b"#alice#d1"));
        assert_ne!(FastState::default().multiplier, m, "drawn per process");
    }
}
