//! Persistence of the coordinator in `__consumer_offsets`: creating the topic on first use,
//! appending the core's queued changes ([`persist`]: one batch per change, in queue order, each
//! change applied with the outcome of its append) through an [`OffsetsLog`], and loading and
//! unloading partitions as this broker gains and loses their leadership ([`sync_partitions`]:
//! a gained partition is replayed from its log start).

use super::records;
use super::{GroupCoordinator, Write, OFFSETS_TOPIC};
use crate::api::acks::Pending;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use shale_common::TopicPartition;
use shale_local_log::AppendOrigin;
use shale_protocol::record::BatchBuilder;
use shale_protocol::record_batch::{batches, BatchError, RecordBatch};
use shale_raft::CreateTopicSpec;
use std::sync::Arc;

/// Creates `__consumer_offsets` if it does not exist yet and records its partition count.
/// Returns the Kafka error code when it cannot be created.
pub async fn ensure_topic(broker: &Arc<Broker>) -> Result<(), i16> {
    let image = broker.image();
    if let Some(t) = image.topic(OFFSETS_TOPIC) {
        let n = t.partitions.len() as i32;
        broker.groups.with(|g| g.set_partitions(n));
        local_logs(broker, t).await.map_err(|e| e.code())?;
        // Metadata the coordinator has not followed yet (leadership may have moved): the
        // metadata follower syncs too, this covers a request that arrives first.
        if image.last_offset != broker.groups.synced_metadata() {
            crate::api::blocking(broker, sync_partitions).await;
        }
        return Ok(());
    }
    let cfg = broker.groups.with(|g| g.config().clone());
    let spec = CreateTopicSpec {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: cfg.offsets_partitions,
        replication_factor: internal_replication_factor(
            &broker.config,
            cfg.offsets_replication_factor,
        ),
        assignments: vec![],
        configs: vec![
            ("cleanup.policy".into(), "compact".into()),
            ("compression.type".into(), "producer".into()),
            (
                "segment.bytes".into(),
                cfg.offsets_segment_bytes.to_string(),
            ),
        ],
    };
    let result = crate::api::admin_topics::create_internal(broker, spec).await;
    match result {
        Ok(()) => tracing::info!("created {OFFSETS_TOPIC}"),
        Err(e) if e.is_already_exists() => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot create {OFFSETS_TOPIC}");
            return Err(E::CoordinatorNotAvailable.code());
        }
    }
    let n = broker
        .image()
        .topic(OFFSETS_TOPIC)
        .map(|t| t.partitions.len() as i32)
        .unwrap_or(cfg.offsets_partitions);
    broker.groups.with(|g| g.set_partitions(n));
    crate::api::blocking(broker, sync_partitions).await;
    Ok(())
}

/// The logs of internal topic `t` that this broker hosts exist: another request may have
/// created the topic and not reconciled its logs yet, so reconciling again waits for it (the
/// reconcile lock) and is a no-op otherwise. COORDINATOR_NOT_AVAILABLE when they cannot be
/// created.
pub async fn local_logs(broker: &Arc<Broker>, t: &shale_raft::TopicImage) -> Result<(), E> {
    let missing = t.partitions.iter().any(|(&p, part)| {
        part.replicas.contains(&broker.config.node_id)
            && broker
                .replicas()
                .get(&TopicPartition::new(t.name.as_str(), p))
                .is_none()
    });
    if missing {
        if let Err(e) = crate::api::blocking(broker, |b| b.reconcile()).await {
            tracing::warn!(topic = %t.name, error = %e, "creating the topic's logs failed");
            return Err(E::CoordinatorNotAvailable);
        }
    }
    Ok(())
}

/// The replication factor of an internal topic whose configured one is `configured`: in a
/// cluster exactly that, as Kafka (creation fails until enough brokers are registered, and
/// clients retry); a single node has one broker, so one (Kafka's single-node quickstart sets it
/// to one for the same reason).
pub fn internal_replication_factor(config: &crate::config::BrokerConfig, configured: i16) -> i16 {
    if config.is_multi_node() {
        configured
    } else {
        1
    }
}

/// Where the coordinator's records go: `__consumer_offsets` in the broker ([`BrokerLog`]), a
/// fake in tests.
pub trait OffsetsLog {
    /// Appends `writes` (all of one partition) as one batch; returns what must reach the ISR
    /// before the write counts (`None`: nothing to wait for).
    fn append(
        &self,
        partition: i32,
        writes: &[Write],
        now: i64,
    ) -> Result<Option<Pending>, AppendError>;
}

/// A failed append: the error a producer would get, and what happened.
#[derive(Debug)]
pub struct AppendError {
    /// The produce-path Kafka error.
    pub error: E,
    /// What failed, for the log.
    pub detail: String,
}

/// The outcome of [`persist`]: the groups whose records could not be written, and the
/// appended batches still to reach the ISR.
#[derive(Debug, Default)]
pub struct Persisted {
    failed: Vec<(String, i16)>,
    replicating: Vec<(String, Pending)>,
}

