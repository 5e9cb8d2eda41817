//! Store behaviour: replay dedupe by metadata-partition offset, partition deletion, readiness.

use super::*;
use crate::metadata::RemoteLogSegmentId;
use uuid::Uuid;

fn tp(p: i32) -> TopicIdPartition {
    TopicIdPartition::new(Uuid::from_u128(0x77), "foo", p)
}

fn add(p: i32, n: u128, start: i64, end: i64) -> RemoteLogMetadata {
    let id = RemoteLogSegmentId::new(tp(p), Uuid::from_u128(n));
    let epochs = BTreeMap::from([(0, start)]);
    RemoteLogMetadata::Segment(
        RemoteLogSegmentMetadata::new(id, start, end, -1, 0, 0, 10, epochs).unwrap(),
    )
}

fn upd(p: i32, n: u128, state: RemoteLogSegmentState) -> RemoteLogMetadata {
    RemoteLogMetadata::Update(RemoteLogSegmentMetadataUpdate {
        id: RemoteLogSegmentId::new(tp(p), Uuid::from_u128(n)),
        event_timestamp_ms: 1,
        custom_metadata: None,
        state,
        broker_id: 0,
    })
}

fn del(p: i32, state: RemotePartitionDeleteState) -> RemoteLogMetadata {
    RemoteLogMetadata::PartitionDelete(RemotePartitionDeleteMetadata {
        tp: tp(p),
        state,
        event_timestamp_ms: 1,
        broker_id: 0,
    })
}

#[test]
fn replays_are_deduplicated_per_metadata_partition() {
    let mut s = RemotePartitionMetadataStore::new();
    assert!(matches!(
        s.apply(3, 0, &add(0, 1, 0, 9)),
        ApplyOutcome::Applied
    ));
    assert!(matches!(
        s.apply(3, 1, &upd(0, 1, RemoteLogSegmentState::CopySegmentFinished)),
        ApplyOutcome::Applied
    ));
    // Replaying offsets 0 and 1 of metadata partition 3 changes nothing.
    assert!(matches!(
        s.apply(3, 0, &add(0, 1, 0, 9)),
        ApplyOutcome::Duplicate
    ));
    assert!(matches!(
        s.apply(3, 1, &add(0, 1, 0, 9)),
        ApplyOutcome::Duplicate
    ));
    // The same offset in another metadata partition is a different record.
    assert!(matches!(
        s.apply(4, 1, &add(1, 2, 0, 9)),
        ApplyOutcome::Applied
    ));
    assert_eq!(s.last_processed_offset(3), Some(1));
    assert_eq!(s.next_offset(3), 2);
    assert_eq!(s.next_offset(5), 0);
    s.mark_all_initialized();
    let c = s.cache(&tp(0)).unwrap();
    assert_eq!(
        c.segment(&Uuid::from_u128(1)).unwrap().state,
        RemoteLogSegmentState::CopySegmentFinished
    );
}

#[test]
fn invalid_events_are_dropped_but_counted() {
    let mut s = RemotePartitionMetadataStore::new();
    s.mark_all_initialized();
    s.apply(0, 0, &add(0, 1, 0, 9));
    let out = s.apply(
        0,
        1,
        &upd(0, 1, RemoteLogSegmentState::DeleteSegmentFinished),
    );
    assert!(matches!(
        out,
        ApplyOutcome::Dropped(RlmmError::InvalidTransition { .. })
    ));
    let out = s.apply(
        0,
        2,
        &upd(0, 99, RemoteLogSegmentState::CopySegmentFinished),
    );
    assert!(matches!(
        out,
        ApplyOutcome::Dropped(RlmmError::UnknownSegment { .. })
    ));
    let out = s.apply(
        0,
        3,
        &upd(5, 99, RemoteLogSegmentState::CopySegmentFinished),
    );
    assert!(matches!(
        out,
        ApplyOutcome::Dropped(RlmmError::UnknownSegment { .. })
    ));
    // A rejected add for a new partition leaves no empty cache behind.
    let RemoteLogMetadata::Segment(mut bad) = add(6, 5, 0, 9) else {
        unreachable!()
    };
    bad.state = RemoteLogSegmentState::CopySegmentFinished;
    let out = s.apply(0, 4, &RemoteLogMetadata::Segment(bad));
    assert!(matches!(
        out,
        ApplyOutcome::Dropped(RlmmError::InvalidArgument { .. })
    ));
    assert_eq!(s.partitions(), vec![tp(0)]);
    // Undecodable records are dropped and counted, and deduplicated like any other.
    assert!(matches!(
        s.apply_record(0, 5, b"\x01\x09\x00"),
        ApplyOutcome::Dropped(RlmmError::Serde { .. })
    ));
    assert!(matches!(
        s.apply_record(0, 5, b"junk"),
        ApplyOutcome::Duplicate
    ));
    assert_eq!(s.last_processed_offset(0), Some(5));
    let state = s
        .cache(&tp(0))
        .unwrap()
        .segment(&Uuid::from_u128(1))
        .unwrap()
        .state;
    assert_eq!(state, RemoteLogSegmentState::CopySegmentStarted);
}

