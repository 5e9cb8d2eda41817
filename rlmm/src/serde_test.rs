//! Golden vectors (KIP-405 §3.8), round trips, leniency and rejection cases for `serde`.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn tp() -> TopicIdPartition {
    TopicIdPartition::new(Uuid::from_u64_pair(0, 1), "foo", 0)
}

fn seg_id() -> RemoteLogSegmentId {
    RemoteLogSegmentId::new(tp(), Uuid::from_u64_pair(0, 2))
}

fn vector_add() -> RemoteLogSegmentMetadata {
    RemoteLogSegmentMetadata::new(
        seg_id(),
        0,
        99,
        1_700_000_000_000,
        1,
        1_700_000_000_123,
        1_048_576,
        BTreeMap::from([(0, 0)]),
    )
    .unwrap()
}

fn vector_update() -> RemoteLogSegmentMetadataUpdate {
    RemoteLogSegmentMetadataUpdate {
        id: seg_id(),
        event_timestamp_ms: 1_700_000_000_456,
        custom_metadata: None,
        state: RemoteLogSegmentState::CopySegmentFinished,
        broker_id: 1,
    }
}

const ADD_HEX: &str = "01 00 00  04 66 6f 6f  00000000000000000000000000000001  00 00 00 00  00
    00000000000000000000000000000002  00
    00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 63  00 00 00 01
    00 00 01 8b cf e5 68 00  00 00 01 8b cf e5 68 7b
    02  00 00 00 00  00 00 00 00 00 00 00 00  00
    00 10 00 00  00  00  00";

const UPDATE_HEX: &str = "01 01 00  04 66 6f 6f  00000000000000000000000000000001  00 00 00 00  00
    00000000000000000000000000000002  00
    00 00 00 01  00 00 01 8b cf e5 69 c8  00  01  00";

#[test]
fn worked_vector_add_record_both_directions() {
    let expected = hex(ADD_HEX);
    assert_eq!(expected.len(), 102);
    let m = RemoteLogMetadata::Segment(vector_add());
    assert_eq!(&encode(&m)[..], &expected[..]);
    assert_eq!(decode(&expected).unwrap(), m);
}

#[test]
fn worked_vector_update_record_both_directions() {
    let expected = hex(UPDATE_HEX);
    assert_eq!(expected.len(), 60);
    let u = RemoteLogMetadata::Update(vector_update());
    assert_eq!(&encode(&u)[..], &expected[..]);
    assert_eq!(decode(&expected).unwrap(), u);
}

fn samples() -> Vec<RemoteLogMetadata> {
    let mut finished = vector_add()
        .create_with_updates(&RemoteLogSegmentMetadataUpdate {
            custom_metadata: Some(Bytes::from_static(b"\x01\x02custom")),
            ..vector_update()
        })
        .unwrap();
    finished.segment_leader_epochs = BTreeMap::from([(0, 0), (3, 40), (7, 90)]);
    let long_topic =
        TopicIdPartition::new(Uuid::from_u128(u128::MAX - 5), "t".repeat(200), 2_000_000);
    vec![
        RemoteLogMetadata::Segment(vector_add()),
        RemoteLogMetadata::Segment(finished),
        RemoteLogMetadata::Update(vector_update()),
        RemoteLogMetadata::Update(RemoteLogSegmentMetadataUpdate {
            id: RemoteLogSegmentId::new(long_topic.clone(), Uuid::from_u128(77)),
            custom_metadata: Some(Bytes::from(vec![0xab; 300])),
            state: RemoteLogSegmentState::DeleteSegmentFinished,
            ..vector_update()
        }),
        RemoteLogMetadata::PartitionDelete(RemotePartitionDeleteMetadata {
            tp: long_topic,
            state: RemotePartitionDeleteState::DeletePartitionStarted,
            event_timestamp_ms: 5,
            broker_id: -1,
        }),
    ]
}

#[test]
fn round_trips() {
    for m in samples() {
        let bytes = encode(&m);
        assert_eq!(decode(&bytes).unwrap(), m, "{m:?}");
        assert_eq!(decode_record(&bytes).unwrap(), DecodedRecord::Metadata(m));
    }
}

#[test]
fn partition_delete_layout() {
    let d = RemoteLogMetadata::PartitionDelete(RemotePartitionDeleteMetadata {
        tp: tp(),
        state: RemotePartitionDeleteState::DeletePartitionFinished,
        event_timestamp_ms: 1_700_000_000_000,
        broker_id: 3,
    });
    let expected = hex(
        "01 02 00  04 66 6f 6f  00000000000000000000000000000001  00 00 00 00  00
         00 00 00 03  00 00 01 8b cf e5 68 00  02  00",
    );
    assert_eq!(&encode(&d)[..], &expected[..]);
    assert_eq!(decode(&expected).unwrap(), d);
}

