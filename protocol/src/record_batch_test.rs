use super::*;
use crate::record::{BatchBuilder, Header};
use shale_common::SeededRng;

/// `n` pseudo-random bytes, eight per RNG call (the seeded RNG is slow in debug builds).
fn random_bytes(rng: &dyn shale_common::Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(n);
    v
}

const TS: i64 = 1_700_000_000_000;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| (c as char).to_digit(16).unwrap() as u8)
        .collect();
    digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
}

/// formats.md §9: one record key "k" value "v", baseOffset 0, leaderEpoch -1, no producer.
const SIMPLE_BATCH: &str = "00 00 00 00 00 00 00 00 | 00 00 00 3A | FF FF FF FF | 02 | E9 9B 8D D8 | 00 00 | 00 00 00 00 |
    00 00 01 8B CF E5 68 00 | 00 00 01 8B CF E5 68 00 | FF FF FF FF FF FF FF FF | FF FF | FF FF FF FF | 00 00 00 01 |
    10 00 00 00 02 6B 02 76 00";

/// formats.md §9: COMMIT marker, producerId 1000, epoch 0, coordinatorEpoch 5.
const COMMIT_BATCH: &str = "00 00 00 00 00 00 00 00 | 00 00 00 42 | FF FF FF FF | 02 | FC 84 B0 34 | 00 30 | 00 00 00 00 |
    00 00 01 8B CF E5 68 00 | 00 00 01 8B CF E5 68 00 | 00 00 00 00 00 00 03 E8 | 00 00 | FF FF FF FF | 00 00 00 01 |
    20 00 00 00 08 00 00 00 01 0C 00 00 00 00 00 05 00";

fn simple() -> RecordBatch {
    RecordBatch::new(Bytes::from(hex(SIMPLE_BATCH))).unwrap()
}

/// Recomputes the CRC of a hand-edited batch so that parsing reaches the records.
fn reseal(mut v: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&v[CRC_START..]);
    v[17..21].copy_from_slice(&crc.to_be_bytes());
    v
}

fn b(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn spec_vector_simple_batch_getters() {
    let batch = simple();
    assert_eq!(batch.size(), 70);
    assert_eq!(batch.base_offset(), 0);
    assert_eq!(batch.batch_length(), 58);
    assert_eq!(batch.partition_leader_epoch(), -1);
    assert_eq!(batch.magic(), 2);
    assert_eq!(batch.crc(), 0xE99B_8DD8);
    assert_eq!(batch.attributes(), 0);
    assert_eq!(batch.compression().unwrap(), Compression::None);
    assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
    assert!(!batch.is_transactional() && !batch.is_control() && !batch.has_delete_horizon());
    assert_eq!(batch.delete_horizon_ms(), None);
    assert_eq!(batch.last_offset_delta(), 0);
    assert_eq!(batch.base_timestamp(), TS);
    assert_eq!(batch.max_timestamp(), TS);
    assert_eq!(batch.producer_id(), -1);
    assert!(!batch.has_producer_id());
    assert_eq!(batch.producer_epoch(), -1);
    assert_eq!(batch.base_sequence(), -1);
    assert_eq!(batch.last_sequence(), -1);
    assert_eq!(batch.record_count(), 1);
    assert_eq!(batch.last_offset(), 0);
    assert_eq!(batch.next_offset(), 1);
    batch.verify_crc().unwrap();
    assert_eq!(batch.compute_crc(), 0xE99B_8DD8);

    let h = batch.header();
    assert_eq!(&h.as_bytes()[..], &batch.as_bytes()[..61]);
    assert_eq!(h.crc(), batch.crc());
    assert_eq!(h.size(), 70);
    assert_eq!(h.compute_crc(&batch.body()), 0xE99B_8DD8);
    assert_eq!(&batch.body()[..], &hex("10 00 00 00 02 6B 02 76 00")[..]);

    let recs = batch.records().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].key, b("k"));
    assert_eq!(recs[0].value, b("v"));
    assert_eq!(recs[0].offset_delta, 0);
    assert_eq!(recs[0].timestamp_delta, 0);
    assert!(recs[0].headers.is_empty());
    assert_eq!(batch.record_timestamp(&recs[0]), TS);
    assert_eq!(batch.max_record_timestamp().unwrap(), TS);
}

