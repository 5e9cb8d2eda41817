//! A byte-rate limiter on the injected clock, for `remote.log.manager.copy.max.bytes.per.second`
//! and `remote.log.manager.fetch.max.bytes.per.second`.
//!
//! A token bucket holding at most one second of budget. Instead of sleeping (Kafka's copier waits
//! on a condition), a caller that is over the limit is told no and defers the work to its next
//! round, so the limiter never blocks a task and tests stay deterministic. A request larger than
//! a whole second of budget is admitted when the bucket is full, so a big segment is never
//! starved by a low limit.

use parking_lot::Mutex;
use shale_common::Clock;
use std::sync::Arc;

/// Bytes-per-second budget.
#[derive(Debug)]
pub struct RateLimiter {
    rate: u64,
    clock: Arc<dyn Clock>,
    state: Mutex<(f64, std::time::Duration)>,
}

impl RateLimiter {
    /// `bytes_per_second` of `u64::MAX` (or ≥ i64::MAX, Kafka's default) means unlimited.
    pub fn new(bytes_per_second: u64, clock: Arc<dyn Clock>) -> Self {
        let now = clock.monotonic();
        RateLimiter {
            rate: bytes_per_second,
            clock,
            state: Mutex::new((bytes_per_second as f64, now)),
        }
    }

    fn unlimited(&self) -> bool {
        self.rate >= i64::MAX as u64
    }

    /// Takes `bytes` from the budget if it allows them now.
    pub fn try_acquire(&self, bytes: u64) -> bool {
        if self.unlimited() {
            return true;
        }
        let now = self.clock.monotonic();
        let mut s = self.state.lock();
        let elapsed = now.saturating_sub(s.1).as_secs_f64();
        let cap = self.rate as f64;
        s.0 = (s.0 + elapsed * cap).min(cap);
        s.1 = now;
        let full = s.0 >= cap;
        if s.0 >= bytes as f64 || full {
            s.0 -= bytes as f64;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shale_common::ManualClock;
    use std::time::Duration;

    #[test]
    fn budget_refills_with_time() {
        let clock = ManualClock::new(0);
        let q = RateLimiter::new(1000, clock.clone());
        assert!(q.try_acquire(600));
        assert!(!q.try_acquire(600));
        clock.advance(Duration::from_millis(300)); // 400 left + 300 refilled
        assert!(q.try_acquire(600));
        assert!(!q.try_acquire(200)); // 100 left
        assert!(q.try_acquire(100));
    }

    #[test]
    fn a_request_larger_than_a_second_is_admitted_from_a_full_bucket() {
        let clock = ManualClock::new(0);
        let q = RateLimiter::new(100, clock.clone());
        assert!(q.try_acquire(1000));
        assert!(!q.try_acquire(1));
        // The debt of 900 bytes takes 9 s to repay at 100 B/s.
        clock.advance(Duration::from_secs(9));
        assert!(!q.try_acquire(1));
        clock.advance(Duration::from_millis(20));
        assert!(q.try_acquire(1));
    }

    #[test]
    fn kafka_default_is_unlimited() {
        let q = RateLimiter::new(i64::MAX as u64, ManualClock::new(0));
        for _ in 0..1000 {
            assert!(q.try_acquire(u32::MAX as u64));
        }
    }
}
