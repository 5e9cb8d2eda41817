//! KIP-890 on the produce path: before a producer's first transactional batch of a
//! transaction is appended to a partition, the leader asks the transaction coordinator whether
//! the partition is in that transaction (part 1; in-process when this broker coordinates the
//! id, else AddPartitionsToTxn v4 with `verify_only` to the coordinator), so a batch that
//! arrives after its transaction ended cannot open a transaction nobody will close (a hanging
//! transaction). `transaction.partition.verification.enable=false` turns that off, as in Kafka.
//! A client of transaction version 2 (Produce v12+, TxnOffsetCommit v5+) sends no
//! AddPartitionsToTxn: the leader adds the partition for it (part 2; AddPartitionsToTxn v5
//! without `verify_only` when the coordinator is elsewhere), whatever that setting says.
//!
//! A transactional batch needs the request's transactional id
//! (TRANSACTIONAL_ID_AUTHORIZATION_FAILED without one, as Kafka answers). Coordinator trouble
//! (moving, loading, unreachable, busy) is answered NOT_ENOUGH_REPLICAS, which every producer
//! retries; a partition not in the transaction is INVALID_TXN_STATE; a fenced producer
//! INVALID_PRODUCER_EPOCH.
//!
//! As Kafka's VerificationGuard, a guard is taken in the partition's log before the check and
//! handed to the append: a marker of the producer appended in between voids it, and the batch,
//! which would then open a transaction of its own, is refused with INVALID_TXN_STATE.

use crate::state::Broker;
use crate::txn::state::TV2;
use crate::txn::TXN_TOPIC;
use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use shale_common::TopicPartition;
use shale_local_log::VerificationGuard;
use shale_protocol::record_batch::batches;
use std::sync::Arc;

/// Checks a partition's records before they are appended (adding the partition to the
/// transaction for Produce `version` 12+): `Err((code, message))` refuses them. A checked
/// transactional batch comes with the guard its append must hold (see
/// [`shale_local_log::VerificationGuard`]).
pub async fn check(
    broker: &Arc<Broker>,
    transactional_id: Option<&str>,
    topic: &str,
    partition: i32,
    records: &Bytes,
    version: i16,
) -> Result<Option<VerificationGuard>, (i16, String)> {
    let Some(Ok(batch)) = batches(records.clone()).next() else {
        return Ok(None);
    };
    if !batch.is_transactional() || batch.producer_id() < 0 {
        return Ok(None);
    }
    let Some(id) = transactional_id.filter(|id| !id.is_empty()) else {
        let msg = "transactional records need the request's transactional id".to_string();
        return Err((E::TransactionalIdAuthorizationFailed.code(), msg));
    };
    let add = version >= 12;
    if !add && !broker.txns.with(|c| c.config().verify_partitions) {
        return Ok(None);
    }
    let tp = TopicPartition::new(topic, partition);
    let Ok(part) = broker.replicas().get_leader(&tp) else {
        return Ok(None); // the append answers NOT_LEADER_OR_FOLLOWER
    };
    let (pid, epoch) = (batch.producer_id(), batch.producer_epoch());
    // Taken first: a transaction that ends from here on voids it, even one still open below.
    let guard = part.log.start_verification(pid);
    if part.log.has_open_txn(pid, epoch) {
        return Ok(Some(guard));
    }
    let verdict = enlist(broker, id, (pid, epoch), (topic, partition), add).await;
    verdict.map(|()| Some(guard)).map_err(|e| {
        tracing::debug!(partition = %tp, id, producer_id = pid, error = ?e,
            "transactional batch failed verification");
        let code = match e {
            E::InvalidTxnState | E::InvalidProducerIdMapping => E::InvalidTxnState,
            E::ProducerFenced | E::InvalidProducerEpoch => E::InvalidProducerEpoch,
            _ => E::NotEnoughReplicas,
        };
        (
            code.code(),
            format!("transaction verification failed: {e:?}"),
        )
    })
}

/// Verifies that `topic`-`partition` is in the ongoing transaction of `id` for this producer
/// id and epoch, or (`add`, transaction version 2) adds it, with the id's coordinator.
pub async fn enlist(
    broker: &Arc<Broker>,
    id: &str,
    (producer_id, epoch): (i64, i16),
    (topic, partition): (&str, i32),
    add: bool,
) -> Result<(), E> {
    if broker.txns.with(|c| c.locate(id)).is_err() {
        return ask_coordinator(broker, id, (producer_id, epoch), (topic, partition), add).await;
    }
    match add {
        true => {
            let tp = [(topic.to_string(), partition)];
            super::txn::add(broker, id, producer_id, epoch, &tp, TV2).await
        }
        false => broker
            .txns
            .with(|c| c.verify(id, producer_id, epoch, topic, partition)),
    }
}

/// AddPartitionsToTxn to the leader of the id's `__transaction_state` partition on another
/// broker: v4 with `verify_only`, or v5 adding the partition (`add`).
async fn ask_coordinator(
    broker: &Broker,
    id: &str,
    (producer_id, epoch): (i64, i16),
    (topic, partition): (&str, i32),
    add: bool,
) -> Result<(), E> {
    let image = broker.image();
    let t = image.topic(TXN_TOPIC).ok_or(E::CoordinatorNotAvailable)?;
    let p = crate::group::records::partition_for(id, t.partitions.len() as i32);
    let listener = &broker.config.replication.inter_broker_listener;
    let leader = t.partitions.get(&p).map_or(-1, |x| x.leader);
    let addr = image
        .brokers
        .get(&leader)
        .filter(|b| !b.fenced)
        .and_then(|b| b.endpoints.iter().find(|e| &e.name == listener))
        .map(|e| (e.host.clone(), e.port))
        .ok_or(E::CoordinatorNotAvailable)?;
    let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(id.to_string())))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_verify_only(!add)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![partition])]),
    ]);
    let version = 4 + i16::from(add);
    let resp: AddPartitionsToTxnResponse = broker
        .txns
        .verify_peers
        .call(
            &broker.inter_broker_dialer(),
            (&addr.0, addr.1),
            ApiKey::AddPartitionsToTxn,
            version,
            &req,
        )
        .await
        .map_err(|e| {
            tracing::debug!(error = %e, "transaction coordinator unreachable for verification");
            E::CoordinatorNotAvailable
        })?;
    if resp.error_code != 0 {
        return Err(E::try_from_code(resp.error_code).unwrap_or(E::UnknownServerError));
    }
    let code = resp
        .results_by_transaction
        .iter()
        .flat_map(|t| t.topic_results.iter())
        .flat_map(|t| t.results_by_partition.iter())
        .map(|p| p.partition_error_code)
        .next()
        .ok_or(E::UnknownServerError)?;
    match code {
        0 => Ok(()),
        code => Err(E::try_from_code(code).unwrap_or(E::UnknownServerError)),
    }
}
