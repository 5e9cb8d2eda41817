//! Prometheus metrics and the `/metrics` HTTP endpoint.
//!
//! Request counts and latency per API, bytes in (produce payloads) and out (fetch payloads),
//! records the broker rewrote on produce (`compression.type` recompression), connection, partition, log-size and open-file gauges, refused and idle-closed connections. The
//! endpoint is a deliberately tiny HTTP/1.1 responder: it answers `GET /metrics` and 404s
//! everything else, then closes the connection.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The broker's metrics.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests handled, by API name.
    pub requests: IntCounterVec,
    /// Request latency in seconds, by API name.
    pub latency: HistogramVec,
    /// Record bytes accepted by Produce.
    pub bytes_in: IntCounter,
    /// Record bytes served by Fetch.
    pub bytes_out: IntCounter,
    /// Records rebuilt on produce instead of stored as sent (Kafka's ProduceMessageConversions).
    pub produce_message_conversions: IntCounter,
    /// Open client connections.
    pub connections: IntGauge,
    /// Connections closed at once because their address was at `max.connections.per.ip`.
    pub connections_rejected: IntCounter,
    /// Connections closed after `connections.max.idle.ms` without activity.
    pub connections_idle_closed: IntCounter,
    /// Connections whose TLS handshake (or principal mapping) failed.
    pub failed_authentication: IntCounter,
    /// Partitions led by this broker.
    pub partitions: IntGauge,
    /// Total size of all local logs.
    pub log_size_bytes: IntGauge,
    /// Descriptors held by partition logs (segment files, index write-backs in progress).
    pub log_open_files: IntGauge,
    /// Of those, pinned by active segments.
    pub log_pinned_files: IntGauge,
    /// `shale.log.open.files.max` in effect.
    pub log_open_files_budget: IntGauge,
    /// Partitions whose appends fail on an I/O error (disk full, …).
    pub partitions_appends_failing: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("shale_requests_total", "Requests handled, by API"),
            &["api"],
        )
        .expect("static metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new("shale_request_latency_seconds", "Request latency, by API").buckets(
                vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
            ),
            &["api"],
        )
        .expect("static metric definition");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("static metric");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("static metric");
        let m = Metrics {
            requests,
            latency,
            bytes_in: counter("shale_bytes_in_total", "Record bytes accepted by Produce"),
            bytes_out: counter("shale_bytes_out_total", "Record bytes served by Fetch"),
            produce_message_conversions: counter(
                "shale_produce_message_conversions_total",
                "Records rebuilt on produce (recompressed for compression.type)",
            ),
            connections: gauge("shale_connections", "Open client connections"),
            connections_rejected: counter(
                "shale_connections_rejected_total",
                "Connections closed at accept: their address was at max.connections.per.ip",
            ),
            connections_idle_closed: counter(
                "shale_connections_idle_closed_total",
                "Connections closed after connections.max.idle.ms without activity",
            ),
            failed_authentication: counter(
                "shale_failed_authentication_total",
                "Connections closed because their TLS handshake or principal mapping failed",
            ),
            partitions: gauge("shale_partitions", "Partitions led by this broker"),
            log_size_bytes: gauge("shale_log_size_bytes", "Total size of the local logs"),
            log_open_files: gauge(
                "shale_log_open_files",
                "File descriptors held by partition logs",
            ),
            log_pinned_files: gauge(
                "shale_log_pinned_files",
                "Descriptors pinned by active segments",
            ),
            log_open_files_budget: gauge(
                "shale_log_open_files_budget",
                "Budget of descriptors for partition logs (shale.log.open.files.max)",
            ),
            partitions_appends_failing: gauge(
                "shale_partitions_appends_failing",
                "Partitions whose last append failed on an I/O error (disk full, ...)",
            ),
            registry,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.requests.clone()),
            Box::new(m.latency.clone()),
            Box::new(m.bytes_in.clone()),
            Box::new(m.bytes_out.clone()),
            Box::new(m.produce_message_conversions.clone()),
            Box::new(m.connections.clone()),
            Box::new(m.connections_rejected.clone()),
            Box::new(m.connections_idle_closed.clone()),
            Box::new(m.failed_authentication.clone()),
            Box::new(m.partitions.clone()),
            Box::new(m.log_size_bytes.clone()),
            Box::new(m.log_open_files.clone()),
            Box::new(m.log_pinned_files.clone()),
            Box::new(m.log_open_files_budget.clone()),
            Box::new(m.partitions_appends_failing.clone()),
        ];
        for c in collectors {
            m.registry.register(c).expect("unique metric names");
        }
        m
    }

    /// Records one handled request.
    pub fn observe(&self, api: &str, seconds: f64) {
        self.requests.with_label_values(&[api]).inc();
        self.latency.with_label_values(&[api]).observe(seconds);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Serves `GET /metrics` with the text `render` produces, until the listener's task is dropped.
pub async fn serve(listener: TcpListener, render: Arc<dyn Fn() -> String + Send + Sync>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n = match sock.read(&mut buf).await {
                Ok(n) => n,
                Err(_) => return,
            };
            let request = String::from_utf8_lossy(&buf[..n]);
            let ok = request.starts_with("GET /metrics ");
            let (status, body) = if ok {
                ("200 OK", render())
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(response.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
