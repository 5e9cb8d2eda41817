//! One broker-to-broker connection for control-plane style calls (a follower's Fetch): encode
//! a kafka-protocol request with its header, send it, read the one response frame and decode
//! it, all under one timeout. A failed or timed-out call drops the connection; the next call
//! reconnects, through the [`Dialer`] of the inter-broker listener (plain TCP or TLS).

use crate::tls::{Dialer, Stream};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest response frame accepted (a fetch response is bounded by its MaxBytes plus one
/// batch of at most `message.max.bytes`).
const MAX_RESPONSE: usize = 128 << 20;

/// A lazily (re)connected line to one broker.
#[derive(Debug)]
pub struct BrokerConnection {
    client_id: String,
    timeout: Duration,
    to: Option<((String, u16), Box<dyn Stream>)>,
    correlation: i32,
    dialer: Dialer,
}

impl BrokerConnection {
    /// A connection whose requests carry `client_id` and take at most `timeout` each.
    pub fn new(client_id: String, timeout: Duration, dialer: Dialer) -> BrokerConnection {
        BrokerConnection {
            client_id,
            timeout,
            to: None,
            correlation: 0,
            dialer,
        }
    }

    /// Sends `req` to `addr` (reconnecting when the address changed) and decodes the answer.
    pub async fn call<Q: Encodable, R: Decodable>(
        &mut self,
        addr: (&str, u16),
        api_key: ApiKey,
        version: i16,
        req: &Q,
    ) -> anyhow::Result<R> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.exchange(addr, api_key, version, req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                self.to = None;
                Err(e)
            }
            Err(_) => {
                self.to = None;
                anyhow::bail!("no {api_key:?} response within {timeout:?}")
            }
        }
    }

    async fn exchange<Q: Encodable, R: Decodable>(
        &mut self,
        (host, port): (&str, u16),
        api_key: ApiKey,
        version: i16,
        req: &Q,
    ) -> anyhow::Result<R> {
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, api_key.request_header_version(version))?;
        req.encode(&mut buf, version)?;
        let size = i32::try_from(buf.len() - 4)?;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        let stale = self
            .to
            .as_ref()
            .is_some_and(|((h, p), _)| h != host || *p != port);
        if stale || self.to.is_none() {
            let stream = self.dialer.connect(host, port).await?;
            self.to = Some(((host.to_string(), port), stream));
        }
        let Some((_, stream)) = self.to.as_mut() else {
            anyhow::bail!("not connected");
        };
        stream.write_all(&buf).await?;
        stream.flush().await?; // a TLS stream may hold the tail of a write
        let size = stream.read_i32().await?;
        if size < 4 || size as usize > MAX_RESPONSE {
            anyhow::bail!("response frame of {size} bytes");
        }
        let mut frame = vec![0u8; size as usize];
        stream.read_exact(&mut frame).await?;
        let mut body = Bytes::from(frame);
        let got = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        if got != correlation {
            anyhow::bail!("response correlation id {got}, expected {correlation}");
        }
        let mut body = body.split_off(4);
        if api_key.response_header_version(version) >= 1 {
            // Tagged fields of the response header: none are defined; skip an empty set.
            anyhow::ensure!(
                body.first() == Some(&0),
                "response header with tagged fields"
            );
            body = body.split_off(1);
        }
        R::decode(&mut body, version)
    }
}
