use super::*;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    fetch_request, join_group_request, metadata_request, metadata_response, produce_request,
    produce_response, ApiVersionsResponse, BrokerId, GroupId, MetadataResponse, ProduceResponse,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::{HeaderVersion, Message};

fn s(v: &'static str) -> StrBytes {
    StrBytes::from_static_str(v)
}

/// A request frame (no size prefix) as a client would send it.
fn request_frame<M: Encodable>(key: ApiKey, version: i16, corr: i32, body: &M) -> Bytes {
    let header = KpRequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(corr)
        .with_client_id(Some(s("test-client")));
    let mut out = BytesMut::new();
    header
        .encode(&mut out, key.request_header_version(version))
        .unwrap();
    body.encode(&mut out, version).unwrap();
    out.freeze()
}

fn round_trip<M: Encodable>(key: ApiKey, version: i16, body: &M, expected: Request) {
    let frame = request_frame(key, version, 77 + version as i32, body);
    let (header, request) =
        decode_request(frame).unwrap_or_else(|e| panic!("{key:?} v{version} does not decode: {e}"));
    assert_eq!(header.api_key, key as i16);
    assert_eq!(header.api_version, version);
    assert_eq!(header.correlation_id, 77 + version as i32);
    assert_eq!(header.client_id.as_deref(), Some("test-client"));
    assert_eq!(request.api_key(), key);
    assert_eq!(request, expected, "{key:?} v{version}");
}

fn versions(key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let r = Request::supported_versions(key).unwrap_or_else(|| key.valid_versions());
    r.min..=r.max
}

#[test]
fn supported_versions_are_the_decodable_ranges() {
    for &key in Request::SERVED_API_KEYS {
        let ours = Request::supported_versions(key).unwrap();
        let table = key.valid_versions();
        assert_eq!(ours.min, table.min, "{key:?}");
        // kafka-protocol's table lists unstable versions it did not generate.
        let wider = matches!(
            key,
            ApiKey::OffsetCommit | ApiKey::OffsetFetch | ApiKey::InitProducerId
        );
        assert_eq!(ours.max + i16::from(wider), table.max, "{key:?}");
    }
    // Known to kafka-protocol but not served.
    assert!(Request::supported_versions(ApiKey::DescribeDelegationToken).is_none());
    assert!(!Request::SERVED_API_KEYS.contains(&ApiKey::DescribeDelegationToken));
    // One past the decodable range is UNSUPPORTED_VERSION, not a malformed frame.
    let frame = request_frame(
        ApiKey::OffsetCommit,
        9,
        1,
        &km::OffsetCommitRequest::default(),
    );
    let mut v10 = BytesMut::from(&frame[..]);
    v10[2..4].copy_from_slice(&10i16.to_be_bytes());
    assert!(matches!(
        decode_request(v10.freeze()),
        Err(CodecError::UnsupportedVersion {
            api_key: 8,
            version: 10
        })
    ));
}

macro_rules! default_round_trips {
    ($($variant:ident => $ty:ident),* $(,)?) => {
        $(
            for v in versions(ApiKey::$variant) {
                let body = km::$ty::default();
                round_trip(ApiKey::$variant, v, &body, Request::$variant(Box::new(body.clone())));
            }
        )*
    };
}

