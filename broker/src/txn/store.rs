//! Persistence of the transaction coordinator in `__transaction_state`: creating the topic on
//! first use (compacted, uncompressed, `transaction.state.log.*`), writing one record per state
//! change with acks=-1 ([`write`]), and loading and unloading partitions as this broker gains and
//! loses their leadership ([`sync_partitions`]): a gained partition is replayed from its log
//! start, and the transactions it left between PrepareCommit/PrepareAbort and their completion
//! are completed by this broker ([`super::markers`]), so a coordinator failover never leaves a
//! transaction half visible.

use super::{records, Ticket, TXN_TOPIC};
use crate::api::acks::{wait_for_isr, Pending};
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use shale_common::TopicPartition;
use shale_local_log::AppendOrigin;
use shale_protocol::record::BatchBuilder;
use shale_protocol::record_batch::RecordBatch;
use shale_raft::CreateTopicSpec;
use std::sync::Arc;
use std::time::Duration;

/// Creates `__transaction_state` if it does not exist yet and records its partition count.
pub async fn ensure_topic(broker: &Arc<Broker>) -> Result<(), E> {
    let image = broker.image();
    if let Some(t) = image.topic(TXN_TOPIC) {
        let n = t.partitions.len() as i32;
        broker.txns.with(|c| c.set_partitions(n));
        return crate::group::store::local_logs(broker, t).await;
    }
    let cfg = broker.txns.with(|c| c.config().clone());
    let rf =
        crate::group::store::internal_replication_factor(&broker.config, cfg.replication_factor);
    let min_isr = cfg.min_isr.min(i32::from(rf)).max(1);
    let spec = CreateTopicSpec {
        name: TXN_TOPIC.to_string(),
        num_partitions: cfg.partitions,
        replication_factor: rf,
        assignments: vec![],
        configs: vec![
            ("cleanup.policy".into(), "compact".into()),
            ("compression.type".into(), "uncompressed".into()),
            ("unclean.leader.election.enable".into(), "false".into()),
            ("min.insync.replicas".into(), min_isr.to_string()),
            ("segment.bytes".into(), cfg.segment_bytes.to_string()),
        ],
    };
    match crate::api::admin_topics::create_internal(broker, spec).await {
        Ok(()) => tracing::info!("created {TXN_TOPIC}"),
        Err(e) if e.is_already_exists() => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot create {TXN_TOPIC}");
            return Err(E::CoordinatorNotAvailable);
        }
    }
    if let Some(t) = broker.image().topic(TXN_TOPIC) {
        let n = t.partitions.len() as i32;
        broker.txns.with(|c| c.set_partitions(n));
    }
    crate::api::blocking(broker, sync_partitions).await;
    Ok(())
}

/// Appends the ticket's record to its partition (this broker leads it) and waits until the ISR
/// has it, as Kafka's coordinator writes with acks=-1. The error is what the coordinator
/// answers (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, ...).
pub async fn write(broker: &Broker, t: &Ticket) -> Result<(), E> {
    let version = broker.txn_log_value_version();
    let value = t.value.as_ref().map(|v| records::value(v, version));
    let pending = append(broker, t.partition, records::key(&t.id), value)?;
    let timeout = broker.txns.with(|c| c.config().write_timeout_ms);
    let timeout = Duration::from_millis(timeout.max(1) as u64);
    let code = wait_for_isr(vec![((), pending)], timeout).await[0].1;
    match code {
        0 => Ok(()),
        code => {
            let produce = E::try_from_code(code).unwrap_or(E::UnknownServerError);
            let answer = crate::errors::coordinator_append_error(produce);
            tracing::warn!(id = %t.id, code, ?answer, "transaction state not replicated in time");
            Err(answer)
        }
    }
}

fn append(
    broker: &Broker,
    partition: i32,
    key: bytes::Bytes,
    value: Option<bytes::Bytes>,
) -> Result<Pending, E> {
    let now = broker.clock.now_ms();
    let mut b = BatchBuilder::new(now);
    b.push(now, Some(key), value, Vec::new());
    let batch = b.build().map_err(|e| {
        tracing::warn!(partition, error = %e, "cannot build a transaction state record");
        E::UnknownServerError
    })?;
    append_led(
        broker,
        &TopicPartition::new(TXN_TOPIC, partition),
        batch,
        false,
    )
}

