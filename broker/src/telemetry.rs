//! Logging and OpenTelemetry traces: the process-wide `tracing` subscriber.
//!
//! Logs go to stderr through `tracing-subscriber`'s fmt layer, filtered by `RUST_LOG` (else
//! `log.level`), as they always have. Traces are off unless the environment asks for them
//! ([`TraceSettings::from_env`], following OpenTelemetry's `OTEL_*` variables); then the spans
//! of target [`TRACE_TARGET`] (a span per request, with children for log appends, remote storage
//! calls and metadata writes) go through `tracing-opentelemetry` to a batching OTLP exporter,
//! HTTP/protobuf or gRPC. Those spans never reach the log, and with tracing off nobody is
//! interested in them, so they cost a cached callsite check.
//!
//! ```text
//!  span end ─ tracing-opentelemetry ─ BatchSpanProcessor queue (bounded, never blocks; full =
//!  dropped) ─ its own thread ─ OTLP exporter ─ HTTP: reqwest on the runtime | gRPC: tonic
//! ```
//!
//! The exporter's I/O runs as tasks on the broker's runtime (the processor thread only waits
//! for them), so [`Telemetry::init`] must be called inside the runtime and
//! [`Telemetry::shutdown`] (which flushes) before it stops, from a thread that may block.

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use shale_common::TRACE_TARGET;
use std::time::Duration;
use tracing_subscriber::filter::{EnvFilter, FilterExt, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

mod http_client;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `grpc`: OTLP over gRPC (default port 4317).
    Grpc,
    /// `http/protobuf`: OTLP over HTTP with protobuf bodies (default port 4318), the default.
    HttpProtobuf,
}

/// What the `OTEL_*` environment asks of the trace exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSettings {
    /// The transport.
    pub protocol: Protocol,
    /// The per-export timeout (`OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`, milliseconds).
    pub timeout: Duration,
}

/// `service.name` when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names it.
pub const DEFAULT_SERVICE_NAME: &str = "shale";

/// The first of `names` that is set to something other than blanks.
fn first_set(env: &dyn Fn(&str) -> Option<String>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| env(n))
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

impl TraceSettings {
    /// Reads the switch and the transport from `env` (`std::env::var` in the binary).
    ///
    /// Tracing is on when `OTEL_TRACES_EXPORTER` lists `otlp`, or, with it unset, when
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set; it is off
    /// when `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. An exporter other than
    /// `otlp`/`none`, or a protocol other than `grpc`/`http/protobuf`, is an error.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        if first_set(env, &["OTEL_SDK_DISABLED"]).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let enabled = match first_set(env, &["OTEL_TRACES_EXPORTER"]) {
            Some(list) => {
                let mut otlp = false;
                for e in list.split(',').map(str::trim) {
                    match e {
                        "otlp" => otlp = true,
                        "none" | "" => {}
                        other => anyhow::bail!(
                            "OTEL_TRACES_EXPORTER={other} is not supported (use otlp or none)"
                        ),
                    }
                }
                otlp
            }
            None => first_set(
                env,
                &[
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                ],
            )
            .is_some(),
        };
        if !enabled {
            return Ok(None);
        }
        let protocol = match first_set(
            env,
            &[
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ],
        )
        .as_deref()
        {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some(other) => anyhow::bail!(
                "OTLP protocol {other:?} is not supported (use grpc or http/protobuf)"
            ),
        };
        let timeout =
            match first_set(
                env,
                &[
                    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                    "OTEL_EXPORTER_OTLP_TIMEOUT",
                ],
            ) {
                None => Duration::from_secs(10),
                Some(ms) => Duration::from_millis(ms.parse().with_context(|| {
                    format!("OTLP timeout {ms:?} is not a number of milliseconds")
                })?),
            };
        Ok(Some(TraceSettings { protocol, timeout }))
    }
}

