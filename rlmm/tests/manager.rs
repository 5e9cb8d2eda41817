//! Topic-based manager: publish/query, restart with full replay, snapshot + tail, corrupt
//! snapshot, invalid changes never published, replay dedupe, append failures, partition deletion.

use bytes::Bytes;
use shale_common::{Clock, ManualClock};
use shale_rlmm::serde;
use shale_rlmm::testing::InMemoryMetadataTopic;
use shale_rlmm::{
    metadata_partition, MetadataTopic, RemoteLogMetadata, RemoteLogSegmentId,
    RemoteLogSegmentMetadata, RemoteLogSegmentMetadataUpdate, RemoteLogSegmentState,
    RemotePartitionDeleteMetadata, RemotePartitionDeleteState, RlmmConfig, RlmmError,
    TopicBasedRemoteLogMetadataManager, TopicIdPartition,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

use RemoteLogSegmentState::{
    CopySegmentFinished as FINISHED, DeleteSegmentFinished as DEL_FINISHED,
    DeleteSegmentStarted as DEL_STARTED,
};

const N: i32 = 5;

fn clock() -> Arc<dyn Clock> {
    ManualClock::new(1_700_000_000_000)
}

fn tp(p: i32) -> TopicIdPartition {
    TopicIdPartition::new(Uuid::from_u128(0x1234_5678), "orders", p)
}

fn config(snapshot: Option<&Path>) -> RlmmConfig {
    RlmmConfig {
        num_partitions: N,
        snapshot_path: snapshot.map(Path::to_path_buf),
    }
}

fn start(
    topic: &Arc<InMemoryMetadataTopic>,
    snapshot: Option<&Path>,
) -> TopicBasedRemoteLogMetadataManager {
    let t: Arc<dyn MetadataTopic> = topic.clone();
    TopicBasedRemoteLogMetadataManager::start(config(snapshot), t, clock()).unwrap()
}

fn seg(p: i32, n: u128, start: i64, end: i64, epochs: &[(i32, i64)]) -> RemoteLogSegmentMetadata {
    let id = RemoteLogSegmentId::new(tp(p), Uuid::from_u128(n));
    let epochs: BTreeMap<i32, i64> = epochs.iter().copied().collect();
    RemoteLogSegmentMetadata::new(id, start, end, start * 10, 1, 5, 100, epochs).unwrap()
}

fn upd(p: i32, n: u128, state: RemoteLogSegmentState) -> RemoteLogSegmentMetadataUpdate {
    RemoteLogSegmentMetadataUpdate {
        id: RemoteLogSegmentId::new(tp(p), Uuid::from_u128(n)),
        event_timestamp_ms: 6,
        custom_metadata: (state == FINISHED).then(|| Bytes::from(format!("cm-{n}"))),
        state,
        broker_id: 1,
    }
}

fn copy(
    m: &TopicBasedRemoteLogMetadataManager,
    p: i32,
    n: u128,
    start: i64,
    end: i64,
    epochs: &[(i32, i64)],
) {
    m.add_remote_log_segment_metadata(seg(p, n, start, end, epochs))
        .unwrap();
    m.update_remote_log_segment_metadata(upd(p, n, FINISHED))
        .unwrap();
}

/// Everything a caller could ask, as comparable data.
fn answers(m: &TopicBasedRemoteLogMetadataManager) -> Vec<String> {
    let mut out = Vec::new();
    for t in m.remote_partitions() {
        out.push(format!(
            "{t}: {:?}",
            m.list_remote_log_segments(&t).unwrap()
        ));
        out.push(format!(
            "{t}: delete {:?}",
            m.remote_partition_delete_metadata(&t).unwrap()
        ));
        out.push(format!(
            "{t}: copied {:?} size {}",
            m.highest_copied_offset(&t).unwrap(),
            m.remote_log_size(&t).unwrap()
        ));
        for epoch in 0..6 {
            let listed = m.list_remote_log_segments_for_epoch(&t, epoch).unwrap();
            let ids: Vec<Uuid> = listed.iter().map(|s| s.id.id).collect();
            out.push(format!(
                "{t} e{epoch}: {ids:?} {:?}",
                m.highest_offset_for_epoch(&t, epoch).unwrap()
            ));
            for offset in (0..500).step_by(7) {
                let found = m
                    .remote_log_segment_metadata(&t, epoch, offset)
                    .unwrap()
                    .map(|s| s.id.id);
                out.push(format!("{t} e{epoch} @{offset}: {found:?}"));
            }
        }
    }
    out
}

/// A history touching several partitions: supersession, deletes, a partition deletion.
fn history_part1(m: &TopicBasedRemoteLogMetadataManager) {
    copy(m, 0, 1, 0, 99, &[(0, 0)]);
    copy(m, 0, 2, 100, 199, &[(0, 100), (1, 150)]);
    copy(m, 1, 3, 0, 49, &[(0, 0)]);
    m.add_remote_log_segment_metadata(seg(1, 4, 50, 80, &[(0, 50)]))
        .unwrap();
    copy(m, 2, 5, 0, 10, &[(3, 0)]);
    m.update_remote_log_segment_metadata(upd(0, 1, DEL_STARTED))
        .unwrap();
}

fn history_part2(m: &TopicBasedRemoteLogMetadataManager) {
    m.update_remote_log_segment_metadata(upd(0, 1, DEL_FINISHED))
        .unwrap();
    // New leader (epoch 2) re-uploads an overlapping range of partition 0.
    copy(m, 0, 6, 120, 260, &[(1, 120), (2, 230)]);
    copy(m, 3, 7, 0, 300, &[(0, 0), (4, 200)]);
    m.update_remote_log_segment_metadata(upd(1, 4, DEL_STARTED))
        .unwrap();
    let d = |state| RemotePartitionDeleteMetadata {
        tp: tp(2),
        state,
        event_timestamp_ms: 9,
        broker_id: 1,
    };
    m.put_remote_partition_delete_metadata(d(RemotePartitionDeleteState::DeletePartitionMarked))
        .unwrap();
    m.put_remote_partition_delete_metadata(d(RemotePartitionDeleteState::DeletePartitionStarted))
        .unwrap();
}

#[test]
fn creates_topic_and_checks_partition_count() {
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, None);
    assert_eq!(topic.partition_count(), Some(N));
    assert_eq!(m.startup_info().replayed_records, 0);
    drop(m);
    let existing = InMemoryMetadataTopic::with_partitions(N + 1);
    let t: Arc<dyn MetadataTopic> = existing;
    let err = TopicBasedRemoteLogMetadataManager::start(config(None), t, clock()).unwrap_err();
    assert!(
        matches!(
            err,
            RlmmError::PartitionCountMismatch {
                expected: 5,
                actual: 6
            }
        ),
        "{err}"
    );
    let bad = RlmmConfig {
        num_partitions: 0,
        snapshot_path: None,
    };
    let t: Arc<dyn MetadataTopic> = InMemoryMetadataTopic::new();
    assert!(TopicBasedRemoteLogMetadataManager::start(bad, t, clock()).is_err());
    assert_eq!(RlmmConfig::default().num_partitions, 50);
}

