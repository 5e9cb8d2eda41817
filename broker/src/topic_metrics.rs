//! Per-topic metrics: Kafka's BrokerTopicMetrics meters with a `topic` label beside the
//! all-topics value, and the rendering of every topic-labelled family (these meters, the
//! tiering ones, Kafka's per-partition `Log` gauges).
//!
//! Names follow the Prometheus JMX exporter's rendering of Kafka's MBeans: the meter
//! `kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec[,topic=T]` becomes the counter
//! `kafka_server_brokertopicmetrics_bytesinpersec_total`, whose sample without labels is the
//! all-topics MBean and whose `{topic="T"}` samples are the per-topic ones (sum those, not all).
//!
//! Label sets are bounded by construction. A topic has series only while this broker hosts it:
//! reconciliation registers hosted topics ([`TopicMetrics::sync`]) and drops deleted ones, and a
//! request never creates an entry (a produce or fetch naming an unknown topic counts in the
//! all-topics value only — Kafka, by contrast, creates a topic's meters for any name a client
//! sends). At most `shale.metrics.topic.labels.max` topics are labelled at once (in name order at
//! start-up, then in the order they appear); the others count in the all-topics values only, and
//! `shale_metrics_topics_unlabelled` says how many there are.

use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The BrokerTopicMetrics meters the request path counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meter {
    /// Record bytes appended by Produce.
    BytesIn,
    /// Records appended by Produce.
    MessagesIn,
    /// Record bytes refused by Produce (too large, corrupt, invalid).
    BytesRejected,
    /// Produce requests, counted per partition as Kafka does.
    TotalProduceRequests,
    /// Of those, the ones that failed (other than for routing: unknown partition).
    FailedProduceRequests,
    /// Fetch requests, counted per partition.
    TotalFetchRequests,
    /// Of those, the ones that failed (storage errors, not offsets out of range).
    FailedFetchRequests,
    /// Record bytes served by Fetch (local and remote).
    BytesOut,
    /// Records rebuilt on produce (`compression.type` recompression).
    ProduceMessageConversions,
    /// Bytes read from the remote tier.
    RemoteFetchBytes,
    /// Remote reads started.
    RemoteFetchRequests,
    /// Remote reads that failed.
    RemoteFetchErrors,
}

const METERS: usize = 12;

impl Meter {
    /// Every meter, in rendering order.
    pub const ALL: [Meter; METERS] = [
        Meter::BytesIn,
        Meter::MessagesIn,
        Meter::BytesRejected,
        Meter::TotalProduceRequests,
        Meter::FailedProduceRequests,
        Meter::TotalFetchRequests,
        Meter::FailedFetchRequests,
        Meter::BytesOut,
        Meter::ProduceMessageConversions,
        Meter::RemoteFetchBytes,
        Meter::RemoteFetchRequests,
        Meter::RemoteFetchErrors,
    ];

    /// Kafka's MBean name and a description.
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Meter::BytesIn => ("BytesInPerSec", "Record bytes appended by Produce"),
            Meter::MessagesIn => ("MessagesInPerSec", "Records appended by Produce"),
            Meter::BytesRejected => ("BytesRejectedPerSec", "Record bytes refused by Produce"),
            Meter::TotalProduceRequests => (
                "TotalProduceRequestsPerSec",
                "Produce requests, per partition",
            ),
            Meter::FailedProduceRequests => (
                "FailedProduceRequestsPerSec",
                "Failed produce requests, per partition",
            ),
            Meter::TotalFetchRequests => {
                ("TotalFetchRequestsPerSec", "Fetch requests, per partition")
            }
            Meter::FailedFetchRequests => (
                "FailedFetchRequestsPerSec",
                "Failed fetch requests, per partition",
            ),
            Meter::BytesOut => ("BytesOutPerSec", "Record bytes served by Fetch"),
            Meter::ProduceMessageConversions => (
                "ProduceMessageConversionsPerSec",
                "Records rebuilt on produce (compression.type)",
            ),
            Meter::RemoteFetchBytes => ("RemoteFetchBytesPerSec", "Bytes read from remote storage"),
            Meter::RemoteFetchRequests => ("RemoteFetchRequestsPerSec", "Remote reads started"),
            Meter::RemoteFetchErrors => ("RemoteFetchErrorsPerSec", "Remote reads that failed"),
        }
    }
}