#[test]
fn updates_for_unknown_partitions_are_ignored_while_loading() {
    let mut s = RemotePartitionMetadataStore::new();
    let out = s.apply(
        0,
        0,
        &upd(5, 99, RemoteLogSegmentState::CopySegmentFinished),
    );
    assert!(matches!(out, ApplyOutcome::Applied));
    assert!(s.partitions().is_empty());
}

#[test]
fn partition_delete_lifecycle() {
    use RemotePartitionDeleteState::*;
    let mut s = RemotePartitionMetadataStore::new();
    s.mark_all_initialized();
    s.apply(0, 0, &add(0, 1, 0, 9));
    s.apply(0, 1, &add(1, 2, 0, 9));
    let out = s.apply(0, 2, &del(0, DeletePartitionStarted));
    assert!(matches!(
        out,
        ApplyOutcome::Dropped(RlmmError::InvalidPartitionDeleteTransition { .. })
    ));
    assert!(matches!(
        s.apply(0, 3, &del(0, DeletePartitionMarked)),
        ApplyOutcome::Applied
    ));
    assert!(matches!(
        s.apply(0, 4, &del(0, DeletePartitionMarked)),
        ApplyOutcome::Applied
    ));
    assert_eq!(
        s.partition_delete_metadata(&tp(0)).unwrap().state,
        DeletePartitionMarked
    );
    assert!(matches!(
        s.apply(0, 5, &del(0, DeletePartitionStarted)),
        ApplyOutcome::Applied
    ));
    assert!(s.cache(&tp(0)).is_ok());
    assert!(matches!(
        s.apply(0, 6, &del(0, DeletePartitionFinished)),
        ApplyOutcome::Applied
    ));
    assert!(matches!(
        s.cache(&tp(0)),
        Err(RlmmError::UnknownPartition { .. })
    ));
    assert!(s.partition_delete_metadata(&tp(0)).is_none());
    assert_eq!(s.partitions(), vec![tp(1)]);
}

#[test]
fn readiness_is_per_partition() {
    let mut s = RemotePartitionMetadataStore::new();
    s.apply(0, 0, &add(0, 1, 0, 9));
    assert!(matches!(s.cache(&tp(0)), Err(RlmmError::NotReady { .. })));
    assert!(!s.is_initialized(&tp(0)));
    s.mark_initialized(&tp(0));
    assert!(s.cache(&tp(0)).is_ok());
    s.apply(0, 1, &add(1, 2, 0, 9));
    assert!(matches!(s.cache(&tp(1)), Err(RlmmError::NotReady { .. })));
    s.mark_all_initialized();
    assert!(s.cache(&tp(1)).is_ok());
    // Caches created after global initialization start ready.
    s.apply(0, 2, &add(2, 3, 0, 9));
    assert!(s.cache(&tp(2)).is_ok());
    assert!(matches!(
        s.cache(&tp(9)),
        Err(RlmmError::UnknownPartition { .. })
    ));
    assert_eq!(s.partitions(), vec![tp(0), tp(1), tp(2)]);
    s.clear_partition(&tp(1));
    assert_eq!(s.partitions(), vec![tp(0), tp(2)]);
}

#[test]
fn checks_do_not_mutate() {
    let mut s = RemotePartitionMetadataStore::new();
    s.mark_all_initialized();
    let RemoteLogMetadata::Segment(m) = add(0, 1, 0, 9) else {
        unreachable!()
    };
    s.check_add(&m).unwrap();
    assert!(s.partitions().is_empty());
    s.handle(&RemoteLogMetadata::Segment(m.clone())).unwrap();
    s.check_add(&m).unwrap(); // self-transition
    let RemoteLogMetadata::Update(u) = upd(0, 1, RemoteLogSegmentState::DeleteSegmentFinished)
    else {
        unreachable!()
    };
    assert!(matches!(
        s.check_update(&u),
        Err(RlmmError::InvalidTransition { .. })
    ));
    let started = RemoteLogSegmentMetadataUpdate {
        state: RemoteLogSegmentState::CopySegmentStarted,
        ..u.clone()
    };
    assert!(matches!(
        s.check_update(&started),
        Err(RlmmError::InvalidArgument { .. })
    ));
    let unknown = RemoteLogSegmentMetadataUpdate {
        id: RemoteLogSegmentId::new(tp(0), Uuid::from_u128(5)),
        ..u
    };
    assert!(matches!(
        s.check_update(&unknown),
        Err(RlmmError::UnknownSegment { .. })
    ));
    let mut finished = m.clone();
    finished.state = RemoteLogSegmentState::CopySegmentFinished;
    assert!(matches!(
        s.check_add(&finished),
        Err(RlmmError::InvalidArgument { .. })
    ));
}
