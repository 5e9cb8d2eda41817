//! The running broker's state: the metadata controller, the replica manager (hosted partitions
//! and their logs), the group coordinator, fetch sessions and metrics.
//!
//! Metadata is the source of truth. After every metadata change (and at start-up)
//! [`Broker::reconcile`] hands the image to the [`ReplicaManager`], which creates, re-configures,
//! re-roles and deletes partitions; the broker then syncs the metrics that follow the hosted set.

use crate::config::BrokerConfig;
use crate::fetch_session::FetchSessions;
use crate::metrics::Metrics;
pub use crate::replica::{effective_log_config, Partition};
use crate::replica::{HostedMetrics, ReplicaManager};
use crate::topic_metrics::{self, LogGauges, TopicMetrics};
use parking_lot::Mutex;
use shale_common::Clock;
use shale_local_log::{LogConfig, LogManager};
use shale_raft::{Controller, MetadataImage, TopicImage};
use std::sync::Arc;

/// Everything a request handler can reach.
#[derive(Debug)]
pub struct Broker {
    /// Static configuration.
    pub config: BrokerConfig,
    /// Injected time.
    pub clock: Arc<dyn Clock>,
    /// The metadata controller (single voter).
    pub controller: Arc<Controller>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Per-topic meters (BrokerTopicMetrics), for the hosted topics only.
    pub topic_metrics: Arc<TopicMetrics>,
    /// KIP-227 incremental fetch sessions.
    pub fetch_sessions: FetchSessions,
    /// The classic group coordinator.
    pub groups: crate::group::GroupCoordinator,
    /// The transaction coordinator.
    pub txns: crate::txn::TxnCoordinator,
    /// ACL enforcement (`authorizer.class.name`).
    pub authorizer: crate::acl::Authorizer,
    /// Client quotas' rates.
    pub quotas: crate::quota::QuotaManager,
    /// Tiered storage, once started (absent when `remote.log.storage.system.enable=false`).
    tiering: std::sync::OnceLock<Arc<crate::tiering::Tiering>>,
    /// The way to the active controller, in a cluster.
    forwarder: std::sync::OnceLock<crate::api::forward::Forwarder>,
    /// TLS contexts, once loaded (none: every listener is plain TCP).
    tls: std::sync::OnceLock<Arc<crate::tls::Contexts>>,
    replicas: Arc<ReplicaManager>,
    producer_ids: Mutex<(i64, i64)>,
}

impl Broker {
    /// Assembles a broker from its opened parts and reconciles partitions with the metadata.
    pub fn new(
        config: BrokerConfig,
        clock: Arc<dyn Clock>,
        controller: Arc<Controller>,
        logs: LogManager,
    ) -> Result<Broker, shale_local_log::LogError> {
        let fetch_sessions = FetchSessions::new(config.fetch_session_slots);
        let groups = crate::group::GroupCoordinator::new(
            config.groups.clone(),
            clock.now_ms() as u64 ^ (u64::from(config.node_id as u32) << 48),
        );
        let txns = crate::txn::TxnCoordinator::new(config.txns.clone());
        let topic_metrics = Arc::new(TopicMetrics::new(config.metrics_topic_labels_max));
        let metrics = Metrics::new();
        let hosted = HostedMetrics {
            topics: topic_metrics.clone(),
            leaders: metrics.partitions.clone(),
        };
        let replicas = ReplicaManager::new(config.node_id, logs, config.log_config.clone(), hosted);
        let authorizer = crate::acl::Authorizer::new(config.authz.clone());
        let (count, ms) = config.quota_windows;
        let windows = crate::quota::Windows { count, ms };
        let (count, ms) = config.controller_quota_windows;
        let mutation_windows = crate::quota::Windows { count, ms };
        let quotas = crate::quota::QuotaManager::new(clock.clone(), windows, mutation_windows);
        let broker = Broker {
            authorizer,
            quotas,
            config,
            clock,
            controller,
            replicas: Arc::new(replicas),
            metrics,
            topic_metrics,
            fetch_sessions,
            groups,
            txns,
            tiering: std::sync::OnceLock::new(),
            forwarder: std::sync::OnceLock::new(),
            tls: std::sync::OnceLock::new(),
            producer_ids: Mutex::new((0, 0)),
        };
        broker.replicas.delete_strays()?;
        // Partitions whose logs cannot be created stay offline; the broker still starts.
        if let Err(e) = broker.reconcile() {
            tracing::error!(error = %e, "some partition logs could not be created at start-up");
        }
        Ok(broker)
    }

    /// The finalized `transaction.version` (0 when the cluster has none).
    pub fn transaction_version(&self) -> i16 {
        let image = self.image();
        image
            .features
            .get("transaction.version")
            .copied()
            .unwrap_or(0)
    }

