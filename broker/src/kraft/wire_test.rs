//! Tests of the KRaft wire adapter: every core message through the wire both ways at every
//! supported version, Kafka's field layout built with kafka-protocol directly, refusals, and
//! truncated or garbage bodies.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{self as km, ApiKey, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use shale_raft::ids::METADATA_TOPIC_ID;
use shale_raft::kraft::codec::encode_entries;
use shale_raft::kraft::{
    Entry, FetchError, FetchRequest, FetchResponse, FetchResult, FetchSnapshotRequest,
    FetchSnapshotResponse, FetchSnapshotResult, LeaderChange, Message, NodeId, Record, SnapshotId,
    VoteRequest, VoteResponse,
};
use uuid::Uuid;

use super::wire::*;

const CLUSTER: &str = "MkU3OEVBNTcwNTJENDM2Qg";

fn ctx(local: NodeId) -> WireContext {
    let mut c = WireContext::new(CLUSTER, local, "CONTROLLER");
    for id in 1..=3 {
        let e = Endpoint {
            host: format!("c{id}.example"),
            port: 9090 + id as u16,
        };
        c.endpoints.insert(id, e);
    }
    c
}

fn versions(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (min, max) = supported_versions(api).unwrap();
    min..=max
}

fn every_fetch_error() -> Vec<FetchError> {
    // The match makes this list fail to compile when a variant is added.
    let all = [
        FetchError::FencedLeaderEpoch,
        FetchError::UnknownLeaderEpoch,
        FetchError::NotLeader,
        FetchError::ShuttingDown,
        FetchError::InvalidRequest,
        FetchError::SnapshotNotFound,
        FetchError::PositionOutOfRange,
    ];
    for e in all {
        match e {
            FetchError::FencedLeaderEpoch
            | FetchError::UnknownLeaderEpoch
            | FetchError::NotLeader
            | FetchError::ShuttingDown
            | FetchError::InvalidRequest
            | FetchError::SnapshotNotFound
            | FetchError::PositionOutOfRange => {}
        }
    }
    all.to_vec()
}

fn vote(pre_vote: bool) -> Message {
    Message::Vote(VoteRequest {
        epoch: 7,
        candidate: 1,
        last_epoch: 5,
        end_offset: 120,
        pre_vote,
    })
}

fn fetch_req(seq: u64) -> FetchRequest {
    FetchRequest {
        seq,
        epoch: 7,
        replica: 2,
        fetch_offset: 40,
        last_fetched_epoch: 6,
        // Only v18 carries it: older versions decode to Kafka's default.
        high_watermark: shale_raft::kraft::UNKNOWN_HIGH_WATERMARK,
    }
}

fn snapshot_req(seq: u64) -> FetchSnapshotRequest {
    FetchSnapshotRequest {
        seq,
        epoch: 7,
        replica: 2,
        id: SnapshotId {
            end_offset: 30,
            epoch: 4,
        },
        position: 4096,
    }
}

/// Every request the core sends, as node `1` would send it to node `2` (Fetch from node 2
/// reaches the leader 1, but the adapter does not care who is who).
fn requests() -> Vec<Message> {
    vec![
        vote(false),
        vote(true),
        Message::BeginQuorumEpoch {
            epoch: 7,
            leader: 1,
        },
        Message::EndQuorumEpoch {
            epoch: 7,
            leader: 1,
            preferred_successors: vec![3, 2],
        },
        Message::Fetch(fetch_req(5)),
        Message::FetchSnapshot(snapshot_req(6)),
    ]
}

fn sender(msg: &Message) -> NodeId {
    match msg {
        Message::Vote(v) => v.candidate,
        Message::BeginQuorumEpoch { leader, .. } | Message::EndQuorumEpoch { leader, .. } => {
            *leader
        }
        Message::Fetch(f) => f.replica,
        Message::FetchSnapshot(f) => f.replica,
        other => panic!("not a request: {other:?}"),
    }
}

fn with_seq(msg: &Message, seq: u64) -> Message {
    match msg.clone() {
        Message::Fetch(f) => Message::Fetch(FetchRequest { seq, ..f }),
        Message::FetchSnapshot(f) => Message::FetchSnapshot(FetchSnapshotRequest { seq, ..f }),
        Message::FetchResponse(f) => Message::FetchResponse(FetchResponse { seq, ..f }),
        Message::FetchSnapshotResponse(f) => {
            Message::FetchSnapshotResponse(FetchSnapshotResponse { seq, ..f })
        }
        other => other,
    }
}

