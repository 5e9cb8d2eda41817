//! The leader-side tiering tasks of KIP-405, one round at a time: copy rolled segments to the
//! remote tier, expire remote segments past total retention, and delete a deleted topic's data.
//!
//! ```text
//!  every remote.log.manager.task.interval.ms, for each tiered leader partition, concurrently
//!  (bounded by the copier and expiration pools, see [`TaskPools`]):
//!    copy:   dangling attempts cleaned ─ from = max(highest copied + 1, log start) ─
//!            for each rolled segment below the last stable offset, oldest first:
//!              COPY_SEGMENT_STARTED ─ upload ─ COPY_SEGMENT_FINISHED ─ highest copied := end
//!              (failure: the attempt is deleted, the partition backs off, a new id next time)
//!    expire: time / size / log-start breaches, oldest first ─ log start raised first ─
//!            DELETE_SEGMENT_STARTED ─ delete objects ─ DELETE_SEGMENT_FINISHED
//! ```
//!
//! The tasks see the local log through [`TieredPartition`] and the metadata manager through
//! [`SegmentMetadataStore`]; the broker implements both (this crate never sees local-log or the
//! broker). Time comes from the injected clock, so a test drives rounds deterministically.
//! Unlike Kafka, a topic deletion first writes a delete marker to the remote store, so a broker
//! that dies midway finishes the job at the next start ([`RemoteLogManager::sweep_deleted`]).

mod copy;
mod delete;
mod expire;
mod pools;
mod quota;

pub use pools::TaskPools;
pub use quota::RateLimiter;

use crate::rsm::{LogSegmentData, RemoteStorageManager};
use crate::ErrorKind;
use parking_lot::Mutex;
use shale_common::{Clock, Rng};
use shale_rlmm::{
    RemoteLogSegmentMetadata, RemoteLogSegmentMetadataUpdate, RemotePartitionDeleteMetadata,
    RlmmError, TopicIdPartition,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A rolled local segment offered for upload.
#[derive(Debug, Clone)]
pub struct LocalSegment {
    /// First offset.
    pub base_offset: i64,
    /// Last offset (next segment's base − 1).
    pub end_offset: i64,
    /// `.log` size.
    pub size_bytes: u64,
    /// Largest record timestamp.
    pub largest_timestamp: i64,
    /// Leader epochs in effect in the segment: epoch → first offset (the first clipped to base).
    pub leader_epochs: BTreeMap<i32, i64>,
    /// Files to upload.
    pub data: LogSegmentData,
}

/// Total-retention settings of a tiered partition (local + remote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `retention.ms` (-1 = forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1 = unlimited).
    pub retention_bytes: i64,
    /// `remote.log.copy.disable`.
    pub copy_disabled: bool,
}

/// A tiered partition's local log, as the tasks need it (the leader's copy and expiration; a
/// follower only asks how far its lineage is in remote storage).
pub trait TieredPartition: Send + Sync + std::fmt::Debug {
    /// Identity.
    fn topic_id_partition(&self) -> TopicIdPartition;
    /// First offset visible to clients, remote data included.
    fn log_start_offset(&self) -> i64;
    /// Upper bound of what may be uploaded (exclusive).
    fn last_stable_offset(&self) -> i64;
    /// Bytes held only locally (segments not yet copied), for the total-size budget.
    fn local_only_size_bytes(&self) -> u64;
    /// Rolled segments with offsets ≥ `from_offset` whose next base ≤ `last_stable_offset`.
    fn segments_to_copy(&self, from_offset: i64, last_stable_offset: i64) -> Vec<LocalSegment>;
    /// Records the highest offset known to be in remote storage (unlocks local deletion).
    fn set_highest_offset_in_remote_storage(&self, offset: i64);
    /// Raises the log start offset (remote retention).
    fn advance_log_start_offset(&self, offset: i64) -> Result<(), LocalLogError>;
    /// Current retention settings.
    fn retention(&self) -> Retention;
    /// The local leader-epoch cache: `(epoch, start offset)`, oldest first.
    fn leader_epochs(&self) -> Vec<(i32, i64)>;
    /// The next offset to be written locally.
    fn log_end_offset(&self) -> i64;
    /// Whether this broker still leads the partition: a copy or expiration round stops between
    /// segments once it does not (Kafka cancels the leader's tasks on a leadership change).
    fn is_leader(&self) -> bool;
}

