//! Deterministic tests of the tiering tasks: the real rlmm manager over an in-memory metadata
//! topic, the real object RSM over an in-memory store behind a fault injector, a manual clock.

use super::*;
use crate::instrumented::OpKind;
use crate::object_rsm::ObjectRsm;
use crate::testing::{fixture_timestamp, test_tp, FaultStore, FixtureSpec, SegmentFixture};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::ObjectStore;
use shale_common::{ManualClock, SeededRng};
use shale_rlmm::manager::{RlmmConfig, TopicBasedRemoteLogMetadataManager};
use shale_rlmm::testing::InMemoryMetadataTopic;
use shale_rlmm::RemoteLogSegmentState::CopySegmentFinished;
use std::sync::atomic::AtomicI64;

const SEGMENTS: usize = 3; // offsets 0-19, 20-39, 40-59

#[derive(Debug)]
struct FakePartition {
    tp: TopicIdPartition,
    segments: Vec<SegmentFixture>,
    log_start: AtomicI64,
    highest_remote: AtomicI64,
    lso: AtomicI64,
    retention: Mutex<Retention>,
    /// The local epoch cache and log end offset (one epoch over all segments unless a test
    /// gives it another lineage).
    lineage: Mutex<(Vec<(i32, i64)>, i64)>,
    leader: std::sync::atomic::AtomicBool,
}

impl FakePartition {
    fn new() -> Self {
        Self::named("tiered")
    }

    fn named(topic: &str) -> Self {
        let tp = test_tp(topic, 0);
        let segments = (0..SEGMENTS)
            .map(|i| {
                let spec = FixtureSpec {
                    base_offset: i as i64 * 20,
                    batches: 4,
                    records_per_batch: 5,
                    ..FixtureSpec::default()
                };
                SegmentFixture::build(&tp, &spec)
            })
            .collect();
        FakePartition {
            tp,
            segments,
            log_start: AtomicI64::new(0),
            highest_remote: AtomicI64::new(-1),
            lso: AtomicI64::new(60),
            lineage: Mutex::new((vec![(0, 0)], 60)),
            leader: std::sync::atomic::AtomicBool::new(true),
            retention: Mutex::new(Retention {
                retention_ms: -1,
                retention_bytes: -1,
                copy_disabled: false,
            }),
        }
    }

    fn size(&self, i: usize) -> u64 {
        self.segments[i].log.len() as u64
    }
}

impl TieredPartition for FakePartition {
    fn topic_id_partition(&self) -> TopicIdPartition {
        self.tp.clone()
    }
    fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::SeqCst)
    }
    fn last_stable_offset(&self) -> i64 {
        self.lso.load(Ordering::SeqCst)
    }
    fn local_only_size_bytes(&self) -> u64 {
        0
    }
    fn segments_to_copy(&self, from: i64, lso: i64) -> Vec<LocalSegment> {
        self.segments
            .iter()
            .filter(|s| s.meta.end_offset >= from && s.meta.end_offset < lso)
            .map(|s| LocalSegment {
                base_offset: s.meta.start_offset,
                end_offset: s.meta.end_offset,
                size_bytes: s.log.len() as u64,
                largest_timestamp: s.meta.max_timestamp_ms,
                leader_epochs: s.meta.segment_leader_epochs.clone(),
                data: s.data.clone(),
            })
            .collect()
    }
    fn set_highest_offset_in_remote_storage(&self, offset: i64) {
        self.highest_remote.fetch_max(offset, Ordering::SeqCst);
    }
    fn advance_log_start_offset(&self, offset: i64) -> Result<(), LocalLogError> {
        self.log_start.fetch_max(offset, Ordering::SeqCst);
        Ok(())
    }
    fn retention(&self) -> Retention {
        *self.retention.lock()
    }
    fn leader_epochs(&self) -> Vec<(i32, i64)> {
        self.lineage.lock().0.clone()
    }
    fn log_end_offset(&self) -> i64 {
        self.lineage.lock().1
    }
    fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }
}

