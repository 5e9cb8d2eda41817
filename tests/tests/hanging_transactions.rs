//! A hanging transaction, handled the way `kafka-transactions.sh find-hanging` and `abort` do it
//! on the wire (the tool itself needs a JVM this machine does not have): a producer writes a
//! transactional batch its coordinator never heard of, so the partition's last stable offset
//! stays behind it and read_committed consumers stall. DescribeProducers shows the open
//! transaction's start offset, ListTransactions does not know it (that is what makes it hanging),
//! and a WriteTxnMarkers ABORT sent to the partition leader with the producer's id, epoch and
//! coordinator epoch ends it: the LSO catches up with the high watermark, a read_committed Fetch
//! gets the aborted transaction and reads past it, and a marker of an older coordinator epoch is
//! fenced.

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use shale_protocol::record::BatchBuilder;
use shale_tests::{
    create_topic, fetch_request, init_transactional, now_ms, produce, start_broker, topic_name,
    txn_batch, Client,
};

/// A Produce (acks=-1) of one batch in transaction `id`; the partition's error code.
async fn produce_txn(c: &mut Client, id: &str, records: Bytes) -> i16 {
    let p = produce_request::PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(records));
    let t = produce_request::TopicProduceData::default()
        .with_name(topic_name(TOPIC))
        .with_partition_data(vec![p]);
    let req = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(id.to_string().into())))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![t]);
    let resp = c.send(&req, 9).await.unwrap();
    resp.responses[0].partition_responses[0].error_code
}

const TOPIC: &str = "hanging";

fn plain_batch(n: usize) -> Bytes {
    let ts = now_ms();
    let mut b = BatchBuilder::new(ts);
    for i in 0..n {
        b.push(ts, None, Some(Bytes::from(format!("plain-{i}"))), vec![]);
    }
    b.build().unwrap().into_bytes()
}

/// ListOffsets -1 with `isolation` (0 uncommitted, 1 committed).
async fn latest(c: &mut Client, isolation: i8) -> i64 {
    let p = ListOffsetsPartition::default()
        .with_partition_index(0)
        .with_current_leader_epoch(-1)
        .with_timestamp(-1);
    let t = ListOffsetsTopic::default()
        .with_name(topic_name(TOPIC))
        .with_partitions(vec![p]);
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![t]);
    let resp = c.send(&req, 7).await.unwrap();
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

async fn open_txn_start(c: &mut Client) -> (i64, i32) {
    let t = describe_producers_request::TopicRequest::default()
        .with_name(topic_name(TOPIC))
        .with_partition_indexes(vec![0]);
    let resp = c
        .send(&DescribeProducersRequest::default().with_topics(vec![t]), 0)
        .await
        .unwrap();
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let s = &p.active_producers[0];
    (s.current_txn_start_offset, s.coordinator_epoch)
}