#[test]
fn publish_then_query_reads_own_writes() {
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, None);
    assert_eq!(m.list_remote_log_segments(&tp(0)).unwrap(), vec![]);
    assert_eq!(m.highest_copied_offset(&tp(0)).unwrap(), None);

    let s = seg(0, 1, 0, 99, &[(0, 0), (1, 40)]);
    m.add_remote_log_segment_metadata(s.clone()).unwrap();
    assert_eq!(m.list_remote_log_segments(&tp(0)).unwrap(), vec![s.clone()]);
    assert_eq!(m.remote_log_segment_metadata(&tp(0), 0, 10).unwrap(), None);
    m.update_remote_log_segment_metadata(upd(0, 1, FINISHED))
        .unwrap();
    let finished = s.create_with_updates(&upd(0, 1, FINISHED)).unwrap();
    assert_eq!(
        m.remote_log_segment_metadata(&tp(0), 0, 10).unwrap(),
        Some(finished.clone())
    );
    assert_eq!(m.remote_log_segment_metadata(&tp(0), 0, 40).unwrap(), None);
    assert_eq!(
        m.remote_log_segment_metadata(&tp(0), 1, 99).unwrap(),
        Some(finished.clone())
    );
    assert_eq!(m.highest_offset_for_epoch(&tp(0), 0).unwrap(), Some(39));
    assert_eq!(m.highest_copied_offset(&tp(0)).unwrap(), Some(99));
    assert_eq!(
        m.segments_in_state(&tp(0), &[FINISHED]).unwrap(),
        vec![finished]
    );
    assert!(m.is_initialized(&tp(0)));
    assert_eq!(m.remote_partitions(), vec![tp(0)]);

    // Both records sit in the mapped metadata partition, byte-exact.
    let mp = metadata_partition(&tp(0), N);
    assert_eq!(m.metadata_partition_for(&tp(0)), mp);
    let records = topic.records(mp);
    assert_eq!(records.len(), 2);
    assert_eq!(
        serde::decode(&records[0]).unwrap(),
        RemoteLogMetadata::Segment(s)
    );
    assert_eq!(
        serde::decode(&records[1]).unwrap(),
        RemoteLogMetadata::Update(upd(0, 1, FINISHED))
    );
    assert_eq!(topic.total_records(), 2);
}

