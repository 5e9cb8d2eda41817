//! Record-key distributions for the load driver: no key, uniform over `n` keys, or Zipf(s) over
//! `n` keys. Pure and seeded: the same seed yields the same key sequence, so runs are repeatable.
//! Zipf uses a precomputed CDF and a binary search (O(log n) per key, no rejection loop).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which keys the producer attaches to records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDistribution {
    /// Null keys.
    None,
    /// Keys `0..n`, each equally likely.
    Uniform { n: u64 },
    /// Keys `0..n`, key `k` with probability proportional to `1 / (k+1)^s`.
    Zipf { n: u64, s: f64 },
}

impl KeyDistribution {
    /// Parses `none`, `uniform[:N]` or `zipf[:N[:S]]` (defaults: N = 10,000, S = 1.0).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split(':');
        let kind = parts.next().unwrap_or_default();
        let n = match parts.next() {
            Some(v) => v
                .parse::<u64>()
                .map_err(|e| format!("key count '{v}': {e}"))?,
            None => 10_000,
        };
        if n == 0 {
            return Err("key count must be > 0".into());
        }
        match kind {
            "none" => Ok(KeyDistribution::None),
            "uniform" => Ok(KeyDistribution::Uniform { n }),
            "zipf" => {
                let s = match parts.next() {
                    Some(v) => v
                        .parse::<f64>()
                        .map_err(|e| format!("zipf exponent '{v}': {e}"))?,
                    None => 1.0,
                };
                if !(s > 0.0 && s.is_finite()) {
                    return Err(format!("zipf exponent {s} must be > 0"));
                }
                Ok(KeyDistribution::Zipf { n, s })
            }
            other => Err(format!(
                "unknown key distribution '{other}' (none|uniform|zipf)"
            )),
        }
    }
}

/// A seeded key generator.
#[derive(Debug)]
pub struct KeyGen {
    rng: StdRng,
    dist: KeyDistribution,
    /// Zipf cumulative probabilities (empty otherwise); `cdf[k]` = P(key <= k).
    cdf: Vec<f64>,
}

impl KeyGen {
    /// A generator for `dist` seeded with `seed`.
    pub fn new(dist: KeyDistribution, seed: u64) -> Self {
        let cdf = match dist {
            KeyDistribution::Zipf { n, s } => zipf_cdf(n, s),
            _ => Vec::new(),
        };
        KeyGen {
            rng: StdRng::seed_from_u64(seed),
            dist,
            cdf,
        }
    }

    /// The next key index (`None` for null keys).
    pub fn next_index(&mut self) -> Option<u64> {
        match self.dist {
            KeyDistribution::None => None,
            KeyDistribution::Uniform { n } => Some(self.rng.gen_range(0..n)),
            KeyDistribution::Zipf { .. } => {
                let u: f64 = self.rng.gen();
                let i = self.cdf.partition_point(|&c| c < u);
                Some(i.min(self.cdf.len().saturating_sub(1)) as u64)
            }
        }
    }

    /// The next key as bytes (`key-<index>`), or `None`.
    pub fn next_key(&mut self) -> Option<bytes::Bytes> {
        self.next_index()
            .map(|i| bytes::Bytes::from(format!("key-{i}")))
    }
}

/// Normalised cumulative Zipf probabilities for keys `0..n` (n capped at 10 million).
pub fn zipf_cdf(n: u64, s: f64) -> Vec<f64> {
    let n = n.min(10_000_000) as usize;
    let mut cdf = Vec::with_capacity(n);
    let mut acc = 0.0;
    for k in 0..n {
        acc += 1.0 / ((k + 1) as f64).powf(s);
        cdf.push(acc);
    }
    if acc > 0.0 {
        for c in &mut cdf {
            *c /= acc;
        }
    }
    cdf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(KeyDistribution::parse("none"), Ok(KeyDistribution::None));
        assert_eq!(
            KeyDistribution::parse("uniform:5"),
            Ok(KeyDistribution::Uniform { n: 5 })
        );
        assert_eq!(
            KeyDistribution::parse("zipf:100:1.2"),
            Ok(KeyDistribution::Zipf { n: 100, s: 1.2 })
        );
        assert!(KeyDistribution::parse("zipf:0").is_err());
        assert!(KeyDistribution::parse("zipf:10:-1").is_err());
        assert!(KeyDistribution::parse("hot").is_err());
    }

    #[test]
    fn same_seed_same_keys_and_in_range() {
        let d = KeyDistribution::Uniform { n: 7 };
        let a: Vec<_> = {
            let mut g = KeyGen::new(d, 42);
            (0..100).map(|_| g.next_index()).collect()
        };
        let mut g = KeyGen::new(d, 42);
        let b: Vec<_> = (0..100).map(|_| g.next_index()).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|k| matches!(k, Some(i) if *i < 7)));
        let mut other = KeyGen::new(d, 43);
        let c: Vec<_> = (0..100).map(|_| other.next_index()).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn null_keys() {
        let mut g = KeyGen::new(KeyDistribution::None, 1);
        assert_eq!(g.next_key(), None);
    }

    #[test]
    fn zipf_is_skewed_towards_small_keys() {
        let mut g = KeyGen::new(KeyDistribution::Zipf { n: 1000, s: 1.0 }, 7);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            let k = g.next_index().unwrap_or(u64::MAX) as usize;
            counts[k] += 1;
        }
        // P(key 0) = 1 / H(1000) ≈ 0.1336; key 0 about twice as frequent as key 1.
        assert!((12_000..15_000).contains(&counts[0]), "{}", counts[0]);
        let ratio = f64::from(counts[0]) / f64::from(counts[1]);
        assert!((1.7..2.3).contains(&ratio), "{ratio}");
        assert!(counts[999] < 100);
    }

    #[test]
    fn zipf_cdf_ends_at_one() {
        let cdf = zipf_cdf(10, 2.0);
        assert_eq!(cdf.len(), 10);
        assert!((cdf[9] - 1.0).abs() < 1e-12);
        assert!(cdf.windows(2).all(|w| w[0] < w[1]));
    }
}