#[test]
fn every_served_api_round_trips_at_every_version() {
    default_round_trips! {
        ApiVersions => ApiVersionsRequest, Metadata => MetadataRequest,
        Produce => ProduceRequest, Fetch => FetchRequest, ListOffsets => ListOffsetsRequest,
        CreateTopics => CreateTopicsRequest, DeleteTopics => DeleteTopicsRequest,
        CreatePartitions => CreatePartitionsRequest, DescribeConfigs => DescribeConfigsRequest,
        AlterConfigs => AlterConfigsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        DescribeCluster => DescribeClusterRequest,
        DescribeTopicPartitions => DescribeTopicPartitionsRequest,
        DeleteRecords => DeleteRecordsRequest, InitProducerId => InitProducerIdRequest,
        DescribeProducers => DescribeProducersRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        DescribeQuorum => DescribeQuorumRequest,
        ElectLeaders => ElectLeadersRequest, UpdateFeatures => UpdateFeaturesRequest,
        AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
        ListPartitionReassignments => ListPartitionReassignmentsRequest,
        DescribeLogDirs => DescribeLogDirsRequest, FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest, SyncGroup => SyncGroupRequest,
        Heartbeat => HeartbeatRequest, LeaveGroup => LeaveGroupRequest,
        OffsetCommit => OffsetCommitRequest, OffsetFetch => OffsetFetchRequest,
        ListGroups => ListGroupsRequest, DescribeGroups => DescribeGroupsRequest,
        DeleteGroups => DeleteGroupsRequest, OffsetDelete => OffsetDeleteRequest,
        SaslHandshake => SaslHandshakeRequest, SaslAuthenticate => SaslAuthenticateRequest,
        DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
        AlterUserScramCredentials => AlterUserScramCredentialsRequest,
        CreateAcls => CreateAclsRequest, DescribeAcls => DescribeAclsRequest,
        DeleteAcls => DeleteAclsRequest, DescribeClientQuotas => DescribeClientQuotasRequest,
        AlterClientQuotas => AlterClientQuotasRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest,
        AddOffsetsToTxn => AddOffsetsToTxnRequest, EndTxn => EndTxnRequest,
        WriteTxnMarkers => WriteTxnMarkersRequest, TxnOffsetCommit => TxnOffsetCommitRequest,
        DescribeTransactions => DescribeTransactionsRequest,
        ListTransactions => ListTransactionsRequest,
    }
    assert_eq!(Request::SERVED_API_KEYS.len(), 50);
}

fn produce(version: i16, records: &Bytes) -> km::ProduceRequest {
    let topic = |name: &'static str, id: u128| {
        let t = produce_request::TopicProduceData::default().with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records.clone())),
            produce_request::PartitionProduceData::default()
                .with_index(3)
                .with_records(None),
        ]);
        if version >= 13 {
            t.with_topic_id(uuid::Uuid::from_u128(id))
        } else {
            t.with_name(TopicName(s(name)))
        }
    };
    km::ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(s("txn-1"))))
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic("a", 1), topic("bb", 2)])
}

fn fetch(version: i16) -> km::FetchRequest {
    let mut partition = fetch_request::FetchPartition::default()
        .with_partition(2)
        .with_fetch_offset(1234)
        .with_partition_max_bytes(1 << 20);
    if version >= 9 {
        partition = partition.with_current_leader_epoch(4);
    }
    if version >= 12 {
        partition = partition.with_last_fetched_epoch(3);
    }
    let topic = fetch_request::FetchTopic::default().with_partitions(vec![partition]);
    let topic = if version >= 13 {
        topic.with_topic_id(uuid::Uuid::from_u128(9))
    } else {
        topic.with_topic(TopicName(s("orders")))
    };
    let mut req = km::FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(i32::MAX) // larger than the frame: exercises the guard's replay path
        .with_isolation_level(1)
        .with_topics(vec![topic]);
    if version >= 7 {
        req = req.with_session_id(5).with_session_epoch(1);
    }
    if version >= 11 {
        req = req.with_rack_id(s("rack-a"));
    }
    req
}

