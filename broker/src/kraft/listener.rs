//! Inbound quorum traffic: the controller listener's accept loop and connections. Each request
//! (Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch and FetchSnapshot on `__cluster_metadata-0`,
//! DescribeQuorum) is decoded by [`super::wire`], handed to the driver, and answered in order
//! on its connection, as a Kafka broker answers a connection's requests one at a time. A parked
//! Fetch holds its connection until the leader answers it (at most the fetch wait). Requests of
//! other APIs, or bodies that do not decode, close the connection with a log line.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use shale_protocol::codec::split_request_header;
use shale_protocol::kafka_protocol::messages::ApiKey;
use shale_raft::kraft::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

use super::driver::Input;
use super::wire::{self, WireContext};

/// Largest request frame accepted on the controller listener.
const MAX_REQUEST: usize = 16 << 20;
/// Error code NOT_LEADER_OR_FOLLOWER.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// Error code REQUEST_TIMED_OUT.
const REQUEST_TIMED_OUT: i16 = 7;

/// Serves quorum requests on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<WireContext>,
    driver: SyncSender<Input>,
    request_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let conn = connection(stream, ctx.clone(), driver.clone(), request_timeout);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(%peer, error = %e, "quorum connection closed");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "controller listener accept failed"),
            },
            _ = stop.changed() => return,
        }
    }
}

async fn connection(
    mut stream: TcpStream,
    ctx: Arc<WireContext>,
    driver: SyncSender<Input>,
    timeout: Duration,
) -> anyhow::Result<()> {
    loop {
        let size = match stream.read_i32().await {
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
        let api_key = ApiKey::try_from(header.request_api_key)
            .map_err(|()| anyhow::anyhow!("unknown api key {}", header.request_api_key))?;
        let version = header.request_api_version;
        let response = answer(api_key, version, body, &ctx, &driver, timeout).await?;
        let frame = response_frame(api_key, version, header.correlation_id, &response);
        stream.write_all(&frame).await?;
    }
}

/// The response body for one request.
async fn answer(
    api_key: ApiKey,
    version: i16,
    body: Bytes,
    ctx: &WireContext,
    driver: &SyncSender<Input>,
    timeout: Duration,
) -> anyhow::Result<Bytes> {
    if api_key == ApiKey::DescribeQuorum {
        let (reply, rx) = oneshot::channel();
        driver
            .try_send(Input::Describe { reply })
            .map_err(|_| anyhow::anyhow!("quorum driver busy or stopped"))?;
        let description = tokio::time::timeout(timeout, rx).await.ok().and_then(Result::ok);
        return Ok(match description.flatten() {
            Some(d) => wire::encode_describe_quorum(&to_status(&d), version)?,
            None => wire::error_response(api_key, version, NOT_LEADER_OR_FOLLOWER)?,
        });
    }
    let inbound = match wire::decode_request(api_key, version, body, ctx) {
        Ok(inbound) => inbound,
        Err(wire::WireError::Refused(code)) => return Ok(wire::error_response(api_key, version, code)?),
        Err(e) => return Err(e.into()),
    };
    let (reply, rx) = oneshot::channel();
    let is_end = matches!(inbound.msg, Message::EndQuorumEpoch { .. });
    let input = Input::Request {
        from: inbound.from,
        msg: inbound.msg.clone(),
        reply,
    };
    driver
        .try_send(input)
        .map_err(|_| anyhow::anyhow!("quorum driver busy or stopped"))?;
    if is_end {
        // EndQuorumEpoch has no answer from the core: acknowledge it at once.
        return Ok(wire::encode_end_quorum_epoch_response(&inbound, version, ctx)?);
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(answer)) => Ok(wire::encode_response(&inbound, &answer, version, ctx)?),
        _ => Ok(wire::error_response(api_key, version, REQUEST_TIMED_OUT)?),
    }
}

fn to_status(d: &super::driver::QuorumDescription) -> wire::QuorumStatus {
    wire::QuorumStatus::from_description(d)
}

/// A size-prefixed response frame: correlation id, the header's empty tagged fields when the
/// version is flexible, then the body.
fn response_frame(api_key: ApiKey, version: i16, correlation: i32, body: &[u8]) -> Bytes {
    let flexible = api_key.response_header_version(version) >= 1;
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
