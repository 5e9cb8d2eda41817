//! Tests of the fault-injecting store and the s3s-fs test server.

use std::sync::Arc;

use object_store::memory::InMemory;

use super::*;
use crate::rsm::RemoteStorageManager;
use crate::testing::{test_tp, FixtureSpec, SegmentFixture};
use crate::ObjectRsm;

#[tokio::test]
async fn fail_nth_and_outage() {
    let f = FaultStore::new(Arc::new(InMemory::new()));
    let p = Path::from("k");
    f.fail_nth(OpKind::Put, 2);
    f.put(&p, Bytes::from_static(b"a").into()).await.unwrap();
    assert!(f.put(&p, Bytes::from_static(b"b").into()).await.is_err());
    f.put(&p, Bytes::from_static(b"c").into()).await.unwrap();
    f.fail_all(OpKind::Get, true);
    assert!(f.get(&p).await.is_err());
    assert!(f.get_range(&p, 0..1).await.is_err());
    f.fail_all(OpKind::Get, false);
    assert_eq!(
        f.get_range(&p, 0..1).await.unwrap(),
        Bytes::from_static(b"c")
    );
    assert_eq!(f.calls(OpKind::Put), 3);
    assert_eq!(f.calls(OpKind::Get), 3);
}

#[tokio::test]
async fn lost_put_response_leaves_the_object() {
    let f = FaultStore::new(Arc::new(InMemory::new()));
    let p = Path::from("k");
    f.lose_nth_put_response(1);
    assert!(f.put(&p, Bytes::from_static(b"a").into()).await.is_err());
    assert_eq!(
        f.get_range(&p, 0..1).await.unwrap(),
        Bytes::from_static(b"a")
    );
}

#[tokio::test]
async fn copy_retried_after_a_lost_response_succeeds() {
    let f = FaultStore::new(Arc::new(InMemory::new()));
    let rsm = ObjectRsm::new(Arc::new(f.clone()), "r");
    let fx = SegmentFixture::build(&test_tp("lost", 0), &FixtureSpec::default());
    f.lose_nth_put_response(2); // the .indexes PUT
    assert!(rsm.copy_log_segment(&fx.meta, &fx.data).await.is_err());
    let cm = rsm.copy_log_segment(&fx.meta, &fx.data).await.unwrap();
    let meta = fx.finished(cm);
    assert_eq!(rsm.fetch_log_segment(&meta, 0, None).await.unwrap(), fx.log);
}

#[tokio::test]
async fn multipart_lost_completion_and_failed_upload_clean_up() {
    let f = FaultStore::new(Arc::new(InMemory::new()));
    let rsm = ObjectRsm::new(Arc::new(f.clone()), "r").with_multipart(1000, 1000);
    let fx = SegmentFixture::build(&test_tp("mp", 0), &FixtureSpec::default());
    assert!(fx.log.len() > 3000);
    f.lose_nth_put_response(1);
    assert!(rsm.copy_log_segment(&fx.meta, &fx.data).await.is_err());
    // The failed copy deleted what it wrote.
    let e = rsm
        .fetch_log_segment(&fx.finished(None), 0, None)
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let cm = rsm.copy_log_segment(&fx.meta, &fx.data).await.unwrap();
    assert_eq!(
        rsm.fetch_log_segment(&fx.finished(cm), 0, None)
            .await
            .unwrap(),
        fx.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_blocks_until_released() {
    let f = FaultStore::new(Arc::new(InMemory::new()));
    let p = Path::from("k");
    f.put(&p, Bytes::from_static(b"a").into()).await.unwrap();
    f.hang(OpKind::Head);
    let f2 = f.clone();
    let t = tokio::spawn(async move { f2.head(&Path::from("k")).await });
    while f.hung(OpKind::Head) == 0 {
        tokio::task::yield_now().await;
    }
    assert!(!t.is_finished());
    f.release(OpKind::Head);
    assert_eq!(t.await.unwrap().unwrap().size, 1);
    assert_eq!(f.hung(OpKind::Head), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_server_survives_restart() {
    let mut server = S3TestServer::start();
    let store = server.store();
    let p = Path::from("a/b");
    store
        .put(&p, Bytes::from_static(b"persisted").into())
        .await
        .unwrap();
    server.stop();
    assert!(store.get(&p).await.is_err(), "server is down");
    server.restart();
    let got = store.get(&p).await.unwrap().bytes().await.unwrap();
    assert_eq!(got, Bytes::from_static(b"persisted"));
    let c = crate::RemoteStorageConfig::from_props(server.config_props(), None).unwrap();
    let s2 = crate::build_object_store(&c, shale_common::SystemClock::new()).unwrap();
    assert_eq!(s2.head(&p).await.unwrap().size, 9);
}
