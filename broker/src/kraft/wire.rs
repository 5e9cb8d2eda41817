//! The KRaft wire adapter: the multi-voter core's [`Message`]s as the request and response
//! bodies of Kafka's real KRaft RPCs (Vote 52, BeginQuorumEpoch 53, EndQuorumEpoch 54,
//! Fetch 1 on `__cluster_metadata-0`, FetchSnapshot 59) and DescribeQuorum 55, so Shale
//! controllers and Kafka 4.x controllers understand each other on the controller listener.
//!
//! Bodies only: request/response headers, framing and correlation ids belong to the runtime.
//!
//! ```text
//!  outbound   core Command::Send{to, msg} ─encode_request──► body ──► peer
//!             peer's response body ─decode_response(sent msg)──► core Message (or None)
//!  inbound    peer's request body ─decode_request(seq)──► Inbound{from, msg} ──► core
//!             core's answer ─encode_response(&Inbound)──► body ──► peer
//!             refused outright (bad cluster id, wrong partition, not a controller)
//!                          ─error_response(api, version, code)──► body
//! ```
//!
//! Per-request fields the core lacks are recovered from the other side of the exchange:
//! a response is decoded against the request that was sent (Fetch/FetchSnapshot `seq`, the
//! Vote's `pre_vote`, the fetch offset an empty record set starts at), and an inbound request
//! is given a runtime-chosen `seq` that the core echoes in its answer.
//!
//! Kafka's conventions kept here (KafkaRaftClient/RaftUtil in Kafka 4.x):
//! * A KIP-996 pre-vote carries the prospective's *current* epoch on the wire; the core's
//!   pre-vote asks for `epoch + 1`, so the adapter subtracts/adds one.
//! * A request whose ClusterId is present and differs from ours is refused with
//!   INCONSISTENT_CLUSTER_ID (an absent ClusterId is accepted); a request for another topic or
//!   partition gets INVALID_REQUEST (Fetch by topic id, v13+), except FetchSnapshot, which
//!   gets UNKNOWN_TOPIC_OR_PARTITION.
//! * Answers to a request from an older epoch carry FENCED_LEADER_EPOCH at partition level.
//! * Responses carry the leader's endpoint on our listener in the tagged `NodeEndpoints`
//!   (KIP-853) when the leader is known: Vote/Begin/End/FetchSnapshot v1+, Fetch v17+.
//! * No directory ids (KIP-853): the core has none, so every directory id is the zero UUID,
//!   which Kafka reads as "no directory".
//!
//! Decoding goes through [`shale_protocol::codec::decode_message`] (guarded against huge
//! claimed array lengths), so truncated or garbage bodies are a [`WireError`], never a panic.
//! Records in Fetch responses are the core's entries as Kafka v2 batches
//! ([`shale_raft::kraft::codec`]).

mod describe;
mod election;
mod fetch;
pub use fetch::node_endpoints;