#[test]
fn remote_log_size_per_epoch() {
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, None);
    copy(&m, 0, 1, 0, 99, &[(0, 0)]);
    copy(&m, 0, 2, 100, 199, &[(0, 100)]);
    copy(&m, 0, 3, 200, 299, &[(1, 200)]);
    copy(&m, 0, 4, 300, 399, &[(1, 300), (2, 350)]);
    assert_eq!(m.remote_log_size_for_epoch(&tp(0), 0).unwrap(), 200);
    assert_eq!(m.remote_log_size_for_epoch(&tp(0), 1).unwrap(), 200);
    assert_eq!(m.remote_log_size_for_epoch(&tp(0), 2).unwrap(), 100);
    assert_eq!(m.remote_log_size_for_epoch(&tp(0), 7).unwrap(), 0);
    assert_eq!(m.remote_log_size(&tp(0)).unwrap(), 400);
    assert_eq!(m.remote_log_size(&tp(9)).unwrap(), 0);
}

#[test]
fn invalid_changes_are_never_published() {
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, None);
    m.add_remote_log_segment_metadata(seg(0, 1, 0, 9, &[(0, 0)]))
        .unwrap();
    let before = topic.total_records();

    let err = m
        .update_remote_log_segment_metadata(upd(0, 1, DEL_FINISHED))
        .unwrap_err();
    assert!(
        matches!(err, RlmmError::InvalidTransition { from: Some(_), .. }),
        "{err}"
    );
    let err = m
        .update_remote_log_segment_metadata(upd(0, 1, RemoteLogSegmentState::CopySegmentStarted))
        .unwrap_err();
    assert!(matches!(err, RlmmError::InvalidArgument { .. }), "{err}");
    let err = m
        .update_remote_log_segment_metadata(upd(0, 99, FINISHED))
        .unwrap_err();
    assert!(matches!(err, RlmmError::UnknownSegment { .. }), "{err}");
    let mut finished_add = seg(0, 2, 10, 19, &[(0, 10)]);
    finished_add.state = FINISHED;
    let err = m.add_remote_log_segment_metadata(finished_add).unwrap_err();
    assert!(matches!(err, RlmmError::InvalidArgument { .. }), "{err}");
    let mut bad = seg(0, 3, 10, 19, &[(0, 10)]);
    bad.end_offset = 5;
    assert!(m.add_remote_log_segment_metadata(bad).is_err());
    let d = RemotePartitionDeleteMetadata {
        tp: tp(0),
        state: RemotePartitionDeleteState::DeletePartitionFinished,
        event_timestamp_ms: 1,
        broker_id: 1,
    };
    let err = m.put_remote_partition_delete_metadata(d).unwrap_err();
    assert!(
        matches!(err, RlmmError::InvalidPartitionDeleteTransition { .. }),
        "{err}"
    );

    assert_eq!(topic.total_records(), before);
    m.update_remote_log_segment_metadata(upd(0, 1, FINISHED))
        .unwrap();
    m.update_remote_log_segment_metadata(upd(0, 1, FINISHED))
        .unwrap(); // self-transition
    let err = m
        .add_remote_log_segment_metadata(seg(0, 1, 0, 9, &[(0, 0)]))
        .unwrap_err();
    assert!(matches!(err, RlmmError::InvalidTransition { .. }), "{err}");
    assert_eq!(topic.total_records(), before + 2);
}

