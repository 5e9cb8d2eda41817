use super::*;
use crate::compression::{compress_with_level, decompress};
use crate::record::Header;
use crate::record_batch::BatchHeader;

const TS: i64 = 1_700_000_000_000;

fn b(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

/// A producer-style batch: idempotent and transactional, odd records, compressible payload.
fn source(codec: Compression) -> RecordBatch {
    let mut bb = BatchBuilder::new(TS);
    bb.compression = codec;
    bb.producer_id = 4242;
    bb.producer_epoch = 7;
    bb.base_sequence = 100;
    bb.is_transactional = true;
    let headers = vec![
        Header::new("trace", b("a")),
        Header::new("trace", b("b")),
        Header::new("null", None),
    ];
    bb.push(TS + 5, b("key-0"), b("value-0"), headers);
    bb.push(TS - 1_000, None, b("null key"), vec![]);
    bb.push(TS + 20, b("tombstone"), None, vec![]);
    bb.push(
        TS + 3,
        b("big"),
        Some(Bytes::from(vec![b'x'; 50_000])),
        vec![],
    );
    bb.build().unwrap()
}

fn target(codec: Compression) -> RebuildTarget {
    RebuildTarget {
        compression: codec,
        level: None,
        timestamp_type: TimestampType::CreateTime,
        log_append_time: -1,
    }
}

fn payload(batch: &RecordBatch) -> Bytes {
    batch.records_payload(1 << 30).unwrap()
}

/// (timestamp, key, value, headers) of one record, as a reader sees it.
type Seen = (i64, Option<Bytes>, Option<Bytes>, Vec<Header>);

/// Every record of `batch`, as a reader sees it.
fn contents(batch: &RecordBatch) -> Vec<Seen> {
    batch
        .records()
        .unwrap()
        .into_iter()
        .map(|r| (batch.record_timestamp(&r), r.key, r.value, r.headers))
        .collect()
}

#[test]
fn every_codec_pair_keeps_records_and_producer_fields() {
    for from in Compression::ALL {
        let src = source(from);
        for to in Compression::ALL {
            let out = rebuild(&src, &payload(&src), &target(to)).unwrap();
            let what = format!("{from} -> {to}");
            out.verify_crc().unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(out.compression().unwrap(), to, "{what}");
            assert_eq!(contents(&out), contents(&src), "{what}");
            assert_eq!(out.record_count(), 4, "{what}");
            assert_eq!(out.last_offset_delta(), 3, "{what}");
            assert_eq!(out.base_offset(), 0, "{what}");
            assert_eq!(out.partition_leader_epoch(), -1, "{what}");
            assert_eq!(
                (out.producer_id(), out.producer_epoch(), out.base_sequence()),
                (4242, 7, 100),
                "{what}"
            );
            assert!(out.is_transactional(), "{what}");
            assert!(!out.is_control(), "{what}");
            assert_eq!(out.timestamp_type(), TimestampType::CreateTime, "{what}");
            assert_eq!(out.max_timestamp(), TS + 20, "{what}");
            // Kafka's builder takes the base timestamp from the first record.
            assert_eq!(out.base_timestamp(), TS + 5, "{what}");
            if to != Compression::None {
                assert!(
                    out.size() < 10_000,
                    "{what}: not compressed, {}",
                    out.size()
                );
            }
        }
    }
}

#[test]
fn non_transactional_batch_without_producer_stays_so() {
    let mut bb = BatchBuilder::new(TS);
    bb.compression = Compression::Snappy;
    bb.push(TS, b("k"), b("v"), vec![]);
    let src = bb.build().unwrap();
    let out = rebuild(&src, &payload(&src), &target(Compression::Zstd)).unwrap();
    assert_eq!(
        (out.producer_id(), out.producer_epoch(), out.base_sequence()),
        (-1, -1, -1)
    );
    assert!(!out.is_transactional());
    assert_eq!(contents(&out), contents(&src));
}

#[test]
fn log_append_time_stamps_base_and_max_timestamp() {
    let src = source(Compression::Lz4);
    let t = RebuildTarget {
        timestamp_type: TimestampType::LogAppendTime,
        log_append_time: TS + 99_000,
        ..target(Compression::Gzip)
    };
    let out = rebuild(&src, &payload(&src), &t).unwrap();
    out.verify_crc().unwrap();
    assert_eq!(out.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(out.base_timestamp(), TS + 99_000);
    assert_eq!(out.max_timestamp(), TS + 99_000);
    for (ts, ..) in contents(&out) {
        assert_eq!(ts, TS + 99_000);
    }
}

/// A gzip batch whose records carry offset deltas 0, 2, 4 (what some old clients wrote).
fn gapped_gzip() -> RecordBatch {
    let mut bb = BatchBuilder::new(TS);
    for i in 0..3 {
        bb.push_record(Record {
            offset_delta: i * 2,
            timestamp_delta: i64::from(i),
            key: b("k"),
            value: b("v"),
            ..Record::default()
        });
    }
    let body = bb.build().unwrap().records_payload(1 << 20).unwrap();
    let packed = compress_with_level(Compression::Gzip, &body, None).unwrap();
    let mut h = BatchHeader::default();
    h.set_compression(Compression::Gzip);
    h.set_last_offset_delta(2);
    h.set_record_count(3);
    h.set_base_timestamp(TS);
    h.set_max_timestamp(TS + 2);
    let crc = h.compute_crc(&packed);
    h.set_crc(crc);
    RecordBatch::from_parts(&h, &packed).unwrap()
}

#[test]
fn offset_deltas_are_renumbered() {
    let src = gapped_gzip();
    let out = rebuild(&src, &payload(&src), &target(Compression::Gzip)).unwrap();
    out.verify_crc().unwrap();
    let deltas: Vec<i32> = out
        .records()
        .unwrap()
        .iter()
        .map(|r| r.offset_delta)
        .collect();
    assert_eq!(deltas, [0, 1, 2]);
    assert_eq!(contents(&out), contents(&src));
}

#[test]
fn record_count_mismatch_is_an_error() {
    let src = source(Compression::None);
    let mut h = src.header();
    h.set_record_count(5);
    let bad = src.with_header(&h).unwrap();
    let err = rebuild(&bad, &payload(&bad), &target(Compression::Gzip)).unwrap_err();
    assert!(matches!(err, BatchError::InvalidRecord(_)), "{err}");
}

#[test]
fn must_rebuild_follows_kafka() {
    use Compression::*;
    for from in Compression::ALL {
        for to in Compression::ALL {
            for seq in [true, false] {
                let expected = from != to || (from != None && !seq);
                assert_eq!(must_rebuild(from, to, seq), expected, "{from}->{to} {seq}");
            }
        }
    }
    assert!(!must_rebuild(None, None, false));
    assert!(!must_rebuild(Zstd, Zstd, true));
    assert!(must_rebuild(Zstd, Zstd, false));
    assert!(must_rebuild(None, Lz4, true));
}

#[test]
fn levels_change_gzip_and_zstd_output() {
    let text: Vec<u8> = (0..200_000u32)
        .map(|i| b"abcdefghij"[(i * 7 % 13 % 10) as usize] ^ (i / 1000) as u8)
        .collect();
    let mut bb = BatchBuilder::new(TS);
    bb.push(TS, b("k"), Some(Bytes::from(text.clone())), vec![]);
    let src = bb.build().unwrap();
    for (codec, low, high) in [(Compression::Gzip, 1, 9), (Compression::Zstd, -5, 19)] {
        let fast = compress_with_level(codec, &text, Some(low)).unwrap();
        let best = compress_with_level(codec, &text, Some(high)).unwrap();
        assert_ne!(
            fast, best,
            "{codec}: levels {low} and {high} gave the same bytes"
        );
        assert_eq!(decompress(codec, &fast).unwrap(), text);
        assert_eq!(decompress(codec, &best).unwrap(), text);
        for level in [low, high] {
            let t = RebuildTarget {
                level: Some(level),
                ..target(codec)
            };
            let out = rebuild(&src, &payload(&src), &t).unwrap();
            assert_eq!(contents(&out), contents(&src));
            let records = payload(&out);
            let want = compress_with_level(codec, &records, Some(level)).unwrap();
            assert_eq!(
                &out.body()[..],
                &want[..],
                "{codec} level {level} not applied"
            );
        }
    }
    // Kafka's gzip -1 is the default level.
    assert_eq!(
        compress_with_level(Compression::Gzip, &text, Some(-1)).unwrap(),
        compress_with_level(Compression::Gzip, &text, None).unwrap()
    );
}
