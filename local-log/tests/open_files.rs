//! The open-files budget: segments beyond it are closed least recently used first and reopened
//! on demand, the active segment stays open, and retention, truncation, the cleaner, reads and
//! restarts all work on segments whose files were closed.
mod common;

use std::sync::Arc;

use common::*;
use shale_common::{ManualClock, TopicPartition};
use shale_local_log::{Log, LogConfig, LogError, LogManager, LogManagerOptions, OpenFiles};
use uuid::Uuid;

/// Two 100-byte-value batches per segment.
fn small_segments(extra: &[(&str, &str)]) -> LogConfig {
    LogConfig::default()
        .with_overrides([("segment.bytes", "400"), ("index.interval.bytes", "1")])
        .unwrap()
        .with_overrides(extra.iter().copied())
        .unwrap()
}

fn open_with(
    dir: &std::path::Path,
    cfg: LogConfig,
    clock: &Arc<ManualClock>,
    files: &OpenFiles,
) -> Log {
    Log::open_in(
        dir.to_path_buf(),
        tp(),
        cfg,
        opts(true),
        clock.clone(),
        files,
    )
    .unwrap()
}

/// `n` single-record batches (value 100 bytes) at timestamps `ts + i`.
fn fill(log: &Log, n: i64, ts: i64) {
    for i in 0..n {
        log.append(batch(1, ts + i, 100), client()).unwrap();
    }
}

fn read_one(log: &Log, offset: i64) -> i64 {
    let r = parse(
        log.read(offset, 1, log.log_end_offset(), true)
            .unwrap()
            .records,
    );
    assert!(!r.is_empty(), "nothing read at {offset}");
    r[0].base_offset()
}

#[test]
fn old_segments_are_closed_and_reopened_on_demand_the_active_one_stays_open() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let files = OpenFiles::new(4);
    let log = open_with(d.path(), small_segments(&[]), &clock, &files);
    fill(&log, 40, T0); // 20 segments
    assert_eq!(log.segment_count(), 20);
    assert!(
        files.open() <= 4,
        "{} open with a budget of 4",
        files.open()
    );
    assert!(files.peak() <= 4, "peak {}", files.peak());
    assert_eq!(files.pinned(), 1, "only the active segment is pinned");
    // Every offset reads back, each read of an old segment reopening its file.
    let reopened = files.opened_total();
    for o in 0..40 {
        assert_eq!(read_one(&log, o), o);
    }
    assert!(
        files.opened_total() > reopened + 10,
        "old segments were reopened"
    );
    assert!(files.evicted_total() > 0);
    assert!(
        files.open() <= 4 && files.peak() <= 4,
        "peak {}",
        files.peak()
    );
    // The active segment was never closed: appends go on while old segments churn.
    fill(&log, 1, T0 + 40);
    assert_eq!(read_one(&log, 40), 40);
    // Timestamp lookups use the time indexes of closed segments.
    let found = log.offset_for_timestamp(T0 + 7).unwrap().unwrap();
    assert_eq!(found.offset, 7);
    assert_eq!(log.offset_of_max_timestamp().unwrap().unwrap().offset, 40);
    log.close().unwrap();
    assert_eq!(files.pinned(), 0, "close unpins the active segment");
}

#[test]
fn a_segment_read_again_and_again_stays_open_while_a_scan_churns_the_others() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let files = OpenFiles::new(5);
    let log = open_with(d.path(), small_segments(&[]), &clock, &files);
    fill(&log, 40, T0); // 20 segments: bases 0, 2, ..., 38 (active)
    read_one(&log, 0);
    for s in (2..38).step_by(2) {
        read_one(&log, s);
        read_one(&log, 0);
        let open = log.open_segment_bases();
        assert!(open.contains(&0), "segment 0 was closed: {open:?}");
        assert!(
            open.contains(&38),
            "the active segment was closed: {open:?}"
        );
        assert!(
            open.contains(&s),
            "the segment just read is closed: {open:?}"
        );
        assert!(open.len() <= 5, "{open:?}");
    }
    // The scan's oldest segments were closed first.
    let open = log.open_segment_bases();
    assert!(!open.contains(&2) && !open.contains(&4), "{open:?}");
    // The background flusher fsyncs rolled segments with a descriptor of its own, which may be
    // open beside this thread's.
    assert!(files.peak() <= 5 + 1, "peak {}", files.peak());
}

#[test]
fn retention_and_deletion_of_closed_segments() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let files = OpenFiles::new(3);
    let cfg = small_segments(&[("retention.ms", "10000"), ("file.delete.delay.ms", "0")]);
    let log = open_with(d.path(), cfg, &clock, &files);
    fill(&log, 20, T0);
    clock.set_ms(T0 + 10_010); // offsets 0..=9 older than retention
    assert_eq!(log.enforce_retention().unwrap(), 5);
    assert_eq!(log.log_start_offset(), 10);
    log.tick().unwrap();
    assert!(!common::files(d.path())
        .iter()
        .any(|f| f.ends_with(".deleted")));
    for o in 10..20 {
        assert_eq!(read_one(&log, o), o);
    }
    assert!(matches!(
        log.read(0, 100, 20, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    log.delete_records_before(16).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![16, 18]);
    assert!(files.open() <= 3);
}

#[test]
fn truncation_into_a_closed_segment_makes_it_active() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let files = OpenFiles::new(3);
    let log = open_with(d.path(), small_segments(&[]), &clock, &files);
    fill(&log, 20, T0);
    for o in 14..20 {
        read_one(&log, o); // segment 4 is long closed now
    }
    log.truncate_to(5).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4]);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(files.pinned(), 1);
    fill(&log, 3, T0 + 100);
    let all = all_batches(&log);
    assert_eq!(
        all.iter().map(|b| b.base_offset()).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    assert_eq!(all[5].max_timestamp(), T0 + 100);
    // The reactivated segment's indexes were reloaded and extended: a restart agrees.
    log.close().unwrap();
    drop(log);
    let log = open_with(d.path(), small_segments(&[]), &clock, &files);
    assert_eq!(log.log_end_offset(), 8);
    for o in 0..8 {
        assert_eq!(read_one(&log, o), o);
    }
}