pub use describe::{
    decode_describe_quorum, decode_describe_quorum_request, encode_describe_quorum,
    encode_describe_quorum_error, DescribedQuorum, QuorumStatus, ReplicaStatus,
};

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{self as km, ApiKey, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use shale_protocol::codec::decode_message;
use shale_raft::kraft::{FetchError, Message, NodeId};

/// The metadata log's topic name.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// The metadata log's only partition.
pub const METADATA_PARTITION: i32 = 0;
/// MaxBytes of our Fetch and FetchSnapshot requests (Kafka's KRaft client asks for 8 MiB).
pub const FETCH_MAX_BYTES: i32 = 8 * 1024 * 1024;
/// Default MaxWaitMs of our Fetch requests: how long the leader may park a fetch with no new
/// records (Kafka's KRaft client uses 500 ms).
pub const DEFAULT_FETCH_MAX_WAIT_MS: i32 = 500;

/// The Kafka error codes this adapter reads and writes.
pub mod codes {
    use kafka_protocol::ResponseError as E;

    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = E::UnknownTopicOrPartition.code();
    pub const NOT_LEADER_OR_FOLLOWER: i16 = E::NotLeaderOrFollower.code();
    pub const BROKER_NOT_AVAILABLE: i16 = E::BrokerNotAvailable.code();
    pub const UNSUPPORTED_VERSION: i16 = E::UnsupportedVersion.code();
    pub const NOT_CONTROLLER: i16 = E::NotController.code();
    pub const INVALID_REQUEST: i16 = E::InvalidRequest.code();
    pub const FENCED_LEADER_EPOCH: i16 = E::FencedLeaderEpoch.code();
    pub const UNKNOWN_LEADER_EPOCH: i16 = E::UnknownLeaderEpoch.code();
    pub const SNAPSHOT_NOT_FOUND: i16 = E::SnapshotNotFound.code();
    pub const POSITION_OUT_OF_RANGE: i16 = E::PositionOutOfRange.code();
    pub const INCONSISTENT_CLUSTER_ID: i16 = E::InconsistentClusterId.code();
    pub const INVALID_VOTER_KEY: i16 = E::InvalidVoterKey.code();
    pub const MISMATCHED_ENDPOINT_TYPE: i16 = E::MismatchedEndpointType.code();
    pub const UNSUPPORTED_ENDPOINT_TYPE: i16 = E::UnsupportedEndpointType.code();
}

/// A node's controller-listener address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// What the adapter needs to know about this node and the quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireContext {
    /// Sent in every request; requests carrying another id are refused.
    pub cluster_id: String,
    /// This node's id (the BeginQuorumEpoch/Vote `VoterId` a peer must address us by).
    pub local_id: NodeId,
    /// The controller listener's name (`controller.listener.names`, e.g. `CONTROLLER`): the
    /// listener named in BeginQuorumEpoch/EndQuorumEpoch `LeaderEndpoints` and DescribeQuorum.
    pub listener_name: String,
    /// Known controller-listener endpoints by node id (the local node's included): the
    /// leader's goes into responses' `NodeEndpoints`, ours into `LeaderEndpoints`.
    pub endpoints: BTreeMap<NodeId, Endpoint>,
    /// MaxWaitMs of our Fetch requests.
    pub fetch_max_wait_ms: i32,
    /// How other nodes' controller listeners are reached (plain TCP or TLS).
    pub dialer: crate::tls::Dialer,
}

impl WireContext {
    /// A context with no known endpoints and the default fetch wait.
    pub fn new(
        cluster_id: impl Into<String>,
        local_id: NodeId,
        listener: impl Into<String>,
    ) -> Self {
        WireContext {
            cluster_id: cluster_id.into(),
            local_id,
            listener_name: listener.into(),
            endpoints: BTreeMap::new(),
            fetch_max_wait_ms: DEFAULT_FETCH_MAX_WAIT_MS,
            dialer: crate::tls::Dialer::plaintext(),
        }
    }

    fn endpoint(&self, node: Option<NodeId>) -> Option<(NodeId, &Endpoint)> {
        let node = node.filter(|&n| n >= 0)?;
        self.endpoints.get(&node).map(|e| (node, e))
    }
}

/// A request body ready for the runtime to frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundRequest {
    pub api_key: ApiKey,
    pub version: i16,
    pub body: Bytes,
}

/// A decoded inbound request: who sent it and what it means to the core. Keep it to encode the
/// answer ([`encode_response`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    pub api_key: ApiKey,
    pub version: i16,
    /// The sender: Fetch's ReplicaState.ReplicaId (v15+) or ReplicaId, FetchSnapshot's
    /// ReplicaId, Vote's candidate, Begin/EndQuorumEpoch's leader.
    pub from: NodeId,
    pub msg: Message,
}

/// Why a body could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Not one of the KRaft RPCs this adapter speaks.
    #[error("api key {0} is not a KRaft RPC")]
    UnsupportedApi(i16),
    #[error("unsupported version {version} of {api_key:?}")]
    UnsupportedVersion { api_key: ApiKey, version: i16 },
    /// Truncated, garbage or internally inconsistent bytes.
    #[error("malformed {api_key:?} v{version}: {reason}")]
    Malformed {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
    /// A well-formed request we refuse outright: answer it with
    /// [`error_response`]`(api_key, version, code)`.
    #[error("refusing {api_key:?} with error code {code}: {reason}")]
    Refused {
        api_key: ApiKey,
        code: i16,
        reason: String,
    },
    /// The peer's response carries an error the core has no message for (a top-level error,
    /// or a partition error other than the fetch errors and epoch fencing). Treat it as no
    /// answer.
    #[error("{api_key:?} response carries error code {code}")]
    ErrorResponse { api_key: ApiKey, code: i16 },
    /// This message cannot be expressed at this version (a pre-vote below Vote v2, a value
    /// out of the field's range), or encoding failed.
    #[error("cannot encode {api_key:?} v{version}: {reason}")]
    Encode {
        api_key: ApiKey,
        version: i16,
        reason: String,
    },
    /// The caller passed the wrong kind of message (an answer that does not match the request,
    /// a response where a request was expected).
    #[error("{0}")]
    Mismatch(String),
}