struct Harness {
    clock: Arc<ManualClock>,
    memory: Arc<InMemory>,
    faults: Arc<FaultStore>,
    rlmm: Arc<TopicBasedRemoteLogMetadataManager>,
    rlm: RemoteLogManager,
}

fn harness_with_quota(bytes_per_second: u64) -> Harness {
    let clock = ManualClock::new(fixture_timestamp(60) + 1_000);
    let memory = Arc::new(InMemory::new());
    let faults = Arc::new(FaultStore::new(memory.clone()));
    let rsm = Arc::new(ObjectRsm::new(faults.clone(), "tiered"));
    let topic = InMemoryMetadataTopic::new();
    let config = RlmmConfig {
        num_partitions: 3,
        snapshot_path: None,
    };
    let rlmm =
        Arc::new(TopicBasedRemoteLogMetadataManager::start(config, topic, clock.clone()).unwrap());
    let rlm = RemoteLogManager::new(
        rsm,
        rlmm.clone(),
        clock.clone(),
        SeededRng::new(42),
        1,
        bytes_per_second,
    );
    Harness {
        clock,
        memory,
        faults,
        rlmm,
        rlm,
    }
}

fn harness() -> Harness {
    harness_with_quota(u64::MAX)
}

impl Harness {
    async fn objects(&self) -> Vec<String> {
        let listed: Vec<_> = self.memory.list(None).try_collect().await.unwrap();
        let mut keys: Vec<String> = listed.into_iter().map(|m| m.location.to_string()).collect();
        keys.sort();
        keys
    }

    fn finished(&self, p: &FakePartition) -> Vec<RemoteLogSegmentMetadata> {
        self.rlmm
            .list_remote_log_segments(&p.tp)
            .unwrap()
            .into_iter()
            .filter(|m| m.state == CopySegmentFinished)
            .collect()
    }

    fn all_segments(&self, p: &FakePartition) -> Vec<RemoteLogSegmentMetadata> {
        self.rlmm.list_remote_log_segments(&p.tp).unwrap()
    }

    /// Every object belongs to a finished segment: nothing orphaned, nothing missing.
    async fn assert_no_orphans(&self, p: &FakePartition) {
        let objects = self.objects().await;
        let finished = self.finished(p);
        assert_eq!(
            objects.len(),
            2 * finished.len(),
            "objects {objects:?} vs {} finished segments",
            finished.len()
        );
        for m in &finished {
            let id = shale_common::kafka_uuid::encode(&m.id.id);
            assert_eq!(
                objects.iter().filter(|k| k.contains(&id)).count(),
                2,
                "{id} in {objects:?}"
            );
        }
    }
}

#[tokio::test]
async fn copies_rolled_segments_below_the_last_stable_offset_in_order() {
    let h = harness();
    let p = FakePartition::new();
    p.lso.store(40, Ordering::SeqCst); // the third segment is not stable yet
    assert_eq!(h.rlm.copy_round(&p).await.unwrap(), 2);
    let finished = h.finished(&p);
    assert_eq!(
        finished
            .iter()
            .map(|m| (m.start_offset, m.end_offset))
            .collect::<Vec<_>>(),
        vec![(0, 19), (20, 39)]
    );
    assert!(finished
        .iter()
        .all(|m| m.custom_metadata.as_ref().is_some_and(|c| c.len() <= 128)));
    assert_eq!(p.highest_remote.load(Ordering::SeqCst), 39);
    h.assert_no_orphans(&p).await;
    // Nothing new to do until the last stable offset moves.
    assert_eq!(h.rlm.copy_round(&p).await.unwrap(), 0);
    p.lso.store(60, Ordering::SeqCst);
    assert_eq!(h.rlm.copy_round(&p).await.unwrap(), 1);
    assert_eq!(p.highest_remote.load(Ordering::SeqCst), 59);
    assert_eq!(
        h.rlm.stats.copy_bytes.load(Ordering::SeqCst),
        (0..3).map(|i| p.size(i)).sum::<u64>()
    );
}

