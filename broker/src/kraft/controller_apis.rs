//! The read-only APIs a controller listener answers for admin clients that bootstrap from the
//! controllers (`bootstrap.controllers`, KIP-919): DescribeQuorum (the quorum leader's view of
//! every replica) and DescribeCluster with endpoint type CONTROLLER (the voters in force at
//! their controller-listener endpoints, and the active controller).
//! `kafka-metadata-quorum.sh --bootstrap-controller` asks the second to find the first.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::sync::oneshot;

use super::driver::Input;
use super::listener::Shared;
use super::wire::{self, codes};

/// DescribeCluster versions served.
pub const DESCRIBE_CLUSTER_VERSIONS: (i16, i16) = (0, 2);
/// DescribeCluster's endpoint types (Kafka's `EndpointType`).
pub const ENDPOINT_BROKER: i8 = 1;
pub const ENDPOINT_CONTROLLER: i8 = 2;

/// The refusal of a DescribeCluster sent to the wrong kind of endpoint, as Kafka answers: v0
/// gets INVALID_REQUEST, later versions UNSUPPORTED_ENDPOINT_TYPE for an unknown type and
/// MISMATCHED_ENDPOINT_TYPE for the other kind. None when `requested` is `expected`.
pub fn endpoint_type_refusal(version: i16, requested: i8, expected: i8) -> Option<i16> {
    let known = requested == ENDPOINT_BROKER || requested == ENDPOINT_CONTROLLER;
    match () {
        _ if known && requested == expected => None,
        _ if version == 0 => Some(codes::INVALID_REQUEST),
        _ if !known => Some(codes::UNSUPPORTED_ENDPOINT_TYPE),
        _ => Some(codes::MISMATCHED_ENDPOINT_TYPE),
    }
}

/// DescribeCluster on the controller listener: the voters and the quorum leader (-1 when none
/// is known).
pub fn describe_cluster(version: i16, body: Bytes, shared: &Shared) -> anyhow::Result<Bytes> {
    let mut body = body;
    let req = DescribeClusterRequest::decode(&mut body, version)?;
    let mut resp = DescribeClusterResponse::default();
    resp.endpoint_type = ENDPOINT_CONTROLLER;
    resp.cluster_authorized_operations = i32::MIN;
    match endpoint_type_refusal(version, req.endpoint_type, ENDPOINT_CONTROLLER) {
        Some(code) => resp.error_code = code,
        None => {
            resp.cluster_id = StrBytes::from_string(shared.ctx.cluster_id.clone());
            let view = shared.driver.view.borrow().clone();
            resp.brokers = view
                .voters
                .iter()
                .map(|(id, host, port)| {
                    let mut b = DescribeClusterBroker::default();
                    b.broker_id = BrokerId(*id);
                    b.host = StrBytes::from_string(host.clone());
                    b.port = i32::from(*port);
                    b
                })
                .collect();
            let known = view
                .leader
                .filter(|l| view.voters.iter().any(|v| v.0 == *l));
            resp.controller_id = BrokerId(known.unwrap_or(-1));
        }
    }
    let mut out = BytesMut::new();
    resp.encode(&mut out, version)?;
    Ok(out.freeze())
}

/// DescribeQuorum: the leader answers with its view; any other member NOT_LEADER_OR_FOLLOWER.
pub async fn describe_quorum(version: i16, body: Bytes, shared: &Shared) -> anyhow::Result<Bytes> {
    wire::decode_describe_quorum_request(version, body)?;
    let (reply, rx) = oneshot::channel();
    if shared
        .driver
        .inputs
        .try_send(Input::Describe { reply })
        .is_err()
    {
        let code = codes::BROKER_NOT_AVAILABLE;
        return Ok(wire::encode_describe_quorum_error(version, code)?);
    }
    let status = tokio::time::timeout(shared.timeout, rx).await;
    Ok(match status.ok().and_then(Result::ok).flatten() {
        Some(status) => wire::encode_describe_quorum(&status, version, &shared.ctx)?,
        None => wire::encode_describe_quorum_error(version, codes::NOT_LEADER_OR_FOLLOWER)?,
    })
}
