//! Transaction version 2 (KIP-890 part 2) on the wire, as a Kafka 4 Java producer speaks it
//! once ApiVersions finalizes `transaction.version` 2 (no client installable here drives it:
//! librdkafka and kafka-python stop at version 1). The producer sends no AddPartitionsToTxn or
//! AddOffsetsToTxn: Produce v12 and TxnOffsetCommit v5 add their partitions. Every EndTxn v5
//! bumps the epoch and answers the one to continue with; the markers carry it, so a late batch
//! of the ended transaction is fenced; a retried EndTxn gets the same answer again.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use shale_tests::{
    create_topic, fetch_request, init_transactional, start_broker, topic_name, txn_batch, Client,
};
use std::time::Duration;

const TOPIC: &str = "tv2";
const ID: &str = "tv2-producer";
const GROUP: &str = "tv2-group";

/// Produce v12 of one transactional batch to `partition`; its error code.
async fn produce_v12(c: &mut Client, partition: i32, records: Bytes) -> i16 {
    let p = produce_request::PartitionProduceData::default()
        .with_index(partition)
        .with_records(Some(records));
    let t = produce_request::TopicProduceData::default()
        .with_name(topic_name(TOPIC))
        .with_partition_data(vec![p]);
    let req = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(ID.to_string().into())))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![t]);
    let resp = c.send(&req, 12).await.unwrap();
    resp.responses[0].partition_responses[0].error_code
}

/// Polls `f` (a request answering an error code) until it answers 0.
macro_rules! until_ok {
    ($f:expr) => {{
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r = $f;
            if r.0 == 0 {
                break r.1;
            }
            assert!(tokio::time::Instant::now() < deadline, "still {}", r.0);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }};
}

async fn end_txn(c: &mut Client, pid: i64, epoch: i16, commit: bool) -> EndTxnResponse {
    let req = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(ID.to_string().into()))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    c.send(&req, 5).await.unwrap()
}

async fn txn_state(c: &mut Client) -> String {
    let req = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(ID.to_string().into())]);
    let resp = c.send(&req, 0).await.unwrap();
    resp.transaction_states[0].transaction_state.to_string()
}

async fn wait_for_state(c: &mut Client, want: &str) {
    until_ok!({
        let s = txn_state(c).await;
        (i16::from(s != want), ())
    });
}

/// TxnOffsetCommit v5 of `offset` for partition 0 of the topic; its error code.
async fn commit_offset(c: &mut Client, pid: i64, epoch: i16, offset: i64) -> i16 {
    let p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(-1);
    let req = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(ID.to_string().into()))
        .with_group_id(GroupId(GROUP.to_string().into()))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_topics(vec![
            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partitions(vec![p]),
        ]);
    let resp = c.send(&req, 5).await.unwrap();
    resp.topics[0].partitions[0].error_code
}