#[test]
fn populated_requests_round_trip_at_every_version() {
    let records = Bytes::from(vec![0xab; 300]);
    for v in versions(ApiKey::Produce) {
        let body = produce(v, &records);
        round_trip(
            ApiKey::Produce,
            v,
            &body,
            Request::Produce(Box::new(body.clone())),
        );
    }
    for v in versions(ApiKey::Fetch) {
        let body = fetch(v);
        round_trip(
            ApiKey::Fetch,
            v,
            &body,
            Request::Fetch(Box::new(body.clone())),
        );
    }
    for v in versions(ApiKey::Metadata) {
        let topic = metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(s("orders"))));
        let mut body = km::MetadataRequest::default().with_topics(Some(vec![topic]));
        if v >= 4 {
            body = body.with_allow_auto_topic_creation(false);
        }
        round_trip(
            ApiKey::Metadata,
            v,
            &body,
            Request::Metadata(Box::new(body.clone())),
        );
    }
    for v in versions(ApiKey::ApiVersions) {
        let mut body = km::ApiVersionsRequest::default();
        if v >= 3 {
            body = body
                .with_client_software_name(s("librdkafka"))
                .with_client_software_version(s("2.0.2"));
        }
        round_trip(
            ApiKey::ApiVersions,
            v,
            &body,
            Request::ApiVersions(Box::new(body.clone())),
        );
    }
    for v in versions(ApiKey::JoinGroup) {
        let protocol = join_group_request::JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"\x00\x01meta"));
        let mut body = km::JoinGroupRequest::default()
            .with_group_id(GroupId(s("g1")))
            .with_session_timeout_ms(45_000)
            .with_member_id(s("m-1"))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![protocol]);
        if v >= 1 {
            body = body.with_rebalance_timeout_ms(300_000);
        }
        if v >= 5 {
            body = body.with_group_instance_id(Some(s("static-1")));
        }
        if v >= 8 {
            body = body.with_reason(Some(s("joining")));
        }
        round_trip(
            ApiKey::JoinGroup,
            v,
            &body,
            Request::JoinGroup(Box::new(body.clone())),
        );
    }
}

#[test]
fn produce_records_are_not_copied() {
    let records = Bytes::from(vec![0xcd; 4096]);
    for v in versions(ApiKey::Produce) {
        // Odd versions carry a timeout larger than the frame, which takes the guard's replay
        // path: records must not be copied there either.
        let mut body = produce(v, &records);
        if v % 2 == 1 {
            body.timeout_ms = i32::MAX;
        }
        let frame = request_frame(ApiKey::Produce, v, 1, &body);
        let range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
        let (_, request) = decode_request(frame.clone()).unwrap();
        let Request::Produce(p) = request else {
            panic!("not a produce request")
        };
        let got = p.topic_data[1].partition_data[0].records.clone().unwrap();
        assert_eq!(got, records);
        assert!(
            range.contains(&(got.as_ptr() as usize)),
            "v{v}: records were copied"
        );
        assert!(range.contains(&(got.as_ptr() as usize + got.len() - 1)));
    }
}

#[test]
fn peek_header_reads_eight_bytes_only() {
    assert!(matches!(
        peek_header(&[0, 1, 0]),
        Err(CodecError::Truncated)
    ));
    let frame = [0, 3, 0, 12, 0, 0, 1, 2, 0xff, 0xff, 0xff];
    assert_eq!(peek_header(&frame).unwrap(), (3, 12, 258));
}

#[test]
fn unsupported_and_unknown_requests() {
    let frame = |key: i16, version: i16| {
        let mut b = BytesMut::new();
        b.put_i16(key);
        b.put_i16(version);
        b.put_i32(9);
        b.put_i16(-1);
        b.put_slice(&[0; 16]);
        b.freeze()
    };
    let unsupported = |key: i16, version: i16| {
        matches!(decode_request(frame(key, version)),
            Err(CodecError::UnsupportedVersion { api_key, version: v }) if api_key == key && v == version)
    };
    assert!(unsupported(18, 5)); // ApiVersions newer than we know
    assert!(unsupported(18, -1));
    assert!(unsupported(0, 2)); // Produce v0-2
    assert!(unsupported(0, 14));
    assert!(unsupported(1, 3)); // Fetch v0-3
    assert!(unsupported(3, 14));
    assert!(matches!(
        decode_request(frame(999, 0)),
        Err(CodecError::UnknownApiKey(999))
    ));
    assert!(matches!(
        decode_request(frame(-1, 0)),
        Err(CodecError::UnknownApiKey(-1))
    ));
    // Known to kafka-protocol but not served (DescribeDelegationToken).
    assert!(matches!(
        decode_request(frame(41, 3)),
        Err(CodecError::UnknownApiKey(41))
    ));
    assert!(matches!(
        decode_request(Bytes::from_static(&[0, 18])),
        Err(CodecError::Truncated)
    ));
}