#[test]
fn the_cleaner_works_within_a_small_budget() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let files = OpenFiles::new(3);
    let cfg = small_segments(&[("cleanup.policy", "compact"), ("segment.bytes", "1000")]);
    let log = open_with(d.path(), cfg, &clock, &files);
    for i in 0..60 {
        let mut b = shale_protocol::record::BatchBuilder::new(T0 + i);
        let key = format!("k{}", i % 5);
        b.push(
            T0 + i,
            Some(key.into()),
            Some(vec![b'v'; 100].into()),
            vec![],
        );
        log.append(b.build().unwrap().into_bytes(), client())
            .unwrap();
    }
    let segs = log.segment_count();
    assert!(segs > 6, "{segs} segments");
    let stats = log.clean(true).unwrap().unwrap();
    assert!(stats.records_removed > 40, "{stats:?}");
    assert!(
        files.peak() <= 4,
        "peak {} (budget 3 plus one file in use)",
        files.peak()
    );
    assert_eq!(files.pinned(), 1);
    let keys: Vec<i64> = all_batches(&log).iter().map(|b| b.base_offset()).collect();
    assert!(keys.contains(&59) && keys.len() < 20, "{keys:?}");
}

#[test]
fn loading_many_segments_stays_within_the_budget() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let log = open(d.path(), small_segments(&[]), &clock, false);
        fill(&log, 200, T0); // 100 segments
        log.close().unwrap();
    }
    for clean in [true, false] {
        let files = OpenFiles::new(8);
        let log = Log::open_in(
            d.path().to_path_buf(),
            tp(),
            small_segments(&[]),
            opts(clean),
            clock.clone(),
            &files,
        )
        .unwrap();
        assert_eq!(log.segment_count(), 100);
        assert_eq!(
            log.open_segment_bases(),
            vec![198],
            "only the active segment stays open after a load"
        );
        assert!(
            files.peak() <= 8,
            "peak {} loading (clean: {clean})",
            files.peak()
        );
        assert_eq!(read_one(&log, 3), 3);
        assert_eq!(read_one(&log, 199), 199);
        log.close().unwrap();
    }
}

fn manager(
    dir: &std::path::Path,
    clock: &Arc<ManualClock>,
    budget: usize,
) -> shale_local_log::Result<LogManager> {
    let configs = |_: &str| Some((Uuid::from_u128(1), LogConfig::default()));
    LogManager::open(
        LogManagerOptions {
            log_dirs: vec![dir.to_path_buf()],
            default_config: LogConfig::default(),
            open_files_max: Some(budget),
        },
        clock.clone(),
        &configs,
    )
}

#[test]
fn the_manager_reserves_room_for_new_partitions_and_refuses_what_does_not_fit() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let m = manager(d.path(), &clock, 32).unwrap();
    let files = m.open_files().clone();
    assert_eq!(files.capacity(), 30);
    {
        let _r = m.reserve(20).unwrap();
        for p in 0..20 {
            m.get_or_create(
                &TopicPartition::new("t", p),
                Uuid::from_u128(1),
                LogConfig::default(),
            )
            .unwrap();
        }
    }
    assert_eq!(files.pinned(), 20);
    let e = m.reserve(11).unwrap_err();
    assert!(
        matches!(
            e,
            LogError::FileBudget {
                requested: 11,
                in_use: 20,
                capacity: 30,
                budget: 32
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("shale.log.open.files.max"), "{e}");
    let held = m.reserve(10).unwrap();
    assert!(m.reserve(1).is_err(), "reservations count until dropped");
    drop(held);
    // A deleted partition gives its descriptor back at once, even while its log is still held.
    let still_held = m.get(&TopicPartition::new("t", 19)).unwrap();
    m.delete(&TopicPartition::new("t", 19)).unwrap();
    assert_eq!(files.pinned(), 19);
    drop(still_held);
    m.get_or_create(
        &TopicPartition::new("t", 19),
        Uuid::from_u128(1),
        LogConfig::default(),
    )
    .unwrap();
    m.shutdown().unwrap();
    drop(m);
    // A restart with a budget too small for the partitions on disk says so before opening any.
    let e = manager(d.path(), &clock, 16).unwrap_err();
    assert!(
        matches!(e, LogError::FileBudget { requested: 20, .. }),
        "{e}"
    );
    let m = manager(d.path(), &clock, 32).unwrap();
    assert_eq!(m.all_logs().len(), 20);
    assert!(m.open_files().peak() <= 32);
}
