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
//!   controller(+_ops, validation) ──► quorum  (pure state machine: events in, commands out)
//!        │                       └──► metadata_log ──► shale_local_log::Log
//!        │                       └──► snapshot ──► batch (v2 batches, control records)
//!        └──► image ◄── records ◄── flex (flexible encoding)
//! ```

pub mod batch;
pub mod broker_liveness;
pub mod controller;
mod controller_ops;
pub mod error;
mod flex;
pub mod format;
pub mod ids;
pub mod image;
pub mod kraft;
pub mod metadata_log;
pub mod quorum;
pub mod records;
pub mod snapshot;
pub mod validation;

pub use controller::{
    AlterConfigOp, ConfigOpType, ConfigResource, Controller, ControllerOptions, CreateTopicSpec,
    CreatedTopic, MetadataLogTuning, TopicConfigPolicy,
};
pub use controller_ops::PRODUCER_ID_BLOCK_SIZE;
pub use error::{ControllerError, ErrorKind, RaftError};
pub use format::{ensure_formatted, ensure_formatted_as, format_dirs, random_uuid};
pub use image::{BrokerRegistration, Endpoint, MetadataImage, PartitionImage, TopicImage};
pub use records::MetadataRecord;
