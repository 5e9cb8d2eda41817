//! KIP-405 tiered storage in the broker: wiring of the remote storage manager, the metadata
//! manager over `__remote_log_metadata`, the block-cached reader and the copy/expiration tasks.
//!
//! ```text
//!  start: RemoteStorageConfig (rsm.config.*) ─ object store (S3 | file | memory) ─ instrumented
//!         ─ RLMM on __remote_log_metadata (snapshot + tail replay) ─ finish interrupted deletions
//!  every remote.log.manager.task.interval.ms: for each tiered leader partition: copy, expire;
//!         partitions whose topic is gone: delete their remote data
//!  fetch:  offsets in [log start, local log start) → RemoteLogReader through the block cache
//! ```
//! Shale is object-storage-first: `remote.log.storage.system.enable` defaults to true, and with no
//! S3 settings the remote tier is a directory beside the first log directory.

mod follower;
pub mod metadata_topic;
mod metrics;
mod partition;
mod remote_read;

pub use follower::RemoteStart;
pub use partition::TopicPolicy;
pub use remote_read::RemoteReadError;

use crate::config::BrokerConfig;
use crate::replica::ReplicaManager;
use anyhow::Context;
use metadata_topic::BrokerMetadataTopic;
use shale_common::{Clock, Rng};
use shale_raft::{Controller, CreateTopicSpec};
use shale_remote_log::tasks::{RateLimiter, RemoteLogManager, TaskPools, TieredPartition};
use shale_remote_log::{
    InstrumentedStore, ObjectRsm, RemoteLogReader, RemoteStorageConfig, StoreStats,
};
use shale_rlmm::manager::{RlmmConfig, TopicBasedRemoteLogMetadataManager};
use shale_rlmm::TopicIdPartition;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The broker keys that shape tiering, read once at start-up.
#[derive(Debug, Clone)]
pub struct TieringSettings {
    /// `remote.log.storage.system.enable`.
    pub enabled: bool,
    /// `remote.log.manager.task.interval.ms`.
    pub task_interval: Duration,
    /// `remote.fetch.max.wait.ms`.
    pub fetch_max_wait: Duration,
    /// `remote.log.manager.copy.max.bytes.per.second`.
    pub copy_bytes_per_second: u64,
    /// `remote.log.manager.fetch.max.bytes.per.second`.
    pub fetch_bytes_per_second: u64,
    /// `remote.log.manager.copier.thread.pool.size`: partitions copied concurrently.
    pub copiers: usize,
    /// `remote.log.manager.expiration.thread.pool.size`: partitions expired concurrently.
    pub expirers: usize,
    /// `rsm.config.*` with the prefix stripped.
    pub rsm: Vec<(String, String)>,
    /// `rlmm.config.remote.log.metadata.topic.num.partitions`.
    pub metadata_partitions: i32,
    /// `rlmm.config.remote.log.metadata.topic.replication.factor`.
    pub metadata_replication_factor: i16,
    /// `inter.broker.listener.name`: where other brokers' metadata partitions are reached.
    pub inter_broker_listener: String,
    /// The file remote tier's default root: beside the first log directory.
    pub default_remote_root: PathBuf,
}

/// `remote.log.storage.system.enable`: on by default on a single node (its remote tier is a
/// local directory); a node of a multi-node cluster tiers only when told to, since every broker
/// of the cluster must then share one remote store (`rsm.config.*`).
fn enabled(config: &BrokerConfig) -> bool {
    const KEY: &str = "remote.log.storage.system.enable";
    let on = config.value_of(KEY).as_deref() == Some("true");
    on && (!config.is_multi_node() || config.explicit.contains_key(KEY))
}

/// `rlmm.config.remote.log.metadata.topic.replication.factor` (Kafka's default 3).
const METADATA_REPLICATION_FACTOR: &str = "remote.log.metadata.topic.replication.factor";

