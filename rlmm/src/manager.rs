//! [`TopicBasedRemoteLogMetadataManager`]: the RLMM over `__remote_log_metadata`, seen through the
//! [`MetadataTopic`] trait the broker implements on its local logs (KIP-405 §3, tiering design).
//!
//! * Start: ensure the topic (partition count must match), load the local snapshot if any
//!   (missing, corrupt, or ahead of the topic ⇒ ignored, full replay), replay each metadata
//!   partition from the snapshot's covered offset + 1 up to its end offset, mark all caches ready.
//! * Publish (synchronous, read-your-write): catch the metadata partition up, validate against the
//!   cache (an invalid change is never written), serialize, append to `metadata_partition(tp)`,
//!   apply what other brokers appended before it, then the event itself at the offset the append
//!   returned. Publishers and catch-ups are serialized so the cache applies records in topic order.
//! * Catch-up ([`TopicBasedRemoteLogMetadataManager::catch_up`]): in a cluster the leaders of
//!   other partitions publish too; every broker hosting a replica of a partition reads that
//!   partition's metadata partition forward, so a follower can build its state from the remote
//!   tier and any new leader serves cold reads at once.
//! * Queries read the cache; a partition with no metadata at all answers empty.
//! * [`TopicBasedRemoteLogMetadataManager::snapshot`] writes the whole store atomically.

use crate::cache::RemoteLogMetadataCache;
use crate::error::{Result, RlmmError};
use crate::metadata::{
    RemoteLogMetadata, RemoteLogSegmentMetadata, RemoteLogSegmentMetadataUpdate,
    RemotePartitionDeleteMetadata, TopicIdPartition,
};
use crate::partitioner::metadata_partition;
use crate::snapshot;
use crate::state::RemoteLogSegmentState;
use crate::store::{ApplyOutcome, RemotePartitionMetadataStore};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use shale_common::Clock;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Metadata partition → last processed offset: what a snapshot covers.
type ProcessedOffsets = std::collections::BTreeMap<i32, i64>;
/// Name of the metadata topic.
pub const REMOTE_LOG_METADATA_TOPIC: &str = "__remote_log_metadata";
/// Byte budget of one `read` call during replay.
pub const REPLAY_READ_MAX_BYTES: usize = 1 << 20;

/// `__remote_log_metadata` as a log the RLMM can append to and read. Implemented by the broker on
/// local-log; [`crate::testing::InMemoryMetadataTopic`] implements it in memory.
pub trait MetadataTopic: Send + Sync + std::fmt::Debug {
    /// Creates the topic with `partitions` partitions (retention -1, cleanup delete) if missing; Ok
    /// if it exists with that count; `PartitionCountMismatch` if the count differs.
    fn ensure(&self, partitions: i32) -> Result<(), RlmmError>;
    /// Appends one record (null key, `value`) to a partition; returns its offset once durable.
    fn append(&self, partition: i32, value: Bytes) -> Result<i64, RlmmError>;
    /// Records of a partition from `from_offset` (inclusive), at most `max_bytes` worth (at least
    /// one record if any exists): `(offset, value)` in offset order.
    fn read(
        &self,
        partition: i32,
        from_offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<(i64, Bytes)>, RlmmError>;
    /// Next offset to be written in a partition.
    fn end_offset(&self, partition: i32) -> Result<i64, RlmmError>;
}

/// Settings of the topic-based RLMM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RlmmConfig {
    /// `remote.log.metadata.topic.num.partitions` (default 50).
    pub num_partitions: i32,
    /// Where the local snapshot lives (`<first log dir>/remote-log-metadata-snapshot`); `None`
    /// disables snapshots (every start replays the whole topic).
    pub snapshot_path: Option<PathBuf>,
}

impl RlmmConfig {
    /// Kafka's default partition count of `__remote_log_metadata`.
    pub const DEFAULT_NUM_PARTITIONS: i32 = 50;
    /// File name of the snapshot inside a log directory.
    pub const SNAPSHOT_FILE_NAME: &'static str = "remote-log-metadata-snapshot";

    /// Rejects a non-positive partition count.
    pub fn validate(&self) -> Result<()> {
        if self.num_partitions <= 0 {
            return Err(RlmmError::invalid(format!(
                "remote.log.metadata.topic.num.partitions must be positive, got {}",
                self.num_partitions
            )));
        }
        Ok(())
    }
}

impl Default for RlmmConfig {
    fn default() -> Self {
        RlmmConfig {
            num_partitions: Self::DEFAULT_NUM_PARTITIONS,
            snapshot_path: None,
        }
    }
}

/// What happened during [`TopicBasedRemoteLogMetadataManager::start`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartupInfo {
    /// A snapshot was loaded and used.
    pub snapshot_loaded: bool,
    /// Records read from the topic during replay.
    pub replayed_records: u64,
    /// Replayed records that were dropped (undecodable or rejected by the state machine).
    pub dropped_records: u64,
}

