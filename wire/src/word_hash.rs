//! A fast hash for maps keyed by short strings the process itself chose: SQL texts and a
//! result column's values.
//!
//! std's default (SipHash-1-3, keyed per map) resists flooding by crafted keys; for a short
//! key it costs about 120 instructions a lookup, which showed on every query (the statement
//! cache is looked up by the SQL text each time). This is a multiply-rotate over 8-byte
//! words, started from a seed drawn once per process, so that colliding keys cannot be
//! worked out ahead of time. It is still no defence against someone who can watch the
//! maps' timing: use it only where a flood is harmless, in a map whose size is bounded (the
//! statement cache's capacity, a column's table of at most 256 values), so that colliding
//! keys cost a bounded scan, never a growing one.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// The word hash itself; [`BuildWordHash`] makes one per lookup.
pub struct WordHash(u64);

/// The `S` of a `HashMap<K, V, S>` that hashes with [`WordHash`]: holds the process's seed,
/// so that a lookup reads no global.
#[derive(Clone, Copy, Debug)]
pub struct BuildWordHash {
    seed: u64,
}

impl Default for BuildWordHash {
    fn default() -> BuildWordHash {
        static SEED: OnceLock<u64> = OnceLock::new();
        BuildWordHash {
            seed: *SEED.get_or_init(|| RandomState::new().hash_one(0x5eed_u64)),
        }
    }
}

impl BuildHasher for BuildWordHash {
    type Hasher = WordHash;

    fn build_hasher(&self) -> WordHash {
        WordHash(self.seed)
    }
}

impl Hasher for WordHash {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.add(u64::from_le_bytes(word));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(tail) ^ bytes.len() as u64);
    }

    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl WordHash {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_differ_anywhere_hash_apart() {
        let b = BuildWordHash::default();
        let base = "select id, label from bench_small where id = $1";
        let h = b.hash_one(base);
        assert_eq!(
            h,
            b.hash_one(String::from(base)),
            "the same text, the same hash"
        );
        for i in 0..base.len() {
            let mut t = base.as_bytes().to_vec();
            t[i] ^= 1;
            let t = String::from_utf8(t).unwrap();
            assert_ne!(h, b.hash_one(&t), "a change at byte {i}");
        }
        // Lengths that share their words: the tail word carries the length.
        assert_ne!(b.hash_one("a"), b.hash_one("a\0"));
        assert_ne!(b.hash_one(""), b.hash_one("\0\0\0\0\0\0\0\0"));
        // One seed per process: every map hashes alike (a map's keys may move to another).
        assert_eq!(h, BuildWordHash::default().hash_one(base));
    }

    #[test]
    fn the_seed_changes_the_hash() {
        let key = "select 1";
        let a = BuildWordHash { seed: 1 }.hash_one(key);
        let b = BuildWordHash { seed: 2 }.hash_one(key);
        assert_ne!(a, b);
    }
}
