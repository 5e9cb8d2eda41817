//! SyncGroup: followers wait for the leader's assignment.

use crate::api::RequestContext;
use crate::group::{Reply, SyncResult};
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use shale_raft::acl::op;
use std::sync::Arc;

/// Answers SyncGroup.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    if let Err(code) = super::ready_as(broker, ctx, op::READ, req.group_id.as_str()).await {
        return response(SyncResult::error(code), version);
    }
    let assignments = req
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let (reply, _) = super::write(broker, |g, now| {
        g.sync(
            req.group_id.as_str(),
            req.generation_id,
            req.member_id.as_str(),
            req.group_instance_id.as_ref().map(|s| s.as_str()),
            (
                req.protocol_type.as_ref().map(|s| s.as_str()),
                req.protocol_name.as_ref().map(|s| s.as_str()),
            ),
            assignments,
            now,
        )
    })
    .await;
    // A failed write of the leader's assignment answers every waiting member (this one
    // included) with the coordinator's error.
    let result = match reply {
        Reply::Now(r) => r,
        Reply::Later(rx) => rx
            .await
            .unwrap_or_else(|_| SyncResult::error(E::CoordinatorNotAvailable.code())),
    };
    response(result, version)
}

fn response(r: SyncResult, version: i16) -> SyncGroupResponse {
    let mut resp = SyncGroupResponse::default();
    resp.error_code = r.error;
    if version >= 5 {
        resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
        resp.protocol_name = r.protocol_name.map(StrBytes::from_string);
    }
    resp.assignment = r.assignment;
    resp
}
