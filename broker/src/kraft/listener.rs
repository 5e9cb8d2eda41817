//! Inbound quorum traffic: the controller listener's accept loop and connections. Each request
//! (Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch and FetchSnapshot on `__cluster_metadata-0`,
//! DescribeQuorum) is decoded by [`super::wire`], handed to the driver, and answered in order
//! on its connection, as a Kafka broker answers a connection's requests one at a time. A parked
//! Fetch holds its connection until the leader answers it (at most the fetch wait). A request
//! the wire refuses (other cluster id, wrong partition, unsupported version) gets Kafka's error
//! code; an unknown api or a body that does not decode closes the connection with a log line.
//! BrokerRegistration, BrokerHeartbeat and AllocateProducerIds go to the metadata controller,
//! when this node has one ([`super::broker_lifecycle`]). Admin requests other brokers forward
//! here (CreateTopics and the like) go, whole, to the [`ForwardedRequests`] handler a combined
//! node installs.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::tls::ServerTls;
use bytes::{BufMut, Bytes, BytesMut};
use shale_common::Clock;
use shale_protocol::codec::split_request_header;
use shale_protocol::kafka_protocol::messages::api_versions_response::ApiVersion;
use shale_protocol::kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use shale_protocol::kafka_protocol::protocol::Encodable;
use shale_raft::kraft::Message;
use shale_raft::Controller;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use super::broker_lifecycle;
use super::controller_apis;
use super::driver::{DriverHandle, Input};
use super::raft_voters;
use super::wire::{self, codes, WireContext};

/// Largest request frame accepted on the controller listener.
const MAX_REQUEST: usize = 16 << 20;
/// ApiVersions versions answered here.
const API_VERSIONS_RANGE: (i16, i16) = (0, 4);

/// Answers client requests other brokers forwarded to this (active) controller.
pub trait ForwardedRequests: Send + Sync + std::fmt::Debug {
    /// Whether requests of `api_key` are answered by it (Envelope, and admin requests sent
    /// to the controller directly).
    fn handles(&self, api_key: ApiKey) -> bool;
    /// Whether `peer` may call `api_key` on this listener at all (a refusal closes the
    /// connection).
    fn admits(&self, peer: &Peer, api_key: ApiKey) -> bool;
    /// The size-prefixed response frame for one request frame (header and body, no prefix)
    /// from `peer`; `None` closes the connection.
    fn answer<'a>(
        &'a self,
        frame: Bytes,
        peer: &'a Peer,
    ) -> Pin<Box<dyn Future<Output = Option<Bytes>> + Send + 'a>>;
}

/// What every connection of the listener shares.
#[derive(Debug)]
pub struct Shared {
    pub ctx: Arc<WireContext>,
    pub driver: DriverHandle,
    pub clock: Arc<dyn Clock>,
    /// How long a request may wait for the core's answer (`controller.quorum.request.timeout.ms`).
    pub timeout: Duration,
    /// The metadata controller answering the broker lifecycle APIs; unset on a plain quorum
    /// member (NOT_CONTROLLER), set once by a controller node after start.
    pub controller: OnceLock<Arc<Controller>>,
    /// The broker's handlers for forwarded admin requests (combined nodes only).
    pub forwarded: OnceLock<Arc<dyn ForwardedRequests>>,
}

/// Serves quorum requests on `listener` (over TLS when `tls` is set) until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (tls, shared, stop) = (tls.clone(), shared.clone(), stop.clone());
                    tokio::spawn(async move {
                        let served = match tls {
                            None => {
                                let who = Peer { principal: Arc::from(crate::tls::ANONYMOUS), addr: peer };
                                connection(stream, who, shared, stop).await
                            }
                            Some(tls) => match tokio::time::timeout(
                                crate::connection::HANDSHAKE_TIMEOUT,
                                tls.accept(stream),
                            )
                            .await
                            {
                                Ok(Ok((stream, principal))) => {
                                    let who = Peer { principal: Arc::from(principal), addr: peer };
                                    connection(stream, who, shared, stop).await
                                }
                                Ok(Err(e)) => Err(e.context("TLS handshake failed")),
                                Err(_) => Err(anyhow::anyhow!("no TLS handshake in time")),
                            },
                        };
                        if let Err(e) = served {
                            tracing::info!(%peer, error = %e, "closing a controller-listener connection");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "controller listener accept failed"),
            },
            _ = stop.changed() => return,
        }
    }
}

/// One request's identity on its connection.
#[derive(Clone, Copy, Debug)]
struct Call {
    api_key: ApiKey,
    version: i16,
    /// Numbers the connection's requests, so a Fetch answer can be told from a stale one.
    seq: u64,
}

/// Who is at the other end of a controller-listener connection.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The principal name its TLS certificate maps to, else `ANONYMOUS`.
    pub principal: Arc<str>,
    /// Its address.
    pub addr: std::net::SocketAddr,
}

