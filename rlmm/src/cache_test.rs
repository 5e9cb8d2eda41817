//! Scenarios ported from Kafka's RemoteLogMetadataCacheTest, RemoteLogSegmentLifecycleTest and
//! RemoteLogLeaderEpochStateTest (rewritten; same situations and expectations).

use super::*;
use crate::state::RemoteLogSegmentState::{
    CopySegmentFinished as FINISHED, CopySegmentStarted as STARTED,
    DeleteSegmentFinished as DEL_FINISHED, DeleteSegmentStarted as DEL_STARTED,
};

fn tp() -> TopicIdPartition {
    TopicIdPartition::new(Uuid::from_u128(0xabc), "foo", 0)
}

fn sid(n: u128) -> RemoteLogSegmentId {
    RemoteLogSegmentId::new(tp(), Uuid::from_u128(n))
}

fn meta(n: u128, start: i64, end: i64, epochs: &[(i32, i64)]) -> RemoteLogSegmentMetadata {
    let epochs = epochs.iter().copied().collect();
    RemoteLogSegmentMetadata::new(sid(n), start, end, -1, 0, 1, 1024, epochs).unwrap()
}

fn upd(n: u128, state: RemoteLogSegmentState) -> RemoteLogSegmentMetadataUpdate {
    RemoteLogSegmentMetadataUpdate {
        id: sid(n),
        event_timestamp_ms: 2,
        custom_metadata: None,
        state,
        broker_id: 1,
    }
}

fn ready() -> RemoteLogMetadataCache {
    let mut c = RemoteLogMetadataCache::new(tp());
    c.mark_initialized();
    c
}

/// Adds a segment and moves it to `state` through valid steps; returns the final metadata.
fn upsert(
    c: &mut RemoteLogMetadataCache,
    n: u128,
    start: i64,
    end: i64,
    epochs: &[(i32, i64)],
    state: RemoteLogSegmentState,
) -> RemoteLogSegmentMetadata {
    let m = meta(n, start, end, epochs);
    c.add_copy_in_progress_segment(m.clone()).unwrap();
    if state == STARTED {
        return m;
    }
    c.update_remote_log_segment_metadata(&upd(n, state))
        .unwrap();
    m.create_with_updates(&upd(n, state)).unwrap()
}

fn ids(v: &[RemoteLogSegmentMetadata]) -> Vec<u128> {
    v.iter().map(|m| m.id.id.as_u128()).collect()
}

#[test]
fn add_rejects_non_started_states_and_bad_metadata() {
    let mut c = ready();
    for state in [FINISHED, DEL_STARTED, DEL_FINISHED] {
        let m = meta(1, 0, 100, &[(0, 0)])
            .create_with_updates(&upd(1, state))
            .unwrap();
        let err = c.add_copy_in_progress_segment(m).unwrap_err();
        assert!(matches!(err, RlmmError::InvalidArgument { .. }), "{err}");
    }
    let mut bad = meta(2, 0, 100, &[(0, 0)]);
    bad.segment_leader_epochs.clear();
    assert!(c.add_copy_in_progress_segment(bad).is_err());
    let other = RemoteLogSegmentId::new(
        TopicIdPartition::new(Uuid::from_u128(9), "bar", 0),
        Uuid::from_u128(3),
    );
    let mut wrong_tp = meta(3, 0, 1, &[(0, 0)]);
    wrong_tp.id = other;
    assert!(c.add_copy_in_progress_segment(wrong_tp).is_err());
    assert!(c.is_empty());
}

#[test]
fn update_for_unknown_segment_depends_on_initialization() {
    for initialized in [true, false] {
        let mut c = RemoteLogMetadataCache::new(tp());
        if initialized {
            c.mark_initialized();
        }
        for state in [FINISHED, DEL_STARTED, DEL_FINISHED] {
            let r = c.update_remote_log_segment_metadata(&upd(7, state));
            if initialized {
                assert!(matches!(r, Err(RlmmError::UnknownSegment { .. })), "{r:?}");
            } else {
                assert!(r.is_ok(), "{r:?}");
            }
        }
        assert!(c.is_empty());
    }
}