impl WireError {
    /// The error code to refuse the request with, for errors that arise decoding a request
    /// (`Refused`, `UnsupportedVersion`; malformed requests get INVALID_REQUEST).
    pub fn refusal_code(&self) -> Option<i16> {
        match self {
            WireError::Refused { code, .. } => Some(*code),
            WireError::UnsupportedVersion { .. } => Some(codes::UNSUPPORTED_VERSION),
            WireError::Malformed { .. } => Some(codes::INVALID_REQUEST),
            WireError::UnsupportedApi(_)
            | WireError::ErrorResponse { .. }
            | WireError::Encode { .. }
            | WireError::Mismatch(_) => None,
        }
    }
}

/// The quorum's RPCs this adapter speaks (ApiVersions of a controller listener lists them).
pub const QUORUM_APIS: [ApiKey; 6] = [
    ApiKey::Vote,
    ApiKey::BeginQuorumEpoch,
    ApiKey::EndQuorumEpoch,
    ApiKey::Fetch,
    ApiKey::FetchSnapshot,
    ApiKey::DescribeQuorum,
];

/// The versions this adapter encodes and decodes for `api_key` (inclusive), for the
/// controller listener's ApiVersions; `None` if it is not a KRaft RPC. Fetch starts at v13,
/// the first to name topics by id (Kafka's KRaft refuses older fetches as INVALID_REQUEST).
pub fn supported_versions(api_key: ApiKey) -> Option<(i16, i16)> {
    match api_key {
        ApiKey::Vote => Some((0, 2)),
        ApiKey::BeginQuorumEpoch | ApiKey::EndQuorumEpoch | ApiKey::FetchSnapshot => Some((0, 1)),
        ApiKey::Fetch => Some((13, 18)),
        ApiKey::DescribeQuorum => Some((0, 2)),
        _ => None,
    }
}

/// The version [`encode_request`] sends: Vote v2 (KIP-996 pre-vote), BeginQuorumEpoch/
/// EndQuorumEpoch/FetchSnapshot v1 (KIP-853), Fetch v18 (Kafka 4.1, KIP-1166: the fetcher's high
/// watermark, so the leader answers a follower that has not yet heard of a commit at once
/// instead of parking its fetch for up to 500 ms). A Kafka 4.0 controller refuses Fetch v18;
/// [`encode_request_at`] sends an older version (v17 and below carry no high watermark).
pub fn preferred_version(api_key: ApiKey) -> Option<i16> {
    match api_key {
        ApiKey::Vote | ApiKey::DescribeQuorum => Some(2),
        ApiKey::BeginQuorumEpoch | ApiKey::EndQuorumEpoch | ApiKey::FetchSnapshot => Some(1),
        ApiKey::Fetch => Some(18),
        _ => None,
    }
}

/// The RPC carrying `msg` (a request or its response).
pub fn api_key_of(msg: &Message) -> ApiKey {
    match msg {
        Message::Vote(_) | Message::VoteResponse(_) => ApiKey::Vote,
        Message::BeginQuorumEpoch { .. } | Message::BeginQuorumEpochResponse { .. } => {
            ApiKey::BeginQuorumEpoch
        }
        Message::EndQuorumEpoch { .. } => ApiKey::EndQuorumEpoch,
        Message::Fetch(_) | Message::FetchResponse(_) => ApiKey::Fetch,
        Message::FetchSnapshot(_) | Message::FetchSnapshotResponse(_) => ApiKey::FetchSnapshot,
    }
}

/// The body of request `msg` to node `to` at [`preferred_version`].
pub fn encode_request(
    to: NodeId,
    msg: &Message,
    ctx: &WireContext,
) -> Result<OutboundRequest, WireError> {
    let api_key = api_key_of(msg);
    let version = preferred_version(api_key).ok_or(WireError::UnsupportedApi(api_key as i16))?;
    encode_request_at(to, msg, version, ctx)
}

