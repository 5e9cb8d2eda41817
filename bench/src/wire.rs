//! A minimal pipelined Kafka connection: requests are written as they come and responses are
//! matched in order (Kafka answers requests on one connection in the order received), so several
//! requests can be in flight. A reader task timestamps every response frame on arrival, which
//! keeps ack latencies honest even when the caller is busy building the next batch.

use anyhow::{anyhow, bail, Context};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// The TLS connector every connection uses, when `--tls-ca` is given.
static TLS: OnceLock<tokio_rustls::TlsConnector> = OnceLock::new();

/// Makes every connection TLS, trusting the CA certificates in `ca` (PEM). Host names are
/// checked as usual: connect by a name or address the broker's certificate carries.
pub fn use_tls(ca: &std::path::Path) -> anyhow::Result<()> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let _ = TLS.set(tokio_rustls::TlsConnector::from(Arc::new(config)));
    Ok(())
}

/// A connection's write half: plain TCP or TLS.
pub trait WriteHalf: AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncWrite + Unpin + Send + std::fmt::Debug> WriteHalf for T {}
type Writer = Box<dyn WriteHalf>;
type Reader = Box<dyn AsyncRead + Unpin + Send>;

/// A response frame (header and body, size prefix removed) and when it arrived.
pub type Arrived = anyhow::Result<(Bytes, Instant)>;

/// A response not yet received.
#[derive(Debug)]
pub struct Pending {
    rx: oneshot::Receiver<Arrived>,
    correlation_id: i32,
}

impl Pending {
    /// Waits for the raw response.
    pub async fn wait(self) -> Arrived {
        self.rx
            .await
            .map_err(|_| anyhow!("connection closed before response"))?
    }

    /// Waits and decodes it as `R`'s response at `version`.
    pub async fn decode<R: Request>(self, version: i16) -> anyhow::Result<(R::Response, Instant)> {
        let want = self.correlation_id;
        let (mut frame, at) = self.wait().await?;
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version))?;
        if header.correlation_id != want {
            bail!("correlation id {} != {}", header.correlation_id, want);
        }
        Ok((R::Response::decode(&mut frame, version)?, at))
    }
}

/// One pipelined connection.
#[derive(Debug)]
pub struct Conn {
    writer: Writer,
    waiting: mpsc::UnboundedSender<oneshot::Sender<Arrived>>,
    correlation_id: i32,
    buf: BytesMut,
}

impl Conn {
    /// Connects to `addr` (host:port).
    pub async fn connect(addr: &str) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let (read, writer): (Reader, Writer) = match TLS.get() {
            None => {
                let (r, w) = stream.into_split();
                (Box::new(r), Box::new(w))
            }
            Some(tls) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let name = rustls_pki_types::ServerName::try_from(host.to_string())?;
                let (r, w) = tokio::io::split(tls.connect(name, stream).await?);
                (Box::new(r), Box::new(w))
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(read_loop(BufReader::with_capacity(256 * 1024, read), rx));
        Ok(Conn {
            writer,
            waiting: tx,
            correlation_id: 0,
            buf: BytesMut::with_capacity(64 * 1024),
        })
    }

    /// Writes `req` at `version`; the response arrives through the returned [`Pending`].
    pub async fn send<R: Request>(&mut self, req: &R, version: i16) -> anyhow::Result<Pending> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let key = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown api key {}", R::KEY))?;
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = self.correlation_id;
        header.client_id = Some(StrBytes::from_static_str("shale-bench"));
        self.buf.clear();
        self.buf.extend_from_slice(&[0; 4]);
        header.encode(&mut self.buf, key.request_header_version(version))?;
        req.encode(&mut self.buf, version)?;
        let len = i32::try_from(self.buf.len() - 4).context("request too large")?;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        let (tx, rx) = oneshot::channel();
        self.waiting
            .send(tx)
            .map_err(|_| anyhow!("connection reader stopped"))?;
        self.writer
            .write_all(&self.buf)
            .await
            .context("write request")?;
        // TLS may hold the tail of a write until flushed.
        self.writer.flush().await.context("write request")?;
        Ok(Pending {
            rx,
            correlation_id: self.correlation_id,
        })
    }

    /// Sends and waits for the decoded response.
    pub async fn call<R: Request>(&mut self, req: &R, version: i16) -> anyhow::Result<R::Response> {
        Ok(self.send(req, version).await?.decode::<R>(version).await?.0)
    }
}

async fn read_loop(
    mut read: BufReader<Reader>,
    mut waiting: mpsc::UnboundedReceiver<oneshot::Sender<Arrived>>,
) {
    while let Some(tx) = waiting.recv().await {
        let frame = read_frame(&mut read).await;
        let failed = frame.is_err();
        let _ = tx.send(frame.map(|f| (f, Instant::now())));
        if failed {
            while let Ok(tx) = waiting.try_recv() {
                let _ = tx.send(Err(anyhow!("connection failed earlier")));
            }
            return;
        }
    }
}

async fn read_frame<R: AsyncReadExt + Unpin>(read: &mut R) -> anyhow::Result<Bytes> {
    let size = read.read_i32().await.context("read response size")?;
    let size = usize::try_from(size).map_err(|_| anyhow!("negative frame size {size}"))?;
    if size > 256 * 1024 * 1024 {
        bail!("response frame of {size} bytes is too large");
    }
    let mut buf = vec![0u8; size];
    read.read_exact(&mut buf).await.context("read response")?;
    Ok(Bytes::from(buf))
}
