//! Object-key layout: the only module that knows how keys are built and parsed.
//!
//! ```text
//! <prefix>/<topic>-<topicId b64url>/<partition>/<20-digit start offset>-<segmentId b64url>.log
//! <prefix>/<topic>-<topicId b64url>/<partition>/<20-digit start offset>-<segmentId b64url>.indexes
//! <prefix>/<topic>-<topicId b64url>/<partition>/_delete-marker
//! ```
//! Ids are Kafka-style base64url without padding (22 characters). An empty prefix puts topic
//! directories at the bucket root.

use std::sync::Arc;

use object_store::path::Path;
use uuid::Uuid;

use crate::meta::{RemoteLogSegmentId, TopicIdPartition};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const ID_LEN: usize = 22;
/// File name of a partition's delete marker.
pub const DELETE_MARKER: &str = "_delete-marker";

/// Kafka's string form of a Uuid: base64url, no padding.
pub fn uuid_to_b64(id: &Uuid) -> String {
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(ID_LEN);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Parses [`uuid_to_b64`] output.
pub fn uuid_from_b64(s: &str) -> Option<Uuid> {
    if s.len() != ID_LEN {
        return None;
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(16);
    for c in s.bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    let arr: [u8; 16] = out.try_into().ok()?;
    Some(Uuid::from_bytes(arr))
}

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
        format!("{}-{}", tp.topic, uuid_to_b64(&tp.topic_id))
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
            uuid_to_b64(&id.id)
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
        let split = topic_dir.len().checked_sub(ID_LEN + 1)?;
        if split == 0 || topic_dir.as_bytes()[split] != b'-' {
            return None;
        }
        let topic = topic_dir.get(..split)?;
        let topic_id = uuid_from_b64(topic_dir.get(split + 1..)?)?;
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

    fn tp() -> TopicIdPartition {
        TopicIdPartition {
            topic_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            topic: Arc::from("my-topic"),
            partition: 7,
        }
    }

    #[test]
    fn b64_round_trips_and_matches_kafka_form() {
        // Kafka: Uuid(0,1) prints as "AAAAAAAAAAAAAAAAAAAAAQ".
        assert_eq!(uuid_to_b64(&Uuid::from_u128(1)), "AAAAAAAAAAAAAAAAAAAAAQ");
        for v in [0u128, 1, u128::MAX, 0xdead_beef << 64] {
            let id = Uuid::from_u128(v);
            assert_eq!(uuid_from_b64(&uuid_to_b64(&id)), Some(id));
        }
        assert_eq!(uuid_from_b64("short"), None);
        assert_eq!(uuid_from_b64("AAAAAAAAAAAAAAAAAAAA*Q"), None);
    }

    #[test]
    fn keys_follow_the_layout() {
        let l = Layout::new("/pre/fix/");
        let id = RemoteLogSegmentId {
            tp: tp(),
            id: Uuid::from_u128(1),
        };
        let t = uuid_to_b64(&tp().topic_id);
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