/// The body of request `msg` to node `to` at `version` (one of [`supported_versions`]).
pub fn encode_request_at(
    to: NodeId,
    msg: &Message,
    version: i16,
    ctx: &WireContext,
) -> Result<OutboundRequest, WireError> {
    let api_key = api_key_of(msg);
    check_version(api_key, version)?;
    let body = match msg {
        Message::Vote(req) => encode(
            api_key,
            version,
            &election::vote_request(to, req, version, ctx)?,
        )?,
        Message::BeginQuorumEpoch { epoch, leader } => encode(
            api_key,
            version,
            &election::begin_request(to, *epoch, *leader, version, ctx),
        )?,
        Message::EndQuorumEpoch {
            epoch,
            leader,
            preferred_successors,
        } => encode(
            api_key,
            version,
            &election::end_request(*epoch, *leader, preferred_successors, version, ctx),
        )?,
        Message::Fetch(req) => encode(api_key, version, &fetch::fetch_request(req, version, ctx))?,
        Message::FetchSnapshot(req) => encode(
            api_key,
            version,
            &fetch::snapshot_request(req, version, ctx)?,
        )?,
        Message::VoteResponse(_)
        | Message::BeginQuorumEpochResponse { .. }
        | Message::FetchResponse(_)
        | Message::FetchSnapshotResponse(_) => {
            return Err(WireError::Mismatch(format!(
                "{api_key:?} response given where a request was expected"
            )))
        }
    };
    Ok(OutboundRequest {
        api_key,
        version,
        body,
    })
}

/// The core's view of the peer's response to `sent` (the request we encoded at `version`).
/// `Ok(None)` for EndQuorumEpoch, which the core expects no answer to.
pub fn decode_response(
    sent: &Message,
    version: i16,
    body: Bytes,
) -> Result<Option<Message>, WireError> {
    let api_key = api_key_of(sent);
    check_version(api_key, version)?;
    match sent {
        Message::Vote(req) => election::decode_vote_response(req, version, body).map(Some),
        Message::BeginQuorumEpoch { .. } => {
            election::decode_begin_response(version, body).map(Some)
        }
        Message::EndQuorumEpoch { .. } => {
            election::decode_end_response(version, body).map(|()| None)
        }
        Message::Fetch(req) => fetch::decode_fetch_response(req, version, body).map(Some),
        Message::FetchSnapshot(req) => {
            fetch::decode_snapshot_response(req, version, body).map(Some)
        }
        Message::VoteResponse(_)
        | Message::BeginQuorumEpochResponse { .. }
        | Message::FetchResponse(_)
        | Message::FetchSnapshotResponse(_) => Err(WireError::Mismatch(format!(
            "{api_key:?} response given as the request sent"
        ))),
    }
}

/// Decodes a peer's request body. `seq` is the runtime's id for this request: Fetch and
/// FetchSnapshot carry it into the core, which echoes it in its answer. Returns
/// [`WireError::Refused`] for requests to refuse outright with [`error_response`].
pub fn decode_request(
    api_key: ApiKey,
    version: i16,
    body: Bytes,
    seq: u64,
    ctx: &WireContext,
) -> Result<Inbound, WireError> {
    check_version(api_key, version)?;
    let (from, msg) = match api_key {
        ApiKey::Vote => election::decode_vote_request(version, body, ctx)?,
        ApiKey::BeginQuorumEpoch => election::decode_begin_request(version, body, ctx)?,
        ApiKey::EndQuorumEpoch => election::decode_end_request(version, body, ctx)?,
        ApiKey::Fetch => fetch::decode_fetch_request(version, body, seq, ctx)?,
        ApiKey::FetchSnapshot => fetch::decode_snapshot_request(version, body, seq, ctx)?,
        _ => return Err(WireError::UnsupportedApi(api_key as i16)),
    };
    Ok(Inbound {
        api_key,
        version,
        from,
        msg,
    })
}

/// The response body carrying the core's `answer` to `request`. `now_ms` stamps the record
/// batches of a Fetch answer (the core's entries carry no timestamps).
pub fn encode_response(
    request: &Inbound,
    answer: &Message,
    ctx: &WireContext,
    now_ms: i64,
) -> Result<Bytes, WireError> {
    let (api_key, version) = (request.api_key, request.version);
    let mismatch = || {
        WireError::Mismatch(format!(
            "answer {:?} does not match request {:?}",
            api_key_of(answer),
            api_key
        ))
    };
    match (&request.msg, answer) {
        (Message::Vote(req), Message::VoteResponse(ans)) => encode(
            api_key,
            version,
            &election::vote_response(req, ans, version, ctx),
        ),
        (
            Message::BeginQuorumEpoch { epoch, .. },
            Message::BeginQuorumEpochResponse { epoch: e, leader },
        ) => encode(
            api_key,
            version,
            &election::begin_response(*epoch, *e, *leader, version, ctx),
        ),
        (Message::Fetch(req), Message::FetchResponse(ans)) if req.seq == ans.seq => encode(
            api_key,
            version,
            &fetch::fetch_response(ans, version, ctx, now_ms)?,
        ),
        (Message::FetchSnapshot(req), Message::FetchSnapshotResponse(ans))
            if req.seq == ans.seq =>
        {
            encode(
                api_key,
                version,
                &fetch::snapshot_response(ans, version, ctx)?,
            )
        }
        _ => Err(mismatch()),
    }
}