#[test]
fn every_request_round_trips_at_every_version() {
    let (a, b) = (ctx(1), ctx(2));
    let mut checked = 0;
    for msg in requests() {
        let api = api_key_of(&msg);
        for v in versions(api) {
            let pre_vote_too_old = matches!(&msg, Message::Vote(r) if r.pre_vote) && v < 2;
            let out = encode_request_at(2, &msg, v, &a);
            if pre_vote_too_old {
                assert!(
                    matches!(out, Err(WireError::Encode { .. })),
                    "v{v}: {out:?}"
                );
                continue;
            }
            let out = out.unwrap();
            assert_eq!((out.api_key, out.version), (api, v));
            let inbound = decode_request(api, v, out.body, 99, &b).unwrap();
            assert_eq!(inbound.from, sender(&msg), "{api:?} v{v}");
            assert_eq!(inbound.msg, with_seq(&msg, 99), "{api:?} v{v}");
            checked += 1;
        }
    }
    // Vote 3 + pre-vote 1 + Begin 2 + End 2 + Fetch 6 + FetchSnapshot 2.
    assert_eq!(checked, 16);
}

#[test]
fn encode_request_uses_the_preferred_versions() {
    let a = ctx(1);
    let got: Vec<(ApiKey, i16)> = requests()
        .iter()
        .map(|m| {
            let r = encode_request(2, m, &a).unwrap();
            (r.api_key, r.version)
        })
        .collect();
    use ApiKey::*;
    assert_eq!(
        got,
        [
            (Vote, 2),
            (Vote, 2),
            (BeginQuorumEpoch, 1),
            (EndQuorumEpoch, 1),
            (Fetch, 18),
            (FetchSnapshot, 1)
        ]
    );
    let resp = Message::BeginQuorumEpochResponse {
        epoch: 1,
        leader: None,
    };
    assert!(matches!(
        encode_request(2, &resp, &a),
        Err(WireError::Mismatch(_))
    ));
}

fn data(epoch: i32, v: &'static [u8]) -> Entry {
    Entry {
        epoch,
        record: Record::Data(Bytes::from_static(v)),
    }
}

fn leader_change(epoch: i32, leader: NodeId) -> Entry {
    Entry {
        epoch,
        record: Record::LeaderChange(LeaderChange {
            leader_id: leader,
            voters: vec![1, 2, 3],
            granting_voters: vec![1, 2],
        }),
    }
}

fn fetch_answer(seq: u64, leader: Option<NodeId>, result: FetchResult) -> Message {
    Message::FetchResponse(FetchResponse {
        seq,
        epoch: 7,
        leader,
        result,
    })
}

fn snapshot_answer(seq: u64, result: FetchSnapshotResult) -> Message {
    Message::FetchSnapshotResponse(FetchSnapshotResponse {
        seq,
        epoch: 7,
        leader: Some(1),
        result,
    })
}

/// Every (request, answer) pair: the answer as the responder's core builds it for a request
/// carrying seq 99.
fn exchanges() -> Vec<(Message, Message)> {
    // A pre-vote for epoch 7 comes from a prospective in epoch 6: a voter still in epoch 6
    // may grant it (in epoch 7 it would be fenced).
    let vote_answer = |granted, pre_vote: bool, leader| {
        Message::VoteResponse(VoteResponse {
            epoch: if pre_vote { 6 } else { 7 },
            leader,
            granted,
            pre_vote,
        })
    };
    let mut out = vec![
        (vote(false), vote_answer(true, false, None)),
        (vote(false), vote_answer(false, false, Some(3))),
        (vote(true), vote_answer(true, true, None)),
        (vote(true), vote_answer(false, true, Some(3))),
        (
            Message::BeginQuorumEpoch {
                epoch: 7,
                leader: 1,
            },
            Message::BeginQuorumEpochResponse {
                epoch: 7,
                leader: Some(1),
            },
        ),
    ];
    let fetch = Message::Fetch(fetch_req(5));
    let results = vec![
        FetchResult::Records {
            base_offset: 40,
            entries: vec![
                leader_change(7, 1),
                data(7, b"a"),
                data(7, b"bb"),
                leader_change(8, 1),
                data(8, b"ccc"),
            ],
            high_watermark: Some(41),
        },
        FetchResult::Records {
            base_offset: 40,
            entries: vec![],
            high_watermark: None,
        },
        FetchResult::Diverging {
            epoch: 5,
            end_offset: 33,
        },
        FetchResult::Snapshot {
            id: SnapshotId {
                end_offset: 30,
                epoch: 4,
            },
        },
    ];
    let errors = every_fetch_error().into_iter().map(FetchResult::Error);
    for result in results.into_iter().chain(errors) {
        out.push((fetch.clone(), fetch_answer(99, Some(1), result.clone())));
        out.push((fetch.clone(), fetch_answer(99, None, result)));
    }
    let snap = Message::FetchSnapshot(snapshot_req(6));
    let chunk = FetchSnapshotResult::Chunk {
        id: SnapshotId {
            end_offset: 30,
            epoch: 4,
        },
        size: 10_000,
        position: 4096,
        data: Bytes::from_static(b"snapshot bytes"),
    };
    out.push((snap.clone(), snapshot_answer(99, chunk)));
    for e in every_fetch_error() {
        out.push((
            snap.clone(),
            snapshot_answer(99, FetchSnapshotResult::Error(e)),
        ));
    }
    out
}