#[test]
fn snapshot_record_round_trip() {
    let s = RemoteLogSegmentMetadataSnapshot {
        segment_id: Uuid::from_u64_pair(0, 2),
        start_offset: 0,
        end_offset: 99,
        broker_id: 1,
        max_timestamp_ms: 1_700_000_000_000,
        event_timestamp_ms: 1_700_000_000_123,
        segment_leader_epochs: BTreeMap::from([(0, 0)]),
        segment_size_in_bytes: 1_048_576,
        custom_metadata: None,
        state: RemoteLogSegmentState::CopySegmentFinished,
    };
    let bytes = encode_snapshot(&s);
    // header + uuid + 2*i64 + i32 + 2*i64 + (1 + 12 + 1) + i32 + 1 + 1 + 1
    assert_eq!(bytes.len(), 3 + 16 + 16 + 4 + 16 + 14 + 4 + 3);
    assert_eq!(&bytes[..3], &[1, 3, 0]);
    assert_eq!(decode_record(&bytes).unwrap(), DecodedRecord::Snapshot(s));
    assert!(matches!(decode(&bytes), Err(RlmmError::Serde { .. })));
}

#[test]
fn apikey0_with_finished_state_decodes() {
    let mut raw = hex(ADD_HEX);
    raw[99] = 0x03; // custom metadata: 2 bytes
    raw.splice(100..100, [0xca, 0xfe]);
    raw[102] = 1; // state COPY_SEGMENT_FINISHED
    let m = decode(&raw).unwrap();
    let RemoteLogMetadata::Segment(m) = m else {
        panic!("not a segment: {m:?}")
    };
    assert_eq!(m.state, RemoteLogSegmentState::CopySegmentFinished);
    assert_eq!(m.custom_metadata.as_deref(), Some(&[0xca, 0xfe][..]));
}

#[test]
fn lenient_inputs_are_accepted() {
    // Epochs out of order.
    let mut m = vector_add();
    m.segment_leader_epochs = BTreeMap::from([(1, 10), (2, 20)]);
    let mut raw = encode(&RemoteLogMetadata::Segment(m.clone())).to_vec();
    let first = raw.iter().position(|&b| b == 0x03).unwrap(); // array count 2+1
    let (a, b) = (first + 1, first + 14);
    let e1: Vec<u8> = raw[a..b].to_vec();
    let e2: Vec<u8> = raw[b..b + 13].to_vec();
    raw.splice(a..b + 13, e2.into_iter().chain(e1));
    assert_eq!(decode(&raw).unwrap(), RemoteLogMetadata::Segment(m));

    // Unknown top-level tagged field.
    let mut raw = hex(UPDATE_HEX);
    raw.pop();
    raw.extend_from_slice(&[0x01, 0x05, 0x02, 0xaa, 0xbb]);
    assert_eq!(
        decode(&raw).unwrap(),
        RemoteLogMetadata::Update(vector_update())
    );

    // Over-long varint for the topic name length (0x84 0x00 == 4).
    let mut raw = hex(UPDATE_HEX);
    raw.splice(3..4, [0x84, 0x00]);
    assert_eq!(
        decode(&raw).unwrap(),
        RemoteLogMetadata::Update(vector_update())
    );
}

fn assert_serde_err(raw: &[u8], why: &str) {
    match decode(raw) {
        Err(RlmmError::Serde { .. }) => {}
        other => panic!("{why}: expected Serde error, got {other:?}"),
    }
}

#[test]
fn rejections() {
    let add = hex(ADD_HEX);
    let upd = hex(UPDATE_HEX);

    let mut r = add.clone();
    r[0] = 0;
    assert_serde_err(&r, "frame version 0");
    r[0] = 2;
    assert_serde_err(&r, "frame version 2");

    let mut r = add.clone();
    r.push(0);
    assert_serde_err(&r, "trailing byte");

    for key in [4u8, 5, 0x7f] {
        let mut r = upd.clone();
        r[1] = key;
        assert_serde_err(&r, "unknown api key");
    }

    let mut r = upd.clone();
    r[2] = 1;
    assert_serde_err(&r, "version 1");

    let mut r = add.clone();
    r[3] = 0;
    assert_serde_err(&r, "null topic name");

    for bad in [4u8, 0xff, 0x7f] {
        let mut r = add.clone();
        r[100] = bad;
        assert_serde_err(&r, "unknown state in add");
        let mut r = upd.clone();
        r[58] = bad;
        assert_serde_err(&r, "unknown state in update");
    }

    let mut m = vector_add();
    m.end_offset = -1;
    assert_serde_err(&encode(&RemoteLogMetadata::Segment(m)), "end < start");
    let mut m = vector_add();
    m.segment_leader_epochs.clear();
    assert_serde_err(&encode(&RemoteLogMetadata::Segment(m)), "empty epochs");
    let mut m = vector_add();
    m.start_offset = -5;
    m.end_offset = -5;
    assert_serde_err(&encode(&RemoteLogMetadata::Segment(m)), "negative start");

    // Unknown partition-delete state.
    let d = RemoteLogMetadata::PartitionDelete(RemotePartitionDeleteMetadata {
        tp: tp(),
        state: RemotePartitionDeleteState::DeletePartitionMarked,
        event_timestamp_ms: 0,
        broker_id: 0,
    });
    let mut r = encode(&d).to_vec();
    let n = r.len();
    r[n - 2] = 3;
    assert_serde_err(&r, "unknown partition delete state");
}

#[test]
fn truncated_at_every_length() {
    let mut inputs: Vec<Vec<u8>> = vec![hex(ADD_HEX), hex(UPDATE_HEX)];
    inputs.extend(samples().iter().map(|m| encode(m).to_vec()));
    for full in inputs {
        for len in 0..full.len() {
            assert_serde_err(
                &full[..len],
                &format!("truncated to {len} of {}", full.len()),
            );
        }
    }
}
