//! Clean and unclean restarts: torn tails, corrupt CRCs, missing indexes, producer state.
mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;

use common::*;
use shale_common::ManualClock;
use shale_local_log::{LogConfig, LogError};

fn small_segments() -> LogConfig {
    LogConfig::default()
        .with_overrides([("segment.bytes", "400"), ("index.interval.bytes", "100")])
        .unwrap()
}

/// Writes 12 batches of 2 records over several segments, drops the log without close.
fn crashed_log(dir: &std::path::Path, clock: &std::sync::Arc<ManualClock>) -> Vec<i64> {
    let log = open(dir, small_segments(), clock, false);
    for i in 0..12 {
        log.append(batch(2, T0 + i, 40), client()).unwrap();
    }
    assert!(log.segment_count() >= 3);
    let bases = log.segment_base_offsets();
    drop(log); // no close, no marker: an unclean stop
    bases
}

/// Writes 12 batches of 2 records over several segments and closes the log cleanly (a closed
/// log refuses appends).
fn closed_log(dir: &std::path::Path, clock: &std::sync::Arc<ManualClock>) -> Vec<i64> {
    let log = open(dir, small_segments(), clock, true);
    for i in 0..12 {
        log.append(batch(2, T0 + i, 40), client()).unwrap();
    }
    let bases = log.segment_base_offsets();
    log.close().unwrap();
    assert!(matches!(
        log.append(batch(1, T0, 1), client()),
        Err(LogError::Closed { .. })
    ));
    bases
}

fn last_log(dir: &std::path::Path, bases: &[i64]) -> std::path::PathBuf {
    dir.join(format!("{:020}.log", bases.last().unwrap()))
}

fn assert_contiguous(log: &shale_local_log::Log, expected_leo: i64) {
    assert_eq!(log.log_end_offset(), expected_leo);
    let got = all_batches(log);
    let mut next = 0;
    for b in &got {
        b.verify_crc().unwrap();
        assert_eq!(b.base_offset(), next);
        next = b.last_offset() + 1;
    }
    assert_eq!(next, expected_leo);
}

#[test]
fn garbage_tail_is_truncated() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let bases = crashed_log(d.path(), &clock);
    let p = last_log(d.path(), &bases);
    let clean_len = fs::metadata(&p).unwrap().len();
    OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(&[0xAB; 37])
        .unwrap();
    let log = open(d.path(), small_segments(), &clock, false);
    assert_contiguous(&log, 24);
    assert_eq!(fs::metadata(&p).unwrap().len(), clean_len);
    // Appends continue at the right offset.
    assert_eq!(
        log.append(batch(1, T0, 1), client()).unwrap().first_offset,
        24
    );
}

#[test]
fn torn_last_batch_is_dropped() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let bases = crashed_log(d.path(), &clock);
    let p = last_log(d.path(), &bases);
    let len = fs::metadata(&p).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len - 20)
        .unwrap();
    let log = open(d.path(), small_segments(), &clock, false);
    assert_contiguous(&log, 22);
}

#[test]
fn corrupt_crc_in_last_batch_is_dropped() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let bases = crashed_log(d.path(), &clock);
    let p = last_log(d.path(), &bases);
    let mut bytes = fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 0xFF;
    fs::write(&p, bytes).unwrap();
    let log = open(d.path(), small_segments(), &clock, false);
    assert_contiguous(&log, 22);
}

#[test]
fn corruption_in_middle_segment_deletes_later_segments() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let bases = crashed_log(d.path(), &clock);
    let mid = d.path().join(format!("{:020}.log", bases[1]));
    let mut bytes = fs::read(&mid).unwrap();
    bytes[70] ^= 0xFF; // inside the first batch's CRC-covered region
    fs::write(&mid, bytes).unwrap();
    let log = open(d.path(), small_segments(), &clock, false);
    assert_contiguous(&log, bases[1]);
    assert_eq!(log.segment_base_offsets(), vec![0, bases[1]]);
    assert!(!d.path().join(format!("{:020}.log", bases[2])).exists());
}

#[test]
fn missing_index_is_rebuilt_even_after_clean_shutdown() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), small_segments(), &clock, true);
    for i in 0..12 {
        log.append(batch(2, T0 + i, 40), client()).unwrap();
    }
    log.close().unwrap();
    let idx = d.path().join("00000000000000000000.index");
    let before = fs::read(&idx).unwrap();
    assert!(!before.is_empty());
    fs::remove_file(&idx).unwrap();
    let log = open(d.path(), small_segments(), &clock, true);
    assert_eq!(fs::read(&idx).unwrap(), before);
    assert_contiguous(&log, 24);
}