impl TieringSettings {
    /// Reads the tiering keys of a validated broker configuration.
    pub fn from_config(config: &BrokerConfig) -> anyhow::Result<Self> {
        let num = |key: &str| -> anyhow::Result<i64> {
            config
                .value_of(key)
                .unwrap_or_default()
                .parse()
                .with_context(|| format!("invalid value for configuration {key}"))
        };
        let prefixed = |prefix: &str| -> Vec<(String, String)> {
            config
                .explicit
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
                .collect()
        };
        let rlmm = prefixed("rlmm.config.");
        let rlmm_key = |key: &str, default: i64| -> anyhow::Result<i64> {
            match rlmm.iter().find(|(k, _)| k == key) {
                Some((_, v)) => v
                    .parse()
                    .with_context(|| format!("invalid value for configuration rlmm.config.{key}")),
                None => Ok(default),
            }
        };
        let metadata_partitions = rlmm_key("remote.log.metadata.topic.num.partitions", 50)? as i32;
        let metadata_replication_factor = rlmm_key(METADATA_REPLICATION_FACTOR, 3)?;
        anyhow::ensure!(
            (1..=i64::from(i16::MAX)).contains(&metadata_replication_factor),
            "invalid value {metadata_replication_factor} for configuration \
             rlmm.config.{METADATA_REPLICATION_FACTOR}: must be >= 1"
        );
        let positive = |key: &str| -> anyhow::Result<u64> {
            let v = num(key)?;
            anyhow::ensure!(
                v >= 1,
                "invalid value {v} for configuration {key}: must be >= 1"
            );
            Ok(v as u64)
        };
        Ok(TieringSettings {
            enabled: enabled(config),
            task_interval: Duration::from_millis(positive("remote.log.manager.task.interval.ms")?),
            fetch_max_wait: Duration::from_millis(positive("remote.fetch.max.wait.ms")?),
            copy_bytes_per_second: positive("remote.log.manager.copy.max.bytes.per.second")?,
            fetch_bytes_per_second: positive("remote.log.manager.fetch.max.bytes.per.second")?,
            copiers: positive("remote.log.manager.copier.thread.pool.size")? as usize,
            expirers: positive("remote.log.manager.expiration.thread.pool.size")? as usize,
            rsm: prefixed("rsm.config."),
            metadata_partitions,
            metadata_replication_factor: crate::group::store::internal_replication_factor(
                config,
                metadata_replication_factor as i16,
            ),
            inter_broker_listener: config.replication.inter_broker_listener.clone(),
            default_remote_root: remote_root_beside(&config.log_dirs[0]),
        })
    }
}

/// `./shale-data` → `./shale-data-remote`.
fn remote_root_beside(log_dir: &Path) -> PathBuf {
    let name = log_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "shale-data".into());
    log_dir.with_file_name(format!("{name}-remote"))
}

/// The metadata manager and the tasks, started on first need.
#[derive(Debug)]
pub struct Active {
    /// Remote log metadata.
    pub rlmm: Arc<TopicBasedRemoteLogMetadataManager>,
    /// Copy / expiration / deletion tasks.
    pub rlm: Arc<RemoteLogManager>,
    /// The copier and expiration pools the per-partition tasks run in.
    pub pools: TaskPools,
}

/// The running tiered-storage machinery.
///
/// The object store and the reader exist from start-up. The metadata manager (and with it the
/// 50-partition `__remote_log_metadata` topic) starts when something needs it: at start-up if the
/// topic already exists, otherwise at the first tiered partition or unfinished deletion. A broker
/// that never tiers anything never creates the topic, and a fresh start stays fast.
#[derive(Debug)]
pub struct Tiering {
    /// Settings.
    pub settings: TieringSettings,
    /// Remote storage settings.
    pub storage: RemoteStorageConfig,
    /// Cached remote reads.
    pub reader: RemoteLogReader,
    /// Object-store request counts and latency.
    pub store_stats: Arc<StoreStats>,
    rsm: Arc<ObjectRsm>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
    node_id: i32,
    snapshot_dir: PathBuf,
    controller: Arc<Controller>,
    replicas: Arc<ReplicaManager>,
    topics: Arc<dyn TopicCreator>,
    dialer: crate::tls::Dialer,
    active: tokio::sync::OnceCell<Active>,
    fetch_quota: RateLimiter,
    fetch_stats: remote_read::FetchStats,
    topic_metrics: Arc<crate::topic_metrics::TopicMetrics>,
}

/// What tiering works with besides its settings.
#[derive(Debug)]
pub struct TieringParts {
    pub controller: Arc<Controller>,
    pub replicas: Arc<ReplicaManager>,
    pub topic_metrics: Arc<crate::topic_metrics::TopicMetrics>,
    pub topics: Arc<dyn TopicCreator>,
    /// How other brokers are reached (the inter-broker listener's protocol).
    pub dialer: crate::tls::Dialer,
}

