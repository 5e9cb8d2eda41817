//! Shared leaf crate: the injected [`Clock`] and [`Rng`] that library code must use instead of
//! ambient time and randomness, [`TopicPartition`], Kafka's partition identity, and [`blocking`],
//! the one path by which async code may block (file I/O, fsync, long CPU work), and
//! [`ErrorKind`], the error vocabulary shared by every crate's error type, and [`kafka_uuid`],
//! the text form of Kafka ids, and [`TRACE_TARGET`], the `tracing` target of the spans exported
//! as OpenTelemetry traces.
//!
//! Everything here is tiny on purpose; storage and protocol crates may all depend on it.

pub mod blocking;
mod clock;
mod error_kind;
pub mod kafka_uuid;
mod rng;
mod topic_partition;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error_kind::ErrorKind;
pub use rng::{Rng, SeededRng};
pub use topic_partition::TopicPartition;

/// The `tracing` target of every span meant for OpenTelemetry export (requests, log appends,
/// remote storage calls, metadata writes). The broker routes this target to the OTLP exporter
/// when tracing is enabled and keeps it out of the log; when it is not, no subscriber is
/// interested and such spans cost a cached check. Events never use it.
pub const TRACE_TARGET: &str = "shale::otel";
