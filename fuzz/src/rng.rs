//! The fuzzer's random numbers: SplitMix64, written out here so that a given `(seed, target,
//! iteration)` yields the same input on every build and platform forever (a library RNG may change
//! its stream between versions, which would break replaying an old finding).

/// A SplitMix64 generator. Not cryptographic; fast and well distributed.
#[derive(Clone, Debug)]
pub struct FuzzRng(u64);

impl FuzzRng {
    /// A generator whose stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        FuzzRng(seed)
    }

    /// The generator of one input: a function of the run seed, the target name and the iteration
    /// only, so any input can be rebuilt without running the ones before it.
    pub fn for_input(seed: u64, target: &str, iteration: u64) -> Self {
        // FNV-1a of the name, then three SplitMix rounds to mix the parts.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in target.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut r = FuzzRng(seed ^ h.rotate_left(17));
        let a = r.next_u64();
        let mut r = FuzzRng(a ^ iteration.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.next_u64();
        r
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u32, den: u32) -> bool {
        self.below(den as usize) < num as usize
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_fixed_by_their_inputs() {
        let a: Vec<u64> = (0..4)
            .map(|_| FuzzRng::for_input(1, "x", 7).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            FuzzRng::for_input(1, "x", 7).next_u64(),
            FuzzRng::for_input(1, "x", 8).next_u64()
        );
        assert_ne!(
            FuzzRng::for_input(1, "x", 7).next_u64(),
            FuzzRng::for_input(1, "y", 7).next_u64()
        );
        // SplitMix64's published first output for state 0.
        assert_eq!(FuzzRng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        let mut r = FuzzRng::new(3);
        assert!((0..1000).all(|_| r.below(7) < 7));
        assert_eq!(r.below(0), 0);
    }
}