/// The response to an inbound EndQuorumEpoch, which the core does not answer: the node's
/// `epoch` and `leader` after handling it (`KRaft::epoch()`, `KRaft::leader()`).
pub fn encode_end_quorum_epoch_response(
    request: &Inbound,
    epoch: i32,
    leader: Option<NodeId>,
    ctx: &WireContext,
) -> Result<Bytes, WireError> {
    let Message::EndQuorumEpoch { epoch: asked, .. } = &request.msg else {
        return Err(WireError::Mismatch(format!(
            "{:?} request given to the EndQuorumEpoch response",
            request.api_key
        )));
    };
    let resp = election::end_response(*asked, epoch, leader, request.version, ctx);
    encode(request.api_key, request.version, &resp)
}

/// A response refusing a whole request with top-level error `code` (INCONSISTENT_CLUSTER_ID,
/// INVALID_REQUEST, NOT_CONTROLLER, ...), as Kafka's `RaftUtil.errorResponse` builds it.
pub fn error_response(api_key: ApiKey, version: i16, code: i16) -> Result<Bytes, WireError> {
    check_version(api_key, version)?;
    match api_key {
        ApiKey::Vote => encode(
            api_key,
            version,
            &km::VoteResponse::default().with_error_code(code),
        ),
        ApiKey::BeginQuorumEpoch => encode(
            api_key,
            version,
            &km::BeginQuorumEpochResponse::default().with_error_code(code),
        ),
        ApiKey::EndQuorumEpoch => encode(
            api_key,
            version,
            &km::EndQuorumEpochResponse::default().with_error_code(code),
        ),
        ApiKey::Fetch => encode(
            api_key,
            version,
            &km::FetchResponse::default().with_error_code(code),
        ),
        ApiKey::FetchSnapshot => encode(
            api_key,
            version,
            &km::FetchSnapshotResponse::default().with_error_code(code),
        ),
        ApiKey::DescribeQuorum => encode(
            api_key,
            version,
            &km::DescribeQuorumResponse::default().with_error_code(code),
        ),
        _ => Err(WireError::UnsupportedApi(api_key as i16)),
    }
}

/// The Kafka error code for a refused fetch (Fetch and FetchSnapshot).
pub fn fetch_error_code(e: FetchError) -> i16 {
    match e {
        FetchError::FencedLeaderEpoch => codes::FENCED_LEADER_EPOCH,
        FetchError::UnknownLeaderEpoch => codes::UNKNOWN_LEADER_EPOCH,
        FetchError::NotLeader => codes::NOT_LEADER_OR_FOLLOWER,
        FetchError::ShuttingDown => codes::BROKER_NOT_AVAILABLE,
        FetchError::InvalidRequest => codes::INVALID_REQUEST,
        FetchError::SnapshotNotFound => codes::SNAPSHOT_NOT_FOUND,
        FetchError::PositionOutOfRange => codes::POSITION_OUT_OF_RANGE,
    }
}

/// The fetch error a Kafka error code stands for (`None` for 0 and codes the core lacks).
pub fn fetch_error_from_code(code: i16) -> Option<FetchError> {
    match code {
        codes::FENCED_LEADER_EPOCH => Some(FetchError::FencedLeaderEpoch),
        codes::UNKNOWN_LEADER_EPOCH => Some(FetchError::UnknownLeaderEpoch),
        codes::NOT_LEADER_OR_FOLLOWER => Some(FetchError::NotLeader),
        codes::BROKER_NOT_AVAILABLE => Some(FetchError::ShuttingDown),
        codes::INVALID_REQUEST => Some(FetchError::InvalidRequest),
        codes::SNAPSHOT_NOT_FOUND => Some(FetchError::SnapshotNotFound),
        codes::POSITION_OUT_OF_RANGE => Some(FetchError::PositionOutOfRange),
        _ => None,
    }
}

// ---- helpers shared by the per-RPC modules ----

