//! The transaction coordinator's client APIs: InitProducerId with a transactional id,
//! AddPartitionsToTxn, AddOffsetsToTxn and EndTxn. Transaction version 2 is per request, as in
//! Kafka: EndTxn v5 bumps the epoch and answers the producer id and epoch to continue with, and
//! AddPartitionsToTxn v4+ without `verify_only` (a partition leader adding a partition for a
//! client's Produce v12 / TxnOffsetCommit v5) opens or extends a version-2 transaction.
//!
//! Every state change runs as a detached task ([`run`]): it writes its `__transaction_state`
//! record, waits for the ISR and applies the change, even when the client goes away meanwhile,
//! so an id is never left with a write in flight. PRODUCER_FENCED becomes INVALID_PRODUCER_EPOCH
//! for clients older than KIP-588 (InitProducerId < v4, the others < v2), as Kafka answers them.

use super::RequestContext;
use crate::state::Broker;
use crate::txn::markers::{self, Completion};
use crate::txn::state::{self, EndStep, InitStep, TxnValue};
use crate::txn::{store, Ticket};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::*;
use shale_raft::acl::op;
use std::sync::Arc;

/// Ready to coordinate transactions: loaded, and `__transaction_state` exists.
pub(crate) async fn ready(broker: &Arc<Broker>) -> Result<(), E> {
    if !broker.txns.is_loaded() {
        return Err(E::CoordinatorLoadInProgress);
    }
    store::ensure_topic(broker).await
}

/// Writes the ticket's record and applies it, as a task of its own (see the module doc).
async fn run(broker: &Arc<Broker>, ticket: Ticket) -> Result<(), E> {
    let b = broker.clone();
    let task = tokio::spawn(async move {
        let written = store::write(&b, &ticket).await;
        let applied = b.txns.with(|c| c.finish(&ticket, written));
        if applied.is_ok() {
            if let Some(v) = ticket.value.as_ref().filter(|v| v.state.is_prepare()) {
                markers::crash_point(&b, "txn.prepared");
                let (b2, id, v) = (b.clone(), ticket.id.clone(), v.clone());
                let epoch = ticket.coordinator_epoch;
                tokio::spawn(markers::complete(b2, id, v, epoch, Completion::Ended));
            }
        }
        applied
    });
    task.await.unwrap_or(Err(E::UnknownServerError))
}

fn fenced_for(e: E, kip588: bool) -> E {
    match (e, kip588) {
        (E::ProducerFenced, false) => E::InvalidProducerEpoch,
        (e, _) => e,
    }
}

/// InitProducerId for a transactional id: the id's producer id with its epoch bumped, or a
/// new one; an open transaction of the id is aborted first (CONCURRENT_TRANSACTIONS meanwhile).
pub async fn init_producer_id(
    broker: &Arc<Broker>,
    req: &InitProducerIdRequest,
    version: i16,
    id: &str,
) -> InitProducerIdResponse {
    let mut resp = super::producers::no_producer_id();
    match init(broker, req, id).await {
        Ok((pid, epoch)) => {
            resp.producer_id = ProducerId(pid);
            resp.producer_epoch = epoch;
        }
        Err(e) => resp.error_code = fenced_for(e, version >= 4).code(),
    }
    resp
}

async fn init(
    broker: &Arc<Broker>,
    req: &InitProducerIdRequest,
    id: &str,
) -> Result<(i64, i16), E> {
    if id.is_empty() {
        return Err(E::InvalidRequest);
    }
    let max = broker.txns.with(|c| c.config().max_timeout_ms);
    let timeout = req.transaction_timeout_ms;
    if timeout <= 0 || timeout > max {
        return Err(E::InvalidTransactionTimeout);
    }
    ready(broker).await?;
    broker.txns.with(|c| c.locate(id))?;
    let expected = (req.producer_id.0 >= 0).then_some((req.producer_id.0, req.producer_epoch));
    let needs_id = broker
        .txns
        .with(|c| state::needs_new_id(c.get(id).map(|e| &e.value)));
    let new_id = match needs_id {
        true => super::producers::next_producer_id(broker)
            .await
            .map_err(|code| E::try_from_code(code).unwrap_or(E::CoordinatorNotAvailable))?,
        false => -1,
    };
    let now = broker.clock.now_ms();
    let plan = broker.txns.with(|c| -> Result<InitStep, E> {
        let step = match c.get(id) {
            Some(e) if e.pending => return Err(E::ConcurrentTransactions),
            Some(e) => state::init(&e.value, e.last_epoch, timeout, expected, new_id, now)?,
            None if new_id < 0 => return Err(E::ConcurrentTransactions),
            None => {
                let mut v = TxnValue::new(new_id, timeout, now);
                v.producer_epoch = 0;
                InitStep::Write(v)
            }
        };
        Ok(step)
    })?;
    match plan {
        InitStep::Current => {
            let e = broker.txns.with(|c| c.get(id).map(|e| e.value.clone()));
            let v = e.ok_or(E::ConcurrentTransactions)?;
            Ok((v.producer_id, v.producer_epoch))
        }
        InitStep::Write(v) => {
            let (pid, epoch) = (v.producer_id, v.producer_epoch);
            let ticket = broker.txns.with(|c| c.begin(id, Some(v)))?;
            run(broker, ticket).await?;
            Ok((pid, epoch))
        }
        InitStep::FenceAndAbort(v) => {
            tracing::info!(
                id,
                producer_id = v.producer_id,
                epoch = v.producer_epoch,
                "fencing the producer of an open transaction and aborting it"
            );
            let ticket = broker.txns.with(|c| c.begin(id, Some(v)))?;
            run(broker, ticket).await?;
            Err(E::ConcurrentTransactions)
        }
    }
}

