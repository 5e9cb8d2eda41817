//! Measurement: HDR histograms of latencies in microseconds and their JSON summary, plus the
//! per-task counters that the driver merges at the end of a run.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Highest trackable latency: 10 minutes in microseconds (larger values are clamped).
const MAX_US: u64 = 600_000_000;

/// A new latency histogram (1 µs .. 10 min, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

/// Records `us` (clamped into the trackable range).
pub fn record(h: &mut Histogram<u64>, us: u64) {
    let _ = h.record(us.clamp(1, MAX_US));
}

/// `{count, p50_us, p99_us, p999_us, max_us}`; all null when empty.
pub fn summarize(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"count": 0, "p50_us": null, "p99_us": null, "p999_us": null, "max_us": null});
    }
    json!({
        "count": h.len(),
        "p50_us": h.value_at_quantile(0.50),
        "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999),
        "max_us": h.max(),
    })
}

/// Messages and bytes over seconds, as `(msgs_per_s, mb_per_s)` with MB = 10^6 bytes.
pub fn rates(msgs: u64, bytes: u64, secs: f64) -> (f64, f64) {
    if secs <= 0.0 {
        return (0.0, 0.0);
    }
    let round = |x: f64| (x * 100.0).round() / 100.0;
    (round(msgs as f64 / secs), round(bytes as f64 / 1e6 / secs))
}

/// Counters and latencies of one producer or consumer task.
#[derive(Debug)]
pub struct TaskStats {
    /// Records acknowledged (producer) or received (consumer).
    pub msgs: u64,
    /// Value bytes of those records.
    pub bytes: u64,
    /// Error responses and connection failures.
    pub errors: u64,
    /// Produce: intended send → ack; consume: record send time → receipt.
    pub latency: Histogram<u64>,
    /// Consumer: microseconds from the task start to the first record, if any.
    pub first_record_us: Option<u64>,
    /// The first few error descriptions, for the report.
    pub error_samples: Vec<String>,
}

impl Default for TaskStats {
    fn default() -> Self {
        TaskStats {
            msgs: 0,
            bytes: 0,
            errors: 0,
            latency: new_histogram(),
            first_record_us: None,
            error_samples: Vec::new(),
        }
    }
}

impl TaskStats {
    /// Counts an error and keeps its text if fewer than 5 are kept.
    pub fn error(&mut self, what: impl Into<String>) {
        self.errors += 1;
        if self.error_samples.len() < 5 {
            self.error_samples.push(what.into());
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &TaskStats) {
        self.msgs += other.msgs;
        self.bytes += other.bytes;
        self.errors += other.errors;
        let _ = self.latency.add(&other.latency);
        self.first_record_us = match (self.first_record_us, other.first_record_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for e in &other.error_samples {
            if self.error_samples.len() < 5 {
                self.error_samples.push(e.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_percentiles() {
        let mut h = new_histogram();
        for v in 1..=1000 {
            record(&mut h, v);
        }
        let s = summarize(&h);
        assert_eq!(s["count"], 1000);
        assert_eq!(s["p50_us"], 500);
        assert_eq!(s["p99_us"], 990);
        assert_eq!(s["p999_us"], 999);
        assert_eq!(s["max_us"], 1000);
    }

    #[test]
    fn empty_summary_is_null() {
        let s = summarize(&new_histogram());
        assert_eq!(s["count"], 0);
        assert!(s["p99_us"].is_null());
    }

    #[test]
    fn clamps_out_of_range() {
        let mut h = new_histogram();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 1);
    }

    #[test]
    fn rates_and_merge() {
        assert_eq!(rates(1000, 2_000_000, 2.0), (500.0, 1.0));
        assert_eq!(rates(1, 1, 0.0), (0.0, 0.0));
        let mut a = TaskStats {
            msgs: 3,
            first_record_us: Some(50),
            ..Default::default()
        };
        record(&mut a.latency, 10);
        let mut b = TaskStats {
            msgs: 4,
            first_record_us: Some(20),
            ..Default::default()
        };
        for i in 0..7 {
            b.error(format!("e{i}"));
        }
        record(&mut b.latency, 30);
        a.merge(&b);
        assert_eq!(a.msgs, 7);
        assert_eq!(a.errors, 7);
        assert_eq!(a.error_samples.len(), 5);
        assert_eq!(a.first_record_us, Some(20));
        assert_eq!(a.latency.len(), 2);
    }
}
