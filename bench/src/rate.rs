//! Fixed-rate scheduling: message `i` of a producer running at `rate` msgs/s is *intended* to be
//! sent at `start + i / rate`. Latency is measured from that intended time, not from when the
//! send actually happened, so a stalled broker shows up as latency instead of silently lowering
//! the offered load (coordinated omission).

use std::time::Duration;

/// The schedule of one producer.
#[derive(Debug, Clone, Copy)]
pub struct RateSchedule {
    /// Messages per second for this producer (> 0).
    rate: f64,
}

impl RateSchedule {
    /// A schedule at `rate` msgs/s; `None` if the rate is not positive and finite.
    pub fn new(rate: f64) -> Option<Self> {
        (rate > 0.0 && rate.is_finite()).then_some(RateSchedule { rate })
    }

    /// Offset from the start at which message `index` is intended to be sent.
    pub fn intended_offset(&self, index: u64) -> Duration {
        Duration::from_secs_f64(index as f64 / self.rate)
    }

    /// How many records a batch starting at message `index` should hold so it spans at most
    /// `linger` of schedule time, bounded by `1..=max_batch`.
    pub fn batch_len(&self, linger: Duration, max_batch: usize) -> usize {
        let by_time = (self.rate * linger.as_secs_f64()).floor() as usize;
        by_time.clamp(1, max_batch.max(1))
    }
}

/// Splits a total rate across `producers` (each gets an equal share).
pub fn per_producer_rate(total: f64, producers: usize) -> f64 {
    total / producers.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_rates() {
        assert!(RateSchedule::new(0.0).is_none());
        assert!(RateSchedule::new(-1.0).is_none());
        assert!(RateSchedule::new(f64::INFINITY).is_none());
    }

    #[test]
    fn intended_times_are_evenly_spaced() {
        let s = RateSchedule::new(1000.0).unwrap_or_else(|| unreachable!());
        assert_eq!(s.intended_offset(0), Duration::ZERO);
        assert_eq!(s.intended_offset(1), Duration::from_millis(1));
        assert_eq!(s.intended_offset(2500), Duration::from_millis(2500));
    }

    #[test]
    fn batch_len_follows_linger() {
        let s = RateSchedule::new(10_000.0).unwrap_or_else(|| unreachable!());
        assert_eq!(s.batch_len(Duration::from_millis(5), 1000), 50);
        assert_eq!(s.batch_len(Duration::from_millis(5), 16), 16);
        assert_eq!(s.batch_len(Duration::ZERO, 16), 1);
        let slow = RateSchedule::new(10.0).unwrap_or_else(|| unreachable!());
        assert_eq!(slow.batch_len(Duration::from_millis(5), 100), 1);
    }

    #[test]
    fn splits_rate() {
        assert_eq!(per_producer_rate(1000.0, 4), 250.0);
        assert_eq!(per_producer_rate(1000.0, 0), 1000.0);
    }
}
