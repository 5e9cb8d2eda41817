//! Criterion micro-benchmarks of the broker's hot paths, on in-memory data or a temp dir:
//! batch header validation + CRC-32C, the record-level validation walk (`Bytes` records vs
//! borrowed views), offset assignment (header patch), index lookup through
//! `shale_local_log::Log::read`, Fetch response writing (`fetch_writer`), and the remote tier's
//! block cache on hit and miss (over `object_store::memory::InMemory`).
//! Compiled in CI with `cargo bench -p shale-bench --no-run`; timed only by hand.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use shale_common::{SystemClock, TopicPartition};
use shale_local_log::{AppendOrigin, Log, LogConfig, LogOpenOptions};
use shale_protocol::fetch_writer::{
    encode_fetch_response, FetchPartitionData, FetchResponseData, FetchTopicData,
};
use shale_protocol::kafka_protocol::protocol::StrBytes;
use shale_protocol::record::BatchBuilder;
use shale_protocol::record_batch::{BatchHeader, RecordBatch};
use shale_remote_log::{BlockCache, ObjectRef};
use std::hint::black_box;
use std::sync::Arc;

/// A batch of `n` records with `size`-byte values.
fn batch(n: usize, size: usize) -> RecordBatch {
    let mut b = BatchBuilder::new(1_700_000_000_000);
    for i in 0..n {
        b.push(
            1_700_000_000_000 + i as i64,
            None,
            Some(Bytes::from(vec![b'x'; size])),
            Vec::new(),
        );
    }
    b.build().unwrap_or_else(|e| panic!("build batch: {e}"))
}

fn validate_and_crc(c: &mut Criterion) {
    let bytes = batch(100, 1024).into_bytes();
    let mut g = c.benchmark_group("batch_validate_crc");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("100x1KiB", |b| {
        b.iter(|| {
            let rb = RecordBatch::new(black_box(bytes.clone())).unwrap_or_else(|e| panic!("{e}"));
            rb.verify_crc().unwrap_or_else(|e| panic!("{e}"));
        })
    });
    // Record-level validation walk of a produce-sized batch: Bytes-backed records vs views.
    let small = batch(100, 100);
    g.throughput(Throughput::Elements(100));
    g.bench_function("records_100x100B_for_each_record", |b| {
        b.iter(|| {
            black_box(&small)
                .for_each_record(|r| {
                    black_box((r.timestamp_delta, r.key.is_none()));
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.bench_function("records_100x100B_for_each_record_view", |b| {
        b.iter(|| {
            black_box(&small)
                .for_each_record_view(|r| {
                    black_box((r.timestamp_delta, r.key.is_none()));
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.finish();
}

fn offset_assignment(c: &mut Criterion) {
    let bytes = batch(100, 100).into_bytes();
    c.bench_function("offset_assignment_header_patch", |b| {
        b.iter_batched(
            || BytesMut::from(&bytes[..]),
            |mut buf| {
                let mut h = BatchHeader::from_slice(&buf).unwrap_or_else(|e| panic!("{e}"));
                h.set_base_offset(black_box(123_456));
                h.set_partition_leader_epoch(7);
                let hb = h.as_bytes();
                buf[..hb.len()].copy_from_slice(hb);
                buf
            },
            BatchSize::SmallInput,
        )
    });
}

fn index_lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = LogConfig {
        segment_bytes: 4 * 1024 * 1024,
        ..LogConfig::default()
    };
    let log = Log::open(
        dir.path().join("bench-0"),
        TopicPartition::new("bench", 0),
        config,
        LogOpenOptions {
            topic_id: None,
            recovery_point: 0,
            log_start_offset: 0,
            had_clean_shutdown: false,
        },
        SystemClock::new(),
    )
    .unwrap_or_else(|e| panic!("open log: {e}"));
    let b = batch(10, 1024).into_bytes();
    for _ in 0..2_000 {
        log.append(
            b.clone(),
            AppendOrigin::Client {
                leader_epoch: 0,
                verification: None,
            },
        )
        .unwrap_or_else(|e| panic!("append: {e}"));
    }
    log.roll().unwrap_or_else(|e| panic!("roll: {e}"));
    let leo = log.log_end_offset();
    let mut i: i64 = 0;
    c.bench_function("index_lookup_read_64KiB", |bch| {
        bch.iter(|| {
            // A stride that visits offsets all over the log's segments.
            i = (i + 7_919) % leo;
            let r = log
                .read(black_box(i), 64 * 1024, leo, true)
                .unwrap_or_else(|e| panic!("{e}"));
            black_box(r.records.len())
        })
    });
}

fn fetch_response_writing(c: &mut Criterion) {
    let records = batch(100, 1024).into_bytes();
    let partitions: Vec<FetchPartitionData> = (0..6)
        .map(|p| FetchPartitionData {
            partition_index: p,
            high_watermark: 1_000,
            last_stable_offset: 1_000,
            log_start_offset: 0,
            preferred_read_replica: -1,
            records: vec![records.clone()],
            ..Default::default()
        })
        .collect();
    let data = FetchResponseData {
        topics: vec![FetchTopicData {
            topic: StrBytes::from_static_str("bench"),
            topic_id: uuid::Uuid::nil(),
            partitions,
        }],
        ..Default::default()
    };
    c.bench_function("fetch_response_6_partitions_v12", |b| {
        b.iter(|| encode_fetch_response(12, black_box(42), &data).unwrap_or_else(|e| panic!("{e}")))
    });
}

fn block_cache(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let store = Arc::new(InMemory::new());
    let key = ObjectPath::from("bench/segment.log");
    let size: u64 = 16 * 1024 * 1024;
    rt.block_on(store.put(&key, PutPayload::from(vec![7u8; size as usize])))
        .unwrap_or_else(|e| panic!("{e}"));
    let obj = ObjectRef { key, size };
    let block: u64 = 1024 * 1024;
    let mut g = c.benchmark_group("block_cache");
    g.throughput(Throughput::Bytes(64 * 1024));
    let hot = BlockCache::new(store.clone(), block, 64 * 1024 * 1024, 0);
    rt.block_on(hot.read_untracked(&obj, 0..64 * 1024))
        .unwrap_or_else(|e| panic!("{e}"));
    g.bench_function("hit_64KiB", |b| {
        b.iter(|| {
            rt.block_on(hot.read_untracked(&obj, 0..64 * 1024))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
    g.bench_function("miss_64KiB_of_1MiB_block", |b| {
        b.iter_batched(
            || BlockCache::new(store.clone(), block, 64 * 1024 * 1024, 0),
            |cold| {
                rt.block_on(cold.read_untracked(&obj, 0..64 * 1024))
                    .unwrap_or_else(|e| panic!("{e}"))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    validate_and_crc,
    offset_assignment,
    index_lookup,
    fetch_response_writing,
    block_cache
);
criterion_main!(benches);
