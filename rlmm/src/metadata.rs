//! The KIP-405 metadata value types: [`TopicIdPartition`], [`RemoteLogSegmentId`],
//! [`RemoteLogSegmentMetadata`] (validated on construction), its [`RemoteLogSegmentMetadataUpdate`],
//! [`RemotePartitionDeleteMetadata`], and the [`RemoteLogMetadata`] event enum that travels through
//! `__remote_log_metadata`.
//!
//! Fields are public for easy construction in tests and by the copy task; [`RemoteLogSegmentMetadata::validate`]
//! is what the manager and the decoder enforce (start ≥ 0, end ≥ start, non-empty leader epochs).

use crate::error::{Result, RlmmError};
use crate::state::{RemoteLogSegmentState, RemotePartitionDeleteState};
use bytes::Bytes;
use shale_common::kafka_uuid;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// A user partition identified by topic id, topic name and partition number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicIdPartition {
    /// The topic's id (Kafka `Uuid`).
    pub topic_id: Uuid,
    /// The topic's name.
    pub topic: Arc<str>,
    /// The partition number.
    pub partition: i32,
}

impl TopicIdPartition {
    /// Builds a topic-id partition.
    pub fn new(topic_id: Uuid, topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicIdPartition {
            topic_id,
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicIdPartition {
    /// Kafka's form: `<topicId>:<topic>-<partition>`, topic id in base64url.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = kafka_uuid::encode(&self.topic_id);
        write!(f, "{id}:{}-{}", self.topic, self.partition)
    }
}

/// One upload attempt of one segment: the partition plus a fresh random id per attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteLogSegmentId {
    /// The user partition the segment belongs to.
    pub tp: TopicIdPartition,
    /// The attempt's unique id.
    pub id: Uuid,
}

impl RemoteLogSegmentId {
    /// Builds a segment id.
    pub fn new(tp: TopicIdPartition, id: Uuid) -> Self {
        RemoteLogSegmentId { tp, id }
    }
}

impl fmt::Display for RemoteLogSegmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tp, kafka_uuid::encode(&self.id))
    }
}

/// Metadata of one remote segment in some state (KIP-405 §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLogSegmentMetadata {
    /// Segment identity.
    pub id: RemoteLogSegmentId,
    /// First offset in the segment (≥ 0).
    pub start_offset: i64,
    /// Last offset in the segment, inclusive (≥ start).
    pub end_offset: i64,
    /// Largest record timestamp in the segment.
    pub max_timestamp_ms: i64,
    /// Broker that produced this event.
    pub broker_id: i32,
    /// Wall-clock time of the event.
    pub event_timestamp_ms: i64,
    /// Leader epoch -> first offset of that epoch within the segment (non-empty).
    pub segment_leader_epochs: BTreeMap<i32, i64>,
    /// Size of the `.log` object in bytes.
    pub segment_size_in_bytes: i32,
    /// Opaque plugin metadata (set at COPY_SEGMENT_FINISHED).
    pub custom_metadata: Option<Bytes>,
    /// Lifecycle state.
    pub state: RemoteLogSegmentState,
}

impl RemoteLogSegmentMetadata {
    /// A validated metadata object in COPY_SEGMENT_STARTED without custom metadata.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: RemoteLogSegmentId,
        start_offset: i64,
        end_offset: i64,
        max_timestamp_ms: i64,
        broker_id: i32,
        event_timestamp_ms: i64,
        segment_size_in_bytes: i32,
        segment_leader_epochs: BTreeMap<i32, i64>,
    ) -> Result<Self> {
        let m = RemoteLogSegmentMetadata {
            id,
            start_offset,
            end_offset,
            max_timestamp_ms,
            broker_id,
            event_timestamp_ms,
            segment_leader_epochs,
            segment_size_in_bytes,
            custom_metadata: None,
            state: RemoteLogSegmentState::CopySegmentStarted,
        };
        m.validate()?;
        Ok(m)
    }

    /// Checks Kafka's constructor rules: start ≥ 0, end ≥ start, at least one leader epoch.
    pub fn validate(&self) -> Result<()> {
        if self.start_offset < 0 {
            return Err(RlmmError::invalid(format!(
                "segment {}: start offset {} is negative",
                self.id, self.start_offset
            )));
        }
        if self.end_offset < self.start_offset {
            return Err(RlmmError::invalid(format!(
                "segment {}: end offset {} is below start offset {}",
                self.id, self.end_offset, self.start_offset
            )));
        }
        if self.segment_leader_epochs.is_empty() {
            return Err(RlmmError::invalid(format!(
                "segment {}: leader epochs are empty",
                self.id
            )));
        }
        Ok(())
    }

    /// A copy with the update's broker id, event time, custom metadata and state; ids must match.
    pub fn create_with_updates(&self, update: &RemoteLogSegmentMetadataUpdate) -> Result<Self> {
        if update.id != self.id {
            return Err(RlmmError::invalid(format!(
                "update for segment {} applied to segment {}",
                update.id, self.id
            )));
        }
        Ok(RemoteLogSegmentMetadata {
            broker_id: update.broker_id,
            event_timestamp_ms: update.event_timestamp_ms,
            custom_metadata: update.custom_metadata.clone(),
            state: update.state,
            ..self.clone()
        })
    }

    /// The last offset (inclusive) of `epoch` inside this segment: the next epoch's start − 1, or
    /// the segment's end offset for the last epoch.
    pub fn epoch_end_offset(&self, epoch: i32) -> i64 {
        use std::ops::Bound::{Excluded, Unbounded};
        self.segment_leader_epochs
            .range((Excluded(epoch), Unbounded))
            .next()
            .map(|(_, start)| start - 1)
            .unwrap_or(self.end_offset)
    }
}

