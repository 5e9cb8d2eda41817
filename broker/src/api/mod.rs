//! Request routing: one module per API family, and [`dispatch`] (with `dispatch_groups` for the
//! group APIs), the only place that maps an API key to its handler. [`SUPPORTED`] is the same
//! table seen from ApiVersions. A request that cannot be answered yields a [`CloseReason`];
//! handlers that need to know who is asking get a [`RequestContext`].
//!
//! Every handler decodes nothing itself (the codec did), validates, calls one domain service
//! (the controller or a partition's log) and builds a kafka-protocol response; Fetch is the
//! exception and returns chunks from our own writer so record bytes are never copied.

pub(crate) mod acks;
mod acls;
mod admin_configs;
pub(crate) mod admin_topics;
mod api_versions;
mod close;
mod cluster;
mod cluster_gate;
mod context;
mod elect;
pub mod envelope;
mod features;
mod fetch;
mod fetch_remote;
pub mod forward;
mod groups;
mod leader_hint;
mod list_offsets;
mod metadata;
mod produce;
mod producers;
mod quorum;
mod quotas;
mod read_replica;
mod reassign;
pub(crate) mod replica_fetch;
mod scram;
mod trace;
mod txn;
mod txn_admin;
mod txn_markers;
mod txn_verify;

use crate::quota::{Busy, Kind};
use crate::state::Broker;
use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;
use shale_protocol::codec::{self, CodecError, Request, RequestHeader};
use shale_raft::acl::op;
use std::sync::Arc;
use tracing::Instrument;

pub use close::CloseReason;
pub use context::{client_host, ConnectionInfo, Mute, RequestContext};

/// What goes back on the wire for one request.
#[derive(Debug)]
pub enum Response {
    /// Nothing (Produce with acks=0).
    None,
    /// One encoded frame, size prefix included.
    Frame(Bytes),
    /// A frame in chunks (Fetch), written with vectored I/O.
    Chunks(Vec<Bytes>),
}

/// The APIs this broker serves, at the version ranges kafka-protocol 0.18 supports.
/// Produce is advertised from v0 (librdkafka only compresses when min is 0) but v0–2 are refused.
pub const SUPPORTED: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::FindCoordinator,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DeleteRecords,
    ApiKey::InitProducerId,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::DescribeLogDirs,
    ApiKey::CreatePartitions,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeCluster,
    ApiKey::DescribeProducers,
    ApiKey::DescribeTopicPartitions,
    ApiKey::DescribeQuorum,
    ApiKey::ElectLeaders,
    ApiKey::UpdateFeatures,
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
    ApiKey::DescribeUserScramCredentials,
    ApiKey::AlterUserScramCredentials,
    ApiKey::CreateAcls,
    ApiKey::DescribeAcls,
    ApiKey::DeleteAcls,
    ApiKey::DescribeClientQuotas,
    ApiKey::AlterClientQuotas,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
    ApiKey::TxnOffsetCommit,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::WriteTxnMarkers,
    ApiKey::DescribeTransactions,
    ApiKey::ListTransactions,
];

/// `(api_key, min, max)` for ApiVersions.
pub fn supported_versions() -> Vec<(i16, i16, i16)> {
    SUPPORTED
        .iter()
        .map(|k| {
            let v = Request::supported_versions(*k).unwrap_or_else(|| k.valid_versions());
            let min = if *k == ApiKey::Produce { 0 } else { v.min };
            (*k as i16, min, v.max)
        })
        .collect()
}

