//! `__remote_log_metadata` as the RLMM's [`MetadataTopic`], on whichever broker leads each of
//! its partitions.
//!
//! The topic is created (by [`super::Tiering::activate`], through the controller like any
//! internal topic: retention -1, cleanup delete, never tiered, replication factor
//! `rlmm.config.remote.log.metadata.topic.replication.factor` capped by the broker count) before
//! the RLMM starts. A partition led here is written and read on the local log; one led by
//! another broker is reached as a client would: Produce with acks=all, a consumer Fetch,
//! ListOffsets (`super::super::replica::leader_calls`).
//!
//! | call | led here | led elsewhere |
//! |---|---|---|
//! | append | append + fsync, then wait until the ISR has it | Produce acks=all |
//! | read | the local log up to the high watermark | Fetch as a consumer |
//! | end offset | the high watermark | ListOffsets latest |
//!
//! An event counts only once the ISR has it: the metadata of an uploaded segment must survive
//! the loss of the broker that wrote it, or its objects would be orphaned (and a new leader would
//! upload them again). The RLMM's calls are synchronous; the network ones run on this thread
//! through the runtime ([`shale_common::blocking::io`]).

use crate::replica::connection::BrokerConnection;
use crate::replica::leader_calls::LeaderOf;
use crate::replica::{Partition, ReplicaManager};
use bytes::Bytes;
use shale_common::{Clock, TopicPartition};
use shale_local_log::AppendOrigin;
use shale_protocol::record::BatchBuilder;
use shale_protocol::record_batch::batches;
use shale_rlmm::manager::MetadataTopic;
use shale_rlmm::RlmmError;
use std::sync::Arc;
use std::time::Duration;

/// Kafka's name for the topic.
pub const TOPIC: &str = "__remote_log_metadata";

/// How long an append waits for the ISR (Kafka's producer default `request.timeout.ms`).
const APPEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The metadata topic, wherever its partitions are led.
#[derive(Debug)]
pub struct BrokerMetadataTopic {
    replicas: Arc<ReplicaManager>,
    clock: Arc<dyn Clock>,
    /// The inter-broker listener other leaders are reached on.
    listener: String,
    conn: tokio::sync::Mutex<BrokerConnection>,
}

impl BrokerMetadataTopic {
    /// The topic on `replicas`' logs, and on the brokers named by their metadata.
    pub fn new(
        replicas: Arc<ReplicaManager>,
        clock: Arc<dyn Clock>,
        listener: String,
        dialer: crate::tls::Dialer,
    ) -> Self {
        let conn = BrokerConnection::new("shale-rlmm".into(), APPEND_TIMEOUT, dialer);
        BrokerMetadataTopic {
            replicas,
            clock,
            listener,
            conn: tokio::sync::Mutex::new(conn),
        }
    }

    fn local(&self, partition: i32) -> Option<Arc<Partition>> {
        self.replicas
            .get_leader(&TopicPartition::new(TOPIC, partition))
            .ok()
    }

    /// Runs a call to the partition's leader on another broker.
    fn remote<T>(
        &self,
        partition: i32,
        call: impl AsyncFnOnce(&LeaderOf, &mut BrokerConnection) -> Result<T, RlmmError>,
    ) -> Result<T, RlmmError> {
        let image = self.replicas.image();
        let leader = LeaderOf::find(&image, TOPIC, partition, &self.listener)
            .map_err(|e| topic_err(e.to_string()))?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| topic_err(format!("{TOPIC}-{partition} is led by another broker")))?;
        shale_common::blocking::io(|| {
            handle.block_on(async {
                let mut conn = self.conn.lock().await;
                call(&leader, &mut conn).await
            })
        })
    }

    /// One record (null key, `value`) as a batch.
    fn batch(&self, value: Bytes) -> Result<Bytes, RlmmError> {
        let now = self.clock.now_ms();
        let mut builder = BatchBuilder::new(now);
        builder.push(now, None, Some(value), vec![]);
        let batch = builder.build().map_err(|e| topic_err(e.to_string()))?;
        Ok(batch.into_bytes())
    }

    fn append_local(&self, part: &Arc<Partition>, value: Bytes) -> Result<i64, RlmmError> {
        let partition = part.tp.partition;
        let batch = self.batch(value)?;
        let log = &part.log;
        let origin = AppendOrigin::Client {
            leader_epoch: part.leader_epoch(),
            verification: None,
        };
        let info = shale_common::blocking::io(|| {
            let info = log.append(batch, origin)?;
            log.flush().map(|()| info)
        })
        .map_err(|e| topic_err(format!("{TOPIC}-{partition}: {e}")))?;
        part.publish_progress();
        let offset = info.first_offset;
        if part.high_watermark() <= offset {
            self.wait_for_isr(part, offset)?;
        }
        Ok(offset)
    }

    fn wait_for_isr(&self, part: &Arc<Partition>, offset: i64) -> Result<(), RlmmError> {
        let pending = crate::api::acks::Pending::new(part.clone(), offset + 1);
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| topic_err("no runtime to wait for the ISR on"))?;
        let outcome = shale_common::blocking::io(|| {
            handle.block_on(crate::api::acks::wait_for_isr(
                vec![((), pending)],
                APPEND_TIMEOUT,
            ))
        });
        match outcome.first() {
            Some(((), 0)) => Ok(()),
            other => Err(topic_err(format!(
                "{TOPIC}-{}: offset {offset} did not reach the ISR (error {:?})",
                part.tp.partition,
                other.map(|o| o.1)
            ))),
        }
    }
}

