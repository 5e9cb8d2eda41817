//! Kafka's on-disk log, byte for byte: partition directories of segments (`.log`, `.index`,
//! `.timeindex`), producer-state snapshots, the leader-epoch checkpoint, `partition.metadata`, and
//! the log-dir files (`meta.properties`, offset checkpoints, the clean-shutdown marker).
//!
//! Layout: `config` (topic configs), `error`, `log` (one partition: offsets, reads, roll, flush,
//! close), `append.rs` (validation and the append path), `retention.rs` (retention, DeleteRecords,
//! truncation, housekeeping), `recovery.rs` (load and crash recovery), `segment.rs`,
//! `offset_index.rs`, `time_index.rs`, `txn_index.rs` (aborted transactions), `producer_state.rs`,
//! `transactions.rs` (open transactions, LSO, aborted-transaction lookup), `epoch_cache.rs`, `checkpoint`,
//! `segment_scan.rs` (batch walks, segment recovery), `index_file.rs` (what both indexes share),
//! `files` (the open-files budget and its LRU), `deleter.rs` (background unlinking of leftovers),
//! `tiering.rs` (tiered-storage hooks), `cleaner` + `offset_map.rs` (compaction), `swap.rs`
//! (crash-safe completion of cleaner swaps),
//! `meta_properties`, `manager` (all logs of the broker) and `dump` (`shale dump-log`).
//!
//! No mmap (`unsafe` is forbidden) and a bounded number of descriptors: the active segment's
//! `.log` stays open and its indexes are kept in memory and written back on flush, roll and
//! close; older segments' `.log` files are opened on demand and closed least recently used first
//! within `shale.log.open.files.max`, and their indexes are read into memory while open. Every
//! read of a `.log` is a positional read.

mod append;
pub mod checkpoint;
pub mod cleaner;
pub mod config;
mod deleter;
pub mod dump;
mod epoch_cache;
pub mod error;
pub mod files;
mod flusher;
mod index_file;
pub mod log;
pub mod manager;
pub mod meta_properties;
mod offset_index;
mod offset_map;
mod producer_state;
mod recovery;
mod retention;
mod segment;
mod segment_scan;
mod swap;
mod tiering;
mod time_index;
mod transactions;
mod txn_index;

pub use checkpoint::{read_offset_checkpoint, write_offset_checkpoint};
pub use cleaner::CleanStats;
pub use config::{
    topic_config_def, validate_merged, validate_received, validate_topic_config, CleanupPolicy,
    ConfigKind, LogConfig, TopicConfigDef, TOPIC_CONFIGS,
};
pub use dump::dump_file;
pub use epoch_cache::parse_leader_epoch_checkpoint;
pub use error::{ErrorKind, LogError, Result};
pub use files::{FileReservation, OpenFiles};
pub use log::{AppendInfo, AppendOrigin, Log, LogOpenOptions, ReadInfo, TimestampOffset};
pub use manager::{DirSpace, LogManager, LogManagerOptions};
pub use meta_properties::MetaProperties;
pub use producer_state::ProducerStateEntry;
pub use shale_common::TopicPartition;
pub use tiering::{SegmentForCopy, NEVER_TIERED_TOPICS};
pub use transactions::VerificationGuard;
pub use txn_index::{parse_txn_index, AbortedTxn};