#[test]
fn failed_append_changes_nothing_and_can_be_retried() {
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, None);
    topic.fail_nth_append(1);
    let err = m
        .add_remote_log_segment_metadata(seg(0, 1, 0, 9, &[(0, 0)]))
        .unwrap_err();
    assert!(matches!(err, RlmmError::Topic { .. }), "{err}");
    assert!(m.list_remote_log_segments(&tp(0)).unwrap().is_empty());
    m.add_remote_log_segment_metadata(seg(0, 1, 0, 9, &[(0, 0)]))
        .unwrap();
    topic.fail_nth_append(2);
    m.update_remote_log_segment_metadata(upd(0, 1, FINISHED))
        .unwrap();
    assert!(m
        .update_remote_log_segment_metadata(upd(0, 1, DEL_STARTED))
        .is_err());
    assert_eq!(m.segments_in_state(&tp(0), &[FINISHED]).unwrap().len(), 1);
    assert_eq!(topic.append_calls(), 4);
    assert_eq!(topic.total_records(), 2);
}

#[test]
fn restart_replays_the_topic() {
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, None);
    history_part1(&m);
    history_part2(&m);
    let expected = answers(&m);
    m.close();
    let again = start(&topic, None);
    assert_eq!(
        again.startup_info().replayed_records,
        topic.total_records() as u64
    );
    assert_eq!(again.startup_info().dropped_records, 0);
    assert!(!again.startup_info().snapshot_loaded);
    assert_eq!(answers(&again), expected);
    // Partition 2 is MARKED→STARTED, not FINISHED: still present.
    assert_eq!(
        again
            .remote_partition_delete_metadata(&tp(2))
            .unwrap()
            .map(|d| d.state),
        Some(RemotePartitionDeleteState::DeletePartitionStarted)
    );
}

fn snapshot_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join(RlmmConfig::SNAPSHOT_FILE_NAME)
}

#[test]
fn snapshot_plus_tail_equals_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = snapshot_path(&dir);
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, Some(&path));
    history_part1(&m);
    assert_eq!(m.snapshot().unwrap(), Some(path.clone()));
    let covered = topic.total_records();
    history_part2(&m);
    let expected = answers(&m);
    m.close();

    let from_snapshot = start(&topic, Some(&path));
    let info = from_snapshot.startup_info();
    assert!(info.snapshot_loaded);
    assert_eq!(
        info.replayed_records,
        (topic.total_records() - covered) as u64
    );
    assert_eq!(answers(&from_snapshot), expected);

    let full = start(&topic, None);
    assert_eq!(answers(&full), expected);

    // The restored manager keeps working: publish after restart, snapshot again, restart again.
    copy(&from_snapshot, 4, 8, 0, 5, &[(0, 0)]);
    from_snapshot.snapshot().unwrap();
    let expected = answers(&from_snapshot);
    let third = start(&topic, Some(&path));
    assert_eq!(third.startup_info().replayed_records, 0);
    assert_eq!(answers(&third), expected);
}

#[test]
fn snapshot_is_written_only_when_something_was_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = snapshot_path(&dir);
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, Some(&path));
    history_part1(&m);
    m.snapshot().unwrap();
    std::fs::remove_file(&path).unwrap();
    m.snapshot().unwrap();
    assert!(!path.exists(), "an unchanged store was written again");
    history_part2(&m);
    m.snapshot().unwrap();
    assert!(path.exists(), "new events were not snapshotted");
}

