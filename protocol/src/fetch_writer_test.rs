use super::*;
use crate::codec::encode_response;
use kafka_protocol::messages::fetch_response as kf;
use kafka_protocol::messages::{BrokerId, FetchResponse, TopicName};
use kafka_protocol::protocol::Decodable;

fn s(v: &'static str) -> StrBytes {
    StrBytes::from_static_str(v)
}

fn chunk(fill: u8, len: usize) -> Bytes {
    Bytes::from(vec![fill; len])
}

fn concat(chunks: &[Bytes]) -> Vec<u8> {
    chunks.iter().flat_map(|c| c.iter().copied()).collect()
}

/// A response exercising every field: several topics, record chunks, empty partitions, null and
/// populated aborted transactions, tagged fields set, set-to-default and unset, node endpoints.
fn rich() -> FetchResponseData {
    let id_a = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
    let id_b = uuid::Uuid::from_u128(42);
    FetchResponseData {
        throttle_time_ms: 17,
        error_code: 0,
        session_id: 991,
        topics: vec![
            FetchTopicData {
                topic: s("orders"),
                topic_id: id_a,
                partitions: vec![
                    FetchPartitionData {
                        partition_index: 0,
                        high_watermark: 1000,
                        last_stable_offset: 990,
                        log_start_offset: 5,
                        diverging_epoch: Some((3, 777)),
                        current_leader: Some((2, 9)),
                        snapshot_id: Some((100, 4)),
                        aborted_transactions: Some(vec![(7, 10), (8, 20)]),
                        preferred_read_replica: 2,
                        // > 127 bytes in total so the compact length is a 2-byte varint.
                        records: vec![chunk(1, 61), chunk(2, 100), Bytes::new(), chunk(3, 40)],
                        ..Default::default()
                    },
                    FetchPartitionData {
                        partition_index: 1,
                        error_code: 6,
                        high_watermark: -1,
                        last_stable_offset: -1,
                        log_start_offset: -1,
                        current_leader: Some((5, 11)),
                        aborted_transactions: None,
                        preferred_read_replica: -1,
                        records: vec![],
                        ..Default::default()
                    },
                ],
            },
            FetchTopicData {
                topic: s("empty-topic"),
                topic_id: id_b,
                partitions: vec![],
            },
            FetchTopicData {
                topic: s("t3"),
                topic_id: uuid::Uuid::nil(),
                partitions: vec![FetchPartitionData {
                    partition_index: 7,
                    high_watermark: 3,
                    last_stable_offset: 3,
                    log_start_offset: 0,
                    // Set to the default value: must be omitted like Kafka does.
                    diverging_epoch: Some((-1, -1)),
                    current_leader: Some((-1, -1)),
                    snapshot_id: Some((-1, -1)),
                    aborted_transactions: Some(vec![]),
                    preferred_read_replica: -1,
                    records: vec![chunk(9, 10)],
                    ..Default::default()
                }],
            },
        ],
        node_endpoints: vec![
            NodeEndpoint {
                node_id: 2,
                host: s("broker-2.local"),
                port: 9092,
                rack: Some(s("rack-a")),
            },
            NodeEndpoint {
                node_id: 5,
                host: s("b5"),
                port: 19092,
                rack: None,
            },
        ],
    }
}

/// The same response built with kafka-protocol, keeping only what `version` carries (it refuses
/// to encode fields a version lacks).
fn to_kafka_protocol(data: &FetchResponseData, version: i16) -> FetchResponse {
    let topics = data
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| kafka_partition(p, version))
                .collect();
            kf::FetchableTopicResponse::default()
                .with_topic(TopicName(t.topic.clone()))
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    let endpoints = data
        .node_endpoints
        .iter()
        .map(|n| {
            kf::NodeEndpoint::default()
                .with_node_id(BrokerId(n.node_id))
                .with_host(n.host.clone())
                .with_port(n.port)
                .with_rack(n.rack.clone())
        })
        .collect();
    FetchResponse::default()
        .with_throttle_time_ms(data.throttle_time_ms)
        .with_error_code(data.error_code)
        .with_session_id(if version >= 7 { data.session_id } else { 0 })
        .with_responses(topics)
        .with_node_endpoints(endpoints)
}

