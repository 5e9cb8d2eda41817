//! Tiered-storage metrics, rendered at scrape time from the live counters.
//!
//! Kafka's BrokerTopicMetrics of KIP-405 (§6) and KIP-963 (copy lag, remote log size) are
//! handed to [`crate::topic_metrics`] as families with per-topic values (summed over each
//! topic's partitions), e.g. `RemoteCopyBytesPerSec` →
//! `kafka_server_brokertopicmetrics_remotecopybytespersec_total{topic="T"}` (meters are
//! cumulative counters; rates are the scraper's job). Shale adds the block cache and the object
//! store: `shale_remote_cache_*` and `shale_object_store_requests_total{kind}` with latency sums.

use super::Tiering;
use crate::topic_metrics::{TopicFamily, TopicMetrics};
use shale_remote_log::tasks::TaskStats;
use shale_remote_log::OpKind;
use shale_rlmm::RemoteLogSegmentState;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// Sums per-partition values into a family's per-topic values, keeping labelled topics only.
fn by_topic<'a>(
    values: impl Iterator<Item = (&'a str, f64)>,
    metrics: &TopicMetrics,
) -> Vec<(String, f64)> {
    let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
    for (topic, v) in values {
        *sums.entry(topic).or_default() += v;
    }
    sums.into_iter()
        .filter(|(t, _)| metrics.is_labelled(t))
        .map(|(t, v)| (t.to_string(), v))
        .collect()
}

impl Tiering {
    /// The Prometheus text of the tiering metrics that have no topic label (cache, store);
    /// the topic-labelled ones come from [`Tiering::topic_families`].
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        self.render_cache(&mut out);
        self.render_store(&mut out);
        out
    }

    /// The tiering BrokerTopicMetrics: copy and delete meters and lag per topic (summed over
    /// its partitions), the remote log size, and the broker-wide remote-fetch expirations.
    pub fn topic_families(&self, metrics: &TopicMetrics) -> Vec<TopicFamily> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let zero = TaskStats::default();
        let total = self.active().map_or(&zero, |a| &a.rlm.stats);
        let partitions = self
            .active()
            .map(|a| a.rlm.stats_by_partition())
            .unwrap_or_default();
        type Field = fn(&TaskStats) -> &AtomicU64;
        // Kafka's name, what it counts, a gauge?, the field.
        let fields: [(&'static str, &'static str, bool, Field); 7] = [
            (
                "RemoteCopyBytesPerSec",
                "Bytes of segments copied to remote storage",
                false,
                |s| &s.copy_bytes,
            ),
            (
                "RemoteCopyRequestsPerSec",
                "Segment uploads started",
                false,
                |s| &s.copy_requests,
            ),
            (
                "RemoteCopyErrorsPerSec",
                "Segment uploads that failed",
                false,
                |s| &s.copy_errors,
            ),
            (
                "RemoteDeleteRequestsPerSec",
                "Remote segment deletions attempted",
                false,
                |s| &s.delete_requests,
            ),
            (
                "RemoteDeleteErrorsPerSec",
                "Remote segment deletions that failed",
                false,
                |s| &s.delete_errors,
            ),
            (
                "RemoteCopyLagBytes",
                "Bytes of rolled segments eligible for upload, not yet uploaded",
                true,
                |s| &s.copy_lag_bytes,
            ),
            (
                "RemoteCopyLagSegments",
                "Rolled segments eligible for upload, not yet uploaded",
                true,
                |s| &s.copy_lag_segments,
            ),
        ];
        let mut families: Vec<TopicFamily> = fields
            .into_iter()
            .map(|(kafka_name, help, gauge, field)| {
                let per_partition = partitions
                    .iter()
                    .map(|(tp, s)| (&*tp.topic, load(field(s))));
                let by_topic = by_topic(per_partition, metrics);
                // Lag exists per partition only: the all-topics value is their sum.
                let total = match gauge {
                    true => partitions.iter().map(|(_, s)| load(field(s))).sum(),
                    false => load(field(total)),
                };
                TopicFamily {
                    kafka_name,
                    help,
                    gauge,
                    total,
                    by_topic,
                }
            })
            .collect();
        families.extend(self.remote_log_size_families(metrics));
        families.push(TopicFamily {
            kafka_name: "RemoteFetchExpiresPerSec",
            help: "Remote reads past remote.fetch.max.wait.ms (Kafka's DelayedRemoteFetchMetrics ExpiresPerSec)",
            gauge: false,
            total: load(&self.fetch_stats.expired),
            by_topic: Vec::new(),
        });
        families
    }

    /// RemoteLogSizeBytes and RemoteLogMetadataCount, per topic and in all.
    fn remote_log_size_families(&self, metrics: &TopicMetrics) -> [TopicFamily; 2] {
        let mut sizes = Vec::new();
        let mut counts = Vec::new();
        let rlmm = self.active().map(|a| a.rlmm.clone());
        for tp in rlmm.iter().flat_map(|r| r.remote_partitions()) {
            let segments = rlmm
                .as_ref()
                .and_then(|r| r.list_remote_log_segments(&tp).ok())
                .unwrap_or_default();
            let size: i64 = segments
                .iter()
                .filter(|m| m.state != RemoteLogSegmentState::DeleteSegmentFinished)
                .map(|m| i64::from(m.segment_size_in_bytes))
                .sum();
            sizes.push((tp.topic.clone(), size as f64));
            counts.push((tp.topic, segments.len() as f64));
        }
        let family = |kafka_name, help, values: &[(std::sync::Arc<str>, f64)]| TopicFamily {
            kafka_name,
            help,
            gauge: true,
            total: values.iter().map(|(_, v)| v).sum(),
            by_topic: by_topic(values.iter().map(|(t, v)| (&**t, *v)), metrics),
        };
        [
            family("RemoteLogSizeBytes", "Bytes of all remote segments", &sizes),
            family(
                "RemoteLogMetadataCount",
                "Remote segment metadata entries",
                &counts,
            ),
        ]
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