impl Persisted {
    /// Waits, at most `timeout`, until the ISR has every appended batch: Kafka's coordinator
    /// writes with acks=-1, so a commit is answered once it survives the loss of the leader. A
    /// group whose records did not reach the ISR in time gets COORDINATOR_NOT_AVAILABLE, one
    /// whose partition lost leadership meanwhile NOT_COORDINATOR (its records stay in the log).
    pub async fn replicated(mut self, timeout: std::time::Duration) -> Persisted {
        let replicating = std::mem::take(&mut self.replicating);
        let (groups, waits): (Vec<String>, Vec<(usize, Pending)>) = replicating
            .into_iter()
            .enumerate()
            .map(|(i, (group, pending))| (group, (i, pending)))
            .unzip();
        for (i, code) in crate::api::acks::wait_for_isr(waits, timeout).await {
            if code != 0 {
                let produce = E::try_from_code(code).unwrap_or(E::UnknownServerError);
                let answer = crate::errors::coordinator_append_error(produce);
                tracing::warn!(group = %groups[i], code, answer = ?answer,
                    "group state written but not replicated in time");
                self.failed.push((groups[i].clone(), answer.code()));
            }
        }
        self
    }

    /// `Err(code)` when a change of `group` was not written, with the code to answer.
    pub fn result_for(&self, group: &str) -> Result<(), i16> {
        match self.failed.iter().find(|(g, _)| g == group) {
            Some((_, code)) => Err(*code),
            None => Ok(()),
        }
    }
}

/// Appends the records of every queued change, in order, and applies each change with the
/// outcome of its append. The caller holds the coordinator's write lock (see
/// [`GroupCoordinator::lock_writes`]), so the operation that queued the changes, the appends
/// and the applies form one step.
pub fn persist(coordinator: &GroupCoordinator, log: &dyn OffsetsLog, now: i64) -> Persisted {
    let pending = coordinator.with(|g| g.take_pending());
    let mut persisted = Persisted::default();
    for p in pending {
        let outcome = match p.writes.is_empty() {
            true => Ok(None),
            false => log.append(p.partition, &p.writes, now).map_err(|e| {
                let answer = crate::errors::coordinator_append_error(e.error);
                tracing::warn!(group = %p.group, partition = p.partition, error = %e.detail,
                    answer = ?answer, "cannot write group state to {OFFSETS_TOPIC}");
                answer.code()
            }),
        };
        let outcome = outcome.map(|wait| {
            if let Some(wait) = wait {
                persisted.replicating.push((p.group.clone(), wait));
            }
        });
        if let Err(code) = outcome {
            persisted.failed.push((p.group.clone(), code));
        }
        coordinator.with(|g| g.apply(&p.group, p.change, outcome, now));
    }
    persisted
}

/// The broker's `__consumer_offsets` partitions.
#[derive(Debug)]
pub struct BrokerLog<'a>(pub &'a Broker);

impl OffsetsLog for BrokerLog<'_> {
    fn append(
        &self,
        partition: i32,
        writes: &[Write],
        now: i64,
    ) -> Result<Option<Pending>, AppendError> {
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
        let fail = |error: E, detail: String| AppendError { error, detail };
        let part = self.0.replicas().get_leader(&tp).map_err(|_| {
            fail(
                E::NotLeaderOrFollower,
                format!("{tp} is not led by this broker"),
            )
        })?;
        let mut b = BatchBuilder::new(now);
        for w in writes {
            b.push(now, Some(w.key.clone()), w.value.clone(), Vec::new());
        }
        let batch = b.build().map_err(|e| {
            let error = match e {
                BatchError::TooLarge(_) => E::MessageTooLarge,
                _ => E::UnknownServerError,
            };
            fail(error, format!("{tp}: {e}"))
        })?;
        let origin = AppendOrigin::Client {
            leader_epoch: part.leader_epoch(),
            verification: None,
        };
        let info = crate::api::storage_io(|| part.log.append(batch.into_bytes(), origin))
            .map_err(|e| fail(crate::errors::log_error(&e), format!("{tp}: {e}")))?;
        part.publish_progress();
        Ok(Some(Pending::new(part, info.last_offset + 1)))
    }
}

