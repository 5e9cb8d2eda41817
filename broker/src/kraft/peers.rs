//! Outbound quorum traffic: one task per other node of the quorum, holding one connection to
//! that node's controller listener. It takes the core's requests from its queue in order,
//! sends each as a Kafka request (header + body from [`super::wire`]) and hands the decoded
//! answer to the driver; one request is in flight per peer at a time, as in Kafka's raft
//! client. A failed connect or request drops that request and the connection: the core's
//! own timers (request, fetch and election timeouts) decide what to resend.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use crate::tls::Stream;
use bytes::{BufMut, Bytes, BytesMut};
use shale_protocol::kafka_protocol::messages::{ApiKey, RequestHeader};
use shale_protocol::kafka_protocol::protocol::{Encodable, StrBytes};
use shale_raft::kraft::{Message, NodeId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::driver::Input;
use super::wire::{self, WireContext};

/// Requests queued per peer; more are dropped (the core resends on its timers).
pub const PEER_QUEUE: usize = 64;
/// Largest response frame accepted from a peer (a Fetch answer holds at most a few MiB).
const MAX_RESPONSE: usize = 64 << 20;

/// Where and how to reach one peer.
#[derive(Clone, Debug)]
pub struct Peer {
    pub id: NodeId,
    pub host: String,
    pub port: u16,
}

/// Starts the task sending to `peer`; returns the queue the driver sends into.
pub fn spawn_peer(
    peer: Peer,
    ctx: Arc<WireContext>,
    to_driver: SyncSender<Input>,
    request_timeout: Duration,
) -> mpsc::Sender<Message> {
    let (tx, rx) = mpsc::channel(PEER_QUEUE);
    tokio::spawn(peer_loop(peer, ctx, to_driver, rx, request_timeout));
    tx
}

async fn peer_loop(
    peer: Peer,
    ctx: Arc<WireContext>,
    to_driver: SyncSender<Input>,
    mut rx: mpsc::Receiver<Message>,
    timeout: Duration,
) {
    let mut conn: Option<Box<dyn Stream>> = None;
    let mut correlation = 0i32;
    while let Some(msg) = rx.recv().await {
        correlation = correlation.wrapping_add(1);
        let call = exchange(&peer, &ctx, &mut conn, correlation, &msg);
        let answer = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                tracing::debug!(peer = peer.id, error = %e, "quorum request failed");
                conn = None;
                continue;
            }
            Err(_) => {
                tracing::debug!(peer = peer.id, "quorum request timed out");
                conn = None;
                continue;
            }
        };
        let (answer, learned) = answer;
        // Only the leader a bootstrap server names is worth connecting to.
        let leader = match &answer {
            Some(Message::FetchResponse(r)) => r.leader,
            _ => None,
        };
        let named = learned.into_iter().find(|(id, _, _)| Some(*id) == leader);
        if let Some((id, host, port)) = named {
            let _ = to_driver.try_send(Input::Endpoint { id, host, port });
        }
        if let Some(answer) = answer {
            let input = Input::Response {
                from: peer.id,
                msg: answer,
            };
            if to_driver.try_send(input).is_err() {
                tracing::debug!(peer = peer.id, "driver queue full: quorum response dropped");
            }
        }
    }
}

/// What a bootstrap server's answer teaches: endpoints it names (the leader's).
type Learned = Vec<(NodeId, String, u16)>;

/// Sends `msg` and reads its answer, connecting first if needed. A bootstrap server's Fetch
/// answer (pseudo id below 0) also yields the endpoints it names.
async fn exchange(
    peer: &Peer,
    ctx: &WireContext,
    conn: &mut Option<Box<dyn Stream>>,
    correlation: i32,
    msg: &Message,
) -> anyhow::Result<(Option<Message>, Learned)> {
    let request = wire::encode_request(peer.id, msg, ctx)?;
    let frame = request_frame(
        request.api_key,
        request.version,
        correlation,
        ctx,
        &request.body,
    )?;
    if conn.is_none() {
        *conn = Some(ctx.dialer.connect(&peer.host, peer.port).await?);
    }
    let Some(stream) = conn.as_mut() else {
        anyhow::bail!("no connection");
    };
    stream.write_all(&frame).await?;
    stream.flush().await?; // a TLS stream may hold the tail of a write
    let body = read_response(stream, request.api_key, request.version, correlation).await?;
    let learned = match msg {
        Message::Fetch(_) if peer.id < 0 => wire::node_endpoints(request.version, body.clone()),
        _ => Vec::new(),
    };
    Ok((wire::decode_response(msg, request.version, body)?, learned))
}

/// A size-prefixed request frame: header at the version the api and version call for, then
/// the body.
pub fn request_frame(
    api_key: ApiKey,
    version: i16,
    correlation: i32,
    ctx: &WireContext,
    body: &[u8],
) -> anyhow::Result<Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_string(format!(
            "raft-client-{}",
            ctx.local_id
        ))));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header.encode(&mut buf, api_key.request_header_version(version))?;
    buf.extend_from_slice(body);
    let size = i32::try_from(buf.len() - 4)?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Reads one response frame and returns its body after checking the correlation id.
pub async fn read_response(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    api_key: ApiKey,
    version: i16,
    correlation: i32,
) -> anyhow::Result<Bytes> {
    let size = stream.read_i32().await?;
    if size < 4 || size as usize > MAX_RESPONSE {
        anyhow::bail!("response frame of {size} bytes");
    }
    let mut buf = vec![0u8; size as usize];
    stream.read_exact(&mut buf).await?;
    let mut body = Bytes::from(buf);
    let got = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    if got != correlation {
        anyhow::bail!("response correlation id {got}, expected {correlation}");
    }
    let header_len = if api_key.response_header_version(version) >= 1 {
        5
    } else {
        4
    };
    if body.len() < header_len || (header_len == 5 && body[4] != 0) {
        anyhow::bail!("response header with tagged fields or truncated");
    }
    Ok(body.split_off(header_len))
}