fn kafka_partition(p: &FetchPartitionData, version: i16) -> kf::PartitionData {
    let flexible = version >= 12;
    let mut out = kf::PartitionData::default()
        .with_partition_index(p.partition_index)
        .with_error_code(p.error_code)
        .with_high_watermark(p.high_watermark)
        .with_last_stable_offset(p.last_stable_offset)
        .with_log_start_offset(p.log_start_offset)
        .with_aborted_transactions(p.aborted_transactions.as_ref().map(|v| {
            v.iter()
                .map(|&(pid, first)| {
                    kf::AbortedTransaction::default()
                        .with_producer_id(pid.into())
                        .with_first_offset(first)
                })
                .collect()
        }))
        .with_preferred_read_replica(BrokerId(if version >= 11 {
            p.preferred_read_replica
        } else {
            -1
        }))
        .with_records(Some(Bytes::from(concat(&p.records))));
    if flexible {
        if let Some((epoch, end)) = p.diverging_epoch {
            out = out.with_diverging_epoch(
                kf::EpochEndOffset::default()
                    .with_epoch(epoch)
                    .with_end_offset(end),
            );
        }
        if let Some((id, epoch)) = p.current_leader {
            out = out.with_current_leader(
                kf::LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(id))
                    .with_leader_epoch(epoch),
            );
        }
        if let Some((end, epoch)) = p.snapshot_id {
            out = out.with_snapshot_id(
                kf::SnapshotId::default()
                    .with_end_offset(end)
                    .with_epoch(epoch),
            );
        }
    }
    out
}

fn assert_same_as_kafka_protocol(data: &FetchResponseData, version: i16) {
    let ours = encode_fetch_response(version, 0x0102_0304, data).unwrap();
    let theirs = encode_response(
        ApiKey::Fetch,
        version,
        0x0102_0304,
        &to_kafka_protocol(data, version),
    )
    .unwrap();
    let flat = concat(&ours);
    assert_eq!(flat, theirs.to_vec(), "fetch v{version} differs");
    let prefix = i32::from_be_bytes(flat[..4].try_into().unwrap());
    assert_eq!(frame_len(&ours), 4 + prefix as usize);
    assert!(ours.iter().all(|c| !c.is_empty()));
}

#[test]
fn byte_identical_to_kafka_protocol_for_every_version() {
    for version in MIN_VERSION..=MAX_VERSION {
        assert_same_as_kafka_protocol(&rich(), version);
        assert_same_as_kafka_protocol(&FetchResponseData::default(), version);
        let mut one_empty = rich();
        one_empty.topics.truncate(1);
        one_empty.topics[0].partitions.remove(0);
        one_empty.node_endpoints.clear();
        assert_same_as_kafka_protocol(&one_empty, version);
    }
}

#[test]
fn valid_versions_match_kafka_protocol() {
    let range = ApiKey::Fetch.valid_versions();
    assert_eq!((range.min, range.max), (MIN_VERSION, MAX_VERSION));
    for v in [-1, 0, 3, 19] {
        assert!(matches!(
            encode_fetch_response(v, 1, &rich()),
            Err(CodecError::UnsupportedVersion { api_key: 1, .. })
        ));
    }
}

#[test]
fn records_are_chained_not_copied() {
    let data = rich();
    for version in [4, 11, 12, 13, 16, 18] {
        let chunks = encode_fetch_response(version, 1, &data).unwrap();
        let originals: Vec<&Bytes> = data
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .flat_map(|p| &p.records)
            .filter(|c| !c.is_empty())
            .collect();
        for original in originals {
            assert!(
                chunks
                    .iter()
                    .any(|c| c.as_ptr() == original.as_ptr() && c.len() == original.len()),
                "v{version}: a record chunk was copied"
            );
        }
        // chunk 0 holds the size prefix, header and metadata before the first records.
        let prefix = i32::from_be_bytes(chunks[0][..4].try_into().unwrap());
        assert_eq!(frame_len(&chunks), 4 + prefix as usize);
        assert_eq!(&chunks[0][4..8], &1i32.to_be_bytes());
        // metadata chunks are slices of one buffer: 3 non-empty record chunks in partition 0,
        // then 1 in topic t3, interleaved with metadata; flexible versions end with tags.
        let trailing = usize::from(version >= 12);
        assert_eq!(chunks.len(), 1 + 3 + 1 + 1 + trailing);
    }
}