#[tokio::test]
async fn the_highest_copied_offset_follows_the_local_lineage() {
    let h = harness();
    let p = FakePartition::new();
    assert_eq!(h.rlm.copy_round(&p).await.unwrap(), 3);
    assert_eq!(h.rlm.highest_copied(&p), 59);
    // A leader whose log left epoch 0 at offset 30 (epoch 3 from there, nothing of it copied):
    // what epoch 0 copied beyond 29 is not its history.
    *p.lineage.lock() = (vec![(0, 0), (3, 30)], 45);
    assert_eq!(h.rlm.highest_copied(&p), 29);
    // A log that never had epoch 0 shares nothing with the remote tier.
    *p.lineage.lock() = (vec![(5, 0)], 45);
    assert_eq!(h.rlm.highest_copied(&p), -1);
}

#[tokio::test]
async fn a_replica_that_no_longer_leads_copies_and_expires_nothing() {
    let h = harness();
    let p = FakePartition::new();
    p.leader.store(false, Ordering::SeqCst);
    assert_eq!(h.rlm.copy_round(&p).await.unwrap(), 0);
    p.leader.store(true, Ordering::SeqCst);
    assert_eq!(h.rlm.copy_round(&p).await.unwrap(), 3);
    *p.retention.lock() = Retention {
        retention_ms: -1,
        retention_bytes: 0,
        copy_disabled: false,
    };
    p.leader.store(false, Ordering::SeqCst);
    assert_eq!(h.rlm.expire_round(&p).await.unwrap(), 0);
    assert_eq!(h.finished(&p).len(), 3);
}

#[tokio::test]
async fn a_failed_upload_is_cleaned_up_and_retried_with_a_new_id_after_a_backoff() {
    let h = harness();
    let p = FakePartition::new();
    h.faults.fail_nth(OpKind::Put, 1);
    assert!(h.rlm.copy_round(&p).await.is_err());
    assert!(h.finished(&p).is_empty());
    assert!(
        h.all_segments(&p).is_empty(),
        "the failed attempt reached DELETE_SEGMENT_FINISHED"
    );
    h.assert_no_orphans(&p).await;
    let failed_attempts = h.rlm.stats.copy_errors.load(Ordering::SeqCst);
    assert_eq!(failed_attempts, 1);
    // Within the backoff nothing happens; after it, all three are copied.
    assert_eq!(h.rlm.copy_round(&p).await.unwrap(), 0);
    h.clock.advance(Duration::from_millis(600));
    assert_eq!(h.rlm.copy_round(&p).await.unwrap(), 3);
    h.assert_no_orphans(&p).await;
}

#[tokio::test]
async fn a_put_whose_response_is_lost_leaves_no_orphan() {
    let h = harness();
    let p = FakePartition::new();
    h.faults.lose_nth_put_response(1); // the object lands, the caller sees an error
    assert!(h.rlm.copy_round(&p).await.is_err());
    h.assert_no_orphans(&p).await;
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.rlm.copy_round(&p).await.unwrap(), 3);
    h.assert_no_orphans(&p).await;
}

#[tokio::test]
async fn an_attempt_interrupted_by_a_crash_is_deleted_before_copying_resumes() {
    let h = harness();
    let p = FakePartition::new();
    // A broker died between COPY_SEGMENT_STARTED + upload and COPY_SEGMENT_FINISHED.
    let s = &p.segments[0];
    h.rlmm
        .add_remote_log_segment_metadata(s.meta.clone())
        .unwrap();
    let rsm = ObjectRsm::new(h.faults.clone(), "tiered");
    rsm.copy_log_segment(&s.meta, &s.data).await.unwrap();
    assert_eq!(h.objects().await.len(), 2);
    // A fresh manager (the restarted broker) cleans it up, then copies everything.
    let restarted = RemoteLogManager::new(
        Arc::new(rsm),
        h.rlmm.clone(),
        h.clock.clone(),
        SeededRng::new(1),
        1,
        u64::MAX,
    );
    assert_eq!(restarted.copy_round(&p).await.unwrap(), 3);
    assert!(h.all_segments(&p).iter().all(|m| m.id.id != s.meta.id.id));
    h.assert_no_orphans(&p).await;
}

