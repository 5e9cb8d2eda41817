//! FindCoordinator. The group and transaction coordinators are not built yet, so every key is
//! answered with COORDINATOR_NOT_AVAILABLE (retriable). The API is still served because
//! librdkafka only enables LZ4 compression when the broker advertises FindCoordinator from v0,
//! and because consumers configured with a `group.id` look their coordinator up even when they
//! only `assign()` partitions.

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

const MESSAGE: &str = "The coordinator is not available.";

/// Answers every key with COORDINATOR_NOT_AVAILABLE.
pub fn handle(req: &FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key.clone();
                c.node_id = BrokerId(-1);
                c.port = -1;
                c.error_code = E::CoordinatorNotAvailable.code();
                c.error_message = Some(StrBytes::from_static_str(MESSAGE));
                c
            })
            .collect();
    } else {
        resp.error_code = E::CoordinatorNotAvailable.code();
        if version >= 1 {
            resp.error_message = Some(StrBytes::from_static_str(MESSAGE));
        }
        resp.node_id = BrokerId(-1);
        resp.port = -1;
    }
    resp
}
