//! Remote log reader tests over an in-memory store and fixture segments.

use std::sync::Arc;

use object_store::memory::InMemory;
use shale_protocol::record_batch::batches;

use super::*;
use crate::config::RemoteStorageConfig;
use crate::rsm::RemoteStorageManager;
use crate::testing::{fixture_timestamp, test_tp, FixtureSpec, SegmentFixture};

async fn setup(spec: &FixtureSpec) -> (RemoteLogReader, SegmentFixture, RemoteLogSegmentMetadata) {
    setup_with_readahead(spec, 0).await
}

/// A reader over 4 KiB blocks and one fixture segment copied to an in-memory store.
async fn setup_with_readahead(
    spec: &FixtureSpec,
    readahead_blocks: u64,
) -> (RemoteLogReader, SegmentFixture, RemoteLogSegmentMetadata) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let config = RemoteStorageConfig {
        block_size: 4096,
        readahead_blocks,
        ..RemoteStorageConfig::default()
    };
    let reader = RemoteLogReader::from_config(store, &config);
    let fx = SegmentFixture::build(&test_tp("reader", 0), spec);
    let cm = reader
        .rsm()
        .copy_log_segment(&fx.meta, &fx.data)
        .await
        .unwrap();
    let meta = fx.finished(cm);
    (reader, fx, meta)
}

fn base_offsets(b: &Bytes) -> Vec<i64> {
    batches(b.clone())
        .map(|r| r.unwrap().base_offset())
        .collect()
}

#[test]
fn index_lookups() {
    let mut oidx = Vec::new();
    for (rel, pos) in [(10i32, 100i32), (20, 200), (30, 300)] {
        oidx.extend_from_slice(&rel.to_be_bytes());
        oidx.extend_from_slice(&pos.to_be_bytes());
    }
    assert_eq!(offset_index_lookup(&oidx, 5), 0);
    assert_eq!(offset_index_lookup(&oidx, 10), 100);
    assert_eq!(offset_index_lookup(&oidx, 29), 200);
    assert_eq!(offset_index_lookup(&oidx, 1000), 300);
    assert_eq!(offset_index_lookup(&[], 1000), 0);
    let mut tidx = Vec::new();
    for (ts, rel) in [(1000i64, 3i32), (2000, 9)] {
        tidx.extend_from_slice(&ts.to_be_bytes());
        tidx.extend_from_slice(&rel.to_be_bytes());
    }
    assert_eq!(time_index_lookup(&tidx, 999), None);
    assert_eq!(time_index_lookup(&tidx, 1500), Some(3));
    assert_eq!(time_index_lookup(&tidx, 5000), Some(9));
}

#[tokio::test]
async fn reads_start_at_the_batch_containing_the_offset() {
    let spec = FixtureSpec::default();
    let (reader, fx, meta) = setup(&spec).await;
    for b in &fx.batches {
        for off in [
            b.base_offset,
            b.last_offset,
            (b.base_offset + b.last_offset) / 2,
        ] {
            // Whole batches from batch i on: all of them once the blocks are cached, at least
            // the first before that.
            let got = reader.read(&meta, off, 1 << 20, false).await.unwrap();
            let rest = fx.log.slice(b.position as usize..);
            assert!(!got.is_empty() && rest.starts_with(&got), "offset {off}");
            assert_eq!(base_offsets(&got)[0], b.base_offset, "offset {off}");
        }
    }
    for (i, b) in fx.batches.iter().enumerate() {
        let got = reader
            .read(&meta, b.last_offset, 1 << 20, false)
            .await
            .unwrap();
        let want: Vec<i64> = fx.batches[i..].iter().map(|b| b.base_offset).collect();
        assert_eq!(base_offsets(&got), want);
        assert_eq!(got, fx.log.slice(b.position as usize..));
    }
}

#[tokio::test]
async fn a_cold_read_answers_with_the_first_block_and_reads_ahead_the_rest() {
    let (reader, fx, meta) = setup_with_readahead(&FixtureSpec::default(), 64).await;
    assert!(fx.log.len() > 2 * 4096, "the fixture spans several blocks");
    let first = reader
        .read(&meta, meta.start_offset, 1 << 20, false)
        .await
        .unwrap();
    // The whole batches inside block 0.
    let in_first: Vec<i64> = fx
        .batches
        .iter()
        .take_while(|b| b.position + b.size <= 4096)
        .map(|b| b.base_offset)
        .collect();
    assert_eq!(base_offsets(&first), in_first);
    assert_eq!(reader.block_cache().stats().snapshot().misses, 1);
    // Read-ahead fetched the rest: the next read needs no GET and reaches the segment's end.
    reader.block_cache().wait_readahead_idle().await;
    let gets = reader.block_cache().stats().snapshot().gets;
    let next = fx.batches[in_first.len()];
    let rest = reader
        .read(&meta, next.base_offset, 1 << 20, false)
        .await
        .unwrap();
    assert_eq!(rest, fx.log.slice(next.position as usize..));
    assert_eq!(reader.block_cache().stats().snapshot().gets, gets);
}

