//! The broker edge: internal errors become Kafka error codes here, and only here.
//!
//! Every crate's error type answers `kind()` with a [`shale_common::ErrorKind`]; [`kind_error`]
//! maps each kind to a Kafka error, and the functions below refine that per variant where Kafka
//! has a more specific code. Every match is exhaustive — no wildcard arm — so a new variant or
//! kind does not compile until someone decides what clients see for it.

use crate::replica::ReplicaError;
use crate::tiering::RemoteReadError;
use kafka_protocol::error::ResponseError as E;
use shale_common::ErrorKind;
use shale_local_log::LogError;
use shale_raft::ControllerError;

/// Kafka's numeric code for a [`E`].
pub fn code(e: E) -> i16 {
    e.code()
}

/// The Kafka error an error kind is reported as when no more specific code applies.
pub fn kind_error(kind: ErrorKind) -> E {
    match kind {
        ErrorKind::Invalid => E::InvalidRequest,
        ErrorKind::Config => E::InvalidConfig,
        ErrorKind::NotFound => E::UnknownTopicOrPartition,
        ErrorKind::OutOfRange => E::OffsetOutOfRange,
        ErrorKind::Fenced => E::InvalidProducerEpoch,
        ErrorKind::NotLeader => E::NotLeaderOrFollower,
        ErrorKind::Retriable => E::RequestTimedOut,
        ErrorKind::Corrupt => E::CorruptMessage,
        ErrorKind::Storage => E::KafkaStorageError,
    }
}

/// The Kafka error code a log error is reported as.
pub fn log_error_code(e: &LogError) -> i16 {
    log_error(e).code()
}

/// The Kafka error a log error is reported as.
pub fn log_error(e: &LogError) -> E {
    match e {
        LogError::Io { .. } => E::KafkaStorageError,
        LogError::CorruptRecord { .. } => E::CorruptMessage,
        LogError::InvalidRecord { .. } => E::InvalidRecord,
        LogError::RecordTooLarge { .. } => E::MessageTooLarge,
        LogError::RecordListTooLarge { .. } => E::RecordListTooLarge,
        LogError::InvalidTimestamp { .. } => E::InvalidTimestamp,
        LogError::OutOfOrderSequence { .. } => E::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch { .. } => E::InvalidProducerEpoch,
        LogError::TransactionCoordinatorFenced { .. } => E::TransactionCoordinatorFenced,
        LogError::InvalidTxnState { .. } => E::InvalidTxnState,
        LogError::OffsetOutOfRange { .. } => E::OffsetOutOfRange,
        LogError::OffsetMovedToTieredStorage { .. } => E::OffsetMovedToTieredStorage,
        LogError::InvalidConfig { .. } => E::InvalidConfig,
        // Damaged files on disk: the log directory is the problem, not the request.
        LogError::Corrupt { .. } => E::KafkaStorageError,
        LogError::Closed { .. } => E::NotLeaderOrFollower,
        LogError::OutOfFiles { .. } => E::KafkaStorageError,
        LogError::FileBudget { .. } => E::PolicyViolation,
    }
}

/// The Kafka error a request for a partition this broker cannot serve is answered with: a
/// partition led elsewhere (or hosted here as a follower) is NOT_LEADER_OR_FOLLOWER, so the client
/// refreshes its leader (KIP-951 responses also carry the leader); an unknown one
/// UNKNOWN_TOPIC_OR_PARTITION.
pub fn replica_error(e: &ReplicaError) -> E {
    match e {
        ReplicaError::NotLeader { .. } => E::NotLeaderOrFollower,
        ReplicaError::Unknown => E::UnknownTopicOrPartition,
    }
}

/// What the group coordinator answers when appending its records to `__consumer_offsets` failed
/// with the produce-path error `e` (Kafka's `appendGroupMetadataErrorToResponseError`, and the
/// same table for every coordinator write): partition trouble a retry may fix becomes
/// COORDINATOR_NOT_AVAILABLE, a partition lost or failed here NOT_COORDINATOR (the client looks
/// the coordinator up again), an oversized write UNKNOWN_SERVER_ERROR. Kafka passes any other
/// error on unchanged, hence the one wildcard arm in this module.
pub fn coordinator_append_error(e: E) -> E {
    match e {
        E::UnknownTopicOrPartition | E::NotEnoughReplicas | E::RequestTimedOut => {
            E::CoordinatorNotAvailable
        }
        E::NotLeaderOrFollower | E::KafkaStorageError => E::NotCoordinator,
        E::MessageTooLarge | E::RecordListTooLarge | E::InvalidFetchSize => E::UnknownServerError,
        other => other,
    }
}