#[test]
fn invalid_transitions_are_rejected_and_leave_state_unchanged() {
    let mut c = ready();
    let epoch = 5;
    c.add_copy_in_progress_segment(meta(1, 10, 100, &[(epoch, 10)]))
        .unwrap();
    // (target, valid?, state expected afterwards)
    let steps = [
        (DEL_FINISHED, false, Some(STARTED)),
        (FINISHED, true, Some(FINISHED)),
        (DEL_FINISHED, false, Some(FINISHED)),
        (STARTED, false, Some(FINISHED)),
        (DEL_STARTED, true, Some(DEL_STARTED)),
        (FINISHED, false, Some(DEL_STARTED)),
        (STARTED, false, Some(DEL_STARTED)),
        (DEL_FINISHED, true, None),
    ];
    for (target, valid, expected) in steps {
        let r = c.update_remote_log_segment_metadata(&upd(1, target));
        assert_eq!(r.is_ok(), valid, "-> {target}: {r:?}");
        if !valid {
            assert!(
                matches!(r, Err(RlmmError::InvalidTransition { .. })),
                "{r:?}"
            );
        }
        let listed = c.list_remote_log_segments_for_epoch(epoch);
        match expected {
            Some(state) => {
                assert_eq!(listed.len(), 1);
                assert_eq!(listed[0].state, state);
            }
            None => assert!(listed.is_empty()),
        }
    }
    assert!(c.list_remote_log_segments().is_empty());
}

#[test]
fn self_transitions_and_re_add_are_idempotent() {
    let mut c = ready();
    let m = meta(1, 0, 50, &[(0, 0)]);
    c.add_copy_in_progress_segment(m.clone()).unwrap();
    c.add_copy_in_progress_segment(m.clone()).unwrap();
    c.update_remote_log_segment_metadata(&upd(1, STARTED))
        .unwrap_err();
    c.update_remote_log_segment_metadata(&upd(1, FINISHED))
        .unwrap();
    c.update_remote_log_segment_metadata(&upd(1, FINISHED))
        .unwrap();
    assert_eq!(c.list_remote_log_segments_for_epoch(0).len(), 1);
    assert!(c.remote_log_segment_metadata(0, 10).is_some());
    // A finished segment cannot be re-added.
    assert!(matches!(
        c.add_copy_in_progress_segment(m),
        Err(RlmmError::InvalidTransition { .. })
    ));
}

#[test]
fn lifecycle_across_epochs() {
    let mut c = ready();
    let m0 = meta(10, 0, 100, &[(0, 0), (1, 20), (2, 80)]);
    c.add_copy_in_progress_segment(m0.clone()).unwrap();
    assert!(c.remote_log_segment_metadata(1, 40).is_none());
    for e in 0..=2 {
        assert_eq!(c.highest_offset_for_epoch(e), None);
    }
    c.update_remote_log_segment_metadata(&upd(10, FINISHED))
        .unwrap();
    let m0 = m0.create_with_updates(&upd(10, FINISHED)).unwrap();
    let m1 = upsert(&mut c, 11, 101, 200, &[(2, 101)], FINISHED);
    let m2 = upsert(&mut c, 12, 201, 300, &[(2, 201), (3, 240)], FINISHED);
    let m3 = upsert(&mut c, 13, 250, 400, &[(3, 250), (4, 370)], FINISHED);

    let found = [
        ((1, 40), &m0),
        ((2, 110), &m1),
        ((3, 240), &m2),
        ((3, 250), &m3),
        ((4, 375), &m3),
    ];
    for ((epoch, offset), expected) in found {
        assert_eq!(
            c.remote_log_segment_metadata(epoch, offset).as_ref(),
            Some(expected),
            "({epoch},{offset})"
        );
    }
    for (epoch, offset) in [(1, 110), (4, 401), (5, 301)] {
        assert_eq!(
            c.remote_log_segment_metadata(epoch, offset),
            None,
            "({epoch},{offset})"
        );
    }

    c.update_remote_log_segment_metadata(&upd(10, DEL_STARTED))
        .unwrap();
    assert!(c.remote_log_segment_metadata(0, 10).is_none());
    c.update_remote_log_segment_metadata(&upd(10, DEL_FINISHED))
        .unwrap();
    assert!(c.remote_log_segment_metadata(0, 10).is_none());

    // Historical highest offsets survive the deletion of segment 0.
    for (epoch, highest) in [(0, 19), (1, 79), (2, 239), (3, 369), (4, 400)] {
        assert_eq!(
            c.highest_offset_for_epoch(epoch),
            Some(highest),
            "epoch {epoch}"
        );
    }
    assert_eq!(c.highest_offset_for_epoch(5), None);
    assert_eq!(c.highest_copied_offset(), Some(400));
}

