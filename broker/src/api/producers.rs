//! InitProducerId (idempotent producers) and DescribeProducers.
//!
//! Transactions are not served yet: a request with a transactional id is refused with
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED, a non-retriable error, so a transactional client fails
//! fast instead of retrying forever (documented in docs/compatibility.md).

use crate::errors::controller_error;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use shale_common::TopicPartition;
use std::sync::Arc;

/// A fresh producer id with epoch 0 for every idempotent producer, as Kafka does for producers
/// without a transactional id (an epoch-bump request also gets a new id).
pub async fn init_producer_id(
    broker: &Arc<Broker>,
    req: &InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    resp.ongoing_txn_producer_id = ProducerId(-1);
    resp.ongoing_txn_producer_epoch = -1;
    if req.transactional_id.is_some() {
        resp.error_code = E::TransactionalIdAuthorizationFailed.code();
        return resp;
    }
    match super::blocking(broker, |b| b.next_producer_id()).await {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => resp.error_code = controller_error(&e).0,
    }
    resp
}

/// Active producers of each requested partition.
pub fn describe_producers(
    broker: &Broker,
    req: &DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut resp = DescribeProducersResponse::default();
    for t in &req.topics {
        let mut out = TopicResponse::default();
        out.name = t.name.clone();
        for &index in &t.partition_indexes {
            let mut p = PartitionResponse::default();
            p.partition_index = index;
            match broker
                .replicas()
                .get_leader(&TopicPartition::new(t.name.0.as_str(), index))
            {
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
