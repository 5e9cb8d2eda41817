//! One client connection: the TLS handshake on a TLS listener (within [`HANDSHAKE_TIMEOUT`],
//! naming the client's principal; a failure closes this connection only, logged and counted),
//! then a reader task that frames requests (rejecting a size prefix above
//! `socket.request.max.bytes` before allocating) into a bounded queue, and a loop that handles
//! them one at a time and writes the responses in request order, as Kafka does; a client may
//! pipeline up to `queued.max.requests`. A connection with no bytes read, no request in progress
//! and no response written for `connections.max.idle.ms` is closed.

use crate::api::{self, CloseReason, ConnectionInfo, Response};
use crate::connection_limits::Permit;
use crate::sasl::{Gate, Session};
use crate::state::Broker;
use crate::tls::ServerTls;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// A connection that passed the limits, on its way to its task.
#[derive(Debug)]
pub struct Accepted {
    /// The accepted socket.
    pub stream: TcpStream,
    /// Who is connected where (the principal is set by the TLS handshake).
    pub connection: ConnectionInfo,
    /// Its slot in the connection limits, released when the connection ends.
    pub permit: Permit,
    /// The listener's TLS side, when it speaks TLS.
    pub tls: Option<Arc<ServerTls>>,
}

/// How long a TLS client has to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// When a connection last did something, for `connections.max.idle.ms`.
#[derive(Debug)]
struct Activity {
    since: tokio::time::Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            since: tokio::time::Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.since.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Completes once nothing has happened for `limit` (never when `None`).
    async fn idle_for(&self, limit: Option<Duration>) {
        let Some(limit) = limit else {
            return std::future::pending().await;
        };
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = self.since + last + limit;
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// Serves one accepted connection: the TLS handshake when its listener speaks TLS, then its
/// requests until it closes.
pub async fn serve(broker: Arc<Broker>, accepted: Accepted, stop: watch::Receiver<bool>) {
    let Accepted {
        stream,
        connection: mut conn,
        permit,
        tls,
    } = accepted;
    broker.metrics.connections.inc();
    match tls {
        None => {
            let (rd, wr) = stream.into_split();
            requests(&broker, conn, rd, wr, stop).await;
        }
        Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
            Ok(Ok((stream, principal))) => {
                conn.principal = Arc::from(principal);
                tracing::debug!(peer = %conn.peer, listener = %conn.listener,
                    principal = %conn.principal, "TLS connection");
                let (rd, wr) = tokio::io::split(stream);
                requests(&broker, conn, rd, wr, stop).await;
            }
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => format!("{e:#}"),
                    _ => format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
                };
                broker.metrics.failed_authentication.inc();
                tracing::info!(peer = %conn.peer, listener = %conn.listener, %reason,
                    "closing connection: TLS handshake failed");
            }
        },
    }
    broker.metrics.connections.dec();
    drop(permit);
}

/// What one request comes to.
enum Step {
    /// Answer it (or not, for acks=0).
    Respond(Response),
    /// SASL refused the client: send the error response when there is one, then close.
    Refuse(Option<Bytes>, String),
    /// Close at once.
    Close(CloseReason),
}

/// The SASL state of a connection on a SASL listener, and the request size limit it sets.
struct Auth {
    session: Option<Session>,
    max: Arc<AtomicUsize>,
    full: usize,
}

/// Reads, handles and answers one connection's requests until it closes.
async fn requests<R, W>(
    broker: &Arc<Broker>,
    mut conn: ConnectionInfo,
    rd: R,
    mut wr: W,
    mut stop: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let peer = conn.peer;
    let activity = Arc::new(Activity::new());
    let idle_limit = broker.config.connection_limits.idle_timeout;
    // The reader's last item is the reason it stopped, if it was not a clean end of stream.
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, CloseReason>>(
        broker.config.queued_max_requests.clamp(1, 1024),
    );
    let session = broker.config.sasl.get(&*conn.listener).map(|config| {
        let scram = Arc::new(crate::sasl::ImageScram(broker.controller.clone()));
        Session::new(config.clone(), scram)
    });
    let full = broker.config.socket_request_max_bytes;
    let max = session.as_ref().map_or(full, |s| s.max_frame(full));
    let mut auth = Auth {
        session,
        max: Arc::new(AtomicUsize::new(max)),
        full,
    };
    let reader = tokio::spawn(read_frames(rd, tx, auth.max.clone(), activity.clone()));
    loop {
        let next = tokio::select! {
            f = rx.recv() => match f { Some(f) => f, None => break },
            _ = activity.idle_for(idle_limit) => {
                broker.metrics.connections_idle_closed.inc();
                tracing::debug!(%peer, "closing idle connection (connections.max.idle.ms)");
                break;
            }
            _ = stop.changed() => break,
        };
        // A TLS stream may keep the tail of a write buffered when the socket is full; the flush
        // sends it (on plain TCP it does nothing).
        let (written, refused) = match step(broker, &mut conn, &mut auth, next).await {
            Step::Respond(Response::None) => (Ok(()), None),
            Step::Respond(Response::Frame(bytes)) => (wr.write_all(&bytes).await, None),
            Step::Respond(Response::Chunks(chunks)) => (write_chunks(&mut wr, chunks).await, None),
            Step::Refuse(answer, reason) => {
                // Kafka's connection.failed.authentication.delay.ms: slows password guessing.
                if let Some(session) = &auth.session {
                    tokio::time::sleep(session.failure_delay()).await;
                }
                match answer {
                    Some(bytes) => (wr.write_all(&bytes).await, Some(reason)),
                    None => (Ok(()), Some(reason)),
                }
            }
            Step::Close(reason) => {
                if auth
                    .session
                    .as_ref()
                    .is_some_and(|s| s.principal().is_none())
                {
                    broker.metrics.failed_authentication.inc(); // closed before authenticating
                }
                log_close(&conn, &reason);
                break;
            }
        };
        if written.is_err() || wr.flush().await.is_err() {
            break;
        }
        // A client over its quota rests before its next request (Kafka mutes the channel).
        if let Some(rest) = conn.mute.take() {
            tokio::time::sleep(rest).await;
        }
        if let Some(reason) = refused {
            broker.metrics.failed_authentication.inc();
            tracing::info!(%peer, listener = %conn.listener, %reason,
                "closing connection: SASL authentication failed");
            break;
        }
        activity.touch();
    }
    reader.abort();
    let _ = wr.shutdown().await;
}

