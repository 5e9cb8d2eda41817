//! `compression.type` on append: batches are rebuilt with the topic's codec (and level) exactly
//! when Kafka's LogValidator would, keeping records, producer fields and timestamps.
mod common;

use bytes::Bytes;
use common::*;
use shale_common::ManualClock;
use shale_local_log::{LogConfig, LogError};
use shale_protocol::compression::{compress_with_level, Compression};
use shale_protocol::record::{BatchBuilder, Header, Record};
use shale_protocol::record_batch::{BatchHeader, RecordBatch, TimestampType, BATCH_HEADER_LEN};

const TOPIC_CODECS: [&str; 6] = ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"];

fn with(pairs: &[(&str, &str)]) -> LogConfig {
    LogConfig::default()
        .with_overrides(pairs.iter().copied())
        .unwrap()
}

/// An idempotent, transactional batch of five compressible records with varied timestamps.
fn producer_batch(codec: Compression, seq: i32) -> Bytes {
    let mut b = BatchBuilder::new(T0);
    b.compression = codec;
    b.producer_id = 9;
    b.producer_epoch = 4;
    b.base_sequence = seq;
    b.is_transactional = true;
    for i in 0..5i64 {
        let headers = vec![Header::new("h", Some(Bytes::from(format!("{i}"))))];
        let value = Bytes::from(format!("value-{i}-").repeat(200));
        b.push(
            T0 + 7 - i,
            Some(Bytes::from(format!("k{i}"))),
            Some(value),
            headers,
        );
    }
    b.build().unwrap().into_bytes()
}

type Seen = (i64, Option<Bytes>, Option<Bytes>, Vec<Header>);

fn seen(b: &RecordBatch) -> Vec<Seen> {
    b.records()
        .unwrap()
        .into_iter()
        .map(|r| (b.record_timestamp(&r), r.key, r.value, r.headers))
        .collect()
}

fn expected_codec(topic: &str, producer: Compression) -> Compression {
    match topic {
        "producer" => producer,
        "uncompressed" => Compression::None,
        other => Compression::from_name(other).unwrap(),
    }
}

#[test]
fn every_producer_codec_times_every_topic_codec() {
    for producer in Compression::ALL {
        for topic in TOPIC_CODECS {
            let what = format!("producer {producer}, topic {topic}");
            let d = tempfile::tempdir().unwrap();
            let clock = ManualClock::new(T0);
            let log = open(d.path(), with(&[("compression.type", topic)]), &clock, true);
            let input = RecordBatch::new(producer_batch(producer, 0)).unwrap();
            let a = log.append(input.as_bytes().clone(), client()).unwrap();
            assert_eq!((a.first_offset, a.last_offset), (0, 4), "{what}");
            assert_eq!(a.max_timestamp, T0 + 7, "{what}");
            let want = expected_codec(topic, producer);
            let rebuilt = want != producer;
            assert_eq!(a.records_converted, if rebuilt { 5 } else { 0 }, "{what}");
            let got = parse(log.read(0, 1 << 20, 5, false).unwrap().records);
            assert_eq!(got.len(), 1, "{what}");
            let g = &got[0];
            g.verify_crc().unwrap();
            assert_eq!(g.compression().unwrap(), want, "{what}");
            assert_eq!(seen(g), seen(&input), "{what}");
            assert_eq!((g.base_offset(), g.last_offset()), (0, 4), "{what}");
            assert_eq!(g.partition_leader_epoch(), 3, "{what}");
            assert_eq!(
                (g.producer_id(), g.producer_epoch(), g.base_sequence()),
                (9, 4, 0),
                "{what}"
            );
            assert!(g.is_transactional(), "{what}");
            assert_eq!(g.timestamp_type(), TimestampType::CreateTime, "{what}");
            assert_eq!(g.max_timestamp(), T0 + 7, "{what}");
            if !rebuilt {
                assert_eq!(
                    &g.as_bytes()[BATCH_HEADER_LEN..],
                    &input.as_bytes()[BATCH_HEADER_LEN..],
                    "{what}: body should be kept"
                );
            }
        }
    }
}

#[test]
fn rebuilt_idempotent_batch_keeps_sequences_and_dedups_retries() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(
        d.path(),
        with(&[("compression.type", "zstd")]),
        &clock,
        true,
    );
    let first = producer_batch(Compression::Gzip, 0);
    assert_eq!(log.append(first.clone(), client()).unwrap().first_offset, 0);
    let second = log
        .append(producer_batch(Compression::None, 5), client())
        .unwrap();
    assert_eq!((second.first_offset, second.last_offset), (5, 9));
    // A retry of the first batch is a duplicate, answered with its original offsets.
    let retry = log.append(first, client()).unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.first_offset, retry.last_offset), (0, 4));
    assert_eq!(retry.records_converted, 0);
    // A gap in the sequence is still refused.
    let err = log
        .append(producer_batch(Compression::Lz4, 20), client())
        .unwrap_err();
    assert!(matches!(err, LogError::OutOfOrderSequence { .. }), "{err}");
    assert_eq!(log.log_end_offset(), 10);
    let got = all_batches(&log);
    assert_eq!(got.len(), 2);
    for g in &got {
        assert_eq!(g.compression().unwrap(), Compression::Zstd);
    }
    assert_eq!(got[1].base_sequence(), 5);
}