async fn committed_offset(c: &mut Client) -> i64 {
    let t = offset_fetch_request::OffsetFetchRequestTopic::default()
        .with_name(topic_name(TOPIC))
        .with_partition_indexes(vec![0]);
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(GROUP.to_string().into()))
        .with_topics(Some(vec![t]))
        .with_require_stable(true);
    let resp = c.send(&req, 7).await.unwrap();
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.committed_offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_2_producer_commits_aborts_and_is_fenced_by_its_own_epoch_bump() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();

    // What a Java client reads to choose transaction version 2.
    let versions = c.send(&ApiVersionsRequest::default(), 3).await.unwrap();
    let finalized = versions
        .finalized_features
        .iter()
        .find(|f| f.name.as_str() == "transaction.version")
        .expect("transaction.version finalized");
    assert_eq!(finalized.max_version_level, 2);
    let end_txn_max = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::EndTxn as i16)
        .unwrap()
        .max_version;
    assert_eq!(end_txn_max, 5);

    create_topic(&mut c, TOPIC, 2).await;
    let find = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![StrBytes::from_static_str(GROUP)]);
    until_ok!({
        let r = c.send(&find, 4).await.unwrap();
        (r.coordinators[0].error_code, ())
    });
    let (pid, e0) = init_transactional(&mut c, ID, 5).await;

    // Transaction 1: two partitions and offsets, added by Produce v12 / TxnOffsetCommit v5.
    assert_eq!(produce_v12(&mut c, 0, txn_batch(pid, e0, 0, 3)).await, 0);
    assert_eq!(produce_v12(&mut c, 1, txn_batch(pid, e0, 0, 2)).await, 0);
    assert_eq!(produce_v12(&mut c, 0, txn_batch(pid, e0, 3, 1)).await, 0);
    assert_eq!(commit_offset(&mut c, pid, e0, 4).await, 0);
    assert_eq!(txn_state(&mut c).await, "Ongoing");
    let ended = end_txn(&mut c, pid, e0, true).await;
    assert_eq!(ended.error_code, 0);
    let e1 = e0 + 1;
    assert_eq!((ended.producer_id.0, ended.producer_epoch), (pid, e1));
    wait_for_state(&mut c, "CompleteCommit").await;
    assert_eq!(committed_offset(&mut c).await, 4);

    // A late batch of transaction 1 (its epoch) is fenced by the bumped markers; a retried
    // EndTxn gets the same answer; an older epoch is a zombie.
    assert_eq!(produce_v12(&mut c, 0, txn_batch(pid, e0, 4, 1)).await, 47);
    let retry = end_txn(&mut c, pid, e0, true).await;
    assert_eq!((retry.error_code, retry.producer_epoch), (0, e1));
    assert_eq!(end_txn(&mut c, pid, e0, false).await.error_code, 48);

    // Transaction 2 at the bumped epoch (sequences start over), aborted.
    assert_eq!(produce_v12(&mut c, 0, txn_batch(pid, e1, 0, 2)).await, 0);
    assert_eq!(commit_offset(&mut c, pid, e1, 6).await, 0);
    let ended = end_txn(&mut c, pid, e1, false).await;
    assert_eq!((ended.error_code, ended.producer_epoch), (0, e1 + 1));
    wait_for_state(&mut c, "CompleteAbort").await;
    assert_eq!(committed_offset(&mut c).await, 4);

    // read_committed: transaction 1's four records, transaction 2 listed as aborted.
    let mut fetch = fetch_request(TOPIC, 0, 0);
    fetch.isolation_level = 1;
    let resp = c.send(&fetch, 11).await.unwrap();
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    // 3 + 1 records, COMMIT marker, 2 records, ABORT marker.
    assert_eq!((p.high_watermark, p.last_stable_offset), (8, 8));
    let aborted = p.aborted_transactions.as_ref().expect("aborted list");
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (aborted[0].producer_id.0, aborted[0].first_offset),
        (pid, 5)
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_adds_a_partition_for_a_version_2_client() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();
    create_topic(&mut c, TOPIC, 2).await;
    let (pid, epoch) = init_transactional(&mut c, ID, 5).await;
    // What a partition leader on another broker sends for Produce v12: v5, not verify-only.
    let add = |verify_only: bool, epoch: i16| {
        AddPartitionsToTxnRequest::default().with_transactions(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(ID.to_string().into()))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_verify_only(verify_only)
                .with_topics(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(topic_name(TOPIC))
                        .with_partitions(vec![1]),
                ]),
        ])
    };
    let code = |r: &AddPartitionsToTxnResponse| {
        r.results_by_transaction[0].topic_results[0].results_by_partition[0].partition_error_code
    };
    let verified = c.send(&add(true, epoch), 5).await.unwrap();
    assert_eq!(code(&verified), 48, "not in a transaction yet");
    let added = c.send(&add(false, epoch), 5).await.unwrap();
    assert_eq!(code(&added), 0);
    let verified = c.send(&add(true, epoch), 5).await.unwrap();
    assert_eq!(code(&verified), 0);
    assert_eq!(txn_state(&mut c).await, "Ongoing");
    let fenced = c.send(&add(false, epoch - 1), 5).await.unwrap();
    assert_eq!(code(&fenced), 90, "PRODUCER_FENCED");
    let ended = end_txn(&mut c, pid, epoch, true).await;
    assert_eq!((ended.error_code, ended.producer_epoch), (0, epoch + 1));
    broker.shutdown().await.unwrap();
}

async fn transaction_version(c: &mut Client) -> Option<i16> {
    let versions = c.send(&ApiVersionsRequest::default(), 3).await.unwrap();
    versions
        .finalized_features
        .iter()
        .find(|f| f.name.as_str() == "transaction.version")
        .map(|f| f.max_version_level)
}