/// The reader task: frames requests into `tx` until the stream ends; its last item is the
/// reason it stopped, if it was not a clean end of stream.
async fn read_frames(
    mut rd: impl AsyncRead + Unpin,
    tx: mpsc::Sender<Result<Bytes, CloseReason>>,
    max: Arc<AtomicUsize>,
    activity: Arc<Activity>,
) {
    loop {
        let limit = max.load(Ordering::Relaxed);
        let Some(item) = read_frame(&mut rd, limit, &activity).await.transpose() else {
            break;
        };
        let last = item.is_err();
        if tx.send(item).await.is_err() || last {
            break;
        }
    }
}

/// Handles one request, through the SASL session when the listener has one.
async fn step(
    broker: &Arc<Broker>,
    conn: &mut ConnectionInfo,
    auth: &mut Auth,
    next: Result<Bytes, CloseReason>,
) -> Step {
    let frame = match next {
        Ok(frame) => frame,
        Err(reason) => return Step::Close(reason),
    };
    let gate = match auth.session.as_mut() {
        Some(session) => session.check(&frame, broker.clock.now_ms()),
        None => Gate::Pass,
    };
    match gate {
        Gate::Pass => match api::handle(broker, conn, frame).await {
            Ok(response) => Step::Respond(response),
            Err(reason) => Step::Close(reason),
        },
        Gate::Answer(bytes) => {
            let authenticated = shale_protocol::codec::peek_header(&frame)
                .is_ok_and(|(key, _, _)| key == ApiKey::SaslAuthenticate as i16);
            if let Some(user) = auth.session.as_ref().and_then(|s| s.principal()) {
                if authenticated {
                    conn.principal = Arc::from(user);
                    tracing::debug!(peer = %conn.peer, listener = %conn.listener,
                        principal = %conn.principal, "SASL authenticated");
                }
                auth.max.store(auth.full, Ordering::Relaxed);
            }
            Step::Respond(Response::Frame(bytes))
        }
        Gate::Fail { answer, reason } => Step::Refuse(answer, reason),
    }
}

/// Logs, once, why a connection is being closed.
fn log_close(conn: &ConnectionInfo, reason: &CloseReason) {
    let (peer, listener) = (conn.peer, &*conn.listener);
    if reason.is_bad_request() {
        tracing::warn!(%peer, %listener, %reason, "closing connection after a bad request");
    } else if matches!(reason, CloseReason::AcksZeroFailed(_)) {
        // The client's own doing (a denied topic, a moved leader), as Kafka logs it.
        tracing::info!(%peer, %listener, %reason, "closing connection");
    } else {
        tracing::warn!(%peer, %listener, %reason, "closing connection");
    }
}

/// Reads one size-prefixed frame; `Ok(None)` on a clean end of stream.
async fn read_frame(
    rd: &mut (impl AsyncRead + Unpin),
    max: usize,
    activity: &Activity,
) -> Result<Option<Bytes>, CloseReason> {
    let mut prefix = [0u8; 4];
    match rd.read_exact(&mut prefix).await {
        Ok(_) => activity.touch(),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(CloseReason::Read(e)),
    }
    let size = i32::from_be_bytes(prefix);
    // A TLS record header: handshake (22), version 3.x. As a size it is far above any limit.
    if prefix[0] == 22 && prefix[1] == 3 && size as usize > max {
        return Err(CloseReason::TlsOnPlaintext);
    }
    if size < 0 || size as usize > max {
        return Err(CloseReason::RequestTooLarge { size, max });
    }
    // Filled in place without zeroing it first (memset was 3.6% of a 1 KiB produce profile);
    // `take` keeps a read from running into the next frame.
    let size = size as usize;
    let mut buf = BytesMut::with_capacity(size);
    while buf.len() < size {
        let want = (size - buf.len()) as u64;
        match (&mut *rd).take(want).read_buf(&mut buf).await {
            Ok(0) => {
                return Err(CloseReason::Truncated {
                    read: buf.len(),
                    size,
                })
            }
            Ok(_) => activity.touch(),
            Err(e) => return Err(CloseReason::Read(e)),
        }
    }
    Ok(Some(buf.freeze()))
}

/// Writes response chunks with vectored writes; record chunks are never copied.
async fn write_chunks(
    wr: &mut (impl AsyncWrite + Unpin),
    chunks: Vec<Bytes>,
) -> std::io::Result<()> {
    let mut chunks: std::collections::VecDeque<Bytes> = chunks.into();
    while !chunks.is_empty() {
        let slices: Vec<std::io::IoSlice<'_>> = chunks
            .iter()
            .take(64)
            .map(|c| std::io::IoSlice::new(c))
            .collect();
        let mut written = wr.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let Some(front) = chunks.front_mut() else {
                break;
            };
            if written >= front.len() {
                written -= front.len();
                chunks.pop_front();
            } else {
                let _ = front.split_to(written);
                written = 0;
            }
        }
    }
    Ok(())
}
