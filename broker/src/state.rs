//! The running broker's state: the metadata controller, the log manager, and the partitions this
//! node leads, each publishing its progress to the requests that wait on it.
//!
//! Metadata is the source of truth. After every metadata change (and at start-up) the broker
//! reconciles its partitions with the image: logs are created for new partitions, re-configured
//! when topic configs change, and deleted when their topic is gone. Appends to different
//! partitions never share a lock: each `Partition` owns its `Log`, whose append lock is its own.

use crate::config::BrokerConfig;
use crate::fetch_session::FetchSessions;
use crate::metrics::Metrics;
use crate::purgatory::{Progress, ProgressWatch};
use crate::topic_metrics::{self, LogGauges, TopicMetrics};
use parking_lot::{Mutex, RwLock};
use shale_common::{Clock, TopicPartition};
use shale_local_log::{Log, LogConfig, LogManager};
use shale_raft::{Controller, MetadataImage, TopicImage};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// A partition led by this broker.
#[derive(Debug)]
pub struct Partition {
    /// Identity.
    pub tp: TopicPartition,
    /// The topic's id.
    pub topic_id: Uuid,
    /// Its log.
    pub log: Arc<Log>,
    leader_epoch: AtomicI32,
    progress: ProgressWatch,
}

impl Partition {
    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Relaxed)
    }

    /// The high watermark. With a single replica every appended record is committed.
    pub fn high_watermark(&self) -> i64 {
        self.log.log_end_offset()
    }

    /// Where requests that wait on this partition subscribe.
    pub fn progress(&self) -> &ProgressWatch {
        &self.progress
    }

    /// Publishes the log's current end offset and high watermark to waiting requests. Call it
    /// after every append.
    pub fn publish_progress(&self) {
        self.progress.publish(self.current_progress());
    }

    fn current_progress(&self) -> Progress {
        Progress {
            log_end_offset: self.log.log_end_offset(),
            high_watermark: self.high_watermark(),
            closed: false,
        }
    }
}

/// Everything a request handler can reach.
#[derive(Debug)]
pub struct Broker {
    /// Static configuration.
    pub config: BrokerConfig,
    /// Injected time.
    pub clock: Arc<dyn Clock>,
    /// The metadata controller (single voter).
    pub controller: Controller,
    /// Local partition logs.
    pub logs: LogManager,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Per-topic meters (BrokerTopicMetrics), for the hosted topics only.
    pub topic_metrics: Arc<TopicMetrics>,
    /// KIP-227 incremental fetch sessions.
    pub fetch_sessions: FetchSessions,
    /// The classic group coordinator.
    pub groups: crate::group::GroupCoordinator,
    /// Tiered storage, once started (absent when `remote.log.storage.system.enable=false`).
    tiering: std::sync::OnceLock<Arc<crate::tiering::Tiering>>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    producer_ids: Mutex<(i64, i64)>,
    reconcile_lock: Mutex<()>,
}

impl Broker {
    /// Assembles a broker from its opened parts and reconciles partitions with the metadata.
    pub fn new(
        config: BrokerConfig,
        clock: Arc<dyn Clock>,
        controller: Controller,
        logs: LogManager,
    ) -> Result<Broker, shale_local_log::LogError> {
        let fetch_sessions = FetchSessions::new(config.fetch_session_slots);
        let groups = crate::group::GroupCoordinator::new(
            config.groups.clone(),
            clock.now_ms() as u64 ^ (u64::from(config.node_id as u32) << 48),
        );
        let topic_metrics = Arc::new(TopicMetrics::new(config.metrics_topic_labels_max));
        let broker = Broker {
            config,
            clock,
            controller,
            logs,
            metrics: Metrics::new(),
            topic_metrics,
            fetch_sessions,
            groups,
            tiering: std::sync::OnceLock::new(),
            partitions: RwLock::new(HashMap::new()),
            producer_ids: Mutex::new((0, 0)),
            reconcile_lock: Mutex::new(()),
        };
        for tp in broker.logs.stray_partitions() {
            tracing::info!(partition = %tp, "deleting log of a topic absent from metadata");
            broker.logs.delete(&tp)?;
        }
        // Partitions whose logs cannot be created stay offline; the broker still starts.
        if let Err(e) = broker.reconcile() {
            tracing::error!(error = %e, "some partition logs could not be created at start-up");
        }
        Ok(broker)
    }

    /// Tiered storage, if enabled and started.
    pub fn tiering(&self) -> Option<&Arc<crate::tiering::Tiering>> {
        self.tiering.get()
    }

    /// Installs the started tiered storage (once).
    pub fn set_tiering(&self, tiering: Arc<crate::tiering::Tiering>) {
        let _ = self.tiering.set(tiering);
    }

    /// Every metric in Prometheus text form.
    pub fn render_metrics(&self) -> String {
        let files = self.logs.open_files();
        self.metrics.log_open_files.set(files.open() as i64);
        self.metrics.log_pinned_files.set(files.pinned() as i64);
        self.metrics
            .log_open_files_budget
            .set(files.budget() as i64);
        let failing = self
            .partitions
            .read()
            .values()
            .filter(|p| p.log.appends_failing())
            .count();
        self.metrics.partitions_appends_failing.set(failing as i64);
        let mut text = self.metrics.render();
        let mut families = self.topic_metrics.families();
        if let Some(t) = self.tiering() {
            families.extend(t.topic_families(&self.topic_metrics));
            text.push_str(&t.render_metrics());
        }
        topic_metrics::render_families(&mut text, &families);
        self.topic_metrics.render_unlabelled(&mut text);
        topic_metrics::render_log_gauges(&mut text, &self.log_gauges());
        text
    }