/// How tiering creates `__remote_log_metadata`: the broker's path for internal topics (the
/// local controller, or a CreateTopics forwarded to the active one), returning once the topic
/// is in this broker's metadata.
pub trait TopicCreator: Send + Sync + std::fmt::Debug {
    /// Creates the topic; an existing one is not an error.
    fn create(
        &self,
        spec: CreateTopicSpec,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>>;
}

impl Tiering {
    /// Builds the machinery from the broker's settings and the parts it works with (the
    /// controller and the replica manager; never the broker itself). `None` when
    /// `remote.log.storage.system.enable=false`.
    pub async fn start(
        config: &BrokerConfig,
        parts: TieringParts,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> anyhow::Result<Option<Arc<Tiering>>> {
        let settings = TieringSettings::from_config(config)?;
        if !settings.enabled {
            return Ok(None);
        }
        let props = settings.rsm.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let storage = RemoteStorageConfig::from_props(props, Some(&settings.default_remote_root))
            .context("remote storage configuration (rsm.config.*)")?;
        let raw = shale_remote_log::build_object_store(&storage, clock.clone())
            .context("building the remote object store")?;
        let instrumented = InstrumentedStore::new(raw, clock.clone());
        let store_stats = instrumented.stats();
        let store: Arc<dyn object_store::ObjectStore> = Arc::new(instrumented);
        let tiering = Arc::new(Tiering {
            rsm: Arc::new(ObjectRsm::new(store.clone(), &storage.prefix)),
            reader: RemoteLogReader::from_config(store, &storage),
            fetch_quota: RateLimiter::new(settings.fetch_bytes_per_second, clock.clone()),
            fetch_stats: remote_read::FetchStats::default(),
            topic_metrics: parts.topic_metrics,
            clock,
            rng,
            node_id: config.node_id,
            snapshot_dir: config.log_dirs[0].clone(),
            controller: parts.controller.clone(),
            replicas: parts.replicas,
            topics: parts.topics,
            dialer: parts.dialer,
            active: tokio::sync::OnceCell::new(),
            settings,
            storage,
            store_stats,
        });
        // In a cluster the metadata partitions are read from their leaders once this broker has
        // joined: the first round (or the first follower that needs the remote tier) does it.
        let image = parts.controller.image();
        if !config.is_multi_node() && image.topic(metadata_topic::TOPIC).is_some() {
            tiering.activate().await?;
        }
        tracing::info!(backend = ?tiering.storage.backend, "tiered storage enabled");
        Ok(Some(tiering))
    }

    /// The metadata manager and tasks, if started.
    pub fn active(&self) -> Option<&Active> {
        self.active.get()
    }

    /// Starts the metadata manager (creating `__remote_log_metadata` if needed, replaying it from
    /// the local snapshot) and finishes deletions a crash interrupted.
    pub async fn activate(&self) -> anyhow::Result<&Active> {
        self.active
            .get_or_try_init(|| async {
                self.create_metadata_topic().await?;
                let config = RlmmConfig {
                    num_partitions: self.settings.metadata_partitions,
                    snapshot_path: Some(self.snapshot_dir.join(RlmmConfig::SNAPSHOT_FILE_NAME)),
                };
                let topic = Arc::new(BrokerMetadataTopic::new(
                    self.replicas.clone(),
                    self.clock.clone(),
                    self.settings.inter_broker_listener.clone(),
                    self.dialer.clone(),
                ));
                let clock = self.clock.clone();
                let rlmm = shale_common::blocking::spawn(move || {
                    TopicBasedRemoteLogMetadataManager::start(config, topic, clock)
                })
                .await?
                .context("loading __remote_log_metadata")?;
                let rlmm = Arc::new(rlmm);
                let rlm = Arc::new(RemoteLogManager::new(
                    self.rsm.clone(),
                    rlmm.clone(),
                    self.clock.clone(),
                    self.rng.clone(),
                    self.node_id,
                    self.settings.copy_bytes_per_second,
                ));
                match rlm.sweep_deleted().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(partitions = n, "finished interrupted remote deletions"),
                    Err(e) => tracing::warn!(error = %e, "could not finish interrupted remote deletions; will retry"),
                }
                let pools = TaskPools::new(self.settings.copiers, self.settings.expirers);
                Ok::<_, anyhow::Error>(Active { rlmm, rlm, pools })
            })
            .await
    }

    /// Creates `__remote_log_metadata` unless it exists: retention -1, cleanup delete, the
    /// configured replication factor (one on a single node). In a cluster creation fails until
    /// enough brokers are registered, as in Kafka, and the next round tries again.
    async fn create_metadata_topic(&self) -> anyhow::Result<()> {
        if self
            .controller
            .image()
            .topic(metadata_topic::TOPIC)
            .is_some()
        {
            return Ok(());
        }
        let spec = CreateTopicSpec {
            name: metadata_topic::TOPIC.to_string(),
            num_partitions: self.settings.metadata_partitions,
            replication_factor: self.settings.metadata_replication_factor,
            assignments: vec![],
            configs: vec![
                ("retention.ms".into(), "-1".into()),
                ("retention.bytes".into(), "-1".into()),
                ("cleanup.policy".into(), "delete".into()),
            ],
        };
        self.topics
            .create(spec)
            .await
            .with_context(|| format!("creating {}", metadata_topic::TOPIC))
    }

