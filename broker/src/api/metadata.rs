//! Metadata: brokers, topics and partitions from the metadata image, with auto-creation of
//! requested topics when `auto.create.topics.enable` and the request allow it.

use super::RequestContext;
use crate::acl::OPERATIONS_NOT_REQUESTED;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use shale_raft::acl::{op, resource};
use shale_raft::{BrokerRegistration, CreateTopicSpec, MetadataImage, TopicImage};
use std::sync::Arc;
use uuid::Uuid;

/// Internal topics, flagged `is_internal` as Kafka does.
pub fn is_internal(topic: &str) -> bool {
    matches!(topic, "__consumer_offsets" | "__transaction_state")
}

/// Builds the Metadata response for a request that arrived on `listener`, creating missing topics
/// first when allowed.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let listener: &str = &ctx.connection.listener;
    let authz = &ctx.authz;
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    let allow_create =
        broker.config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let mut create_errors = Vec::new();
    if !all && allow_create {
        let image = broker.image();
        for t in req.topics.iter().flatten() {
            let Some(name) = &t.name else { continue };
            if image.topic(name.as_str()).is_none() && authz.topic(op::DESCRIBE, name) {
                let may_create =
                    authz.cluster(op::CREATE) || authz.topic(op::CREATE, name.as_str());
                let created = match may_create {
                    true => auto_create(broker, name.as_str()).await,
                    false => Err(E::TopicAuthorizationFailed.code()),
                };
                if let Err(code) = created {
                    create_errors.push((name.clone(), code));
                }
            }
        }
    }
    let image = broker.image();
    let mut resp = MetadataResponse::default();
    resp.brokers = brokers(&image, client_listener(broker, listener));
    if version >= 2 {
        resp.cluster_id = Some(StrBytes::from_string(image.cluster_id.clone()));
    }
    if version >= 1 {
        resp.controller_id = BrokerId(broker.config.node_id);
    }
    resp.cluster_authorized_operations = OPERATIONS_NOT_REQUESTED;
    if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = match authz.cluster(op::DESCRIBE) {
            true => authz.operations(resource::CLUSTER, resource::CLUSTER_NAME),
            false => 0,
        };
    }
    let with_operations = |mut m: MetadataResponseTopic, name: &str| {
        if version >= 8 && req.include_topic_authorized_operations {
            m.topic_authorized_operations = authz.operations(resource::TOPIC, name);
        }
        m
    };
    if all {
        resp.topics = image
            .topics
            .values()
            .filter(|t| authz.topic(op::DESCRIBE, &t.name))
            .map(|t| with_operations(topic(&image, t, version), &t.name))
            .collect();
        return resp;
    }
    for t in req.topics.iter().flatten() {
        let found = match &t.name {
            Some(name) => image.topic(name.as_str()),
            None => image.topic_by_id(&t.topic_id),
        };
        let name = t
            .name
            .as_ref()
            .map(|n| n.as_str())
            .or(found.map(|f| f.name.as_str()));
        if name.is_some_and(|n| !authz.topic(op::DESCRIBE, n)) {
            let denied = E::TopicAuthorizationFailed.code();
            resp.topics
                .push(error_topic(t.name.clone(), t.topic_id, denied));
            continue;
        }
        let entry = match (found, &t.name) {
            (Some(ti), _) => with_operations(topic(&image, ti, version), &ti.name),
            (None, Some(name)) => {
                let code = create_errors
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, c)| *c)
                    .unwrap_or_else(|| E::UnknownTopicOrPartition.code());
                error_topic(Some(name.clone()), Uuid::nil(), code)
            }
            (None, None) => error_topic(None, t.topic_id, E::UnknownTopicId.code()),
        };
        resp.topics.push(entry);
    }
    resp
}

/// Creates a topic with the broker defaults; the error code to report otherwise.
pub async fn auto_create(broker: &Arc<Broker>, name: &str) -> Result<(), i16> {
    let spec = CreateTopicSpec {
        name: name.to_string(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: vec![],
        configs: vec![],
    };
    match super::admin_topics::create_internal(broker, spec).await {
        Ok(()) => {
            tracing::info!(topic = name, "auto-created topic");
            Ok(())
        }
        Err(e) if e.is_already_exists() => Ok(()),
        Err(e) => Err(e.code_and_message().0),
    }
}

/// The listener whose endpoints a request arriving on `listener` is answered with: that listener,
/// as in Kafka; a request on a listener clients are never given (a controller listener) gets the
/// first advertised one.
pub fn client_listener<'a>(broker: &'a Broker, listener: &'a str) -> &'a str {
    let advertised = &broker.config.advertised_listeners;
    match advertised.iter().find(|l| l.name == listener) {
        Some(l) => &l.name,
        None => &advertised[0].name,
    }
}

/// Host, port and rack clients on `listener` should use for a registered broker; `None` when the
/// broker has no endpoint on that listener (Kafka leaves such brokers out).
pub fn client_endpoint(
    b: &BrokerRegistration,
    listener: &str,
) -> Option<(StrBytes, i32, Option<StrBytes>)> {
    let ep = b.endpoints.iter().find(|e| e.name == listener)?;
    Some((
        StrBytes::from_string(ep.host.clone()),
        i32::from(ep.port),
        b.rack.clone().map(StrBytes::from_string),
    ))
}

fn brokers(image: &MetadataImage, listener: &str) -> Vec<MetadataResponseBroker> {
    image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let mut m = MetadataResponseBroker::default();
            m.node_id = BrokerId(b.id);
            (m.host, m.port, m.rack) = client_endpoint(b, listener)?;
            Some(m)
        })
        .collect()
}

/// One topic, with only the fields `version` has (kafka-protocol refuses to encode others). A
/// partition without a live leader gets LEADER_NOT_AVAILABLE and its replicas on brokers that
/// are gone or fenced are listed offline, as Kafka answers.
fn topic(image: &MetadataImage, t: &TopicImage, version: i16) -> MetadataResponseTopic {
    let live = |id: i32| image.brokers.get(&id).is_some_and(|b| !b.fenced);
    let mut m = MetadataResponseTopic::default();
    m.name = Some(TopicName(StrBytes::from_string(t.name.clone())));
    if version >= 10 {
        m.topic_id = t.id;
    }
    m.is_internal = version >= 1 && is_internal(&t.name);
    m.topic_authorized_operations = i32::MIN;
    m.partitions = t
        .partitions
        .iter()
        .map(|(&index, p)| {
            let mut mp = MetadataResponsePartition::default();
            mp.partition_index = index;
            mp.leader_id = BrokerId(p.leader);
            if version >= 7 {
                mp.leader_epoch = p.leader_epoch;
            }
            mp.replica_nodes = p.replicas.iter().map(|&r| BrokerId(r)).collect();
            mp.isr_nodes = p.isr.iter().map(|&r| BrokerId(r)).collect();
            if !live(p.leader) {
                mp.error_code = E::LeaderNotAvailable.code();
                mp.leader_id = BrokerId(-1);
            }
            if version >= 5 {
                let offline = p.replicas.iter().filter(|&&r| !live(r));
                mp.offline_replicas = offline.map(|&r| BrokerId(r)).collect();
            }
            mp
        })
        .collect();
    m
}

fn error_topic(name: Option<TopicName>, id: uuid::Uuid, code: i16) -> MetadataResponseTopic {
    let mut m = MetadataResponseTopic::default();
    m.name = name;
    m.topic_id = id;
    m.error_code = code;
    m.topic_authorized_operations = i32::MIN;
    m
}
