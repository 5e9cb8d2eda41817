//! FindCoordinator: this broker coordinates every group (creating `__consumer_offsets` on first
//! use); transaction coordinators do not exist, so key type 1 is COORDINATOR_NOT_AVAILABLE.
//! v4+ answers a batch of keys.

use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

/// Answers FindCoordinator for a request that arrived on `listener`.
pub async fn handle(
    broker: &Arc<Broker>,
    req: &FindCoordinatorRequest,
    version: i16,
    listener: &str,
) -> FindCoordinatorResponse {
    let outcome = match req.key_type {
        // While loading Kafka answers COORDINATOR_NOT_AVAILABLE here (retriable lookup).
        0 => super::ready(broker)
            .await
            .map_err(|_| E::CoordinatorNotAvailable.code()),
        1 => Err(E::CoordinatorNotAvailable.code()),
        _ => Err(E::InvalidRequest.code()),
    };
    let (node, host, port) = match outcome {
        Ok(()) => endpoint(broker, listener),
        Err(_) => (-1, String::new(), -1),
    };
    let code = outcome.err().unwrap_or(0);
    let message = (code != 0).then(|| {
        StrBytes::from_string(
            kafka_protocol::error::ResponseError::try_from_code(code)
                .map(|e| e.to_string())
                .unwrap_or_default(),
        )
    });
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key.clone();
                c.node_id = BrokerId(node);
                c.host = StrBytes::from_string(host.clone());
                c.port = port;
                c.error_code = code;
                c.error_message = message.clone();
                c
            })
            .collect();
    } else {
        resp.error_code = code;
        if version >= 1 {
            resp.error_message = message;
        }
        resp.node_id = BrokerId(node);
        resp.host = StrBytes::from_string(host);
        resp.port = port;
    }
    resp
}

/// This broker's endpoint on the request's listener, as Metadata advertises it (the registered
/// one, else the config).
fn endpoint(broker: &Broker, listener: &str) -> (i32, String, i32) {
    let name = crate::api::metadata::client_listener(broker, listener);
    let configured = broker
        .config
        .advertised_listeners
        .iter()
        .find(|l| l.name == name)
        .map(|l| (l.host.clone(), i32::from(l.port)));
    let image = broker.image();
    let registered = image
        .brokers
        .get(&broker.config.node_id)
        .and_then(|b| b.endpoints.iter().find(|e| e.name == name))
        .map(|e| (e.host.clone(), i32::from(e.port)));
    let (host, port) = registered.or(configured).unwrap_or_default();
    (broker.config.node_id, host, port)
}
