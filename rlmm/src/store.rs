//! [`RemotePartitionMetadataStore`]: every user partition's [`RemoteLogMetadataCache`], the latest
//! partition-delete event per partition, and the last processed offset of each metadata
//! partition (KIP-405 §3.4–3.6, Kafka's `RemotePartitionMetadataStore` + consumer-task dedupe).
//!
//! Events enter through [`RemotePartitionMetadataStore::apply`] with their metadata-partition
//! offset: a record at or below the last processed offset of its metadata partition is a replay
//! and is skipped; an event the state machine rejects is logged and dropped (its offset still
//! counts as processed). `DELETE_PARTITION_FINISHED` drops the partition's cache. The `check_*`
//! methods answer "would this event be accepted?" without mutating, so the manager can refuse an
//! invalid change before it is ever written to the topic.

use crate::cache::RemoteLogMetadataCache;
use crate::error::{Result, RlmmError};
use crate::metadata::{
    RemoteLogMetadata, RemoteLogSegmentMetadata, RemoteLogSegmentMetadataUpdate,
    RemotePartitionDeleteMetadata, TopicIdPartition,
};
use crate::state::{RemoteLogSegmentState, RemotePartitionDeleteState};
use std::collections::{BTreeMap, BTreeSet};

/// What [`RemotePartitionMetadataStore::apply`] did with a record.
#[derive(Debug)]
pub enum ApplyOutcome {
    /// The event changed (or idempotently confirmed) the state.
    Applied,
    /// The record's offset was already processed; nothing happened.
    Duplicate,
    /// The event was rejected (invalid transition, unknown segment...) and dropped.
    Dropped(RlmmError),
}

/// All remote-log metadata caches of this broker.
#[derive(Debug, Default)]
pub struct RemotePartitionMetadataStore {
    pub(crate) caches: BTreeMap<TopicIdPartition, RemoteLogMetadataCache>,
    pub(crate) delete_metadata: BTreeMap<TopicIdPartition, RemotePartitionDeleteMetadata>,
    /// Metadata partition -> last processed record offset.
    pub(crate) processed: BTreeMap<i32, i64>,
    /// Once set, caches created later start initialized (they are built from live events).
    pub(crate) initialized: bool,
}

impl RemotePartitionMetadataStore {
    /// An empty store whose caches are not yet initialized.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a record read at `offset` of metadata partition `metadata_partition`.
    pub fn apply(
        &mut self,
        metadata_partition: i32,
        offset: i64,
        event: &RemoteLogMetadata,
    ) -> ApplyOutcome {
        if self
            .processed
            .get(&metadata_partition)
            .is_some_and(|&last| offset <= last)
        {
            return ApplyOutcome::Duplicate;
        }
        self.processed.insert(metadata_partition, offset);
        match self.handle(event) {
            Ok(()) => ApplyOutcome::Applied,
            Err(e) => {
                tracing::warn!(
                    metadata_partition,
                    offset,
                    error = %e,
                    "dropping remote log metadata event"
                );
                ApplyOutcome::Dropped(e)
            }
        }
    }

    /// Decodes and applies a raw record value; an undecodable record is dropped (and counted as
    /// processed) like an invalid event.
    pub fn apply_record(
        &mut self,
        metadata_partition: i32,
        offset: i64,
        value: &[u8],
    ) -> ApplyOutcome {
        match crate::serde::decode(value) {
            Ok(event) => self.apply(metadata_partition, offset, &event),
            Err(e) => {
                if self
                    .processed
                    .get(&metadata_partition)
                    .is_some_and(|&last| offset <= last)
                {
                    return ApplyOutcome::Duplicate;
                }
                self.processed.insert(metadata_partition, offset);
                tracing::warn!(metadata_partition, offset, error = %e, "skipping undecodable remote log metadata record");
                ApplyOutcome::Dropped(e)
            }
        }
    }

    /// Applies an event without offset bookkeeping.
    pub fn handle(&mut self, event: &RemoteLogMetadata) -> Result<()> {
        match event {
            RemoteLogMetadata::Segment(m) => {
                if let Some(cache) = self.caches.get_mut(&m.id.tp) {
                    return cache.add_copy_in_progress_segment(m.clone());
                }
                // Only keep a new cache if the event is accepted.
                let mut cache = RemoteLogMetadataCache::new(m.id.tp.clone());
                cache.initialized = self.initialized;
                cache.add_copy_in_progress_segment(m.clone())?;
                self.caches.insert(m.id.tp.clone(), cache);
                Ok(())
            }
            RemoteLogMetadata::Update(u) => match self.caches.get_mut(&u.id.tp) {
                Some(cache) => cache.update_remote_log_segment_metadata(u),
                None if !self.initialized => Ok(()),
                None => Err(RlmmError::UnknownSegment {
                    id: u.id.to_string(),
                }),
            },
            RemoteLogMetadata::PartitionDelete(d) => self.handle_partition_delete(d),
        }
    }

    fn handle_partition_delete(&mut self, d: &RemotePartitionDeleteMetadata) -> Result<()> {
        self.check_partition_delete(d)?;
        if d.state == RemotePartitionDeleteState::DeletePartitionFinished {
            self.caches.remove(&d.tp);
            self.delete_metadata.remove(&d.tp);
        } else {
            self.delete_metadata.insert(d.tp.clone(), d.clone());
        }
        Ok(())
    }

