//! Populated request bodies for the request seeds: the shapes clients really send (topics,
//! partitions, group members, configs, record batches), in an old-style variant (topic names) and
//! a new-style one (topic ids, tagged fields); each version keeps the variants it can encode.

use bytes::Bytes;
use kafka_protocol::messages::{self as km, ApiKey};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::batches;
use super::requests::push_all;

fn s(text: &'static str) -> StrBytes {
    StrBytes::from_static_str(text)
}

fn topic(text: &'static str) -> km::TopicName {
    km::TopicName(s(text))
}

const TOPIC_ID: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);

/// A Produce request carrying `records`, one partition each.
pub fn produce(records: impl Iterator<Item = Vec<u8>>) -> km::ProduceRequest {
    let partitions = records
        .enumerate()
        .map(|(i, r)| {
            km::produce_request::PartitionProduceData::default()
                .with_index(i as i32)
                .with_records(Some(Bytes::from(r)))
        })
        .collect();
    km::ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![km::produce_request::TopicProduceData::default()
            .with_name(topic("events"))
            .with_partition_data(partitions)])
}

fn fetch(by_id: bool) -> km::FetchRequest {
    use km::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    let part = |p| {
        FetchPartition::default()
            .with_partition(p)
            .with_fetch_offset(42)
            .with_partition_max_bytes(1 << 20)
    };
    let mut t = FetchTopic::default().with_partitions(vec![part(0), part(1)]);
    let mut forgotten = ForgottenTopic::default().with_partitions(vec![3]);
    if by_id {
        t.topic_id = TOPIC_ID;
        forgotten.topic_id = TOPIC_ID;
    } else {
        t.topic = topic("events");
        forgotten.topic = topic("old");
    }
    km::FetchRequest::default()
        .with_replica_id(km::BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(52_428_800)
        .with_session_epoch(-1)
        .with_topics(vec![t])
        .with_forgotten_topics_data(vec![forgotten])
}

fn metadata(by_id: bool) -> km::MetadataRequest {
    let t = km::metadata_request::MetadataRequestTopic::default();
    let t = if by_id {
        t.with_topic_id(TOPIC_ID)
    } else {
        t.with_name(Some(topic("events")))
    };
    km::MetadataRequest::default().with_topics(Some(vec![t.clone(), t]))
}

fn list_offsets() -> km::ListOffsetsRequest {
    use km::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    km::ListOffsetsRequest::default()
        .with_replica_id(km::BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic("events"))
            .with_partitions(vec![
                ListOffsetsPartition::default().with_timestamp(-1),
                ListOffsetsPartition::default()
                    .with_partition_index(1)
                    .with_timestamp(-2),
            ])])
}

fn offset_commit() -> km::OffsetCommitRequest {
    use km::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    km::OffsetCommitRequest::default()
        .with_group_id(km::GroupId(s("group-1")))
        .with_generation_id_or_member_epoch(3)
        .with_member_id(s("rdkafka-1234"))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic("events"))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_committed_offset(17)
                .with_committed_metadata(Some(s("meta")))])])
}

fn offset_fetch() -> km::OffsetFetchRequest {
    use km::offset_fetch_request::OffsetFetchRequestTopic;
    km::OffsetFetchRequest::default()
        .with_group_id(km::GroupId(s("group-1")))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic("events"))
            .with_partition_indexes(vec![0, 1, 2])]))
}

fn offset_fetch_groups() -> km::OffsetFetchRequest {
    use km::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
    km::OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(km::GroupId(s("group-1")))
        .with_topics(Some(vec![OffsetFetchRequestTopics::default()
            .with_name(topic("events"))
            .with_partition_indexes(vec![0, 1])]))])
}

fn join_group() -> km::JoinGroupRequest {
    use km::join_group_request::JoinGroupRequestProtocol;
    let subscription =
        Bytes::from_static(b"\x00\x01\x00\x00\x00\x01\x00\x06events\xff\xff\xff\xff");
    km::JoinGroupRequest::default()
        .with_group_id(km::GroupId(s("group-1")))
        .with_session_timeout_ms(45_000)
        .with_rebalance_timeout_ms(300_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(subscription.clone()),
            JoinGroupRequestProtocol::default()
                .with_name(s("roundrobin"))
                .with_metadata(subscription),
        ])
}

fn sync_group() -> km::SyncGroupRequest {
    use km::sync_group_request::SyncGroupRequestAssignment;
    let assignment = Bytes::from_static(
        b"\x00\x01\x00\x00\x00\x01\x00\x06events\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff",
    );
    km::SyncGroupRequest::default()
        .with_group_id(km::GroupId(s("group-1")))
        .with_generation_id(1)
        .with_member_id(s("rdkafka-1234"))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s("rdkafka-1234"))
            .with_assignment(assignment)])
}

