//! The OTLP/HTTP exporter's client: the reqwest client the broker already has (object_store's,
//! rustls with the system's roots), driven on the broker's runtime.
//!
//! The batch span processor runs exports on its own thread and only blocks that thread on the
//! export future; reqwest's async client needs a runtime, so each request runs as a task on the
//! broker's runtime and the processor thread waits for that task. The response body, which
//! OTLP keeps tiny, is read up to [`MAX_RESPONSE_BYTES`].

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use std::time::Duration;

/// The most of a collector's response body that is read (partial-success messages are small).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// An [`HttpClient`] whose requests run on the runtime it was created in.
#[derive(Debug, Clone)]
pub struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RuntimeClient {
    /// A client with a `timeout` per request, bound to the current runtime.
    pub fn new(timeout: Duration) -> anyhow::Result<RuntimeClient> {
        Ok(RuntimeClient {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            runtime: tokio::runtime::Handle::try_current()?,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        self.runtime
            .spawn(async move {
                let mut response = client.execute(request).await?;
                let mut out = Response::builder().status(response.status());
                if let Some(headers) = out.headers_mut() {
                    *headers = std::mem::take(response.headers_mut());
                }
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await? {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err("OTLP response body too large".into());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(out.body(Bytes::from(body))?)
            })
            .await?
    }
}
