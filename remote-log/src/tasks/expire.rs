//! The expiration task (KIP-405 §4.4): total retention over local + remote data.
//!
//! Oldest segments first: a segment wholly below the log start offset goes (DeleteRecords, or a
//! log start raised earlier); otherwise a segment goes if its newest record is older than
//! `retention.ms`, or while the total size still exceeds `retention.bytes` by at least its size.
//! The scan stops at the first segment that stays. The log start offset is raised past every
//! deleted segment *before* any object is deleted, so a reader never sees an offset whose data
//! is disappearing. Kafka's lineage checks for unclean leader elections do not apply to a single
//! node and are left for replication.

use super::{RemoteLogManager, TaskError, TieredPartition};
use shale_rlmm::RemoteLogSegmentMetadata;
use shale_rlmm::RemoteLogSegmentState::{CopySegmentFinished, DeleteSegmentStarted};

impl RemoteLogManager {
    /// Deletes the remote segments past total retention; returns how many were deleted.
    pub async fn expire_round(&self, p: &dyn TieredPartition) -> Result<usize, TaskError> {
        let tp = p.topic_id_partition();
        self.partition_stats(&tp); // its delete counters start here
        let mut segments: Vec<RemoteLogSegmentMetadata> = self
            .metadata
            .segments(&tp)
            .into_iter()
            .filter(|m| m.state == CopySegmentFinished || m.state == DeleteSegmentStarted)
            .collect();
        segments.sort_by_key(|m| m.start_offset);
        let doomed = self.expired(p, &segments);
        if doomed.is_empty() || !p.is_leader() {
            return Ok(0);
        }
        let new_start = doomed
            .iter()
            .filter(|m| m.state == CopySegmentFinished)
            .map(|m| m.end_offset + 1)
            .max();
        if let Some(start) = new_start.filter(|s| *s > p.log_start_offset()) {
            p.advance_log_start_offset(start).map_err(TaskError::from)?;
        }
        let mut deleted = 0;
        for m in &doomed {
            self.delete_segment(m).await?;
            deleted += 1;
        }
        tracing::info!(partition = %tp, deleted, "remote segments expired");
        Ok(deleted)
    }

    /// The segments to delete, oldest first.
    fn expired(
        &self,
        p: &dyn TieredPartition,
        segments: &[RemoteLogSegmentMetadata],
    ) -> Vec<RemoteLogSegmentMetadata> {
        let retention = p.retention();
        let log_start = p.log_start_offset();
        let cutoff = (retention.retention_ms >= 0)
            .then(|| self.now().saturating_sub(retention.retention_ms));
        let remote_size: i64 = segments
            .iter()
            .filter(|m| m.state == CopySegmentFinished)
            .map(|m| i64::from(m.segment_size_in_bytes))
            .sum();
        let total = remote_size + p.local_only_size_bytes() as i64;
        let mut excess = if retention.retention_bytes >= 0 {
            total - retention.retention_bytes
        } else {
            0
        };
        let mut doomed = Vec::new();
        for m in segments {
            if m.state == DeleteSegmentStarted {
                doomed.push(m.clone()); // a deletion that failed before: finish it
                continue;
            }
            let size = i64::from(m.segment_size_in_bytes);
            let below_start = m.end_offset < log_start;
            let by_time = cutoff.is_some_and(|c| m.max_timestamp_ms <= c);
            let by_size = excess > 0 && excess - size >= 0;
            if !(below_start || by_time || by_size) {
                break;
            }
            excess -= size;
            doomed.push(m.clone());
        }
        doomed
    }
}
