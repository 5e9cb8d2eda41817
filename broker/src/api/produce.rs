//! Produce: each partition's record bytes go to its log as received; only the batch header is
//! patched (offsets, leader epoch). acks=0 requests get no response, as in Kafka.

use crate::errors::log_error_code;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use shale_common::TopicPartition;
use shale_local_log::AppendOrigin;
use std::sync::Arc;

/// Appends every partition's batches; `None` when acks=0 (no response is sent).
pub fn handle(broker: &Arc<Broker>, req: &ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let acks_valid = matches!(req.acks, -1..=1);
    let image = broker.image();
    let mut resp = ProduceResponse::default();
    for topic in &req.topic_data {
        let name: Option<String> = if version >= 13 {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.name.0.to_string())
        };
        let mut out = TopicProduceResponse::default();
        out.name = topic.name.clone();
        out.topic_id = topic.topic_id;
        for p in &topic.partition_data {
            let mut r = match (&name, acks_valid) {
                (_, false) => error(p.index, E::InvalidRequiredAcks.code(), None),
                (None, _) => error(p.index, E::UnknownTopicId.code(), None),
                (Some(name), true) => {
                    super::storage_io(|| append(broker, name, p.index, p.records.as_ref()))
                }
            };
            fit_to_version(&mut r, version);
            out.partition_responses.push(r);
        }
        resp.responses.push(out);
    }
    (req.acks != 0).then_some(resp)
}

fn append(
    broker: &Broker,
    topic: &str,
    index: i32,
    records: Option<&bytes::Bytes>,
) -> PartitionProduceResponse {
    let tp = TopicPartition::new(topic, index);
    let Some(partition) = broker.partition(&tp) else {
        return error(index, E::UnknownTopicOrPartition.code(), None);
    };
    let records = match records {
        Some(r) if !r.is_empty() => r.clone(),
        _ => {
            return error(
                index,
                E::InvalidRecord.code(),
                Some("produce requests must carry at least one record batch".into()),
            )
        }
    };
    let size = records.len() as u64;
    let origin = AppendOrigin::Client {
        leader_epoch: partition.leader_epoch(),
    };
    match partition.log.append(records, origin) {
        Ok(info) => {
            if !info.duplicate {
                broker.metrics.bytes_in.inc_by(size);
                partition.notify_appended();
            }
            let mut r = PartitionProduceResponse::default();
            r.index = index;
            r.base_offset = info.first_offset;
            r.log_append_time_ms = info.log_append_time;
            r.log_start_offset = info.log_start_offset;
            r
        }
        Err(e) => {
            tracing::debug!(partition = %tp, error = %e, "produce rejected");
            error(index, log_error_code(&e), Some(e.to_string()))
        }
    }
}

/// Clears fields the negotiated version does not have (kafka-protocol refuses to encode them).
fn fit_to_version(r: &mut PartitionProduceResponse, version: i16) {
    if version < 5 {
        r.log_start_offset = -1;
    }
    if version < 8 {
        r.error_message = None;
    }
}

fn error(index: i32, code: i16, message: Option<String>) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.error_code = code;
    r.base_offset = -1;
    r.log_append_time_ms = -1;
    r.log_start_offset = -1;
    r.error_message = message.map(StrBytes::from_string);
    r
}
