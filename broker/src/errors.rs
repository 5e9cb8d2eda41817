//! The broker edge: internal errors become Kafka error codes here, and only here.

use kafka_protocol::error::ResponseError as E;
use shale_local_log::LogError;
use shale_raft::ControllerError;

/// Kafka's numeric code for a [`E`].
pub fn code(e: E) -> i16 {
    e.code()
}

/// The Kafka error code a log error is reported as.
pub fn log_error_code(e: &LogError) -> i16 {
    let kafka = match e {
        LogError::CorruptRecord { .. } => E::CorruptMessage,
        LogError::InvalidRecord { .. } => E::InvalidRecord,
        LogError::RecordTooLarge { .. } => E::MessageTooLarge,
        LogError::RecordListTooLarge { .. } => E::RecordListTooLarge,
        LogError::InvalidTimestamp { .. } => E::InvalidTimestamp,
        LogError::OutOfOrderSequence { .. } => E::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch { .. } => E::InvalidProducerEpoch,
        LogError::OffsetOutOfRange { .. } => E::OffsetOutOfRange,
        LogError::InvalidConfig { .. } => E::InvalidConfig,
        LogError::Closed { .. } => E::NotLeaderOrFollower,
        LogError::FileBudget { .. } => E::PolicyViolation,
        _ => E::KafkaStorageError,
    };
    kafka.code()
}

/// The Kafka error code and message a controller error is reported as.
pub fn controller_error(e: &ControllerError) -> (i16, String) {
    let kafka = match e {
        ControllerError::TopicAlreadyExists(_) => E::TopicAlreadyExists,
        ControllerError::UnknownTopic(_) => E::UnknownTopicOrPartition,
        ControllerError::InvalidTopic(_) => E::InvalidTopicException,
        ControllerError::InvalidPartitions(_) => E::InvalidPartitions,
        ControllerError::InvalidReplicationFactor(_) => E::InvalidReplicationFactor,
        ControllerError::InvalidReplicaAssignment(_) => E::InvalidReplicaAssignment,
        ControllerError::InvalidConfig { .. } => E::InvalidConfig,
        ControllerError::InvalidRequest(_) => E::InvalidRequest,
        _ => E::UnknownServerError,
    };
    (kafka.code(), e.to_string())
}
