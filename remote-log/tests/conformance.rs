//! One set of RemoteStorageManager scenarios run against InMemory, LocalFileSystem (temp dir)
//! and a real S3 server (s3s-fs). Request counts come from the instrumented store wrapper.

use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use shale_common::ManualClock;
use shale_remote_log::rsm::MAX_CUSTOM_METADATA_BYTES;
use shale_remote_log::testing::{test_tp, FixtureSpec, S3TestServer, SegmentFixture, TempDir};
use shale_remote_log::{
    ErrorKind, IndexType, InstrumentedStore, ObjectRsm, OpKind, RemoteStorageManager, StoreStats,
};

struct Backend {
    store: Arc<dyn ObjectStore>,
    stats: Arc<StoreStats>,
    _keep: Option<TempDir>,
    _server: Option<S3TestServer>,
}

fn instrument(inner: Arc<dyn ObjectStore>) -> (Arc<dyn ObjectStore>, Arc<StoreStats>) {
    let s = InstrumentedStore::new(inner, ManualClock::new(0));
    let stats = s.stats();
    (Arc::new(s), stats)
}

fn memory() -> Backend {
    let (store, stats) = instrument(Arc::new(InMemory::new()));
    Backend {
        store,
        stats,
        _keep: None,
        _server: None,
    }
}

fn file() -> Backend {
    let dir = TempDir::new("conformance");
    let (store, stats) = instrument(Arc::new(
        LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
    ));
    Backend {
        store,
        stats,
        _keep: Some(dir),
        _server: None,
    }
}

fn s3() -> Backend {
    let server = S3TestServer::start();
    let (store, stats) = instrument(server.store());
    Backend {
        store,
        stats,
        _keep: None,
        _server: Some(server),
    }
}

async fn copy(rsm: &ObjectRsm, fx: &SegmentFixture) -> shale_remote_log::RemoteLogSegmentMetadata {
    let cm = rsm.copy_log_segment(&fx.meta, &fx.data).await.unwrap();
    let cm = cm.expect("custom metadata");
    assert!(cm.len() <= MAX_CUSTOM_METADATA_BYTES, "{} bytes", cm.len());
    fx.finished(Some(cm))
}

async fn copy_then_fetch(name: &str, b: &Backend) {
    let rsm = ObjectRsm::new(b.store.clone(), "pre/fix");
    let fx = SegmentFixture::build(&test_tp("copy-fetch", 0), &FixtureSpec::default());
    let meta = copy(&rsm, &fx).await;
    let size = fx.log.len() as u64;
    assert_eq!(
        rsm.fetch_log_segment(&meta, 0, None).await.unwrap(),
        fx.log,
        "{name}"
    );
    let cases = [
        (0, Some(100)),
        (100, None),
        (size - 1, None),
        (7, Some(size + 1000)),
        (size, None),
        (5, Some(5)),
    ];
    for (start, end) in cases {
        let want = fx
            .log
            .slice(start as usize..end.unwrap_or(size).min(size) as usize);
        let got = rsm.fetch_log_segment(&meta, start, end).await.unwrap();
        assert_eq!(got, want, "{name}: {start}..{end:?}");
    }
    let err = rsm
        .fetch_log_segment(&meta, size + 1, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange, "{name}");
}

async fn fetch_indexes(name: &str, b: &Backend) {
    let rsm = ObjectRsm::new(b.store.clone(), "");
    let tp = test_tp("indexes", 1);
    let fx = SegmentFixture::build(&tp, &FixtureSpec::default());
    let meta = copy(&rsm, &fx).await;
    let file = |p: &std::path::Path| Bytes::from(std::fs::read(p).unwrap());
    let expect = [
        (IndexType::Offset, file(&fx.data.offset_index)),
        (IndexType::Timestamp, file(&fx.data.time_index)),
        (
            IndexType::ProducerSnapshot,
            file(fx.data.producer_snapshot.as_ref().unwrap()),
        ),
        (
            IndexType::Transaction,
            file(fx.data.txn_index.as_ref().unwrap()),
        ),
        (IndexType::LeaderEpoch, fx.data.leader_epochs.clone()),
    ];
    for (t, want) in expect {
        assert!(!want.is_empty(), "{name}: fixture {t:?} empty");
        assert_eq!(
            rsm.fetch_index(&meta, t).await.unwrap(),
            want,
            "{name}: {t:?}"
        );
    }
    let spec = FixtureSpec {
        with_txn_and_snapshot: false,
        ..FixtureSpec::default()
    };
    let fx2 = SegmentFixture::build(&tp, &spec);
    let meta2 = copy(&rsm, &fx2).await;
    for t in [IndexType::Transaction, IndexType::ProducerSnapshot] {
        let err = rsm.fetch_index(&meta2, t).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{name}: {t:?} {err}");
    }
    assert_eq!(
        rsm.fetch_index(&meta2, IndexType::Offset).await.unwrap(),
        file(&fx2.data.offset_index)
    );
}

