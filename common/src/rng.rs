//! Randomness behind a trait, seeded in tests.

use parking_lot::Mutex;
use rand::{RngCore, SeedableRng};
use std::sync::Arc;

/// A source of random numbers (ids, jitter). Library code takes an `Arc<dyn Rng>`.
pub trait Rng: Send + Sync + std::fmt::Debug {
    /// A uniformly random `u64`.
    fn next_u64(&self) -> u64;
    /// Sixteen random bytes (for UUIDs).
    fn next_bytes16(&self) -> [u8; 16] {
        let a = self.next_u64().to_be_bytes();
        let b = self.next_u64().to_be_bytes();
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&a);
        out[8..].copy_from_slice(&b);
        out
    }
}

/// A deterministic RNG; `from_entropy` is for binaries only.
#[derive(Debug)]
pub struct SeededRng {
    inner: Mutex<rand::rngs::StdRng>,
}

impl SeededRng {
    /// Same seed, same sequence.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(seed: u64) -> Arc<dyn Rng> {
        Arc::new(SeededRng {
            inner: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
        })
    }

    /// Seeded from the operating system.
    pub fn from_entropy() -> Arc<dyn Rng> {
        Arc::new(SeededRng {
            inner: Mutex::new(rand::rngs::StdRng::from_entropy()),
        })
    }
}

impl Rng for SeededRng {
    fn next_u64(&self) -> u64 {
        self.inner.lock().next_u64()
    }
}