#[test]
fn every_answer_round_trips_at_every_version() {
    let (a, b) = (ctx(1), ctx(2));
    let mut checked = 0;
    for (req, answer) in exchanges() {
        let api = api_key_of(&req);
        for v in versions(api) {
            let Ok(out) = encode_request_at(2, &req, v, &a) else {
                continue; // a pre-vote below v2
            };
            let inbound = decode_request(api, v, out.body, 99, &b).unwrap();
            let body = encode_response(&inbound, &answer, &b, 1_700_000_000_000).unwrap();
            let back = decode_response(&req, v, body).unwrap();
            let seq = match &req {
                Message::Fetch(f) => f.seq,
                Message::FetchSnapshot(f) => f.seq,
                _ => 0,
            };
            assert_eq!(back, Some(with_seq(&answer, seq)), "{api:?} v{v}");
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked}");
}

#[test]
fn end_quorum_epoch_is_answered_for_the_core_and_decodes_to_nothing() {
    let (a, b) = (ctx(1), ctx(2));
    let req = Message::EndQuorumEpoch {
        epoch: 7,
        leader: 1,
        preferred_successors: vec![2],
    };
    for v in versions(ApiKey::EndQuorumEpoch) {
        let out = encode_request_at(2, &req, v, &a).unwrap();
        let inbound = decode_request(ApiKey::EndQuorumEpoch, v, out.body, 0, &b).unwrap();
        let body = encode_end_quorum_epoch_response(&inbound, 7, None, &b).unwrap();
        assert_eq!(decode_response(&req, v, body.clone()).unwrap(), None);
        let resp = km::EndQuorumEpochResponse::decode(&mut body.clone(), v).unwrap();
        let p = &resp.topics[0].partitions[0];
        assert_eq!((p.error_code, p.leader_epoch, p.leader_id.0), (0, 7, -1));
        // An older leader's request is fenced.
        let body = encode_end_quorum_epoch_response(&inbound, 9, Some(3), &b).unwrap();
        let resp = km::EndQuorumEpochResponse::decode(&mut body.clone(), v).unwrap();
        assert_eq!(
            resp.topics[0].partitions[0].error_code,
            codes::FENCED_LEADER_EPOCH
        );
        assert_eq!(resp.node_endpoints.len(), usize::from(v >= 1));
    }
}

#[test]
fn answers_that_do_not_match_the_request_are_refused() {
    let b = ctx(2);
    let out = encode_request(2, &Message::Fetch(fetch_req(5)), &ctx(1)).unwrap();
    let inbound = decode_request(ApiKey::Fetch, out.version, out.body, 99, &b).unwrap();
    let wrong_kind = Message::BeginQuorumEpochResponse {
        epoch: 7,
        leader: None,
    };
    let wrong_seq = fetch_answer(98, None, FetchResult::Error(FetchError::NotLeader));
    for answer in [wrong_kind, wrong_seq] {
        let r = encode_response(&inbound, &answer, &b, 0);
        assert!(matches!(r, Err(WireError::Mismatch(_))), "{r:?}");
    }
}

fn encode_kp<M: Encodable>(m: &M, v: i16) -> Bytes {
    let mut b = BytesMut::new();
    m.encode(&mut b, v).unwrap();
    b.freeze()
}

#[test]
fn vote_request_matches_kafkas_layout() {
    let out = encode_request(2, &vote(true), &ctx(1)).unwrap();
    // What Kafka 4.x's RaftUtil builds for a prospective in epoch 6 asking voter 2.
    let expected = km::VoteRequest::default()
        .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER)))
        .with_voter_id(2.into())
        .with_topics(vec![km::vote_request::TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![km::vote_request::PartitionData::default()
                .with_partition_index(0)
                .with_replica_epoch(6)
                .with_replica_id(1.into())
                .with_replica_directory_id(Uuid::nil())
                .with_voter_directory_id(Uuid::nil())
                .with_last_offset_epoch(5)
                .with_last_offset(120)
                .with_pre_vote(true)])]);
    let got = km::VoteRequest::decode(&mut out.body.clone(), 2).unwrap();
    assert_eq!(got, expected);
    assert_eq!(out.body, encode_kp(&expected, 2));

    // A binding vote carries the candidate's (already bumped) epoch as is.
    let out = encode_request(2, &vote(false), &ctx(1)).unwrap();
    let got = km::VoteRequest::decode(&mut out.body.clone(), 2).unwrap();
    let p = &got.topics[0].partitions[0];
    assert_eq!((p.replica_epoch, p.pre_vote), (7, false));
}

