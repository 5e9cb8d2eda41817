//! [`RemoteLogMetadataCache`]: the in-memory view of one user partition's remote segments, with
//! Kafka's semantics (KIP-405 §3.5, `RemoteLogMetadataCache` + `RemoteLogLeaderEpochState`).
//!
//! Per leader epoch the cache keeps `offset_to_id` (epoch start offset within a segment → segment,
//! COPY_SEGMENT_FINISHED only), `unreferenced` (segments still copying, being deleted, or superseded
//! by a later upload covering the same range) and `highest_log_offset` (never lowered). A
//! COPY_SEGMENT_FINISHED segment supersedes every referenced entry of the epoch starting at or after
//! its own epoch start, which is how a new leader's overlapping upload replaces the old leader's.
//! Invalid transitions return an error and leave the cache unchanged; the store logs and drops them.

use crate::error::{Result, RlmmError};
use crate::metadata::{
    RemoteLogSegmentId, RemoteLogSegmentMetadata, RemoteLogSegmentMetadataUpdate, TopicIdPartition,
};
use crate::state::RemoteLogSegmentState;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Segments of one leader epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EpochState {
    /// Start offset of this epoch inside a finished segment → segment id.
    pub(crate) offset_to_id: BTreeMap<i64, Uuid>,
    /// Segments listed but not readable through this epoch.
    pub(crate) unreferenced: BTreeSet<Uuid>,
    /// Highest offset of this epoch over segments that reached COPY_SEGMENT_FINISHED.
    pub(crate) highest_log_offset: Option<i64>,
}

impl EpochState {
    fn on_copy_finished(&mut self, start: i64, id: Uuid, epoch_end: i64) {
        while let Some((&last_start, &last_id)) = self.offset_to_id.last_key_value() {
            let highest = self.highest_log_offset.unwrap_or(i64::MIN);
            if last_start < start || highest > epoch_end {
                break;
            }
            self.offset_to_id.remove(&last_start);
            self.unreferenced.insert(last_id);
        }
        // Kafka overwrites a same-start entry the loop kept (its range reaches past this epoch's
        // end) without listing it anywhere; we keep it as unreferenced so it can still be cleaned up.
        if let Some(displaced) = self.offset_to_id.insert(start, id) {
            if displaced != id {
                self.unreferenced.insert(displaced);
            }
        }
        self.unreferenced.remove(&id);
        if self.highest_log_offset.is_none_or(|h| epoch_end > h) {
            self.highest_log_offset = Some(epoch_end);
        }
    }

    fn on_delete_started(&mut self, start: i64, id: Uuid) {
        if self.offset_to_id.get(&start) == Some(&id) {
            self.offset_to_id.remove(&start);
        }
        self.unreferenced.insert(id);
    }
}

/// The remote-segment metadata of one user partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLogMetadataCache {
    pub(crate) tp: TopicIdPartition,
    /// Every segment not yet DELETE_SEGMENT_FINISHED, by segment uuid.
    pub(crate) segments: BTreeMap<Uuid, RemoteLogSegmentMetadata>,
    pub(crate) epochs: BTreeMap<i32, EpochState>,
    pub(crate) initialized: bool,
}

impl RemoteLogMetadataCache {
    /// An empty, not yet initialized cache for `tp`.
    pub fn new(tp: TopicIdPartition) -> Self {
        RemoteLogMetadataCache {
            tp,
            segments: BTreeMap::new(),
            epochs: BTreeMap::new(),
            initialized: false,
        }
    }

    /// The partition this cache describes.
    pub fn topic_id_partition(&self) -> &TopicIdPartition {
        &self.tp
    }

    /// Marks the cache as caught up with the metadata topic.
    pub fn mark_initialized(&mut self) {
        self.initialized = true;
    }

    /// Whether the cache has caught up with the metadata topic.
    pub fn is_initialized(&self) -> bool {
        self.initialized
    }

