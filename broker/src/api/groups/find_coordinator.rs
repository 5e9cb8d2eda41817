//! FindCoordinator: a group's coordinator is the leader of its `__consumer_offsets` partition,
//! a transactional id's (key type 1) the leader of its `__transaction_state` partition (on a
//! single node, this broker; each topic is created on first use). v4+ answers a batch of keys.

use crate::api::RequestContext;
use crate::group::OFFSETS_TOPIC;
use crate::state::Broker;
use crate::txn::TXN_TOPIC;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use shale_raft::acl::op;
use std::sync::Arc;

/// One key's answer: the coordinator's (node, host, port), or an error code.
type Answer = Result<(i32, String, i32), i16>;

/// Answers FindCoordinator for a request that arrived on `listener`.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let listener: &str = &ctx.connection.listener;
    let ready = match req.key_type {
        // While loading Kafka answers COORDINATOR_NOT_AVAILABLE here (retriable lookup).
        0 => super::ready(broker)
            .await
            .map_err(|_| E::CoordinatorNotAvailable.code()),
        1 => crate::api::txn::ready(broker)
            .await
            .map_err(|_| E::CoordinatorNotAvailable.code()),
        _ => Err(E::InvalidRequest.code()),
    };
    let answer = |key: &str| -> Answer {
        match req.key_type {
            1 if !ctx.authz.transactional_id(op::DESCRIBE, key) => {
                return Err(E::TransactionalIdAuthorizationFailed.code())
            }
            0 if !ctx.authz.group(op::DESCRIBE, key) => {
                return Err(E::GroupAuthorizationFailed.code())
            }
            _ => {}
        }
        ready?;
        let (topic, partition) = match req.key_type {
            1 => (TXN_TOPIC, broker.txns.with(|c| c.partition_for(key))),
            _ => (OFFSETS_TOPIC, broker.groups.with(|g| g.partition_for(key))),
        };
        coordinator(broker, topic, partition, listener)
    };
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| {
                let (node, host, port, code, message) = fields(answer(key.as_str()));
                let mut c = Coordinator::default();
                c.key = key.clone();
                c.node_id = BrokerId(node);
                c.host = StrBytes::from_string(host);
                c.port = port;
                c.error_code = code;
                c.error_message = message;
                c
            })
            .collect();
    } else {
        let (node, host, port, code, message) = fields(answer(req.key.as_str()));
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

/// An answer as the response's fields: node, host, port, error code and message.
fn fields(answer: Answer) -> (i32, String, i32, i16, Option<StrBytes>) {
    match answer {
        Ok((node, host, port)) => (node, host, port, 0, None),
        Err(code) => {
            let message = kafka_protocol::error::ResponseError::try_from_code(code)
                .map(|e| e.to_string())
                .unwrap_or_default();
            (
                -1,
                String::new(),
                -1,
                code,
                Some(StrBytes::from_string(message)),
            )
        }
    }
}

/// The coordinator owning `topic`-`partition`: its leader (this broker on a single node), at
/// its endpoint on the request's listener.
fn coordinator(broker: &Broker, topic: &str, partition: i32, listener: &str) -> Answer {
    let image = broker.image();
    let leader = image
        .topic(topic)
        .and_then(|t| t.partitions.get(&partition))
        .map_or(-1, |p| p.leader);
    if leader == broker.config.node_id {
        return Ok(endpoint(broker, listener));
    }
    let name = crate::api::metadata::client_listener(broker, listener);
    image
        .brokers
        .get(&leader)
        .filter(|b| !b.fenced)
        .and_then(|b| crate::api::metadata::client_endpoint(b, name))
        .map(|(host, port, _)| (leader, host.to_string(), port))
        .ok_or(E::CoordinatorNotAvailable.code())
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