#[test]
fn vote_response_matches_kafkas_layout() {
    let b = ctx(2);
    let out = encode_request(2, &vote(false), &ctx(1)).unwrap();
    let inbound = decode_request(ApiKey::Vote, 2, out.body, 0, &b).unwrap();
    // Our epoch is newer than the candidate's: fenced, as Kafka's validateVoterOnlyRequest.
    let answer = Message::VoteResponse(VoteResponse {
        epoch: 9,
        leader: Some(3),
        granted: false,
        pre_vote: false,
    });
    let body = encode_response(&inbound, &answer, &b, 0).unwrap();
    let expected = km::VoteResponse::default()
        .with_topics(vec![km::vote_response::TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![km::vote_response::PartitionData::default()
                .with_partition_index(0)
                .with_error_code(74)
                .with_leader_id(3.into())
                .with_leader_epoch(9)
                .with_vote_granted(false)])])
        .with_node_endpoints(vec![km::vote_response::NodeEndpoint::default()
            .with_node_id(3.into())
            .with_host(StrBytes::from_static_str("c3.example"))
            .with_port(9093)]);
    assert_eq!(
        km::VoteResponse::decode(&mut body.clone(), 2).unwrap(),
        expected
    );
    assert_eq!(body, encode_kp(&expected, 2));
}

#[test]
fn fetch_request_matches_kafkas_layout() {
    let mut a = ctx(2);
    a.fetch_max_wait_ms = 500;
    for v in [15, 16, 17, 18] {
        let out = encode_request_at(1, &Message::Fetch(fetch_req(5)), v, &a).unwrap();
        let expected = km::FetchRequest::default()
            .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER)))
            .with_replica_state(
                km::fetch_request::ReplicaState::default().with_replica_id(2.into()),
            )
            .with_max_wait_ms(500)
            .with_max_bytes(8 * 1024 * 1024)
            .with_topics(vec![km::fetch_request::FetchTopic::default()
                .with_topic_id(METADATA_TOPIC_ID)
                .with_partitions(vec![km::fetch_request::FetchPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(7)
                    .with_fetch_offset(40)
                    .with_last_fetched_epoch(6)
                    .with_partition_max_bytes(8 * 1024 * 1024)])]);
        let got = km::FetchRequest::decode(&mut out.body.clone(), v).unwrap();
        assert_eq!(got, expected, "v{v}");
        assert_eq!(got.replica_id.0, -1, "v{v}: ReplicaId is gone from v15");
        assert_eq!(out.body, encode_kp(&expected, v));
    }
    for v in [13, 14] {
        let out = encode_request_at(1, &Message::Fetch(fetch_req(5)), v, &a).unwrap();
        let got = km::FetchRequest::decode(&mut out.body.clone(), v).unwrap();
        assert_eq!(got.replica_id.0, 2, "v{v}");
        assert_eq!(got.topics[0].topic_id, METADATA_TOPIC_ID);
    }
}

#[test]
fn a_kafka_fetch_v18_with_a_high_watermark_decodes() {
    // KIP-1166 (Kafka 4.1): the fetcher's high watermark, a tagged field the core ignores.
    let req = km::FetchRequest::default()
        .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER)))
        .with_replica_state(km::fetch_request::ReplicaState::default().with_replica_id(3.into()))
        .with_max_wait_ms(500)
        .with_topics(vec![km::fetch_request::FetchTopic::default()
            .with_topic_id(METADATA_TOPIC_ID)
            .with_partitions(vec![km::fetch_request::FetchPartition::default()
                .with_current_leader_epoch(7)
                .with_fetch_offset(12)
                .with_last_fetched_epoch(7)
                .with_high_watermark(10)])]);
    let inbound = decode_request(ApiKey::Fetch, 18, encode_kp(&req, 18), 8, &ctx(1)).unwrap();
    let expected = Message::Fetch(FetchRequest {
        seq: 8,
        epoch: 7,
        replica: 3,
        fetch_offset: 12,
        last_fetched_epoch: 7,
        high_watermark: 10,
    });
    assert_eq!((inbound.from, inbound.msg), (3, expected));
}

/// A Fetch response built the way Kafka's leader builds it (RaftUtil.singletonFetchResponse).
fn kafka_fetch_response(records: Bytes, hw: i64) -> km::FetchResponse {
    use km::fetch_response as r;
    km::FetchResponse::default()
        .with_responses(vec![r::FetchableTopicResponse::default()
            .with_topic_id(METADATA_TOPIC_ID)
            .with_partitions(vec![r::PartitionData::default()
                .with_partition_index(0)
                .with_high_watermark(hw)
                .with_log_start_offset(0)
                .with_current_leader(
                    r::LeaderIdAndEpoch::default()
                        .with_leader_id(1.into())
                        .with_leader_epoch(7),
                )
                .with_records(Some(records))])])
        .with_node_endpoints(vec![r::NodeEndpoint::default()
            .with_node_id(1.into())
            .with_host(StrBytes::from_static_str("c1.example"))
            .with_port(9091)])
}