#[test]
fn copy_started_segment_is_listed_but_not_readable() {
    let mut c = ready();
    let m = upsert(&mut c, 1, 0, 50, &[(0, 0)], STARTED);
    assert!(c.remote_log_segment_metadata(0, 0).is_none());
    assert_eq!(c.list_remote_log_segments_for_epoch(0), vec![m.clone()]);
    assert_eq!(c.list_remote_log_segments(), vec![m]);
    assert_eq!(c.highest_copied_offset(), None);
}

#[test]
fn copy_finished_segment_is_readable_and_listed() {
    let mut c = ready();
    let m = upsert(&mut c, 1, 101, 200, &[(0, 101)], FINISHED);
    assert_eq!(c.remote_log_segment_metadata(0, 150), Some(m.clone()));
    assert_eq!(c.remote_log_segment_metadata(0, 100), None);
    assert_eq!(c.remote_log_segment_metadata(0, 201), None);
    assert_eq!(c.list_remote_log_segments_for_epoch(0), vec![m.clone()]);
    assert_eq!(c.list_remote_log_segments(), vec![m]);
    assert_eq!(c.highest_copied_offset(), Some(200));
}

#[test]
fn delete_started_segment_is_listed_but_not_readable() {
    let mut c = ready();
    let m = upsert(&mut c, 1, 201, 300, &[(0, 201)], DEL_STARTED);
    assert!(c.remote_log_segment_metadata(0, 250).is_none());
    assert_eq!(c.list_remote_log_segments_for_epoch(0), vec![m.clone()]);
    assert_eq!(c.list_remote_log_segments(), vec![m]);
}

#[test]
fn delete_finished_segment_disappears() {
    let mut c = ready();
    upsert(&mut c, 1, 301, 400, &[(0, 301)], DEL_STARTED);
    assert!(c.remote_log_segment_metadata(0, 350).is_none());
    c.update_remote_log_segment_metadata(&upd(1, DEL_FINISHED))
        .unwrap();
    assert!(c.list_remote_log_segments_for_epoch(0).is_empty());
    assert!(c.list_remote_log_segments().is_empty());
    assert_eq!(c.remote_log_size(), 0);
}

#[test]
fn listing_is_sorted_per_epoch() {
    let mut c = ready();
    let s2 = upsert(&mut c, 3, 201, 400, &[(0, 201), (1, 301)], FINISHED);
    let s0 = upsert(&mut c, 1, 0, 100, &[(0, 0)], FINISHED);
    let s1 = upsert(&mut c, 2, 101, 200, &[(0, 101)], FINISHED);
    assert_eq!(
        c.list_remote_log_segments_for_epoch(0),
        vec![s0.clone(), s1.clone(), s2.clone()]
    );
    assert_eq!(c.list_remote_log_segments(), vec![s0, s1, s2.clone()]);
    assert_eq!(c.list_remote_log_segments_for_epoch(1), vec![s2]);
    assert!(c.list_remote_log_segments_for_epoch(2).is_empty());
    assert_eq!(c.remote_log_size(), 3 * 1024);
    assert_eq!(c.remote_log_size_for_epoch(0), 3 * 1024);
    assert_eq!(c.remote_log_size_for_epoch(1), 1024);
    assert_eq!(c.remote_log_size_for_epoch(9), 0);
}

