//! Shale's Kafka wire layer.
//!
//! * [`record_batch`], [`record`], [`compression`], [`varint`]: our own RecordBatch v2 handling —
//!   a zero-copy view of the 61-byte header, CRC-32C, in-place header rewrites, record parsing
//!   (duplicate header keys kept) and the four codecs.
//! * [`codec`]: the one place that turns frames into typed requests and typed responses into
//!   frames, using the `kafka-protocol` crate for every message except the Fetch response.
//! * [`fetch_writer`]: our own Fetch response encoder that chains record `Bytes` without copying.
//! * [`control`]: transaction markers and control-record parsing (re-exported from [`record`]).
//! * [`rebuild`]: the broker's rewrite of a client batch with another codec (`compression.type`).

pub mod codec;
pub mod compression;
pub mod control;
pub mod fetch_writer;
pub mod rebuild;
pub mod record;
pub mod record_batch;
pub mod varint;

pub use kafka_protocol;