/// Appends `batch` to `tp`, which this broker must lead (NOT_COORDINATOR otherwise), as a
/// coordinator writes: a plain append, or with the log's coordinator origin for a transactional
/// batch (producer-epoch fencing, no sequence check); returns the wait for its ISR. The error
/// is what a coordinator answers.
pub(crate) fn append_led(
    broker: &Broker,
    tp: &TopicPartition,
    batch: RecordBatch,
    transactional: bool,
) -> Result<Pending, E> {
    let part = broker
        .replicas()
        .get_leader(tp)
        .map_err(|_| E::NotCoordinator)?;
    let leader_epoch = part.leader_epoch();
    let origin = match transactional {
        true => AppendOrigin::Coordinator { leader_epoch },
        false => AppendOrigin::Client {
            leader_epoch,
            verification: None,
        },
    };
    let info =
        crate::api::storage_io(|| part.log.append(batch.into_bytes(), origin)).map_err(|e| {
            let answer = crate::errors::coordinator_append_error(crate::errors::log_error(&e));
            tracing::info!(partition = %tp, error = %e, ?answer, "coordinator write refused");
            answer
        })?;
    part.publish_progress();
    Ok(Pending::new(part, info.last_offset + 1))
}

/// Follows leadership of `__transaction_state`: partitions this broker now leads are replayed
/// and coordinated under their leader epoch (the coordinator epoch written into markers);
/// partitions it no longer leads are unloaded. Transactions found between Prepare* and
/// Complete* are returned for the caller to complete. Runs on a thread that may block.
pub fn sync_partitions(broker: &Broker) -> Vec<(String, super::state::TxnValue, i32)> {
    let _sync = broker.txns.sync.lock();
    let image = broker.image();
    let mut led = std::collections::BTreeMap::new();
    if let Some(t) = image.topic(TXN_TOPIC) {
        broker
            .txns
            .with(|c| c.set_partitions(t.partitions.len() as i32));
        for &p in t.partitions.keys() {
            let tp = TopicPartition::new(TXN_TOPIC, p);
            if let Ok(part) = broker.replicas().get_leader(&tp) {
                led.insert(p, part.leader_epoch());
            }
        }
    }
    let owned = broker.txns.with(|c| c.owned());
    for (&p, &epoch) in &owned {
        if led.get(&p) != Some(&epoch) {
            broker.txns.with(|c| c.unload(p));
            tracing::info!(partition = p, "no longer coordinating {TXN_TOPIC}-{p}");
        }
    }
    let mut to_complete = Vec::new();
    let (mut loaded, mut records) = (0usize, 0u64);
    for (&p, &epoch) in &led {
        if owned.get(&p) == Some(&epoch) {
            continue;
        }
        let tp = TopicPartition::new(TXN_TOPIC, p);
        let Ok(part) = broker.replicas().get_leader(&tp) else {
            continue;
        };
        broker.txns.with(|c| c.start_loading(p));
        let count = replay(broker, &part.log);
        let open = broker.txns.with(|c| c.own(p, epoch));
        loaded += 1;
        records += count;
        to_complete.extend(open.into_iter().map(|(id, v)| (id, v, epoch)));
    }
    if loaded > 0 {
        tracing::info!(
            partitions = loaded,
            records,
            completing = to_complete.len(),
            "loaded transaction state from {TXN_TOPIC}"
        );
    }
    broker.txns.set_loaded();
    to_complete
}

/// Replays a partition's records into the core; returns how many were applied.
fn replay(broker: &Broker, log: &shale_local_log::Log) -> u64 {
    let tp = log.topic_partition().clone();
    let mut count = 0;
    crate::group::store::replay_batches(log, |batch| {
        if batch.is_control() {
            return;
        }
        let Ok(recs) = batch.records() else {
            let offset = batch.base_offset();
            tracing::warn!(partition = %tp, offset, "unreadable batch skipped");
            return;
        };
        for r in recs {
            let Some(key) = r.key.as_deref() else {
                continue;
            };
            let decoded = records::decode_key(key).and_then(|id| {
                let value = r.value.as_deref().map(records::decode_value).transpose()?;
                Ok((id, value))
            });
            match decoded {
                Ok((id, value)) => {
                    broker.txns.with(|c| c.replay(id, value));
                    count += 1;
                }
                Err(e) => tracing::warn!(partition = %tp, error = %e, "record skipped"),
            }
        }
    });
    count
}