/// One topic's meters (or the all-topics ones).
#[derive(Debug, Default)]
pub struct TopicStats {
    counts: [AtomicU64; METERS],
}

impl TopicStats {
    /// Adds `n` to a meter.
    pub fn add(&self, meter: Meter, n: u64) {
        self.counts[meter as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// A meter's value.
    pub fn get(&self, meter: Meter) -> u64 {
        self.counts[meter as usize].load(Ordering::Relaxed)
    }
}

/// The meters of every labelled topic and of all topics together.
#[derive(Debug)]
pub struct TopicMetrics {
    max_labelled: usize,
    all: TopicStats,
    topics: RwLock<BTreeMap<String, Arc<TopicStats>>>,
    unlabelled: AtomicUsize,
}

impl TopicMetrics {
    /// Labels at most `max_labelled` topics.
    pub fn new(max_labelled: usize) -> TopicMetrics {
        TopicMetrics {
            max_labelled,
            all: TopicStats::default(),
            topics: RwLock::new(BTreeMap::new()),
            unlabelled: AtomicUsize::new(0),
        }
    }

    /// A labelled topic's meters.
    pub fn topic(&self, topic: &str) -> Option<Arc<TopicStats>> {
        self.topics.read().get(topic).cloned()
    }

    /// Whether `topic` has its own series.
    pub fn is_labelled(&self, topic: &str) -> bool {
        self.topics.read().contains_key(topic)
    }

    /// Adds `n` to `meter` of all topics and of `topic`'s own meters when it has them.
    pub fn record(&self, topic: Option<&TopicStats>, meter: Meter, n: u64) {
        if n == 0 {
            return;
        }
        self.all.add(meter, n);
        if let Some(t) = topic {
            t.add(meter, n);
        }
    }

    /// Makes the labelled set follow the hosted topics: deleted topics lose their series, new
    /// ones get series while there is room.
    pub fn sync<'a>(&self, hosted: impl IntoIterator<Item = &'a str>) {
        let mut hosted: Vec<&str> = hosted.into_iter().collect();
        hosted.sort_unstable();
        hosted.dedup();
        let mut topics = self.topics.write();
        topics.retain(|name, _| hosted.binary_search(&name.as_str()).is_ok());
        for name in &hosted {
            if topics.len() >= self.max_labelled {
                break;
            }
            if !topics.contains_key(*name) {
                topics.insert((*name).to_string(), Arc::default());
            }
        }
        let unlabelled = hosted.len() - hosted.iter().filter(|n| topics.contains_key(**n)).count();
        self.unlabelled.store(unlabelled, Ordering::Relaxed);
    }

    /// The request-path meters as families.
    pub fn families(&self) -> Vec<TopicFamily> {
        let topics = self.topics.read();
        Meter::ALL
            .iter()
            .map(|&m| {
                let (kafka_name, help) = m.describe();
                TopicFamily {
                    kafka_name,
                    help,
                    gauge: false,
                    total: self.all.get(m) as f64,
                    by_topic: topics
                        .iter()
                        .map(|(t, s)| (t.clone(), s.get(m) as f64))
                        .collect(),
                }
            })
            .collect()
    }

    /// `shale_metrics_topics_unlabelled`.
    pub fn render_unlabelled(&self, out: &mut String) {
        let n = self.unlabelled.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP shale_metrics_topics_unlabelled Hosted topics without per-topic series (over shale.metrics.topic.labels.max)\n\
             # TYPE shale_metrics_topics_unlabelled gauge\nshale_metrics_topics_unlabelled {n}"
        );
    }
}

/// One BrokerTopicMetrics family: the all-topics value and the labelled topics' values.
#[derive(Debug, Clone)]
pub struct TopicFamily {
    /// Kafka's MBean name, e.g. `BytesInPerSec`.
    pub kafka_name: &'static str,
    /// Description.
    pub help: &'static str,
    /// A gauge (else a cumulative counter).
    pub gauge: bool,
    /// All topics.
    pub total: f64,
    /// Labelled topics, by name.
    pub by_topic: Vec<(String, f64)>,
}