/// The topic-based remote log metadata manager.
#[derive(Debug)]
pub struct TopicBasedRemoteLogMetadataManager {
    config: RlmmConfig,
    topic: Arc<dyn MetadataTopic>,
    clock: Arc<dyn Clock>,
    store: RwLock<RemotePartitionMetadataStore>,
    /// Serializes check → append → apply so the cache sees events in topic order.
    publish_lock: Mutex<()>,
    /// Serializes snapshot writers (they share the temp file).
    /// Held while writing a snapshot; holds the processed offsets the last one recorded.
    snapshot_lock: Mutex<Option<ProcessedOffsets>>,
    closed: AtomicBool,
    startup: StartupInfo,
}

impl TopicBasedRemoteLogMetadataManager {
    /// Ensures the topic, loads the snapshot, replays the tail and returns a ready manager.
    pub fn start(
        config: RlmmConfig,
        topic: Arc<dyn MetadataTopic>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        config.validate()?;
        topic.ensure(config.num_partitions)?;
        let loaded = load_snapshot(&config, topic.as_ref())?;
        let snapshot_loaded = loaded.is_some();
        let mut store = loaded.unwrap_or_default();
        let mut startup = StartupInfo {
            snapshot_loaded,
            ..StartupInfo::default()
        };
        for mp in 0..config.num_partitions {
            replay_partition(topic.as_ref(), &mut store, mp, &mut startup)?;
        }
        store.mark_all_initialized();
        tracing::info!(
            snapshot_loaded,
            replayed = startup.replayed_records,
            dropped = startup.dropped_records,
            partitions = store.partitions().len(),
            "remote log metadata manager started"
        );
        Ok(TopicBasedRemoteLogMetadataManager {
            config,
            topic,
            clock,
            store: RwLock::new(store),
            publish_lock: Mutex::new(()),
            snapshot_lock: Mutex::new(None),
            closed: AtomicBool::new(false),
            startup,
        })
    }

    /// What start-up did (snapshot used, records replayed).
    pub fn startup_info(&self) -> StartupInfo {
        self.startup
    }

    /// The configuration in use.
    pub fn config(&self) -> &RlmmConfig {
        &self.config
    }

    /// The metadata partition holding `tp`'s events.
    pub fn metadata_partition_for(&self, tp: &TopicIdPartition) -> i32 {
        metadata_partition(tp, self.config.num_partitions)
    }

    fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RlmmError::NotReady {
                what: "remote log metadata manager is closed".to_string(),
            });
        }
        Ok(())
    }

    /// Publishes a new segment; only COPY_SEGMENT_STARTED is allowed.
    pub fn add_remote_log_segment_metadata(&self, m: RemoteLogSegmentMetadata) -> Result<()> {
        self.publish(RemoteLogMetadata::Segment(m))
    }

    /// Publishes a segment state change (any state but COPY_SEGMENT_STARTED); the transition is
    /// checked against the cache before anything is written.
    pub fn update_remote_log_segment_metadata(
        &self,
        u: RemoteLogSegmentMetadataUpdate,
    ) -> Result<()> {
        self.publish(RemoteLogMetadata::Update(u))
    }

    /// Publishes a partition-delete step (validated against the recorded state).
    pub fn put_remote_partition_delete_metadata(
        &self,
        d: RemotePartitionDeleteMetadata,
    ) -> Result<()> {
        self.publish(RemoteLogMetadata::PartitionDelete(d))
    }

    /// Applies what was appended to the metadata partitions of `partitions` since this manager
    /// last read them (records written by other brokers). Returns how many records it applied.
    pub fn catch_up(&self, partitions: &[TopicIdPartition]) -> Result<u64> {
        let mps: std::collections::BTreeSet<i32> = partitions
            .iter()
            .map(|tp| self.metadata_partition_for(tp))
            .collect();
        let _publishing = self.publish_lock.lock();
        self.ensure_open()?;
        let mut applied = 0;
        for mp in mps {
            applied += self.read_forward(mp, None)?;
        }
        Ok(applied)
    }

    /// [`Self::catch_up`] over every metadata partition (the broker that sweeps deleted topics
    /// needs the partitions no replica of its own maps to).
    pub fn catch_up_all(&self) -> Result<u64> {
        let _publishing = self.publish_lock.lock();
        self.ensure_open()?;
        let mut applied = 0;
        for mp in 0..self.config.num_partitions {
            applied += self.read_forward(mp, None)?;
        }
        Ok(applied)
    }

    /// Reads metadata partition `mp` from the next unprocessed offset up to its end (or up to,
    /// not including, `until`) and applies every record. The read happens outside the store
    /// lock; the caller holds `publish_lock`, so nothing else applies to `mp` meanwhile.
    fn read_forward(&self, mp: i32, until: Option<i64>) -> Result<u64> {
        let end = match until {
            Some(until) => until,
            None => self.topic.end_offset(mp)?,
        };
        let mut applied = 0;
        loop {
            let from = self.store.read().next_offset(mp);
            if from >= end {
                return Ok(applied);
            }
            let batch = self.topic.read(mp, from, REPLAY_READ_MAX_BYTES)?;
            let batch: Vec<_> = batch.into_iter().filter(|(o, _)| *o < end).collect();
            let Some(&(last, _)) = batch.last() else {
                return Ok(applied);
            };
            let mut store = self.store.write();
            for (offset, value) in &batch {
                if let ApplyOutcome::Dropped(e) = store.apply_record(mp, *offset, value) {
                    tracing::warn!(metadata_partition = mp, offset, error = %e, "dropped a remote log metadata record");
                }
                applied += 1;
            }
            if last < from {
                return Err(RlmmError::Topic {
                    reason: format!(
                        "read of {REMOTE_LOG_METADATA_TOPIC}-{mp} from {from} returned offset {last}"
                    ),
                });
            }
        }
    }

    fn publish(&self, event: RemoteLogMetadata) -> Result<()> {
        let _publishing = self.publish_lock.lock();
        self.ensure_open()?;
        let mp = self.metadata_partition_for(event.topic_id_partition());
        self.read_forward(mp, None)?;
        {
            let store = self.store.read();
            match &event {
                RemoteLogMetadata::Segment(m) => store.check_add(m)?,
                RemoteLogMetadata::Update(u) => store.check_update(u)?,
                RemoteLogMetadata::PartitionDelete(d) => store.check_partition_delete(d)?,
            }
        }
        let offset = self.topic.append(mp, crate::serde::encode(&event))?;
        self.read_forward(mp, Some(offset))?;
        match self.store.write().apply(mp, offset, &event) {
            ApplyOutcome::Applied => Ok(()),
            ApplyOutcome::Dropped(e) => Err(e),
            ApplyOutcome::Duplicate => Err(RlmmError::Topic {
                reason: format!(
                    "append to {REMOTE_LOG_METADATA_TOPIC}-{mp} returned offset {offset}, already processed"
                ),
            }),
        }
    }

    fn with_cache<T>(
        &self,
        tp: &TopicIdPartition,
        absent: T,
        f: impl FnOnce(&RemoteLogMetadataCache) -> T,
    ) -> Result<T> {
        self.ensure_open()?;
        let store = self.store.read();
        match store.cache(tp) {
            Ok(cache) => Ok(f(cache)),
            Err(RlmmError::UnknownPartition { .. }) => Ok(absent),
            Err(e) => Err(e),
        }
    }

    /// The COPY_SEGMENT_FINISHED segment holding `offset` in `leader_epoch`, if any.
    pub fn remote_log_segment_metadata(
        &self,
        tp: &TopicIdPartition,
        leader_epoch: i32,
        offset: i64,
    ) -> Result<Option<RemoteLogSegmentMetadata>> {
        self.with_cache(tp, None, |c| {
            c.remote_log_segment_metadata(leader_epoch, offset)
        })
    }

    /// All segments not yet DELETE_SEGMENT_FINISHED, sorted by start offset.
    pub fn list_remote_log_segments(
        &self,
        tp: &TopicIdPartition,
    ) -> Result<Vec<RemoteLogSegmentMetadata>> {
        self.with_cache(tp, Vec::new(), |c| c.list_remote_log_segments())
    }

    /// Segments carrying `leader_epoch`, sorted by start offset.
    pub fn list_remote_log_segments_for_epoch(
        &self,
        tp: &TopicIdPartition,
        leader_epoch: i32,
    ) -> Result<Vec<RemoteLogSegmentMetadata>> {
        self.with_cache(tp, Vec::new(), |c| {
            c.list_remote_log_segments_for_epoch(leader_epoch)
        })
    }

    /// Highest offset copied for `leader_epoch` (never lowered by deletions).
    pub fn highest_offset_for_epoch(
        &self,
        tp: &TopicIdPartition,
        leader_epoch: i32,
    ) -> Result<Option<i64>> {
        self.with_cache(tp, None, |c| c.highest_offset_for_epoch(leader_epoch))
    }

    /// Largest end offset over COPY_SEGMENT_FINISHED segments.
    pub fn highest_copied_offset(&self, tp: &TopicIdPartition) -> Result<Option<i64>> {
        self.with_cache(tp, None, |c| c.highest_copied_offset())
    }

    /// Total size of all listed segments of `tp`.
    pub fn remote_log_size(&self, tp: &TopicIdPartition) -> Result<i64> {
        self.with_cache(tp, 0, |c| c.remote_log_size())
    }

    /// Total size of the segments carrying `leader_epoch` (Kafka's `remoteLogSize(tp, epoch)`).
    pub fn remote_log_size_for_epoch(
        &self,
        tp: &TopicIdPartition,
        leader_epoch: i32,
    ) -> Result<i64> {
        self.with_cache(tp, 0, |c| c.remote_log_size_for_epoch(leader_epoch))
    }

    /// Segments of `tp` whose state is one of `states`, sorted by start offset.
    pub fn segments_in_state(
        &self,
        tp: &TopicIdPartition,
        states: &[RemoteLogSegmentState],
    ) -> Result<Vec<RemoteLogSegmentMetadata>> {
        self.with_cache(tp, Vec::new(), |c| c.segments_in_state(states))
    }

    /// The pending partition-delete event of `tp`, if any.
    pub fn remote_partition_delete_metadata(
        &self,
        tp: &TopicIdPartition,
    ) -> Result<Option<RemotePartitionDeleteMetadata>> {
        self.ensure_open()?;
        Ok(self.store.read().partition_delete_metadata(tp).cloned())
    }

    /// Every partition with remote metadata or a pending deletion, sorted (for sweeps).
    pub fn remote_partitions(&self) -> Vec<TopicIdPartition> {
        self.store.read().partitions()
    }

    /// Whether `tp`'s metadata is loaded (true for every known partition once started).
    pub fn is_initialized(&self, tp: &TopicIdPartition) -> bool {
        !self.closed.load(Ordering::Acquire) && self.store.read().is_initialized(tp)
    }

    /// Writes the snapshot file (whole store + covered offsets) atomically, unless nothing was
    /// applied since the last one. Returns its path, or `None` when snapshots are disabled.
    /// Blocking (write + fsync): call it off the async runtime.
    pub fn snapshot(&self) -> Result<Option<PathBuf>> {
        let Some(path) = &self.config.snapshot_path else {
            return Ok(None);
        };
        shale_common::blocking::check("RLMM snapshot");
        let mut last = self.snapshot_lock.lock();
        self.ensure_open()?;
        let (bytes, processed) = {
            let store = self.store.read();
            if last.as_ref() == Some(&store.processed) {
                return Ok(Some(path.clone())); // nothing applied since the last one
            }
            let bytes = snapshot::encode(&store, self.config.num_partitions, self.clock.now_ms());
            (bytes, store.processed.clone())
        };
        snapshot::write_file(path, &bytes)?;
        *last = Some(processed);
        tracing::debug!(path = %path.display(), bytes = bytes.len(), "wrote remote log metadata snapshot");
        Ok(Some(path.clone()))
    }

    /// Stops serving: later calls fail with `NotReady`. Idempotent; writes no snapshot.
    pub fn close(&self) {
        let _publishing = self.publish_lock.lock();
        self.closed.store(true, Ordering::Release);
    }
}

