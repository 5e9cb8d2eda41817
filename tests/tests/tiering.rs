//! Tiered storage end to end on an in-process broker with the default remote tier (a local
//! directory): segments move to the remote tier, offset 0 stays readable byte for byte after the
//! local copies are gone and after a restart, ListOffsets sees both tiers, and deleting the
//! topic empties the remote tier. The real-client and S3 versions live in tests/python.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use shale_protocol::record_batch::batches;
use shale_tests::{batch, fetch_request, now_ms, produce, start_broker, topic_name, Client};
use std::path::Path;
use std::time::Duration;

const TOPIC: &str = "tiered";

async fn create_tiered(c: &mut Client) {
    let config = |k: &str, v: &str| {
        let mut cfg = CreatableTopicConfig::default();
        cfg.name = StrBytes::from_string(k.into());
        cfg.value = Some(StrBytes::from_string(v.into()));
        cfg
    };
    let mut t = CreatableTopic::default();
    t.name = topic_name(TOPIC);
    t.num_partitions = 1;
    t.replication_factor = 1;
    t.configs = vec![
        config("remote.storage.enable", "true"),
        config("segment.bytes", "8192"),
        config("local.retention.bytes", "1"),
    ];
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 10_000;
    let resp = c.send(&req, 7).await.unwrap();
    assert_eq!(
        resp.topics[0].error_code, 0,
        "{:?}",
        resp.topics[0].error_message
    );
}

async fn list_offset(c: &mut Client, ts: i64) -> i64 {
    let mut p = ListOffsetsPartition::default();
    p.timestamp = ts;
    p.current_leader_epoch = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = topic_name(TOPIC);
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    let resp = c.send(&req, 9).await.unwrap();
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "ListOffsets {ts}");
    p.offset
}

/// Every record from offset 0 to `end`, as (offset, value), fetching at most `max_bytes` per
/// request.
async fn read_all(c: &mut Client, end: i64, max_bytes: i32) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    let mut next = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while next < end {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stuck reading at {next}"
        );
        let mut req = fetch_request(TOPIC, next, 500);
        req.topics[0].partitions[0].partition_max_bytes = max_bytes;
        let resp = c.send(&req, 12).await.unwrap();
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch at {next}");
        for b in batches(p.records.clone().unwrap_or_default()) {
            let b = b.unwrap();
            b.verify_crc().unwrap();
            for r in b.records().unwrap() {
                let offset = b.base_offset() + i64::from(r.offset_delta);
                if offset >= next {
                    out.push((offset, r.value.clone().unwrap_or_default()));
                }
            }
            next = next.max(b.next_offset());
        }
    }
    out
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn remote_objects(dir: &Path) -> usize {
    fn walk(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_tier_out_and_stay_readable_across_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let remote = root.path().join("data-remote");
    let overrides = [
        ("remote.log.manager.task.interval.ms", "100"),
        ("log.retention.check.interval.ms", "100"),
    ];
    let broker = start_broker(&data, &overrides).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();
    create_tiered(&mut c).await;
    let mut sent = Vec::new();
    for i in 0..120 {
        // Uneven batches: a read that stops before a big batch must not go on to the next
        // segment's small first batch (that would skip offsets).
        let b = batch(if i % 4 == 3 { 40 } else { 3 }, now_ms());
        sent.extend(
            b.records()
                .unwrap()
                .into_iter()
                .map(|r| r.value.unwrap_or_default()),
        );
        let resp = produce(&mut c, TOPIC, 0, b.into_bytes()).await;
        assert_eq!(
            resp.responses[0].partition_responses[0].error_code, 0,
            "batch {i}"
        );
    }
    let end = sent.len() as i64;
    // Tiering moved the local log start while the log start stayed at 0.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while list_offset(&mut c, -4).await == 0 || list_offset(&mut c, -5).await < 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "segments were never tiered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(list_offset(&mut c, -2).await, 0);
    assert_eq!(list_offset(&mut c, -1).await, end);
    assert!(
        remote_objects(&remote) >= 4,
        "objects in {}",
        remote.display()
    );
    let check = |got: Vec<(i64, Bytes)>| {
        assert_eq!(got.len(), sent.len());
        for (i, (offset, value)) in got.iter().enumerate() {
            assert_eq!(*offset, i as i64);
            assert_eq!(value, &sent[i], "value at offset {i}");
        }
    };
    for max_bytes in [1 << 20, 9_000, 2_500, 600] {
        check(read_all(&mut c, end, max_bytes).await);
    }
    drop(c);
    broker.shutdown().await.unwrap();

    // After a restart the remote metadata is rebuilt and offset 0 is still served remotely.
    let broker = start_broker(&data, &overrides).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();
    assert!(
        list_offset(&mut c, -4).await > 0,
        "still tiered after the restart"
    );
    check(read_all(&mut c, end, 1 << 20).await);

    // Deleting the topic removes its remote objects.
    let mut req = DeleteTopicsRequest::default();
    req.topic_names = vec![topic_name(TOPIC)];
    req.timeout_ms = 10_000;
    let resp = c.send(&req, 5).await.unwrap();
    assert_eq!(resp.responses[0].error_code, 0);
    wait_until("the remote tier is empty", || {
        let remote = remote.clone();
        async move { remote_objects(&remote) == 0 }
    })
    .await;
    broker.shutdown().await.unwrap();
}
