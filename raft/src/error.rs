//! The crate's error types: [`RaftError`] for the metadata log, snapshots, quorum state and
//! formatting, and [`ControllerError`] for metadata changes the controller refuses. Neither
//! carries Kafka error codes; the broker maps [`RaftError::kind`] and the
//! [`ControllerError`] variants to codes at its edge.

use std::path::PathBuf;

pub use shale_common::ErrorKind;

/// Errors of the metadata log layer.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// A metadata record, control record or tagged field could not be parsed.
    #[error("malformed metadata: {0}")]
    Decode(String),
    /// A framed metadata record with an api key this build does not know.
    #[error("unknown metadata record type (api key {api_key})")]
    UnknownRecordType { api_key: u32 },
    /// A known record at a version this build cannot read.
    #[error("unsupported version {version} of metadata record type {api_key}")]
    UnsupportedVersion { api_key: u32, version: u32 },
    /// A file system operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file of ours (quorum-state, snapshot, bootstrap.checkpoint) is unreadable.
    #[error("corrupt file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// The `__cluster_metadata-0` log failed.
    #[error("metadata log: {0}")]
    Log(#[from] shale_local_log::LogError),
    /// A record batch could not be built or parsed.
    #[error("metadata batch: {0}")]
    Batch(#[from] shale_protocol::record_batch::BatchError),
    /// `format` was asked to format a directory that already has meta.properties.
    #[error("log directory {path} is already formatted (meta.properties exists)")]
    AlreadyFormatted { path: PathBuf },
    /// meta.properties disagrees with the configuration.
    #[error(
        "{path}/meta.properties has {key}={found}, but this node is configured with {expected}"
    )]
    MetaPropertiesMismatch {
        path: PathBuf,
        key: &'static str,
        expected: String,
        found: String,
    },
    /// An argument the caller passed is invalid (cluster id, node id, directory list).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The consensus core was driven in a way it does not allow (e.g. append before start).
    #[error("quorum: {0}")]
    Quorum(String),
    /// The controller was shut down.
    #[error("the metadata controller is shut down")]
    Closed,
}

impl RaftError {
    /// The caller-facing category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RaftError::Decode(_)
            | RaftError::UnknownRecordType { .. }
            | RaftError::UnsupportedVersion { .. }
            | RaftError::Corrupt { .. }
            | RaftError::Batch(_) => ErrorKind::Corrupt,
            RaftError::Io { .. } | RaftError::Log(_) => ErrorKind::Storage,
            RaftError::AlreadyFormatted { .. }
            | RaftError::MetaPropertiesMismatch { .. }
            | RaftError::InvalidArgument(_)
            | RaftError::Quorum(_) => ErrorKind::Invalid,
            RaftError::Closed => ErrorKind::NotLeader,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RaftError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Why the controller refused a metadata change. Each variant maps to one Kafka error code at
/// the broker edge (TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION,
/// INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_REPLICA_ASSIGNMENT, INVALID_CONFIG,
/// INVALID_REQUEST, NOT_CONTROLLER, REQUEST_TIMED_OUT, BROKER_ID_NOT_REGISTERED,
/// STALE_BROKER_EPOCH, DUPLICATE_BROKER_REGISTRATION, INCONSISTENT_CLUSTER_ID, and an internal error for `Storage`).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    #[error("{0}")]
    UnknownTopic(String),
    /// DeleteTopics by id for an id no topic has (UNKNOWN_TOPIC_ID).
    #[error("Topic id {0} does not exist.")]
    UnknownTopicId(uuid::Uuid),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("Invalid value for config {key}: {reason}")]
    InvalidConfig { key: String, reason: String },
    #[error("{0}")]
    InvalidRequest(String),
    /// An UpdateFeatures level or upgrade type the controller refuses (INVALID_UPDATE_VERSION,
    /// 95).
    #[error("{0}")]
    InvalidUpdateVersion(String),
    /// This node is not the active controller (NOT_CONTROLLER, 41); `leader` is the one it
    /// knows of, if any.
    #[error("This node is not the active controller (the active controller is {})", leader.map_or("unknown".to_owned(), |l| l.to_string()))]
    NotController { leader: Option<i32> },
    /// The change was handed to the quorum but not seen committed in time (REQUEST_TIMED_OUT,
    /// 7; retriable: it may still commit).
    #[error("{0}")]
    Timeout(String),
    /// A heartbeat or change for a broker id with no registration (BROKER_ID_NOT_REGISTERED,
    /// 102).
    #[error("Broker {0} is not registered.")]
    BrokerIdNotRegistered(i32),
    /// A heartbeat naming another incarnation's broker epoch (STALE_BROKER_EPOCH, 77).
    #[error("Broker {broker_id} sent epoch {sent}, but its registration has epoch {registered}.")]
    StaleBrokerEpoch {
        broker_id: i32,
        sent: i64,
        registered: i64,
    },
    /// A new incarnation of a broker whose previous one still holds a live session
    /// (DUPLICATE_BROKER_REGISTRATION, 101).
    #[error("Another broker is registered with broker id {0}.")]
    DuplicateBrokerRegistration(i32),
    /// A registration for another cluster (INCONSISTENT_CLUSTER_ID, 104).
    #[error("Expected cluster id {expected}, but the broker sent {found}.")]
    InconsistentClusterId { expected: String, found: String },
    #[error(transparent)]
    Storage(#[from] RaftError),
}