/// Adds `partitions` to `id`'s transaction (of transaction version `client_version`); one
/// error for all of them.
pub(crate) async fn add(
    broker: &Arc<Broker>,
    id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
    client_version: i16,
) -> Result<(), E> {
    ready(broker).await?;
    let now = broker.clock.now_ms();
    change(broker, id, |cur| {
        state::add_partitions(cur, producer_id, epoch, partitions, client_version, now)
    })
    .await
    .map(drop)
}

/// Runs `step` on the state of a known id coordinated here (INVALID_PRODUCER_ID_MAPPING for an
/// unknown one, CONCURRENT_TRANSACTIONS while a write is in flight) and writes the value it
/// returns, if any. Returns the id's state afterwards.
async fn change(
    broker: &Arc<Broker>,
    id: &str,
    step: impl FnOnce(&TxnValue) -> Result<Option<TxnValue>, E>,
) -> Result<TxnValue, E> {
    let (ticket, cur) = broker
        .txns
        .with(|c| -> Result<(Option<Ticket>, TxnValue), E> {
            c.locate(id)?;
            let e = c.get(id).ok_or(E::InvalidProducerIdMapping)?;
            if e.pending {
                return Err(E::ConcurrentTransactions);
            }
            let cur = e.value.clone();
            match step(&cur)? {
                None => Ok((None, cur)),
                Some(v) => Ok((Some(c.begin(id, Some(v.clone()))?), v)),
            }
        })?;
    if let Some(t) = ticket {
        run(broker, t).await?;
    }
    Ok(cur)
}

/// AddPartitionsToTxn v0–3 (clients); v4+ batches from brokers are answered per transaction.
pub async fn add_partitions(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let mut resp = AddPartitionsToTxnResponse::default();
    if version <= 3 {
        let (id, topics) = (&req.v3_and_below_transactional_id, &req.v3_and_below_topics);
        if let Some(denied) = client_denials(ctx, id, topics) {
            resp.results_by_topic_v3_and_below = denied;
            return resp;
        }
        resp.results_by_topic_v3_and_below = add_one(
            broker,
            req.v3_and_below_transactional_id.as_str(),
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            &req.v3_and_below_topics,
            version >= 2,
            0,
        )
        .await;
        return resp;
    }
    // From v4 only brokers send it (KIP-890), for their producers' partitions.
    if !ctx.authz.cluster(op::CLUSTER_ACTION) {
        resp.error_code = E::ClusterAuthorizationFailed.code();
        return resp;
    }
    for t in &req.transactions {
        let mut r = AddPartitionsToTxnResult::default();
        r.transactional_id = t.transactional_id.clone();
        if t.verify_only {
            r.topic_results = verify_one(broker, t).await;
            resp.results_by_transaction.push(r);
            continue;
        }
        r.topic_results = add_one(
            broker,
            t.transactional_id.as_str(),
            t.producer_id.0,
            t.producer_epoch,
            &t.topics,
            true,
            state::TV2,
        )
        .await;
        resp.results_by_transaction.push(r);
    }
    resp
}

async fn add_one(
    broker: &Arc<Broker>,
    id: &str,
    producer_id: i64,
    epoch: i16,
    topics: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic],
    kip588: bool,
    client_version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let image = broker.image();
    let known = |t: &str, p: i32| {
        image
            .topic(t)
            .is_some_and(|x| x.partitions.contains_key(&p))
    };
    let all: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |&p| (t.name.to_string(), p)))
        .collect();
    let unknown = all.iter().any(|(t, p)| !known(t, *p));
    let outcome = match unknown {
        true => Err(E::OperationNotAttempted),
        false => add(broker, id, producer_id, epoch, &all, client_version).await,
    };
    topic_results(topics, |topic, p| match &outcome {
        Ok(()) => 0,
        Err(_) if !known(topic, p) => E::UnknownTopicOrPartition.code(),
        Err(e) => fenced_for(*e, kip588).code(),
    })
}