/// Handles one request frame from `connection`. `Err` means the connection must be closed;
/// the caller logs the reason. The request runs in its span ([`trace`]), disabled unless
/// OpenTelemetry tracing is on.
pub async fn handle(
    broker: &Arc<Broker>,
    connection: &ConnectionInfo,
    frame: Bytes,
) -> Result<Response, CloseReason> {
    let (api_key, version, correlation_id) =
        codec::peek_header(&frame).map_err(CloseReason::MalformedHeader)?;
    let started = broker.clock.monotonic();
    let name = ApiKey::try_from(api_key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| api_key.to_string());
    if let Some(response) = forward::forward(broker, connection, (api_key, version), &frame).await {
        return Ok(response);
    }
    let span = trace::request_span(&name, api_key, version, correlation_id);
    let result = match codec::decode_request(frame.clone()) {
        Ok((header, request)) => {
            trace::record_request(&span, &header, &request);
            dispatch(broker, connection, header, request)
                .instrument(span.clone())
                .await
        }
        Err(CodecError::UnsupportedVersion { api_key: 18, .. }) => Ok(Response::Frame(
            codec::encode_api_versions_fallback(correlation_id, &supported_versions()),
        )),
        Err(CodecError::UnsupportedVersion {
            api_key: 0,
            version,
        }) if version < 3 => produce_v0_2(&frame, version, correlation_id),
        Err(e) => Err(CloseReason::from_codec(e, api_key, version)),
    };
    if let Err(reason) = &result {
        trace::record_close(&span, reason);
    }
    let elapsed = broker.clock.monotonic().saturating_sub(started);
    broker.metrics.observe(&name, elapsed.as_secs_f64());
    result
}

/// Produce v0–2 is advertised (librdkafka's compression check) but refused: every partition gets
/// UNSUPPORTED_VERSION, and acks=0 requests get no response at all.
fn produce_v0_2(frame: &Bytes, version: i16, correlation_id: i32) -> Result<Response, CloseReason> {
    let refused = |e| CloseReason::from_codec(e, ApiKey::Produce as i16, version);
    let (_, body) = codec::split_request_header(frame).map_err(refused)?;
    if body.get(..2) == Some(&[0, 0]) {
        return Ok(Response::None);
    }
    codec::encode_produce_v0_2_unsupported(version, correlation_id, &body)
        .map(Response::Frame)
        .map_err(refused)
}

async fn dispatch(
    broker: &Arc<Broker>,
    connection: &ConnectionInfo,
    header: RequestHeader,
    request: Request,
) -> Result<Response, CloseReason> {
    let client_id = header.client_id.as_ref().map_or("", |c| c.as_str());
    let (image, user) = (broker.image(), &*connection.principal);
    let ctx = &RequestContext::new(broker, &image, connection, client_id);
    // `request_percentage`; brokers (CLUSTER_ACTION granted outright) are exempt, as in Kafka.
    let exempt = broker.authorizer.enabled() && ctx.authz.granted_on_cluster(op::CLUSTER_ACTION);
    if exempt
        || !broker
            .quotas
            .applies(&image, Kind::Request, user, client_id)
    {
        return dispatch_as(broker, ctx, &header, request).await;
    }
    let timed = Busy::new(
        broker.clock.clone(),
        dispatch_as(broker, ctx, &header, request),
    );
    let (response, busy) = timed.await;
    let rest = broker
        .quotas
        .record_request_time(&image, user, client_id, busy);
    connection.mute.rest(rest);
    response
}

