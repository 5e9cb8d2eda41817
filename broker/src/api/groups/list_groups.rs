//! ListGroups with the v4 state filter and the v5 type filter (only `classic` groups exist).

use crate::api::RequestContext;
use crate::state::Broker;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use shale_raft::acl::op;
use std::sync::Arc;

/// Answers ListGroups.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let mut resp = ListGroupsResponse::default();
    if let Err(code) = super::ready(broker).await {
        resp.error_code = code;
        return resp;
    }
    let types_ok = version < 5
        || req.types_filter.is_empty()
        || req
            .types_filter
            .iter()
            .any(|t| t.as_str().eq_ignore_ascii_case("classic"));
    if !types_ok {
        return resp;
    }
    let states: Vec<String> = if version >= 4 {
        req.states_filter.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    let all = ctx.authz.cluster(op::DESCRIBE);
    resp.groups = broker
        .groups
        .with(|g| g.list(&states))
        .into_iter()
        // DESCRIBE on the cluster lists every group, else the ones the principal may describe.
        .filter(|g| all || ctx.authz.group(op::DESCRIBE, &g.group_id))
        .map(|g| {
            let mut l = ListedGroup::default();
            l.group_id = GroupId(StrBytes::from_string(g.group_id));
            l.protocol_type = StrBytes::from_string(g.protocol_type);
            if version >= 4 {
                l.group_state = StrBytes::from_static_str(g.state.name());
            }
            if version >= 5 {
                l.group_type = StrBytes::from_static_str("classic");
            }
            l
        })
        .collect();
    resp
}
