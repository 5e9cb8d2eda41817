//! `__remote_log_metadata` on this broker's own logs: the RLMM's [`MetadataTopic`].
//!
//! The topic is created through the controller like any topic (retention -1, cleanup delete,
//! never tiered). Appends are ordinary batches with a null key; they are fsynced before the
//! offset is returned, because the metadata of an uploaded segment must never be lost while its
//! objects survive (that would orphan them) nor survive while the upload is lost. It reaches the
//! topic's partitions through the replica manager (only partitions led here are written or read)
//! and creates the topic through the controller.

use crate::replica::{Partition, ReplicaManager};
use bytes::Bytes;
use shale_common::{Clock, TopicPartition};
use shale_local_log::AppendOrigin;
use shale_protocol::record::BatchBuilder;
use shale_protocol::record_batch::batches;
use shale_raft::{Controller, CreateTopicSpec};
use shale_rlmm::manager::MetadataTopic;
use shale_rlmm::RlmmError;
use std::sync::Arc;

/// Kafka's name for the topic.
pub const TOPIC: &str = "__remote_log_metadata";

/// The metadata topic on the broker's local logs.
#[derive(Debug)]
pub struct LocalMetadataTopic {
    controller: Arc<Controller>,
    replicas: Arc<ReplicaManager>,
    clock: Arc<dyn Clock>,
}

impl LocalMetadataTopic {
    /// The topic on `replicas`' logs, created through `controller`.
    pub fn new(
        controller: Arc<Controller>,
        replicas: Arc<ReplicaManager>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        LocalMetadataTopic {
            controller,
            replicas,
            clock,
        }
    }

    fn partition(&self, partition: i32) -> Result<Arc<Partition>, RlmmError> {
        self.replicas
            .get_leader(&TopicPartition::new(TOPIC, partition))
            .map_err(|_| topic_err(format!("{TOPIC}-{partition} is not led here")))
    }
}

fn topic_err(reason: impl Into<String>) -> RlmmError {
    RlmmError::Topic {
        reason: reason.into(),
    }
}

impl MetadataTopic for LocalMetadataTopic {
    fn ensure(&self, partitions: i32) -> Result<(), RlmmError> {
        if let Some(t) = self.controller.image().topic(TOPIC) {
            let actual = t.partitions.len() as i32;
            if actual != partitions {
                return Err(RlmmError::PartitionCountMismatch {
                    expected: partitions,
                    actual,
                });
            }
            return Ok(());
        }
        let spec = CreateTopicSpec {
            name: TOPIC.to_string(),
            num_partitions: partitions,
            replication_factor: 1,
            assignments: vec![],
            configs: vec![
                ("retention.ms".into(), "-1".into()),
                ("retention.bytes".into(), "-1".into()),
                ("cleanup.policy".into(), "delete".into()),
            ],
        };
        match self.controller.create_topic(spec, false) {
            Ok(_) | Err(shale_raft::ControllerError::TopicAlreadyExists(_)) => {}
            Err(e) => return Err(topic_err(format!("creating {TOPIC}: {e}"))),
        }
        self.replicas
            .apply(self.controller.image())
            .map_err(|e| topic_err(format!("creating the logs of {TOPIC}: {e}")))
    }

    fn append(&self, partition: i32, value: Bytes) -> Result<i64, RlmmError> {
        let part = self.partition(partition)?;
        let log = &part.log;
        let now = self.clock.now_ms();
        let mut builder = BatchBuilder::new(now);
        builder.push(now, None, Some(value), vec![]);
        let batch = builder.build().map_err(|e| topic_err(e.to_string()))?;
        // Appended and fsynced before the event counts (called from async tiering tasks).
        let info = crate::api::storage_io(|| {
            let info = log.append(batch.into_bytes(), AppendOrigin::Client { leader_epoch: 0 })?;
            log.flush().map(|()| info)
        })
        .map_err(|e| topic_err(format!("{TOPIC}-{partition}: {e}")))?;
        part.publish_progress();
        Ok(info.first_offset)
    }

    fn read(
        &self,
        partition: i32,
        from_offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<(i64, Bytes)>, RlmmError> {
        let log = &self.partition(partition)?.log;
        let from = from_offset.max(log.log_start_offset());
        let end = log.log_end_offset();
        if from >= end {
            return Ok(Vec::new());
        }
        let read = crate::api::storage_io(|| log.read(from, max_bytes, end, true))
            .map_err(|e| topic_err(format!("{TOPIC}-{partition}: {e}")))?;
        let mut out = Vec::new();
        for batch in batches(read.records) {
            let batch = batch.map_err(|e| topic_err(e.to_string()))?;
            let base = batch.base_offset();
            batch
                .for_each_record(|r| {
                    let offset = base + i64::from(r.offset_delta);
                    if offset >= from_offset {
                        out.push((offset, r.value.clone().unwrap_or_default()));
                    }
                    Ok(())
                })
                .map_err(|e| topic_err(e.to_string()))?;
        }
        Ok(out)
    }

    fn end_offset(&self, partition: i32) -> Result<i64, RlmmError> {
        Ok(self.partition(partition)?.log.log_end_offset())
    }
}