    fn check_partition(&self, id: &RemoteLogSegmentId) -> Result<()> {
        if id.tp != self.tp {
            return Err(RlmmError::invalid(format!(
                "segment {id} routed to the cache of {}",
                self.tp
            )));
        }
        Ok(())
    }

    /// Adds a segment in COPY_SEGMENT_STARTED (listed, not readable).
    pub fn add_copy_in_progress_segment(&mut self, m: RemoteLogSegmentMetadata) -> Result<()> {
        self.check_partition(&m.id)?;
        if m.state != RemoteLogSegmentState::CopySegmentStarted {
            return Err(RlmmError::invalid(format!(
                "segment {} added in state {}, expected COPY_SEGMENT_STARTED",
                m.id, m.state
            )));
        }
        m.validate()?;
        let existing = self.segments.get(&m.id.id).map(|e| e.state);
        check_transition(&m.id, existing, m.state)?;
        for epoch in m.segment_leader_epochs.keys() {
            let state = self.epochs.entry(*epoch).or_default();
            state.unreferenced.insert(m.id.id);
        }
        self.segments.insert(m.id.id, m);
        Ok(())
    }

    /// Applies a state change. An update for an unknown segment is silently ignored before the
    /// cache is initialized (its base record was already deleted) and an error afterwards.
    pub fn update_remote_log_segment_metadata(
        &mut self,
        u: &RemoteLogSegmentMetadataUpdate,
    ) -> Result<()> {
        self.check_partition(&u.id)?;
        let Some(existing) = self.segments.get(&u.id.id) else {
            if !self.initialized {
                tracing::debug!(segment = %u.id, "dropping update for a segment already removed");
                return Ok(());
            }
            return Err(RlmmError::UnknownSegment {
                id: u.id.to_string(),
            });
        };
        check_transition(&u.id, Some(existing.state), u.state)?;
        let updated = existing.create_with_updates(u)?;
        match u.state {
            RemoteLogSegmentState::CopySegmentStarted => Err(RlmmError::invalid(format!(
                "segment {}: COPY_SEGMENT_STARTED cannot be set by an update",
                u.id
            ))),
            RemoteLogSegmentState::CopySegmentFinished => {
                for (&epoch, &start) in &updated.segment_leader_epochs {
                    let end = updated.epoch_end_offset(epoch);
                    let state = self.epochs.entry(epoch).or_default();
                    state.on_copy_finished(start, updated.id.id, end);
                }
                self.segments.insert(updated.id.id, updated);
                Ok(())
            }
            RemoteLogSegmentState::DeleteSegmentStarted => {
                for (&epoch, &start) in &updated.segment_leader_epochs {
                    let state = self.epochs.entry(epoch).or_default();
                    state.on_delete_started(start, updated.id.id);
                }
                self.segments.insert(updated.id.id, updated);
                Ok(())
            }
            RemoteLogSegmentState::DeleteSegmentFinished => {
                for epoch in updated.segment_leader_epochs.keys() {
                    let state = self.epochs.entry(*epoch).or_default();
                    state.unreferenced.remove(&updated.id.id);
                }
                self.segments.remove(&updated.id.id);
                Ok(())
            }
        }
    }

    /// The current metadata of a segment, in any non-terminal state.
    pub fn segment(&self, id: &Uuid) -> Option<&RemoteLogSegmentMetadata> {
        self.segments.get(id)
    }

    /// The COPY_SEGMENT_FINISHED segment holding `offset` within `leader_epoch`'s range, if any.
    pub fn remote_log_segment_metadata(
        &self,
        leader_epoch: i32,
        offset: i64,
    ) -> Option<RemoteLogSegmentMetadata> {
        let state = self.epochs.get(&leader_epoch)?;
        let (_, id) = state.offset_to_id.range(..=offset).next_back()?;
        let m = self.segments.get(id)?;
        (offset <= m.epoch_end_offset(leader_epoch)).then(|| m.clone())
    }

