//! Forwarding controller-bound requests in a cluster, both ends, as Kafka's brokers forward
//! admin requests to the active controller.
//!
//! * The receiving broker ([`forward`]): a CreateTopics, DeleteTopics, CreatePartitions,
//!   AlterConfigs, IncrementalAlterConfigs, ElectLeaders, AlterPartitionReassignments,
//!   ListPartitionReassignments or UpdateFeatures from a client, on a node that is not the active controller, is relayed whole over the [`ControllerChannel`]; the controller's answer goes
//!   back to the client as it came. DescribeQuorum is always relayed: only the quorum leader's
//!   controller listener can answer it. When the relay fails (no controller known, connection lost)
//!   the request is handled locally, where the controller's NOT_CONTROLLER (retriable) answers.
//! * The active controller ([`LocalAdmin`]): forwarded frames arriving on its controller
//!   listener run through this broker's own handlers, never forwarded again.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use shale_protocol::codec::decode_message;
use shale_protocol::kafka_protocol::error::ResponseError as E;
use shale_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig,
};
use shale_protocol::kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, ApiKey, BrokerId, CreateTopicsRequest,
    CreateTopicsResponse, TopicName,
};
use shale_protocol::kafka_protocol::protocol::{Encodable, StrBytes};
use shale_raft::kraft::RoleKind;
use shale_raft::CreateTopicSpec;
use tokio::sync::watch;

use super::admin_topics::CreateError;
use super::{ConnectionInfo, Response};
use crate::kraft::controller_channel::ControllerChannel;
use crate::kraft::driver::QuorumView;
use crate::kraft::lifecycle_manager::LifecycleState;
use crate::kraft::listener::ForwardedRequests;
use crate::state::Broker;

/// How long a topic the broker creates for itself may take to reach its own image.
const TOPIC_VISIBLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The client requests only the active controller can carry out.
pub const FORWARDED_APIS: [ApiKey; 10] = [
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::ElectLeaders,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::UpdateFeatures,
    ApiKey::AlterUserScramCredentials,
];

/// The client requests the active controller's listener answers itself: relayed even by the
/// node that leads (to its own controller listener), never through the broker's handlers.
const CONTROLLER_APIS: [ApiKey; 1] = [ApiKey::DescribeQuorum];

/// A broker's way to the active controller.
#[derive(Debug)]
pub struct Forwarder {
    channel: Arc<ControllerChannel>,
    view: watch::Receiver<QuorumView>,
    /// The offset of the metadata this broker applied.
    applied: watch::Receiver<i64>,
    /// This broker's registration as the controller last answered it (its broker epoch).
    lifecycle: watch::Receiver<LifecycleState>,
}

impl Forwarder {
    pub fn new(
        channel: Arc<ControllerChannel>,
        view: watch::Receiver<QuorumView>,
        applied: watch::Receiver<i64>,
        lifecycle: watch::Receiver<LifecycleState>,
    ) -> Forwarder {
        Forwarder {
            channel,
            view,
            applied,
            lifecycle,
        }
    }

    /// The active controller, if known.
    pub fn active_controller(&self) -> Option<i32> {
        self.view.borrow().leader
    }

    /// Whether this node is the quorum leader (its controller can write).
    pub(crate) fn is_controller(&self) -> bool {
        self.view.borrow().role == RoleKind::Leader
    }

    /// Creates a topic through the active controller (a CreateTopics request, as a client
    /// would send) and waits until this broker's image has it.
    pub(crate) async fn create_topic(
        &self,
        broker: &Broker,
        spec: CreateTopicSpec,
    ) -> Result<(), CreateError> {
        let name = spec.name.clone();
        let (code, message) = match self.send_create(spec).await {
            Ok(answer) => answer,
            Err(e) => (E::NotController.code(), e.to_string()),
        };
        if code != 0 {
            return Err(CreateError::Remote(code, message));
        }
        let mut applied = self.applied.clone();
        let visible = applied.wait_for(|_| broker.image().topic(&name).is_some());
        let seen = matches!(
            tokio::time::timeout(TOPIC_VISIBLE_TIMEOUT, visible).await,
            Ok(Ok(_))
        );
        match seen {
            true => Ok(()),
            false => Err(CreateError::Remote(
                E::RequestTimedOut.code(),
                format!("topic {name} created but not yet in this broker's metadata"),
            )),
        }
    }