#[test]
fn builder_reproduces_spec_vectors_byte_for_byte() {
    let mut bb = BatchBuilder::new(TS);
    bb.push(TS, b("k"), b("v"), vec![]);
    assert_eq!(&bb.build().unwrap().as_bytes()[..], &hex(SIMPLE_BATCH)[..]);

    let mut bb = BatchBuilder::new(TS);
    bb.producer_id = 1000;
    bb.producer_epoch = 0;
    bb.is_transactional = true;
    bb.is_control = true;
    bb.push(
        TS,
        Some(Bytes::from_static(&[0, 0, 0, 1])),
        Some(Bytes::from_static(&[0, 0, 0, 0, 0, 5])),
        vec![],
    );
    let batch = bb.build().unwrap();
    assert_eq!(&batch.as_bytes()[..], &hex(COMMIT_BATCH)[..]);
    assert_eq!(batch.crc(), 0xFC84_B034);
    assert!(batch.is_control() && batch.is_transactional());
    assert_eq!(batch.attributes(), 0x30);
    assert_eq!(batch.size(), 78);
}

#[test]
fn header_setters_round_trip() {
    let mut h = simple().header();
    h.set_base_offset(0x0102_0304_0506_0708);
    h.set_partition_leader_epoch(77);
    h.set_timestamp_type(TimestampType::LogAppendTime);
    h.set_max_timestamp(TS + 99);
    h.set_last_offset_delta(4);
    h.set_producer(i64::MAX - 1, 12, i32::MAX - 1);
    h.set_record_count(5);
    h.set_transactional(true);
    h.set_compression(Compression::Zstd);
    h.set_crc(0xDEAD_BEEF);
    let raw = h.as_bytes();
    assert_eq!(&raw[0..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&raw[12..16], &77i32.to_be_bytes());
    assert_eq!(&raw[17..21], &[0xDE, 0xAD, 0xBE, 0xEF]);
    assert_eq!(&raw[21..23], &[0x00, 0x1C]);
    assert_eq!(h.base_offset(), 0x0102_0304_0506_0708);
    assert_eq!(h.partition_leader_epoch(), 77);
    assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(h.max_timestamp(), TS + 99);
    assert_eq!(h.last_offset_delta(), 4);
    assert_eq!(h.last_offset(), 0x0102_0304_0506_070C);
    assert_eq!(h.producer_id(), i64::MAX - 1);
    assert_eq!(h.producer_epoch(), 12);
    assert_eq!(h.base_sequence(), i32::MAX - 1);
    // MAX-1, MAX, 0, 1, 2: five records wrap past i32::MAX.
    assert_eq!(h.last_sequence(), 2);
    assert_eq!(h.record_count(), 5);
    assert!(h.is_transactional());
    assert_eq!(h.compression().unwrap(), Compression::Zstd);
    assert_eq!(h.crc(), 0xDEAD_BEEF);

    h.set_timestamp_type(TimestampType::CreateTime);
    h.set_transactional(false);
    h.set_control(true);
    h.set_compression(Compression::None);
    assert_eq!(h.attributes(), 0x20);
    h.set_delete_horizon(Some(555));
    assert!(h.has_delete_horizon());
    assert_eq!(h.delete_horizon_ms(), Some(555));
    assert_eq!(h.base_timestamp(), 555);
    h.set_delete_horizon(None);
    assert_eq!(h.attributes(), 0x20);

    assert!(matches!(
        BatchHeader::from_slice(&[0u8; 60]),
        Err(BatchError::Truncated)
    ));
    let h2 = BatchHeader::from_slice(&hex(SIMPLE_BATCH)).unwrap();
    assert_eq!(h2, simple().header());
    let dbg = format!("{h2:?}");
    assert!(dbg.contains("base_timestamp: 1700000000000"), "{dbg}");
    assert!(dbg.contains("crc: 0xe99b8dd8"), "{dbg}");
}

#[test]
fn increment_sequence_wraps_like_kafka() {
    assert_eq!(increment_sequence(5, 3), 8);
    assert_eq!(increment_sequence(i32::MAX, 0), i32::MAX);
    assert_eq!(increment_sequence(i32::MAX, 1), 0);
    assert_eq!(increment_sequence(i32::MAX - 2, 5), 2);
    // Garbage never panics.
    let _ = increment_sequence(i32::MIN, i32::MIN);
    let _ = increment_sequence(i32::MAX, i32::MIN);
}

#[test]
fn default_header_is_an_empty_batch_header() {
    let h = BatchHeader::default();
    assert_eq!(h.magic(), 2);
    assert_eq!(h.batch_length(), 49);
    assert_eq!(h.size(), 61);
    assert_eq!(h.producer_id(), NO_PRODUCER_ID);
    assert_eq!(h.partition_leader_epoch(), -1);
    let mut h = h;
    h.set_crc(h.compute_crc(&[]));
    let batch = RecordBatch::from_parts(&h, &[]).unwrap();
    batch.verify_crc().unwrap();
    assert!(batch.records().unwrap().is_empty());
}

#[test]
fn crc_ignores_offset_epoch_but_not_body_or_attributes() {
    let batch = simple();
    let orig = batch.crc();

    let mut h = batch.header();
    h.set_base_offset(123_456);
    h.set_partition_leader_epoch(9);
    let moved = batch.with_header(&h).unwrap();
    moved.verify_crc().unwrap();
    assert_eq!(moved.base_offset(), 123_456);
    assert_eq!(moved.partition_leader_epoch(), 9);

    let mut h = batch.header();
    h.set_max_timestamp(TS + 1);
    let stale = batch.with_header(&h).unwrap();
    assert!(matches!(
        stale.verify_crc(),
        Err(BatchError::CorruptCrc { .. })
    ));
    h.set_crc(h.compute_crc(&batch.body()));
    batch.with_header(&h).unwrap().verify_crc().unwrap();

    // Every byte of the CRC-covered region matters; base offset, length prefix... do not.
    let raw = hex(SIMPLE_BATCH);
    for i in 0..raw.len() {
        let mut v = raw.clone();
        v[i] ^= 0x40;
        match RecordBatch::new(Bytes::from(v)) {
            Ok(b) if i >= CRC_START || (17..21).contains(&i) => match b.verify_crc() {
                Err(BatchError::CorruptCrc { expected, actual }) => {
                    assert_ne!(expected, actual);
                    if i >= CRC_START {
                        assert_eq!(expected, orig);
                    }
                }
                other => panic!("flip at {i}: {other:?}"),
            },
            Ok(b) => b.verify_crc().unwrap(),
            Err(e) => assert!((8..12).contains(&i) || i == 16, "flip at {i}: {e}"),
        }
    }
}

fn tricky_builder(codec: Compression) -> BatchBuilder {
    let mut bb = BatchBuilder::new(TS);
    bb.compression = codec;
    bb.base_offset = 1000;
    bb.partition_leader_epoch = 3;
    bb.producer_id = 77;
    bb.producer_epoch = 2;
    bb.base_sequence = 10;
    let dup = vec![
        Header::new("trace", b("a")),
        Header::new("trace", b("b")),
        Header::new("empty", Some(Bytes::new())),
        Header::new("null", None),
        Header::new("trace", b("c")),
    ];
    bb.push(TS, b("key-0"), b("value-0"), dup);
    bb.push(TS + 10, None, b("null key"), vec![]);
    bb.push(
        TS - 5_000,
        b("tombstone"),
        None,
        vec![Header::new("h", None)],
    );
    bb.push(TS + (1i64 << 33), b(""), b(""), vec![]); // delta > 2^31 ms
    bb.push(TS - (1i64 << 40), None, None, vec![]);
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    bb.push(TS + 1, b("big"), Some(Bytes::from(big)), vec![]);
    bb
}

#[test]
fn builder_parse_round_trip_every_codec() {
    for codec in Compression::ALL {
        let bb = tricky_builder(codec);
        let batch = bb.build().unwrap();
        batch.verify_crc().unwrap();
        assert_eq!(batch.compression().unwrap(), codec);
        assert_eq!(batch.record_count(), 6);
        assert_eq!(batch.last_offset_delta(), 5);
        assert_eq!(batch.base_offset(), 1000);
        assert_eq!(batch.last_offset(), 1005);
        assert_eq!(batch.partition_leader_epoch(), 3);
        assert_eq!(batch.max_timestamp(), TS + (1i64 << 33));
        assert_eq!(batch.base_sequence(), 10);
        assert_eq!(batch.last_sequence(), 15);
        assert_eq!(batch.producer_id(), 77);
        assert_eq!(batch.producer_epoch(), 2);
        if codec != Compression::None {
            assert!(
                batch.size() < 100_000,
                "{codec} did not compress: {}",
                batch.size()
            );
        }
        let recs = batch.records().unwrap();
        assert_eq!(recs, bb.records(), "{codec}");
        let keys: Vec<_> = recs[0]
            .headers
            .iter()
            .map(|h| h.key_str().unwrap())
            .collect();
        assert_eq!(keys, ["trace", "trace", "empty", "null", "trace"]);
        let vals: Vec<_> = recs[0].headers.iter().map(|h| h.value.clone()).collect();
        assert_eq!(vals, [b("a"), b("b"), Some(Bytes::new()), None, b("c")]);
        assert_eq!(recs[3].timestamp_delta, 1i64 << 33);
        assert_eq!(batch.record_timestamp(&recs[4]), TS - (1i64 << 40));
        let mut seen = 0;
        batch
            .for_each_record(|r| {
                assert_eq!(r, &recs[seen]);
                seen += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, 6);
        assert_eq!(batch.max_record_timestamp().unwrap(), TS + (1i64 << 33));
    }
}

#[test]
fn for_each_record_is_zero_copy_for_uncompressed_batches() {
    let batch = tricky_builder(Compression::None).build().unwrap();
    let range = batch.as_bytes().as_ptr_range();
    batch
        .for_each_record(|r| {
            for part in [&r.key, &r.value].into_iter().flatten() {
                if !part.is_empty() {
                    assert!(range.contains(&part.as_ptr()));
                }
            }
            for h in &r.headers {
                assert!(range.contains(&h.key.as_ptr()));
            }
            Ok(())
        })
        .unwrap();
    // Errors from the callback stop the walk and come back unchanged.
    let mut calls = 0;
    let err = batch.for_each_record(|_| {
        calls += 1;
        Err(BatchError::InvalidRecord("stop".into()))
    });
    assert_eq!(err, Err(BatchError::InvalidRecord("stop".into())));
    assert_eq!(calls, 1);
}

#[test]
fn log_append_time_and_max_timestamp_override() {
    let mut bb = BatchBuilder::new(TS);
    bb.timestamp_type = TimestampType::LogAppendTime;
    bb.max_timestamp = Some(TS + 500);
    bb.push(TS + 1, None, b("x"), vec![]);
    let batch = bb.build().unwrap();
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(batch.attributes() & 0x08, 0x08);
    assert_eq!(batch.max_timestamp(), TS + 500);
    let r = &batch.records().unwrap()[0];
    assert_eq!(batch.record_timestamp(r), TS + 500);
}

#[test]
fn new_rejects_bad_framing() {
    let raw = hex(SIMPLE_BATCH);
    assert_eq!(
        RecordBatch::new(Bytes::from(raw[..11].to_vec())),
        Err(BatchError::Truncated)
    );
    assert_eq!(
        RecordBatch::new(Bytes::from(raw[..69].to_vec())),
        Err(BatchError::Truncated)
    );
    let mut longer = raw.clone();
    longer.push(0);
    assert_eq!(
        RecordBatch::new(Bytes::from(longer)),
        Err(BatchError::InvalidBatchLength(58))
    );
    let mut short_len = raw.clone();
    short_len[8..12].copy_from_slice(&48i32.to_be_bytes());
    assert_eq!(
        RecordBatch::new(Bytes::from(short_len)),
        Err(BatchError::InvalidBatchLength(48))
    );
    let mut neg = raw.clone();
    neg[8..12].copy_from_slice(&(-1i32).to_be_bytes());
    assert_eq!(
        RecordBatch::new(Bytes::from(neg)),
        Err(BatchError::InvalidBatchLength(-1))
    );
    let mut magic1 = raw.clone();
    magic1[16] = 1;
    assert_eq!(
        RecordBatch::new(Bytes::from(magic1)),
        Err(BatchError::UnsupportedMagic(1))
    );
    let mut codec7 = raw.clone();
    codec7[22] = 7;
    let b7 = RecordBatch::new(Bytes::from(reseal(codec7))).unwrap();
    assert_eq!(b7.compression(), Err(BatchError::UnknownCompression(7)));
    assert_eq!(b7.records(), Err(BatchError::UnknownCompression(7)));
}

fn expect_invalid_record(v: Vec<u8>, needle: &str) {
    let v = reseal(v);
    let batch = RecordBatch::new(Bytes::from(v)).unwrap();
    batch.verify_crc().unwrap();
    match batch.records() {
        Err(BatchError::InvalidRecord(msg)) => {
            assert!(msg.contains(needle), "{needle:?} not in {msg:?}")
        }
        other => panic!("{needle}: expected InvalidRecord, got {other:?}"),
    }
    let err = batch.for_each_record(|_| Ok(())).unwrap_err();
    assert!(
        matches!(&err, BatchError::InvalidRecord(m) if m.contains(needle)),
        "{err:?}"
    );
    assert_eq!(batch.for_each_record_view(|_| Ok(())), Err(err.clone()));
    assert!(!err.is_corrupt_message());
}

/// The simple batch with a replaced body (length fixed, CRC resealed by the caller).
fn with_body(count: i32, body: &[u8]) -> Vec<u8> {
    let raw = hex(SIMPLE_BATCH);
    let mut v = raw[..61].to_vec();
    v[8..12].copy_from_slice(&(49 + body.len() as i32).to_be_bytes());
    v[57..61].copy_from_slice(&count.to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn record_validation_errors() {
    let rec = hex("10 00 00 00 02 6B 02 76 00");
    expect_invalid_record(with_body(2, &rec), "holds only 1");
    expect_invalid_record(with_body(0, &rec), "9 bytes left after");
    let mut trailing = rec.clone();
    trailing.push(0);
    expect_invalid_record(with_body(1, &trailing), "1 bytes left after");
    expect_invalid_record(with_body(-1, &rec), "negative record count");
    // Declared length one too long (runs past the payload) and one too short (fields overrun).
    expect_invalid_record(
        with_body(1, &hex("12 00 00 00 02 6B 02 76 00")),
        "only 8 remain",
    );
    expect_invalid_record(
        with_body(1, &hex("0E 00 00 00 02 6B 02 76 00")),
        "ends before",
    );
    // Declared length covers an extra byte the fields do not use.
    expect_invalid_record(
        with_body(1, &hex("12 00 00 00 02 6B 02 76 00 00")),
        "fields use 8",
    );
    expect_invalid_record(with_body(1, &hex("01")), "negative record length");
    // headersCount = -1.
    expect_invalid_record(
        with_body(1, &hex("10 00 00 00 02 6B 02 76 01")),
        "negative header count",
    );
    // One header whose key is 0xFF (not UTF-8): accepted as Kafka accepts it, bytes kept.
    let lenient = reseal(with_body(1, &hex("18 00 00 00 02 6B 02 76 02 02 FF 02 61")));
    let recs = RecordBatch::new(Bytes::from(lenient))
        .unwrap()
        .records()
        .unwrap();
    assert_eq!(&recs[0].headers[0].key[..], &[0xFF]);
    // Header key length -1 (null key).
    expect_invalid_record(
        with_body(1, &hex("14 00 00 00 02 6B 02 76 02 01 01")),
        "negative header key length",
    );
    // Over-long varlong timestamp delta inside a record.
    expect_invalid_record(
        with_body(1, &hex("18 00 FF FF FF FF FF FF FF FF FF FF FF")),
        "longer than 10 bytes",
    );
    // The same shapes with correct lengths parse: a two-byte UTF-8 header key.
    let ok = reseal(with_body(
        1,
        &hex("1A 00 00 00 02 6B 02 76 02 04 C3 A9 02 61"),
    ));
    let recs = RecordBatch::new(Bytes::from(ok))
        .unwrap()
        .records()
        .unwrap();
    assert_eq!(recs[0].headers[0].key_str(), Some("é"));
    assert_eq!(recs[0].headers[0].value, b("a"));
}

#[test]
fn compressed_payload_errors() {
    let batch = tricky_builder(Compression::Gzip).build().unwrap();
    let mut v = batch.as_bytes().to_vec();
    let mid = 61 + (v.len() - 61) / 2;
    v[mid] ^= 0xFF;
    let bad = RecordBatch::new(Bytes::from(reseal(v))).unwrap();
    match bad.records() {
        Err(e @ BatchError::Decompression { .. }) => assert!(e.is_corrupt_message()),
        other => panic!("{other:?}"),
    }
    // A small limit on a legitimate batch.
    assert!(matches!(
        batch.records_limited(1000),
        Err(BatchError::DecompressedTooLarge {
            codec: Compression::Gzip,
            limit: 1000
        })
    ));
    assert!(batch.for_each_record_limited(1 << 20, |_| Ok(())).is_ok());
    // The view walk fails the same ways.
    assert_eq!(
        bad.for_each_record_view(|_| Ok(())),
        bad.for_each_record(|_| Ok(()))
    );
    assert_eq!(
        batch.for_each_record_view_limited(1000, |_| Ok(())),
        Err(BatchError::DecompressedTooLarge {
            codec: Compression::Gzip,
            limit: 1000
        })
    );
    assert!(batch
        .for_each_record_view_limited(1 << 20, |_| Ok(()))
        .is_ok());
}

fn three_batches() -> (Vec<RecordBatch>, Vec<u8>) {
    let mut out = Vec::new();
    let mut all = Vec::new();
    for (i, codec) in [Compression::None, Compression::Lz4, Compression::None]
        .into_iter()
        .enumerate()
    {
        let mut bb = BatchBuilder::new(TS);
        bb.compression = codec;
        bb.base_offset = (i as i64) * 10;
        for j in 0..=i {
            bb.push(
                TS + j as i64,
                b("k"),
                b("some value"),
                vec![Header::new("h", b("v"))],
            );
        }
        let batch = bb.build().unwrap();
        all.extend_from_slice(batch.as_bytes());
        out.push(batch);
    }
    (out, all)
}

#[test]
fn iterator_splits_concatenated_batches() {
    let (expect, all) = three_batches();
    let buf = Bytes::from(all);
    let mut it = batches(buf.clone());
    let got: Vec<_> = it.by_ref().map(Result::unwrap).collect();
    assert_eq!(got, expect);
    assert_eq!(it.truncated_tail(), 0);
    assert_eq!(it.position(), buf.len());
    // Zero-copy: each batch points into the input.
    let range = buf.as_ptr_range();
    assert!(got.iter().all(|b| range.contains(&b.as_bytes().as_ptr())));
    assert_eq!(batches(Bytes::new()).count(), 0);
}

#[test]
fn iterator_truncated_tail_at_every_cut() {
    let (expect, all) = three_batches();
    let last_start = expect[0].size() + expect[1].size();
    for cut in last_start..all.len() {
        let mut it = batches(Bytes::copy_from_slice(&all[..cut]));
        let got: Vec<_> = it
            .by_ref()
            .map(|r| r.expect("no error on a truncated tail"))
            .collect();
        assert_eq!(got, expect[..2], "cut at {cut}");
        assert_eq!(it.truncated_tail(), cut - last_start, "cut at {cut}");
        assert_eq!(it.position(), last_start);
        assert!(it.next().is_none());
    }
    // Cuts inside the first batch give nothing, silently.
    for cut in 1..expect[0].size() {
        let mut it = batches(Bytes::copy_from_slice(&all[..cut]));
        assert!(it.next().is_none());
        assert_eq!(it.truncated_tail(), cut);
    }
}

#[test]
fn iterator_errors_end_iteration() {
    let (expect, all) = three_batches();
    let second = expect[0].size();

    let mut v = all.clone();
    v[second + 8..second + 12].copy_from_slice(&48i32.to_be_bytes());
    let mut it = batches(Bytes::from(v));
    assert!(it.next().unwrap().is_ok());
    assert_eq!(it.next(), Some(Err(BatchError::InvalidBatchLength(48))));
    assert_eq!(it.position(), second);
    assert_eq!(it.next(), None);

    let mut v = all.clone();
    v[second + 16] = 1;
    let mut it = batches(Bytes::from(v));
    assert!(it.next().unwrap().is_ok());
    assert_eq!(it.next(), Some(Err(BatchError::UnsupportedMagic(1))));
    assert_eq!(it.next(), None);

    // A huge declared length reads as a truncated tail.
    let mut v = all.clone();
    v[second + 8..second + 12].copy_from_slice(&i32::MAX.to_be_bytes());
    let mut it = batches(Bytes::from(v));
    assert!(it.next().unwrap().is_ok());
    assert_eq!(it.next(), None);
    assert_eq!(it.truncated_tail(), all.len() - second);
}

/// Exercises every parsing entry point; only the absence of panics matters.
fn poke(buf: Bytes) {
    let mut it = batches(buf.clone());
    for b in it.by_ref() {
        let Ok(b) = b else { break };
        let _ = b.verify_crc();
        let _ = format!("{b:?}");
        let _ = (
            b.last_offset(),
            b.next_offset(),
            b.last_sequence(),
            b.size(),
        );
        let _ = b.records_limited(1 << 20);
        let by_bytes = b.for_each_record_limited(1 << 20, |_| Ok(()));
        assert_eq!(
            b.for_each_record_view_limited(1 << 20, |_| Ok(())),
            by_bytes
        );
        let _ = b.max_record_timestamp();
    }
    let _ = it.truncated_tail();
    let _ = RecordBatch::new(buf.clone());
    if let Ok(h) = BatchHeader::from_slice(&buf) {
        let _ = (
            h.size(),
            h.last_sequence(),
            h.compression(),
            h.compute_crc(&buf),
        );
    }
    let mut rest = buf;
    let _ = crate::record::Record::decode(&mut rest);
}

#[test]
fn garbage_never_panics() {
    let rng = SeededRng::new(0x5A1E);
    for _ in 0..3000 {
        let len = (rng.next_u64() % 300) as usize;
        let mut v = random_bytes(&*rng, len);
        if len >= 17 && rng.next_u64() & 1 == 0 {
            // Make it look like a batch so parsing gets further.
            let blen = (len as i32 - 12).max(0);
            v[8..12].copy_from_slice(&blen.to_be_bytes());
            v[16] = 2;
            if len >= 61 && rng.next_u64() & 1 == 0 {
                v[21] = 0;
                v[22] &= 0x07;
                v = reseal(v);
            }
        }
        poke(Bytes::from(v));
    }
    // Extreme lengths.
    for blen in [i32::MIN, -1, 0, 48, 49, 50, i32::MAX] {
        let mut v = vec![0u8; 70];
        v[8..12].copy_from_slice(&blen.to_be_bytes());
        v[16] = 2;
        poke(Bytes::from(v));
    }
}

#[test]
fn mutated_valid_batches_never_panic() {
    let rng = SeededRng::new(42);
    for codec in Compression::ALL {
        // The first five tricky records (without the 200 kB one, to keep this fast).
        let mut bb = BatchBuilder::new(TS);
        bb.compression = codec;
        for r in tricky_builder(codec).records().iter().take(5) {
            bb.push_record(r.clone());
        }
        let base = bb.build().unwrap().as_bytes().to_vec();
        for _ in 0..300 {
            let mut v = base.clone();
            let flips = 1 + rng.next_u64() % 4;
            for _ in 0..flips {
                let i = 61 + (rng.next_u64() as usize) % (v.len() - 61);
                v[i] = rng.next_u64() as u8;
            }
            if rng.next_u64() % 3 == 1 {
                let cut = 61 + (rng.next_u64() as usize) % (v.len() - 61);
                v.truncate(cut);
                let blen = (v.len() - 12) as i32;
                v[8..12].copy_from_slice(&blen.to_be_bytes());
            }
            let v = reseal(v);
            poke(Bytes::from(v));
        }
    }
}

#[test]
fn error_classification() {
    assert!(BatchError::CorruptCrc {
        expected: 1,
        actual: 2
    }
    .is_corrupt_message());
    assert!(BatchError::InvalidBatchLength(3).is_corrupt_message());
    assert!(BatchError::UnsupportedMagic(1).is_corrupt_message());
    assert!(!BatchError::InvalidRecord("x".into()).is_corrupt_message());
    let msg = BatchError::CorruptCrc {
        expected: 0xE99B_8DD8,
        actual: 1,
    }
    .to_string();
    assert!(msg.contains("0xe99b8dd8"), "{msg}");
}

#[test]
fn record_views_match_records_for_every_codec() {
    for codec in Compression::ALL {
        for ts_type in [TimestampType::CreateTime, TimestampType::LogAppendTime] {
            let mut bb = tricky_builder(codec);
            bb.timestamp_type = ts_type;
            let batch = bb.build().unwrap();
            let recs = batch.records().unwrap();
            let mut seen = 0;
            batch
                .for_each_record_view(|v| {
                    let r = &recs[seen];
                    assert_eq!(v.attributes, r.attributes, "{codec} record {seen}");
                    assert_eq!(v.timestamp_delta, r.timestamp_delta);
                    assert_eq!(v.offset_delta, r.offset_delta);
                    assert_eq!(v.key, r.key.as_deref());
                    assert_eq!(v.value, r.value.as_deref());
                    assert_eq!(v.header_count, r.headers.len());
                    assert_eq!(batch.record_view_timestamp(v), batch.record_timestamp(r));
                    seen += 1;
                    Ok(())
                })
                .unwrap();
            assert_eq!(seen, 6, "{codec}");
            let want = recs
                .iter()
                .map(|r| batch.record_timestamp(r))
                .max()
                .unwrap();
            assert_eq!(batch.max_record_timestamp().unwrap(), want);
            if ts_type == TimestampType::LogAppendTime {
                assert_eq!(want, batch.max_timestamp());
            }
        }
    }
    assert_eq!(
        simple().max_record_timestamp().unwrap(),
        simple().base_timestamp()
    );
}

#[test]
fn record_views_borrow_uncompressed_batches_in_place() {
    let batch = tricky_builder(Compression::None).build().unwrap();
    let range = batch.as_bytes().as_ptr_range();
    let mut checked = 0;
    batch
        .for_each_record_view(|v| {
            for part in [v.key, v.value].into_iter().flatten() {
                if !part.is_empty() {
                    assert!(range.contains(&part.as_ptr()));
                    checked += 1;
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(checked >= 6, "{checked}");
    // Errors from the callback stop the walk and come back unchanged.
    let mut calls = 0;
    let err = batch.for_each_record_view(|_| {
        calls += 1;
        Err(BatchError::InvalidRecord("stop".into()))
    });
    assert_eq!(err, Err(BatchError::InvalidRecord("stop".into())));
    assert_eq!(calls, 1);
    // Batch-level errors come first, as in the Bytes walk.
    let mut v = simple().as_bytes().to_vec();
    v[57..61].copy_from_slice(&(-1i32).to_be_bytes());
    let neg = RecordBatch::new(Bytes::from(reseal(v))).unwrap();
    assert_eq!(
        neg.for_each_record_view(|_| Ok(())),
        neg.for_each_record(|_| Ok(()))
    );
    let mut codec7 = simple().as_bytes().to_vec();
    codec7[22] = 7;
    let b7 = RecordBatch::new(Bytes::from(reseal(codec7))).unwrap();
    assert_eq!(
        b7.for_each_record_view(|_| Ok(())),
        Err(BatchError::UnknownCompression(7))
    );
}