    /// The `__transaction_state` value version written: 1 (flexible, with the previous / next
    /// producer ids and the client's transaction version) once `transaction.version` 1 or more
    /// is finalized, else 0, as Kafka writes it.
    pub fn txn_log_value_version(&self) -> i16 {
        i16::from(self.transaction_version() >= 1)
    }

    /// Tiered storage, if enabled and started.
    pub fn tiering(&self) -> Option<&Arc<crate::tiering::Tiering>> {
        self.tiering.get()
    }

    /// Installs the started tiered storage (once).
    pub fn set_tiering(&self, tiering: Arc<crate::tiering::Tiering>) {
        let _ = self.tiering.set(tiering);
    }

    /// The way to the active controller (a node of a multi-node cluster only).
    pub fn forwarder(&self) -> Option<&crate::api::forward::Forwarder> {
        self.forwarder.get()
    }

    /// Installs the way to the active controller (once).
    pub fn set_forwarder(&self, forwarder: crate::api::forward::Forwarder) {
        let _ = self.forwarder.set(forwarder);
    }

    /// Installs the TLS contexts (once, at start-up).
    pub fn set_tls(&self, contexts: Arc<crate::tls::Contexts>) {
        let _ = self.tls.set(contexts);
    }

    /// How this broker connects to `listener` on other nodes (plain TCP unless it speaks TLS).
    pub fn dialer(&self, listener: &str) -> crate::tls::Dialer {
        self.tls
            .get()
            .map(|t| t.dialer(listener))
            .unwrap_or_default()
    }

    /// Brings the TLS listeners up to date with the dynamic `ssl.*` configs and the store
    /// files (blocking; see [`crate::tls::Contexts::refresh`]).
    pub fn refresh_tls(&self) {
        if let Some(tls) = self.tls.get() {
            tls.refresh(&self.config, &self.dynamic_ssl());
        }
    }

    /// [`Broker::refresh_tls`] only when the dynamic `ssl.*` configs changed (store files are
    /// checked by the housekeeping round): what following the metadata log calls.
    pub fn refresh_tls_if_changed(&self) {
        if let Some(tls) = self.tls.get() {
            tls.refresh_if_changed(&self.config, &self.dynamic_ssl());
        }
    }

    /// The dynamic `ssl.*` configs of this broker (cluster-wide default, then its own).
    fn dynamic_ssl(&self) -> std::collections::BTreeMap<String, String> {
        let image = self.image();
        let is_ssl =
            |k: &str| k.starts_with("ssl.") || crate::config::ssl::listener_ssl_key(k).is_some();
        let mut dynamic = std::collections::BTreeMap::new();
        for scope in ["".to_string(), self.config.node_id.to_string()] {
            if let Some(configs) = image.broker_configs.get(&scope) {
                dynamic.extend(
                    configs
                        .iter()
                        .filter(|(k, _)| is_ssl(k))
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
            }
        }
        dynamic
    }

    /// How this broker connects to other brokers (`inter.broker.listener.name`).
    pub fn inter_broker_dialer(&self) -> crate::tls::Dialer {
        self.dialer(&self.config.replication.inter_broker_listener)
    }

    /// Every metric in Prometheus text form.
    pub fn render_metrics(&self) -> String {
        let files = self.replicas.logs().open_files();
        self.metrics.log_open_files.set(files.open() as i64);
        self.metrics.log_pinned_files.set(files.pinned() as i64);
        self.metrics
            .log_open_files_budget
            .set(files.budget() as i64);
        let failing = self
            .replicas
            .all()
            .iter()
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
            .replicas
            .all()
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

    /// The hosted partitions, their roles and logs.
    pub fn replicas(&self) -> &Arc<ReplicaManager> {
        &self.replicas
    }

    /// The local partition logs.
    pub fn logs(&self) -> &LogManager {
        self.replicas.logs()
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

    /// Applies the controller's current image to the hosted partitions (see
    /// [`ReplicaManager::apply`]). A partition whose log cannot be created is skipped (the first
    /// such error is returned) and retried next time.
    pub fn reconcile(&self) -> Result<(), shale_local_log::LogError> {
        self.replicas.apply(self.image())
    }

    /// Takes the next producer id of the block in hand; `None` when it is used up.
    pub fn take_producer_id(&self) -> Option<i64> {
        let mut ids = self.producer_ids.lock();
        (ids.0 < ids.1).then(|| {
            ids.0 += 1;
            ids.0 - 1
        })
    }

    /// Puts a block of producer ids (first, length) from the controller in hand. A block that
    /// arrives while another is still in hand (two requests refilled at once) is dropped: its
    /// ids are never handed out, so no id is given twice.
    pub fn add_producer_ids(&self, (first, len): (i64, i32)) {
        let mut ids = self.producer_ids.lock();
        if ids.0 >= ids.1 {
            *ids = (first, first + i64::from(len));
        }
    }
}