/// The Kafka error code a failed remote read is reported as (`None`: answer without data and
/// without an error, the client simply fetches again).
pub fn remote_read_error_code(e: &RemoteReadError) -> Option<i16> {
    match e {
        // The segment expired or is not uploaded yet: the consumer resets its position.
        RemoteReadError::NotFound(_) => Some(E::OffsetOutOfRange.code()),
        RemoteReadError::Throttled => None,
        // Missing or damaged objects and store outages: the partition's storage failed.
        RemoteReadError::Storage(_) => Some(E::KafkaStorageError.code()),
    }
}

/// The Kafka error code and message a controller error is reported as.
pub fn controller_error(e: &ControllerError) -> (i16, String) {
    let kafka = match e {
        ControllerError::TopicAlreadyExists(_) => E::TopicAlreadyExists,
        ControllerError::UnknownTopic(_) => E::UnknownTopicOrPartition,
        ControllerError::UnknownTopicId(_) => E::UnknownTopicId,
        ControllerError::InvalidTopic(_) => E::InvalidTopicException,
        ControllerError::InvalidPartitions(_) => E::InvalidPartitions,
        ControllerError::InvalidReplicationFactor(_) => E::InvalidReplicationFactor,
        ControllerError::InvalidReplicaAssignment(_) => E::InvalidReplicaAssignment,
        ControllerError::InvalidConfig { .. } => E::InvalidConfig,
        ControllerError::InvalidRequest(_) => E::InvalidRequest,
        ControllerError::InvalidUpdateVersion(_) => E::InvalidUpdateVersion,
        ControllerError::NotController { .. } => E::NotController,
        ControllerError::Timeout(_) => E::RequestTimedOut,
        ControllerError::BrokerIdNotRegistered(_) => E::BrokerIdNotRegistered,
        ControllerError::StaleBrokerEpoch { .. } => E::StaleBrokerEpoch,
        ControllerError::DuplicateBrokerRegistration(_) => E::DuplicateBrokerRegistration,
        ControllerError::InconsistentClusterId { .. } => E::InconsistentClusterId,
        ControllerError::Storage(raft) => match raft.kind() {
            // Metadata the controller cannot write or read: Kafka answers UNKNOWN_SERVER_ERROR
            // for an unexpected controller failure, NOT_CONTROLLER once it has shut down.
            ErrorKind::NotLeader => E::NotController,
            ErrorKind::Invalid
            | ErrorKind::Config
            | ErrorKind::NotFound
            | ErrorKind::OutOfRange
            | ErrorKind::Fenced
            | ErrorKind::Retriable
            | ErrorKind::Corrupt
            | ErrorKind::Storage => E::UnknownServerError,
        },
    };
    (kafka.code(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_a_retriable_code_only_where_retrying_can_help() {
        let retriable = |k| kind_error(k).is_retriable();
        assert!(retriable(ErrorKind::NotLeader));
        assert!(retriable(ErrorKind::Retriable));
        assert!(retriable(ErrorKind::Storage));
        assert!(!retriable(ErrorKind::Invalid));
        assert!(!retriable(ErrorKind::Config));
        assert!(!retriable(ErrorKind::Fenced));
    }

    #[test]
    fn coordinator_write_errors_map_as_in_kafka() {
        let map = coordinator_append_error;
        assert_eq!(map(E::UnknownTopicOrPartition), E::CoordinatorNotAvailable);
        assert_eq!(map(E::NotEnoughReplicas), E::CoordinatorNotAvailable);
        assert_eq!(map(E::RequestTimedOut), E::CoordinatorNotAvailable);
        assert_eq!(map(E::NotLeaderOrFollower), E::NotCoordinator);
        assert_eq!(map(E::KafkaStorageError), E::NotCoordinator);
        assert_eq!(map(E::MessageTooLarge), E::UnknownServerError);
        assert_eq!(map(E::RecordListTooLarge), E::UnknownServerError);
        assert_eq!(map(E::InvalidFetchSize), E::UnknownServerError);
        assert_eq!(map(E::CorruptMessage), E::CorruptMessage);
        // A full disk is a storage error: the client rediscovers the coordinator and retries.
        let full = LogError::Io {
            path: "/data".into(),
            source: std::io::Error::other("No space left on device"),
        };
        assert_eq!(map(log_error(&full)), E::NotCoordinator);
    }

    #[test]
    fn a_partition_led_elsewhere_is_not_leader_and_an_absent_one_unknown() {
        let elsewhere = ReplicaError::NotLeader {
            leader_id: 2,
            leader_epoch: 3,
        };
        assert_eq!(replica_error(&elsewhere), E::NotLeaderOrFollower);
        assert_eq!(
            replica_error(&ReplicaError::Unknown),
            E::UnknownTopicOrPartition
        );
    }

    #[test]
    fn a_closed_log_tells_the_client_to_refresh_its_leader() {
        let tp = shale_common::TopicPartition::new("t", 0);
        assert_eq!(
            log_error_code(&LogError::Closed { tp }),
            E::NotLeaderOrFollower.code()
        );
    }
}