#[test]
fn fetch_response_matches_kafkas_layout() {
    let entries = vec![leader_change(7, 1), data(7, b"a"), data(7, b"b")];
    let records = encode_entries(40, &entries, 123).unwrap();
    let expected = kafka_fetch_response(records.clone(), 42).with_responses(vec![
        km::fetch_response::FetchableTopicResponse::default()
            .with_topic_id(METADATA_TOPIC_ID)
            .with_partitions(vec![km::fetch_response::PartitionData::default()
                .with_partition_index(0)
                .with_high_watermark(42)
                .with_current_leader(
                    km::fetch_response::LeaderIdAndEpoch::default()
                        .with_leader_id(1.into())
                        .with_leader_epoch(7),
                )
                .with_records(Some(records))]),
    ]);
    let b = ctx(1);
    let out = encode_request(1, &Message::Fetch(fetch_req(5)), &ctx(2)).unwrap();
    let inbound = decode_request(ApiKey::Fetch, 17, out.body, 3, &b).unwrap();
    let answer = fetch_answer(
        3,
        Some(1),
        FetchResult::Records {
            base_offset: 40,
            entries,
            high_watermark: Some(42),
        },
    );
    let body = encode_response(&inbound, &answer, &b, 123).unwrap();
    assert_eq!(
        km::FetchResponse::decode(&mut body.clone(), 17).unwrap(),
        expected
    );
    assert_eq!(body, encode_kp(&expected, 17));
}

#[test]
fn a_kafka_leaders_fetch_response_decodes_and_leading_entries_are_trimmed() {
    // Kafka returns whole batches: the first may start below the fetch offset (38 < 40).
    let entries = vec![data(6, b"x"), data(6, b"y"), data(6, b"z"), data(7, b"w")];
    let records = encode_entries(38, &entries, 0).unwrap();
    let body = encode_kp(&kafka_fetch_response(records, 41), 17);
    let sent = Message::Fetch(fetch_req(5));
    let got = decode_response(&sent, 17, body).unwrap();
    let expected = fetch_answer(
        5,
        Some(1),
        FetchResult::Records {
            base_offset: 40,
            entries: vec![data(6, b"z"), data(7, b"w")],
            high_watermark: Some(41),
        },
    );
    assert_eq!(got, Some(expected));
}

#[test]
fn diverging_and_snapshot_fields_follow_kafka() {
    use km::fetch_response as r;
    let b = ctx(1);
    let out = encode_request(1, &Message::Fetch(fetch_req(5)), &ctx(2)).unwrap();
    let inbound = decode_request(ApiKey::Fetch, 17, out.body, 3, &b).unwrap();
    let div = fetch_answer(
        3,
        Some(1),
        FetchResult::Diverging {
            epoch: 5,
            end_offset: 33,
        },
    );
    let body = encode_response(&inbound, &div, &b, 0).unwrap();
    let p = km::FetchResponse::decode(&mut body.clone(), 17)
        .unwrap()
        .responses[0]
        .partitions[0]
        .clone();
    assert_eq!(
        p.diverging_epoch,
        r::EpochEndOffset::default()
            .with_epoch(5)
            .with_end_offset(33)
    );
    assert_eq!(p.records, Some(Bytes::new()), "empty, never null");
    assert_eq!(p.snapshot_id, r::SnapshotId::default());

    // A half-valid snapshot id is malformed, as Kafka's follower treats it.
    let mut bad = kafka_fetch_response(Bytes::new(), 0);
    bad.responses[0].partitions[0].snapshot_id = r::SnapshotId::default().with_end_offset(30);
    let err = decode_response(&Message::Fetch(fetch_req(5)), 17, encode_kp(&bad, 17));
    assert!(matches!(err, Err(WireError::Malformed { .. })), "{err:?}");
}

#[test]
fn top_level_errors_in_responses() {
    let sent = Message::Fetch(fetch_req(5));
    // A code the core knows: an error in the fetcher's own epoch, so it backs off.
    let body = error_response(ApiKey::Fetch, 17, codes::BROKER_NOT_AVAILABLE).unwrap();
    let expected = Message::FetchResponse(FetchResponse {
        seq: 5,
        epoch: 7,
        leader: None,
        result: FetchResult::Error(FetchError::ShuttingDown),
    });
    assert_eq!(decode_response(&sent, 17, body).unwrap(), Some(expected));
    // Others are no answer.
    for (msg, api, v) in [
        (sent.clone(), ApiKey::Fetch, 17),
        (vote(true), ApiKey::Vote, 2),
        (
            Message::FetchSnapshot(snapshot_req(1)),
            ApiKey::FetchSnapshot,
            1,
        ),
        (
            Message::BeginQuorumEpoch {
                epoch: 1,
                leader: 1,
            },
            ApiKey::BeginQuorumEpoch,
            1,
        ),
    ] {
        let body = error_response(api, v, codes::INCONSISTENT_CLUSTER_ID).unwrap();
        let r = decode_response(&msg, v, body);
        assert!(
            matches!(r, Err(WireError::ErrorResponse { code: 104, .. })),
            "{api:?}: {r:?}"
        );
    }
}

