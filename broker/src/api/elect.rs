//! ElectLeaders (api 43), which `kafka-leader-election.sh` and admin clients send: preferred
//! (election type 0, the only one before v1) and unclean (1) leader elections, carried out by
//! the active controller (a broker that is not it relays the request there, see
//! [`super::forward`]). Per partition the controller's outcome: none, ELECTION_NOT_NEEDED,
//! PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION;
//! with no partitions named, every partition, answering only those an election was needed for.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use shale_raft::controller_leaders::{ElectionError, ElectionType};
use shale_raft::TopicElections;

use crate::errors::controller_error;
use crate::state::Broker;

/// Answers ElectLeaders.
pub async fn handle(
    broker: &Arc<Broker>,
    req: &ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    let requested: Option<Vec<(String, Vec<i32>)>> = req.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .map(|t| (t.topic.to_string(), t.partitions.clone()))
            .collect()
    });
    let kind = match (version, req.election_type) {
        (0, _) | (_, 0) => ElectionType::Preferred,
        (_, 1) => ElectionType::Unclean,
        _ => return failed(requested, E::InvalidRequest.code(), version),
    };
    let asked = requested.clone();
    let elected = super::blocking(broker, move |b| b.controller.elect_leaders(kind, asked)).await;
    match elected {
        Ok(results) => {
            // A single node applies its own image now (in a cluster, following the log does).
            if let Err(e) = super::blocking(broker, |b| b.reconcile()).await {
                tracing::warn!(error = %e, "applying elected leaders failed");
            }
            response(results)
        }
        Err(e) => failed(requested, controller_error(&e).0, version),
    }
}

fn response(results: Vec<TopicElections>) -> ElectLeadersResponse {
    let topics = results.into_iter().map(|(name, outcomes)| {
        let partitions = outcomes.into_iter().map(|(id, outcome)| {
            let (code, message) = match outcome {
                Ok(()) => (0, None),
                Err(e) => (code_of(e), Some(message_of(e))),
            };
            PartitionResult::default()
                .with_partition_id(id)
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_static_str))
        });
        ReplicaElectionResult::default()
            .with_topic(TopicName(StrBytes::from_string(name)))
            .with_partition_result(partitions.collect())
    });
    ElectLeadersResponse::default().with_replica_election_results(topics.collect())
}

/// The whole request refused with `code`: top-level from v1, else on every partition asked.
fn failed(
    requested: Option<Vec<(String, Vec<i32>)>>,
    code: i16,
    version: i16,
) -> ElectLeadersResponse {
    if version >= 1 {
        return ElectLeadersResponse::default().with_error_code(code);
    }
    let topics = requested
        .unwrap_or_default()
        .into_iter()
        .map(|(name, ids)| {
            let partitions = ids.into_iter().map(|id| {
                PartitionResult::default()
                    .with_partition_id(id)
                    .with_error_code(code)
            });
            ReplicaElectionResult::default()
                .with_topic(TopicName(StrBytes::from_string(name)))
                .with_partition_result(partitions.collect())
        });
    ElectLeadersResponse::default().with_replica_election_results(topics.collect())
}

fn code_of(e: ElectionError) -> i16 {
    match e {
        ElectionError::NotNeeded => E::ElectionNotNeeded,
        ElectionError::PreferredNotAvailable => E::PreferredLeaderNotAvailable,
        ElectionError::NoEligibleLeader => E::EligibleLeadersNotAvailable,
        ElectionError::UnknownPartition => E::UnknownTopicOrPartition,
    }
    .code()
}

fn message_of(e: ElectionError) -> &'static str {
    match e {
        ElectionError::NotNeeded => "Leader election not needed for topic partition.",
        ElectionError::PreferredNotAvailable => {
            "The preferred replica is not in the ISR or cannot lead."
        }
        ElectionError::NoEligibleLeader => "No live replica can lead this partition.",
        ElectionError::UnknownPartition => "This topic or partition does not exist.",
    }
}