/// Follows leadership of `__consumer_offsets`, as Kafka's coordinator loads a partition when
/// elected its leader and unloads it on resignation: every partition this broker now leads and
/// does not coordinate yet is replayed from its log start, then coordinated; every partition
/// it coordinates but no longer leads is unloaded. Runs under the coordinator's write lock, on
/// a thread that may block; marks the coordinator loaded the first time. Unreadable records
/// are logged and skipped.
pub fn sync_partitions(broker: &Broker) {
    let _writing = broker.groups.lock_writes_blocking();
    let image = broker.image();
    broker.groups.set_synced_metadata(image.last_offset);
    let now = broker.clock.now_ms();
    let mut led = std::collections::BTreeSet::new();
    if let Some(t) = image.topic(OFFSETS_TOPIC) {
        broker
            .groups
            .with(|g| g.set_partitions(t.partitions.len() as i32));
        led.extend(t.partitions.keys().copied().filter(|&p| {
            let tp = TopicPartition::new(OFFSETS_TOPIC, p);
            broker.replicas().get_leader(&tp).is_ok()
        }));
    }
    let owned = broker.groups.with(|g| g.owned_partitions());
    for &p in owned.difference(&led) {
        broker.groups.with(|g| g.unload(p));
        tracing::info!(partition = p, "no longer coordinating {OFFSETS_TOPIC}-{p}");
    }
    let loading: Vec<i32> = led.difference(&owned).copied().collect();
    let mut count = 0u64;
    for &p in &loading {
        let tp = TopicPartition::new(OFFSETS_TOPIC, p);
        if let Ok(part) = broker.replicas().get_leader(&tp) {
            count += replay_partition(broker, &part.log, now);
            broker.groups.with(|g| g.own(p));
        }
    }
    if !loading.is_empty() {
        broker.groups.with(|g| g.finish_replay());
        tracing::info!(
            partitions = loading.len(),
            records = count,
            "loaded group state from {OFFSETS_TOPIC}"
        );
    }
    broker.groups.set_loaded();
}

fn replay_partition(broker: &Broker, log: &shale_local_log::Log, now: i64) -> u64 {
    let tp = log.topic_partition().clone();
    let start = log.log_start_offset();
    let mut count = 0;
    replay_batches(log, |batch| {
        if batch.is_control() {
            replay_marker(broker, &tp, batch);
            return;
        }
        let txn_producer = batch.is_transactional().then(|| batch.producer_id());
        let base = batch.base_offset();
        let Ok(recs) = batch.records() else {
            tracing::warn!(partition = %tp, offset = base, "unreadable batch skipped");
            return;
        };
        // The log may start inside its first batch (DeleteRecords).
        let live = recs
            .into_iter()
            .filter(|r| base + i64::from(r.offset_delta) >= start);
        for r in live {
            let Some(key) = r.key.as_deref() else {
                continue;
            };
            match records::decode(key, r.value.as_deref()) {
                Ok(d) => {
                    broker
                        .groups
                        .with(|g| replay_record(g, d, txn_producer, now));
                    count += 1;
                }
                Err(e) => tracing::warn!(partition = %tp, error = %e, "record skipped"),
            }
        }
    });
    count
}

/// Calls `f` with every batch of a coordinator's partition `log`, from its log start to its
/// end, in order (both coordinators rebuild their state this way when they gain a partition);
/// a read error or an undecodable batch ends the replay, logged.
pub fn replay_batches(log: &shale_local_log::Log, mut f: impl FnMut(&RecordBatch)) {
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let read = match log.read(offset, 1 << 20, end, true) {
            Ok(r) if !r.records.is_empty() => r,
            Ok(_) => break,
            Err(e) => {
                let tp = log.topic_partition();
                tracing::warn!(partition = %tp, offset, error = %e, "replay stopped");
                break;
            }
        };
        let before = offset;
        for batch in batches(read.records) {
            let Ok(batch) = batch else { break };
            offset = batch.next_offset();
            f(&batch);
        }
        if offset <= before {
            break;
        }
    }
}

/// A replayed record: applied, or held until its transaction's marker when it was written by
/// TxnOffsetCommit (a transactional batch).
fn replay_record(g: &mut super::Groups, d: records::Decoded, txn: Option<i64>, now: i64) {
    match (d, txn) {
        (
            records::Decoded::Offset {
                group,
                topic,
                partition,
                value: Some(v),
            },
            Some(producer_id),
        ) => g.stage_txn_offsets(producer_id, &group, vec![((topic, partition), v)]),
        (d, _) => g.replay(d, now),
    }
}

/// A replayed COMMIT/ABORT marker completes the producer's held offsets.
fn replay_marker(
    broker: &Broker,
    tp: &TopicPartition,
    batch: &shale_protocol::record_batch::RecordBatch,
) {
    use shale_protocol::record::{control_record_type, CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT};
    match control_record_type(batch) {
        Some((t, _)) if t == CONTROL_TYPE_COMMIT || t == CONTROL_TYPE_ABORT => {
            let commit = t == CONTROL_TYPE_COMMIT;
            let pid = batch.producer_id();
            broker
                .groups
                .with(|g| g.complete_txn_offsets(pid, tp.partition, commit));
        }
        _ => {}
    }
}

/// Runs the coordinator's timers and persists what they changed (on a thread that may block).
pub fn tick(broker: &Broker) {
    let _writing = broker.groups.lock_writes_blocking();
    let now = broker.clock.now_ms();
    broker.groups.with(|g| g.tick(now));
    persist(&broker.groups, &BrokerLog(broker), now);
}

#[cfg(test)]
#[path = "store_test.rs"]
mod tests;
