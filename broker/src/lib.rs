//! The Shale broker: configuration, the network server, the Kafka API handlers and the wiring of
//! the storage crates (`shale-local-log`, `shale-raft`) behind them.
//!
//! Layout:
//! * [`config`] — `server.properties` keys, defaults and validation.
//! * [`server`] — start-up, the accept loops, one task per connection, graceful shutdown.
//! * [`connection_limits`] — `max.connections` and `max.connections.per.ip` accounting.
//! * [`state`] — the running broker: metadata controller, replica manager, coordinators.
//! * [`replica`] — hosted partitions: local logs and leader/follower roles, driven by metadata.
//! * [`purgatory`] — per-partition progress watches that waiting requests (long-poll Fetch) hold.
//! * [`api`] — one module per API family; [`api::dispatch`] is the routing table.
//! * [`errors`] — the one place internal errors become Kafka error codes.
//! * [`kraft`] — multi-voter KRaft on the controller listener (the wire adapter so far).
//! * [`metrics`] — Prometheus registry and the `/metrics` HTTP endpoint.
//! * [`topic_metrics`] — per-topic BrokerTopicMetrics and per-partition Log gauges, bounded.
//! * [`tiering`] — KIP-405 tiered storage: remote storage, metadata, reads and tasks.
//! * [`txn`] — the transaction coordinator and `__transaction_state`.
//! * [`telemetry`] — the `tracing` subscriber: logs, and OpenTelemetry traces over OTLP.

pub mod acl;
pub mod api;
pub mod config;
pub mod connection;
pub mod connection_limits;
pub mod errors;
pub mod fetch_session;
pub mod format;
pub mod group;
pub mod kraft;
pub mod metrics;
pub mod purgatory;
pub mod quota;
pub mod replica;
pub mod sasl;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tiering;
pub mod tls;
pub mod topic_metrics;
pub mod txn;

pub use config::BrokerConfig;
pub use server::{run, start, RunningBroker};