/// The metadata manager as the tasks need it (the broker adapts rlmm's manager).
pub trait SegmentMetadataStore: Send + Sync + std::fmt::Debug {
    /// Publishes a new segment in COPY_SEGMENT_STARTED.
    fn add(&self, m: RemoteLogSegmentMetadata) -> Result<(), RlmmError>;
    /// Publishes a state change.
    fn update(&self, u: RemoteLogSegmentMetadataUpdate) -> Result<(), RlmmError>;
    /// Every segment of the partition not yet DELETE_SEGMENT_FINISHED.
    fn segments(&self, tp: &TopicIdPartition) -> Vec<RemoteLogSegmentMetadata>;
    /// Publishes a partition-delete state.
    fn put_partition_delete(&self, m: RemotePartitionDeleteMetadata) -> Result<(), RlmmError>;
}

/// Why a task round stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The remote store failed.
    #[error("remote storage: {0}")]
    Storage(#[from] crate::error::RemoteLogError),
    /// The metadata manager refused or failed.
    #[error("remote log metadata: {0}")]
    Metadata(#[from] RlmmError),
    /// The local log refused.
    #[error("local log: {0}")]
    Local(#[from] LocalLogError),
    /// The RSM returned more custom metadata than allowed; copying stops for this partition.
    #[error("custom metadata of {size} bytes exceeds the limit of {max}")]
    CustomMetadataTooLarge {
        /// Returned size.
        size: usize,
        /// `remote.log.metadata.custom.metadata.max.bytes`.
        max: usize,
    },
}

impl TaskError {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TaskError::Storage(e) => e.kind(),
            TaskError::Metadata(e) => e.kind(),
            TaskError::Local(e) => e.kind,
            TaskError::CustomMetadataTooLarge { .. } => ErrorKind::Invalid,
        }
    }
}

/// A local-log failure as the tasks see it (this crate never sees local-log's own type): its
/// kind and its message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LocalLogError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The local log's description.
    pub message: String,
}

/// Counters exported as Kafka's remote-storage metrics: one set for the whole broker and one per
/// tiered partition (see [`RemoteLogManager::stats_by_partition`]).
#[derive(Debug, Default)]
pub struct TaskStats {
    /// RemoteCopyBytesPerSec (cumulative bytes).
    pub copy_bytes: AtomicU64,
    /// RemoteCopyRequestsPerSec.
    pub copy_requests: AtomicU64,
    /// RemoteCopyErrorsPerSec.
    pub copy_errors: AtomicU64,
    /// RemoteDeleteRequestsPerSec.
    pub delete_requests: AtomicU64,
    /// RemoteDeleteErrorsPerSec.
    pub delete_errors: AtomicU64,
    /// RemoteCopyLagBytes (a gauge, kept per partition only): bytes of rolled segments eligible
    /// for upload and not yet uploaded, as of the partition's last copy round.
    pub copy_lag_bytes: AtomicU64,
    /// RemoteCopyLagSegments (a gauge, kept per partition only): those segments' count.
    pub copy_lag_segments: AtomicU64,
}

/// Per-partition copy state kept between rounds.
#[derive(Debug, Default, Clone, Copy)]
struct CopyState {
    cleaned_up: bool,
    failures: u32,
    retry_at_ms: i64,
    cancelled: bool,
}

/// Runs the tiering tasks.
#[derive(Debug)]
pub struct RemoteLogManager {
    rsm: Arc<dyn RemoteStorageManager>,
    metadata: Arc<dyn SegmentMetadataStore>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
    broker_id: i32,
    custom_metadata_max: usize,
    copy_quota: RateLimiter,
    copy_state: Mutex<HashMap<TopicIdPartition, CopyState>>,
    /// Broker-wide counters.
    pub stats: TaskStats,
    /// Per-partition counters and lag: an entry exists from a partition's first task round
    /// until [`RemoteLogManager::forget`], so the map is bounded by the tiered partitions hosted.
    partition_stats: Mutex<HashMap<TopicIdPartition, Arc<TaskStats>>>,
}

