//! The `__cluster_metadata-0` partition: a Kafka-format [`shale_local_log::Log`] (topic id
//! `AAAAAAAAAAAAAAAAAAAAAQ`, max.message.bytes 8 MiB, no retention) plus the raft files kept
//! next to its segments: `quorum-state` and the `*.checkpoint` snapshots.
//!
//! This is the runtime side of the [`crate::quorum`] engine: it turns its commands into file
//! operations. Batches arrive with their offsets and raft epoch already chosen and are appended
//! with [`AppendOrigin::RaftLeader`]; [`MetadataLog::flush`] fsyncs them before anything is
//! reported committed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shale_common::{Clock, TopicPartition};
use shale_local_log::{AppendOrigin, Log, LogConfig, LogOpenOptions};
use shale_protocol::record_batch::{batches, RecordBatch};

use crate::batch::{decode_batch, MetadataBatch};
use crate::error::RaftError;
use crate::ids::METADATA_TOPIC_ID;
use crate::quorum::ElectionState;
use crate::snapshot::write_atomic;

/// Name of the metadata topic.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// The metadata partition's directory name inside the metadata log dir.
pub const METADATA_PARTITION_DIR: &str = "__cluster_metadata-0";
/// The election-state file inside the partition directory.
pub const QUORUM_STATE_FILE: &str = "quorum-state";
/// Largest metadata batch (KafkaRaftClient's MAX_BATCH_SIZE_BYTES).
pub const MAX_BATCH_BYTES: i32 = 8 * 1024 * 1024;
/// Bytes read per call while replaying the log.
const READ_CHUNK: usize = 1 << 20;

/// The metadata partition on disk.
#[derive(Debug)]
pub struct MetadataLog {
    dir: PathBuf,
    log: Log,
}

impl MetadataLog {
    /// Opens (creating if needed) `<metadata_log_dir>/__cluster_metadata-0`. `segment_bytes`
    /// is `metadata.log.segment.bytes` (Kafka's default 1 GiB).
    pub fn open(
        metadata_log_dir: &Path,
        segment_bytes: i32,
        clock: Arc<dyn Clock>,
    ) -> Result<MetadataLog, RaftError> {
        let dir = metadata_log_dir.join(METADATA_PARTITION_DIR);
        fs::create_dir_all(&dir).map_err(|e| RaftError::io(&dir, e))?;
        let config = LogConfig {
            segment_bytes,
            max_message_bytes: MAX_BATCH_BYTES,
            retention_ms: -1,
            retention_bytes: -1,
            ..LogConfig::default()
        };
        let opts = LogOpenOptions {
            topic_id: Some(METADATA_TOPIC_ID),
            recovery_point: 0,
            log_start_offset: 0,
            had_clean_shutdown: false,
        };
        let tp = TopicPartition::new(METADATA_TOPIC, 0);
        let log = Log::open(dir.clone(), tp, config, opts, clock)?;
        Ok(MetadataLog { dir, log })
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    pub fn segment_count(&self) -> usize {
        self.log.segment_count()
    }

    /// Appends one batch that must start at the current log end offset.
    pub fn append(&self, batch: RecordBatch) -> Result<(), RaftError> {
        let expected = batch.base_offset();
        let info = self
            .log
            .append(batch.into_bytes(), AppendOrigin::RaftLeader)?;
        if info.first_offset != expected {
            return Err(RaftError::Quorum(format!(
                "{METADATA_PARTITION_DIR}: batch planned at offset {expected} landed at {}",
                info.first_offset
            )));
        }
        Ok(())
    }

    /// fsyncs everything appended; returns the durable end offset.
    pub fn flush(&self) -> Result<i64, RaftError> {
        self.log.flush()?;
        Ok(self.log.log_end_offset())
    }

    /// Decodes every batch from `from` to the log end, in order.
    pub fn read_from(
        &self,
        from: i64,
        mut each: impl FnMut(MetadataBatch) -> Result<(), RaftError>,
    ) -> Result<(), RaftError> {
        self.read_batches(from, |b| each(decode_batch(&b)?))
    }

    /// Every raw batch holding offsets at or above `from` (from the log start at the lowest),
    /// in order, up to the log end.
    pub fn read_batches(
        &self,
        from: i64,
        mut each: impl FnMut(RecordBatch) -> Result<(), RaftError>,
    ) -> Result<(), RaftError> {
        let mut next = from.max(self.log.log_start_offset());
        let end = self.log.log_end_offset();
        while next < end {
            let info = self.log.read(next, READ_CHUNK, end, true)?;
            if info.records.is_empty() {
                break;
            }
            for b in batches(info.records) {
                let b = b?;
                if b.last_offset() < next {
                    continue;
                }
                next = b.last_offset() + 1;
                each(b)?;
            }
        }
        Ok(())
    }

    /// Raises the log start offset to `offset` (a snapshot's end) and deletes the segments
    /// wholly below it.
    pub fn delete_before(&self, offset: i64) -> Result<(), RaftError> {
        if offset > self.log.log_start_offset() && offset <= self.log.log_end_offset() {
            self.log.delete_records_before(offset)?;
        }
        Ok(())
    }

    /// The batch holding `offset`; None at or above the log end offset.
    pub fn batch_at(&self, offset: i64) -> Result<Option<RecordBatch>, RaftError> {
        let end = self.log.log_end_offset();
        if offset >= end {
            return Ok(None);
        }
        let info = self.log.read(offset, 1, end, true)?;
        for b in batches(info.records) {
            let b = b?;
            if b.last_offset() >= offset {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// Removes every batch holding an offset at or above `offset` (a batch holding `offset`
    /// goes whole, as in Kafka) and sets the log end offset to `offset`; no-op at or above the
    /// log end offset.
    pub fn truncate_to(&self, offset: i64) -> Result<(), RaftError> {
        Ok(self.log.truncate_to(offset)?)
    }

    /// Discards the whole log; it restarts empty at `offset` (log start = log end = `offset`),
    /// after a snapshot ending there was installed.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), RaftError> {
        Ok(self.log.truncate_fully_and_start_at(offset)?)
    }

    /// Housekeeping of the underlying log: removes segment files deleted more than
    /// `file.delete.delay.ms` ago and rolls an old active segment.
    pub fn tick(&self) -> Result<(), RaftError> {
        Ok(self.log.tick()?)
    }

    /// Reads `quorum-state`; None when absent.
    pub fn read_quorum_state(&self) -> Result<Option<ElectionState>, RaftError> {
        let path = self.dir.join(QUORUM_STATE_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => ElectionState::from_json(&text)
                .map(Some)
                .map_err(|reason| RaftError::Corrupt { path, reason }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RaftError::io(path, e)),
        }
    }

    /// Writes `quorum-state` (tmp + fsync + rename).
    pub fn write_quorum_state(&self, state: &ElectionState) -> Result<(), RaftError> {
        let path = self.dir.join(QUORUM_STATE_FILE);
        let tmp = self.dir.join(format!("{QUORUM_STATE_FILE}.tmp"));
        write_atomic(&path, &tmp, state.to_json().as_bytes())
    }

    /// Clean close of the underlying log.
    pub fn close(&self) -> Result<(), RaftError> {
        Ok(self.log.close()?)
    }
}