#[test]
fn corrupt_or_stale_snapshot_means_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = snapshot_path(&dir);
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, Some(&path));
    history_part1(&m);
    m.snapshot().unwrap();
    history_part2(&m);
    let expected = answers(&m);
    let total = topic.total_records() as u64;

    let good = std::fs::read(&path).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let damaged: Vec<Vec<u8>> = vec![
        flipped,
        good[..good.len() - 3].to_vec(),
        Vec::new(),
        b"garbage".to_vec(),
    ];
    for bytes in damaged {
        std::fs::write(&path, &bytes).unwrap();
        let again = start(&topic, Some(&path));
        assert!(!again.startup_info().snapshot_loaded);
        assert_eq!(again.startup_info().replayed_records, total);
        assert_eq!(answers(&again), expected);
    }

    // A snapshot covering more than the topic holds (topic recreated) is ignored too.
    std::fs::write(&path, &good).unwrap();
    let fresh = InMemoryMetadataTopic::new();
    let on_fresh = start(&fresh, Some(&path));
    assert!(!on_fresh.startup_info().snapshot_loaded);
    assert!(on_fresh.remote_partitions().is_empty());

    // A snapshot written for another partition count is ignored.
    let other = RlmmConfig {
        num_partitions: N + 2,
        snapshot_path: Some(path.clone()),
    };
    let t: Arc<dyn MetadataTopic> = InMemoryMetadataTopic::new();
    let m2 = TopicBasedRemoteLogMetadataManager::start(other, t, clock()).unwrap();
    assert!(!m2.startup_info().snapshot_loaded);
}

/// A sloppy topic that ignores `from_offset` and always reads from 0.
#[derive(Debug)]
struct RereadingTopic(Arc<InMemoryMetadataTopic>);

impl MetadataTopic for RereadingTopic {
    fn ensure(&self, partitions: i32) -> Result<(), RlmmError> {
        self.0.ensure(partitions)
    }
    fn append(&self, partition: i32, value: Bytes) -> Result<i64, RlmmError> {
        self.0.append(partition, value)
    }
    fn read(
        &self,
        partition: i32,
        _from: i64,
        max_bytes: usize,
    ) -> Result<Vec<(i64, Bytes)>, RlmmError> {
        self.0.read(partition, 0, max_bytes)
    }
    fn end_offset(&self, partition: i32) -> Result<i64, RlmmError> {
        self.0.end_offset(partition)
    }
}

#[test]
fn replayed_records_are_deduplicated_by_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = snapshot_path(&dir);
    let inner = InMemoryMetadataTopic::new();
    let m = start(&inner, Some(&path));
    history_part1(&m);
    history_part2(&m);
    m.snapshot().unwrap();
    copy(&m, 0, 9, 300, 310, &[(2, 300)]);
    let expected = answers(&m);

    let topic: Arc<dyn MetadataTopic> = Arc::new(RereadingTopic(inner.clone()));
    let again =
        TopicBasedRemoteLogMetadataManager::start(config(Some(&path)), topic, clock()).unwrap();
    assert!(again.startup_info().snapshot_loaded);
    // Everything was read again, nothing was re-applied: the deleted segment 1 stays deleted.
    assert_eq!(again.startup_info().dropped_records, 0);
    assert_eq!(answers(&again), expected);
    assert!(again
        .list_remote_log_segments(&tp(0))
        .unwrap()
        .iter()
        .all(|s| s.id.id != Uuid::from_u128(1)));
}

#[test]
fn undecodable_records_are_skipped_on_replay() {
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, None);
    let mp = m.metadata_partition_for(&tp(0));
    m.add_remote_log_segment_metadata(seg(0, 1, 0, 9, &[(0, 0)]))
        .unwrap();
    topic
        .append(mp, Bytes::from_static(b"\x00\x00\x00junk"))
        .unwrap();
    m.close();
    // The manager's own next publish must not collide with the junk offset.
    let again = start(&topic, None);
    assert_eq!(again.startup_info().dropped_records, 1);
    again
        .update_remote_log_segment_metadata(upd(0, 1, FINISHED))
        .unwrap();
    assert_eq!(again.highest_copied_offset(&tp(0)).unwrap(), Some(9));
}

