//! The crate's single error type, [`RlmmError`], and its coarse [`ErrorKind`].
//!
//! Variants name the identifiers involved (topic-partition, segment id, path). No Kafka error
//! codes live here: the broker maps [`RlmmError::kind`] to protocol codes at its edge.

use crate::state::{RemoteLogSegmentState, RemotePartitionDeleteState};
use std::path::PathBuf;

/// Shorthand for results of this crate.
pub type Result<T, E = RlmmError> = std::result::Result<T, E>;

/// Everything that can go wrong in the remote log metadata layer.
#[derive(Debug, thiserror::Error)]
pub enum RlmmError {
    /// A `__remote_log_metadata` record (or the local snapshot) could not be decoded.
    #[error("malformed remote log metadata: {reason}")]
    Serde { reason: String },
    /// A metadata object or request violates a rule (negative start offset, wrong initial state...).
    #[error("invalid remote log metadata: {reason}")]
    InvalidArgument { reason: String },
    /// A segment state change not allowed by the state machine.
    #[error("invalid state transition for remote log segment {id}: {from:?} -> {to:?}")]
    InvalidTransition {
        id: String,
        from: Option<RemoteLogSegmentState>,
        to: RemoteLogSegmentState,
    },
    /// A partition-delete state change not allowed by the state machine.
    #[error("invalid remote partition delete transition for {partition}: {from:?} -> {to:?}")]
    InvalidPartitionDeleteTransition {
        partition: String,
        from: Option<RemotePartitionDeleteState>,
        to: RemotePartitionDeleteState,
    },
    /// An update names a segment the cache does not know.
    #[error("no remote log segment metadata found for {id}")]
    UnknownSegment { id: String },
    /// A query names a user partition the store holds no cache for.
    #[error("no remote log metadata found for partition {partition}")]
    UnknownPartition { partition: String },
    /// The metadata is not loaded yet (or the manager is closed); retry later.
    #[error("remote log metadata not ready: {what}")]
    NotReady { what: String },
    /// `__remote_log_metadata` exists with a different partition count than configured.
    #[error("remote log metadata topic has {actual} partitions, configured {expected}")]
    PartitionCountMismatch { expected: i32, actual: i32 },
    /// The metadata topic implementation failed (append, read, create).
    #[error("remote log metadata topic error: {reason}")]
    Topic { reason: String },
    /// Local file I/O (the snapshot) failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub use shale_common::ErrorKind;

impl RlmmError {
    /// The coarse category the broker maps to a Kafka error code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RlmmError::Serde { .. } => ErrorKind::Corrupt,
            RlmmError::InvalidArgument { .. }
            | RlmmError::InvalidTransition { .. }
            | RlmmError::InvalidPartitionDeleteTransition { .. } => ErrorKind::Invalid,
            RlmmError::UnknownSegment { .. } | RlmmError::UnknownPartition { .. } => {
                ErrorKind::NotFound
            }
            RlmmError::NotReady { .. } | RlmmError::Topic { .. } => ErrorKind::Retriable,
            RlmmError::PartitionCountMismatch { .. } => ErrorKind::Config,
            RlmmError::Io { .. } => ErrorKind::Storage,
        }
    }

    pub(crate) fn serde(reason: impl Into<String>) -> Self {
        RlmmError::Serde {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        RlmmError::InvalidArgument {
            reason: reason.into(),
        }
    }
}