#[test]
fn trailing_bytes_are_ignored_as_kafka_does() {
    let mut frame = BytesMut::from(
        &request_frame(ApiKey::Heartbeat, 4, 1, &km::HeartbeatRequest::default())[..],
    );
    frame.put_u8(0);
    let (header, req) = decode_request(frame.freeze()).unwrap();
    assert_eq!(header.correlation_id, 1);
    assert_eq!(req.api_key(), ApiKey::Heartbeat);
}

#[test]
fn librdkafka_all_topics_metadata_v13_decodes() {
    // Captured from confluent-kafka 2.16 (librdkafka 2.16) list_topics(): a null topic array,
    // allow_auto_topic_creation=false, include_topic_authorized_operations=false, no tags, then
    // three more bytes that Kafka ignores.
    let frame = hex("0003000d00000003000772646b61666b610000000000010000");
    let (header, req) = decode_request(Bytes::from(frame)).unwrap();
    assert_eq!(header.correlation_id, 3);
    match req {
        Request::Metadata(m) => assert!(m.topics.is_none()),
        other => panic!("decoded as {:?}", other.api_key()),
    }
}

/// Real frames of many kinds, used for truncation and mutation fuzzing.
fn corpus() -> Vec<Bytes> {
    let records = Bytes::from(vec![7u8; 70]);
    let mut frames = Vec::new();
    for v in versions(ApiKey::Produce) {
        frames.push(request_frame(ApiKey::Produce, v, 3, &produce(v, &records)));
    }
    for v in versions(ApiKey::Fetch) {
        frames.push(request_frame(ApiKey::Fetch, v, 3, &fetch(v)));
    }
    for v in versions(ApiKey::Metadata) {
        let topic =
            metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s("t"))));
        let body = km::MetadataRequest::default().with_topics(Some(vec![topic]));
        frames.push(request_frame(ApiKey::Metadata, v, 3, &body));
    }
    for v in versions(ApiKey::ApiVersions) {
        frames.push(request_frame(
            ApiKey::ApiVersions,
            v,
            3,
            &km::ApiVersionsRequest::default(),
        ));
    }
    frames
}

#[test]
fn every_truncation_of_real_frames_is_an_error() {
    for frame in corpus() {
        for len in 0..frame.len() {
            let cut = frame.slice(..len);
            assert!(decode_request(cut).is_err(), "a {len}-byte prefix decoded");
        }
        assert!(decode_request(frame).is_ok());
    }
}

/// xorshift64*: deterministic, dependency-free noise for the fuzz tests.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn garbage_and_mutated_frames_never_panic_or_abort() {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let keys = Request::SERVED_API_KEYS;
    // Random bodies behind a valid header, for every served api and version.
    for _ in 0..20_000 {
        let key = keys[noise.below(keys.len())];
        let range = key.valid_versions();
        let version = range.min + noise.below((range.max - range.min + 1) as usize) as i16;
        let mut b = BytesMut::new();
        b.put_i16(key as i16);
        b.put_i16(version);
        b.put_i32(1);
        let len = noise.below(64);
        for _ in 0..len {
            // Bias towards 0xff / 0x7f / 0x00 so huge counts and lengths come up often.
            let byte = match noise.below(4) {
                0 => 0xff,
                1 => 0x7f,
                2 => 0,
                _ => noise.next() as u8,
            };
            b.put_u8(byte);
        }
        let _ = decode_request(b.freeze());
    }
    // Byte flips in real frames.
    let frames = corpus();
    for _ in 0..20_000 {
        let frame = &frames[noise.below(frames.len())];
        let mut m = BytesMut::from(&frame[..]);
        for _ in 0..1 + noise.below(3) {
            let at = noise.below(m.len());
            m[at] = match noise.below(3) {
                0 => 0xff,
                1 => 0x7f,
                _ => noise.next() as u8,
            };
        }
        let _ = decode_request(m.freeze());
    }
}

