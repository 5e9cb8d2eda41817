//! DescribeGroups: state, protocol and members; an unknown group is `Dead` (v0–5) or
//! GROUP_ID_NOT_FOUND (v6+).

use crate::acl::OPERATIONS_NOT_REQUESTED;
use crate::api::RequestContext;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use shale_raft::acl::{op, resource};
use std::sync::Arc;

/// Answers DescribeGroups.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let ready = super::ready(broker).await;
    let mut resp = DescribeGroupsResponse::default();
    for id in &req.groups {
        let mut out = DescribedGroup::default();
        out.group_id = id.clone();
        out.authorized_operations = OPERATIONS_NOT_REQUESTED;
        if !ctx.authz.group(op::DESCRIBE, id) {
            out.error_code = E::GroupAuthorizationFailed.code();
            resp.groups.push(out);
            continue;
        }
        if version >= 3 && req.include_authorized_operations {
            out.authorized_operations = ctx.authz.operations(resource::GROUP, id);
        }
        if let Err(code) = ready.and_then(|()| super::coordinates(broker, id.as_str())) {
            out.error_code = code;
            resp.groups.push(out);
            continue;
        }
        match broker.groups.with(|g| g.describe(id.as_str())) {
            None => {
                out.group_state = StrBytes::from_static_str("Dead");
                if version >= 6 {
                    out.error_code = E::GroupIdNotFound.code();
                    out.error_message = Some(StrBytes::from_string(format!(
                        "Group {} not found.",
                        id.as_str()
                    )));
                }
            }
            Some(d) => {
                out.group_state = StrBytes::from_static_str(d.state.name());
                out.protocol_type = StrBytes::from_string(d.protocol_type);
                out.protocol_data = StrBytes::from_string(d.protocol);
                out.members = d
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut dm = DescribedGroupMember::default();
                        dm.member_id = StrBytes::from_string(m.member_id);
                        if version >= 4 {
                            dm.group_instance_id = m.instance_id.map(StrBytes::from_string);
                        }
                        dm.client_id = StrBytes::from_string(m.client_id);
                        dm.client_host = StrBytes::from_string(m.client_host);
                        dm.member_metadata = m.metadata;
                        dm.member_assignment = m.assignment;
                        dm
                    })
                    .collect();
            }
        }
        resp.groups.push(out);
    }
    resp
}
