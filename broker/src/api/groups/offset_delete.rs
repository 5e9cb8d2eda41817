//! OffsetDelete: removes committed offsets of an empty group, or of topics a consumer group is
//! not subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

use crate::state::Broker;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use std::sync::Arc;

/// Answers OffsetDelete.
pub async fn handle(broker: &Arc<Broker>, req: &OffsetDeleteRequest) -> OffsetDeleteResponse {
    let mut resp = OffsetDeleteResponse::default();
    if let Err(code) = super::ready_for(broker, req.group_id.as_str()).await {
        resp.error_code = code;
        return resp;
    }
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| {
            let parts = t.partitions.iter().map(|p| p.partition_index).collect();
            (t.name.to_string(), parts)
        })
        .collect();
    let group = req.group_id.as_str();
    let (result, persisted) = super::write(broker, |g, _| g.delete_offsets(group, &topics)).await;
    if let Err(code) = persisted.result_for(group) {
        resp.error_code = code;
        return resp;
    }
    match result {
        Err(code) => resp.error_code = code,
        Ok(out) => {
            resp.topics = req
                .topics
                .iter()
                .zip(out)
                .map(|(t, (_, parts))| {
                    let mut rt = OffsetDeleteResponseTopic::default();
                    rt.name = t.name.clone();
                    rt.partitions = parts
                        .into_iter()
                        .map(|(p, code)| {
                            let mut rp = OffsetDeleteResponsePartition::default();
                            rp.partition_index = p;
                            rp.error_code = code;
                            rp
                        })
                        .collect();
                    rt
                })
                .collect();
        }
    }
    resp
}
