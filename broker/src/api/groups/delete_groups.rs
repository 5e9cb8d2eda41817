//! DeleteGroups: only empty groups; their offsets and metadata get tombstones.

use crate::api::RequestContext;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use shale_raft::acl::op;
use std::sync::Arc;

/// Answers DeleteGroups.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let ready = super::ready(broker).await;
    let ids: Vec<String> = req.groups_names.iter().map(|g| g.to_string()).collect();
    let deletable = |id: &String| ctx.authz.group(op::DELETE, id);
    let codes = match ready {
        Err(code) => vec![code; ids.len()],
        Ok(()) => {
            // Groups coordinated elsewhere answer NOT_COORDINATOR; the rest are deleted here.
            let (here, elsewhere): (Vec<String>, Vec<String>) = ids
                .iter()
                .filter(|id| deletable(id))
                .cloned()
                .partition(|id| super::coordinates(broker, id).is_ok());
            let (codes, persisted) = super::write(broker, |g, _| g.delete_groups(&here)).await;
            let mut answers: std::collections::HashMap<&str, i16> = here
                .iter()
                .zip(codes)
                .map(|(id, c)| match (c, persisted.result_for(id)) {
                    (0, Err(code)) => (id.as_str(), code),
                    (c, _) => (id.as_str(), c),
                })
                .collect();
            for id in &elsewhere {
                answers.insert(id.as_str(), E::NotCoordinator.code());
            }
            for id in ids.iter().filter(|id| !deletable(id)) {
                answers.insert(id.as_str(), E::GroupAuthorizationFailed.code());
            }
            ids.iter().map(|id| answers[id.as_str()]).collect()
        }
    };
    let mut resp = DeleteGroupsResponse::default();
    resp.results = req
        .groups_names
        .iter()
        .zip(codes)
        .map(|(g, code)| {
            let mut r = DeletableGroupResult::default();
            r.group_id = g.clone();
            r.error_code = code;
            r
        })
        .collect();
    resp
}
