//! InitProducerId (idempotent producers; a transactional id goes to [`super::txn`]) and
//! DescribeProducers.

use super::RequestContext;
use crate::errors::controller_error;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use shale_common::TopicPartition;
use shale_raft::acl::{op, resource};
use std::sync::Arc;

/// A fresh producer id with epoch 0 for every idempotent producer, as Kafka does for producers
/// without a transactional id (an epoch-bump request also gets a new id).
pub async fn init_producer_id(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let mut resp = no_producer_id();
    if let Some(id) = &req.transactional_id {
        if !ctx.authz.transactional_id(op::WRITE, id) {
            resp.error_code = E::TransactionalIdAuthorizationFailed.code();
            return resp;
        }
        return super::txn::init_producer_id(broker, req, version, id.as_str()).await;
    }
    // An idempotent producer: IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
    if !ctx.authz.cluster(op::IDEMPOTENT_WRITE) && !ctx.authz.allows_any(op::WRITE, resource::TOPIC)
    {
        resp.error_code = E::ClusterAuthorizationFailed.code();
        return resp;
    }
    match next_producer_id(broker).await {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(code) => resp.error_code = code,
    }
    resp
}

/// An InitProducerId answer without a producer id yet (every id and epoch -1).
pub(crate) fn no_producer_id() -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    resp.ongoing_txn_producer_id = ProducerId(-1);
    resp.ongoing_txn_producer_epoch = -1;
    resp
}

/// A producer id from the block in hand, refilled from the active controller when used up:
/// this node's own controller when it leads, else by AllocateProducerIds over the controller
/// channel. The error is a Kafka error code; a block the controller did not give answers
/// COORDINATOR_LOAD_IN_PROGRESS (retriable), as Kafka's brokers do while they wait for one.
pub(crate) async fn next_producer_id(broker: &Arc<Broker>) -> Result<i64, i16> {
    if let Some(id) = broker.take_producer_id() {
        return Ok(id);
    }
    let node_id = broker.config.node_id;
    let block = match broker.forwarder() {
        Some(forwarder) if !forwarder.is_controller() => forwarder
            .allocate_producer_ids(node_id)
            .await
            .map_err(|(code, message)| {
                tracing::info!(code, %message, "no producer ids from the controller");
                E::CoordinatorLoadInProgress.code()
            })?,
        _ => super::blocking(broker, move |b| {
            b.controller.allocate_producer_ids(node_id, None)
        })
        .await
        .map_err(|e| controller_error(&e).0)?,
    };
    broker.add_producer_ids(block);
    broker
        .take_producer_id()
        .ok_or(E::CoordinatorNotAvailable.code())
}

/// Active producers of each requested partition.
pub fn describe_producers(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    req: &DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut resp = DescribeProducersResponse::default();
    for t in &req.topics {
        let mut out = TopicResponse::default();
        out.name = t.name.clone();
        let allowed = ctx.authz.topic(op::READ, &t.name);
        for &index in &t.partition_indexes {
            let mut p = PartitionResponse::default();
            p.partition_index = index;
            match broker
                .replicas()
                .get_leader(&TopicPartition::new(t.name.0.as_str(), index))
            {
                _ if !allowed => {
                    p.error_code = E::TopicAuthorizationFailed.code();
                    p.error_message = None;
                }
                Err(e) => {
                    let error = crate::errors::replica_error(&e);
                    p.error_code = error.code();
                    p.error_message = Some(StrBytes::from_string(error.to_string()));
                }
                Ok(part) => {
                    p.active_producers = part
                        .log
                        .producer_states()
                        .into_iter()
                        .map(|s| {
                            let mut ps = ProducerState::default();
                            ps.producer_id = ProducerId(s.producer_id);
                            ps.producer_epoch = s.producer_epoch as i32;
                            ps.last_sequence = s.last_sequence;
                            ps.last_timestamp = s.last_timestamp;
                            ps.coordinator_epoch = s.coordinator_epoch;
                            ps.current_txn_start_offset = s.current_txn_start_offset;
                            ps
                        })
                        .collect();
                }
            }
            out.partitions.push(p);
        }
        resp.topics.push(out);
    }
    resp
}
