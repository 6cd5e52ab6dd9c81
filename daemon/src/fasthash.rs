//! A fast keyed hash for the maps every client message goes through
//! (sessions by connection, sessions by private name).
//!
//! The standard SipHash cost about a quarter of the daemon's instructions
//! per message. This one folds 8 bytes at a time through one 64x64->128
//! multiply (the scheme foldhash and aHash fall back to), keyed with a
//! random seed per process, so keys a client chooses (private names)
//! cannot be aimed at one bucket by a client that does not know the seed.
//! Connection ids are chosen by the shell.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A `HashMap` with the fast keyed hash.
pub type FastMap<K, V> = HashMap<K, V, FastState>;

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
const FINAL: u64 = 0xbf58_476d_1ce4_e5b9;

fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The process's seed, drawn once from the standard library's random keys.
fn process_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1)
}

/// Builds [`FastHasher`]s with the process's seed.
#[derive(Clone, Copy, Debug)]
pub struct FastState {
    seed: u64,
}

impl Default for FastState {
    fn default() -> Self {
        FastState { seed: process_seed() }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher {
            state: self.seed,
            seed: self.seed,
        }
    }
}

pub struct FastHasher {
    state: u64,
    seed: u64,
}

impl FastHasher {
    fn mix(&mut self, word: u64) {
        self.state = fold(self.state ^ word, MULTIPLIER);
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

    /// A different seed gives different hashes (the seed keys the hash).
    #[test]
    fn the_seed_keys_the_hash() {
        let a = FastState { seed: 1 };
        let b = FastState { seed: 3 };
        assert_ne!(hash(&a, b"#alice#d1"), hash(&b, b"#alice#d1"));
    }
}