async fn dispatch_as(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    header: &RequestHeader,
    request: Request,
) -> Result<Response, CloseReason> {
    if GROUP_APIS.contains(&request.api_key()) {
        return dispatch_groups(broker, ctx, header, request).await;
    }
    let v = header.api_version;
    let c = header.correlation_id;
    if let Some(refused) = cluster_gate::refusal(&request, ctx, v, c) {
        return refused;
    }
    macro_rules! reply {
        ($key:ident, $body:expr) => {
            encode(ApiKey::$key, v, c, &$body)
        };
    }
    match request {
        Request::ApiVersions(r) => reply!(ApiVersions, api_versions::handle(broker, &r, v)),
        Request::Metadata(r) => reply!(Metadata, metadata::handle(broker, ctx, &r, v).await),
        Request::Produce(r) => match produce::handle(broker, ctx, &r, v).await? {
            Some(resp) => reply!(Produce, resp),
            None => Ok(Response::None),
        },
        Request::Fetch(r) => fetch::handle(broker, ctx, &r, v, c).await,
        Request::ListOffsets(r) => {
            reply!(ListOffsets, list_offsets::handle(broker, ctx, &r, v).await)
        }
        Request::CreateTopics(r) => {
            reply!(
                CreateTopics,
                admin_topics::create_topics(broker, ctx, &r, v).await
            )
        }
        Request::DeleteTopics(r) => {
            reply!(
                DeleteTopics,
                admin_topics::delete_topics(broker, ctx, &r, v).await
            )
        }
        Request::CreatePartitions(r) => {
            reply!(
                CreatePartitions,
                admin_topics::create_partitions(broker, ctx, &r, v).await
            )
        }
        Request::DeleteRecords(r) => {
            reply!(DeleteRecords, admin_topics::delete_records(broker, ctx, &r))
        }
        Request::DescribeConfigs(r) => {
            reply!(DescribeConfigs, admin_configs::describe(broker, ctx, &r, v))
        }
        Request::AlterConfigs(r) => {
            reply!(AlterConfigs, admin_configs::alter(broker, ctx, &r).await)
        }
        Request::IncrementalAlterConfigs(r) => reply!(
            IncrementalAlterConfigs,
            admin_configs::incremental_alter(broker, ctx, &r).await
        ),
        Request::DescribeCluster(r) => {
            reply!(
                DescribeCluster,
                cluster::describe_cluster(broker, ctx, &r, v)
            )
        }
        Request::DescribeTopicPartitions(r) => reply!(
            DescribeTopicPartitions,
            cluster::describe_topic_partitions(broker, ctx, &r)
        ),
        Request::DescribeLogDirs(r) => {
            reply!(DescribeLogDirs, cluster::describe_log_dirs(broker, ctx, &r))
        }
        Request::InitProducerId(r) => {
            reply!(
                InitProducerId,
                producers::init_producer_id(broker, ctx, &r, v).await
            )
        }
        Request::DescribeProducers(r) => {
            reply!(
                DescribeProducers,
                producers::describe_producers(broker, ctx, &r)
            )
        }
        Request::ElectLeaders(r) => reply!(ElectLeaders, elect::handle(broker, &r, v).await),
        Request::UpdateFeatures(r) => {
            reply!(UpdateFeatures, features::update(broker, &r, v).await)
        }
        Request::AlterPartitionReassignments(r) => reply!(
            AlterPartitionReassignments,
            reassign::alter(broker, &r).await
        ),
        Request::ListPartitionReassignments(r) => {
            reply!(ListPartitionReassignments, reassign::list(broker, &r))
        }
        Request::DescribeQuorum(r) => reply!(DescribeQuorum, quorum::describe(broker, &r, v)),
        Request::OffsetForLeaderEpoch(r) => reply!(
            OffsetForLeaderEpoch,
            list_offsets::offset_for_leader_epoch(broker, ctx, &r)
        ),
        Request::AddPartitionsToTxn(r) => {
            reply!(
                AddPartitionsToTxn,
                txn::add_partitions(broker, ctx, &r, v).await
            )
        }
        Request::AddOffsetsToTxn(r) => {
            reply!(AddOffsetsToTxn, txn::add_offsets(broker, ctx, &r, v).await)
        }
        Request::EndTxn(r) => reply!(EndTxn, txn::end(broker, ctx, &r, v).await),
        Request::WriteTxnMarkers(r) => {
            reply!(WriteTxnMarkers, txn_markers::handle(broker, &r).await)
        }
        Request::DescribeTransactions(r) => {
            reply!(
                DescribeTransactions,
                txn_admin::describe(broker, ctx, &r).await
            )
        }
        Request::ListTransactions(r) => {
            reply!(ListTransactions, txn_admin::list(broker, ctx, &r).await)
        }
        Request::DescribeUserScramCredentials(r) => {
            reply!(DescribeUserScramCredentials, scram::describe(broker, &r))
        }
        Request::AlterUserScramCredentials(r) => {
            reply!(AlterUserScramCredentials, scram::alter(broker, &r).await)
        }
        Request::CreateAcls(r) => reply!(CreateAcls, acls::create(broker, ctx, &r).await),
        Request::DescribeAcls(r) => reply!(DescribeAcls, acls::describe(broker, ctx, &r)),
        Request::DeleteAcls(r) => reply!(DeleteAcls, acls::delete(broker, ctx, &r).await),
        Request::DescribeClientQuotas(r) => {
            reply!(DescribeClientQuotas, quotas::describe(broker, ctx, &r))
        }
        Request::AlterClientQuotas(r) => {
            reply!(AlterClientQuotas, quotas::alter(broker, ctx, &r).await)
        }
        // A SASL listener's connection answers these itself (crate::sasl); here the listener
        // has no SASL, as Kafka answers.
        Request::SaslHandshake(_) | Request::SaslAuthenticate(_) => {
            crate::sasl::illegal_state(request.api_key(), v, c)
                .map(Response::Frame)
                .ok_or(CloseReason::UnsupportedApi(request.api_key() as i16))
        }
        other => Err(CloseReason::UnsupportedApi(other.api_key() as i16)),
    }
}