/// Loads a usable snapshot. Missing, unreadable, corrupt, or ahead of the topic ⇒ `None`.
fn load_snapshot(
    config: &RlmmConfig,
    topic: &dyn MetadataTopic,
) -> Result<Option<RemotePartitionMetadataStore>> {
    let Some(path) = &config.snapshot_path else {
        return Ok(None);
    };
    let bytes = match snapshot::read_file(path) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read remote log metadata snapshot; replaying the topic");
            return Ok(None);
        }
    };
    let store = match snapshot::decode(&bytes, config.num_partitions) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring remote log metadata snapshot");
            return Ok(None);
        }
    };
    for (&mp, &last) in &store.processed {
        let in_range = (0..config.num_partitions).contains(&mp);
        if !in_range || last >= topic.end_offset(mp)? {
            tracing::warn!(
                path = %path.display(),
                metadata_partition = mp,
                covered = last,
                "snapshot is ahead of the metadata topic; replaying the topic"
            );
            return Ok(None);
        }
    }
    Ok(Some(store))
}

fn replay_partition(
    topic: &dyn MetadataTopic,
    store: &mut RemotePartitionMetadataStore,
    mp: i32,
    info: &mut StartupInfo,
) -> Result<()> {
    let end = topic.end_offset(mp)?;
    let mut from = store.next_offset(mp);
    while from < end {
        let batch = topic.read(mp, from, REPLAY_READ_MAX_BYTES)?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        for (offset, value) in &batch {
            info.replayed_records += 1;
            if let ApplyOutcome::Dropped(_) = store.apply_record(mp, *offset, value) {
                info.dropped_records += 1;
            }
        }
        if last < from {
            return Err(RlmmError::Topic {
                reason: format!(
                    "read of {REMOTE_LOG_METADATA_TOPIC}-{mp} from {from} returned offset {last}"
                ),
            });
        }
        from = last + 1;
    }
    Ok(())
}
