//! Block and index cache tests: single-flight, failures not cached, coalescing, read-ahead, budget.

use std::sync::Arc;

use bytes::Bytes;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::ObjectStore;

use super::*;
use crate::instrumented::OpKind;
use crate::testing::FaultStore;

const BS: u64 = 1024;

fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

async fn setup(objects: &[(&str, usize)]) -> (FaultStore, Vec<(ObjectRef, Bytes)>) {
    let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut out = Vec::new();
    for (name, len) in objects {
        let key = Path::from(*name);
        let data = pattern(*len);
        mem.put(&key, data.clone().into()).await.unwrap();
        out.push((
            ObjectRef {
                key,
                size: *len as u64,
            },
            data,
        ));
    }
    (FaultStore::new(mem), out)
}

fn cache(store: &FaultStore, budget: u64, readahead: u64) -> BlockCache {
    BlockCache::new(Arc::new(store.clone()), BS, budget, readahead)
}

#[tokio::test]
async fn reads_return_the_right_bytes() {
    let (store, objs) = setup(&[("a", 5000)]).await;
    let c = cache(&store, 1 << 20, 0);
    let (obj, data) = &objs[0];
    for (s, e) in [
        (0, 1),
        (0, 5000),
        (1023, 1025),
        (4999, 6000),
        (2048, 3072),
        (10, 10),
        (5000, 5001),
    ] {
        let got = c.read(obj, s..e, None).await.unwrap();
        let e2 = e.min(5000);
        assert_eq!(got, data.slice(s as usize..e2.max(s) as usize), "{s}..{e}");
    }
    assert_eq!(
        c.read(obj, 5001..5002, None).await.unwrap_err().kind(),
        crate::ErrorKind::OutOfRange
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_of_one_block_issue_one_get() {
    let (store, objs) = setup(&[("a", 4096)]).await;
    let c = cache(&store, 1 << 20, 0);
    store.hang(OpKind::Get);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, obj) = (c.clone(), objs[0].0.clone());
        tasks.push(tokio::spawn(
            async move { c.read(&obj, 10..20, None).await },
        ));
    }
    while store.hung(OpKind::Get) == 0 {
        tokio::task::yield_now().await;
    }
    store.release(OpKind::Get);
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), objs[0].1.slice(10..20));
    }
    assert_eq!(store.calls(OpKind::Get), 1);
    let s = c.stats().snapshot();
    assert_eq!(s.gets, 1);
    assert_eq!(s.hits + s.misses, 8);
}

#[tokio::test]
async fn failures_are_not_cached() {
    let (store, objs) = setup(&[("a", 4096)]).await;
    let c = cache(&store, 1 << 20, 0);
    store.fail_nth(OpKind::Get, 1);
    let (obj, data) = &objs[0];
    assert_eq!(
        c.read(obj, 0..100, None).await.unwrap_err().kind(),
        crate::ErrorKind::Storage
    );
    assert_eq!(c.read(obj, 0..100, None).await.unwrap(), data.slice(0..100));
    assert_eq!(store.calls(OpKind::Get), 2);
    assert_eq!(c.read(obj, 0..100, None).await.unwrap(), data.slice(0..100));
    assert_eq!(store.calls(OpKind::Get), 2, "now cached");
}

#[tokio::test]
async fn adjacent_missing_blocks_are_coalesced() {
    let (store, objs) = setup(&[("a", 8 * BS as usize)]).await;
    let c = cache(&store, 1 << 20, 0);
    let (obj, data) = &objs[0];
    // Blocks 0, 1, 2 in one GET.
    assert_eq!(
        c.read(obj, 100..2 * BS + 100, None).await.unwrap(),
        data.slice(100..2148)
    );
    assert_eq!(store.calls(OpKind::Get), 1);
    assert!((0..3).all(|b| c.contains_block(&obj.key, b)));
    // Block 5 alone, then 3..=7 has runs [3,4] and [6,7]: two more GETs.
    c.read_untracked(obj, 5 * BS..5 * BS + 1).await.unwrap();
    assert_eq!(store.calls(OpKind::Get), 2);
    let got = c.read_untracked(obj, 3 * BS..8 * BS).await.unwrap();
    assert_eq!(got, data.slice(3 * BS as usize..));
    assert_eq!(store.calls(OpKind::Get), 4);
    let s = c.stats().snapshot();
    assert_eq!(s.gets, 4);
    assert_eq!(s.bytes_fetched, 8 * BS);
}