#[test]
fn fetch_error_codes_map_both_ways() {
    let expected = [74, 75, 6, 8, 42, 98, 99];
    for (e, code) in every_fetch_error().into_iter().zip(expected) {
        assert_eq!(fetch_error_code(e), code, "{e:?}");
        assert_eq!(fetch_error_from_code(code), Some(e));
    }
    assert_eq!(fetch_error_from_code(0), None);
    assert_eq!(fetch_error_from_code(104), None);
}

#[test]
fn responses_carry_the_leaders_endpoint_where_kafka_does() {
    let b = ctx(2);
    for (req, answer) in exchanges() {
        let api = api_key_of(&req);
        for v in versions(api) {
            let Ok(out) = encode_request_at(2, &req, v, &ctx(1)) else {
                continue;
            };
            let inbound = decode_request(api, v, out.body, 99, &b).unwrap();
            let body = encode_response(&inbound, &answer, &b, 0).unwrap();
            let endpoints: Vec<(i32, String, i32)> = match api {
                ApiKey::Vote => km::VoteResponse::decode(&mut body.clone(), v)
                    .unwrap()
                    .node_endpoints
                    .iter()
                    .map(|e| (e.node_id.0, e.host.to_string(), i32::from(e.port)))
                    .collect(),
                ApiKey::BeginQuorumEpoch => {
                    km::BeginQuorumEpochResponse::decode(&mut body.clone(), v)
                        .unwrap()
                        .node_endpoints
                        .iter()
                        .map(|e| (e.node_id.0, e.host.to_string(), i32::from(e.port)))
                        .collect()
                }
                ApiKey::Fetch => km::FetchResponse::decode(&mut body.clone(), v)
                    .unwrap()
                    .node_endpoints
                    .iter()
                    .map(|e| (e.node_id.0, e.host.to_string(), e.port))
                    .collect(),
                ApiKey::FetchSnapshot => km::FetchSnapshotResponse::decode(&mut body.clone(), v)
                    .unwrap()
                    .node_endpoints
                    .iter()
                    .map(|e| (e.node_id.0, e.host.to_string(), i32::from(e.port)))
                    .collect(),
                other => panic!("{other:?}"),
            };
            let leader = match &answer {
                Message::VoteResponse(r) => r.leader,
                Message::BeginQuorumEpochResponse { leader, .. } => *leader,
                Message::FetchResponse(r) => r.leader,
                Message::FetchSnapshotResponse(r) => r.leader,
                other => panic!("{other:?}"),
            };
            let since = if api == ApiKey::Fetch { 17 } else { 1 };
            let want: Vec<(i32, String, i32)> = match leader {
                Some(l) if v >= since => vec![(l, format!("c{l}.example"), 9090 + l)],
                _ => vec![],
            };
            assert_eq!(endpoints, want, "{api:?} v{v}");
        }
    }
}

#[test]
fn begin_and_end_requests_name_the_leaders_listener_from_v1() {
    let a = ctx(1);
    let begin = Message::BeginQuorumEpoch {
        epoch: 7,
        leader: 1,
    };
    let out = encode_request_at(2, &begin, 1, &a).unwrap();
    let req = km::BeginQuorumEpochRequest::decode(&mut out.body.clone(), 1).unwrap();
    assert_eq!(req.voter_id.0, 2);
    let l = &req.leader_endpoints[0];
    assert_eq!(
        (l.name.as_str(), l.host.as_str(), l.port),
        ("CONTROLLER", "c1.example", 9091)
    );
    let end = Message::EndQuorumEpoch {
        epoch: 7,
        leader: 1,
        preferred_successors: vec![3, 2],
    };
    let out = encode_request_at(2, &end, 1, &a).unwrap();
    let req = km::EndQuorumEpochRequest::decode(&mut out.body.clone(), 1).unwrap();
    let p = &req.topics[0].partitions[0];
    let ids: Vec<i32> = p
        .preferred_candidates
        .iter()
        .map(|c| c.candidate_id.0)
        .collect();
    assert_eq!(ids, [3, 2]);
    assert_eq!(req.leader_endpoints.len(), 1);
    let out = encode_request_at(2, &end, 0, &a).unwrap();
    let req = km::EndQuorumEpochRequest::decode(&mut out.body.clone(), 0).unwrap();
    assert_eq!(req.topics[0].partitions[0].preferred_successors, [3, 2]);
}