#[tokio::test]
async fn max_bytes_cuts_at_whole_batches() {
    let (reader, fx, meta) = setup(&FixtureSpec::default()).await;
    let b0 = fx.batches[0];
    let three = (fx.batches[3].position - b0.position) as usize;
    let got = reader
        .read(&meta, b0.base_offset, three + 10, false)
        .await
        .unwrap();
    assert_eq!(got.len(), three);
    assert_eq!(base_offsets(&got).len(), 3);
    // Smaller than one batch: empty, unless at least one batch is required.
    let small = (b0.size - 1) as usize;
    assert!(reader
        .read(&meta, b0.base_offset, small, false)
        .await
        .unwrap()
        .is_empty());
    let one = reader
        .read(&meta, b0.base_offset, small, true)
        .await
        .unwrap();
    assert_eq!(one, fx.log.slice(..b0.size as usize));
    let err = reader
        .read(&meta, meta.end_offset + 1, 100, true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::OutOfRange);
    assert!(reader
        .read(&meta, meta.start_offset - 1, 100, true)
        .await
        .is_err());
}

#[tokio::test]
async fn a_cold_read_costs_one_index_get_and_one_block_get() {
    let spec = FixtureSpec {
        batches: 10,
        value_size: 20,
        ..FixtureSpec::default()
    };
    let (reader, fx, meta) = setup(&spec).await;
    assert!(fx.log.len() < 4096);
    reader
        .read(&meta, meta.start_offset + 7, 1 << 20, true)
        .await
        .unwrap();
    assert_eq!(reader.index_cache().stats().snapshot().gets, 1);
    assert_eq!(reader.block_cache().stats().snapshot().gets, 1);
    reader
        .read(&meta, meta.start_offset + 20, 1 << 20, true)
        .await
        .unwrap();
    assert_eq!(reader.index_cache().stats().snapshot().gets, 1);
    assert_eq!(reader.block_cache().stats().snapshot().gets, 1);
}

#[tokio::test]
async fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let (reader, _fx, meta) = setup(&FixtureSpec::default()).await;
    let first = meta.start_offset;
    for off in [first, first + 1, first + 37, meta.end_offset] {
        let ts = fixture_timestamp(off);
        assert_eq!(
            reader.offset_for_timestamp(&meta, ts).await.unwrap(),
            Some((off, ts))
        );
        let next = (off < meta.end_offset).then(|| (off + 1, fixture_timestamp(off + 1)));
        assert_eq!(
            reader.offset_for_timestamp(&meta, ts + 1).await.unwrap(),
            next,
            "{off}"
        );
    }
    let before = reader.offset_for_timestamp(&meta, 0).await.unwrap();
    assert_eq!(before, Some((first, fixture_timestamp(first))));
    let after = fixture_timestamp(meta.end_offset) + 1;
    assert_eq!(
        reader.offset_for_timestamp(&meta, after).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn reads_spanning_many_blocks_match_the_segment() {
    let spec = FixtureSpec {
        batches: 60,
        value_size: 300,
        ..FixtureSpec::default()
    };
    let (reader, fx, meta) = setup(&spec).await;
    assert!(fx.log.len() > 4 * 4096);
    let b = fx.batches[7];
    let got = reader
        .read(&meta, b.base_offset + 2, 3 * 4096, false)
        .await
        .unwrap();
    assert!(got.len() <= 3 * 4096);
    assert_eq!(
        got,
        fx.log
            .slice(b.position as usize..b.position as usize + got.len())
    );
    assert_eq!(base_offsets(&got)[0], b.base_offset);
}

#[tokio::test]
async fn a_prewarmed_segment_needs_no_index_get() {
    let (reader, fx, meta) = setup(&FixtureSpec::default()).await;
    reader
        .index_cache()
        .prewarm(meta.id.id, &fx.data)
        .await
        .unwrap();
    reader
        .read(&meta, meta.start_offset + 3, 1000, true)
        .await
        .unwrap();
    reader.offset_for_timestamp(&meta, 0).await.unwrap();
    assert_eq!(reader.index_cache().stats().snapshot().gets, 0);
}

#[tokio::test]
async fn a_corrupted_object_is_an_error_not_bad_records() {
    let (reader, fx, meta) = setup(&FixtureSpec::default()).await;
    let obj = reader.rsm().log_object(&meta).unwrap();
    let mut bytes = fx.log.to_vec();
    let inside_first_batch = fx.batches[0].position as usize + 70;
    bytes[inside_first_batch] ^= 0x5a; // same size, wrong content: only the CRC can tell
    reader
        .rsm()
        .store()
        .put(&obj.key, bytes.into())
        .await
        .unwrap();
    let err = reader
        .read(&meta, meta.start_offset, 1 << 20, true)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteLogError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn a_cold_read_from_the_segment_start_needs_no_index_get() {
    let spec = FixtureSpec {
        batches: 10,
        value_size: 20,
        ..FixtureSpec::default()
    };
    let (reader, fx, meta) = setup(&spec).await;
    let got = reader
        .read(&meta, meta.start_offset, 1 << 20, true)
        .await
        .unwrap();
    assert_eq!(got, fx.log, "the whole segment, from position 0");
    assert_eq!(reader.index_cache().stats().snapshot().gets, 0);
    assert_eq!(reader.block_cache().stats().snapshot().gets, 1);
}