#[tokio::test]
async fn sequential_reads_trigger_read_ahead() {
    let (store, objs) = setup(&[("a", 10 * BS as usize)]).await;
    let c = cache(&store, 1 << 20, 3);
    let obj = &objs[0].0;
    // A read from the object's start begins a scan: block 0 on demand, blocks 1..=3 ahead, one
    // GET each (a window is split into up to eight concurrent GETs).
    c.read(obj, 0..10, None).await.unwrap();
    c.wait_readahead_idle().await;
    assert_eq!(store.calls(OpKind::Get), 4);
    assert!((1..=3).all(|b| c.contains_block(&obj.key, b)));
    assert!(!c.contains_block(&obj.key, 4));
    assert_eq!(c.stats().snapshot().readahead_blocks, 3);
    // The reader moved on by one block (a chunk, with a window of 3): block 4 follows.
    c.read(obj, 10..BS + 10, None).await.unwrap();
    c.wait_readahead_idle().await;
    assert_eq!(store.calls(OpKind::Get), 5);
    assert!(c.contains_block(&obj.key, 4));
    // Reading the same blocks again schedules nothing.
    c.read(obj, BS..BS + 10, None).await.unwrap();
    c.wait_readahead_idle().await;
    assert_eq!(store.calls(OpKind::Get), 5);
    c.read(obj, BS + 10..4 * BS, None).await.unwrap();
    c.wait_readahead_idle().await;
    assert!((4..=6).all(|b| c.contains_block(&obj.key, b)));
    assert_eq!(store.calls(OpKind::Get), 7);
    // A random read elsewhere does not read ahead.
    let before = store.calls(OpKind::Get);
    c.read(obj, 9 * BS..9 * BS + 1, None).await.unwrap();
    c.wait_readahead_idle().await;
    assert_eq!(store.calls(OpKind::Get), before + 1);
    // Nor does a first read that starts past an object's beginning.
    let (store, objs) = setup(&[("b", 10 * BS as usize)]).await;
    let c = cache(&store, 1 << 20, 3);
    c.read(&objs[0].0, 2 * BS..2 * BS + 1, None).await.unwrap();
    c.wait_readahead_idle().await;
    assert_eq!(store.calls(OpKind::Get), 1);
}

#[tokio::test]
async fn read_ahead_crosses_into_the_next_segment() {
    let (store, objs) = setup(&[("seg1", 2 * BS as usize), ("seg2", 5 * BS as usize)]).await;
    let c = cache(&store, 1 << 20, 3);
    let (a, b) = (&objs[0].0, &objs[1].0);
    // The window after block 0 of `a` is a's block 1 and b's blocks 0..=1.
    c.read(a, 0..1, Some(b)).await.unwrap();
    c.wait_readahead_idle().await;
    assert!((0..=1).all(|i| c.contains_block(&b.key, i)));
    assert!(!c.contains_block(&b.key, 2));
    let before = store.calls(OpKind::Get);
    assert_eq!(
        c.read(b, 0..2 * BS, None).await.unwrap(),
        objs[1].1.slice(..2 * BS as usize)
    );
    assert_eq!(store.calls(OpKind::Get), before, "served from read-ahead");
}

#[tokio::test]
async fn the_byte_budget_is_respected() {
    let (store, objs) = setup(&[("big", 100 * BS as usize)]).await;
    let budget = 16 * BS;
    let c = cache(&store, budget, 0);
    let (obj, data) = &objs[0];
    for b in 0..100 {
        let got = c.read_untracked(obj, b * BS..(b + 1) * BS).await.unwrap();
        assert_eq!(got, data.slice((b * BS) as usize..((b + 1) * BS) as usize));
    }
    let w = c.weighted_size().await;
    assert!(w <= budget, "weighted {w} > budget {budget}");
    assert!(w > 0);
}

#[derive(Debug)]
struct CountingRsm {
    calls: std::sync::atomic::AtomicU64,
    fail_first: bool,
}

