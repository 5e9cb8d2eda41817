//! The RemoteStorageManager contract (KIP-405 §2.1) as an async trait, with [`LogSegmentData`]
//! (§2.2) and [`IndexType`]. Implementations: [`crate::object_rsm::ObjectRsm`].

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;
use crate::meta::{RemoteLogSegmentMetadata, TopicIdPartition};

/// Largest custom metadata an RSM may return (Kafka's default
/// `remote.log.metadata.custom.metadata.max.bytes`).
pub const MAX_CUSTOM_METADATA_BYTES: usize = 128;

/// The files of one rolled segment handed to [`RemoteStorageManager::copy_log_segment`].
#[derive(Debug, Clone)]
pub struct LogSegmentData {
    /// The `.log` file.
    pub log: PathBuf,
    /// The `.index` file (8-byte entries).
    pub offset_index: PathBuf,
    /// The `.timeindex` file (12-byte entries).
    pub time_index: PathBuf,
    /// The `.txnindex` file, only if it exists.
    pub txn_index: Option<PathBuf>,
    /// Producer-state snapshot for the next segment's base offset, if any.
    pub producer_snapshot: Option<PathBuf>,
    /// Leader-epoch checkpoint text (KIP-405 §2.7).
    pub leader_epochs: Bytes,
}

/// The per-segment indexes, in Kafka's `IndexType` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IndexType {
    /// Offset index.
    Offset,
    /// Time index.
    Timestamp,
    /// Producer snapshot.
    ProducerSnapshot,
    /// Transaction index.
    Transaction,
    /// Leader-epoch checkpoint.
    LeaderEpoch,
}

impl IndexType {
    /// All index types, in Kafka's order.
    pub const ALL: [IndexType; 5] = [
        IndexType::Offset,
        IndexType::Timestamp,
        IndexType::ProducerSnapshot,
        IndexType::Transaction,
        IndexType::LeaderEpoch,
    ];

    /// Lower-case name for messages and metrics.
    pub fn name(self) -> &'static str {
        match self {
            IndexType::Offset => "offset",
            IndexType::Timestamp => "timestamp",
            IndexType::ProducerSnapshot => "producer-snapshot",
            IndexType::Transaction => "transaction",
            IndexType::LeaderEpoch => "leader-epoch",
        }
    }
}

/// Stores and serves remote log segments. All methods are idempotent where KIP-405 requires it.
#[async_trait]
pub trait RemoteStorageManager: Send + Sync + std::fmt::Debug {
    /// Uploads the segment and its indexes (overwriting a previous attempt with the same id).
    /// Returns custom metadata (≤ [`MAX_CUSTOM_METADATA_BYTES`]) to store with COPY_SEGMENT_FINISHED.
    async fn copy_log_segment(
        &self,
        meta: &RemoteLogSegmentMetadata,
        data: &LogSegmentData,
    ) -> Result<Option<Bytes>>;

    /// Bytes `[start, end_exclusive)` of the `.log` object (`None` = to the end; the end is clamped
    /// to the segment size). `start` beyond the size is an OutOfRange error.
    async fn fetch_log_segment(
        &self,
        meta: &RemoteLogSegmentMetadata,
        start: u64,
        end_exclusive: Option<u64>,
    ) -> Result<Bytes>;

    /// One whole index. A missing transaction index (or producer snapshot) is NotFound.
    async fn fetch_index(&self, meta: &RemoteLogSegmentMetadata, index: IndexType)
        -> Result<Bytes>;

    /// Deletes the segment's objects; missing objects are not an error.
    async fn delete_log_segment(&self, meta: &RemoteLogSegmentMetadata) -> Result<()>;

    /// Deletes every segment object under the partition (not its delete marker); returns the
    /// number of objects deleted.
    async fn delete_partition(&self, tp: &TopicIdPartition) -> Result<usize>;

    /// Partitions that have at least one object in remote storage.
    async fn list_partitions(&self) -> Result<Vec<TopicIdPartition>>;

    /// Records that `tp` is being deleted (survives a broker crash; see [`Self::list_delete_markers`]).
    async fn put_delete_marker(&self, tp: &TopicIdPartition) -> Result<()>;

    /// Partitions with a delete marker: deletions to finish.
    async fn list_delete_markers(&self) -> Result<Vec<TopicIdPartition>>;

    /// Removes the delete marker once the partition's objects are gone (missing marker is OK).
    async fn remove_delete_marker(&self, tp: &TopicIdPartition) -> Result<()>;
}
