//! OffsetDelete: removes committed offsets of an empty group, or of topics a consumer group is
//! not subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

use crate::api::RequestContext;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::offset_delete_request::OffsetDeleteRequestTopic;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use shale_raft::acl::op;
use std::sync::Arc;

/// Answers OffsetDelete.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let mut resp = OffsetDeleteResponse::default();
    let group = req.group_id.as_str();
    if let Err(code) = super::ready_as(broker, ctx, op::DELETE, group).await {
        resp.error_code = code;
        return resp;
    }
    // Topics the principal may not read are answered without being touched.
    let readable = |t: &&OffsetDeleteRequestTopic| ctx.authz.topic(op::READ, &t.name);
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .filter(readable)
        .map(|t| {
            let parts = t.partitions.iter().map(|p| p.partition_index).collect();
            (t.name.to_string(), parts)
        })
        .collect();
    let (result, persisted) = super::write(broker, |g, _| g.delete_offsets(group, &topics)).await;
    if let Err(code) = persisted.result_for(group) {
        resp.error_code = code;
        return resp;
    }
    match result {
        Err(code) => resp.error_code = code,
        Ok(out) => {
            let mut allowed = out.into_iter();
            let denied = |t: &OffsetDeleteRequestTopic| {
                let code = E::TopicAuthorizationFailed.code();
                let parts = t.partitions.iter().map(|p| (p.partition_index, code));
                (t.name.to_string(), parts.collect::<Vec<_>>())
            };
            resp.topics = req
                .topics
                .iter()
                .filter_map(|t| match readable(&t) {
                    true => allowed.next().map(|o| (t, o)),
                    false => Some((t, denied(t))),
                })
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