#[async_trait::async_trait]
impl RemoteStorageManager for CountingRsm {
    async fn copy_log_segment(
        &self,
        _: &RemoteLogSegmentMetadata,
        _: &crate::LogSegmentData,
    ) -> Result<Option<Bytes>> {
        Ok(None)
    }
    async fn fetch_log_segment(
        &self,
        _: &RemoteLogSegmentMetadata,
        _: u64,
        _: Option<u64>,
    ) -> Result<Bytes> {
        Ok(Bytes::new())
    }
    async fn fetch_index(&self, _: &RemoteLogSegmentMetadata, t: IndexType) -> Result<Bytes> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        if self.fail_first && n == 0 {
            return Err(RemoteLogError::NotFound { what: "x".into() });
        }
        Ok(Bytes::from(t.name()))
    }
    async fn delete_log_segment(&self, _: &RemoteLogSegmentMetadata) -> Result<()> {
        Ok(())
    }
    async fn delete_partition(&self, _: &crate::TopicIdPartition) -> Result<usize> {
        Ok(0)
    }
    async fn list_partitions(&self) -> Result<Vec<crate::TopicIdPartition>> {
        Ok(Vec::new())
    }
    async fn put_delete_marker(&self, _: &crate::TopicIdPartition) -> Result<()> {
        Ok(())
    }
    async fn list_delete_markers(&self) -> Result<Vec<crate::TopicIdPartition>> {
        Ok(Vec::new())
    }
    async fn remove_delete_marker(&self, _: &crate::TopicIdPartition) -> Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn index_cache_loads_once_and_does_not_cache_failures() {
    let rsm = Arc::new(CountingRsm {
        calls: 0.into(),
        fail_first: true,
    });
    let ic = IndexCache::new(rsm.clone(), 1 << 20);
    let fx = crate::testing::SegmentFixture::build(
        &crate::testing::test_tp("ic", 0),
        &Default::default(),
    );
    assert!(ic
        .get(&fx.meta, IndexType::Offset)
        .await
        .unwrap_err()
        .is_not_found());
    let (a, b) = tokio::join!(
        ic.get(&fx.meta, IndexType::Offset),
        ic.get(&fx.meta, IndexType::Offset)
    );
    assert_eq!(a.unwrap(), Bytes::from("offset"));
    assert_eq!(b.unwrap(), Bytes::from("offset"));
    ic.get(&fx.meta, IndexType::Timestamp).await.unwrap();
    assert_eq!(rsm.calls.load(Ordering::SeqCst), 3);
    ic.insert(fx.meta.id.id, IndexType::LeaderEpoch, Bytes::from("warm"))
        .await;
    assert_eq!(
        ic.get(&fx.meta, IndexType::LeaderEpoch).await.unwrap(),
        Bytes::from("warm")
    );
    assert_eq!(rsm.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_steady_sequential_reader_misses_once_and_keeps_a_pipeline_of_gets() {
    let (store, objs) = setup(&[("s", 64 * BS as usize)]).await;
    let c = cache(&store, 1 << 20, 16);
    let (obj, data) = &objs[0];
    for b in 0..64 {
        let got = c.read(obj, b * BS..(b + 1) * BS, None).await.unwrap();
        assert_eq!(got, data.slice((b * BS) as usize..((b + 1) * BS) as usize));
        c.wait_readahead_idle().await;
    }
    let s = c.stats().snapshot();
    assert_eq!(s.misses, 1, "only the first read misses: {s:?}");
    assert_eq!(s.readahead_blocks, 63);
    // 1 demand GET, blocks 1..=16 as eight GETs of 2, then a GET of 2 each time the reader has
    // moved on by 2 (17..=18 up to 61..=62), and block 63 alone at the end.
    assert_eq!(store.calls(OpKind::Get), 1 + 8 + 23 + 1, "{s:?}");
}

#[tokio::test]
async fn read_ahead_in_flight_is_bounded_by_half_the_budget() {
    let (store, objs) = setup(&[("x", 16 * BS as usize), ("y", 16 * BS as usize)]).await;
    // Budget 16 blocks: at most max(16 / 2, window 8) = 8 blocks read ahead at once.
    let c = cache(&store, 16 * BS, 8);
    let (x, y) = (&objs[0].0, &objs[1].0);
    c.read_untracked(y, 0..1).await.unwrap();
    // x's first read schedules blocks 1..=8; they hang (the tasks have not run yet).
    c.read(x, 0..1, None).await.unwrap();
    store.hang(OpKind::Get);
    // y's first read is a hit, and the read-ahead budget is spent: no window for y.
    c.read(y, 0..1, None).await.unwrap();
    store.release(OpKind::Get);
    c.wait_readahead_idle().await;
    assert!(
        !c.contains_block(&y.key, 1),
        "no read-ahead past the budget"
    );
    assert_eq!(c.stats().snapshot().readahead_blocks, 8);
    // With the budget free again, y's next sequential read gets its window (blocks 2..=9).
    c.read(y, 0..BS + 1, None).await.unwrap();
    c.wait_readahead_idle().await;
    assert_eq!(c.stats().snapshot().readahead_blocks, 16);
}