fn create_topics() -> km::CreateTopicsRequest {
    use km::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
    };
    km::CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(topic("events"))
                .with_num_partitions(3)
                .with_replication_factor(1)
                .with_configs(vec![CreatableTopicConfig::default()
                    .with_name(s("cleanup.policy"))
                    .with_value(Some(s("compact")))]),
            CreatableTopic::default()
                .with_name(topic("manual"))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(vec![
                    CreatableReplicaAssignment::default().with_broker_ids(vec![km::BrokerId(1)])
                ]),
        ])
}

fn describe_configs() -> km::DescribeConfigsRequest {
    use km::describe_configs_request::DescribeConfigsResource;
    km::DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("events"))
            .with_configuration_keys(Some(vec![s("retention.ms")])),
        DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s("1")),
    ])
}

fn find_coordinator(batched: bool) -> km::FindCoordinatorRequest {
    let r = km::FindCoordinatorRequest::default();
    if batched {
        r.with_coordinator_keys(vec![s("group-1"), s("group-2")])
    } else {
        r.with_key(s("group-1"))
    }
}

fn txn_id(text: &'static str) -> km::TransactionalId {
    km::TransactionalId(s(text))
}

/// The producer of the transaction seeds: what InitProducerId handed out after a few bumps.
const PRODUCER_ID: i64 = 4_000;
const PRODUCER_EPOCH: i16 = 3;

/// AddPartitionsToTxn v0-3 (one transaction, top-level fields) or v4-5 (batched, as the
/// coordinator's brokers send it, one transaction verify-only).
fn add_partitions_to_txn(batched: bool) -> km::AddPartitionsToTxnRequest {
    use km::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
    };
    let topics = || {
        vec![
            AddPartitionsToTxnTopic::default()
                .with_name(topic("events"))
                .with_partitions(vec![0, 1]),
            AddPartitionsToTxnTopic::default()
                .with_name(topic("orders"))
                .with_partitions(vec![3]),
        ]
    };
    let r = km::AddPartitionsToTxnRequest::default();
    if batched {
        r.with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(txn_id("app-txn-1"))
                .with_producer_id(km::ProducerId(PRODUCER_ID))
                .with_producer_epoch(PRODUCER_EPOCH)
                .with_topics(topics()),
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(txn_id("app-txn-2"))
                .with_producer_id(km::ProducerId(PRODUCER_ID + 1))
                .with_producer_epoch(0)
                .with_verify_only(true)
                .with_topics(topics()),
        ])
    } else {
        r.with_v3_and_below_transactional_id(txn_id("app-txn-1"))
            .with_v3_and_below_producer_id(km::ProducerId(PRODUCER_ID))
            .with_v3_and_below_producer_epoch(PRODUCER_EPOCH)
            .with_v3_and_below_topics(topics())
    }
}

fn add_offsets_to_txn() -> km::AddOffsetsToTxnRequest {
    km::AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn_id("app-txn-1"))
        .with_producer_id(km::ProducerId(PRODUCER_ID))
        .with_producer_epoch(PRODUCER_EPOCH)
        .with_group_id(km::GroupId(s("group-1")))
}

fn end_txn(committed: bool) -> km::EndTxnRequest {
    km::EndTxnRequest::default()
        .with_transactional_id(txn_id("app-txn-1"))
        .with_producer_id(km::ProducerId(PRODUCER_ID))
        .with_producer_epoch(PRODUCER_EPOCH)
        .with_committed(committed)
}

/// WriteTxnMarkers v1: a commit over two topics and an abort of another producer.
fn write_txn_markers() -> km::WriteTxnMarkersRequest {
    use km::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
    km::WriteTxnMarkersRequest::default().with_markers(vec![
        WritableTxnMarker::default()
            .with_producer_id(km::ProducerId(PRODUCER_ID))
            .with_producer_epoch(PRODUCER_EPOCH)
            .with_transaction_result(true)
            .with_coordinator_epoch(2)
            .with_topics(vec![
                WritableTxnMarkerTopic::default()
                    .with_name(topic("events"))
                    .with_partition_indexes(vec![0, 1]),
                WritableTxnMarkerTopic::default()
                    .with_name(topic("__consumer_offsets"))
                    .with_partition_indexes(vec![17]),
            ]),
        WritableTxnMarker::default()
            .with_producer_id(km::ProducerId(PRODUCER_ID + 1))
            .with_producer_epoch(0)
            .with_transaction_result(false)
            .with_coordinator_epoch(2)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(topic("orders"))
                .with_partition_indexes(vec![3])]),
    ])
}

