//! Retention by time, size and log start offset; DeleteRecords; truncation.
mod common;

use std::time::Duration;

use common::*;
use shale_common::ManualClock;
use shale_local_log::{LogConfig, LogError};

fn cfg(extra: &[(&str, &str)]) -> LogConfig {
    LogConfig::default()
        .with_overrides([("segment.bytes", "400"), ("file.delete.delay.ms", "1000")])
        .unwrap()
        .with_overrides(extra.iter().copied())
        .unwrap()
}

fn fill(log: &shale_local_log::Log, n: i64, ts: i64) {
    for i in 0..n {
        log.append(batch(1, ts + i, 100), client()).unwrap();
    }
}

fn deleted_files(dir: &std::path::Path) -> usize {
    files(dir)
        .iter()
        .filter(|f| f.ends_with(".deleted"))
        .count()
}

#[test]
fn retention_by_time_renames_then_removes_after_delay() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), cfg(&[("retention.ms", "10000")]), &clock, true);
    fill(&log, 6, T0); // 2 batches per segment: segments 0, 2, 4
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4]);
    assert_eq!(log.enforce_retention().unwrap(), 0);
    clock.set_ms(T0 + 10_002); // segment 0 (max ts T0+1) is now older than retention.ms
    assert_eq!(log.enforce_retention().unwrap(), 1);
    assert_eq!(log.segment_base_offsets(), vec![2, 4]);
    assert_eq!(log.log_start_offset(), 2);
    assert!(d.path().join("00000000000000000000.log.deleted").exists());
    assert!(matches!(
        log.read(0, 100, 6, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    log.tick().unwrap();
    assert!(deleted_files(d.path()) > 0);
    clock.advance(Duration::from_millis(1000));
    log.tick().unwrap();
    assert_eq!(deleted_files(d.path()), 0);
    // Everything expired: the active segment goes too after a roll; log stays usable.
    clock.set_ms(T0 + 100_000);
    assert_eq!(log.enforce_retention().unwrap(), 2);
    assert_eq!(log.segment_base_offsets(), vec![6]);
    assert!(d
        .path()
        .join("00000000000000000002.snapshot.deleted")
        .exists());
    assert!(d.path().join("00000000000000000006.snapshot").exists());
    assert_eq!(log.log_start_offset(), 6);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(
        log.append(batch(1, T0 + 100_000, 1), client())
            .unwrap()
            .first_offset,
        6
    );
}

#[test]
fn retention_by_bytes() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let seg_size = 2 * batch(1, T0, 100).len() as u64;
    let log = open(
        d.path(),
        cfg(&[("retention.bytes", &*(seg_size * 2).to_string())]),
        &clock,
        true,
    );
    fill(&log, 7, T0); // segments 0,2,4 full + active 6 with one batch
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4, 6]);
    // size = 3.5 segs, limit 2 segs: delete while the rest stays >= limit -> one segment.
    assert_eq!(log.enforce_retention().unwrap(), 1);
    assert_eq!(log.segment_base_offsets(), vec![2, 4, 6]);
    assert!(log.size_in_bytes() >= seg_size * 2);
}

#[test]
fn delete_records_and_log_start_retention() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), cfg(&[]), &clock, true);
    fill(&log, 6, T0);
    assert_eq!(log.delete_records_before(3).unwrap(), 3);
    assert_eq!(log.segment_base_offsets(), vec![2, 4]);
    assert_eq!(log.log_start_offset(), 3);
    assert!(matches!(
        log.read(2, 100, 6, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    // Reading at the log start returns the batch containing it.
    let r = parse(log.read(3, 1, 6, true).unwrap().records);
    assert_eq!(r[0].base_offset(), 3);
    assert!(matches!(
        log.delete_records_before(7),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    // Lower than current: no change.
    assert_eq!(log.delete_records_before(1).unwrap(), 3);
    log.close().unwrap();
    // The log start survives a restart through the checkpoint value passed back in.
    let mut o = opts(true);
    o.log_start_offset = 3;
    let log = shale_local_log::Log::open(d.path().to_path_buf(), tp(), cfg(&[]), o, clock.clone())
        .unwrap();
    assert_eq!(log.log_start_offset(), 3);
}

#[test]
fn truncate_to_drops_tail_and_producer_state() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), cfg(&[]), &clock, true);
    for i in 0..6 {
        log.append(pbatch(5, 0, i, 1, T0), client()).unwrap();
    }
    let before = log.segment_count();
    log.truncate_to(3).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert!(log.segment_count() <= before);
    assert_eq!(all_batches(&log).len(), 3);
    // The producer state was rebuilt to sequence 2: next sequence must be 3.
    assert!(matches!(
        log.append(pbatch(5, 0, 6, 1, T0), client()),
        Err(LogError::OutOfOrderSequence { expected: 3, .. })
    ));
    assert_eq!(
        log.append(pbatch(5, 0, 3, 1, T0), client())
            .unwrap()
            .first_offset,
        3
    );
    log.truncate_to(0).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(
        log.append(batch(1, T0, 1), client()).unwrap().first_offset,
        0
    );
}

#[test]
fn truncate_below_log_start_starts_over() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), cfg(&[]), &clock, true);
    fill(&log, 6, T0);
    log.delete_records_before(3).unwrap();
    log.truncate_to(2).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (2, 2));
    assert_eq!(log.segment_base_offsets(), vec![2]);
    assert_eq!(
        log.append(batch(1, T0, 1), client()).unwrap().first_offset,
        2
    );
    assert_eq!(all_batches(&log).len(), 1);
}

