//! JoinGroup: the response waits for the rebalance to complete (or for the coordinator's
//! timers) unless the core answers at once.

use crate::api::RequestContext;
use crate::group::{JoinParams, JoinResult, Reply};
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use shale_raft::acl::op;
use std::sync::Arc;

/// Answers JoinGroup.
pub async fn handle(
    broker: &Arc<Broker>,
    req: &JoinGroupRequest,
    version: i16,
    ctx: &RequestContext<'_>,
) -> JoinGroupResponse {
    if let Err(code) = super::ready_as(broker, ctx, op::READ, req.group_id.as_str()).await {
        return response(JoinResult::error(code, req.member_id.as_str()), version);
    }
    let params = JoinParams {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id.to_string(),
        client_host: ctx.client_host(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        version,
    };
    // A static member's new id is written before it takes effect; a failed write answers
    // this request (through the reply) with the coordinator's error.
    let (reply, _) = super::write(broker, |g, now| g.join(params, now)).await;
    let result = match reply {
        Reply::Now(r) => r,
        Reply::Later(rx) => rx.await.unwrap_or_else(|_| {
            JoinResult::error(E::CoordinatorNotAvailable.code(), req.member_id.as_str())
        }),
    };
    response(result, version)
}

fn response(r: JoinResult, version: i16) -> JoinGroupResponse {
    let mut resp = JoinGroupResponse::default();
    resp.error_code = r.error;
    resp.generation_id = r.generation;
    if version >= 7 {
        resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
        resp.protocol_name = r.protocol_name.map(StrBytes::from_string);
    } else {
        resp.protocol_name = Some(StrBytes::from_string(r.protocol_name.unwrap_or_default()));
    }
    resp.leader = StrBytes::from_string(r.leader);
    if version >= 9 {
        resp.skip_assignment = r.skip_assignment;
    }
    resp.member_id = StrBytes::from_string(r.member_id);
    resp.members = r
        .members
        .into_iter()
        .map(|m| {
            let mut out = JoinGroupResponseMember::default();
            out.member_id = StrBytes::from_string(m.member_id);
            if version >= 5 {
                out.group_instance_id = m.instance_id.map(StrBytes::from_string);
            }
            out.metadata = m.metadata;
            out
        })
        .collect();
    resp
}
