//! Batches written by real client libraries, proving we read their framings:
//! * kafka-python 3.0's `DefaultRecordBatchBuilder` (xerial snappy as Java writes it, python-lz4
//!   frames carrying a content size, zstandard, gzip), from `fixtures/gen_kafka_python.py`, with
//!   producer id 4242, epoch 7, base sequence 100;
//! * librdkafka 2.16 (raw snappy blocks, LZ4F frames, zstd, gzip), captured from its Produce
//!   request by `fixtures/gen_librdkafka.py`, without a producer id.
//!
//! Both hold the same three records.

use bytes::Bytes;
use shale_protocol::compression::Compression;
use shale_protocol::record::Header;
use shale_protocol::record_batch::{batches, RecordBatch, TimestampType};

const BASE: i64 = 1_700_000_000_000;

fn load(hex: &str) -> Bytes {
    let digits: Vec<u8> = hex
        .trim()
        .bytes()
        .map(|c| (c as char).to_digit(16).expect("hex digit") as u8)
        .collect();
    Bytes::from(
        digits
            .chunks(2)
            .map(|p| (p[0] << 4) | p[1])
            .collect::<Vec<u8>>(),
    )
}

struct Fixture {
    client: &'static str,
    codec: Compression,
    bytes: Bytes,
    producer: (i64, i16, i32),
}

fn fixtures() -> Vec<Fixture> {
    let py = (4242, 7, 100);
    let rdk = (-1, -1, -1);
    let f = |client, codec, hex: &str, producer| Fixture {
        client,
        codec,
        bytes: load(hex),
        producer,
    };
    vec![
        f(
            "kafka-python",
            Compression::None,
            include_str!("fixtures/kafka_python_none.hex"),
            py,
        ),
        f(
            "kafka-python",
            Compression::Gzip,
            include_str!("fixtures/kafka_python_gzip.hex"),
            py,
        ),
        f(
            "kafka-python",
            Compression::Snappy,
            include_str!("fixtures/kafka_python_snappy.hex"),
            py,
        ),
        f(
            "kafka-python",
            Compression::Lz4,
            include_str!("fixtures/kafka_python_lz4.hex"),
            py,
        ),
        f(
            "kafka-python",
            Compression::Zstd,
            include_str!("fixtures/kafka_python_zstd.hex"),
            py,
        ),
        f(
            "librdkafka",
            Compression::None,
            include_str!("fixtures/librdkafka_none.hex"),
            rdk,
        ),
        f(
            "librdkafka",
            Compression::Gzip,
            include_str!("fixtures/librdkafka_gzip.hex"),
            rdk,
        ),
        f(
            "librdkafka",
            Compression::Snappy,
            include_str!("fixtures/librdkafka_snappy.hex"),
            rdk,
        ),
        f(
            "librdkafka",
            Compression::Lz4,
            include_str!("fixtures/librdkafka_lz4.hex"),
            rdk,
        ),
        f(
            "librdkafka",
            Compression::Zstd,
            include_str!("fixtures/librdkafka_zstd.hex"),
            rdk,
        ),
    ]
}

fn s(v: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(v.as_bytes()))
}

#[test]
fn client_batches_decode_for_every_codec() {
    for Fixture {
        client,
        codec,
        bytes,
        producer,
    } in fixtures()
    {
        let batch = RecordBatch::new(bytes.clone()).unwrap();
        batch.verify_crc().unwrap();
        assert_eq!(batch.compression().unwrap(), codec, "{client}");
        assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
        let (pid, epoch, seq) = producer;
        assert_eq!(batch.producer_id(), pid);
        assert_eq!(batch.producer_epoch(), epoch);
        assert_eq!(batch.base_sequence(), seq);
        assert_eq!(batch.last_sequence(), if seq < 0 { -1 } else { seq + 2 });
        assert_eq!(batch.record_count(), 3);
        assert_eq!(batch.last_offset_delta(), 2);
        assert_eq!(batch.base_timestamp(), BASE);
        assert_eq!(batch.max_timestamp(), BASE + 3_000_000_000);

        let recs = batch.records().unwrap();
        assert_eq!(recs.len(), 3, "{client} {codec}");
        assert_eq!(recs[0].key, s("k0"));
        assert_eq!(recs[0].value, s("hello"));
        assert_eq!(
            recs[0].headers,
            vec![Header::new("h", s("1")), Header::new("h", s("2"))]
        );
        assert_eq!(recs[1].key, None);
        assert_eq!(recs[1].timestamp_delta, -3);
        let big = if codec == Compression::None {
            10
        } else {
            30_000
        };
        assert_eq!(recs[1].value, s(&"abc".repeat(big)), "{codec}");
        assert!(recs[1].headers.is_empty());
        assert_eq!(recs[2].key, s("k2"));
        assert_eq!(recs[2].value, None);
        assert_eq!(recs[2].timestamp_delta, 3_000_000_000);
        assert_eq!(
            recs[2].headers,
            vec![Header::new("n", None), Header::new("h", Some(Bytes::new()))]
        );
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.offset_delta, i as i32);
        }
        assert_eq!(batch.record_timestamp(&recs[2]), BASE + 3_000_000_000);
        assert_eq!(batch.max_record_timestamp().unwrap(), batch.max_timestamp());
    }
}

#[test]
fn client_batches_concatenate_and_restamp() {
    let mut all = Vec::new();
    for f in fixtures() {
        all.extend_from_slice(&f.bytes);
    }
    let got: Vec<_> = batches(Bytes::from(all)).map(Result::unwrap).collect();
    assert_eq!(got.len(), 10);
    for (i, batch) in got.iter().enumerate() {
        // Broker-style in-place stamping keeps the client's CRC valid.
        let mut h = batch.header();
        h.set_base_offset(1000 * i as i64);
        h.set_partition_leader_epoch(5);
        let stamped = batch.with_header(&h).unwrap();
        stamped.verify_crc().unwrap();
        assert_eq!(stamped.last_offset(), 1000 * i as i64 + 2);
    }
}

#[test]
fn snappy_framings_differ_between_clients() {
    // kafka-python (like Java) uses xerial framing; librdkafka sends one raw snappy block.
    let fx = fixtures();
    let body = |client: &str| {
        let f = fx
            .iter()
            .find(|f| f.client == client && f.codec == Compression::Snappy)
            .unwrap();
        RecordBatch::new(f.bytes.clone()).unwrap().body()
    };
    assert!(body("kafka-python").starts_with(&shale_protocol::compression::XERIAL_MAGIC));
    assert!(!body("librdkafka").starts_with(&shale_protocol::compression::XERIAL_MAGIC));
}