#[test]
fn epoch_listing_includes_unreferenced_in_start_order() {
    let mut c = ready();
    // copy started, never finished (unreferenced)
    upsert(&mut c, 1, 0, 4, &[(0, 0)], STARTED);
    upsert(&mut c, 2, 5, 10, &[(0, 5)], FINISHED);
    // finished, then superseded by segment 4 which starts earlier and reaches further
    upsert(&mut c, 3, 11, 100, &[(0, 11)], FINISHED);
    upsert(&mut c, 4, 9, 150, &[(0, 9)], FINISHED);
    assert_eq!(
        ids(&c.list_remote_log_segments_for_epoch(0)),
        vec![1, 2, 4, 3]
    );
    let state = &c.epochs[&0];
    assert_eq!(
        state
            .offset_to_id
            .values()
            .map(|u| u.as_u128())
            .collect::<Vec<_>>(),
        vec![2, 4]
    );
    assert_eq!(
        state
            .unreferenced
            .iter()
            .map(|u| u.as_u128())
            .collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(
        c.remote_log_segment_metadata(0, 50)
            .map(|m| m.id.id.as_u128()),
        Some(4)
    );
}

#[test]
fn overlapping_segment_supersedes_previous() {
    let mut c = ready();
    upsert(&mut c, 1, 10, 100, &[(0, 10)], FINISHED);
    upsert(&mut c, 2, 5, 150, &[(0, 5)], FINISHED);
    let state = &c.epochs[&0];
    assert_eq!(state.offset_to_id.len(), 1);
    assert_eq!(
        c.remote_log_segment_metadata(0, 11)
            .map(|m| m.id.id.as_u128()),
        Some(2)
    );
    assert_eq!(
        state
            .unreferenced
            .iter()
            .map(|u| u.as_u128())
            .collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(c.highest_offset_for_epoch(0), Some(150));
}

#[test]
fn multiple_overlapping_segments_are_all_superseded() {
    let mut c = ready();
    upsert(&mut c, 1, 10, 100, &[(0, 10)], FINISHED);
    upsert(&mut c, 2, 5, 150, &[(0, 5)], FINISHED);
    upsert(&mut c, 3, 148, 155, &[(0, 148)], FINISHED);
    upsert(&mut c, 4, 4, 200, &[(0, 4)], FINISHED);
    let state = &c.epochs[&0];
    assert_eq!(state.offset_to_id.len(), 1);
    assert_eq!(
        c.remote_log_segment_metadata(0, 11)
            .map(|m| m.id.id.as_u128()),
        Some(4)
    );
    assert_eq!(
        state
            .unreferenced
            .iter()
            .map(|u| u.as_u128())
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(c.highest_offset_for_epoch(0), Some(200));
}

#[test]
fn duplicate_and_same_start_segments() {
    let mut c = ready();
    upsert(&mut c, 1, 10, 100, &[(0, 10)], FINISHED);
    upsert(&mut c, 2, 10, 100, &[(0, 10)], FINISHED);
    assert_eq!(
        c.remote_log_segment_metadata(0, 11)
            .map(|m| m.id.id.as_u128()),
        Some(2)
    );
    assert_eq!(c.epochs[&0].unreferenced.len(), 1);
    assert_eq!(c.highest_offset_for_epoch(0), Some(100));

    let mut c = ready();
    upsert(&mut c, 1, 10, 100, &[(0, 10)], FINISHED);
    upsert(&mut c, 2, 10, 150, &[(0, 10)], FINISHED);
    assert_eq!(
        c.remote_log_segment_metadata(0, 11)
            .map(|m| m.id.id.as_u128()),
        Some(2)
    );
    assert_eq!(
        c.remote_log_segment_metadata(0, 111)
            .map(|m| m.id.id.as_u128()),
        Some(2)
    );
    assert_eq!(c.epochs[&0].unreferenced.len(), 1);
    assert_eq!(c.highest_offset_for_epoch(0), Some(150));
}

#[test]
fn new_leader_upload_supersedes_old_leader_overlap() {
    // Old leader (epoch 0) uploaded [10, 90]; the new leader's upload covers [5, 100] with epoch 0
    // for [5, 94] and epoch 1 from 95. The old upload must stop serving reads.
    let mut c = ready();
    upsert(&mut c, 1, 10, 90, &[(0, 10)], FINISHED);
    let new = upsert(&mut c, 2, 5, 100, &[(0, 5), (1, 95)], FINISHED);
    assert_eq!(c.remote_log_segment_metadata(0, 50), Some(new.clone()));
    assert_eq!(c.remote_log_segment_metadata(0, 95), None);
    assert_eq!(c.remote_log_segment_metadata(1, 97), Some(new));
    assert_eq!(ids(&c.list_remote_log_segments_for_epoch(0)), vec![2, 1]);
    assert_eq!(c.highest_offset_for_epoch(0), Some(94).max(Some(90)));
    // The superseded segment is still listed so retention can delete it.
    c.update_remote_log_segment_metadata(&upd(1, DEL_STARTED))
        .unwrap();
    c.update_remote_log_segment_metadata(&upd(1, DEL_FINISHED))
        .unwrap();
    assert_eq!(ids(&c.list_remote_log_segments()), vec![2]);
    assert_eq!(
        c.remote_log_segment_metadata(0, 50)
            .map(|m| m.id.id.as_u128()),
        Some(2)
    );
}

#[test]
fn truncated_epoch_keeps_displaced_segment_listed() {
    // Old leader uploaded [0, 100] in epoch 0, but the new leader's log has epoch 0 only up to 49.
    // The new upload [0, 120] {0:0, 1:50} takes key 0 of epoch 0; the old one stays listed.
    let mut c = ready();
    upsert(&mut c, 1, 0, 100, &[(0, 0)], FINISHED);
    upsert(&mut c, 2, 0, 120, &[(0, 0), (1, 50)], FINISHED);
    assert_eq!(
        c.remote_log_segment_metadata(0, 30)
            .map(|m| m.id.id.as_u128()),
        Some(2)
    );
    assert_eq!(c.remote_log_segment_metadata(0, 70), None);
    assert_eq!(ids(&c.list_remote_log_segments_for_epoch(0)), vec![1, 2]);
    assert_eq!(c.highest_offset_for_epoch(0), Some(100));
    assert_eq!(c.highest_offset_for_epoch(1), Some(120));
}

#[test]
fn delete_started_only_unmaps_its_own_entry() {
    let mut c = ready();
    upsert(&mut c, 1, 10, 100, &[(0, 10)], FINISHED);
    upsert(&mut c, 2, 10, 100, &[(0, 10)], FINISHED); // supersedes 1
    c.update_remote_log_segment_metadata(&upd(1, DEL_STARTED))
        .unwrap();
    assert_eq!(
        c.remote_log_segment_metadata(0, 20)
            .map(|m| m.id.id.as_u128()),
        Some(2)
    );
    c.update_remote_log_segment_metadata(&upd(2, DEL_STARTED))
        .unwrap();
    assert_eq!(c.remote_log_segment_metadata(0, 20), None);
    assert_eq!(c.epochs[&0].unreferenced.len(), 2);
    assert_eq!(c.highest_offset_for_epoch(0), Some(100));
}

#[test]
fn segments_in_state_filters_and_sorts() {
    let mut c = ready();
    upsert(&mut c, 1, 200, 300, &[(0, 200)], FINISHED);
    upsert(&mut c, 2, 0, 99, &[(0, 0)], FINISHED);
    upsert(&mut c, 3, 100, 199, &[(0, 100)], DEL_STARTED);
    upsert(&mut c, 4, 301, 400, &[(0, 301)], STARTED);
    assert_eq!(ids(&c.segments_in_state(&[FINISHED])), vec![2, 1]);
    assert_eq!(
        ids(&c.segments_in_state(&[STARTED, DEL_STARTED])),
        vec![3, 4]
    );
    assert_eq!(c.highest_copied_offset(), Some(300));
    assert!(c.check_consistency().is_ok());
}
