//! Heartbeat: keeps a member's session alive and tells it about rebalances.

use crate::api::RequestContext;
use crate::state::Broker;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use shale_raft::acl::op;
use std::sync::Arc;

/// Answers Heartbeat.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &HeartbeatRequest,
) -> HeartbeatResponse {
    let mut resp = HeartbeatResponse::default();
    if let Err(code) = super::ready_as(broker, ctx, op::READ, req.group_id.as_str()).await {
        resp.error_code = code;
        return resp;
    }
    let now = super::now(broker);
    resp.error_code = broker.groups.with(|g| {
        g.heartbeat(
            req.group_id.as_str(),
            req.generation_id,
            req.member_id.as_str(),
            req.group_instance_id.as_ref().map(|s| s.as_str()),
            now,
        )
    });
    resp
}
