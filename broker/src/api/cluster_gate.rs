//! The APIs authorized on the cluster alone (Kafka's `authorizeClusterOperation` callers):
//! ElectLeaders, UpdateFeatures, DescribeQuorum, the partition reassignment APIs, the SCRAM
//! credential APIs and WriteTxnMarkers. [`refusal`] answers a denied request with CLUSTER_AUTHORIZATION_FAILED where
//! Kafka puts it (top level, per item, or both); an allowed one goes on to its handler.

use super::RequestContext;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::DescribeUserScramCredentialsResult;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use shale_protocol::codec::Request;
use shale_raft::acl::op;

/// The message of a refusal here.
const DENIED: &str = "Cluster authorization failed.";

/// A denied request's response, already encoded; `None` when the principal may go on.
pub fn refusal(
    request: &Request,
    ctx: &RequestContext<'_>,
    version: i16,
    correlation_id: i32,
) -> Option<Result<super::Response, super::CloseReason>> {
    let authz = &ctx.authz;
    let code = E::ClusterAuthorizationFailed.code();
    macro_rules! deny {
        ($key:ident, $allowed:expr, $body:expr) => {
            match $allowed {
                true => None,
                false => Some(super::encode(ApiKey::$key, version, correlation_id, &$body)),
            }
        };
    }
    match request {
        Request::ElectLeaders(r) => deny!(ElectLeaders, authz.cluster(op::ALTER), {
            let topics = r.topic_partitions.iter().flatten().map(|t| {
                let partitions = t.partitions.iter().map(|p| {
                    PartitionResult::default()
                        .with_partition_id(*p)
                        .with_error_code(code)
                });
                ReplicaElectionResult::default()
                    .with_topic(t.topic.clone())
                    .with_partition_result(partitions.collect())
            });
            ElectLeadersResponse::default()
                .with_error_code(if version >= 1 { code } else { 0 })
                .with_replica_election_results(topics.collect())
        }),
        Request::UpdateFeatures(r) => deny!(UpdateFeatures, authz.cluster(op::ALTER), {
            let results = r.feature_updates.iter().map(|u| {
                UpdatableFeatureResult::default()
                    .with_feature(u.feature.clone())
                    .with_error_code(code)
            });
            UpdateFeaturesResponse::default()
                .with_error_code(code)
                .with_results(if version <= 1 {
                    results.collect()
                } else {
                    vec![]
                })
        }),
        Request::AlterPartitionReassignments(r) => {
            deny!(AlterPartitionReassignments, authz.cluster(op::ALTER), {
                let topics = r.topics.iter().map(|t| {
                    let partitions = t.partitions.iter().map(|p| {
                        ReassignablePartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                    });
                    ReassignableTopicResponse::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions.collect())
                });
                AlterPartitionReassignmentsResponse::default()
                    .with_error_code(code)
                    .with_responses(topics.collect())
            })
        }
        Request::DescribeQuorum(_) => deny!(
            DescribeQuorum,
            authz.cluster(op::DESCRIBE),
            DescribeQuorumResponse::default().with_error_code(code)
        ),
        Request::ListPartitionReassignments(_) => deny!(
            ListPartitionReassignments,
            authz.cluster(op::DESCRIBE),
            ListPartitionReassignmentsResponse::default().with_error_code(code)
        ),
        Request::DescribeUserScramCredentials(r) => {
            deny!(DescribeUserScramCredentials, authz.cluster(op::DESCRIBE), {
                // librdkafka frees an empty message it was given badly: say what failed.
                let message = || Some(StrBytes::from_static_str(DENIED));
                let users = r.users.iter().flatten().map(|u| {
                    DescribeUserScramCredentialsResult::default()
                        .with_user(u.name.clone())
                        .with_error_code(code)
                        .with_error_message(message())
                });
                DescribeUserScramCredentialsResponse::default()
                    .with_error_code(code)
                    .with_error_message(message())
                    .with_results(users.collect())
            })
        }
        Request::AlterUserScramCredentials(r) => {
            deny!(AlterUserScramCredentials, authz.cluster(op::ALTER), {
                let deleted = r.deletions.iter().map(|d| &d.name);
                let users = deleted.chain(r.upsertions.iter().map(|u| &u.name));
                let results = users.map(|u| {
                    AlterUserScramCredentialsResult::default()
                        .with_user(u.clone())
                        .with_error_code(code)
                });
                AlterUserScramCredentialsResponse::default().with_results(results.collect())
            })
        }
        Request::WriteTxnMarkers(r) => {
            let allowed = authz.cluster(op::ALTER) || authz.cluster(op::CLUSTER_ACTION);
            deny!(WriteTxnMarkers, allowed, {
                let markers = r.markers.iter().map(|m| {
                    let topics = m.topics.iter().map(|t| {
                        let partitions = t.partition_indexes.iter().map(|p| {
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(*p)
                                .with_error_code(code)
                        });
                        WritableTxnMarkerTopicResult::default()
                            .with_name(t.name.clone())
                            .with_partitions(partitions.collect())
                    });
                    WritableTxnMarkerResult::default()
                        .with_producer_id(m.producer_id)
                        .with_topics(topics.collect())
                });
                WriteTxnMarkersResponse::default().with_markers(markers.collect())
            })
        }
        _ => None,
    }
}
