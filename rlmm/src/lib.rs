//! KIP-405 remote log metadata for Shale: the metadata types ([`metadata`]), the segment and
//! partition-delete state machines ([`state`]), the byte-exact `__remote_log_metadata` record
//! format ([`serde`]), the user-partition → metadata-partition mapping ([`partitioner`]), the
//! per-partition cache with Kafka's semantics ([`cache`]), the store of all caches ([`store`]), and
//! the topic-based manager over an abstract metadata topic with a local snapshot ([`manager`],
//! file format in [`snapshot`]).
//!
//! Layering: depends only on shale-common (clock) and shale-protocol; the broker implements
//! [`manager::MetadataTopic`] on its local logs. [`testing`] has an in-memory topic for tests.

pub mod cache;
pub mod error;
pub mod manager;
pub mod metadata;
pub mod partitioner;
pub mod serde;
pub mod snapshot;
pub mod state;
pub mod store;
pub mod testing;
mod wire;

pub use cache::RemoteLogMetadataCache;
pub use error::{ErrorKind, Result, RlmmError};
pub use manager::{MetadataTopic, RlmmConfig, StartupInfo, TopicBasedRemoteLogMetadataManager};
pub use metadata::{
    RemoteLogMetadata, RemoteLogSegmentId, RemoteLogSegmentMetadata,
    RemoteLogSegmentMetadataUpdate, RemotePartitionDeleteMetadata, TopicIdPartition,
};
pub use partitioner::metadata_partition;
pub use state::{RemoteLogSegmentState, RemotePartitionDeleteState};
pub use store::{ApplyOutcome, RemotePartitionMetadataStore};
