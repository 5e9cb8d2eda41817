//! The replica manager: every partition with a replica on this broker, its local log and its
//! role, driven by metadata images (Kafka's `ReplicaManager.applyDelta`).
//!
//! ```text
//!  image ─ delta::local_changes ─┬─ deletes (topic deleted / recreated, reassigned away) → log deleted
//!                                └─ hosted → log created if new; role set: Leader{epoch} |
//!                                   Follower{leader, epoch} (stale partition epochs ignored)
//!  handlers ─ get_leader(tp) → Partition | NotLeader{leader, epoch} | Unknown
//! ```
//! A change of leadership never deletes data: the partition keeps its log and only its role
//! changes. Followers copy their leader through the fetchers (`fetcher`); a follower whose
//! leader has tiered the offsets it needs starts from the remote tier (`tiered_start`). Images are applied in order: one older than the last
//! applied (a slower concurrent caller) is ignored. After each apply the leader-count gauge and
//! the per-topic meters follow the hosted set.

mod config;
pub mod connection;
pub mod delta;
mod fetcher;
pub mod isr;
pub mod leader_calls;
mod partition;
pub mod peer_pool;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
mod tiered_start;

pub use config::effective_log_config;
pub use delta::DeleteReason;
pub use fetcher::ReplicaFetchers;
pub use partition::{Assignment, FollowerState, Partition, Role};

use crate::topic_metrics::TopicMetrics;
use parking_lot::{Mutex, RwLock};
use prometheus::IntGauge;
use shale_common::TopicPartition;
use shale_local_log::{LogConfig, LogError, LogManager};
use shale_raft::{MetadataImage, TopicImage};
use std::collections::HashMap;
use std::sync::Arc;

/// Why a partition cannot be served here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaError {
    /// The partition exists, but this broker does not lead it (KIP-951: the client is told the
    /// current leader; `-1` when unknown).
    NotLeader {
        /// The current leader.
        leader_id: i32,
        /// Its leader epoch.
        leader_epoch: i32,
    },
    /// No such partition in the metadata this broker has applied.
    Unknown,
}

/// What the replica manager keeps in line with the hosted partitions.
#[derive(Debug, Clone)]
pub struct HostedMetrics {
    /// Per-topic meters: synced with the topics that have a hosted partition.
    pub topics: Arc<TopicMetrics>,
    /// The number of partitions this broker leads.
    pub leaders: IntGauge,
}

/// Hosted partitions and their logs.
#[derive(Debug)]
pub struct ReplicaManager {
    node_id: i32,
    logs: LogManager,
    static_log_config: LogConfig,
    metrics: HostedMetrics,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    image: RwLock<Arc<MetadataImage>>,
    apply_lock: Mutex<()>,
    /// ISR changes leaders want, one per partition (bounded by the hosted partitions), until
    /// the AlterPartition sender takes them.
    isr_proposals: Mutex<HashMap<TopicPartition, Vec<i32>>>,
    isr_wake: tokio::sync::Notify,
}

impl ReplicaManager {
    /// A manager for broker `node_id` over opened `logs`, hosting nothing until an image is
    /// applied. `static_log_config` is the broker's log defaults (`log.*` keys), under the
    /// image's dynamic defaults and topic overrides.
    pub fn new(
        node_id: i32,
        logs: LogManager,
        static_log_config: LogConfig,
        metrics: HostedMetrics,
    ) -> ReplicaManager {
        ReplicaManager {
            node_id,
            logs,
            static_log_config,
            metrics,
            partitions: RwLock::new(HashMap::new()),
            image: RwLock::new(Arc::new(MetadataImage::empty(""))),
            apply_lock: Mutex::new(()),
            isr_proposals: Mutex::new(HashMap::new()),
            isr_wake: tokio::sync::Notify::new(),
        }
    }

    /// The local logs.
    pub fn logs(&self) -> &LogManager {
        &self.logs
    }