fn abort_marker(producer_id: i64, epoch: i16, coordinator_epoch: i32) -> WriteTxnMarkersRequest {
    let marker = write_txn_markers_request::WritableTxnMarker::default()
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_transaction_result(false)
        .with_coordinator_epoch(coordinator_epoch)
        .with_topics(vec![
            write_txn_markers_request::WritableTxnMarkerTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partition_indexes(vec![0]),
        ]);
    WriteTxnMarkersRequest::default().with_markers(vec![marker])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_transaction_is_found_and_aborted() {
    let dir = tempfile::tempdir().unwrap();
    // Verification would refuse the stray batch that makes the transaction hang (KIP-890), as
    // it would in Kafka: the tool's users meet hanging transactions from older brokers.
    let verification = ("transaction.partition.verification.enable", "false");
    let broker = start_broker(dir.path(), &[verification]).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();
    create_topic(&mut c, TOPIC, 1).await;
    let init = c
        .send(
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
            4,
        )
        .await
        .unwrap();
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    assert!(pid >= 0);
    let r = produce(&mut c, TOPIC, 0, plain_batch(3)).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(
        produce_txn(&mut c, "stray", txn_batch(pid, epoch, 0, 4)).await,
        0
    );
    let r = produce(&mut c, TOPIC, 0, plain_batch(2)).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);

    // find-hanging: the LSO is stuck at the transaction's start, which DescribeProducers names
    // and no coordinator lists.
    assert_eq!(latest(&mut c, 0).await, 9);
    assert_eq!(latest(&mut c, 1).await, 3);
    let (start, coordinator_epoch) = open_txn_start(&mut c).await;
    assert_eq!((start, coordinator_epoch), (3, -1));
    let listed = c
        .send(&ListTransactionsRequest::default(), 1)
        .await
        .unwrap();
    assert_eq!(listed.error_code, 0);
    assert!(listed
        .transaction_states
        .iter()
        .all(|t| t.producer_id.0 != pid));

    // abort: the marker ends it, the LSO reaches the high watermark.
    let resp = c.send(&abort_marker(pid, epoch, 5), 1).await.unwrap();
    assert_eq!(resp.markers[0].topics[0].partitions[0].error_code, 0);
    // A marker from an older coordinator epoch is fenced and writes nothing.
    let stale = c.send(&abort_marker(pid, epoch, 4), 1).await.unwrap();
    assert_eq!(stale.markers[0].topics[0].partitions[0].error_code, 52);
    assert_eq!(latest(&mut c, 0).await, 10);
    assert_eq!(latest(&mut c, 1).await, 10);
    assert_eq!(open_txn_start(&mut c).await.0, -1);

    let mut fetch = fetch_request(TOPIC, 0, 0);
    fetch.isolation_level = 1;
    let resp = c.send(&fetch, 12).await.unwrap();
    let p = &resp.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.high_watermark, p.last_stable_offset),
        (0, 10, 10)
    );
    let aborted = p
        .aborted_transactions
        .as_ref()
        .expect("read_committed gets the list");
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (aborted[0].producer_id.0, aborted[0].first_offset),
        (pid, 3)
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_batch_outside_its_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();
    create_topic(&mut c, TOPIC, 1).await;
    let (pid, epoch) = init_transactional(&mut c, "verified", 4).await;
    // Not added to the transaction: refused, nothing written.
    let refused = produce_txn(&mut c, "verified", txn_batch(pid, epoch, 0, 2)).await;
    assert_eq!(refused, 48, "INVALID_TXN_STATE");
    // No transactional id in the request: refused as Kafka does.
    let r = produce(&mut c, TOPIC, 0, txn_batch(pid, epoch, 0, 2)).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 53);
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = TransactionalId("verified".to_string().into());
    add.v3_and_below_producer_id = ProducerId(pid);
    add.v3_and_below_producer_epoch = epoch;
    add.v3_and_below_topics = vec![
        add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
            .with_name(topic_name(TOPIC))
            .with_partitions(vec![0]),
    ];
    let added = c.send(&add, 3).await.unwrap();
    let code = added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code;
    assert_eq!(code, 0);
    assert_eq!(
        produce_txn(&mut c, "verified", txn_batch(pid, epoch, 0, 2)).await,
        0
    );
    // A verify-only AddPartitionsToTxn (what another leader sends) agrees.
    let verify = AddPartitionsToTxnRequest::default().with_transactions(vec![
        add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId("verified".to_string().into()))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_verify_only(true)
            .with_topics(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(topic_name(TOPIC))
                    .with_partitions(vec![0, 7]),
            ]),
    ]);
    let resp = c.send(&verify, 4).await.unwrap();
    let codes: Vec<i16> = resp.results_by_transaction[0].topic_results[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect();
    assert_eq!(codes, vec![0, 48]);
    assert_eq!(latest(&mut c, 0).await, 2);
    broker.shutdown().await.unwrap();
}
