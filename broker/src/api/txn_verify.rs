//! KIP-890 part 1 on the produce path: before a producer's first transactional batch of a
//! transaction is appended to a partition, the leader asks the transaction coordinator whether
//! the partition is in that transaction (in-process when this broker coordinates the id, else
//! AddPartitionsToTxn v4 with `verify_only` to the coordinator), so a batch that arrives after
//! its transaction ended cannot open a transaction nobody will close (a hanging transaction).
//! `transaction.partition.verification.enable=false` turns it off, as in Kafka.
//!
//! A transactional batch needs the request's transactional id
//! (TRANSACTIONAL_ID_AUTHORIZATION_FAILED without one, as Kafka answers). Coordinator trouble
//! (moving, loading, unreachable, busy) is answered NOT_ENOUGH_REPLICAS, which every producer
//! retries; a partition not in the transaction is INVALID_TXN_STATE; a fenced producer
//! INVALID_PRODUCER_EPOCH.
//!
//! Unlike Kafka, no verification guard is kept in the producer state between the check and the
//! append: a transaction that ends in that instant can still be reopened by its late batch.

use crate::replica::connection::BrokerConnection;
use crate::state::Broker;
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
use shale_protocol::record_batch::batches;
use std::time::Duration;

/// How long a remote verification may take.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks a partition's records before they are appended: `Err((code, message))` refuses them.
pub async fn check(
    broker: &Broker,
    transactional_id: Option<&str>,
    topic: &str,
    partition: i32,
    records: &Bytes,
) -> Result<(), (i16, String)> {
    let Some(Ok(batch)) = batches(records.clone()).next() else {
        return Ok(());
    };
    if !batch.is_transactional() || batch.producer_id() < 0 {
        return Ok(());
    }
    let Some(id) = transactional_id.filter(|id| !id.is_empty()) else {
        let msg = "transactional records need the request's transactional id".to_string();
        return Err((E::TransactionalIdAuthorizationFailed.code(), msg));
    };
    if !broker.txns.with(|c| c.config().verify_partitions) {
        return Ok(());
    }
    let tp = TopicPartition::new(topic, partition);
    let Ok(part) = broker.replicas().get_leader(&tp) else {
        return Ok(()); // the append answers NOT_LEADER_OR_FOLLOWER
    };
    let (pid, epoch) = (batch.producer_id(), batch.producer_epoch());
    if part.log.has_open_txn(pid) {
        return Ok(());
    }
    let verdict = match broker.txns.with(|c| c.locate(id)) {
        Ok(_) => broker
            .txns
            .with(|c| c.verify(id, pid, epoch, topic, partition)),
        Err(_) => ask_coordinator(broker, id, pid, epoch, topic, partition).await,
    };
    verdict.map_err(|e| {
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

/// AddPartitionsToTxn v4 `verify_only` to the leader of the id's `__transaction_state`
/// partition on another broker.
async fn ask_coordinator(
    broker: &Broker,
    id: &str,
    producer_id: i64,
    epoch: i16,
    topic: &str,
    partition: i32,
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
            .with_verify_only(true)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![partition])]),
    ]);
    let mut conn = BrokerConnection::new("shale-txn-verify".into(), VERIFY_TIMEOUT);
    let resp: AddPartitionsToTxnResponse = conn
        .call((&addr.0, addr.1), ApiKey::AddPartitionsToTxn, 4, &req)
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