fn check_version(api_key: ApiKey, version: i16) -> Result<(), WireError> {
    let (min, max) =
        supported_versions(api_key).ok_or(WireError::UnsupportedApi(api_key as i16))?;
    if (min..=max).contains(&version) {
        Ok(())
    } else {
        Err(WireError::UnsupportedVersion { api_key, version })
    }
}

fn decode<M: Decodable>(api_key: ApiKey, version: i16, body: Bytes) -> Result<M, WireError> {
    decode_message::<M>(body, version).map_err(|e| WireError::Malformed {
        api_key,
        version,
        reason: e.to_string(),
    })
}

fn encode<M: Encodable>(api_key: ApiKey, version: i16, msg: &M) -> Result<Bytes, WireError> {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, version)
        .map_err(|e| WireError::Encode {
            api_key,
            version,
            reason: format!("{e:#}"),
        })?;
    Ok(buf.freeze())
}

fn malformed(api_key: ApiKey, version: i16, reason: impl Into<String>) -> WireError {
    WireError::Malformed {
        api_key,
        version,
        reason: reason.into(),
    }
}

fn refused(api_key: ApiKey, code: i16, reason: impl Into<String>) -> WireError {
    WireError::Refused {
        api_key,
        code,
        reason: reason.into(),
    }
}

/// Kafka's `hasValidClusterId`: absent is accepted, present must match.
fn check_cluster(
    api_key: ApiKey,
    id: Option<&StrBytes>,
    ctx: &WireContext,
) -> Result<(), WireError> {
    match id {
        Some(id) if id.as_str() != ctx.cluster_id => Err(refused(
            api_key,
            codes::INCONSISTENT_CLUSTER_ID,
            format!(
                "cluster id {:?} is not ours ({:?})",
                id.as_str(),
                ctx.cluster_id
            ),
        )),
        _ => Ok(()),
    }
}

fn cluster_id(ctx: &WireContext) -> Option<StrBytes> {
    Some(StrBytes::from_string(ctx.cluster_id.clone()))
}

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str(METADATA_TOPIC))
}

/// The one partition of a request or response naming topics by name: exactly one topic and
/// one partition (else INVALID_REQUEST), and it must be `__cluster_metadata-0` (else
/// `wrong_partition`).
fn single_partition<'a, T, P>(
    api_key: ApiKey,
    topics: &'a [T],
    parts: impl Fn(&'a T) -> (&'a TopicName, &'a [P]),
    index: impl Fn(&P) -> i32,
    wrong_partition: i16,
) -> Result<&'a P, WireError> {
    let [topic] = topics else {
        return Err(refused(
            api_key,
            codes::INVALID_REQUEST,
            format!("{} topics", topics.len()),
        ));
    };
    let (name, partitions) = parts(topic);
    let [partition] = partitions else {
        return Err(refused(
            api_key,
            codes::INVALID_REQUEST,
            format!("{} partitions", partitions.len()),
        ));
    };
    if name.0.as_str() != METADATA_TOPIC || index(partition) != METADATA_PARTITION {
        return Err(refused(
            api_key,
            wrong_partition,
            format!(
                "{}-{} is not the metadata partition",
                name.0.as_str(),
                index(partition)
            ),
        ));
    }
    Ok(partition)
}

/// A response's top-level error as a [`WireError::ErrorResponse`].
fn top_level(api_key: ApiKey, code: i16) -> Result<(), WireError> {
    match code {
        codes::NONE => Ok(()),
        code => Err(WireError::ErrorResponse { api_key, code }),
    }
}

/// A leader id on the wire (-1 when unknown).
fn leader_or_nil(leader: Option<NodeId>) -> i32 {
    leader.unwrap_or(-1)
}

/// A wire leader id as the core's (negative = unknown).
fn leader_opt(id: i32) -> Option<NodeId> {
    (id >= 0).then_some(id)
}

/// FENCED_LEADER_EPOCH when the request's epoch is older than the responder's (Kafka's
/// `validateVoterOnlyRequest`), else NONE.
fn fencing_code(request_epoch: i32, our_epoch: i32) -> i16 {
    if request_epoch < our_epoch {
        codes::FENCED_LEADER_EPOCH
    } else {
        codes::NONE
    }
}

/// A response partition error the core can act on as "not granted / here is my view".
fn epoch_view_error(api_key: ApiKey, code: i16) -> Result<(), WireError> {
    match code {
        codes::NONE | codes::FENCED_LEADER_EPOCH | codes::NOT_LEADER_OR_FOLLOWER => Ok(()),
        code => Err(WireError::ErrorResponse { api_key, code }),
    }
}