#[test]
fn huge_array_counts_are_refused_without_allocating() {
    // Metadata v0 (non-flexible): topics count 0x7fffffff in a 14-byte frame. Without the guard
    // kafka-protocol reserves ~150 GB and the process aborts.
    let mut b = BytesMut::new();
    b.put_i16(3);
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(-1);
    b.put_i32(i32::MAX);
    assert!(matches!(
        decode_request(b.freeze()),
        Err(CodecError::Truncated | CodecError::Malformed { api_key: 3, .. })
    ));
    // Metadata v12 (flexible): compact count 0xffffffff.
    let mut b = BytesMut::new();
    b.put_i16(3);
    b.put_i16(12);
    b.put_i32(1);
    b.put_i16(-1);
    b.put_u8(0); // header tags
    b.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(matches!(
        decode_request(b.freeze()),
        Err(CodecError::Malformed { api_key: 3, .. })
    ));
    // Produce v3: topic count huge, behind an int field (timeout) that is also large.
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i16(3);
    b.put_i32(1);
    b.put_i16(-1);
    b.put_i16(-1); // transactional id
    b.put_i16(1); // acks
    b.put_i32(i32::MAX); // timeout
    b.put_i32(i32::MAX); // topics
    assert!(decode_request(b.freeze()).is_err());
}

#[test]
fn split_request_header_handles_versions_we_cannot_decode() {
    let body = km::ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000);
    let frame = request_frame(ApiKey::Produce, 3, 5, &body);
    let (header, rest) = split_request_header(&frame).unwrap();
    assert_eq!(
        (header.api_key, header.api_version, header.correlation_id),
        (0, 3, 5)
    );
    assert_eq!(header.client_id.as_deref(), Some("test-client"));
    // Strip the v3 transactional id (null: 2 bytes) and claim v2.
    let mut v2 = BytesMut::from(&frame[..]);
    v2[2..4].copy_from_slice(&2i16.to_be_bytes());
    let (header, rest2) = split_request_header(&v2.freeze()).unwrap();
    assert_eq!(header.api_version, 2);
    assert_eq!(rest2, rest);
}

// ---- responses ----

fn response_body(frame: &Bytes, key: ApiKey, version: i16, corr: i32) -> Bytes {
    let size = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(size + 4, frame.len());
    assert_eq!(&frame[4..8], &corr.to_be_bytes());
    let flexible = key != ApiKey::ApiVersions && key.response_header_version(version) == 1;
    if flexible {
        assert_eq!(frame[8], 0, "response header tagged fields");
        frame.slice(9..)
    } else {
        frame.slice(8..)
    }
}

fn response_round_trip<M>(key: ApiKey, body: &M, versions: std::ops::RangeInclusive<i16>)
where
    M: Encodable + Decodable + PartialEq + std::fmt::Debug + Message + HeaderVersion,
{
    for v in versions {
        let frame = encode_response(key, v, 4242, body).unwrap();
        let mut rest = response_body(&frame, key, v, 4242);
        let decoded = M::decode(&mut rest, v).unwrap();
        assert!(rest.is_empty());
        assert_eq!(&decoded, body, "{key:?} v{v}");
    }
}

