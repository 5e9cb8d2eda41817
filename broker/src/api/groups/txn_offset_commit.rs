//! TxnOffsetCommit: a transactional producer commits a consumer group's offsets inside its
//! transaction. The offset records go to the group's `__consumer_offsets` partition in one
//! transactional batch carrying the producer's id and epoch (so the log fences an old epoch and
//! tracks the open transaction), wait for the ISR, and are held by the coordinator until the
//! transaction's marker commits or aborts them ([`crate::group::txn_offsets`]). A client of
//! transaction version 2 (v5+) sent no AddOffsetsToTxn: the group's partition is added to its
//! transaction here first (KIP-890 part 2).

use crate::api::acks::{wait_for_isr, Pending};
use crate::api::RequestContext;
use crate::group::records::OffsetValue;
use crate::group::{Write, OFFSETS_TOPIC};
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use shale_common::TopicPartition;
use shale_protocol::record::BatchBuilder;
use shale_raft::acl::op;
use std::sync::Arc;
use std::time::Duration;

/// Answers TxnOffsetCommit.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    // Kafka's order: the transactional id, the group (both for every partition), each topic.
    let whole = if !ctx.authz.transactional_id(op::WRITE, &req.transactional_id) {
        Some(E::TransactionalIdAuthorizationFailed.code())
    } else if !ctx.authz.group(op::READ, &req.group_id) {
        Some(E::GroupAuthorizationFailed.code())
    } else {
        None
    };
    let image = broker.image();
    let now = super::now(broker);
    let max_meta = broker.groups.with(|g| g.config().offset_metadata_max_bytes);
    let mut codes: Vec<Vec<i16>> = Vec::new();
    let mut offsets = Vec::new();
    for t in &req.topics {
        let topic = image.topic(t.name.as_str());
        let denied = whole.or_else(|| {
            let readable = ctx.authz.topic(op::READ, &t.name);
            (!readable).then_some(E::TopicAuthorizationFailed.code())
        });
        let mut tc = Vec::new();
        for p in &t.partitions {
            let meta = p.committed_metadata.as_ref().map_or("", |m| m.as_str());
            let code = if let Some(code) = denied {
                code
            } else if !topic.is_some_and(|x| x.partitions.contains_key(&p.partition_index)) {
                E::UnknownTopicOrPartition.code()
            } else if meta.len() > max_meta {
                E::OffsetMetadataTooLarge.code()
            } else {
                let v = OffsetValue {
                    offset: p.committed_offset,
                    leader_epoch: if version >= 2 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: meta.to_string(),
                    commit_ts: now,
                    expire_ts: None,
                };
                offsets.push(((t.name.to_string(), p.partition_index), v));
                0
            };
            tc.push(code);
        }
        codes.push(tc);
    }
    let outcome = match offsets.is_empty() {
        true => Ok(()),
        false => commit(broker, req, offsets, version).await,
    };
    let mut resp = TxnOffsetCommitResponse::default();
    for (t, tc) in req.topics.iter().zip(codes) {
        let mut out = TxnOffsetCommitResponseTopic::default();
        out.name = t.name.clone();
        for (p, c) in t.partitions.iter().zip(tc) {
            let code = match (&outcome, c) {
                (Err(e), 0) => fenced_for(*e, version).code(),
                (_, c) => c,
            };
            out.partitions.push(
                TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code),
            );
        }
        resp.topics.push(out);
    }
    resp
}

fn fenced_for(e: E, version: i16) -> E {
    match (e, version >= 3) {
        (E::ProducerFenced, false) => E::InvalidProducerEpoch,
        (e, _) => e,
    }
}

/// Writes the offsets in the producer's transaction and holds them until its marker.
async fn commit(
    broker: &Arc<Broker>,
    req: &TxnOffsetCommitRequest,
    offsets: Vec<((String, i32), OffsetValue)>,
    version: i16,
) -> Result<(), E> {
    let group = req.group_id.as_str();
    super::ready_for(broker, group)
        .await
        .map_err(|c| E::try_from_code(c).unwrap_or(E::CoordinatorNotAvailable))?;
    let pid = req.producer_id.0;
    broker
        .groups
        .with(|g| g.check_txn_committer(group, req.member_id.as_str(), req.generation_id, pid))?;
    let partition = broker.groups.with(|g| g.partition_for(group));
    if version >= 5 {
        add_to_txn(broker, req, partition).await?;
    }
    let writes: Vec<Write> = offsets
        .iter()
        .map(|((t, p), v)| Write::offset(partition, group, t, *p, Some(v)))
        .collect();
    let pending = append(broker, partition, &writes, pid, req.producer_epoch)?;
    let timeout = broker.groups.with(|g| g.config().commit_timeout_ms);
    let timeout = Duration::from_millis(timeout.max(1) as u64);
    match wait_for_isr(vec![((), pending)], timeout).await[0].1 {
        0 => {}
        code => {
            let e = E::try_from_code(code).unwrap_or(E::UnknownServerError);
            return Err(crate::errors::coordinator_append_error(e));
        }
    }
    broker
        .groups
        .with(|g| g.stage_txn_offsets(pid, group, offsets));
    Ok(())
}

/// Adds the group's partition to the producer's transaction (transaction version 2). The
/// transaction coordinator's transient answers become COORDINATOR_LOAD_IN_PROGRESS, which the
/// client retries without looking the group coordinator up again.
async fn add_to_txn(
    broker: &Arc<Broker>,
    req: &TxnOffsetCommitRequest,
    partition: i32,
) -> Result<(), E> {
    let id = req.transactional_id.as_str();
    let producer = (req.producer_id.0, req.producer_epoch);
    let tp = (OFFSETS_TOPIC, partition);
    crate::api::txn_verify::enlist(broker, id, producer, tp, true)
        .await
        .map_err(|e| match e {
            E::ConcurrentTransactions
            | E::NotCoordinator
            | E::CoordinatorNotAvailable
            | E::CoordinatorLoadInProgress => E::CoordinatorLoadInProgress,
            e => e,
        })
}

fn append(
    broker: &Broker,
    partition: i32,
    writes: &[Write],
    producer_id: i64,
    producer_epoch: i16,
) -> Result<Pending, E> {
    let now = broker.clock.now_ms();
    let mut b = BatchBuilder::new(now);
    b.producer_id = producer_id;
    b.producer_epoch = producer_epoch;
    b.base_sequence = 0;
    b.is_transactional = true;
    for w in writes {
        b.push(now, Some(w.key.clone()), w.value.clone(), Vec::new());
    }
    let batch = b.build().map_err(|_| E::UnknownServerError)?;
    let tp = TopicPartition::new(OFFSETS_TOPIC, partition);
    crate::txn::store::append_led(broker, &tp, batch, true)
}