/// First retry after a failed copy; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between retries of a failing partition.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl RemoteLogManager {
    /// A manager uploading through `rsm` and publishing through `metadata`.
    pub fn new(
        rsm: Arc<dyn RemoteStorageManager>,
        metadata: Arc<dyn SegmentMetadataStore>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
        broker_id: i32,
        copy_bytes_per_second: u64,
    ) -> Self {
        RemoteLogManager {
            copy_quota: RateLimiter::new(copy_bytes_per_second, clock.clone()),
            rsm,
            metadata,
            clock,
            rng,
            broker_id,
            custom_metadata_max: crate::rsm::MAX_CUSTOM_METADATA_BYTES,
            copy_state: Mutex::new(HashMap::new()),
            stats: TaskStats::default(),
            partition_stats: Mutex::new(HashMap::new()),
        }
    }

    /// One round for one partition: copy, then expire. Errors are logged and retried next round.
    pub async fn run_partition(&self, p: &dyn TieredPartition) {
        self.run_copy(p).await;
        self.run_expire(p).await;
    }

    /// One copy round for one partition; an error is logged and retried next round.
    pub async fn run_copy(&self, p: &dyn TieredPartition) {
        if let Err(e) = self.copy_round(p).await {
            let tp = p.topic_id_partition();
            tracing::warn!(partition = %tp, error = %e, "remote copy stopped; will retry");
        }
    }

    /// One expiration round for one partition; an error is logged and retried next round.
    pub async fn run_expire(&self, p: &dyn TieredPartition) {
        if let Err(e) = self.expire_round(p).await {
            let tp = p.topic_id_partition();
            tracing::warn!(partition = %tp, error = %e, "remote expiration stopped; will retry");
        }
    }

    /// Forgets per-partition state and counters (leadership lost, partition deleted).
    pub fn forget(&self, tp: &TopicIdPartition) {
        self.copy_state.lock().remove(tp);
        self.partition_stats.lock().remove(tp);
    }

    /// The counters and lag of every partition with tasks on this broker.
    pub fn stats_by_partition(&self) -> Vec<(TopicIdPartition, Arc<TaskStats>)> {
        let stats = self.partition_stats.lock();
        stats
            .iter()
            .map(|(tp, s)| (tp.clone(), s.clone()))
            .collect()
    }

    /// A partition's counters, created at its first task round.
    fn partition_stats(&self, tp: &TopicIdPartition) -> Arc<TaskStats> {
        self.partition_stats
            .lock()
            .entry(tp.clone())
            .or_default()
            .clone()
    }

    /// Adds to a broker-wide counter and to the partition's, if it has an entry (a deleted
    /// topic's partition has none and gets none back).
    fn count(&self, tp: &TopicIdPartition, counter: fn(&TaskStats) -> &AtomicU64, n: u64) {
        counter(&self.stats).fetch_add(n, Ordering::Relaxed);
        if let Some(s) = self.partition_stats.lock().get(tp) {
            counter(s).fetch_add(n, Ordering::Relaxed);
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn new_segment_id(&self) -> uuid::Uuid {
        uuid::Builder::from_random_bytes(self.rng.next_bytes16()).into_uuid()
    }

    /// Deletes one segment through DELETE_SEGMENT_STARTED → objects → DELETE_SEGMENT_FINISHED.
    async fn delete_segment(&self, m: &RemoteLogSegmentMetadata) -> Result<(), TaskError> {
        use shale_rlmm::RemoteLogSegmentState::{DeleteSegmentFinished, DeleteSegmentStarted};
        if m.state != DeleteSegmentStarted {
            self.metadata
                .update(self.update_for(m, DeleteSegmentStarted))?;
        }
        let tp = &m.id.tp;
        self.count(tp, |s| &s.delete_requests, 1);
        if let Err(e) = self.rsm.delete_log_segment(m).await {
            self.count(tp, |s| &s.delete_errors, 1);
            return Err(e.into());
        }
        self.metadata
            .update(self.update_for(m, DeleteSegmentFinished))
            .map_err(TaskError::Metadata)
    }

    fn update_for(
        &self,
        m: &RemoteLogSegmentMetadata,
        state: shale_rlmm::RemoteLogSegmentState,
    ) -> RemoteLogSegmentMetadataUpdate {
        RemoteLogSegmentMetadataUpdate {
            id: m.id.clone(),
            event_timestamp_ms: self.now(),
            custom_metadata: m.custom_metadata.clone(),
            state,
            broker_id: self.broker_id,
        }
    }
}

/// rlmm's topic-based manager is the store the broker uses.
impl SegmentMetadataStore for shale_rlmm::manager::TopicBasedRemoteLogMetadataManager {
    fn add(&self, m: RemoteLogSegmentMetadata) -> Result<(), RlmmError> {
        self.add_remote_log_segment_metadata(m)
    }

    fn update(&self, u: RemoteLogSegmentMetadataUpdate) -> Result<(), RlmmError> {
        self.update_remote_log_segment_metadata(u)
    }

    fn segments(&self, tp: &TopicIdPartition) -> Vec<RemoteLogSegmentMetadata> {
        self.list_remote_log_segments(tp).unwrap_or_default()
    }

    fn put_partition_delete(&self, m: RemotePartitionDeleteMetadata) -> Result<(), RlmmError> {
        self.put_remote_partition_delete_metadata(m)
    }
}

#[cfg(test)]
#[path = "tasks_test.rs"]
mod tests;
