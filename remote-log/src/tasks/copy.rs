//! The copy task (KIP-405 §4.2): upload rolled segments below the last stable offset, oldest
//! first, one at a time, each attempt under a fresh segment id.

use super::{
    CopyState, LocalSegment, RemoteLogManager, TaskError, TaskStats, TieredPartition,
    FIRST_BACKOFF, MAX_BACKOFF,
};
use shale_rlmm::RemoteLogSegmentState::{
    CopySegmentFinished, CopySegmentStarted, DeleteSegmentStarted,
};
use shale_rlmm::{RemoteLogSegmentId, RemoteLogSegmentMetadata};
use std::sync::atomic::Ordering;
use tracing::Instrument;

impl RemoteLogManager {
    /// Uploads every eligible segment of `p` (until the copy quota or a failure stops the round).
    /// Returns the number of segments copied.
    pub async fn copy_round(&self, p: &dyn TieredPartition) -> Result<usize, TaskError> {
        let tp = p.topic_id_partition();
        let stats = self.partition_stats(&tp);
        let state = self.copy_state.lock().get(&tp).copied().unwrap_or_default();
        if p.retention().copy_disabled {
            set_lag(&stats, &[]);
        }
        if p.retention().copy_disabled || state.cancelled || self.now() < state.retry_at_ms {
            return Ok(0);
        }
        if !state.cleaned_up {
            self.clean_dangling(&tp).await?;
            self.set_state(&tp, |s| s.cleaned_up = true);
        }
        let copied = self.highest_copied(p);
        p.set_highest_offset_in_remote_storage(copied);
        let lso = p.last_stable_offset();
        if lso <= 0 || copied >= lso {
            set_lag(&stats, &[]);
            return Ok(0);
        }
        let from = (copied + 1).max(p.log_start_offset());
        let candidates = p.segments_to_copy(from, lso);
        set_lag(&stats, &candidates);
        let mut count = 0;
        for (i, segment) in candidates.iter().enumerate() {
            if !p.is_leader() || !self.copy_quota.try_acquire(segment.size_bytes) {
                break;
            }
            match self.copy_segment(&tp, segment).await {
                Ok(()) => {
                    p.set_highest_offset_in_remote_storage(segment.end_offset);
                    self.set_state(&tp, |s| s.failures = 0);
                    set_lag(&stats, &candidates[i + 1..]);
                    count += 1;
                }
                Err(e) => {
                    self.count(&tp, |s| &s.copy_errors, 1);
                    self.back_off(&tp, matches!(e, TaskError::CustomMetadataTooLarge { .. }));
                    return Err(e);
                }
            }
        }
        Ok(count)
    }

    /// The highest offset in remote storage on this replica's own lineage, or -1 (Kafka's
    /// `findHighestRemoteOffset`): walk the local epoch cache from the newest epoch down; at the
    /// first epoch some COPY_SEGMENT_FINISHED segment carries, take the highest offset copied
    /// under it, but never past that epoch's local end (after an unclean election the remote
    /// tier may hold offsets this log never had). Segments uploaded by another lineage are
    /// thereby never taken as copied here.
    pub fn highest_copied(&self, p: &dyn TieredPartition) -> i64 {
        let segments: Vec<RemoteLogSegmentMetadata> = self
            .metadata
            .segments(&p.topic_id_partition())
            .into_iter()
            .filter(|m| m.state == CopySegmentFinished)
            .collect();
        let epochs = p.leader_epochs();
        let leo = p.log_end_offset();
        for (i, &(epoch, _)) in epochs.iter().enumerate().rev() {
            let local_end = epochs.get(i + 1).map_or(leo, |next| next.1);
            if let Some(h) = highest_offset_for_epoch(&segments, epoch) {
                return if local_end <= h { local_end - 1 } else { h };
            }
        }
        -1
    }