#[test]
fn responses_round_trip_through_kafka_protocol() {
    macro_rules! defaults {
        ($($variant:ident => $ty:ident),* $(,)?) => {$(
            response_round_trip(ApiKey::$variant, &km::$ty::default(), versions(ApiKey::$variant));
        )*};
    }
    defaults! {
        ApiVersions => ApiVersionsResponse, Metadata => MetadataResponse,
        Produce => ProduceResponse, ListOffsets => ListOffsetsResponse,
        CreateTopics => CreateTopicsResponse, FindCoordinator => FindCoordinatorResponse,
        JoinGroup => JoinGroupResponse, SyncGroup => SyncGroupResponse,
        Heartbeat => HeartbeatResponse, OffsetCommit => OffsetCommitResponse,
        OffsetFetch => OffsetFetchResponse, DescribeConfigs => DescribeConfigsResponse,
        InitProducerId => InitProducerIdResponse, DescribeCluster => DescribeClusterResponse,
    }
    let api = ApiVersionsResponse::default().with_api_keys(vec![
        ApiVersion::default()
            .with_api_key(0)
            .with_min_version(0)
            .with_max_version(11),
        ApiVersion::default()
            .with_api_key(18)
            .with_min_version(0)
            .with_max_version(4),
    ]);
    response_round_trip(ApiKey::ApiVersions, &api, versions(ApiKey::ApiVersions));
    response_round_trip(ApiKey::Metadata, &small_metadata(), 7..=13);
    let partition = produce_response::PartitionProduceResponse::default()
        .with_index(1)
        .with_base_offset(100);
    let produce = ProduceResponse::default().with_responses(vec![
        produce_response::TopicProduceResponse::default()
            .with_name(TopicName(s("t")))
            .with_partition_responses(vec![partition]),
    ]);
    response_round_trip(ApiKey::Produce, &produce, 3..=12);
}

#[test]
fn api_versions_response_header_is_always_v0() {
    for v in versions(ApiKey::ApiVersions) {
        let frame =
            encode_response(ApiKey::ApiVersions, v, 1, &ApiVersionsResponse::default()).unwrap();
        assert_eq!(
            frame.len(),
            4 + 4 + ApiVersionsResponse::default().compute_size(v).unwrap()
        );
    }
}

/// protocol.md §0 item 8: librdkafka < 2.2 misparses an ApiVersions v3 response carrying
/// default-valued top-level tagged fields. kafka-protocol 0.18 omits them; pin the exact bytes.
#[test]
fn api_versions_v3_response_has_no_default_tagged_fields() {
    let body = ApiVersionsResponse::default().with_api_keys(vec![ApiVersion::default()
        .with_api_key(18)
        .with_min_version(0)
        .with_max_version(4)]);
    assert_eq!(body.finalized_features_epoch, -1);
    assert!(!body.zk_migration_ready);
    let frame = encode_response(ApiKey::ApiVersions, 3, 0x11, &body).unwrap();
    #[rustfmt::skip]
    let expected: &[u8] = &[
        0, 0, 0, 19,        // size
        0, 0, 0, 0x11,      // correlation id (header v0: no tagged fields)
        0, 0,               // error code
        2,                  // compact array of 1
        0, 18, 0, 0, 0, 4,  // ApiVersions 0..4
        0,                  // entry tagged fields
        0, 0, 0, 0,         // throttle
        0,                  // top-level tagged fields: NONE
    ];
    assert_eq!(&frame[..], expected);
    // Non-default values do appear (tag 1 = finalized features epoch).
    let with_epoch = body.clone().with_finalized_features_epoch(5);
    let frame = encode_response(ApiKey::ApiVersions, 3, 0x11, &with_epoch).unwrap();
    assert_eq!(&frame[frame.len() - 11..frame.len() - 8], &[1, 1, 8]);
}

