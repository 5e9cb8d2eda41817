//! The crate's single error type. Variants carry the identifiers (topic-partition, offset, path)
//! needed to act on them; the broker maps them to Kafka error codes at its edge (see [`ErrorKind`]).

use std::path::{Path, PathBuf};

use shale_common::TopicPartition;

/// Everything that can go wrong in the local log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A filesystem operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A batch is corrupt (bad CRC, bad length, bad magic, undecodable payload).
    #[error("corrupt record batch for {tp}: {reason}")]
    CorruptRecord {
        /// Partition being appended to.
        tp: TopicPartition,
        /// What was wrong.
        reason: String,
    },
    /// A batch is well-formed but violates a rule (base offset, counts, control, keys…).
    #[error("invalid record for {tp}: {reason}")]
    InvalidRecord {
        /// Partition being appended to.
        tp: TopicPartition,
        /// What was wrong.
        reason: String,
    },
    /// One batch is bigger than `max.message.bytes`.
    #[error("record batch of {size} bytes for {tp} exceeds max.message.bytes {max}")]
    RecordTooLarge {
        /// Partition being appended to.
        tp: TopicPartition,
        /// Batch size including the 12-byte prefix.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The whole append is bigger than `segment.bytes`.
    #[error("record set of {size} bytes for {tp} exceeds segment.bytes {max}")]
    RecordListTooLarge {
        /// Partition being appended to.
        tp: TopicPartition,
        /// Set size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A record timestamp is out of the allowed window or of the wrong type.
    #[error("invalid timestamp {timestamp} for {tp}: {reason}")]
    InvalidTimestamp {
        /// Partition being appended to.
        tp: TopicPartition,
        /// The offending timestamp.
        timestamp: i64,
        /// Which rule it broke.
        reason: String,
    },
    /// Idempotent producer sent a sequence that does not follow the last one.
    #[error("out of order sequence for producer {producer_id} on {tp}: expected {expected}, found {found}")]
    OutOfOrderSequence {
        /// Partition being appended to.
        tp: TopicPartition,
        /// Producer id.
        producer_id: i64,
        /// Sequence the log expected.
        expected: i32,
        /// Sequence in the batch.
        found: i32,
    },
    /// Producer epoch older than the one the log knows (fenced producer).
    #[error(
        "producer {producer_id} on {tp} has epoch {found}, older than current epoch {current}"
    )]
    InvalidProducerEpoch {
        /// Partition being appended to.
        tp: TopicPartition,
        /// Producer id.
        producer_id: i64,
        /// Epoch the log knows.
        current: i16,
        /// Epoch in the batch.
        found: i16,
    },
    /// A transaction marker from a coordinator older than the one that last wrote a marker for
    /// this producer (Kafka's TRANSACTION_COORDINATOR_FENCED, 52).
    #[error("transaction marker for producer {producer_id} on {tp} has coordinator epoch {found}, older than {current}")]
    TransactionCoordinatorFenced {
        /// Partition being appended to.
        tp: TopicPartition,
        /// Producer id.
        producer_id: i64,
        /// Coordinator epoch the log knows.
        current: i32,
        /// Coordinator epoch in the marker.
        found: i32,
    },
    /// A batch that does not fit the producer's transaction state, e.g. a non-transactional batch
    /// while the producer has an ongoing transaction (Kafka's INVALID_TXN_STATE, 48).
    #[error("invalid transaction state for producer {producer_id} on {tp}: {reason}")]
    InvalidTxnState {
        /// Partition being appended to.
        tp: TopicPartition,
        /// Producer id.
        producer_id: i64,
        /// What was wrong.
        reason: String,
    },
    /// Offset outside `[log_start, log_end]`.
    #[error("offset {offset} out of range for {tp}: log start {log_start}, log end {log_end}")]
    OffsetOutOfRange {
        /// Partition read from.
        tp: TopicPartition,
        /// Requested offset.
        offset: i64,
        /// Current log start offset.
        log_start: i64,
        /// Current log end offset.
        log_end: i64,
    },
    /// The offset is in `[log_start, local_log_start)`: its data lives only in remote storage
    /// (the broker reads it from the remote tier).
    #[error(
        "offset {offset} of {tp} has moved to tiered storage: local log start {local_log_start}"
    )]
    OffsetMovedToTieredStorage {
        /// Partition read from.
        tp: TopicPartition,
        /// Requested offset.
        offset: i64,
        /// First offset still held locally.
        local_log_start: i64,
    },
    /// A topic config key or value is not acceptable.
    #[error("invalid config {key}={value}: {reason}")]
    InvalidConfig {
        /// Config name.
        key: String,
        /// Offending value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An on-disk file (checkpoint, snapshot, index, metadata…) cannot be understood.
    #[error("corrupt file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The process or the system ran out of file descriptors (`EMFILE`/`ENFILE`).
    #[error("out of file descriptors on {path}: {source} (raise the process limit, ulimit -n, or lower shale.log.open.files.max)")]
    OutOfFiles {
        /// The file that could not be opened.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// More pinned files (active segments of new partitions) than the open-files budget allows.
    #[error("cannot host {requested} more partition(s) on this broker: active segments already hold {in_use} of the {capacity} open files the budget leaves for them (shale.log.open.files.max={budget}; raise it or the process limit, ulimit -n)")]
    FileBudget {
        /// Partitions asked for.
        requested: usize,
        /// Pinned files plus reservations.
        in_use: usize,
        /// Pinned files the budget allows.
        capacity: usize,
        /// The budget.
        budget: usize,
    },
    /// The log was closed or deleted.
    #[error("log {tp} is closed")]
    Closed {
        /// The partition.
        tp: TopicPartition,
    },
}

pub use shale_common::ErrorKind;

impl LogError {
    /// The coarse kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LogError::Io { .. } | LogError::OutOfFiles { .. } => ErrorKind::Storage,
            LogError::Closed { .. } => ErrorKind::NotLeader,
            LogError::Corrupt { .. } => ErrorKind::Corrupt,
            LogError::OffsetOutOfRange { .. } => ErrorKind::OutOfRange,
            LogError::OffsetMovedToTieredStorage { .. } => ErrorKind::NotFound,
            LogError::OutOfOrderSequence { .. }
            | LogError::InvalidProducerEpoch { .. }
            | LogError::TransactionCoordinatorFenced { .. } => ErrorKind::Fenced,
            LogError::InvalidTxnState { .. } => ErrorKind::Invalid,
            LogError::CorruptRecord { .. }
            | LogError::InvalidRecord { .. }
            | LogError::RecordTooLarge { .. }
            | LogError::RecordListTooLarge { .. }
            | LogError::InvalidTimestamp { .. }
            | LogError::FileBudget { .. } => ErrorKind::Invalid,
            LogError::InvalidConfig { .. } => ErrorKind::Config,
        }
    }

    /// Wraps an I/O error with the path it concerns.
    /// Running out of descriptors becomes [`LogError::OutOfFiles`].
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> LogError {
        let path = path.as_ref().to_path_buf();
        if crate::files::is_out_of_files(&source) {
            LogError::OutOfFiles { path, source }
        } else {
            LogError::Io { path, source }
        }
    }

    /// A corrupt-file error.
    pub(crate) fn corrupt(path: impl AsRef<Path>, reason: impl Into<String>) -> LogError {
        LogError::Corrupt {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// The crate's result alias.
pub type Result<T> = std::result::Result<T, LogError>;

/// Attaches a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`LogError::Io`] naming `path`.
    fn ctx(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, path: &Path) -> Result<T> {
        self.map_err(|e| LogError::io(path, e))
    }
}