/// A client's AddPartitionsToTxn the principal may not make, answered: without WRITE on the
/// transactional id every partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED; else the
/// partitions of topics it may not write (internal topics never) are TOPIC_AUTHORIZATION_FAILED
/// and the others OPERATION_NOT_ATTEMPTED. `None`: all allowed.
fn client_denials(
    ctx: &RequestContext<'_>,
    id: &str,
    topics: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic],
) -> Option<Vec<AddPartitionsToTxnTopicResult>> {
    if !ctx.authz.transactional_id(op::WRITE, id) {
        let code = E::TransactionalIdAuthorizationFailed.code();
        return Some(topic_results(topics, |_, _| code));
    }
    let writable = |t: &str| !super::metadata::is_internal(t) && ctx.authz.topic(op::WRITE, t);
    if topics.iter().all(|t| writable(&t.name)) {
        return None;
    }
    Some(topic_results(topics, |t, _| match writable(t) {
        true => E::OperationNotAttempted.code(),
        false => E::TopicAuthorizationFailed.code(),
    }))
}

/// One result per requested partition, with the code `code_of(topic, partition)` gives.
fn topic_results(
    topics: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic],
    code_of: impl Fn(&str, i32) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            let mut r = AddPartitionsToTxnTopicResult::default();
            r.name = t.name.clone();
            r.results_by_partition = t
                .partitions
                .iter()
                .map(|&p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(code_of(t.name.as_str(), p))
                })
                .collect();
            r
        })
        .collect()
}

/// A partition leader's KIP-890 verification: per partition, whether it is in the ongoing
/// transaction (INVALID_TXN_STATE when not); nothing is written.
async fn verify_one(
    broker: &Arc<Broker>,
    t: &add_partitions_to_txn_request::AddPartitionsToTxnTransaction,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let ready = ready(broker).await;
    let (id, pid, epoch) = (
        t.transactional_id.as_str(),
        t.producer_id.0,
        t.producer_epoch,
    );
    topic_results(&t.topics, |topic, p| {
        let verdict = ready.and_then(|()| broker.txns.with(|c| c.verify(id, pid, epoch, topic, p)));
        verdict.err().map_or(0, |e| e.code())
    })
}

/// AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction.
pub async fn add_offsets(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let mut resp = AddOffsetsToTxnResponse::default();
    if !ctx.authz.transactional_id(op::WRITE, &req.transactional_id) {
        resp.error_code = E::TransactionalIdAuthorizationFailed.code();
        return resp;
    }
    if !ctx.authz.group(op::READ, &req.group_id) {
        resp.error_code = E::GroupAuthorizationFailed.code();
        return resp;
    }
    let outcome = async {
        super::groups::ready(broker)
            .await
            .map_err(|c| E::try_from_code(c).unwrap_or(E::CoordinatorNotAvailable))?;
        let p = broker
            .groups
            .with(|g| g.partition_for(req.group_id.as_str()));
        let tp = (crate::group::OFFSETS_TOPIC.to_string(), p);
        add(
            broker,
            req.transactional_id.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            &[tp],
            0,
        )
        .await
    }
    .await;
    if let Err(e) = outcome {
        resp.error_code = fenced_for(e, version >= 2).code();
    }
    resp
}

/// EndTxn: writes PrepareCommit/PrepareAbort, answers, and completes the transaction with its
/// markers in the background. From v5 (transaction version 2) the epoch is bumped and the
/// answer carries the producer id and epoch of the client's next transaction.
pub async fn end(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &EndTxnRequest,
    version: i16,
) -> EndTxnResponse {
    let mut resp = EndTxnResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if !ctx.authz.transactional_id(op::WRITE, &req.transactional_id) {
        resp.error_code = E::TransactionalIdAuthorizationFailed.code();
        return resp;
    }
    match end_txn(broker, req, version >= 5).await {
        Ok(v) if version >= 5 => {
            let (pid, epoch) = state::client_ids(&v);
            resp.producer_id = ProducerId(pid);
            resp.producer_epoch = epoch;
        }
        Ok(_) => {}
        Err(e) => resp.error_code = fenced_for(e, version >= 2).code(),
    }
    resp
}

async fn end_txn(broker: &Arc<Broker>, req: &EndTxnRequest, tv2: bool) -> Result<TxnValue, E> {
    ready(broker).await?;
    let id = req.transactional_id.as_str();
    let exhausted = broker
        .txns
        .with(|c| c.get(id).is_some_and(|e| state::end_needs_new_id(&e.value)));
    let new_id = match tv2 && exhausted {
        true => super::producers::next_producer_id(broker)
            .await
            .map_err(|code| E::try_from_code(code).unwrap_or(E::CoordinatorNotAvailable))?,
        false => -1,
    };
    let now = broker.clock.now_ms();
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    change(broker, id, |cur| {
        Ok(
            match state::end(cur, pid, epoch, req.committed, tv2, new_id, now)? {
                EndStep::AlreadyDone => None,
                EndStep::Prepare(v) => Some(v),
            },
        )
    })
    .await
}