#[test]
fn a_wrong_cluster_id_is_refused_with_inconsistent_cluster_id() {
    let (a, mut b) = (ctx(1), ctx(2));
    b.cluster_id = "another-cluster".into();
    for msg in requests() {
        let api = api_key_of(&msg);
        for v in versions(api) {
            let Ok(out) = encode_request_at(2, &msg, v, &a) else {
                continue;
            };
            let err = decode_request(api, v, out.body, 0, &b).unwrap_err();
            assert_eq!(err.refusal_code(), Some(104), "{api:?} v{v}: {err}");
            let body = error_response(api, v, 104).unwrap();
            let code = match api {
                ApiKey::Vote => {
                    km::VoteResponse::decode(&mut body.clone(), v)
                        .unwrap()
                        .error_code
                }
                ApiKey::BeginQuorumEpoch => {
                    km::BeginQuorumEpochResponse::decode(&mut body.clone(), v)
                        .unwrap()
                        .error_code
                }
                ApiKey::EndQuorumEpoch => {
                    km::EndQuorumEpochResponse::decode(&mut body.clone(), v)
                        .unwrap()
                        .error_code
                }
                ApiKey::Fetch => {
                    km::FetchResponse::decode(&mut body.clone(), v)
                        .unwrap()
                        .error_code
                }
                ApiKey::FetchSnapshot => {
                    km::FetchSnapshotResponse::decode(&mut body.clone(), v)
                        .unwrap()
                        .error_code
                }
                other => panic!("{other:?}"),
            };
            assert_eq!(code, codes::INCONSISTENT_CLUSTER_ID, "{api:?} v{v}");
        }
    }
}

#[test]
fn an_absent_cluster_id_is_accepted() {
    let req = km::FetchSnapshotRequest::default()
        .with_replica_id(2.into())
        .with_topics(vec![km::fetch_snapshot_request::TopicSnapshot::default()
            .with_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![
                km::fetch_snapshot_request::PartitionSnapshot::default()
                    .with_current_leader_epoch(3)
                    .with_position(-5),
            ])]);
    let inbound = decode_request(ApiKey::FetchSnapshot, 1, encode_kp(&req, 1), 4, &ctx(1)).unwrap();
    let Message::FetchSnapshot(f) = inbound.msg else {
        panic!("{inbound:?}");
    };
    // A negative position becomes one the core answers POSITION_OUT_OF_RANGE to.
    assert_eq!((f.seq, f.epoch, f.replica, f.position), (4, 3, 2, u64::MAX));
}

#[test]
fn other_partitions_and_misaddressed_votes_are_refused_as_kafka_does() {
    let b = ctx(2);
    let other = km::VoteRequest::default()
        .with_topics(vec![km::vote_request::TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("other")))
            .with_partitions(vec![km::vote_request::PartitionData::default()])]);
    let err = decode_request(ApiKey::Vote, 2, encode_kp(&other, 2), 0, &b).unwrap_err();
    assert_eq!(err.refusal_code(), Some(codes::INVALID_REQUEST));

    let fetch =
        km::FetchRequest::default().with_topics(vec![km::fetch_request::FetchTopic::default()
            .with_topic_id(Uuid::from_u128(77))
            .with_partitions(vec![km::fetch_request::FetchPartition::default()])]);
    let err = decode_request(ApiKey::Fetch, 17, encode_kp(&fetch, 17), 0, &b).unwrap_err();
    assert_eq!(err.refusal_code(), Some(codes::INVALID_REQUEST));

    let snap = km::FetchSnapshotRequest::default().with_topics(vec![
        km::fetch_snapshot_request::TopicSnapshot::default()
            .with_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![
                km::fetch_snapshot_request::PartitionSnapshot::default().with_partition(1),
            ]),
    ]);
    let err = decode_request(ApiKey::FetchSnapshot, 1, encode_kp(&snap, 1), 0, &b).unwrap_err();
    assert_eq!(err.refusal_code(), Some(codes::UNKNOWN_TOPIC_OR_PARTITION));

    // A Vote addressed to voter 3 reaching node 2.
    let out = encode_request(3, &vote(false), &ctx(1)).unwrap();
    let err = decode_request(ApiKey::Vote, 2, out.body, 0, &b).unwrap_err();
    assert_eq!(err.refusal_code(), Some(codes::INVALID_VOTER_KEY));
}

#[test]
fn unsupported_versions_and_apis_are_errors() {
    let b = ctx(2);
    let out = encode_request_at(1, &Message::Fetch(fetch_req(1)), 13, &ctx(2)).unwrap();
    for (api, v) in [
        (ApiKey::Fetch, 12),
        (ApiKey::Vote, 3),
        (ApiKey::FetchSnapshot, 2),
    ] {
        let err = decode_request(api, v, out.body.clone(), 0, &b).unwrap_err();
        assert!(matches!(err, WireError::UnsupportedVersion { .. }), "{err}");
        assert_eq!(err.refusal_code(), Some(codes::UNSUPPORTED_VERSION));
    }
    let err = decode_request(ApiKey::Produce, 9, out.body, 0, &b).unwrap_err();
    assert!(matches!(err, WireError::UnsupportedApi(0)), "{err}");
}