#[test]
fn empty_records_decode_as_empty_not_null() {
    for version in MIN_VERSION..=MAX_VERSION {
        let flat = Bytes::from(concat(&encode_fetch_response(version, 1, &rich()).unwrap()));
        let header_len = if version >= 12 { 9 } else { 8 };
        let mut body = flat.slice(header_len..);
        let decoded = FetchResponse::decode(&mut body, version).unwrap();
        assert!(body.is_empty());
        let p1 = &decoded.responses[0].partitions[1];
        assert_eq!(p1.records, Some(Bytes::new()), "v{version}");
        assert_eq!(p1.aborted_transactions, None);
        let p0 = &decoded.responses[0].partitions[0];
        assert_eq!(p0.records.as_ref().map(Bytes::len), Some(201));
        if version >= 12 {
            assert_eq!(p0.diverging_epoch.epoch, 3);
            assert_eq!(p0.current_leader.leader_epoch, 9);
            assert_eq!(p0.snapshot_id.end_offset, 100);
            assert!(decoded.responses[2].partitions[0]
                .unknown_tagged_fields
                .is_empty());
        }
        if version >= 16 {
            assert_eq!(decoded.node_endpoints.len(), 2);
            assert_eq!(decoded.node_endpoints[1].rack, None);
        } else {
            assert!(decoded.node_endpoints.is_empty());
        }
        if version >= 13 {
            assert_eq!(decoded.responses[1].topic_id, uuid::Uuid::from_u128(42));
        } else {
            assert_eq!(decoded.responses[1].topic.0.as_str(), "empty-topic");
        }
    }
}

#[test]
fn default_tagged_fields_are_omitted_like_kafka() {
    // v12 partition with every tagged field unset or at its default: 1 byte of tag count (0).
    let p = FetchPartitionData {
        diverging_epoch: Some((-1, -1)),
        current_leader: None,
        snapshot_id: Some((-1, -1)),
        aborted_transactions: Some(vec![]),
        preferred_read_replica: -1,
        ..Default::default()
    };
    let data = FetchResponseData {
        topics: vec![FetchTopicData {
            topic: s("t"),
            topic_id: uuid::Uuid::nil(),
            partitions: vec![p],
        }],
        ..Default::default()
    };
    let flat = concat(&encode_fetch_response(12, 7, &data).unwrap());
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0, 0, 0, 0][..],        // size (patched below)
        &[0, 0, 0, 7], &[0],      // correlation id, header tags
        &[0, 0, 0, 0],            // throttle
        &[0, 0], &[0, 0, 0, 0],   // error code, session id
        &[2, 2, b't'],            // 1 topic, name "t"
        &[2],                     // 1 partition
        &[0, 0, 0, 0], &[0, 0],   // index, error
        &[0; 8], &[0; 8], &[0; 8],// hw, lso, log start
        &[1],                     // aborted: empty compact array
        &[0xff, 0xff, 0xff, 0xff],// preferred read replica -1
        &[1],                     // empty records (length 0 + 1)
        &[0],                     // partition tags: none
        &[0],                     // topic tags
        &[0],                     // top-level tags
    ]
    .concat();
    let mut expected = expected;
    let size = (expected.len() - 4) as i32;
    expected[..4].copy_from_slice(&size.to_be_bytes());
    assert_eq!(flat, expected);
}

#[test]
fn oversized_names_are_errors_not_panics() {
    let long = StrBytes::from_string("x".repeat(40_000));
    let data = FetchResponseData {
        topics: vec![FetchTopicData {
            topic: long,
            topic_id: uuid::Uuid::nil(),
            partitions: vec![],
        }],
        ..Default::default()
    };
    assert!(matches!(
        encode_fetch_response(11, 1, &data),
        Err(CodecError::Malformed { api_key: 1, .. })
    ));
    // Flexible versions have no i16 limit; v13+ do not carry the name at all.
    assert!(encode_fetch_response(12, 1, &data).is_ok());
    assert!(encode_fetch_response(13, 1, &data).is_ok());
}