fn small_metadata() -> MetadataResponse {
    let partition = metadata_response::MetadataResponsePartition::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(1))
        .with_leader_epoch(2)
        .with_replica_nodes(vec![BrokerId(1)])
        .with_isr_nodes(vec![BrokerId(1)]);
    MetadataResponse::default()
        .with_brokers(vec![metadata_response::MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(s("h"))
            .with_port(9092)])
        .with_cluster_id(Some(s("c")))
        .with_controller_id(BrokerId(1))
        .with_topics(vec![metadata_response::MetadataResponseTopic::default()
            .with_name(Some(TopicName(s("t"))))
            .with_partitions(vec![partition])])
}

/// Metadata v12: every struct ends with an empty tagged-field section (0), nothing else.
#[test]
fn metadata_v12_response_exact_bytes() {
    let frame = encode_response(ApiKey::Metadata, 12, 2, &small_metadata()).unwrap();
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[0, 0, 0, 2, 0][..],                 // correlation id, header tags
        &[0, 0, 0, 0],                        // throttle
        &[2, 0, 0, 0, 1, 2, b'h', 0, 0, 0x23, 0x84, 0, 0], // broker 1 "h":9092 rack null, tags
        &[2, b'c'],                           // cluster id "c"
        &[0, 0, 0, 1],                        // controller
        &[2, 0, 0, 2, b't'], &[0; 16], &[0],  // 1 topic: error, "t", zero id, not internal
        &[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2], // 1 partition: error, index, leader, epoch
        &[2, 0, 0, 0, 1], &[2, 0, 0, 0, 1], &[1], &[0], // replicas, isr, offline, tags
        &[0x80, 0, 0, 0], &[0],               // topic authorized ops (INT32_MIN), tags
        &[0],                                 // top-level tags
    ]
    .concat();
    assert_eq!(&frame[4..], &expected[..]);
}

#[test]
fn encode_errors_are_reported_not_panics() {
    // session_id cannot be carried by Fetch v4; kafka-protocol refuses.
    let bad = km::FetchResponse::default().with_session_id(3);
    assert!(matches!(
        encode_response(ApiKey::Fetch, 4, 1, &bad),
        Err(CodecError::Malformed {
            api_key: 1,
            version: 4,
            ..
        })
    ));
    assert!(encode_response(ApiKey::Fetch, 99, 1, &km::FetchResponse::default()).is_err());
}

#[test]
fn api_versions_fallback_is_a_v0_response_with_error_35() {
    let apis = [(0, 0, 11), (1, 4, 12), (18, 0, 4)];
    let frame = encode_api_versions_fallback(7, &apis);
    let mut body = response_body(&frame, ApiKey::ApiVersions, 0, 7);
    let decoded = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert!(body.is_empty());
    assert_eq!(decoded.error_code, 35);
    let got: Vec<_> = decoded
        .api_keys
        .iter()
        .map(|a| (a.api_key, a.min_version, a.max_version))
        .collect();
    assert_eq!(got, apis);
}

// ---- Produce v0-2 ----

/// A Produce v0-2 body is the v3 body without the transactional id (null: 2 bytes).
fn produce_v0_2_body(records: &Bytes) -> Bytes {
    let mut body = BytesMut::new();
    let mut req = produce(3, records);
    req.transactional_id = None;
    req.encode(&mut body, 3).unwrap();
    body.freeze().slice(2..)
}

