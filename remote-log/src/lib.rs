//! KIP-405 remote storage on object stores: the [`rsm::RemoteStorageManager`] contract, its
//! `object_store` implementation ([`object_rsm::ObjectRsm`]), the object-key layout, the block
//! and index caches, the remote log reader, configuration, and instrumented / fault-injecting
//! store wrappers for tests and metrics, and the tiering tasks ([`tasks`]: copy, expiration,
//! topic deletion).

mod aws_credentials;
pub mod cache;
pub mod config;
pub mod error;
pub mod instrumented;
pub mod layout;
pub mod manifest;
pub mod meta;
pub mod object_rsm;
pub mod reader;
pub mod rsm;
pub mod tasks;
pub mod testing;

pub use cache::{BlockCache, CacheStats, CacheStatsSnapshot, IndexCache, ObjectRef};
pub use config::{build_object_store, Backend, RemoteStorageConfig};
pub use error::{ErrorKind, RemoteLogError, Result};
pub use instrumented::{InstrumentedStore, OpKind, StoreStats, StoreStatsSnapshot};
pub use manifest::SegmentManifest;
pub use meta::{RemoteLogSegmentId, RemoteLogSegmentMetadata, TopicIdPartition};
pub use object_rsm::ObjectRsm;
pub use reader::RemoteLogReader;
pub use rsm::{IndexType, LogSegmentData, RemoteStorageManager};