#[test]
fn untrimmed_active_index_after_crash_is_handled() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = LogConfig::default()
        .with_overrides([("index.interval.bytes", "50")])
        .unwrap();
    let log = open(d.path(), cfg.clone(), &clock, false);
    for i in 0..10 {
        log.append(batch(2, T0 + i, 40), client()).unwrap();
    }
    drop(log);
    // The active segment's entries were in memory only (written back on flush/roll/close).
    let idx = d.path().join("00000000000000000000.index");
    assert_eq!(fs::metadata(&idx).unwrap().len(), 0);
    // A preallocated zero tail as Kafka leaves it after a crash.
    fs::OpenOptions::new()
        .write(true)
        .open(&idx)
        .unwrap()
        .set_len(10_485_760)
        .unwrap();
    // Even when told the shutdown was clean, the zero tail is not taken for entries.
    let log = open(d.path(), cfg, &clock, true);
    assert_contiguous(&log, 20);
    for o in 0..20 {
        let r = parse(log.read(o, 1, 20, true).unwrap().records);
        assert!(r[0].base_offset() <= o && r[0].last_offset() >= o);
    }
}

#[test]
fn clean_restart_keeps_everything() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let bases = closed_log(d.path(), &clock);
    // Inactive indexes are trimmed on close.
    let ti = fs::metadata(
        d.path()
            .join(format!("{:020}.timeindex", bases.last().unwrap())),
    )
    .unwrap();
    assert_eq!(ti.len() % 12, 0);
    assert!(ti.len() < 1000);
    let log = open(d.path(), small_segments(), &clock, true);
    assert_eq!(log.segment_base_offsets(), bases);
    assert_eq!(log.recovery_point(), 24);
    assert_contiguous(&log, 24);
    let m = log.offset_of_max_timestamp().unwrap().unwrap();
    assert_eq!(m.timestamp, T0 + 11);
}

#[test]
fn producer_state_survives_clean_and_unclean_restarts() {
    for clean in [true, false] {
        let d = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(T0);
        let log = open(d.path(), small_segments(), &clock, clean);
        for i in 0..8 {
            log.append(pbatch(42, 1, i * 2, 2, T0), client()).unwrap();
        }
        if clean {
            log.close().unwrap();
            assert!(d.path().join("00000000000000000016.snapshot").exists());
        } else {
            drop(log);
        }
        let log = open(d.path(), small_segments(), &clock, clean);
        // Retry of the last batch is a duplicate with its original offsets.
        let dup = log.append(pbatch(42, 1, 14, 2, T0), client()).unwrap();
        assert!(dup.duplicate, "clean={clean}");
        assert_eq!((dup.first_offset, dup.last_offset), (14, 15));
        assert_eq!(log.log_end_offset(), 16);
        assert!(matches!(
            log.append(pbatch(42, 1, 20, 1, T0), client()),
            Err(LogError::OutOfOrderSequence {
                expected: 16,
                found: 20,
                ..
            })
        ));
        assert!(matches!(
            log.append(pbatch(42, 0, 16, 1, T0), client()),
            Err(LogError::InvalidProducerEpoch {
                current: 1,
                found: 0,
                ..
            })
        ));
        let ok = log.append(pbatch(42, 1, 16, 1, T0), client()).unwrap();
        assert_eq!(ok.first_offset, 16);
        let st = log.producer_states();
        assert_eq!(st.len(), 1);
        assert_eq!(
            (
                st[0].producer_id,
                st[0].producer_epoch,
                st[0].last_sequence,
                st[0].last_offset
            ),
            (42, 1, 16, 16)
        );
    }
}

#[test]
fn idempotent_producer_rules() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), LogConfig::default(), &clock, true);
    let first = log.append(pbatch(1, 0, 0, 3, T0), client()).unwrap();
    assert!(!first.duplicate);
    let dup = log.append(pbatch(1, 0, 0, 3, T0), client()).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.first_offset, dup.last_offset), (0, 2));
    assert_eq!(log.log_end_offset(), 3);
    assert!(matches!(
        log.append(pbatch(1, 0, 4, 1, T0), client()),
        Err(LogError::OutOfOrderSequence { .. })
    ));
    // Epoch bump restarts the sequence at 0 and fences the old epoch.
    assert!(matches!(
        log.append(pbatch(1, 1, 3, 1, T0), client()),
        Err(LogError::OutOfOrderSequence { .. })
    ));
    log.append(pbatch(1, 1, 0, 1, T0), client()).unwrap();
    assert!(matches!(
        log.append(pbatch(1, 0, 3, 1, T0), client()),
        Err(LogError::InvalidProducerEpoch { .. })
    ));
    // A new producer may start anywhere.
    log.append(pbatch(2, 0, 17, 1, T0), client()).unwrap();
    assert_eq!(log.producer_states().len(), 2);
}

