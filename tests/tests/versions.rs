//! Every API at every version the broker advertises gets a decodable, error-free answer and the
//! connection stays open. The ranges come from the same table ApiVersions is built from.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};
use shale_protocol::record::BatchBuilder;
use shale_tests::{start_broker, Client};
use std::ops::RangeInclusive;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn advertised(key: ApiKey) -> RangeInclusive<i16> {
    let (_, min, max) = shale_broker::api::supported_versions()
        .into_iter()
        .find(|(k, _, _)| *k == key as i16)
        .unwrap_or_else(|| panic!("{key:?} is not advertised"));
    // Produce v0-2 are advertised for librdkafka's sake but refused by design (tested elsewhere).
    let min = if key == ApiKey::Produce { 3 } else { min };
    min..=max
}

fn records() -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut b = BatchBuilder::new(now);
    b.push(
        now,
        Some(Bytes::from_static(b"k")),
        Some(Bytes::from_static(b"v")),
        vec![],
    );
    b.build().unwrap().into_bytes()
}

async fn each<R: Request>(
    c: &mut Client,
    key: ApiKey,
    build: impl Fn(i16) -> R,
    check: impl Fn(i16, &R::Response),
) {
    for v in advertised(key) {
        let resp = c
            .send(&build(v), v)
            .await
            .unwrap_or_else(|e| panic!("{key:?} v{v}: {e:#}"));
        check(v, &resp);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_version_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), &[("group.initial.rebalance.delay.ms", "0")])
        .await
        .unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();

    each(
        &mut c,
        ApiKey::ApiVersions,
        |_| ApiVersionsRequest::default(),
        |v, r| assert_eq!(r.error_code, 0, "v{v}"),
    )
    .await;

    // On a listener without SASL, as Kafka answers: ILLEGAL_SASL_STATE.
    each(
        &mut c,
        ApiKey::SaslHandshake,
        |_| SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
        |v, r| assert_eq!(r.error_code, 34, "v{v}"),
    )
    .await;
    each(
        &mut c,
        ApiKey::SaslAuthenticate,
        |_| SaslAuthenticateRequest::default(),
        |v, r| assert_eq!(r.error_code, 34, "v{v}"),
    )
    .await;

    each(
        &mut c,
        ApiKey::AlterUserScramCredentials,
        |v| {
            let mut u = alter_user_scram_credentials_request::ScramCredentialUpsertion::default();
            u.name = s(&format!("user{v}"));
            u.mechanism = 1;
            u.iterations = 4096;
            u.salt = Bytes::from_static(b"salt");
            u.salted_password = Bytes::from_static(&[7; 32]);
            AlterUserScramCredentialsRequest::default().with_upsertions(vec![u])
        },
        |v, r| assert_eq!(r.results[0].error_code, 0, "v{v}: {:?}", r.results[0]),
    )
    .await;
    each(
        &mut c,
        ApiKey::DescribeUserScramCredentials,
        |_| DescribeUserScramCredentialsRequest::default(),
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            assert!(r.results.iter().any(|u| u.user.as_str() == "user0"), "v{v}");
        },
    )
    .await;

    // CreateTopics at each version creates its own topic.
    each(
        &mut c,
        ApiKey::CreateTopics,
        |v| {
            let mut t = create_topics_request::CreatableTopic::default();
            t.name = name(&format!("ct{v}"));
            t.num_partitions = 2;
            t.replication_factor = 1;
            let mut r = CreateTopicsRequest::default();
            r.topics = vec![t];
            r.timeout_ms = 10_000;
            r
        },
        |v, r| {
            assert_eq!(
                r.topics[0].error_code, 0,
                "CreateTopics v{v}: {:?}",
                r.topics[0].error_message
            )
        },
    )
    .await;

    let meta = {
        let mut r = MetadataRequest::default();
        let mut t = metadata_request::MetadataRequestTopic::default();
        t.name = Some(name("ct7"));
        r.topics = Some(vec![t]);
        c.send(&r, 12).await.unwrap()
    };
    let topic_id = meta.topics[0].topic_id;
    assert!(!topic_id.is_nil());

    each(
        &mut c,
        ApiKey::Metadata,
        |_| {
            let mut r = MetadataRequest::default();
            let mut t = metadata_request::MetadataRequestTopic::default();
            t.name = Some(name("ct7"));
            r.topics = Some(vec![t]);
            r
        },
        |v, r| {
            assert_eq!(r.topics.len(), 1, "v{v}");
            assert_eq!(r.topics[0].error_code, 0, "v{v}");
            assert_eq!(r.topics[0].partitions.len(), 2, "v{v}");
            assert_eq!(r.brokers.len(), 1, "v{v}");
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::Produce,
        |v| {
            let mut p = produce_request::PartitionProduceData::default();
            p.index = 0;
            p.records = Some(records());
            let mut t = produce_request::TopicProduceData::default();
            if v >= 13 {
                t.topic_id = topic_id
            } else {
                t.name = name("ct7")
            }
            t.partition_data = vec![p];
            let mut r = ProduceRequest::default();
            r.acks = 1;
            r.timeout_ms = 10_000;
            r.topic_data = vec![t];
            r
        },
        |v, r| {
            let p = &r.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0, "Produce v{v}: {:?}", p.error_message);
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::Fetch,
        |v| {
            let mut p = fetch_request::FetchPartition::default();
            p.partition = 0;
            p.partition_max_bytes = 1 << 20;
            let mut t = fetch_request::FetchTopic::default();
            if v >= 13 {
                t.topic_id = topic_id
            } else {
                t.topic = name("ct7")
            }
            t.partitions = vec![p];
            let mut r = FetchRequest::default();
            r.replica_id = BrokerId(-1);
            r.max_bytes = 1 << 20;
            r.topics = vec![t];
            r
        },
        |v, r| {
            let p = &r.responses[0].partitions[0];
            assert_eq!(p.error_code, 0, "Fetch v{v}");
            assert!(
                p.records.as_ref().is_some_and(|r| !r.is_empty()),
                "Fetch v{v} returned no records"
            );
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::ListOffsets,
        |_| {
            let mut p = list_offsets_request::ListOffsetsPartition::default();
            p.timestamp = -1;
            let mut t = list_offsets_request::ListOffsetsTopic::default();
            t.name = name("ct7");
            t.partitions = vec![p];
            let mut r = ListOffsetsRequest::default();
            r.replica_id = BrokerId(-1);
            r.topics = vec![t];
            r
        },
        |v, r| {
            let p = &r.topics[0].partitions[0];
            assert_eq!(p.error_code, 0, "ListOffsets v{v}");
            assert!(p.offset >= 1, "ListOffsets v{v}: {}", p.offset);
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::OffsetForLeaderEpoch,
        |_| {
            let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
            p.leader_epoch = 0;
            let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
            t.topic = name("ct7");
            t.partitions = vec![p];
            let mut r = OffsetForLeaderEpochRequest::default();
            r.topics = vec![t];
            r
        },
        |v, r| {
            assert_eq!(
                r.topics[0].partitions[0].error_code, 0,
                "OffsetForLeaderEpoch v{v}"
            )
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::DescribeConfigs,
        |_| {
            let mut res = describe_configs_request::DescribeConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = s("ct7");
            res.configuration_keys = None; // null = every key
            let mut r = DescribeConfigsRequest::default();
            r.resources = vec![res];
            r
        },
        |v, r| {
            assert_eq!(r.results[0].error_code, 0, "DescribeConfigs v{v}");
            assert!(
                r.results[0]
                    .configs
                    .iter()
                    .any(|c| c.name.as_str() == "retention.ms"),
                "v{v}"
            );
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::IncrementalAlterConfigs,
        |_| {
            let mut cfg = incremental_alter_configs_request::AlterableConfig::default();
            cfg.name = s("retention.ms");
            cfg.config_operation = 0;
            cfg.value = Some(s("3600000"));
            let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = s("ct7");
            res.configs = vec![cfg];
            let mut r = IncrementalAlterConfigsRequest::default();
            r.resources = vec![res];
            r
        },
        |v, r| assert_eq!(r.responses[0].error_code, 0, "IncrementalAlterConfigs v{v}"),
    )
    .await;

    each(
        &mut c,
        ApiKey::AlterConfigs,
        |_| {
            let mut cfg = alter_configs_request::AlterableConfig::default();
            cfg.name = s("retention.ms");
            cfg.value = Some(s("7200000"));
            let mut res = alter_configs_request::AlterConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = s("ct7");
            res.configs = vec![cfg];
            let mut r = AlterConfigsRequest::default();
            r.resources = vec![res];
            r
        },
        |v, r| assert_eq!(r.responses[0].error_code, 0, "AlterConfigs v{v}"),
    )
    .await;

    each(
        &mut c,
        ApiKey::CreatePartitions,
        |v| {
            let mut t = create_partitions_request::CreatePartitionsTopic::default();
            t.name = name("ct6");
            t.count = 3 + v as i32;
            let mut r = CreatePartitionsRequest::default();
            r.topics = vec![t];
            r.timeout_ms = 10_000;
            r
        },
        |v, r| {
            assert_eq!(
                r.results[0].error_code, 0,
                "CreatePartitions v{v}: {:?}",
                r.results[0].error_message
            )
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::DeleteRecords,
        |_| {
            let mut p = delete_records_request::DeleteRecordsPartition::default();
            p.offset = 1;
            let mut t = delete_records_request::DeleteRecordsTopic::default();
            t.name = name("ct7");
            t.partitions = vec![p];
            let mut r = DeleteRecordsRequest::default();
            r.topics = vec![t];
            r.timeout_ms = 10_000;
            r
        },
        |v, r| {
            let p = &r.topics[0].partitions[0];
            assert_eq!(
                (p.error_code, p.low_watermark),
                (0, 1),
                "DeleteRecords v{v}"
            );
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::InitProducerId,
        |_| {
            let mut r = InitProducerIdRequest::default();
            r.transactional_id = None; // idempotent producer
            r.transaction_timeout_ms = 60_000;
            r
        },
        |v, r| {
            assert_eq!(r.error_code, 0, "InitProducerId v{v}");
            assert!(r.producer_id.0 >= 0, "v{v}");
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::DescribeProducers,
        |_| {
            let mut t = describe_producers_request::TopicRequest::default();
            t.name = name("ct7");
            t.partition_indexes = vec![0];
            let mut r = DescribeProducersRequest::default();
            r.topics = vec![t];
            r
        },
        |v, r| {
            assert_eq!(
                r.topics[0].partitions[0].error_code, 0,
                "DescribeProducers v{v}"
            )
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::DescribeCluster,
        |_| DescribeClusterRequest::default(),
        |v, r| {
            assert_eq!(r.error_code, 0, "DescribeCluster v{v}");
            assert_eq!(r.brokers.len(), 1, "v{v}");
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::DescribeTopicPartitions,
        |_| {
            let mut t = describe_topic_partitions_request::TopicRequest::default();
            t.name = name("ct7");
            let mut r = DescribeTopicPartitionsRequest::default();
            r.topics = vec![t];
            r.response_partition_limit = 2000;
            r
        },
        |v, r| {
            assert_eq!(
                r.topics[0].partitions.len(),
                2,
                "DescribeTopicPartitions v{v}"
            )
        },
    )
    .await;

    // A move of ct7-0 to the replica it already has: accepted, nothing to do, nothing listed.
    each(
        &mut c,
        ApiKey::AlterPartitionReassignments,
        |_| {
            let mut p = alter_partition_reassignments_request::ReassignablePartition::default();
            p.replicas = Some(vec![BrokerId(1)]);
            let mut t = alter_partition_reassignments_request::ReassignableTopic::default();
            t.name = name("ct7");
            t.partitions = vec![p];
            let mut r = AlterPartitionReassignmentsRequest::default();
            r.topics = vec![t];
            r
        },
        |v, r| {
            assert_eq!(r.error_code, 0, "AlterPartitionReassignments v{v}");
            assert_eq!(r.responses[0].partitions[0].error_code, 0, "v{v}");
        },
    )
    .await;
    each(
        &mut c,
        ApiKey::ListPartitionReassignments,
        |_| ListPartitionReassignmentsRequest::default(),
        |v, r| {
            assert_eq!(r.error_code, 0, "ListPartitionReassignments v{v}");
            assert!(r.topics.is_empty(), "v{v}");
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::DescribeLogDirs,
        |_| {
            let mut r = DescribeLogDirsRequest::default();
            r.topics = None; // null = every partition
            r
        },
        |v, r| {
            assert_eq!(r.error_code, 0, "DescribeLogDirs v{v}");
            if v >= 4 {
                for d in &r.results {
                    assert!(d.total_bytes > 0, "v{v} total {}", d.total_bytes);
                    assert!(
                        (0..=d.total_bytes).contains(&d.usable_bytes),
                        "v{v} usable {} of {}",
                        d.usable_bytes,
                        d.total_bytes
                    );
                }
            }
            assert!(
                r.results
                    .iter()
                    .flat_map(|d| &d.topics)
                    .any(|t| t.name.0.as_str() == "ct7"),
                "v{v}"
            );
        },
    )
    .await;

    group_apis(&mut c).await;

    each(
        &mut c,
        ApiKey::DeleteTopics,
        |v| {
            let mut r = DeleteTopicsRequest::default();
            if v >= 6 {
                let mut t = delete_topics_request::DeleteTopicState::default();
                t.name = None;
                t.topic_id = topic_id; // v6 deletes ct7 by id
                r.topics = vec![t];
            } else {
                r.topic_names = vec![name(&format!("ct{}", v + 1))];
            }
            r.timeout_ms = 10_000;
            r
        },
        |v, r| {
            assert_eq!(
                r.responses[0].error_code, 0,
                "DeleteTopics v{v}: {:?}",
                r.responses[0].error_message
            )
        },
    )
    .await;

    each(
        &mut c,
        ApiKey::FindCoordinator,
        |v| {
            let mut r = FindCoordinatorRequest::default();
            if v >= 4 {
                r.coordinator_keys = vec![s("group")];
            } else {
                r.key = s("group");
            }
            r
        },
        |v, r| {
            let code = r
                .coordinators
                .first()
                .map_or(r.error_code, |c| c.error_code);
            assert_eq!(code, 0, "FindCoordinator v{v}");
        },
    )
    .await;

    txn_apis(&mut c).await;

    broker.shutdown().await.unwrap();
}

/// A new transactional id `id` with its producer id and epoch.
async fn init_txn(c: &mut Client, id: &str) -> (ProducerId, i16) {
    let mut r = InitProducerIdRequest::default();
    r.transactional_id = Some(TransactionalId(s(id)));
    r.transaction_timeout_ms = 60_000;
    r.producer_id = ProducerId(-1);
    r.producer_epoch = -1;
    for _ in 0..100 {
        let resp = c.send(&r, 4).await.unwrap();
        // The coordinator loads `__transaction_state` on first use.
        if resp.error_code == 0 {
            return (resp.producer_id, resp.producer_epoch);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no producer id for {id}");
}

fn add_topic() -> add_partitions_to_txn_request::AddPartitionsToTxnTopic {
    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
        .with_name(name("txn-topic"))
        .with_partitions(vec![0])
}

/// The transaction APIs, each version on a transactional id of its own.
async fn txn_apis(c: &mut Client) {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = name("txn-topic");
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut create = CreateTopicsRequest::default();
    create.topics = vec![t];
    create.timeout_ms = 10_000;
    let created = c.send(&create, 7).await.unwrap();
    assert_eq!(created.topics[0].error_code, 0);
    init_txn(c, "warm-up").await;
    for v in advertised(ApiKey::InitProducerId) {
        let mut r = InitProducerIdRequest::default();
        r.transactional_id = Some(TransactionalId(s(&format!("init-{v}"))));
        r.transaction_timeout_ms = 60_000;
        r.producer_id = ProducerId(-1);
        r.producer_epoch = -1;
        let resp = c.send(&r, v).await.unwrap();
        assert_eq!(resp.error_code, 0, "transactional InitProducerId v{v}");
        assert_eq!(resp.producer_epoch, 0, "v{v}");
    }
    for v in advertised(ApiKey::AddPartitionsToTxn) {
        let id = format!("add-{v}");
        let (pid, epoch) = init_txn(c, &id).await;
        let mut r = AddPartitionsToTxnRequest::default();
        if v <= 3 {
            r.v3_and_below_transactional_id = TransactionalId(s(&id));
            r.v3_and_below_producer_id = pid;
            r.v3_and_below_producer_epoch = epoch;
            r.v3_and_below_topics = vec![add_topic()];
        } else {
            r.transactions = vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(TransactionalId(s(&id)))
                    .with_producer_id(pid)
                    .with_producer_epoch(epoch)
                    .with_topics(vec![add_topic()]),
            ];
        }
        let resp = c.send(&r, v).await.unwrap();
        let results = match v <= 3 {
            true => resp.results_by_topic_v3_and_below,
            false => resp.results_by_transaction[0].topic_results.clone(),
        };
        let code = results[0].results_by_partition[0].partition_error_code;
        assert_eq!((resp.error_code, code), (0, 0), "AddPartitionsToTxn v{v}");
    }
    for v in advertised(ApiKey::AddOffsetsToTxn) {
        let id = format!("offsets-{v}");
        let (pid, epoch) = init_txn(c, &id).await;
        let r = AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s(&id)))
            .with_producer_id(pid)
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(s("txn-group")));
        let resp = c.send(&r, v).await.unwrap();
        assert_eq!(resp.error_code, 0, "AddOffsetsToTxn v{v}");
        let p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
            .with_partition_index(0)
            .with_committed_offset(1);
        let t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
            .with_name(name("txn-topic"))
            .with_partitions(vec![p]);
        let commit = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s(&id)))
            .with_group_id(GroupId(s("txn-group")))
            .with_producer_id(pid)
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_topics(vec![t]);
        for tv in advertised(ApiKey::TxnOffsetCommit) {
            let resp = c.send(&commit, tv).await.unwrap();
            let code = resp.topics[0].partitions[0].error_code;
            assert_eq!(code, 0, "TxnOffsetCommit v{tv}");
        }
    }
    for v in advertised(ApiKey::EndTxn) {
        let id = format!("end-{v}");
        let (pid, epoch) = init_txn(c, &id).await;
        let mut add = AddPartitionsToTxnRequest::default();
        add.v3_and_below_transactional_id = TransactionalId(s(&id));
        add.v3_and_below_producer_id = pid;
        add.v3_and_below_producer_epoch = epoch;
        add.v3_and_below_topics = vec![add_topic()];
        c.send(&add, 3).await.unwrap();
        let r = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s(&id)))
            .with_producer_id(pid)
            .with_producer_epoch(epoch)
            .with_committed(v % 2 == 0);
        let resp = c.send(&r, v).await.unwrap();
        assert_eq!(resp.error_code, 0, "EndTxn v{v}");
    }
    for v in advertised(ApiKey::WriteTxnMarkers) {
        let marker = write_txn_markers_request::WritableTxnMarker::default()
            .with_producer_id(ProducerId(987_654))
            .with_producer_epoch(0)
            .with_transaction_result(false)
            .with_coordinator_epoch(0)
            .with_topics(vec![
                write_txn_markers_request::WritableTxnMarkerTopic::default()
                    .with_name(name("txn-topic"))
                    .with_partition_indexes(vec![0]),
            ]);
        let r = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
        let resp = c.send(&r, v).await.unwrap();
        let code = resp.markers[0].topics[0].partitions[0].error_code;
        assert_eq!(code, 0, "WriteTxnMarkers v{v}");
    }
    each(
        c,
        ApiKey::DescribeTransactions,
        |_| {
            DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(s("add-0"))])
        },
        |v, r| {
            let t = &r.transaction_states[0];
            assert_eq!(t.error_code, 0, "DescribeTransactions v{v}");
            assert_eq!(t.transaction_state.as_str(), "Ongoing", "v{v}");
        },
    )
    .await;
    each(
        c,
        ApiKey::ListTransactions,
        |v| {
            let r = ListTransactionsRequest::default().with_state_filters(vec![s("Ongoing")]);
            match v >= 2 {
                true => r.with_transactional_id_pattern(Some(s("add-.*"))),
                false => r,
            }
        },
        |v, r| {
            assert_eq!(r.error_code, 0, "ListTransactions v{v}");
            let ids: Vec<&str> = r
                .transaction_states
                .iter()
                .map(|t| t.transactional_id.as_str())
                .collect();
            assert!(ids.contains(&"add-0"), "v{v}: {ids:?}");
            assert!(!ids.iter().any(|i| i.starts_with("end-")), "v{v}: {ids:?}");
        },
    )
    .await;
}

/// Joins `group` as a new single member at JoinGroup `version` (with the KIP-394 round trip
/// from v4); returns (member id, generation).
async fn join(c: &mut Client, group: &str, version: i16) -> (StrBytes, i32) {
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.session_timeout_ms = 10_000;
    r.rebalance_timeout_ms = if version >= 1 { 10_000 } else { -1 };
    r.protocol_type = s("consumer");
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(b"meta");
    r.protocols = vec![p];
    let mut resp = c.send(&r, version).await.unwrap();
    if version >= 4 {
        assert_eq!(
            resp.error_code, 79,
            "JoinGroup v{version}: MEMBER_ID_REQUIRED"
        );
        r.member_id = resp.member_id.clone();
        resp = c.send(&r, version).await.unwrap();
    }
    assert_eq!(resp.error_code, 0, "JoinGroup v{version}");
    assert_eq!(resp.leader, resp.member_id, "JoinGroup v{version}");
    assert_eq!(resp.members.len(), 1, "JoinGroup v{version}");
    (resp.member_id, resp.generation_id)
}

/// Joins and syncs a fresh group at the newest versions; returns (member id, generation).
async fn stable(c: &mut Client, group: &str) -> (StrBytes, i32) {
    let (member, generation) = join(c, group, 9).await;
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id = generation;
    r.member_id = member.clone();
    let resp = c.send(&r, 5).await.unwrap();
    assert_eq!(resp.error_code, 0);
    (member, generation)
}

async fn group_apis(c: &mut Client) {
    for v in advertised(ApiKey::JoinGroup) {
        join(c, &format!("jg{v}"), v).await;
    }
    for v in advertised(ApiKey::SyncGroup) {
        let group = format!("sg{v}");
        let (member, generation) = join(c, &group, 9).await;
        let mut r = SyncGroupRequest::default();
        r.group_id = GroupId(s(&group));
        r.generation_id = generation;
        r.member_id = member.clone();
        let mut a = sync_group_request::SyncGroupRequestAssignment::default();
        a.member_id = member;
        a.assignment = Bytes::from_static(b"mine");
        r.assignments = vec![a];
        let resp = c.send(&r, v).await.unwrap();
        assert_eq!(resp.error_code, 0, "SyncGroup v{v}");
        assert_eq!(&resp.assignment[..], b"mine", "SyncGroup v{v}");
    }
    let (member, generation) = stable(c, "hb").await;
    for v in advertised(ApiKey::Heartbeat) {
        let mut r = HeartbeatRequest::default();
        r.group_id = GroupId(s("hb"));
        r.generation_id = generation;
        r.member_id = member.clone();
        assert_eq!(c.send(&r, v).await.unwrap().error_code, 0, "Heartbeat v{v}");
    }
    for v in advertised(ApiKey::OffsetCommit) {
        let mut r = OffsetCommitRequest::default();
        r.group_id = GroupId(s("hb"));
        r.generation_id_or_member_epoch = generation;
        r.member_id = member.clone();
        let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = name("ct2");
        let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = 1;
        p.committed_offset = i64::from(v);
        t.partitions = vec![p];
        r.topics = vec![t];
        let resp = c.send(&r, v).await.unwrap();
        assert_eq!(
            resp.topics[0].partitions[0].error_code, 0,
            "OffsetCommit v{v}"
        );
    }
    for v in advertised(ApiKey::OffsetFetch) {
        let mut r = OffsetFetchRequest::default();
        if v >= 8 {
            let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
            g.group_id = GroupId(s("hb"));
            g.topics = None;
            r.groups = vec![g];
        } else {
            r.group_id = GroupId(s("hb"));
            let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
            t.name = name("ct2");
            t.partition_indexes = vec![0, 1];
            r.topics = Some(vec![t]);
        }
        let resp = c.send(&r, v).await.unwrap();
        let offsets: Vec<i64> = if v >= 8 {
            assert_eq!(resp.groups[0].error_code, 0, "OffsetFetch v{v}");
            let p = &resp.groups[0].topics[0].partitions;
            p.iter().map(|p| p.committed_offset).collect()
        } else {
            assert_eq!(resp.error_code, 0, "OffsetFetch v{v}");
            let p = &resp.topics[0].partitions;
            p.iter().map(|p| p.committed_offset).collect()
        };
        let last = *advertised(ApiKey::OffsetCommit).end() as i64;
        let want = if v >= 8 { vec![last] } else { vec![-1, last] };
        assert_eq!(offsets, want, "OffsetFetch v{v}");
    }
    for v in advertised(ApiKey::ListGroups) {
        let mut r = ListGroupsRequest::default();
        if v >= 4 {
            r.states_filter = vec![s("Stable")];
        }
        let resp = c.send(&r, v).await.unwrap();
        assert_eq!(resp.error_code, 0, "ListGroups v{v}");
        assert!(
            resp.groups.iter().any(|g| g.group_id.as_str() == "hb"),
            "ListGroups v{v}"
        );
    }
    for v in advertised(ApiKey::DescribeGroups) {
        let mut r = DescribeGroupsRequest::default();
        r.groups = vec![GroupId(s("hb"))];
        let resp = c.send(&r, v).await.unwrap();
        let g = &resp.groups[0];
        assert_eq!(
            (g.error_code, g.group_state.as_str()),
            (0, "Stable"),
            "DescribeGroups v{v}"
        );
        assert_eq!(g.members.len(), 1, "DescribeGroups v{v}");
    }
    let mut r = OffsetDeleteRequest::default();
    r.group_id = GroupId(s("hb"));
    let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
    t.name = name("ct2");
    let mut p = offset_delete_request::OffsetDeleteRequestPartition::default();
    p.partition_index = 1;
    t.partitions = vec![p];
    r.topics = vec![t];
    let resp = c.send(&r, 0).await.unwrap();
    assert_eq!(resp.error_code, 0, "OffsetDelete v0");
    assert_eq!(
        resp.topics[0].partitions[0].error_code, 0,
        "OffsetDelete v0"
    );
    for v in advertised(ApiKey::LeaveGroup) {
        let group = format!("lg{v}");
        let (member, _) = join(c, &group, 9).await;
        let mut r = LeaveGroupRequest::default();
        r.group_id = GroupId(s(&group));
        if v >= 3 {
            let mut m = leave_group_request::MemberIdentity::default();
            m.member_id = member;
            r.members = vec![m];
        } else {
            r.member_id = member;
        }
        let resp = c.send(&r, v).await.unwrap();
        assert_eq!(resp.error_code, 0, "LeaveGroup v{v}");
        if v >= 3 {
            assert_eq!(resp.members[0].error_code, 0, "LeaveGroup v{v}");
        }
    }
    for v in advertised(ApiKey::DeleteGroups) {
        let mut r = DeleteGroupsRequest::default();
        r.groups_names = vec![GroupId(s(&format!("lg{v}")))];
        let resp = c.send(&r, v).await.unwrap();
        assert_eq!(resp.results[0].error_code, 0, "DeleteGroups v{v}");
    }
}