    /// A block of producer ids from the active controller (AllocateProducerIds, as Kafka's
    /// brokers ask for theirs): the first id and how many; a Kafka error code and message when
    /// refused or unreachable.
    pub(crate) async fn allocate_producer_ids(
        &self,
        broker_id: i32,
    ) -> Result<(i64, i32), (i16, String)> {
        const VERSION: i16 = 0;
        let epoch = self.lifecycle.borrow().broker_epoch;
        let request = AllocateProducerIdsRequest::default()
            .with_broker_id(BrokerId(broker_id))
            .with_broker_epoch(epoch);
        fn unreachable(e: impl std::fmt::Display) -> (i16, String) {
            (E::CoordinatorNotAvailable.code(), e.to_string())
        }
        let mut body = bytes::BytesMut::new();
        request.encode(&mut body, VERSION).map_err(unreachable)?;
        let answer = self
            .channel
            .send(ApiKey::AllocateProducerIds, VERSION, &body)
            .await
            .map_err(unreachable)?;
        let response: AllocateProducerIdsResponse =
            decode_message(answer, VERSION).map_err(unreachable)?;
        match response.error_code {
            0 => Ok((response.producer_id_start.0, response.producer_id_len)),
            code => Err((code, "the controller refused AllocateProducerIds".into())),
        }
    }

    /// Sends one CreateTopics request; the topic's error code and message.
    async fn send_create(&self, spec: CreateTopicSpec) -> anyhow::Result<(i16, String)> {
        const VERSION: i16 = 7;
        let configs = spec
            .configs
            .into_iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string(k))
                    .with_value(Some(StrBytes::from_string(v)))
            })
            .collect();
        let topic = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(spec.name)))
            .with_num_partitions(spec.num_partitions)
            .with_replication_factor(spec.replication_factor)
            .with_configs(configs);
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(TOPIC_VISIBLE_TIMEOUT.as_millis() as i32);
        let mut body = bytes::BytesMut::new();
        request.encode(&mut body, VERSION)?;
        let answer = self
            .channel
            .send(ApiKey::CreateTopics, VERSION, &body)
            .await?;
        let response: CreateTopicsResponse = decode_message(answer, VERSION)?;
        let topic = response
            .topics
            .first()
            .ok_or_else(|| anyhow::anyhow!("CreateTopics answer without the topic"))?;
        let message = topic.error_message.as_ref().map(|m| m.to_string());
        Ok((topic.error_code, message.unwrap_or_default()))
    }
}

/// Relays `frame` to the active controller when it is controller-bound and this node is not
/// the active controller; `None` means: handle it here.
pub async fn forward(
    broker: &Broker,
    connection: &ConnectionInfo,
    api_key: i16,
    frame: &Bytes,
) -> Option<Response> {
    let forwarder = broker.forwarder()?;
    let key = ApiKey::try_from(api_key).ok()?;
    let relayed = CONTROLLER_APIS.contains(&key)
        || (FORWARDED_APIS.contains(&key) && !forwarder.is_controller());
    if connection.forwarded || !relayed {
        return None;
    }
    match forwarder.channel.forward(frame).await {
        Ok(response) => {
            let mut out = bytes::BytesMut::with_capacity(4 + response.len());
            out.extend_from_slice(&(response.len() as i32).to_be_bytes());
            out.extend_from_slice(&response);
            Some(Response::Frame(out.freeze()))
        }
        Err(e) => {
            tracing::info!(api = ?key, error = %e, "forwarding to the active controller failed");
            None
        }
    }
}

/// The active controller's end: forwarded frames through this broker's handlers.
#[derive(Debug)]
pub struct LocalAdmin {
    broker: Weak<Broker>,
    connection: ConnectionInfo,
}

impl LocalAdmin {
    pub fn new(broker: &Arc<Broker>) -> LocalAdmin {
        let listener = broker
            .config
            .advertised_listeners
            .first()
            .map_or("PLAINTEXT", |l| l.name.as_str());
        LocalAdmin {
            broker: Arc::downgrade(broker),
            connection: ConnectionInfo {
                peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                listener: Arc::from(listener),
                forwarded: true,
                principal: Arc::from(crate::tls::ANONYMOUS),
            },
        }
    }
}

impl ForwardedRequests for LocalAdmin {
    fn handles(&self, api_key: ApiKey) -> bool {
        FORWARDED_APIS.contains(&api_key)
    }

    fn answer(&self, frame: Bytes) -> Pin<Box<dyn Future<Output = Option<Bytes>> + Send + '_>> {
        Box::pin(async move {
            let broker = self.broker.upgrade()?;
            match super::handle(&broker, &self.connection, frame).await {
                Ok(Response::Frame(f)) => Some(f),
                Ok(Response::Chunks(chunks)) => Some(chunks.concat().into()),
                Ok(Response::None) => None,
                Err(reason) => {
                    tracing::info!(?reason, "refusing a forwarded request");
                    None
                }
            }
        })
    }
}