/// Renders BrokerTopicMetrics families: the unlabelled all-topics sample, then one per topic.
pub fn render_families(out: &mut String, families: &[TopicFamily]) {
    for f in families {
        let base = format!(
            "kafka_server_brokertopicmetrics_{}",
            f.kafka_name.to_lowercase()
        );
        let (name, kind) = if f.gauge {
            (base, "gauge")
        } else {
            (format!("{base}_total"), "counter")
        };
        let _ = writeln!(out, "# HELP {name} {} ({}).", f.help, f.kafka_name);
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {}", f.total);
        for (topic, value) in &f.by_topic {
            let _ = writeln!(out, "{name}{{topic=\"{topic}\"}} {value}");
        }
    }
}

/// One partition's `kafka.log:type=Log` gauges.
#[derive(Debug, Clone)]
pub struct LogGauges {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// `Size`: bytes of the local log.
    pub size: u64,
    /// `NumLogSegments`.
    pub segments: usize,
    /// `LogStartOffset`.
    pub log_start_offset: i64,
    /// `LogEndOffset`.
    pub log_end_offset: i64,
}

/// Renders Kafka's per-partition Log gauges (`kafka_log_log_size{topic,partition}`, …).
pub fn render_log_gauges(out: &mut String, partitions: &[LogGauges]) {
    type Field = fn(&LogGauges) -> f64;
    let gauges: [(&str, &str, Field); 4] = [
        ("size", "Bytes of the partition's local log (Size)", |g| {
            g.size as f64
        }),
        (
            "numlogsegments",
            "Local segments of the partition (NumLogSegments)",
            |g| g.segments as f64,
        ),
        (
            "logstartoffset",
            "The partition's log start offset (LogStartOffset)",
            |g| g.log_start_offset as f64,
        ),
        (
            "logendoffset",
            "The partition's log end offset (LogEndOffset)",
            |g| g.log_end_offset as f64,
        ),
    ];
    for (suffix, help, field) in gauges {
        let name = format!("kafka_log_log_{suffix}");
        let _ = writeln!(out, "# HELP {name} {help}.");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for g in partitions {
            let _ = writeln!(
                out,
                "{name}{{topic=\"{}\",partition=\"{}\"}} {}",
                g.topic,
                g.partition,
                field(g)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hosted_topics_up_to_the_cap_are_labelled() {
        let m = TopicMetrics::new(2);
        m.sync(["b", "a", "c"]);
        assert!(m.is_labelled("a") && m.is_labelled("b") && !m.is_labelled("c"));
        assert_eq!(m.unlabelled.load(Ordering::Relaxed), 1);
        m.record(m.topic("c").as_deref(), Meter::BytesIn, 5);
        m.record(m.topic("a").as_deref(), Meter::BytesIn, 7);
        assert_eq!(m.all.get(Meter::BytesIn), 12);
        // Deleting a frees its slot for c; nothing a request names is ever added.
        m.sync(["b", "c"]);
        assert!(!m.is_labelled("a") && m.is_labelled("c"));
        assert_eq!(m.unlabelled.load(Ordering::Relaxed), 0);
        assert!(m.topic("unknown").is_none());
    }

    #[test]
    fn families_render_the_all_topics_sample_then_each_topic() {
        let m = TopicMetrics::new(10);
        m.sync(["t1"]);
        m.record(m.topic("t1").as_deref(), Meter::MessagesIn, 3);
        m.record(None, Meter::MessagesIn, 1);
        let mut out = String::new();
        render_families(&mut out, &m.families());
        let name = "kafka_server_brokertopicmetrics_messagesinpersec_total";
        assert!(out.contains(&format!(
            "# TYPE {name} counter\n{name} 4\n{name}{{topic=\"t1\"}} 3\n"
        )));
        let mut out = String::new();
        render_log_gauges(
            &mut out,
            &[LogGauges {
                topic: "t1".into(),
                partition: 2,
                size: 10,
                segments: 1,
                log_start_offset: 0,
                log_end_offset: 9,
            }],
        );
        assert!(out.contains("kafka_log_log_logendoffset{topic=\"t1\",partition=\"2\"} 9\n"));
    }
}
