//! The broker's side of the tiering contracts: a leader partition's local log as remote-log's
//! [`TieredPartition`], and the topic-config policy that checks merged configs for tiering.

use crate::replica::Partition;
use shale_local_log::{validate_merged, LogConfig, LogError};
use shale_raft::{ControllerError, MetadataImage, TopicConfigPolicy};
use shale_remote_log::tasks::{LocalLogError, LocalSegment, Retention, TieredPartition};
use shale_remote_log::LogSegmentData;
use shale_rlmm::TopicIdPartition;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A tiered partition hosted here (copied and expired while this broker leads it).
#[derive(Debug)]
pub struct TieredLog {
    partition: Arc<Partition>,
    id: TopicIdPartition,
}

impl TieredLog {
    /// Wraps a partition.
    pub fn new(partition: Arc<Partition>) -> Self {
        let id = super::Tiering::topic_id_partition(&partition);
        TieredLog { partition, id }
    }
}

impl TieredPartition for TieredLog {
    fn topic_id_partition(&self) -> TopicIdPartition {
        self.id.clone()
    }

    fn log_start_offset(&self) -> i64 {
        self.partition.log.log_start_offset()
    }

    fn last_stable_offset(&self) -> i64 {
        // No transactions yet: the last stable offset is the high watermark.
        self.partition.high_watermark()
    }

    fn local_only_size_bytes(&self) -> u64 {
        let log = &self.partition.log;
        let copied = log.highest_offset_in_remote_storage();
        log.segment_sizes()
            .into_iter()
            .filter(|(base, _)| *base > copied)
            .map(|(_, size)| size)
            .sum()
    }

    fn segments_to_copy(&self, from_offset: i64, last_stable_offset: i64) -> Vec<LocalSegment> {
        let log = &self.partition.log;
        let segments = match crate::api::storage_io(|| {
            log.segments_to_copy(from_offset, last_stable_offset)
        }) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(partition = %self.partition.tp, error = %e, "cannot list segments to copy");
                return Vec::new();
            }
        };
        segments
            .into_iter()
            .map(|s| LocalSegment {
                base_offset: s.base_offset,
                end_offset: s.end_offset,
                size_bytes: s.size_bytes,
                largest_timestamp: s.largest_timestamp,
                leader_epochs: s.leader_epochs.iter().copied().collect(),
                data: LogSegmentData {
                    log: s.log_path,
                    offset_index: s.offset_index_path,
                    time_index: s.time_index_path,
                    txn_index: s.txn_index_path,
                    producer_snapshot: s.producer_snapshot_path,
                    leader_epochs: s.leader_epoch_checkpoint,
                },
            })
            .collect()
    }

    fn set_highest_offset_in_remote_storage(&self, offset: i64) {
        self.partition
            .log
            .set_highest_offset_in_remote_storage(offset);
    }

    fn advance_log_start_offset(&self, offset: i64) -> Result<(), LocalLogError> {
        let log = &self.partition.log;
        crate::api::storage_io(|| log.advance_log_start_offset(offset))
            .map(|_| ())
            .map_err(|e| LocalLogError {
                kind: e.kind(),
                message: e.to_string(),
            })
    }

    fn retention(&self) -> Retention {
        let c = self.partition.log.config();
        Retention {
            retention_ms: c.retention_ms,
            retention_bytes: c.retention_bytes,
            copy_disabled: c.remote_log_copy_disable,
        }
    }

    fn leader_epochs(&self) -> Vec<(i32, i64)> {
        self.partition.log.epoch_entries()
    }

    fn log_end_offset(&self) -> i64 {
        self.partition.log.log_end_offset()
    }

    fn is_leader(&self) -> bool {
        self.partition.is_leader()
    }
}

/// Kafka's rules for a topic's merged config (broker defaults, dynamic defaults, overrides):
/// tiering needs the system flag, is refused for compacted topics, local retention must not
/// exceed total retention, and turning tiering off needs `remote.log.delete.on.disable`.
#[derive(Debug)]
pub struct TopicPolicy {
    defaults: LogConfig,
    system_enabled: bool,
}

impl TopicPolicy {
    /// A policy over the broker's static topic defaults.
    pub fn new(defaults: LogConfig, system_enabled: bool) -> Self {
        TopicPolicy {
            defaults,
            system_enabled,
        }
    }
}

impl TopicConfigPolicy for TopicPolicy {
    fn validate(
        &self,
        image: &MetadataImage,
        _topic: &str,
        previous: Option<&BTreeMap<String, String>>,
        new: &BTreeMap<String, String>,
    ) -> Result<(), ControllerError> {
        let merged = |overrides: &BTreeMap<String, String>| {
            crate::replica::effective_log_config(&self.defaults, image, overrides)
        };
        let previous = previous.map(merged);
        validate_merged(&merged(new), previous.as_ref(), self.system_enabled).map_err(|e| match e {
            LogError::InvalidConfig { key, reason, .. } => {
                ControllerError::InvalidConfig { key, reason }
            }
            other => ControllerError::InvalidRequest(other.to_string()),
        })
    }
}
