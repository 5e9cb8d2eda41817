//! DeleteGroups: only empty groups; their offsets and metadata get tombstones.

use crate::state::Broker;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use std::sync::Arc;

/// Answers DeleteGroups.
pub async fn handle(broker: &Arc<Broker>, req: &DeleteGroupsRequest) -> DeleteGroupsResponse {
    let ready = super::ready(broker).await;
    let ids: Vec<String> = req.groups_names.iter().map(|g| g.to_string()).collect();
    let codes = match ready {
        Err(code) => vec![code; ids.len()],
        Ok(()) => {
            let (codes, persisted) = super::write(broker, |g, _| g.delete_groups(&ids)).await;
            ids.iter()
                .zip(codes)
                .map(|(id, c)| match (c, persisted.result_for(id)) {
                    (0, Err(code)) => code,
                    (c, _) => c,
                })
                .collect()
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
