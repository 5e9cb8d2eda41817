//! Wall-clock and monotonic time behind a trait, so tests can drive time by hand.

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time. Library code takes an `Arc<dyn Clock>`; only binaries pick [`SystemClock`].
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch (Kafka's timestamp unit).
    fn now_ms(&self) -> i64;
    /// A monotonic reading for measuring intervals.
    fn monotonic(&self) -> Duration;
}

/// The real clock.
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// A shareable system clock.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Arc<dyn Clock> {
        Arc::new(SystemClock {
            start: Instant::now(),
        })
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn monotonic(&self) -> Duration {
        self.start.elapsed()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<(i64, Duration)>,
}

impl ManualClock {
    /// A manual clock reading `now_ms` on the wall and zero on the monotonic scale.
    pub fn new(now_ms: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            state: Mutex::new((now_ms, Duration::ZERO)),
        })
    }

    /// Moves both readings forward.
    pub fn advance(&self, by: Duration) {
        let mut s = self.state.lock();
        s.0 += by.as_millis() as i64;
        s.1 += by;
    }

    /// Sets the wall reading (the monotonic one is untouched).
    pub fn set_ms(&self, now_ms: i64) {
        self.state.lock().0 = now_ms;
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.state.lock().0
    }

    fn monotonic(&self) -> Duration {
        self.state.lock().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(Duration::from_millis(250));
        assert_eq!(c.now_ms(), 1_250);
        assert_eq!(c.monotonic(), Duration::from_millis(250));
    }
}