/// TxnOffsetCommit as each version can carry it: `leader_epoch` is written from v2 (older
/// versions drop it), `group_metadata` (the consumer group generation and member, KIP-447) needs
/// v3.
fn txn_offset_commit(leader_epoch: bool, group_metadata: bool) -> km::TxnOffsetCommitRequest {
    use km::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let partition = |index, offset| {
        let p = TxnOffsetCommitRequestPartition::default()
            .with_partition_index(index)
            .with_committed_offset(offset)
            .with_committed_metadata(Some(s("")));
        if leader_epoch {
            p.with_committed_leader_epoch(5)
        } else {
            p
        }
    };
    let r = km::TxnOffsetCommitRequest::default()
        .with_transactional_id(txn_id("app-txn-1"))
        .with_group_id(km::GroupId(s("group-1")))
        .with_producer_id(km::ProducerId(PRODUCER_ID))
        .with_producer_epoch(PRODUCER_EPOCH)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(topic("events"))
            .with_partitions(vec![partition(0, 118), partition(1, 42)])]);
    if group_metadata {
        r.with_generation_id(4)
            .with_member_id(s("rdkafka-1234"))
            .with_group_instance_id(Some(s("static-1")))
    } else {
        r
    }
}

fn describe_transactions() -> km::DescribeTransactionsRequest {
    km::DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![txn_id("app-txn-1"), txn_id("app-txn-2")])
}

/// ListTransactions with the filters `version` can carry: states and producer ids (v0), a
/// minimum duration (v1), a transactional id pattern (v2).
fn list_transactions(version: i16) -> km::ListTransactionsRequest {
    let mut r = km::ListTransactionsRequest::default()
        .with_state_filters(vec![s("Ongoing"), s("PrepareCommit"), s("PrepareAbort")])
        .with_producer_id_filters(vec![km::ProducerId(PRODUCER_ID)]);
    if version >= 1 {
        r = r.with_duration_filter(60_000);
    }
    if version >= 2 {
        r = r.with_transactional_id_pattern(Some(s("app-txn-.*")));
    }
    r
}

fn with_tags<M>(mut m: M, tags: impl FnOnce(&mut M)) -> M {
    tags(&mut m);
    m
}

fn unknown_tag() -> std::collections::BTreeMap<i32, Bytes> {
    [(7, Bytes::from_static(b"\x00"))].into_iter().collect()
}

/// Appends the populated seeds of `key` (nothing for APIs without one).
pub fn push_populated(out: &mut Vec<Vec<u8>>, key: ApiKey) {
    match key {
        ApiKey::Produce => {
            let all = produce(batches::client_batches().into_iter());
            let one = produce(batches::client_batches().into_iter().take(1));
            push_all(out, key, &[all, one]);
        }
        ApiKey::Fetch => {
            let tagged = with_tags(fetch(true), |m| m.unknown_tagged_fields = unknown_tag());
            push_all(out, key, &[fetch(false), fetch(true), tagged]);
        }
        ApiKey::Metadata => push_all(out, key, &[metadata(false), metadata(true)]),
        ApiKey::ListOffsets => push_all(out, key, &[list_offsets()]),
        ApiKey::OffsetCommit => push_all(out, key, &[offset_commit()]),
        ApiKey::OffsetFetch => push_all(out, key, &[offset_fetch(), offset_fetch_groups()]),
        ApiKey::JoinGroup => push_all(out, key, &[join_group()]),
        ApiKey::SyncGroup => push_all(out, key, &[sync_group()]),
        ApiKey::CreateTopics => push_all(out, key, &[create_topics()]),
        ApiKey::DescribeConfigs => push_all(out, key, &[describe_configs()]),
        ApiKey::FindCoordinator => {
            push_all(out, key, &[find_coordinator(false), find_coordinator(true)])
        }
        ApiKey::AddPartitionsToTxn => {
            let tagged = with_tags(add_partitions_to_txn(true), |m| {
                m.transactions[0].unknown_tagged_fields = unknown_tag();
            });
            let bodies = [
                add_partitions_to_txn(false),
                add_partitions_to_txn(true),
                tagged,
            ];
            push_all(out, key, &bodies);
        }
        ApiKey::AddOffsetsToTxn => push_all(out, key, &[add_offsets_to_txn()]),
        ApiKey::EndTxn => push_all(out, key, &[end_txn(true), end_txn(false)]),
        ApiKey::WriteTxnMarkers => {
            let tagged = with_tags(write_txn_markers(), |m| {
                m.markers[0].unknown_tagged_fields = unknown_tag();
            });
            push_all(out, key, &[write_txn_markers(), tagged]);
        }
        ApiKey::TxnOffsetCommit => {
            let bodies = [
                txn_offset_commit(false, false),
                txn_offset_commit(true, false),
                txn_offset_commit(true, true),
            ];
            push_all(out, key, &bodies);
        }
        ApiKey::DescribeTransactions => push_all(out, key, &[describe_transactions()]),
        ApiKey::ListTransactions => {
            push_all(out, key, &[0, 1, 2].map(list_transactions));
        }
        _ => {}
    }
}