#[test]
fn leader_epoch_cache_is_rebuilt_from_batches() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), small_segments(), &clock, false);
    for (i, epoch) in [0, 0, 2, 2, 5].into_iter().enumerate() {
        log.append(
            batch(2, T0 + i as i64, 40),
            shale_local_log::AppendOrigin::Client {
                leader_epoch: epoch,
                verification: None,
            },
        )
        .unwrap();
    }
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 8)]);
    drop(log);
    fs::remove_file(d.path().join("leader-epoch-checkpoint")).unwrap();
    let log = open(d.path(), small_segments(), &clock, false);
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4), (5, 8)]);
    assert_eq!(
        fs::read(d.path().join("leader-epoch-checkpoint")).unwrap(),
        b"0\n3\n0 0\n2 4\n5 8\n"
    );
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 8)));
    assert_eq!(log.epoch_for_offset(5), Some(2));
    // Truncation drops later epochs.
    log.truncate_to(6).unwrap();
    assert_eq!(log.epoch_entries(), vec![(0, 0), (2, 4)]);
}

#[test]
fn recovery_point_limits_rescan_and_stale_snapshots_are_dropped() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), small_segments(), &clock, false);
    for i in 0..12 {
        log.append(pbatch(3, 0, i * 2, 2, T0), client()).unwrap();
    }
    let bases = log.segment_base_offsets();
    // Rolls advance the recovery point to the active segment's base, once flushed.
    let active = *bases.last().unwrap();
    assert!(active > 0);
    let rp = wait_for_recovery_point(&log, active);
    assert_eq!(rp, active);
    drop(log);
    // Corrupt the last segment; a snapshot beyond the new LEO must go away.
    let p = last_log(d.path(), &bases);
    let len = fs::metadata(&p).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    fs::write(d.path().join(format!("{:020}.snapshot", 24)), b"garbage").unwrap();
    let mut o = opts(false);
    o.recovery_point = rp;
    let log = shale_local_log::Log::open(
        d.path().to_path_buf(),
        tp(),
        small_segments(),
        o,
        clock.clone(),
    )
    .unwrap();
    assert_eq!(log.log_end_offset(), 22);
    assert!(!d.path().join(format!("{:020}.snapshot", 24)).exists());
    assert!(d.path().join(format!("{:020}.snapshot", 22)).exists());
    let st = log.producer_states();
    assert_eq!((st[0].last_sequence, st[0].last_offset), (21, 21));
}

#[test]
fn torn_tail_is_repaired_even_when_shutdown_claims_clean() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), small_segments(), &clock, true);
    for i in 0..3 {
        log.append(batch(2, T0 + i, 40), client()).unwrap();
    }
    let bases = log.segment_base_offsets();
    log.close().unwrap();
    let p = last_log(d.path(), &bases);
    let clean_len = fs::metadata(&p).unwrap().len();
    OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(&[7; 30])
        .unwrap();
    let log = open(d.path(), small_segments(), &clock, true);
    assert_eq!(fs::metadata(&p).unwrap().len(), clean_len);
    log.append(batch(1, T0, 1), client()).unwrap();
    assert_contiguous(&log, 7);
}

#[test]
fn leftover_deleted_files_are_removed_after_open_and_never_loaded() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let bases = closed_log(d.path(), &clock);
    // A stop before file.delete.delay.ms ran leaves `.deleted` files behind.
    let leftovers: Vec<_> = ["log", "index", "timeindex"]
        .iter()
        .map(|ext| d.path().join(format!("{:020}.{ext}.deleted", 1_000)))
        .collect();
    for p in &leftovers {
        fs::write(p, b"garbage from a deleted segment").unwrap();
    }
    let log = open(d.path(), small_segments(), &clock, true);
    assert_eq!(log.segment_base_offsets(), bases);
    assert_contiguous(&log, 24);
    // Removed off the start-up path: poll until the background delete ran.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while leftovers.iter().any(|p| p.exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "leftovers never deleted"
        );
        std::thread::yield_now();
    }
}
