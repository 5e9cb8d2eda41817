//! LeaveGroup: one member (v0–2) or a batch of members (v3+, KIP-345).

use crate::api::RequestContext;
use crate::group::LeavingMember;
use crate::state::Broker;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use shale_raft::acl::op;
use std::sync::Arc;

/// Answers LeaveGroup.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let mut resp = LeaveGroupResponse::default();
    if let Err(code) = super::ready_as(broker, ctx, op::READ, req.group_id.as_str()).await {
        resp.error_code = code;
        return resp;
    }
    let leaving: Vec<LeavingMember> = if version >= 3 {
        req.members
            .iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: req.member_id.to_string(),
            instance_id: None,
        }]
    };
    // A group left empty writes its metadata; as in Kafka a failure there is only logged.
    let (result, _) = super::write(broker, |g, now| {
        g.leave(req.group_id.as_str(), &leaving, now)
    })
    .await;
    match result {
        Err(code) => resp.error_code = code,
        Ok(codes) if version >= 3 => {
            resp.members = req
                .members
                .iter()
                .zip(codes)
                .map(|(m, code)| {
                    let mut r = MemberResponse::default();
                    r.member_id = m.member_id.clone();
                    r.group_instance_id = m.group_instance_id.clone();
                    r.error_code = code;
                    r
                })
                .collect();
        }
        Ok(codes) => resp.error_code = codes.first().copied().unwrap_or(0),
    }
    resp
}