/// The APIs [`dispatch_groups`] routes.
const GROUP_APIS: &[ApiKey] = &[
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
    ApiKey::TxnOffsetCommit,
];

/// The group APIs' part of [`dispatch`].
async fn dispatch_groups(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    header: &RequestHeader,
    request: Request,
) -> Result<Response, CloseReason> {
    let (v, c) = (header.api_version, header.correlation_id);
    macro_rules! reply {
        ($key:ident, $body:expr) => {
            encode(ApiKey::$key, v, c, &$body)
        };
    }
    match request {
        Request::FindCoordinator(r) => reply!(
            FindCoordinator,
            groups::find_coordinator::handle(broker, ctx, &r, v).await
        ),
        Request::JoinGroup(r) => reply!(JoinGroup, groups::join::handle(broker, &r, v, ctx).await),
        Request::SyncGroup(r) => reply!(SyncGroup, groups::sync::handle(broker, ctx, &r, v).await),
        Request::Heartbeat(r) => {
            reply!(Heartbeat, groups::heartbeat::handle(broker, ctx, &r).await)
        }
        Request::LeaveGroup(r) => {
            reply!(LeaveGroup, groups::leave::handle(broker, ctx, &r, v).await)
        }
        Request::OffsetCommit(r) => reply!(
            OffsetCommit,
            groups::offset_commit::handle(broker, ctx, &r, v).await
        ),
        Request::OffsetFetch(r) => reply!(
            OffsetFetch,
            groups::offset_fetch::handle(broker, ctx, &r, v).await
        ),
        Request::ListGroups(r) => {
            reply!(
                ListGroups,
                groups::list_groups::handle(broker, ctx, &r, v).await
            )
        }
        Request::DescribeGroups(r) => reply!(
            DescribeGroups,
            groups::describe_groups::handle(broker, ctx, &r, v).await
        ),
        Request::DeleteGroups(r) => reply!(
            DeleteGroups,
            groups::delete_groups::handle(broker, ctx, &r).await
        ),
        Request::OffsetDelete(r) => reply!(
            OffsetDelete,
            groups::offset_delete::handle(broker, ctx, &r).await
        ),
        Request::TxnOffsetCommit(r) => reply!(
            TxnOffsetCommit,
            groups::txn_offset_commit::handle(broker, ctx, &r, v).await
        ),
        other => Err(CloseReason::UnsupportedApi(other.api_key() as i16)),
    }
}

fn encode<M: Encodable + trace::FirstError>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &M,
) -> Result<Response, CloseReason> {
    trace::record_error_code(|| body.first_error());
    codec::encode_response(key, version, correlation_id, body)
        .map(Response::Frame)
        .map_err(|e| CloseReason::EncodeFailed {
            api: key,
            version,
            reason: e.to_string(),
        })
}

/// Runs synchronous storage I/O (appends, positional reads, an fsync at a segment roll) on the
/// current worker while the runtime moves this worker's other tasks elsewhere, so one slow disk
/// operation never stalls other connections (`shale_common::blocking::io`).
pub(crate) use shale_common::blocking::io as storage_io;

/// Runs blocking metadata work (fsyncs in the metadata log) on the blocking pool, inside the
/// caller's span so that the work's own spans (metadata writes) stay children of the request.
pub(crate) async fn blocking<T: Send + 'static>(
    broker: &Arc<Broker>,
    f: impl FnOnce(&Broker) -> T + Send + 'static,
) -> T {
    let b = broker.clone();
    let span = tracing::Span::current();
    match shale_common::blocking::spawn(move || span.in_scope(|| f(&b))).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