#[test]
fn log_append_time_topic_rebuild_uses_append_time() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 60_000);
    let cfg = with(&[
        ("compression.type", "snappy"),
        ("message.timestamp.type", "LogAppendTime"),
    ]);
    let log = open(d.path(), cfg, &clock, true);
    let a = log
        .append(producer_batch(Compression::Zstd, 0), client())
        .unwrap();
    assert_eq!(a.log_append_time, T0 + 60_000);
    assert_eq!(a.max_timestamp, T0 + 60_000);
    let got = parse(log.read(0, 1 << 20, 5, false).unwrap().records);
    let g = &got[0];
    g.verify_crc().unwrap();
    assert_eq!(g.compression().unwrap(), Compression::Snappy);
    assert_eq!(g.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(
        (g.base_timestamp(), g.max_timestamp()),
        (T0 + 60_000, T0 + 60_000)
    );
    assert!(seen(g).iter().all(|(ts, ..)| *ts == T0 + 60_000));
    let tx = log.offset_for_timestamp(T0 + 60_000).unwrap();
    assert_eq!(tx.map(|t| t.offset), Some(0));
}

#[test]
fn rebuilt_batch_must_fit_max_message_bytes() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = with(&[
        ("compression.type", "uncompressed"),
        ("max.message.bytes", "2000"),
    ]);
    let log = open(d.path(), cfg, &clock, true);
    let input = producer_batch(Compression::Gzip, 0);
    assert!(
        input.len() < 2000,
        "the gzip batch itself fits: {}",
        input.len()
    );
    let err = log.append(input, client()).unwrap_err();
    match err {
        LogError::RecordTooLarge { size, max, .. } => assert!(size > max && max == 2000),
        other => panic!("expected RecordTooLarge, got {other}"),
    }
    assert_eq!(log.log_end_offset(), 0);
}

/// A compressed batch whose records carry offset deltas 0, 2, 4.
fn gapped(codec: Compression) -> Bytes {
    let mut bb = BatchBuilder::new(T0);
    for i in 0..3 {
        bb.push_record(Record {
            offset_delta: i * 2,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            ..Record::default()
        });
    }
    let body = bb.build().unwrap().records_payload(1 << 20).unwrap();
    let packed = compress_with_level(codec, &body, None).unwrap();
    let mut h = BatchHeader::default();
    h.set_compression(codec);
    h.set_last_offset_delta(2);
    h.set_record_count(3);
    h.set_base_timestamp(T0);
    h.set_max_timestamp(T0);
    let crc = h.compute_crc(&packed);
    h.set_crc(crc);
    RecordBatch::from_parts(&h, &packed).unwrap().into_bytes()
}

#[test]
fn compressed_batch_with_gapped_offsets_is_rebuilt_in_its_codec() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), LogConfig::default(), &clock, true);
    let a = log.append(gapped(Compression::Lz4), client()).unwrap();
    assert_eq!(
        (a.first_offset, a.last_offset, a.records_converted),
        (0, 2, 3)
    );
    let got = parse(log.read(0, 1 << 20, 3, false).unwrap().records);
    assert_eq!(got[0].compression().unwrap(), Compression::Lz4);
    let offsets: Vec<i64> = got[0]
        .records()
        .unwrap()
        .iter()
        .map(|r| got[0].base_offset() + i64::from(r.offset_delta))
        .collect();
    assert_eq!(offsets, [0, 1, 2]);
    // Uncompressed batches keep their bytes (Kafka assigns their offsets in place).
    let plain = gapped(Compression::None);
    let b = log.append(plain.clone(), client()).unwrap();
    assert_eq!(b.records_converted, 0);
    let got = parse(log.read(3, 1 << 20, 6, false).unwrap().records);
    assert_eq!(
        &got[0].as_bytes()[BATCH_HEADER_LEN..],
        &plain[BATCH_HEADER_LEN..]
    );
}

#[test]
fn topic_levels_are_applied() {
    for (codec, key, level) in [
        (Compression::Gzip, "compression.gzip.level", 1),
        (Compression::Gzip, "compression.gzip.level", 9),
        (Compression::Zstd, "compression.zstd.level", 1),
        (Compression::Zstd, "compression.zstd.level", 19),
    ] {
        let d = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        let cfg = with(&[
            ("compression.type", codec.name()),
            (key, &level.to_string()),
        ]);
        let log = open(d.path(), cfg, &clock, true);
        log.append(producer_batch(Compression::None, 0), client())
            .unwrap();
        let got = parse(log.read(0, 1 << 20, 5, false).unwrap().records);
        let records = got[0].records_payload(1 << 20).unwrap();
        let want = compress_with_level(codec, &records, Some(level)).unwrap();
        assert_eq!(&got[0].body()[..], &want[..], "{key}={level}");
    }
}