    /// One round. It reads forward the metadata of every tiered partition hosted here (what
    /// other leaders published), starts the copy and expiration of those this broker leads (each
    /// partition's tasks run concurrently in the pools; one still running from an earlier round
    /// is not started again), tells followers how far their lineage is in remote storage (so
    /// local retention never deletes an un-uploaded segment: Kafka's `RLMFollowerTask`), deletes
    /// remote data whose topic is gone, and snapshots the metadata if it changed.
    pub async fn run_round(&self) {
        let hosted: Vec<Arc<crate::replica::Partition>> = self
            .replicas
            .all()
            .into_iter()
            .filter(|p| p.log.is_tiered())
            .collect();
        let active = match self.active() {
            Some(a) => a,
            None if hosted.is_empty() && !self.deletions_pending().await => return,
            None => match self.activate().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "cannot start tiered storage; will retry");
                    return;
                }
            },
        };
        let sweeper = self.sweeps_deleted_topics();
        let ids = hosted.iter().map(|p| Self::topic_id_partition(p)).collect();
        self.catch_up(active, ids, sweeper).await;
        let mut leaders: Vec<Arc<dyn TieredPartition>> = Vec::new();
        for p in hosted {
            let log = partition::TieredLog::new(p.clone());
            if p.is_leader() {
                leaders.push(Arc::new(log));
            } else {
                let copied = active.rlm.highest_copied(&log);
                p.log.set_highest_offset_in_remote_storage(copied);
            }
        }
        active.pools.schedule(&active.rlm, &leaders);
        if sweeper {
            self.delete_remote_data_of_deleted_topics(active).await;
        }
        self.snapshot().await;
    }

    /// Reads forward the metadata of `partitions` (of every metadata partition for the sweeper),
    /// on the blocking pool: partitions led elsewhere are read over the network.
    async fn catch_up(&self, active: &Active, partitions: Vec<TopicIdPartition>, all: bool) {
        let rlmm = active.rlmm.clone();
        let result = shale_common::blocking::spawn(move || match all {
            true => rlmm.catch_up_all(),
            false => rlmm.catch_up(&partitions),
        })
        .await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read remote log metadata forward; will retry")
            }
            Err(e) => tracing::error!(error = %e, "reading remote log metadata forward panicked"),
        }
    }

    /// Whether this broker deletes the remote data of deleted topics: every broker on a single
    /// node; in a cluster one broker (the lowest unfenced id), so brokers do not race to delete
    /// the same objects and metadata.
    fn sweeps_deleted_topics(&self) -> bool {
        let image = self.replicas.image();
        let first = image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.id)
            .min();
        first.is_none_or(|id| id == self.node_id)
    }

    async fn delete_remote_data_of_deleted_topics(&self, active: &Active) {
        let image = self.controller.image();
        for tp in active.rlmm.remote_partitions() {
            let alive = image
                .topic_by_id(&tp.topic_id)
                .is_some_and(|t| t.partitions.contains_key(&tp.partition));
            if !alive {
                if let Err(e) = active.rlm.delete_partition(&tp).await {
                    tracing::warn!(partition = %tp, error = %e, "deleting remote data of a deleted topic failed; will retry");
                }
            }
        }
    }

    /// Writes the metadata snapshot that bounds the replay at the next start (on the blocking
    /// pool: it fsyncs; skipped when nothing changed since the last one).
    pub async fn snapshot(&self) {
        if let Some(a) = self.active() {
            let rlmm = a.rlmm.clone();
            match shale_common::blocking::spawn(move || rlmm.snapshot()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not write the remote log metadata snapshot")
                }
                Err(e) => tracing::error!(error = %e, "remote log metadata snapshot panicked"),
            }
        }
    }

    /// Stops the copy and expiration tasks and waits until none runs.
    pub async fn stop_tasks(&self) {
        if let Some(a) = self.active() {
            a.pools.shutdown().await;
        }
    }

    async fn deletions_pending(&self) -> bool {
        use shale_remote_log::RemoteStorageManager;
        matches!(self.rsm.list_delete_markers().await, Ok(m) if !m.is_empty())
    }

    /// The id of a tiered partition in RLMM terms.
    pub fn topic_id_partition(p: &crate::replica::Partition) -> TopicIdPartition {
        TopicIdPartition::new(p.topic_id, p.tp.topic.clone(), p.tp.partition)
    }
}