/// Deterministic pseudo-random bytes (xorshift).
fn garbage(seed: u64, len: usize) -> Bytes {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

#[test]
fn truncated_and_garbage_requests_are_errors() {
    let (a, b) = (ctx(1), ctx(2));
    for msg in requests() {
        let api = api_key_of(&msg);
        for v in versions(api) {
            let Ok(out) = encode_request_at(2, &msg, v, &a) else {
                continue;
            };
            for cut in 0..out.body.len() {
                let r = decode_request(api, v, out.body.slice(..cut), 0, &b);
                assert!(r.is_err(), "{api:?} v{v} cut at {cut}: {r:?}");
            }
            for fill in [0xffu8, 0x7f] {
                let junk = Bytes::from(vec![fill; 64]);
                assert!(decode_request(api, v, junk, 0, &b).is_err(), "{api:?} v{v}");
            }
            for seed in 0..200 {
                let _ = decode_request(api, v, garbage(seed, (seed % 97) as usize), 0, &b);
            }
        }
    }
}

#[test]
fn truncated_and_garbage_responses_are_errors() {
    let (a, b) = (ctx(1), ctx(2));
    let end = Message::EndQuorumEpoch {
        epoch: 7,
        leader: 1,
        preferred_successors: vec![],
    };
    let mut cases = exchanges();
    cases.push((end.clone(), end));
    for (req, answer) in cases {
        let api = api_key_of(&req);
        for v in versions(api) {
            let Ok(out) = encode_request_at(2, &req, v, &a) else {
                continue;
            };
            let inbound = decode_request(api, v, out.body, 99, &b).unwrap();
            let body = if api == ApiKey::EndQuorumEpoch {
                encode_end_quorum_epoch_response(&inbound, 7, Some(1), &b).unwrap()
            } else {
                encode_response(&inbound, &answer, &b, 0).unwrap()
            };
            for cut in 0..body.len() {
                let r = decode_response(&req, v, body.slice(..cut));
                assert!(r.is_err(), "{api:?} v{v} cut at {cut}: {r:?}");
            }
            assert!(decode_response(&req, v, Bytes::from(vec![0xff; 64])).is_err());
            for seed in 0..50 {
                let _ = decode_response(&req, v, garbage(seed, (seed % 97) as usize));
            }
        }
    }
}

fn status() -> QuorumStatus {
    let replica = |id, leo, t| ReplicaStatus {
        id,
        directory_id: Uuid::from_u128(id as u128 + 100),
        log_end_offset: leo,
        last_fetch_timestamp: t,
        last_caught_up_timestamp: t - 5,
    };
    QuorumStatus {
        leader_id: 1,
        leader_epoch: 7,
        high_watermark: 40,
        voters: vec![
            replica(1, 42, 1000),
            replica(2, 40, 990),
            replica(3, -1, 900),
        ],
        observers: vec![replica(4, 41, 995)],
    }
}

#[test]
fn describe_quorum_round_trips_at_every_version() {
    let c = ctx(1);
    for v in versions(ApiKey::DescribeQuorum) {
        let body = encode_describe_quorum(&status(), v, &c).unwrap();
        let got = decode_describe_quorum(v, body.clone()).unwrap();
        let mut want = status();
        for r in want.voters.iter_mut().chain(want.observers.iter_mut()) {
            if v < 1 {
                r.last_fetch_timestamp = -1;
                r.last_caught_up_timestamp = -1;
            }
            if v < 2 {
                r.directory_id = Uuid::nil();
            }
        }
        assert_eq!(got.status, want, "v{v}");
        let nodes: Vec<NodeId> = got.nodes.keys().copied().collect();
        assert_eq!(nodes, if v >= 2 { vec![1, 2, 3] } else { vec![] });
        if v >= 2 {
            let e = Endpoint {
                host: "c2.example".into(),
                port: 9092,
            };
            assert_eq!(got.nodes[&2], vec![("CONTROLLER".to_string(), e)]);
        }
        for cut in 0..body.len() {
            assert!(decode_describe_quorum(v, body.slice(..cut)).is_err());
        }
        let err = encode_describe_quorum_error(v, codes::NOT_LEADER_OR_FOLLOWER).unwrap();
        let r = decode_describe_quorum(v, err);
        assert!(
            matches!(r, Err(WireError::ErrorResponse { code: 6, .. })),
            "{r:?}"
        );
    }
}

#[test]
fn describe_quorum_requests_must_name_the_metadata_partition() {
    let req = |name: &'static str, index| {
        km::DescribeQuorumRequest::default().with_topics(vec![
            km::describe_quorum_request::TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str(name)))
                .with_partitions(vec![km::describe_quorum_request::PartitionData::default()
                    .with_partition_index(index)]),
        ])
    };
    for v in versions(ApiKey::DescribeQuorum) {
        let ok = encode_kp(&req("__cluster_metadata", 0), v);
        assert!(decode_describe_quorum_request(v, ok.clone()).is_ok());
        for cut in 0..ok.len() {
            assert!(decode_describe_quorum_request(v, ok.slice(..cut)).is_err());
        }
        for bad in [req("other", 0), req("__cluster_metadata", 1)] {
            let err = decode_describe_quorum_request(v, encode_kp(&bad, v)).unwrap_err();
            assert_eq!(err.refusal_code(), Some(codes::UNKNOWN_TOPIC_OR_PARTITION));
        }
    }
}
