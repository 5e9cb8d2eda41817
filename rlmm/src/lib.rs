//! KIP-405 remote log metadata for Shale: the metadata types ([`metadata`]), the segment and
//! partition-delete state machines ([`state`]), the byte-exact `__remote_log_metadata` record
//! format ([`serde`]), the user-partition → metadata-partition mapping ([`partitioner`]), the
//! per-partition cache with Kafka's semantics ([`cache`]), the store of all caches ([`store`]), and
//! the topic-based manager over an abstract metadata topic with a local snapshot ([`manager`]).
//!
//! Layering: depends only on shale-common (clock) and shale-protocol; the broker implements
//! [`manager::MetadataTopic`] on its local logs.

pub mod error;
pub mod metadata;
pub mod serde;
pub mod state;
mod wire;

pub use error::{ErrorKind, Result, RlmmError};
pub use metadata::{
    uuid_to_base64url, RemoteLogMetadata, RemoteLogSegmentId, RemoteLogSegmentMetadata,
    RemoteLogSegmentMetadataUpdate, RemotePartitionDeleteMetadata, TopicIdPartition,
};
pub use state::{RemoteLogSegmentState, RemotePartitionDeleteState};