#[test]
fn partition_deletion_drops_the_cache() {
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, None);
    copy(&m, 0, 1, 0, 9, &[(0, 0)]);
    copy(&m, 1, 2, 0, 9, &[(0, 0)]);
    let d = |state| RemotePartitionDeleteMetadata {
        tp: tp(0),
        state,
        event_timestamp_ms: 1,
        broker_id: 1,
    };
    use RemotePartitionDeleteState::*;
    m.put_remote_partition_delete_metadata(d(DeletePartitionMarked))
        .unwrap();
    m.put_remote_partition_delete_metadata(d(DeletePartitionStarted))
        .unwrap();
    assert_eq!(m.remote_partitions(), vec![tp(0), tp(1)]);
    m.update_remote_log_segment_metadata(upd(0, 1, DEL_STARTED))
        .unwrap();
    m.update_remote_log_segment_metadata(upd(0, 1, DEL_FINISHED))
        .unwrap();
    m.put_remote_partition_delete_metadata(d(DeletePartitionFinished))
        .unwrap();
    assert_eq!(m.remote_partitions(), vec![tp(1)]);
    assert_eq!(m.remote_partition_delete_metadata(&tp(0)).unwrap(), None);
    assert!(m.list_remote_log_segments(&tp(0)).unwrap().is_empty());
    let again = start(&topic, None);
    assert_eq!(again.remote_partitions(), vec![tp(1)]);
}

#[test]
fn closed_manager_refuses_calls() {
    let dir = tempfile::tempdir().unwrap();
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, Some(&snapshot_path(&dir)));
    copy(&m, 0, 1, 0, 9, &[(0, 0)]);
    m.close();
    m.close();
    assert!(matches!(
        m.list_remote_log_segments(&tp(0)),
        Err(RlmmError::NotReady { .. })
    ));
    assert!(matches!(
        m.add_remote_log_segment_metadata(seg(0, 2, 10, 19, &[(0, 10)])),
        Err(RlmmError::NotReady { .. })
    ));
    assert!(m.snapshot().is_err());
    assert!(!m.is_initialized(&tp(0)));
    assert_eq!(topic.total_records(), 2);
}

#[test]
fn without_snapshot_path_snapshot_is_a_no_op() {
    let topic = InMemoryMetadataTopic::new();
    let m = start(&topic, None);
    assert_eq!(m.snapshot().unwrap(), None);
}

#[test]
fn managers_sharing_the_topic_catch_up_with_each_others_events() {
    // Two brokers: each publishes for the partitions it leads and reads the others forward.
    let topic = InMemoryMetadataTopic::new();
    let (a, b) = (start(&topic, None), start(&topic, None));
    let mp = metadata_partition(&tp(0), N);
    let other = (1..100)
        .find(|&p| metadata_partition(&tp(p), N) == mp)
        .unwrap();
    copy(&a, 0, 1, 0, 9, &[(0, 0)]);
    assert!(b.list_remote_log_segments(&tp(0)).unwrap().is_empty());
    assert_eq!(b.catch_up(&[tp(0)]).unwrap(), 2);
    assert_eq!(b.highest_copied_offset(&tp(0)).unwrap(), Some(9));
    // b publishes to the same metadata partition without catching up first: the publish reads
    // a's newer records forward before its own, so neither cache misses an event.
    copy(&a, 0, 2, 10, 19, &[(0, 10)]);
    copy(&b, other, 3, 0, 4, &[(2, 0)]);
    assert_eq!(b.highest_copied_offset(&tp(0)).unwrap(), Some(19));
    assert_eq!(a.catch_up(&[tp(other)]).unwrap(), 2);
    assert_eq!(answers(&a), answers(&b));
    assert_eq!(a.catch_up_all().unwrap(), 0, "nothing left to read");
}
