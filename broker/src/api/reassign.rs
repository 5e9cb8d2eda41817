//! AlterPartitionReassignments (api 45) and ListPartitionReassignments (api 46), which
//! `kafka-reassign-partitions.sh` and admin clients send (KIP-455): the active controller
//! starts, replaces or cancels moves of partitions to new replicas and lists the moves in
//! progress (a broker that is not it relays both, see [`super::forward`]). The new replicas
//! copy the log from the leader as followers; the controller completes a move once they are
//! all in the ISR ([`shale_raft::controller_reassign`]).

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use shale_raft::controller_reassign::{
    ReassignError, ReassignOutcomes, ReassignRequest, TopicOutcomes,
};

use crate::errors::controller_error;
use crate::state::Broker;

/// Answers AlterPartitionReassignments.
pub async fn alter(
    broker: &Arc<Broker>,
    req: &AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let asked: ReassignRequest = req
        .topics
        .iter()
        .map(|t| {
            let parts = t.partitions.iter().map(|p| {
                let target = p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
                (p.partition_index, target)
            });
            (t.name.to_string(), parts.collect())
        })
        .collect();
    // v0 has no such field: any replica count is allowed (its default, true).
    let allow = req.allow_replication_factor_change;
    let result = super::blocking(broker, move |b| {
        b.controller.alter_reassignments(asked, allow)
    })
    .await;
    let resp =
        AlterPartitionReassignmentsResponse::default().with_allow_replication_factor_change(allow);
    match result {
        Ok(outcomes) => {
            // A single node applies its own image now (in a cluster, following the log does).
            if let Err(e) = super::blocking(broker, |b| b.reconcile()).await {
                tracing::warn!(error = %e, "applying reassignments failed");
            }
            resp.with_responses(responses(outcomes))
        }
        Err(e) => {
            let (code, message) = controller_error(&e);
            resp.with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message)))
        }
    }
}

fn responses(outcomes: ReassignOutcomes) -> Vec<ReassignableTopicResponse> {
    let topic = |(name, parts): TopicOutcomes| {
        let partitions = parts.into_iter().map(|(id, outcome)| {
            let (code, message) = match outcome {
                Ok(()) => (0, None),
                Err(e) => error_of(e),
            };
            ReassignablePartitionResponse::default()
                .with_partition_index(id)
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string))
        });
        ReassignableTopicResponse::default()
            .with_name(TopicName(StrBytes::from_string(name)))
            .with_partitions(partitions.collect())
    };
    outcomes.into_iter().map(topic).collect()
}

/// Kafka's error code and message for a refused partition.
fn error_of(e: ReassignError) -> (i16, Option<String>) {
    match e {
        ReassignError::UnknownPartition => (
            E::UnknownTopicOrPartition.code(),
            Some("This server does not host this topic-partition.".into()),
        ),
        ReassignError::NoReassignmentInProgress => (
            E::NoReassignmentInProgress.code(),
            Some("No ongoing reassignment for this partition.".into()),
        ),
        ReassignError::InvalidAssignment(m) => (E::InvalidReplicaAssignment.code(), Some(m)),
        ReassignError::ReplicationFactorChange => (
            E::InvalidReplicationFactor.code(),
            Some(
                "The replication factor would change, but allowReplicationFactorChange is false."
                    .into(),
            ),
        ),
    }
}

/// Answers ListPartitionReassignments from the controller's image.
pub fn list(
    broker: &Arc<Broker>,
    req: &ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let wanted = req.topics.as_ref().map(|topics| {
        let each = topics.iter();
        each.map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let ids = |v: Vec<i32>| v.into_iter().map(BrokerId).collect();
    let topics = broker
        .controller
        .list_reassignments(wanted)
        .into_iter()
        .map(|(name, moves)| {
            let partitions = moves.into_iter().map(|m| {
                OngoingPartitionReassignment::default()
                    .with_partition_index(m.partition)
                    .with_replicas(ids(m.replicas))
                    .with_adding_replicas(ids(m.adding))
                    .with_removing_replicas(ids(m.removing))
            });
            OngoingTopicReassignment::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions.collect())
        });
    ListPartitionReassignmentsResponse::default().with_topics(topics.collect())
}