    /// Kafka's per-partition Log gauges of the labelled topics' partitions, in name order.
    fn log_gauges(&self) -> Vec<LogGauges> {
        let mut gauges: Vec<LogGauges> = self
            .all_partitions()
            .iter()
            .filter(|p| self.topic_metrics.is_labelled(&p.tp.topic))
            .map(|p| LogGauges {
                topic: p.tp.topic.to_string(),
                partition: p.tp.partition,
                size: p.log.size_in_bytes(),
                segments: p.log.segment_count(),
                log_start_offset: p.log.log_start_offset(),
                log_end_offset: p.log.log_end_offset(),
            })
            .collect();
        gauges.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        gauges
    }

    /// The current metadata image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.controller.image()
    }

    /// A partition this broker leads.
    pub fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().get(tp).cloned()
    }

    /// Every partition this broker leads.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// The effective log config of a topic: broker defaults, dynamic broker defaults, then the
    /// topic's own overrides.
    pub fn log_config_for(&self, image: &MetadataImage, topic: &TopicImage) -> LogConfig {
        self.effective_log_config(image, &topic.configs)
    }

    /// Broker defaults, then dynamic cluster-wide defaults, then `overrides`.
    pub fn effective_log_config(
        &self,
        image: &MetadataImage,
        overrides: &std::collections::BTreeMap<String, String>,
    ) -> LogConfig {
        effective_log_config(&self.config.log_config, image, overrides)
    }

    /// Brings local partitions in line with the metadata image. A partition whose log cannot be
    /// created is skipped (logged; the first such error is returned) and retried next time.
    pub fn reconcile(&self) -> Result<(), shale_local_log::LogError> {
        let _guard = self.reconcile_lock.lock();
        let image = self.image();
        let mut wanted: HashMap<TopicPartition, (Uuid, i32, LogConfig)> = HashMap::new();
        for topic in image.topics.values() {
            let cfg = self.log_config_for(&image, topic);
            for (&p, part) in &topic.partitions {
                if part.leader == self.config.node_id {
                    let tp = TopicPartition::new(topic.name.as_str(), p);
                    wanted.insert(tp, (topic.id, part.leader_epoch, cfg.clone()));
                }
            }
        }
        let current: Vec<(TopicPartition, Arc<Partition>)> = self
            .partitions
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (tp, part) in current {
            match wanted.get(&tp) {
                Some((id, _, _)) if *id == part.topic_id => {}
                _ => {
                    self.partitions.write().remove(&tp);
                    part.progress.close();
                    self.logs.delete(&tp)?;
                    tracing::info!(partition = %tp, "deleted partition");
                }
            }
        }
        let mut failed = None;
        for (tp, (topic_id, epoch, cfg)) in wanted {
            let existing = self.partition(&tp);
            match existing {
                Some(p) => {
                    if p.log.config() != cfg {
                        p.log.update_config(cfg);
                    }
                    p.leader_epoch.store(epoch, Ordering::Relaxed);
                }
                None => match self.logs.get_or_create(&tp, topic_id, cfg) {
                    Ok(log) => {
                        let part = Arc::new(Partition {
                            tp: tp.clone(),
                            topic_id,
                            log,
                            leader_epoch: AtomicI32::new(epoch),
                            progress: ProgressWatch::new(Progress::default()),
                        });
                        part.publish_progress();
                        self.partitions.write().insert(tp, part);
                    }
                    // The others still get their logs; this one is retried at the next change.
                    Err(e) => {
                        tracing::error!(partition = %tp, error = %e, "cannot create the log of a partition");
                        failed.get_or_insert(e);
                    }
                },
            }
        }
        let partitions = self.partitions.read();
        self.metrics.partitions.set(partitions.len() as i64);
        self.topic_metrics
            .sync(partitions.keys().map(|tp| tp.topic.as_ref()));
        drop(partitions);
        failed.map_or(Ok(()), Err)
    }

    /// Hands out a producer id, fetching a new block from the controller when needed.
    pub fn next_producer_id(&self) -> Result<i64, shale_raft::ControllerError> {
        let mut ids = self.producer_ids.lock();
        if ids.0 >= ids.1 {
            let (first, len) = self.controller.allocate_producer_ids(self.config.node_id)?;
            *ids = (first, first + len as i64);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }
}

/// A topic's effective log config: the broker's static defaults, then dynamic cluster-wide
/// defaults (`log.retention.ms`, … set through AlterConfigs), then the topic's own overrides.
pub fn effective_log_config(
    static_defaults: &LogConfig,
    image: &MetadataImage,
    overrides: &std::collections::BTreeMap<String, String>,
) -> LogConfig {
    let mut cfg = static_defaults.clone();
    if let Some(dynamic) = image.broker_configs.get("") {
        let pairs = dynamic_topic_defaults(dynamic);
        if let Ok(c) = cfg.with_overrides(pairs.iter().map(|(k, v)| (*k, v.as_str()))) {
            cfg = c;
        }
    }
    match cfg.with_overrides(overrides.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid stored topic config");
            cfg
        }
    }
}

/// Dynamic cluster-wide broker configs that are topic defaults (`log.retention.ms`, …), mapped to
/// topic config names.
fn dynamic_topic_defaults(
    dynamic: &std::collections::BTreeMap<String, String>,
) -> Vec<(&'static str, String)> {
    shale_local_log::TOPIC_CONFIGS
        .iter()
        .filter_map(|def| {
            def.broker_synonyms
                .iter()
                .find_map(|s| dynamic.get(*s))
                .map(|v| (def.name, v.clone()))
        })
        .collect()
}