    async fn copy_segment(
        &self,
        tp: &shale_rlmm::TopicIdPartition,
        segment: &LocalSegment,
    ) -> Result<(), TaskError> {
        let id = RemoteLogSegmentId::new(tp.clone(), self.new_segment_id());
        let size = i32::try_from(segment.size_bytes).unwrap_or(i32::MAX);
        let meta = RemoteLogSegmentMetadata::new(
            id,
            segment.base_offset,
            segment.end_offset,
            segment.largest_timestamp,
            self.broker_id,
            self.now(),
            size,
            segment.leader_epochs.clone(),
        )
        .map_err(TaskError::from)?;
        self.metadata.add(meta.clone()).map_err(TaskError::from)?;
        self.count(tp, |s| &s.copy_requests, 1);
        // A root span (tiering runs in the background): its children are the uploads.
        let span = tracing::info_span!(
            target: shale_common::TRACE_TARGET,
            parent: None,
            "tiering.copy_segment",
            kafka.topic_partition = %tp,
            kafka.base_offset = segment.base_offset,
            kafka.end_offset = segment.end_offset,
            kafka.segment_bytes = segment.size_bytes as i64,
        );
        let copy = self.rsm.copy_log_segment(&meta, &segment.data);
        let custom = match copy.instrument(span).await {
            Ok(custom) => custom,
            Err(e) => {
                self.discard_attempt(&meta).await;
                return Err(e.into());
            }
        };
        let mut finished = meta.clone();
        finished.custom_metadata = custom;
        if let Some(c) = &finished.custom_metadata {
            if c.len() > self.custom_metadata_max {
                self.discard_attempt(&finished).await;
                return Err(TaskError::CustomMetadataTooLarge {
                    size: c.len(),
                    max: self.custom_metadata_max,
                });
            }
        }
        self.metadata
            .update(self.update_for(&finished, CopySegmentFinished))
            .map_err(TaskError::from)?;
        self.count(tp, |s| &s.copy_bytes, segment.size_bytes);
        tracing::debug!(partition = %tp, base = segment.base_offset, end = segment.end_offset, "segment copied");
        Ok(())
    }

    /// Best-effort removal of a failed attempt; whatever is left is found by [`Self::clean_dangling`].
    async fn discard_attempt(&self, meta: &RemoteLogSegmentMetadata) {
        if let Err(e) = self.delete_segment(meta).await {
            tracing::warn!(segment = %meta.id.id, error = %e, "could not clean up a failed upload; it will be retried");
        }
    }

    /// Attempts left in COPY_SEGMENT_STARTED or DELETE_SEGMENT_STARTED by a crash or a failure are
    /// deleted before copying resumes. Copies of one partition never overlap, so at the start of a
    /// round nothing else owns them.
    async fn clean_dangling(&self, tp: &shale_rlmm::TopicIdPartition) -> Result<(), TaskError> {
        for m in self.metadata.segments(tp) {
            if m.state == CopySegmentStarted || m.state == DeleteSegmentStarted {
                tracing::info!(partition = %tp, segment = %m.id.id, state = ?m.state, "cleaning up an unfinished remote segment");
                self.delete_segment(&m).await?;
            }
        }
        Ok(())
    }

    fn back_off(&self, tp: &shale_rlmm::TopicIdPartition, cancel: bool) {
        let now = self.now();
        self.set_state(tp, |s| {
            s.failures = s.failures.saturating_add(1);
            let factor = 1u32 << s.failures.min(16).saturating_sub(1);
            let wait = FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF);
            s.retry_at_ms = now.saturating_add(wait.as_millis() as i64);
            s.cancelled |= cancel;
            // The next round starts by cleaning what the failed attempt left behind.
            s.cleaned_up = false;
        });
    }

    fn set_state(&self, tp: &shale_rlmm::TopicIdPartition, f: impl FnOnce(&mut CopyState)) {
        f(self.copy_state.lock().entry(tp.clone()).or_default());
    }
}

/// Kafka's copy lag: what is eligible for upload and not uploaded yet.
fn set_lag(stats: &TaskStats, waiting: &[LocalSegment]) {
    let bytes = waiting.iter().map(|s| s.size_bytes).sum();
    stats.copy_lag_bytes.store(bytes, Ordering::Relaxed);
    stats
        .copy_lag_segments
        .store(waiting.len() as u64, Ordering::Relaxed);
}

/// The highest offset written under `epoch` over `segments` (in a segment, an epoch runs until
/// the next epoch's start or the segment's end).
fn highest_offset_for_epoch(segments: &[RemoteLogSegmentMetadata], epoch: i32) -> Option<i64> {
    segments
        .iter()
        .filter_map(|m| {
            m.segment_leader_epochs.get(&epoch)?;
            let next = m.segment_leader_epochs.range(epoch + 1..).next();
            Some(next.map_or(m.end_offset, |(_, &start)| start - 1))
        })
        .max()
}
