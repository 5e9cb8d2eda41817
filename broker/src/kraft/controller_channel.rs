//! A broker's line to the active controller (Kafka's NodeToControllerChannelManager): finds the
//! quorum leader in this node's [`QuorumView`], keeps one connection to its controller
//! listener, and sends one request at a time. The leader changes under it: a request that
//! fails, times out or is still waiting when the quorum leader changes drops the connection,
//! and the next one goes to whoever leads then.
//!
//! Two kinds of traffic use it, each on its own channel so that a slow admin request never
//! delays a heartbeat: the broker's lifecycle requests (BrokerRegistration, BrokerHeartbeat,
//! built here from a body) and forwarded client requests: admin requests in an Envelope
//! (`crate::api::envelope`), DescribeQuorum as the client's whole frame with the correlation id
//! swapped, relayed back as the controller's listener answered it.

use std::collections::HashMap;
use std::time::Duration;

use crate::tls::Stream;
use bytes::{Bytes, BytesMut};
use shale_protocol::kafka_protocol::messages::ApiKey;
use shale_raft::kraft::NodeId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Mutex};

use super::driver::QuorumView;
use super::peers::{read_response, request_frame, Peer};
use super::wire::WireContext;

/// Largest response frame relayed from a controller.
const MAX_RESPONSE: usize = 64 << 20;

/// A connection to whichever controller is active.
#[derive(Debug)]
pub struct ControllerChannel {
    controllers: HashMap<NodeId, Peer>,
    view: watch::Receiver<QuorumView>,
    ctx: WireContext,
    timeout: Duration,
    conn: Mutex<Connection>,
}

#[derive(Debug, Default)]
struct Connection {
    to: Option<(NodeId, Box<dyn Stream>)>,
    correlation: i32,
}

impl ControllerChannel {
    /// A channel to the controllers `voters`, following `view` for the leader; a request
    /// (waiting for a leader included) takes at most `timeout`.
    pub fn new(
        voters: &[Peer],
        view: watch::Receiver<QuorumView>,
        ctx: WireContext,
        timeout: Duration,
    ) -> ControllerChannel {
        ControllerChannel {
            controllers: voters.iter().map(|p| (p.id, p.clone())).collect(),
            view,
            ctx,
            timeout,
            conn: Mutex::new(Connection::default()),
        }
    }

    /// The active controller, as far as this node knows.
    pub fn active(&self) -> Option<NodeId> {
        self.view.borrow().leader
    }

    /// Sends one request built from `body` and returns the response body.
    pub async fn send(&self, api_key: ApiKey, version: i16, body: &[u8]) -> anyhow::Result<Bytes> {
        let call = async {
            let mut conn = self.conn.lock().await;
            self.connect(&mut conn).await?;
            conn.correlation = conn.correlation.wrapping_add(1);
            let correlation = conn.correlation;
            let frame = request_frame(api_key, version, correlation, &self.ctx, body)?;
            let stream = stream_of(&mut conn)?;
            stream.write_all(&frame).await?;
            stream.flush().await?; // a TLS stream may hold the tail of a write
            read_response(stream, api_key, version, correlation).await
        };
        self.bounded(call).await
    }

    /// Relays a client's request `frame` (header and body, no size prefix) and returns the
    /// controller's response frame (no size prefix) under the client's correlation id.
    pub async fn forward(&self, frame: &[u8]) -> anyhow::Result<Bytes> {
        anyhow::ensure!(frame.len() >= 8, "request frame of {} bytes", frame.len());
        let client_correlation = [frame[4], frame[5], frame[6], frame[7]];
        let call = async {
            let mut conn = self.conn.lock().await;
            self.connect(&mut conn).await?;
            conn.correlation = conn.correlation.wrapping_add(1);
            let correlation = conn.correlation;
            let mut out = BytesMut::with_capacity(4 + frame.len());
            out.extend_from_slice(&(frame.len() as i32).to_be_bytes());
            out.extend_from_slice(&frame[..4]);
            out.extend_from_slice(&correlation.to_be_bytes());
            out.extend_from_slice(&frame[8..]);
            let stream = stream_of(&mut conn)?;
            stream.write_all(&out).await?;
            stream.flush().await?;
            let mut response = read_frame(stream).await?;
            anyhow::ensure!(
                response.get(..4) == Some(&correlation.to_be_bytes()[..]),
                "forwarded response with another correlation id"
            );
            response[..4].copy_from_slice(&client_correlation);
            Ok(response.freeze())
        };
        self.bounded(call).await
    }

    /// Runs `call` under the timeout; a change of quorum leader while it waits ends it (the
    /// old controller may be frozen or cut off with the connection still open, and a heartbeat
    /// stuck there would let the new controller fence this broker). Any failure drops the
    /// connection.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        let mut view = self.view.clone();
        let leader = view.borrow_and_update().leader;
        let leader_moved = async move {
            while leader.is_some() && view.changed().await.is_ok() {
                if view.borrow().leader != leader {
                    return;
                }
            }
            std::future::pending::<()>().await
        };
        let result = tokio::select! {
            result = tokio::time::timeout(self.timeout, call) => match result {
                Ok(result) => result,
                Err(_) => Err(anyhow::anyhow!(
                    "no answer from the controller in {:?}",
                    self.timeout
                )),
            },
            () = leader_moved => Err(anyhow::anyhow!("the active controller changed")),
        };
        if result.is_err() {
            self.conn.lock().await.to = None;
        }
        result
    }

    /// The connection to the current leader, opened (or re-opened after a leader change) as
    /// needed; waits for a leader to be known.
    async fn connect(&self, conn: &mut Connection) -> anyhow::Result<()> {
        let leader = self.leader().await?;
        if conn.to.as_ref().is_some_and(|(id, _)| *id != leader) {
            conn.to = None;
        }
        if conn.to.is_none() {
            // A static voter's address is configured; a dynamic quorum's leader was learned.
            let learned = self.view.borrow().leader_address.clone();
            let (host, port) = match self.controllers.get(&leader) {
                Some(peer) => (peer.host.clone(), peer.port),
                None => learned
                    .ok_or_else(|| anyhow::anyhow!("controller {leader} has no known address"))?,
            };
            let stream = self.ctx.dialer.connect(&host, port).await?;
            conn.to = Some((leader, stream));
        }
        Ok(())
    }

    async fn leader(&self) -> anyhow::Result<NodeId> {
        let mut view = self.view.clone();
        loop {
            let current = view.borrow_and_update().clone();
            if current.stopped {
                anyhow::bail!("the metadata quorum is stopped");
            }
            if let Some(leader) = current.leader {
                return Ok(leader);
            }
            view.changed().await?;
        }
    }
}

fn stream_of(conn: &mut Connection) -> anyhow::Result<&mut Box<dyn Stream>> {
    conn.to
        .as_mut()
        .map(|(_, s)| s)
        .ok_or_else(|| anyhow::anyhow!("no controller connection"))
}

/// One size-prefixed frame, returned without its prefix.
async fn read_frame(stream: &mut Box<dyn Stream>) -> anyhow::Result<BytesMut> {
    let size = stream.read_i32().await?;
    if size < 4 || size as usize > MAX_RESPONSE {
        anyhow::bail!("response frame of {size} bytes");
    }
    let mut buf = BytesMut::zeroed(size as usize);
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}
