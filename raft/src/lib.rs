//! KRaft metadata for Shale: Kafka's metadata records ([`records`]), the immutable
//! [`image::MetadataImage`] built from them, the sans-IO consensus cores ([`quorum`], one voter,
//! driven by the controller; [`kraft`], several voters, on the network in `shale-broker`), the
//! `__cluster_metadata-0` log ([`metadata_log`]) and its [`snapshot`]s, the
//! [`controller::Controller`] that is the only writer of metadata, the active controller's
//! [`broker_liveness`] table (heartbeats, fencing, controlled shutdown), and `shale format`
//! ([`format`]).
//!
//! Layering (arrows = "uses"):
//!
//! ```text
//!   controller(+_ops, validation) ──► dyn MetadataQuorum
//!        │                                 ├─ local_quorum ──► quorum (pure state machine)
//!        │                                 │        └──► metadata_log ──► shale_local_log::Log
//!        │                                 │        └──► snapshot ──► batch (v2 batches)
//!        │                                 └─ (broker) KRaft backend over kraft
//!        └──► image ◄── records ◄── flex (flexible encoding)
//! ```

pub mod acl;
pub mod batch;
pub mod broker_liveness;
pub mod controller;
pub mod controller_acls;
mod controller_brokers;
pub mod controller_features;
pub mod controller_isr;
pub mod controller_leaders;
mod controller_ops;
pub mod controller_quotas;
pub mod controller_reassign;
pub mod controller_scram;
pub mod error;
mod flex;
pub mod format;
pub mod ids;
pub mod image;
pub mod kraft;
mod local_quorum;
pub mod metadata_log;
pub mod quorum;
pub mod records;
pub mod snapshot;
#[cfg(test)]
mod test_support;
pub mod validation;

pub use controller::{
    atomic_chunks, AlterConfigOp, ConfigOpType, ConfigResource, Controller, ControllerOptions,
    CreateTopicSpec, CreatedTopic, LocalQuorum, MetadataLogTuning, MetadataQuorum,
    TopicConfigPolicy,
};
pub use controller_brokers::{
    BrokerRegistrationRequest, HeartbeatReply, DEFAULT_BROKER_SESSION_TIMEOUT_MS,
};
pub use controller_ops::{TopicElections, PRODUCER_ID_BLOCK_SIZE};
pub use error::{ControllerError, ErrorKind, RaftError};
pub use format::{ensure_formatted, ensure_formatted_as, format_dirs, random_uuid};
pub use image::{BrokerRegistration, Endpoint, MetadataImage, PartitionImage, TopicImage};
pub use records::MetadataRecord;
