//! Kafka's partition identity.

use std::fmt;
use std::sync::Arc;

/// A topic name and partition index, displayed as Kafka names partition directories: `topic-3`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a topic-partition.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// Parses a partition directory name (`<topic>-<partition>`); the topic may contain dashes.
    pub fn from_dir_name(name: &str) -> Option<Self> {
        let (topic, part) = name.rsplit_once('-')?;
        if topic.is_empty() {
            return None;
        }
        let partition: i32 = part.parse().ok()?;
        (partition >= 0).then(|| TopicPartition::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_round_trip() {
        let tp = TopicPartition::from_dir_name("my-topic-12").unwrap();
        assert_eq!(&*tp.topic, "my-topic");
        assert_eq!(tp.partition, 12);
        assert_eq!(tp.to_string(), "my-topic-12");
        assert!(TopicPartition::from_dir_name("nodash").is_none());
    }
}