fn topic_err(reason: impl Into<String>) -> RlmmError {
    RlmmError::Topic {
        reason: reason.into(),
    }
}

/// `(offset, value)` of every record at or after `from` in `records`.
pub(crate) fn values_from(records: Bytes, from: i64) -> Result<Vec<(i64, Bytes)>, RlmmError> {
    let mut out = Vec::new();
    for batch in batches(records) {
        let batch = batch.map_err(|e| topic_err(e.to_string()))?;
        let base = batch.base_offset();
        batch
            .for_each_record(|r| {
                let offset = base + i64::from(r.offset_delta);
                if offset >= from {
                    out.push((offset, r.value.clone().unwrap_or_default()));
                }
                Ok(())
            })
            .map_err(|e| topic_err(e.to_string()))?;
    }
    Ok(out)
}

impl MetadataTopic for BrokerMetadataTopic {
    fn ensure(&self, partitions: i32) -> Result<(), RlmmError> {
        let image = self.replicas.image();
        let topic = image
            .topic(TOPIC)
            .ok_or_else(|| topic_err(format!("{TOPIC} has not reached this broker yet")))?;
        let actual = topic.partitions.len() as i32;
        if actual != partitions {
            return Err(RlmmError::PartitionCountMismatch {
                expected: partitions,
                actual,
            });
        }
        Ok(())
    }

    fn append(&self, partition: i32, value: Bytes) -> Result<i64, RlmmError> {
        if let Some(part) = self.local(partition) {
            return self.append_local(&part, value);
        }
        let batch = self.batch(value)?;
        let timeout = APPEND_TIMEOUT.as_millis() as i32;
        self.remote(partition, async |leader, conn| {
            leader
                .produce(conn, batch, timeout)
                .await
                .map_err(|e| topic_err(e.to_string()))
        })
    }

    fn read(
        &self,
        partition: i32,
        from_offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<(i64, Bytes)>, RlmmError> {
        let Some(part) = self.local(partition) else {
            let max = i32::try_from(max_bytes).unwrap_or(i32::MAX);
            let records = self.remote(partition, async |leader, conn| {
                let fetched = leader.fetch(conn, from_offset, max).await;
                fetched.map_err(|e| topic_err(e.to_string()))
            })?;
            return values_from(records.0, from_offset);
        };
        let log = &part.log;
        let from = from_offset.max(log.log_start_offset());
        let end = part.high_watermark();
        if from >= end {
            return Ok(Vec::new());
        }
        let read = shale_common::blocking::io(|| log.read(from, max_bytes, end, true))
            .map_err(|e| topic_err(format!("{TOPIC}-{partition}: {e}")))?;
        values_from(read.records, from_offset)
    }

    fn end_offset(&self, partition: i32) -> Result<i64, RlmmError> {
        if let Some(part) = self.local(partition) {
            return Ok(part.high_watermark());
        }
        self.remote(partition, async |leader, conn| {
            let latest = leader.list_offset(conn, -1, -1).await;
            latest
                .map(|(offset, _)| offset)
                .map_err(|e| topic_err(e.to_string()))
        })
    }
}
