//! Tiered-storage metrics, rendered at scrape time from the live counters.
//!
//! Kafka's BrokerTopicMetrics names (KIP-405 §6) become Prometheus families the way the JMX
//! exporter names them, e.g. `RemoteCopyBytesPerSec` → `kafka_server_brokertopicmetrics_remotecopybytespersec_total`
//! (meters are cumulative counters; rates are the scraper's job). Shale adds the block cache and
//! the object store: `shale_remote_cache_*` and `shale_object_store_requests_total{kind}` with
//! latency sums.

use super::Tiering;
use shale_remote_log::OpKind;
use shale_rlmm::RemoteLogSegmentState;
use std::fmt::Write;
use std::sync::atomic::Ordering;

fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn counter(out: &mut String, kafka_name: &str, help: &str, value: u64) {
    let name = format!(
        "kafka_server_brokertopicmetrics_{}_total",
        kafka_name.to_lowercase()
    );
    family(
        out,
        &name,
        "counter",
        help,
        &[(String::new(), value as f64)],
    );
}

fn gauge(out: &mut String, kafka_name: &str, help: &str, value: f64) {
    let name = format!(
        "kafka_server_brokertopicmetrics_{}",
        kafka_name.to_lowercase()
    );
    family(out, &name, "gauge", help, &[(String::new(), value)]);
}

impl Tiering {
    /// The Prometheus text of every tiering metric.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        self.render_meters(&mut out);
        self.render_remote_log_size(&mut out);
        self.render_cache(&mut out);
        self.render_store(&mut out);
        out
    }

    /// Kafka's BrokerTopicMetrics meters, as cumulative counters.
    fn render_meters(&self, out: &mut String) {
        let f = &self.fetch_stats;
        let zero = shale_remote_log::tasks::TaskStats::default();
        let t = self.active().map_or(&zero, |a| &a.rlm.stats);
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        // Kafka's meter name, what it counts, the counter.
        let meters = [
            (
                "RemoteCopyBytesPerSec",
                "Bytes of segments copied to remote storage",
                &t.copy_bytes,
            ),
            (
                "RemoteCopyRequestsPerSec",
                "Segment uploads started",
                &t.copy_requests,
            ),
            (
                "RemoteCopyErrorsPerSec",
                "Segment uploads that failed",
                &t.copy_errors,
            ),
            (
                "RemoteFetchBytesPerSec",
                "Bytes served from remote storage",
                &f.bytes,
            ),
            (
                "RemoteFetchRequestsPerSec",
                "Remote reads started",
                &f.requests,
            ),
            (
                "RemoteFetchErrorsPerSec",
                "Remote reads that failed",
                &f.errors,
            ),
            (
                "RemoteDeleteRequestsPerSec",
                "Remote segment deletions attempted",
                &t.delete_requests,
            ),
            (
                "RemoteDeleteErrorsPerSec",
                "Remote segment deletions that failed",
                &t.delete_errors,
            ),
            // Kafka's DelayedRemoteFetchMetrics ExpiresPerSec.
            (
                "RemoteFetchExpiresPerSec",
                "Remote reads past remote.fetch.max.wait.ms",
                &f.expired,
            ),
        ];
        for (name, help, value) in meters {
            counter(out, name, &format!("{help} ({name})."), load(value));
        }
    }

    /// RemoteLogSizeBytes and RemoteLogMetadataCount over every remote partition.
    fn render_remote_log_size(&self, out: &mut String) {
        let (mut size, mut count) = (0i64, 0usize);
        let rlmm = self.active().map(|a| a.rlmm.clone());
        for tp in rlmm.iter().flat_map(|r| r.remote_partitions()) {
            let segments = rlmm
                .as_ref()
                .and_then(|r| r.list_remote_log_segments(&tp).ok())
                .unwrap_or_default();
            count += segments.len();
            size += segments
                .iter()
                .filter(|m| m.state != RemoteLogSegmentState::DeleteSegmentFinished)
                .map(|m| i64::from(m.segment_size_in_bytes))
                .sum::<i64>();
        }
        gauge(
            out,
            "RemoteLogSizeBytes",
            "Bytes of all remote segments (RemoteLogSizeBytes).",
            size as f64,
        );
        gauge(
            out,
            "RemoteLogMetadataCount",
            "Remote segment metadata entries (RemoteLogMetadataCount).",
            count as f64,
        );
    }

    /// Block and index cache counters.
    fn render_cache(&self, out: &mut String) {
        let c = self.reader.block_cache().stats().snapshot();
        let i = self.reader.index_cache().stats().snapshot();
        let cache = [
            (
                "shale_remote_cache_hits_total",
                "Block cache hits.",
                c.hits,
                i.hits,
            ),
            (
                "shale_remote_cache_misses_total",
                "Block cache misses.",
                c.misses,
                i.misses,
            ),
            (
                "shale_remote_cache_fetched_bytes_total",
                "Bytes fetched from the object store into the cache.",
                c.bytes_fetched,
                i.bytes_fetched,
            ),
            (
                "shale_remote_cache_gets_total",
                "Ranged GETs issued by the cache.",
                c.gets,
                i.gets,
            ),
        ];
        for (name, help, blocks, indexes) in cache {
            let samples = [
                ("{cache=\"block\"}".to_string(), blocks as f64),
                ("{cache=\"index\"}".to_string(), indexes as f64),
            ];
            family(out, name, "counter", help, &samples);
        }
        family(
            out,
            "shale_remote_cache_readahead_blocks_total",
            "counter",
            "Blocks fetched by read-ahead.",
            &[(String::new(), c.readahead_blocks as f64)],
        );
    }

    /// Object-store requests, errors and latency by kind.
    fn render_store(&self, out: &mut String) {
        let s = self.store_stats.snapshot();
        let kinds = [
            (OpKind::Put, "PUT"),
            (OpKind::Get, "GET"),
            (OpKind::List, "LIST"),
            (OpKind::Delete, "DELETE"),
            (OpKind::Head, "HEAD"),
        ];
        let label = |k: &str| format!("{{kind=\"{k}\"}}");
        let requests: Vec<_> = kinds
            .iter()
            .map(|(op, k)| (label(k), s.kind(*op).count as f64))
            .collect();
        let errors: Vec<_> = kinds
            .iter()
            .map(|(op, k)| (label(k), s.kind(*op).errors as f64))
            .collect();
        let latency: Vec<_> = kinds
            .iter()
            .map(|(op, k)| (label(k), s.kind(*op).latency_us_sum as f64 / 1e6))
            .collect();
        family(
            out,
            "shale_object_store_requests_total",
            "counter",
            "Object-store requests by kind.",
            &requests,
        );
        family(
            out,
            "shale_object_store_errors_total",
            "counter",
            "Failed object-store requests by kind.",
            &errors,
        );
        family(
            out,
            "shale_object_store_latency_seconds_sum",
            "counter",
            "Total object-store request latency by kind.",
            &latency,
        );
    }
}