async fn connection(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    who: Peer,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut seq = 0u64;
    loop {
        seq += 1;
        let read = tokio::select! {
            read = stream.read_i32() => read,
            _ = stop.changed() => return Ok(()),
        };
        let size = match read {
            Ok(size) => size,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if size < 8 || size as usize > MAX_REQUEST {
            anyhow::bail!("request frame of {size} bytes");
        }
        let mut frame = vec![0u8; size as usize];
        stream.read_exact(&mut frame).await?;
        let frame = Bytes::from(frame);
        let (header, body) = split_request_header(&frame)?;
        let api_key = ApiKey::try_from(header.api_key)
            .map_err(|()| anyhow::anyhow!("unknown api key {}", header.api_key))?;
        if let Some(handler) = shared.forwarded.get() {
            anyhow::ensure!(
                handler.admits(&who, api_key),
                "{} may not call {api_key:?} on the controller listener",
                who.principal
            );
        }
        if let Some(handler) = shared.forwarded.get().filter(|h| h.handles(api_key)) {
            let response = handler
                .answer(frame, &who)
                .await
                .ok_or_else(|| anyhow::anyhow!("forwarded {api_key:?} request refused"))?;
            stream.write_all(&response).await?;
            stream.flush().await?; // a TLS stream may hold the tail of a write
            continue;
        }
        let call = Call {
            api_key,
            version: header.api_version,
            seq,
        };
        let response = answer(call, body, &shared).await?;
        let frame = response_frame(call, header.correlation_id, &response);
        stream.write_all(&frame).await?;
        stream.flush().await?;
    }
}

/// The response body for one request.
async fn answer(call: Call, body: Bytes, shared: &Shared) -> anyhow::Result<Bytes> {
    let Call {
        api_key,
        version,
        seq,
    } = call;
    if api_key == ApiKey::ApiVersions {
        return api_versions(version);
    }
    if broker_lifecycle::handles(api_key) {
        let controller = shared.controller.get().cloned();
        return broker_lifecycle::answer(api_key, version, body, controller, &shared.clock).await;
    }
    if api_key == ApiKey::DescribeQuorum {
        return controller_apis::describe_quorum(version, body, shared).await;
    }
    if api_key == ApiKey::DescribeCluster {
        return controller_apis::describe_cluster(version, body, shared);
    }
    if raft_voters::handles(api_key) {
        return raft_voters::answer(api_key, version, body, shared).await;
    }
    let inbound = match wire::decode_request(api_key, version, body, seq, &shared.ctx) {
        Ok(inbound) => inbound,
        Err(e) => match e.refusal_code() {
            Some(code) => {
                tracing::debug!(error = %e, "quorum request refused");
                return Ok(wire::error_response(api_key, version, code)?);
            }
            None => return Err(e.into()),
        },
    };
    let (reply, rx) = oneshot::channel();
    let input = Input::Request {
        from: inbound.from,
        msg: inbound.msg.clone(),
        reply,
    };
    if shared.driver.inputs.try_send(input).is_err() {
        return Ok(wire::error_response(
            api_key,
            version,
            codes::BROKER_NOT_AVAILABLE,
        )?);
    }
    if matches!(inbound.msg, Message::EndQuorumEpoch { .. }) {
        // The core has no answer for EndQuorumEpoch; a Kafka peer expects one with our view.
        let view = shared.driver.view.borrow().clone();
        let response =
            wire::encode_end_quorum_epoch_response(&inbound, view.epoch, view.leader, &shared.ctx)?;
        return Ok(response);
    }
    match tokio::time::timeout(shared.timeout, rx).await {
        Ok(Ok(answer)) => {
            let now = shared.clock.now_ms();
            Ok(wire::encode_response(&inbound, &answer, &shared.ctx, now)?)
        }
        // Not answered (the core ignores it) or not in time.
        _ => Ok(wire::error_response(
            api_key,
            version,
            codes::INVALID_REQUEST,
        )?),
    }
}

/// The controller listener's APIs: ApiVersions, the quorum's RPCs at the versions the wire
/// adapter speaks, and the broker lifecycle APIs. A version above ours gets UNSUPPORTED_VERSION
/// in a v0 body, as Kafka answers.
fn api_versions(version: i16) -> anyhow::Result<Bytes> {
    let entry = |key: ApiKey, (min, max): (i16, i16)| {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    let mut apis = vec![entry(ApiKey::ApiVersions, API_VERSIONS_RANGE)];
    for key in wire::QUORUM_APIS {
        if let Some(range) = wire::supported_versions(key) {
            apis.push(entry(key, range));
        }
    }
    for (key, range) in broker_lifecycle::VERSIONS {
        apis.push(entry(key, range));
    }
    let describe_cluster = controller_apis::DESCRIBE_CLUSTER_VERSIONS;
    apis.push(entry(ApiKey::DescribeCluster, describe_cluster));
    for (key, range) in raft_voters::VERSIONS {
        apis.push(entry(key, range));
    }
    let (version, error) = if version > API_VERSIONS_RANGE.1 {
        (0, codes::UNSUPPORTED_VERSION)
    } else {
        (version, codes::NONE)
    };
    let response = ApiVersionsResponse::default()
        .with_error_code(error)
        .with_api_keys(apis);
    let mut out = BytesMut::new();
    response.encode(&mut out, version)?;
    Ok(out.freeze())
}

/// A size-prefixed response frame: correlation id, the header's empty tagged fields when the
/// version is flexible, then the body.
fn response_frame(call: Call, correlation: i32, body: &[u8]) -> Bytes {
    let flexible = call.api_key.response_header_version(call.version) >= 1;
    let header = if flexible { 5 } else { 4 };
    let mut out = BytesMut::with_capacity(4 + header + body.len());
    out.put_i32((header + body.len()) as i32);
    out.put_i32(correlation);
    if flexible {
        out.put_u8(0);
    }
    out.extend_from_slice(body);
    out.freeze()
}
