//! Forwarding controller-bound requests in a cluster, both ends, as Kafka's brokers forward
//! admin requests to the active controller.
//!
//! * The receiving broker ([`forward`]): a request of [`FORWARDED_APIS`] (topic, config, ACL,
//!   SCRAM, feature, election and reassignment changes) from a client, on a node that is not
//!   the active controller, goes in an Envelope ([`super::envelope`]) with the client's
//!   principal and address over the [`ControllerChannel`]; the controller's answer goes back to
//!   the client as it came. DescribeQuorum is always relayed, whole, once this broker has
//!   authorized it: only the quorum leader's controller listener can answer it. When the relay
//!   fails (no controller known, connection lost) the request is handled locally, where the
//!   controller's NOT_CONTROLLER (retriable) answers. A relayed answer's `throttle_time_ms`
//!   (the controller's `controller_mutation_rate`) mutes the client here, as Kafka's brokers
//!   do with forwarded responses.
//! * The active controller ([`LocalAdmin`]): an Envelope from a broker holding CLUSTER_ACTION
//!   runs through this broker's own handlers as the client it carries (authorized there, never
//!   forwarded again); an admin request sent to the controller listener directly runs as the
//!   connection's own principal.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Weak};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use shale_protocol::codec::decode_message;
use shale_protocol::codec::split_request_header;
use shale_protocol::kafka_protocol::error::ResponseError as E;
use shale_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig,
};
use shale_protocol::kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, ApiKey, BrokerId, CreateTopicsRequest,
    CreateTopicsResponse, ResponseHeader, TopicName,
};
use shale_protocol::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use shale_raft::acl::op as acl_op;
use shale_raft::kraft::RoleKind;
use shale_raft::CreateTopicSpec;
use tokio::sync::watch;

use super::admin_topics::CreateError;
use super::{envelope, ConnectionInfo, Response};
use crate::kraft::controller_channel::ControllerChannel;
use crate::kraft::driver::QuorumView;
use crate::kraft::lifecycle_manager::LifecycleState;
use crate::kraft::listener::{ForwardedRequests, Peer};
use crate::state::Broker;