/// The installed subscriber's trace pipeline, if tracing is on.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the global subscriber: the fmt log layer filtered by `RUST_LOG` (else
    /// `log_level`), plus the OTLP trace layer when `traces` is set. Must run inside the tokio
    /// runtime that will carry the exporter's I/O.
    pub fn init(log_level: &str, traces: Option<&TraceSettings>) -> anyhow::Result<Telemetry> {
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(log_level))
            .add_directive(format!("{TRACE_TARGET}=off").parse()?);
        let Some(settings) = traces else {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            return Ok(Telemetry { provider: None });
        };
        let provider = provider(settings)?;
        let tracer = provider.tracer("shale");
        let spans_only = Targets::new()
            .with_target(TRACE_TARGET, tracing::Level::INFO)
            .and(tracing_subscriber::filter::filter_fn(|m| m.is_span()));
        let traces = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_threads(false)
            .with_location(false)
            .with_target(false)
            .with_filter(spans_only);
        let logs = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter);
        tracing_subscriber::registry()
            .with(logs)
            .with(traces)
            .init();
        Ok(Telemetry {
            provider: Some(provider),
        })
    }

    /// Exports what is queued and stops the exporter. Blocks until the last export ends (at
    /// most the export timeout): call it from the blocking pool, before the runtime stops.
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            if let Err(e) = p.shutdown() {
                tracing::warn!(error = %e, "flushing traces at shutdown failed");
            }
        }
    }
}

/// The tracer provider: resource, sampler (the SDK reads `OTEL_TRACES_SAMPLER[_ARG]`), batching
/// processor (`OTEL_BSP_*`) and the OTLP exporter (endpoint, headers and compression from the
/// `OTEL_EXPORTER_OTLP_*` variables, read by opentelemetry-otlp).
fn provider(settings: &TraceSettings) -> anyhow::Result<SdkTracerProvider> {
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match settings.protocol {
        Protocol::HttpProtobuf => builder
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_timeout(settings.timeout)
            .with_http_client(http_client::RuntimeClient::new(settings.timeout)?)
            .build(),
        Protocol::Grpc => builder
            .with_tonic()
            .with_timeout(settings.timeout)
            .with_tls_config(
                opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new()
                    .with_native_roots(),
            )
            .build(),
    }
    .context("building the OTLP trace exporter")?;
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|n| !n.as_str().starts_with("unknown_service"));
    let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    if !named {
        resource = resource.with_service_name(DEFAULT_SERVICE_NAME);
    }
    Ok(SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<Option<TraceSettings>> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TraceSettings::from_env(&move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn off_without_otel_variables() {
        assert_eq!(settings(&[]).unwrap(), None);
        assert_eq!(
            settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")]).unwrap(),
            None
        );
    }

    #[test]
    fn an_endpoint_or_the_otlp_exporter_switches_it_on() {
        let on = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")]).unwrap();
        assert_eq!(on.unwrap().protocol, Protocol::HttpProtobuf);
        let on = settings(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://h:1/v1/traces")]);
        assert!(on.unwrap().is_some());
        let on = settings(&[("OTEL_TRACES_EXPORTER", "otlp")])
            .unwrap()
            .unwrap();
        assert_eq!(on.timeout, Duration::from_secs(10));
    }

    #[test]
    fn none_and_sdk_disabled_win_over_an_endpoint() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        let none = settings(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]).unwrap();
        assert_eq!(none, None);
        let disabled = settings(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")]).unwrap();
        assert_eq!(disabled, None);
    }

    #[test]
    fn signal_specific_protocol_and_timeout_win() {
        let s = settings(&[
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "5"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "250"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.protocol, Protocol::Grpc);
        assert_eq!(s.timeout, Duration::from_millis(250));
    }

    #[test]
    fn unsupported_values_are_errors() {
        let json = settings(&[
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]);
        assert!(json.unwrap_err().to_string().contains("http/json"));
        let zipkin = settings(&[("OTEL_TRACES_EXPORTER", "zipkin")]);
        assert!(zipkin.unwrap_err().to_string().contains("zipkin"));
        let timeout = settings(&[
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1s"),
        ]);
        assert!(timeout.is_err());
    }
}