    /// Every segment not yet DELETE_SEGMENT_FINISHED, sorted by start offset (then id).
    pub fn list_remote_log_segments(&self) -> Vec<RemoteLogSegmentMetadata> {
        sorted(self.segments.values().cloned().collect())
    }

    /// Segments carrying `leader_epoch` (referenced and unreferenced), sorted by start offset.
    pub fn list_remote_log_segments_for_epoch(
        &self,
        leader_epoch: i32,
    ) -> Vec<RemoteLogSegmentMetadata> {
        let Some(state) = self.epochs.get(&leader_epoch) else {
            return Vec::new();
        };
        let ids = state.offset_to_id.values().chain(state.unreferenced.iter());
        sorted(
            ids.filter_map(|id| self.segments.get(id).cloned())
                .collect(),
        )
    }

    /// Highest offset copied for `leader_epoch` (historical: never lowered by deletions).
    pub fn highest_offset_for_epoch(&self, leader_epoch: i32) -> Option<i64> {
        self.epochs.get(&leader_epoch)?.highest_log_offset
    }

    /// Largest end offset over segments currently in COPY_SEGMENT_FINISHED.
    pub fn highest_copied_offset(&self) -> Option<i64> {
        self.segments
            .values()
            .filter(|m| m.state == RemoteLogSegmentState::CopySegmentFinished)
            .map(|m| m.end_offset)
            .max()
    }

    /// Sum of `segment_size_in_bytes` over [`Self::list_remote_log_segments`].
    pub fn remote_log_size(&self) -> i64 {
        self.segments
            .values()
            .map(|m| i64::from(m.segment_size_in_bytes))
            .sum()
    }

    /// Sum of sizes over [`Self::list_remote_log_segments_for_epoch`] (Kafka's `remoteLogSize`).
    pub fn remote_log_size_for_epoch(&self, leader_epoch: i32) -> i64 {
        self.list_remote_log_segments_for_epoch(leader_epoch)
            .iter()
            .map(|m| i64::from(m.segment_size_in_bytes))
            .sum()
    }

    /// Segments whose state is one of `states`, sorted by start offset.
    pub fn segments_in_state(
        &self,
        states: &[RemoteLogSegmentState],
    ) -> Vec<RemoteLogSegmentMetadata> {
        let matching = self.segments.values().filter(|m| states.contains(&m.state));
        sorted(matching.cloned().collect())
    }

    /// Number of segments tracked (any non-terminal state).
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether no segment is tracked.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Checks internal references (used when restoring a snapshot).
    pub(crate) fn check_consistency(&self) -> Result<()> {
        for (epoch, state) in &self.epochs {
            let ids = state.offset_to_id.values().chain(state.unreferenced.iter());
            for id in ids {
                if !self.segments.contains_key(id) {
                    return Err(RlmmError::serde(format!(
                        "{}: epoch {epoch} references unknown segment {id}",
                        self.tp
                    )));
                }
            }
        }
        for (id, m) in &self.segments {
            if m.id.id != *id || m.id.tp != self.tp {
                return Err(RlmmError::serde(format!(
                    "{}: segment key mismatch {id}",
                    self.tp
                )));
            }
        }
        Ok(())
    }
}

fn check_transition(
    id: &RemoteLogSegmentId,
    from: Option<RemoteLogSegmentState>,
    to: RemoteLogSegmentState,
) -> Result<()> {
    if RemoteLogSegmentState::is_valid_transition(from, to) {
        Ok(())
    } else {
        Err(RlmmError::InvalidTransition {
            id: id.to_string(),
            from,
            to,
        })
    }
}

fn sorted(mut v: Vec<RemoteLogSegmentMetadata>) -> Vec<RemoteLogSegmentMetadata> {
    v.sort_by_key(|m| (m.start_offset, m.id.id));
    v
}

#[cfg(test)]
#[path = "cache_test.rs"]
mod tests;