/// A state change of an existing segment (KIP-405 §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLogSegmentMetadataUpdate {
    /// The segment being updated.
    pub id: RemoteLogSegmentId,
    /// Wall-clock time of the event.
    pub event_timestamp_ms: i64,
    /// Plugin metadata to store with the new state.
    pub custom_metadata: Option<Bytes>,
    /// The target state (never COPY_SEGMENT_STARTED when published).
    pub state: RemoteLogSegmentState,
    /// Broker that produced this event.
    pub broker_id: i32,
}

/// A remote partition deletion event (KIP-405 §2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePartitionDeleteMetadata {
    /// The partition being deleted.
    pub tp: TopicIdPartition,
    /// Deletion progress.
    pub state: RemotePartitionDeleteState,
    /// Wall-clock time of the event.
    pub event_timestamp_ms: i64,
    /// Broker that produced this event.
    pub broker_id: i32,
}

/// One event of `__remote_log_metadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteLogMetadata {
    /// apiKey 0: a new segment (COPY_SEGMENT_STARTED when published by this crate).
    Segment(RemoteLogSegmentMetadata),
    /// apiKey 1: a segment state change.
    Update(RemoteLogSegmentMetadataUpdate),
    /// apiKey 2: a partition deletion step.
    PartitionDelete(RemotePartitionDeleteMetadata),
}

impl RemoteLogMetadata {
    /// The user partition the event is about (decides its metadata partition).
    pub fn topic_id_partition(&self) -> &TopicIdPartition {
        match self {
            RemoteLogMetadata::Segment(m) => &m.id.tp,
            RemoteLogMetadata::Update(u) => &u.id.tp,
            RemoteLogMetadata::PartitionDelete(d) => &d.tp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicIdPartition {
        TopicIdPartition::new(Uuid::from_u64_pair(0, 1), "foo", 0)
    }

    fn seg_id(lsb: u64) -> RemoteLogSegmentId {
        RemoteLogSegmentId::new(tp(), Uuid::from_u64_pair(0, lsb))
    }

    #[test]
    fn topic_id_partition_prints_like_kafka() {
        assert_eq!(tp().to_string(), "AAAAAAAAAAAAAAAAAAAAAQ:foo-0");
    }

    #[test]
    fn constructor_validates() {
        let epochs = BTreeMap::from([(0, 0)]);
        assert!(
            RemoteLogSegmentMetadata::new(seg_id(2), 0, 0, -1, 0, 0, 1, epochs.clone()).is_ok()
        );
        let neg = RemoteLogSegmentMetadata::new(seg_id(2), -1, 5, -1, 0, 0, 1, epochs.clone());
        assert!(matches!(neg, Err(RlmmError::InvalidArgument { .. })));
        let back = RemoteLogSegmentMetadata::new(seg_id(2), 10, 9, -1, 0, 0, 1, epochs);
        assert!(matches!(back, Err(RlmmError::InvalidArgument { .. })));
        let empty = RemoteLogSegmentMetadata::new(seg_id(2), 0, 9, -1, 0, 0, 1, BTreeMap::new());
        assert!(matches!(empty, Err(RlmmError::InvalidArgument { .. })));
    }

    #[test]
    fn create_with_updates_replaces_mutable_fields_only() {
        let epochs = BTreeMap::from([(0, 0), (3, 50)]);
        let m = RemoteLogSegmentMetadata::new(seg_id(2), 0, 99, 7, 1, 10, 4096, epochs).unwrap();
        let u = RemoteLogSegmentMetadataUpdate {
            id: seg_id(2),
            event_timestamp_ms: 20,
            custom_metadata: Some(Bytes::from_static(b"x")),
            state: RemoteLogSegmentState::CopySegmentFinished,
            broker_id: 2,
        };
        let n = m.create_with_updates(&u).unwrap();
        assert_eq!(n.state, RemoteLogSegmentState::CopySegmentFinished);
        assert_eq!((n.broker_id, n.event_timestamp_ms), (2, 20));
        assert_eq!(n.custom_metadata.as_deref(), Some(&b"x"[..]));
        assert_eq!(
            (n.start_offset, n.end_offset, n.max_timestamp_ms),
            (0, 99, 7)
        );
        assert_eq!(n.segment_leader_epochs, m.segment_leader_epochs);
        let other = RemoteLogSegmentMetadataUpdate { id: seg_id(3), ..u };
        assert!(m.create_with_updates(&other).is_err());
    }

    #[test]
    fn epoch_end_offsets() {
        let epochs = BTreeMap::from([(0, 0), (1, 20), (2, 80)]);
        let m = RemoteLogSegmentMetadata::new(seg_id(2), 0, 100, -1, 0, 0, 1, epochs).unwrap();
        assert_eq!(m.epoch_end_offset(0), 19);
        assert_eq!(m.epoch_end_offset(1), 79);
        assert_eq!(m.epoch_end_offset(2), 100);
    }
}