#[test]
fn produce_v0_2_are_answered_with_unsupported_version() {
    let body = produce_v0_2_body(&Bytes::from(vec![1u8; 50]));
    for version in 0..=2 {
        let frame = encode_produce_v0_2_unsupported(version, 31, &body).unwrap();
        let mut rest = response_body(&frame, ApiKey::Produce, version, 31);
        let mut seen = Vec::new();
        let n_topics = rest.get_i32();
        for _ in 0..n_topics {
            let len = rest.get_i16() as usize;
            let name = rest.split_to(len);
            for _ in 0..rest.get_i32() {
                let index = rest.get_i32();
                assert_eq!(rest.get_i16(), 35);
                assert_eq!(rest.get_i64(), -1);
                if version >= 2 {
                    assert_eq!(rest.get_i64(), -1);
                }
                seen.push((name.clone(), index));
            }
        }
        if version >= 1 {
            assert_eq!(rest.get_i32(), 0);
        }
        assert!(rest.is_empty());
        let names: Vec<_> = seen.iter().map(|(n, i)| (&n[..], *i)).collect();
        assert_eq!(names, [(&b"a"[..], 0), (b"a", 3), (b"bb", 0), (b"bb", 3)]);
    }
    // v2 has exactly the v3 response layout: compare with kafka-protocol.
    let parts = |name: &'static str| {
        produce_response::TopicProduceResponse::default()
            .with_name(TopicName(s(name)))
            .with_partition_responses(
                [0, 3]
                    .map(|i| {
                        produce_response::PartitionProduceResponse::default()
                            .with_index(i)
                            .with_error_code(35)
                            .with_base_offset(-1)
                    })
                    .to_vec(),
            )
    };
    let v3 = ProduceResponse::default().with_responses(vec![parts("a"), parts("bb")]);
    let theirs = encode_response(ApiKey::Produce, 3, 31, &v3).unwrap();
    assert_eq!(
        encode_produce_v0_2_unsupported(2, 31, &body).unwrap(),
        theirs
    );
}

#[test]
fn produce_v0_2_bad_bodies_are_errors() {
    let body = produce_v0_2_body(&Bytes::from(vec![1u8; 20]));
    for len in 0..body.len() {
        assert!(
            encode_produce_v0_2_unsupported(1, 1, &body[..len]).is_err(),
            "prefix {len}"
        );
    }
    let mut trailing = body.to_vec();
    trailing.push(0);
    assert!(encode_produce_v0_2_unsupported(1, 1, &trailing).is_err());
    let mut huge = body.to_vec();
    huge[6..10].copy_from_slice(&i32::MAX.to_be_bytes()); // topic count
    assert!(encode_produce_v0_2_unsupported(0, 1, &huge).is_err());
    assert!(encode_produce_v0_2_unsupported(3, 1, &body).is_err());
    let mut noise = Noise(12345);
    for _ in 0..5000 {
        let mut m = body.to_vec();
        let at = noise.below(m.len());
        m[at] = noise.next() as u8;
        let _ = encode_produce_v0_2_unsupported(2, 1, &m);
    }
}

#[test]
fn many_large_int_fields_take_the_replay_path_and_decode_exactly() {
    let partitions = (0..5_000)
        .map(|i| {
            fetch_request::FetchPartition::default()
                .with_partition(i)
                .with_fetch_offset(i64::from(i))
                .with_partition_max_bytes(i32::MAX - i)
        })
        .collect();
    let body = km::FetchRequest::default()
        .with_max_bytes(i32::MAX)
        .with_max_wait_ms(i32::MAX)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(s("t")))
            .with_partitions(partitions)]);
    for v in [4, 12] {
        round_trip(
            ApiKey::Fetch,
            v,
            &body,
            Request::Fetch(Box::new(body.clone())),
        );
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn decode_message_guards_array_counts_and_reads_good_messages() {
    use kafka_protocol::messages::leader_change_message::Voter;
    use kafka_protocol::messages::LeaderChangeMessage;
    let msg = LeaderChangeMessage::default()
        .with_leader_id(BrokerId(3))
        .with_voters(vec![Voter::default().with_voter_id(3)]);
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, 0).unwrap();
    let decoded: LeaderChangeMessage = decode_message(buf.freeze(), 0).unwrap();
    assert_eq!(decoded, msg);
    // A compact array count of 2^32 - 1 with six bytes behind it: an error, not an abort.
    let bad = Bytes::from_static(&[
        0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 1, 0, 0,
    ]);
    assert!(matches!(
        decode_message::<LeaderChangeMessage>(bad, 0),
        Err(CodecError::Malformed { api_key: -1, .. })
    ));
}