    /// The image last applied.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    /// A hosted partition, in whatever role.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().get(tp).cloned()
    }

    /// A partition this broker leads, or why it cannot serve it.
    pub fn get_leader(&self, tp: &TopicPartition) -> Result<Arc<Partition>, ReplicaError> {
        if let Some(p) = self.get(tp) {
            return match p.role() {
                Role::Leader { .. } => Ok(p),
                Role::Follower(f) => Err(ReplicaError::NotLeader {
                    leader_id: f.leader_id,
                    leader_epoch: f.leader_epoch,
                }),
            };
        }
        let image = self.image();
        let part = image
            .topic(&tp.topic)
            .and_then(|t| t.partitions.get(&tp.partition));
        match part {
            Some(p) => Err(ReplicaError::NotLeader {
                leader_id: p.leader,
                leader_epoch: p.leader_epoch,
            }),
            None => Err(ReplicaError::Unknown),
        }
    }

    /// Every hosted partition.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// Every partition this broker leads.
    pub fn leaders(&self) -> Vec<Arc<Partition>> {
        let parts = self.partitions.read();
        parts.values().filter(|p| p.is_leader()).cloned().collect()
    }

    /// The names of the topics with a hosted partition.
    pub fn hosted_topics(&self) -> Vec<Arc<str>> {
        let parts = self.partitions.read();
        parts.keys().map(|tp| tp.topic.clone()).collect()
    }

    /// A leader wants the controller to set `tp`'s ISR to `isr` (the latest wish replaces an
    /// earlier one not sent yet).
    pub fn propose_isr(&self, tp: &TopicPartition, isr: Vec<i32>) {
        self.isr_proposals.lock().insert(tp.clone(), isr);
        self.isr_wake.notify_one();
    }

    /// Checks every led partition for ISR members that stopped catching up for `lag_ms`
    /// (Kafka's `maybeShrinkIsr`, run every `replica.lag.time.max.ms / 2`).
    pub fn propose_isr_shrinks(&self, lag_ms: i64) {
        for p in self.leaders() {
            if let Some(isr) = p.isr_shrink(lag_ms) {
                tracing::info!(partition = %p.tp, ?isr, "shrinking the ISR: members stopped catching up");
                self.propose_isr(&p.tp, isr);
            }
        }
    }

    /// Waits until an ISR change is proposed, then takes every proposal.
    pub async fn take_isr_proposals(&self) -> Vec<(TopicPartition, Vec<i32>)> {
        loop {
            let taken = self.drain_isr_proposals();
            if !taken.is_empty() {
                return taken;
            }
            self.isr_wake.notified().await;
        }
    }

    /// Takes the ISR changes proposed so far.
    pub(crate) fn drain_isr_proposals(&self) -> Vec<(TopicPartition, Vec<i32>)> {
        self.isr_proposals.lock().drain().collect()
    }

    /// Deletes logs found at start-up whose topic the metadata does not know.
    pub fn delete_strays(&self) -> Result<(), LogError> {
        for tp in self.logs.stray_partitions() {
            tracing::info!(partition = %tp, "deleting log of a topic absent from metadata");
            self.logs.delete(&tp)?;
        }
        Ok(())
    }

    /// A topic's effective log config under `image`.
    pub fn log_config_for(&self, image: &MetadataImage, topic: &TopicImage) -> LogConfig {
        effective_log_config(&self.static_log_config, image, &topic.configs)
    }

    /// Brings the hosted partitions in line with `image`: deletes what the image says is gone,
    /// creates logs for new replicas, re-configures logs and sets every role, then syncs the
    /// metrics. A log that cannot be created is skipped (logged; the first such error is
    /// returned) and retried at the next apply. An image older than the last applied is ignored.
    pub fn apply(&self, image: Arc<MetadataImage>) -> Result<(), LogError> {
        let _guard = self.apply_lock.lock();
        if image.last_offset < self.image.read().last_offset {
            tracing::debug!(
                offset = image.last_offset,
                "ignoring an image older than the applied one"
            );
            return Ok(());
        }
        *self.image.write() = image.clone();
        let result = self.apply_changes(&image);
        self.metrics.leaders.set(self.leaders().len() as i64);
        let topics = self.hosted_topics();
        self.metrics.topics.sync(topics.iter().map(|t| t.as_ref()));
        result
    }

    fn apply_changes(&self, image: &MetadataImage) -> Result<(), LogError> {
        let hosted_now: HashMap<TopicPartition, uuid::Uuid> = self
            .partitions
            .read()
            .iter()
            .map(|(tp, p)| (tp.clone(), p.topic_id))
            .collect();
        let changes = delta::local_changes(image, &hosted_now, self.node_id);
        for (tp, reason) in &changes.deletes {
            self.delete(tp, *reason)?;
        }
        let mut failed = None;
        let mut configs: HashMap<uuid::Uuid, LogConfig> = HashMap::new();
        for h in changes.hosted {
            let cfg = configs
                .entry(h.topic.id)
                .or_insert_with(|| self.log_config_for(image, &h.topic))
                .clone();
            if let Err(e) = self.host(h, cfg) {
                failed.get_or_insert(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    fn delete(&self, tp: &TopicPartition, reason: DeleteReason) -> Result<(), LogError> {
        if let Some(part) = self.partitions.write().remove(tp) {
            part.close();
        }
        self.logs.delete(tp)?;
        tracing::info!(partition = %tp, ?reason, "deleted partition");
        Ok(())
    }

    fn host(&self, h: delta::Hosted, cfg: LogConfig) -> Result<(), LogError> {
        if let Some(p) = self.get(&h.tp) {
            if p.log.config() != cfg {
                p.log.update_config(cfg);
            }
            if p.set_role(h.role, h.partition_epoch, h.assignment) {
                tracing::info!(partition = %h.tp, role = ?h.role, "partition role changed");
            }
            return Ok(());
        }
        match self.logs.get_or_create(&h.tp, h.topic.id, cfg) {
            Ok(log) => {
                let part = Partition::new(
                    h.tp.clone(),
                    h.topic.id,
                    log,
                    self.node_id,
                    h.role,
                    h.partition_epoch,
                    h.assignment,
                );
                self.partitions.write().insert(h.tp, Arc::new(part));
                Ok(())
            }
            Err(e) => {
                tracing::error!(partition = %h.tp, error = %e, "cannot create the log of a partition");
                Err(e)
            }
        }
    }
}