    /// Whether adding `m` would be accepted (state COPY_SEGMENT_STARTED, valid fields, and a valid
    /// transition from the segment's current state).
    pub fn check_add(&self, m: &RemoteLogSegmentMetadata) -> Result<()> {
        if m.state != RemoteLogSegmentState::CopySegmentStarted {
            return Err(RlmmError::invalid(format!(
                "segment {} added in state {}, expected COPY_SEGMENT_STARTED",
                m.id, m.state
            )));
        }
        m.validate()?;
        let current = self
            .caches
            .get(&m.id.tp)
            .and_then(|c| c.segment(&m.id.id))
            .map(|s| s.state);
        transition_ok(m, current, m.state)
    }

    /// Whether update `u` would be accepted (known segment, not COPY_SEGMENT_STARTED, valid
    /// transition).
    pub fn check_update(&self, u: &RemoteLogSegmentMetadataUpdate) -> Result<()> {
        if u.state == RemoteLogSegmentState::CopySegmentStarted {
            return Err(RlmmError::invalid(format!(
                "segment {}: COPY_SEGMENT_STARTED cannot be set by an update",
                u.id
            )));
        }
        let current = self
            .caches
            .get(&u.id.tp)
            .and_then(|c| c.segment(&u.id.id))
            .ok_or_else(|| RlmmError::UnknownSegment {
                id: u.id.to_string(),
            })?;
        if !RemoteLogSegmentState::is_valid_transition(Some(current.state), u.state) {
            return Err(RlmmError::InvalidTransition {
                id: u.id.to_string(),
                from: Some(current.state),
                to: u.state,
            });
        }
        Ok(())
    }

    /// Whether partition-delete event `d` is a valid step from the partition's recorded state.
    pub fn check_partition_delete(&self, d: &RemotePartitionDeleteMetadata) -> Result<()> {
        let from = self.delete_metadata.get(&d.tp).map(|p| p.state);
        if RemotePartitionDeleteState::is_valid_transition(from, d.state) {
            Ok(())
        } else {
            Err(RlmmError::InvalidPartitionDeleteTransition {
                partition: d.tp.to_string(),
                from,
                to: d.state,
            })
        }
    }

    /// The last processed offset of a metadata partition.
    pub fn last_processed_offset(&self, metadata_partition: i32) -> Option<i64> {
        self.processed.get(&metadata_partition).copied()
    }

    /// The offset replay of a metadata partition should resume from.
    pub fn next_offset(&self, metadata_partition: i32) -> i64 {
        self.last_processed_offset(metadata_partition)
            .map_or(0, |o| o + 1)
    }

    /// Marks one partition's cache as caught up (creating an empty cache if needed).
    pub fn mark_initialized(&mut self, tp: &TopicIdPartition) {
        self.caches
            .entry(tp.clone())
            .or_insert_with(|| RemoteLogMetadataCache::new(tp.clone()))
            .mark_initialized();
    }

    /// Marks every cache, and every cache created from now on, as caught up.
    pub fn mark_all_initialized(&mut self) {
        self.initialized = true;
        for cache in self.caches.values_mut() {
            cache.mark_initialized();
        }
    }

    /// Whether `tp` has a cache that has caught up.
    pub fn is_initialized(&self, tp: &TopicIdPartition) -> bool {
        self.caches.get(tp).is_some_and(|c| c.is_initialized())
    }

    /// The cache of `tp`: `UnknownPartition` if there is none, `NotReady` until it caught up.
    pub fn cache(&self, tp: &TopicIdPartition) -> Result<&RemoteLogMetadataCache> {
        let cache = self
            .caches
            .get(tp)
            .ok_or_else(|| RlmmError::UnknownPartition {
                partition: tp.to_string(),
            })?;
        if !cache.is_initialized() {
            return Err(RlmmError::NotReady {
                what: format!("metadata cache of {tp} is still loading"),
            });
        }
        Ok(cache)
    }

    /// The latest partition-delete event of `tp` (none once FINISHED).
    pub fn partition_delete_metadata(
        &self,
        tp: &TopicIdPartition,
    ) -> Option<&RemotePartitionDeleteMetadata> {
        self.delete_metadata.get(tp)
    }

    /// Every partition with a cache or a pending partition-delete event, sorted.
    pub fn partitions(&self) -> Vec<TopicIdPartition> {
        let all: BTreeSet<&TopicIdPartition> = self
            .caches
            .keys()
            .chain(self.delete_metadata.keys())
            .collect();
        all.into_iter().cloned().collect()
    }

    /// Forgets a partition's cache (its delete state and offsets are kept).
    pub fn clear_partition(&mut self, tp: &TopicIdPartition) {
        self.caches.remove(tp);
    }
}

fn transition_ok(
    m: &RemoteLogSegmentMetadata,
    from: Option<RemoteLogSegmentState>,
    to: RemoteLogSegmentState,
) -> Result<()> {
    if RemoteLogSegmentState::is_valid_transition(from, to) {
        Ok(())
    } else {
        Err(RlmmError::InvalidTransition {
            id: m.id.to_string(),
            from,
            to,
        })
    }
}

#[cfg(test)]
#[path = "store_test.rs"]
mod tests;
