//! Object-key layout: the only module that knows how keys are built and parsed.
//!
//! ```text
//! <prefix>/<topic>-<topicId b64url>/<partition>/<20-digit start offset>-<segmentId b64url>.log
//! <prefix>/<topic>-<topicId b64url>/<partition>/<20-digit start offset>-<segmentId b64url>.indexes
//! <prefix>/<topic>-<topicId b64url>/<partition>/_delete-marker
//! ```
//! Ids are Kafka's UUID text ([`shale_common::kafka_uuid`], 22 characters). An empty prefix puts topic
//! directories at the bucket root.

use std::sync::Arc;

use object_store::path::Path;
use shale_common::kafka_uuid;

use crate::meta::{RemoteLogSegmentId, TopicIdPartition};

/// File name of a partition's delete marker.
pub const DELETE_MARKER: &str = "_delete-marker";

/// Builds keys under a fixed prefix.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
}

impl Layout {
    /// A layout under `prefix` (leading/trailing slashes ignored; may be empty).
    pub fn new(prefix: &str) -> Self {
        Layout {
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    /// The root under which all topics live (`None` for an empty prefix).
    pub fn root(&self) -> Option<Path> {
        (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()))
    }

    fn join(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn topic_dir_name(tp: &TopicIdPartition) -> String {
        format!("{}-{}", tp.topic, kafka_uuid::encode(&tp.topic_id))
    }

    /// The directory of a partition.
    pub fn partition_dir(&self, tp: &TopicIdPartition) -> Path {
        self.join(&format!("{}/{}", Self::topic_dir_name(tp), tp.partition))
    }

    fn segment_base(&self, id: &RemoteLogSegmentId, start_offset: i64) -> String {
        format!(
            "{}/{}/{:020}-{}",
            Self::topic_dir_name(&id.tp),
            id.tp.partition,
            start_offset,
            kafka_uuid::encode(&id.id)
        )
    }

    /// Key of the segment's `.log` object.
    pub fn log_key(&self, id: &RemoteLogSegmentId, start_offset: i64) -> Path {
        self.join(&format!("{}.log", self.segment_base(id, start_offset)))
    }

    /// Key of the segment's `.indexes` object.
    pub fn indexes_key(&self, id: &RemoteLogSegmentId, start_offset: i64) -> Path {
        self.join(&format!("{}.indexes", self.segment_base(id, start_offset)))
    }

    /// Key of the partition's delete marker.
    pub fn delete_marker_key(&self, tp: &TopicIdPartition) -> Path {
        self.join(&format!(
            "{}/{}/{DELETE_MARKER}",
            Self::topic_dir_name(tp),
            tp.partition
        ))
    }

    /// True if `key` is a delete marker.
    pub fn is_delete_marker(key: &Path) -> bool {
        key.filename() == Some(DELETE_MARKER)
    }

    /// Parses a partition directory (as listed with a delimiter) back into its partition.
    pub fn parse_partition_dir(&self, dir: &Path) -> Option<TopicIdPartition> {
        let s = dir.as_ref();
        let rest = if self.prefix.is_empty() {
            s
        } else {
            s.strip_prefix(self.prefix.as_str())?.strip_prefix('/')?
        };
        let (topic_dir, partition) = rest.trim_end_matches('/').split_once('/')?;
        if partition.contains('/') {
            return None;
        }
        let partition: i32 = partition.parse().ok()?;
        let split = topic_dir.len().checked_sub(kafka_uuid::ENCODED_LEN + 1)?;
        if split == 0 || topic_dir.as_bytes()[split] != b'-' {
            return None;
        }
        let topic = topic_dir.get(..split)?;
        let topic_id = kafka_uuid::decode(topic_dir.get(split + 1..)?)?;
        Some(TopicIdPartition {
            topic_id,
            topic: Arc::from(topic),
            partition,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn tp() -> TopicIdPartition {
        TopicIdPartition {
            topic_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            topic: Arc::from("my-topic"),
            partition: 7,
        }
    }

    #[test]
    fn keys_follow_the_layout() {
        let l = Layout::new("/pre/fix/");
        let id = RemoteLogSegmentId {
            tp: tp(),
            id: Uuid::from_u128(1),
        };
        let t = kafka_uuid::encode(&tp().topic_id);
        assert_eq!(
            l.log_key(&id, 1234).as_ref(),
            format!("pre/fix/my-topic-{t}/7/00000000000000001234-AAAAAAAAAAAAAAAAAAAAAQ.log")
        );
        assert!(l.indexes_key(&id, 0).as_ref().ends_with(".indexes"));
        let marker = l.delete_marker_key(&tp());
        assert!(Layout::is_delete_marker(&marker));
        assert_eq!(
            Layout::new("").partition_dir(&tp()).as_ref(),
            format!("my-topic-{t}/7")
        );
    }

    #[test]
    fn partition_dirs_parse_back() {
        for prefix in ["", "a/b"] {
            let l = Layout::new(prefix);
            let dir = l.partition_dir(&tp());
            assert_eq!(l.parse_partition_dir(&dir), Some(tp()));
        }
        let l = Layout::new("p");
        assert_eq!(l.parse_partition_dir(&Path::from("p/x/1")), None);
        assert_eq!(
            l.parse_partition_dir(&Path::from("q/my-topic-AAAAAAAAAAAAAAAAAAAAAQ/1")),
            None
        );
    }
}