#[test]
fn truncate_fully_and_start_at_restarts_empty_even_above_the_end() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), cfg(&[]), &clock, true);
    fill(&log, 6, T0);
    log.truncate_fully_and_start_at(20).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (20, 20));
    assert_eq!(log.segment_base_offsets(), vec![20]);
    assert!(all_batches(&log).is_empty());
    assert_eq!(
        log.append(batch(1, T0, 1), client()).unwrap().first_offset,
        20
    );
    log.flush().unwrap();
    log.close().unwrap();
    drop(log);
    let log = open(d.path(), cfg(&[]), &clock, false);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (20, 21));
    assert_eq!(all_batches(&log).len(), 1);
    // Below the end as well: nothing of the old log survives.
    log.truncate_fully_and_start_at(20).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (20, 20));
    assert!(all_batches(&log).is_empty());
}

#[test]
fn start_from_remote_keeps_the_leaders_log_start_epochs_and_producers() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = ManualClock::new(T0);
    // The leader's log: an idempotent producer wrote 0-9; the segment after them starts at 10
    // with a producer snapshot (what a tiered segment ships).
    let leader = open(da.path(), cfg(&[]), &clock, true);
    leader.append(pbatch(7, 0, 0, 5, T0), client()).unwrap();
    leader.append(pbatch(7, 0, 5, 5, T0), client()).unwrap();
    leader.roll().unwrap();
    let snapshot = std::fs::read(da.path().join("00000000000000000010.snapshot")).unwrap();

    let follower = open(db.path(), cfg(&[]), &clock, true);
    fill(&follower, 3, T0); // stale local data, all discarded
    follower
        .start_from_remote(10, 0, &[(3, 0), (5, 11)], Some(&snapshot))
        .unwrap();
    assert_eq!(follower.log_start_offset(), 0);
    assert_eq!(follower.local_log_start_offset(), 10);
    assert_eq!(follower.log_end_offset(), 10);
    assert_eq!(follower.segment_base_offsets(), vec![10]);
    assert_eq!(
        follower.epoch_entries(),
        vec![(3, 0)],
        "epochs above 10 are not ours yet"
    );
    assert_eq!(follower.producer_states(), leader.producer_states());
    // A retried old batch is recognised as a duplicate (answered with its offset, not written);
    // the producer's next batch continues its sequence.
    let retried = follower.append(pbatch(7, 0, 5, 5, T0), client()).unwrap();
    assert_eq!((retried.first_offset, follower.log_end_offset()), (5, 10));
    let next = follower.append(pbatch(7, 0, 10, 5, T0), client()).unwrap();
    assert_eq!(next.first_offset, 10);
}

#[test]
fn an_epoch_started_at_the_end_without_records_goes_on_truncation_to_the_end() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), cfg(&[]), &clock, true);
    fill(&log, 2, T0); // epoch 3 (the client origin's) from offset 0
    log.assign_leader_epoch(5).unwrap(); // leader in epoch 5, nothing written in it
    log.assign_leader_epoch(4).unwrap(); // an older epoch: ignored
    assert_eq!(log.epoch_entries(), vec![(3, 0), (5, 2)]);
    // Another leader took over; truncating to the log end keeps the records, drops epoch 5.
    log.truncate_to(2).unwrap();
    assert_eq!(
        (log.log_end_offset(), log.epoch_entries()),
        (2, vec![(3, 0)])
    );
}