#[tokio::test]
async fn the_copy_quota_defers_segments_to_later_rounds() {
    let p = FakePartition::new();
    let h = harness_with_quota(p.size(0)); // one segment per second
    assert_eq!(
        h.rlm.copy_round(&p).await.unwrap(),
        1,
        "a full bucket admits one segment"
    );
    assert_eq!(h.rlm.copy_round(&p).await.unwrap(), 0);
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.rlm.copy_round(&p).await.unwrap(), 1);
}

#[tokio::test]
async fn retention_by_time_raises_the_log_start_then_deletes() {
    let h = harness();
    let p = FakePartition::new();
    h.rlm.copy_round(&p).await.unwrap();
    // Segment 0-19's newest record is older than retention; the others are not.
    let cutoff_age = h.clock.now_ms() - fixture_timestamp(25);
    p.retention.lock().retention_ms = cutoff_age;
    assert_eq!(h.rlm.expire_round(&p).await.unwrap(), 1);
    assert_eq!(p.log_start_offset(), 20);
    assert_eq!(
        h.finished(&p)
            .iter()
            .map(|m| m.start_offset)
            .collect::<Vec<_>>(),
        vec![20, 40]
    );
    h.assert_no_orphans(&p).await;
}

#[tokio::test]
async fn retention_by_size_keeps_the_newest_segments_within_budget() {
    let h = harness();
    let p = FakePartition::new();
    h.rlm.copy_round(&p).await.unwrap();
    p.retention.lock().retention_bytes = (p.size(1) + p.size(2)) as i64;
    assert_eq!(h.rlm.expire_round(&p).await.unwrap(), 1);
    assert_eq!(p.log_start_offset(), 20);
    assert_eq!(
        h.rlm.expire_round(&p).await.unwrap(),
        0,
        "within budget now"
    );
    h.assert_no_orphans(&p).await;
}

#[tokio::test]
async fn segments_below_a_raised_log_start_are_deleted() {
    let h = harness();
    let p = FakePartition::new();
    h.rlm.copy_round(&p).await.unwrap();
    p.log_start.store(45, Ordering::SeqCst); // DeleteRecords(45)
    assert_eq!(h.rlm.expire_round(&p).await.unwrap(), 2);
    assert_eq!(p.log_start_offset(), 45);
    assert_eq!(h.finished(&p).len(), 1);
    h.assert_no_orphans(&p).await;
}

#[tokio::test]
async fn deleting_a_partition_leaves_nothing_even_after_a_crash_midway() {
    let h = harness();
    let p = FakePartition::new();
    h.rlm.copy_round(&p).await.unwrap();
    // The broker wrote the marker and died before deleting anything.
    let rsm = ObjectRsm::new(h.faults.clone(), "tiered");
    rsm.put_delete_marker(&p.tp).await.unwrap();
    assert!(h.objects().await.len() > 6);
    let restarted = RemoteLogManager::new(
        Arc::new(rsm),
        h.rlmm.clone(),
        h.clock.clone(),
        SeededRng::new(2),
        1,
        u64::MAX,
    );
    assert_eq!(restarted.sweep_deleted().await.unwrap(), 1);
    assert!(h.objects().await.is_empty(), "{:?}", h.objects().await);
    assert!(h.all_segments(&p).is_empty());
    assert_eq!(restarted.sweep_deleted().await.unwrap(), 0);
}