/// How long a topic the broker creates for itself may take to reach its own image.
const TOPIC_VISIBLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The client requests only the active controller can carry out.
pub const FORWARDED_APIS: [ApiKey; 13] = [
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
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::AlterClientQuotas,
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
    (api_key, version): (i16, i16),
    frame: &Bytes,
) -> Option<Response> {
    let forwarder = broker.forwarder()?;
    let key = ApiKey::try_from(api_key).ok()?;
    let relayed = CONTROLLER_APIS.contains(&key)
        || (FORWARDED_APIS.contains(&key) && !forwarder.is_controller());
    if connection.forwarded || !relayed {
        return None;
    }
    let relayed = async {
        if CONTROLLER_APIS.contains(&key) {
            // The controller's listener answers it itself, so it is authorized here.
            let ctx = super::RequestContext::new(broker, &broker.image(), connection, "");
            if !ctx.authz.cluster(acl_op::DESCRIBE) {
                return Ok(None);
            }
            return forwarder.channel.forward(frame).await.map(Some);
        }
        let client = envelope::Client {
            principal: connection.principal.to_string(),
            address: connection.peer.ip(),
        };
        let body = envelope::request(frame, &client)?;
        let answer = forwarder
            .channel
            .send(ApiKey::Envelope, envelope::VERSION, &body)
            .await?;
        envelope::unwrap_response(answer).map(Some)
    };
    match relayed.await {
        Ok(None) => None,
        Ok(Some(response)) => {
            let throttle = relayed_throttle_ms(key, version, response.clone());
            connection.mute.rest(throttle);
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

/// The `throttle_time_ms` of a relayed CreateTopics, DeleteTopics or CreatePartitions answer
/// (the fields that carry the active controller's mutation quota); 0 for anything else.
fn relayed_throttle_ms(key: ApiKey, version: i16, mut response: Bytes) -> u64 {
    let carries = match key {
        ApiKey::CreateTopics => version >= 2,
        ApiKey::DeleteTopics => version >= 1,
        ApiKey::CreatePartitions => true,
        _ => false,
    };
    if !carries
        || ResponseHeader::decode(&mut response, key.response_header_version(version)).is_err()
        || response.len() < 4
    {
        return 0;
    }
    u64::try_from(response.get_i32()).unwrap_or(0)
}

/// Whether a request frame is one brokers forward (its api key is in [`FORWARDED_APIS`]).
fn forwardable(frame: &[u8]) -> bool {
    let key = frame.get(..2).map(|k| i16::from_be_bytes([k[0], k[1]]));
    key.and_then(|k| ApiKey::try_from(k).ok())
        .is_some_and(|k| FORWARDED_APIS.contains(&k))
}

/// The active controller's end: forwarded frames through this broker's handlers, as the
/// client that sent them.
#[derive(Debug)]
pub struct LocalAdmin {
    broker: Weak<Broker>,
    /// The listener whose endpoints answers describe brokers by.
    listener: Arc<str>,
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
            listener: Arc::from(listener),
        }
    }

    /// Runs one client request frame as `principal` from `address`; the response frame
    /// without its size prefix.
    async fn run(
        &self,
        broker: &Arc<Broker>,
        frame: Bytes,
        principal: Arc<str>,
        address: IpAddr,
    ) -> Option<Bytes> {
        let connection = ConnectionInfo {
            peer: SocketAddr::new(address, 0),
            listener: self.listener.clone(),
            forwarded: true,
            principal,
            mute: Default::default(),
        };
        let framed = match super::handle(broker, &connection, frame).await {
            Ok(Response::Frame(f)) => f,
            Ok(Response::Chunks(chunks)) => chunks.concat().into(),
            Ok(Response::None) => return None,
            Err(reason) => {
                tracing::info!(?reason, "refusing a forwarded request");
                return None;
            }
        };
        Some(framed.slice(4.min(framed.len())..))
    }

    /// An Envelope from a broker: its sender needs CLUSTER_ACTION; the inner request runs as
    /// the client it names. The size-prefixed Envelope response frame.
    async fn open_envelope(
        &self,
        broker: &Arc<Broker>,
        frame: Bytes,
        peer: &Peer,
    ) -> Option<Bytes> {
        let (header, body) = split_request_header(&frame).ok()?;
        let sender = broker
            .authorizer
            .for_request(&broker.image(), &peer.principal, || {
                super::context::acl_host(peer.addr)
            });
        let inner = match sender.granted_on_cluster(acl_op::CLUSTER_ACTION) {
            false => {
                tracing::warn!(principal = %peer.principal, "an envelope from a principal without CLUSTER_ACTION");
                Err(E::ClusterAuthorizationFailed.code())
            }
            true => match envelope::open(body) {
                // Only what brokers forward may come in an Envelope.
                Ok((inner, _)) if !forwardable(&inner) => Err(E::InvalidRequest.code()),
                Ok((inner, client)) => {
                    let principal = Arc::from(client.principal);
                    self.run(broker, inner, principal, client.address)
                        .await
                        .ok_or(E::UnknownServerError.code())
                }
                Err(e) => {
                    tracing::info!(error = %e, "a malformed envelope");
                    Err(E::InvalidRequest.code())
                }
            },
        };
        let body = envelope::response(inner).ok()?;
        // Envelope responses have the flexible header: correlation id, no tagged fields.
        let mut out = BytesMut::with_capacity(9 + body.len());
        out.put_i32(5 + body.len() as i32);
        out.put_i32(header.correlation_id);
        out.put_u8(0);
        out.extend_from_slice(&body);
        Some(out.freeze())
    }
}

impl ForwardedRequests for LocalAdmin {
    fn handles(&self, api_key: ApiKey) -> bool {
        api_key == ApiKey::Envelope || FORWARDED_APIS.contains(&api_key)
    }

    /// With ACLs on, the quorum's and the brokers' RPCs need CLUSTER_ACTION granted outright
    /// (voter changes ALTER), describing the quorum or cluster DESCRIBE; admin requests and
    /// Envelopes are authorized when answered.
    fn admits(&self, peer: &Peer, api_key: ApiKey) -> bool {
        let Some(broker) = self.broker.upgrade() else {
            return false;
        };
        if !broker.authorizer.enabled() || api_key == ApiKey::ApiVersions || self.handles(api_key) {
            return true;
        }
        let authz = broker
            .authorizer
            .for_request(&broker.image(), &peer.principal, || {
                super::context::acl_host(peer.addr)
            });
        match api_key {
            ApiKey::DescribeQuorum | ApiKey::DescribeCluster => authz.cluster(acl_op::DESCRIBE),
            ApiKey::AddRaftVoter | ApiKey::RemoveRaftVoter => {
                authz.granted_on_cluster(acl_op::ALTER)
            }
            _ => authz.granted_on_cluster(acl_op::CLUSTER_ACTION),
        }
    }

    fn answer<'a>(
        &'a self,
        frame: Bytes,
        peer: &'a Peer,
    ) -> Pin<Box<dyn Future<Output = Option<Bytes>> + Send + 'a>> {
        Box::pin(async move {
            let broker = self.broker.upgrade()?;
            if frame.get(..2) == Some(&(ApiKey::Envelope as i16).to_be_bytes()[..]) {
                return self.open_envelope(&broker, frame, peer).await;
            }
            // Sent to the controller listener directly: as the connection's own principal.
            let inner = self
                .run(&broker, frame, peer.principal.clone(), peer.addr.ip())
                .await?;
            let mut out = BytesMut::with_capacity(4 + inner.len());
            out.put_i32(inner.len() as i32);
            out.extend_from_slice(&inner);
            Some(out.freeze())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shale_protocol::kafka_protocol::messages::{
        CreatePartitionsResponse, DeleteTopicsResponse,
    };

    /// A response as relayed: its header (correlation id, tagged fields when flexible), then
    /// the body.
    fn relayed<M: Encodable>(key: ApiKey, version: i16, body: &M) -> Bytes {
        let mut out = BytesMut::new();
        let header = ResponseHeader::default().with_correlation_id(7);
        header
            .encode(&mut out, key.response_header_version(version))
            .unwrap();
        body.encode(&mut out, version).unwrap();
        out.freeze()
    }

    #[test]
    fn a_relayed_mutation_answer_carries_its_throttle_time() {
        let create = CreateTopicsResponse::default().with_throttle_time_ms(1500);
        for v in [2, 4, 5, 7] {
            let bytes = relayed(ApiKey::CreateTopics, v, &create);
            assert_eq!(
                relayed_throttle_ms(ApiKey::CreateTopics, v, bytes),
                1500,
                "v{v}"
            );
        }
        let delete = DeleteTopicsResponse::default().with_throttle_time_ms(20);
        let bytes = relayed(ApiKey::DeleteTopics, 6, &delete);
        assert_eq!(
            relayed_throttle_ms(ApiKey::DeleteTopics, 6, bytes.clone()),
            20
        );
        let parts = CreatePartitionsResponse::default().with_throttle_time_ms(3);
        let bytes = relayed(ApiKey::CreatePartitions, 3, &parts);
        assert_eq!(
            relayed_throttle_ms(ApiKey::CreatePartitions, 3, bytes.clone()),
            3
        );
        assert_eq!(
            relayed_throttle_ms(ApiKey::CreateTopics, 7, Bytes::from_static(&[0, 0])),
            0,
            "short"
        );
        assert_eq!(relayed_throttle_ms(ApiKey::AlterConfigs, 2, bytes), 0);
    }
}
