//! The log cleaner's key → latest offset map (Kafka's `SkimpyOffsetMap`).
//!
//! Kafka identifies keys by their MD5 digest (16 bytes). We also use a 128-bit digest but build it
//! from two independent 64-bit hashes of the key bytes: FNV-1a 64 and a multiply-xorshift hash
//! (wyhash-style mixing with a different seed), concatenated. The map lives only for one cleaning
//! pass, so the digest never reaches disk; two distinct keys are confused only if both 64-bit
//! hashes collide at once (for non-adversarial keys, about 2^-128 per pair).

use std::collections::HashMap;

/// FNV-1a, 64 bits.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Folded 64x64→128 multiply.
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a).wrapping_mul(u128::from(b));
    (r as u64) ^ ((r >> 64) as u64)
}

/// A seeded multiply-xorshift hash over 8-byte words (independent of FNV).
fn mix64(bytes: &[u8]) -> u64 {
    const P0: u64 = 0xa076_1d64_78bd_642f;
    const P1: u64 = 0xe703_7ed1_a0b4_28db;
    let mut h: u64 = 0x1d8e_4e27_c47d_124f ^ (bytes.len() as u64).wrapping_mul(P1);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mum(h ^ u64::from_le_bytes(w), P0);
    }
    let rest = chunks.remainder();
    let mut w = [0u8; 8];
    w[..rest.len()].copy_from_slice(rest);
    h = mum(h ^ u64::from_le_bytes(w) ^ P1, P0 ^ rest.len() as u64);
    mum(h, P1)
}

/// The 128-bit digest identifying `key`.
pub(crate) fn key_digest(key: &[u8]) -> u128 {
    (u128::from(fnv1a64(key)) << 64) | u128::from(mix64(key))
}

/// Key digest → offset of the latest record with that key, bounded in entries.
#[derive(Debug)]
pub(crate) struct OffsetMap {
    map: HashMap<u128, i64>,
    capacity: usize,
    latest_offset: i64,
}

impl OffsetMap {
    /// An empty map holding at most `capacity` keys.
    pub(crate) fn new(capacity: usize) -> OffsetMap {
        OffsetMap {
            map: HashMap::new(),
            capacity: capacity.max(1),
            latest_offset: -1,
        }
    }

    /// Records that `key` appears at `offset` (offsets are put in increasing order).
    pub(crate) fn put(&mut self, key: &[u8], offset: i64) {
        self.map.insert(key_digest(key), offset);
        self.latest_offset = self.latest_offset.max(offset);
    }

    /// Latest offset of `key`, if seen.
    pub(crate) fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(&key_digest(key)).copied()
    }

    /// Whether `n` more distinct keys might not fit.
    pub(crate) fn would_overflow(&self, n: usize) -> bool {
        self.map.len().saturating_add(n) > self.capacity
    }

    /// Largest offset put so far (-1 if none).
    #[cfg(test)]
    pub(crate) fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    /// Raises the latest offset without a key (records skipped while building the map).
    pub(crate) fn advance_to(&mut self, offset: i64) {
        self.latest_offset = self.latest_offset.max(offset);
    }

    /// Number of keys.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_offset_wins_and_digests_differ() {
        let mut m = OffsetMap::new(10);
        m.put(b"a", 1);
        m.put(b"b", 2);
        m.put(b"a", 5);
        assert_eq!(m.get(b"a"), Some(5));
        assert_eq!(m.get(b"b"), Some(2));
        assert_eq!(m.get(b"c"), None);
        assert_eq!(m.latest_offset(), 5);
        assert_eq!(m.len(), 2);
        assert!(!m.would_overflow(8));
        assert!(m.would_overflow(9));
        // Near-identical keys of every length up to 40 bytes get distinct digests.
        let mut seen = std::collections::HashSet::new();
        for len in 0..40usize {
            for b in 0..=255u8 {
                let k: Vec<u8> = std::iter::repeat_n(0u8, len).chain([b]).collect();
                assert!(seen.insert(key_digest(&k)));
            }
        }
        assert_ne!(key_digest(b""), key_digest(b"\0"));
    }
}