#[tokio::test]
async fn a_failing_delete_is_finished_by_a_later_round() {
    let h = harness();
    let p = FakePartition::new();
    h.rlm.copy_round(&p).await.unwrap();
    p.log_start.store(20, Ordering::SeqCst);
    h.faults.fail_all(OpKind::Delete, true);
    assert!(h.rlm.expire_round(&p).await.is_err());
    h.faults.fail_all(OpKind::Delete, false);
    assert_eq!(h.rlm.expire_round(&p).await.unwrap(), 1);
    h.assert_no_orphans(&p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_upload_does_not_hold_up_other_partitions() {
    let h = harness();
    let rlm = Arc::new(h.rlm);
    let slow = Arc::new(FakePartition::named("slow"));
    let others: Vec<Arc<FakePartition>> = (0..5)
        .map(|i| Arc::new(FakePartition::named(&format!("quick{i}"))))
        .collect();
    let mut all: Vec<Arc<dyn TieredPartition>> = vec![slow.clone()];
    all.extend(others.iter().map(|p| p.clone() as Arc<dyn TieredPartition>));
    h.faults.hang_paths_containing("/slow-");
    // Two copiers: the slow partition holds one, the five others share the other.
    let pools = TaskPools::new(2, 1);
    pools.schedule(&rlm, &all);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let done = |p: &FakePartition| {
        h.rlmm
            .list_remote_log_segments(&p.tp)
            .unwrap()
            .iter()
            .filter(|m| m.state == CopySegmentFinished)
            .count()
            == SEGMENTS
    };
    while !others.iter().all(|p| done(p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "quick partitions did not finish"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        h.faults.hung(OpKind::Put),
        1,
        "the slow upload is still hanging"
    );
    assert!(!done(&slow));
    // A new round skips the partition whose copy is still running.
    pools.schedule(&rlm, &all);
    assert_eq!(h.faults.hung(OpKind::Put), 1);
    h.faults.release_paths();
    while !done(&slow) {
        assert!(
            std::time::Instant::now() < deadline,
            "slow partition did not finish"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pools.shutdown().await;
    assert_eq!(pools.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_aborts_hung_tasks_and_frees_their_slots() {
    let h = harness();
    let rlm = Arc::new(h.rlm);
    let p: Arc<dyn TieredPartition> = Arc::new(FakePartition::named("stuck"));
    h.faults.hang_paths_containing("/stuck-");
    let pools = TaskPools::new(1, 1);
    pools.schedule(&rlm, std::slice::from_ref(&p));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h.faults.hung(OpKind::Put) == 0 {
        assert!(std::time::Instant::now() < deadline, "upload never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pools.shutdown().await;
    assert_eq!(pools.in_flight(), 0);
}

#[tokio::test]
async fn copy_lag_and_counters_are_kept_per_partition_until_forgotten() {
    let p = FakePartition::new();
    let h = harness_with_quota(p.size(0)); // one segment per round
    let other = FakePartition::named("other");
    let per_partition = |tp: &TopicIdPartition| {
        let all = h.rlm.stats_by_partition();
        let (_, s) = all.iter().find(|(t, _)| t == tp).expect("an entry").clone();
        (
            s.copy_lag_segments.load(Ordering::SeqCst),
            s.copy_lag_bytes.load(Ordering::SeqCst),
            s.copy_requests.load(Ordering::SeqCst),
            s.copy_bytes.load(Ordering::SeqCst),
        )
    };
    assert_eq!(h.rlm.copy_round(&p).await.unwrap(), 1);
    let rest = p.size(1) + p.size(2);
    assert_eq!(per_partition(&p.tp), (2, rest, 1, p.size(0)));
    h.rlm.copy_round(&other).await.unwrap(); // the quota is spent: nothing copied, all lagging
    let all_three: u64 = (0..3).map(|i| other.size(i)).sum();
    assert_eq!(per_partition(&other.tp), (3, all_three, 0, 0));
    assert_eq!(h.rlm.stats.copy_requests.load(Ordering::SeqCst), 1);
    h.rlm.forget(&p.tp);
    assert!(h.rlm.stats_by_partition().iter().all(|(t, _)| *t != p.tp));
    // A deleted topic's deletions count broker-wide only: no entry comes back.
    h.rlm.delete_partition(&p.tp).await.unwrap();
    assert!(h.rlm.stats_by_partition().iter().all(|(t, _)| *t != p.tp));
    assert_eq!(h.rlm.stats.delete_requests.load(Ordering::SeqCst), 1);
}
