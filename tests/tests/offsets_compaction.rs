//! `__consumer_offsets` is compacted by the log cleaner, and the group state rebuilt from the
//! compacted topic after a restart is the same: the last committed offset of every partition.

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use shale_tests::{create_topic, start_broker, topic_name, Client};
use std::path::Path;
use std::time::Duration;

const GROUP: &str = "compaction-check";

async fn commit(c: &mut Client, partition: i32, offset: i64) {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = partition;
    p.committed_offset = offset;
    p.committed_metadata = Some(StrBytes::from_static_str("m"));
    let mut t = OffsetCommitRequestTopic::default();
    t.name = topic_name("t");
    t.partitions = vec![p];
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str(GROUP));
    req.generation_id_or_member_epoch = -1;
    req.topics = vec![t];
    let resp = c.send(&req, 8).await.unwrap();
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
}

async fn committed(c: &mut Client, partition: i32) -> i64 {
    let mut t = OffsetFetchRequestTopic::default();
    t.name = topic_name("t");
    t.partition_indexes = vec![partition];
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str(GROUP));
    req.topics = Some(vec![t]);
    let resp = c.send(&req, 7).await.unwrap();
    assert_eq!(resp.error_code, 0);
    resp.topics[0].partitions[0].committed_offset
}

/// Bytes of all `.log` files of every `__consumer_offsets` partition.
fn offsets_topic_bytes(data: &Path) -> u64 {
    std::fs::read_dir(data)
        .unwrap()
        .flatten()
        .filter(|d| {
            d.file_name()
                .to_string_lossy()
                .starts_with("__consumer_offsets-")
        })
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "log"))
        .map(|f| f.metadata().unwrap().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_offsets_are_compacted_and_replay_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = [
        ("offsets.topic.num.partitions", "1"),
        ("offsets.topic.segment.bytes", "4096"),
        ("log.retention.check.interval.ms", "100"),
    ];
    let broker = start_broker(dir.path(), &overrides).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();
    create_topic(&mut c, "t", 2).await;
    for i in 0..400 {
        commit(&mut c, i % 2, i64::from(i)).await;
    }
    // 400 commit batches take at least 400 × 61 bytes (a v2 batch header alone is 61) unless the
    // cleaner kept only the latest record per key (plus the active segment).
    let uncompacted_floor = 400 * 61;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while offsets_topic_bytes(dir.path()) * 2 > uncompacted_floor {
        let now = offsets_topic_bytes(dir.path());
        assert!(
            tokio::time::Instant::now() < deadline,
            "never compacted: {now} bytes on disk"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(committed(&mut c, 0).await, 398);
    assert_eq!(committed(&mut c, 1).await, 399);
    drop(c);
    broker.shutdown().await.unwrap();

    let broker = start_broker(dir.path(), &overrides).await.unwrap();
    let mut c = Client::connect(broker.addr).await.unwrap();
    assert_eq!(
        committed(&mut c, 0).await,
        398,
        "replayed from the compacted topic"
    );
    assert_eq!(committed(&mut c, 1).await, 399);
    broker.shutdown().await.unwrap();
}