fn feature_update(level: i16, allow_downgrade: bool, upgrade_type: i8) -> UpdateFeaturesRequest {
    let u = update_features_request::FeatureUpdateKey::default()
        .with_feature(StrBytes::from_static_str("transaction.version"))
        .with_max_version_level(level)
        .with_allow_downgrade(allow_downgrade)
        .with_upgrade_type(upgrade_type);
    UpdateFeaturesRequest::default()
        .with_timeout_ms(10_000)
        .with_feature_updates(vec![u])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_features_moves_transaction_version_at_every_request_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();
    assert_eq!(transaction_version(&mut c).await, Some(2));
    // v0: a downgrade needs AllowDowngrade; the outcome is repeated per feature.
    let refused = c.send(&feature_update(1, false, 1), 0).await.unwrap();
    assert_eq!(refused.error_code, 95, "INVALID_UPDATE_VERSION");
    assert_eq!(refused.results[0].error_code, 95);
    let done = c.send(&feature_update(1, true, 1), 0).await.unwrap();
    assert_eq!((done.error_code, done.results[0].error_code), (0, 0));
    assert_eq!(transaction_version(&mut c).await, Some(1));
    // v1: the upgrade type decides; validate-only changes nothing.
    let check = feature_update(0, false, 3).with_validate_only(true);
    assert_eq!(c.send(&check, 1).await.unwrap().error_code, 0);
    assert_eq!(transaction_version(&mut c).await, Some(1));
    let unknown = c.send(&feature_update(2, false, 7), 1).await.unwrap();
    assert_eq!(unknown.error_code, 95);
    // v2: the top-level error only.
    let too_high = c.send(&feature_update(3, false, 1), 2).await.unwrap();
    assert_eq!(too_high.error_code, 95);
    assert!(too_high.results.is_empty());
    let up = c.send(&feature_update(2, false, 1), 2).await.unwrap();
    assert_eq!(up.error_code, 0);
    assert_eq!(transaction_version(&mut c).await, Some(2));
    broker.shutdown().await.unwrap();
}

/// ApiVersions through `pool` to `addr`.
async fn versions_via(
    pool: &shale_broker::replica::peer_pool::PeerPool,
    addr: (&str, u16),
) -> anyhow::Result<ApiVersionsResponse> {
    let req = ApiVersionsRequest::default();
    let dialer = shale_broker::tls::Dialer::plaintext();
    pool.call(&dialer, addr, ApiKey::ApiVersions, 3, &req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_calls_to_other_brokers_reuse_their_connections() {
    use shale_broker::replica::peer_pool::{PeerPool, IDLE_PER_PEER};
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[]).await.unwrap();
    let (host, port) = (broker.addr.ip().to_string(), broker.addr.port());
    let pool = std::sync::Arc::new(PeerPool::new("pool-test", Duration::from_secs(5)));
    for _ in 0..3 {
        assert_eq!(
            versions_via(&pool, (&host, port)).await.unwrap().error_code,
            0
        );
    }
    assert_eq!(pool.idle_to((&host, port)), 1, "one connection, reused");
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..IDLE_PER_PEER + 2 {
        let (pool, host) = (pool.clone(), host.clone());
        calls.spawn(async move { versions_via(&pool, (&host, port)).await.is_ok() });
    }
    while let Some(ok) = calls.join_next().await {
        assert!(ok.unwrap());
    }
    assert!(
        pool.idle_to((&host, port)) <= IDLE_PER_PEER,
        "at most this many kept"
    );
    // A call that fails keeps nothing.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = closed.local_addr().unwrap().port();
    drop(closed);
    assert!(versions_via(&pool, ("127.0.0.1", gone)).await.is_err());
    assert_eq!(pool.idle_to(("127.0.0.1", gone)), 0);
    // Idle connections the peer has closed (here: it restarted) are replaced, not failed.
    broker.shutdown().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let listener = format!("PLAINTEXT://{host}:{port}");
    let broker = start_broker(dir.path(), &[("listeners", listener.as_str())])
        .await
        .unwrap();
    assert!(pool.idle_to((&host, port)) > 0);
    assert_eq!(
        versions_via(&pool, (&host, port)).await.unwrap().error_code,
        0
    );
    broker.shutdown().await.unwrap();
}