async fn idempotent_copy_and_delete(name: &str, b: &Backend) {
    let rsm = ObjectRsm::new(b.store.clone(), "p");
    let fx = SegmentFixture::build(&test_tp("idem", 2), &FixtureSpec::default());
    let m1 = copy(&rsm, &fx).await;
    let m2 = copy(&rsm, &fx).await;
    assert_eq!(m1.custom_metadata, m2.custom_metadata, "{name}");
    assert_eq!(rsm.fetch_log_segment(&m2, 0, None).await.unwrap(), fx.log);
    rsm.delete_log_segment(&m2).await.unwrap();
    let e = rsm.fetch_log_segment(&m2, 0, None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{name}: {e}");
    let e = rsm.fetch_index(&m2, IndexType::Offset).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{name}: {e}");
    rsm.delete_log_segment(&m2).await.unwrap();
    // Deleting a segment that was never uploaded is fine too.
    let never = SegmentFixture::build(&test_tp("idem", 2), &FixtureSpec::default());
    rsm.delete_log_segment(&never.meta).await.unwrap();
}

async fn partition_delete_and_markers(name: &str, b: &Backend) {
    let rsm = ObjectRsm::new(b.store.clone(), "del");
    let tp = test_tp("dead-topic", 3);
    let other = test_tp("dead-topic", 30);
    let mut metas = Vec::new();
    for i in 0..3 {
        let spec = FixtureSpec {
            base_offset: i * 1000,
            batches: 3,
            ..FixtureSpec::default()
        };
        metas.push(copy(&rsm, &SegmentFixture::build(&tp, &spec)).await);
    }
    let keep = copy(
        &rsm,
        &SegmentFixture::build(&other, &FixtureSpec::default()),
    )
    .await;
    let parts = rsm.list_partitions().await.unwrap();
    assert!(
        parts.contains(&tp) && parts.contains(&other),
        "{name}: {parts:?}"
    );
    rsm.put_delete_marker(&tp).await.unwrap();
    assert_eq!(
        rsm.list_delete_markers().await.unwrap(),
        vec![tp.clone()],
        "{name}"
    );
    assert_eq!(rsm.delete_partition(&tp).await.unwrap(), 6, "{name}");
    for m in &metas {
        let e = rsm.fetch_log_segment(m, 0, None).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{name}");
    }
    assert!(
        rsm.fetch_log_segment(&keep, 0, None).await.is_ok(),
        "{name}: partition 30 survives"
    );
    assert_eq!(
        rsm.list_delete_markers().await.unwrap(),
        vec![tp.clone()],
        "{name}: marker kept"
    );
    assert_eq!(rsm.delete_partition(&tp).await.unwrap(), 0, "{name}");
    rsm.remove_delete_marker(&tp).await.unwrap();
    rsm.remove_delete_marker(&tp).await.unwrap();
    assert!(
        rsm.list_delete_markers().await.unwrap().is_empty(),
        "{name}"
    );
}

async fn multipart_segment(name: &str, b: &Backend) {
    let rsm = ObjectRsm::new(b.store.clone(), "mp").with_multipart(5 << 20, 5 << 20);
    let spec = FixtureSpec {
        batches: 110,
        records_per_batch: 1,
        value_size: 100 << 10,
        ..FixtureSpec::default()
    };
    let fx = SegmentFixture::build(&test_tp("big", 0), &spec);
    assert!(fx.log.len() > 10 << 20, "fixture is {} bytes", fx.log.len());
    let before = b.stats.snapshot().count(OpKind::Put);
    let meta = copy(&rsm, &fx).await;
    // multipart create + .indexes put
    assert_eq!(b.stats.snapshot().count(OpKind::Put) - before, 2, "{name}");
    assert_eq!(
        rsm.fetch_log_segment(&meta, 0, None).await.unwrap(),
        fx.log,
        "{name}"
    );
    let (a, z) = ((5 << 20) - 10, (5 << 20) + 10);
    assert_eq!(
        rsm.fetch_log_segment(&meta, a, Some(z)).await.unwrap(),
        fx.log.slice(a as usize..z as usize)
    );
    let manifest = rsm.manifest(&meta).await.unwrap();
    assert_eq!(manifest.log_crc, crc32c::crc32c(&fx.log), "{name}");
}

async fn custom_metadata_avoids_metadata_gets(name: &str, b: &Backend) {
    let rsm = ObjectRsm::new(b.store.clone(), "cm");
    let fx = SegmentFixture::build(&test_tp("cm", 0), &FixtureSpec::default());
    let meta = copy(&rsm, &fx).await;
    let s0 = b.stats.snapshot();
    for t in [
        IndexType::Offset,
        IndexType::Timestamp,
        IndexType::Transaction,
    ] {
        rsm.fetch_index(&meta, t).await.unwrap();
    }
    rsm.fetch_log_segment(&meta, 10, Some(500)).await.unwrap();
    let s1 = b.stats.snapshot();
    assert_eq!(
        s1.count(OpKind::Get) - s0.count(OpKind::Get),
        4,
        "{name}: one GET per call"
    );
    assert_eq!(
        s1.count(OpKind::Head),
        s0.count(OpKind::Head),
        "{name}: no HEAD"
    );
    assert_eq!(
        s1.count(OpKind::List),
        s0.count(OpKind::List),
        "{name}: no LIST"
    );
    // Without custom metadata the footer of .indexes is used (HEAD + GET, then the section).
    let bare = fx.finished(None);
    let want = Bytes::from(std::fs::read(&fx.data.time_index).unwrap());
    assert_eq!(
        rsm.fetch_index(&bare, IndexType::Timestamp).await.unwrap(),
        want,
        "{name}"
    );
    assert_eq!(
        rsm.manifest(&bare).await.unwrap(),
        rsm.manifest(&meta).await.unwrap()
    );
}

async fn run_all(name: &str, b: Backend) {
    copy_then_fetch(name, &b).await;
    fetch_indexes(name, &b).await;
    idempotent_copy_and_delete(name, &b).await;
    partition_delete_and_markers(name, &b).await;
    multipart_segment(name, &b).await;
    custom_metadata_avoids_metadata_gets(name, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_in_memory() {
    run_all("memory", memory()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_local_file_system() {
    run_all("file", file()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_s3s_fs() {
    run_all("s3s-fs", s3()).await;
}
