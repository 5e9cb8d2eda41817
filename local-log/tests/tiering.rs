//! Tiered-storage hooks: copy eligibility, local retention of copied segments, the active-segment
//! roll, the four offsets across a restart, OffsetMovedToTieredStorage, log start advancement.
mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use shale_common::{ManualClock, TopicPartition};
use shale_local_log::{LogConfig, LogError, LogManager, LogManagerOptions};
use uuid::Uuid;

fn tiered(extra: &[(&str, &str)]) -> LogConfig {
    LogConfig::default()
        .with_overrides([
            ("segment.bytes", "400"),
            ("file.delete.delay.ms", "1000"),
            ("remote.storage.enable", "true"),
            ("retention.ms", "-1"),
        ])
        .unwrap()
        .with_overrides(extra.iter().copied())
        .unwrap()
}

/// `n` single-record batches of ~170 bytes: two per 400-byte segment.
fn fill(log: &shale_local_log::Log, n: i64, ts: i64) {
    for i in 0..n {
        log.append(batch(1, ts + i, 100), client()).unwrap();
    }
}

#[test]
fn copy_candidates_respect_lso_from_offset_and_skip_the_active_segment() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), tiered(&[]), &clock, true);
    assert!(log.is_tiered());
    fill(&log, 5, T0);
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4]);
    // Nothing above the log's own LSO (here its high watermark) is offered.
    assert!(log.segments_to_copy(0, 5).unwrap().is_empty());
    log.set_high_watermark(3);
    assert_eq!(log.segments_to_copy(0, 5).unwrap().len(), 1);
    log.set_high_watermark(log.log_end_offset());
    let all = log.segments_to_copy(0, log.log_end_offset()).unwrap();
    let bases: Vec<(i64, i64)> = all.iter().map(|s| (s.base_offset, s.end_offset)).collect();
    assert_eq!(bases, vec![(0, 1), (2, 3)]);
    // LSO bound: next base must be <= LSO.
    let lso3 = log.segments_to_copy(0, 3).unwrap();
    assert_eq!(lso3.len(), 1);
    assert_eq!(lso3[0].base_offset, 0);
    assert!(log.segments_to_copy(0, 1).unwrap().is_empty());
    // from_offset skips segments whose end is below it.
    let from2 = log.segments_to_copy(2, 5).unwrap();
    assert_eq!(from2.len(), 1);
    assert_eq!(from2[0].base_offset, 2);
    let s = &all[0];
    assert_eq!(s.size_bytes, fs::metadata(&s.log_path).unwrap().len());
    assert_eq!(s.largest_timestamp, T0 + 1);
    assert!(s.log_path.ends_with("00000000000000000000.log"));
    // Indexes are trimmed to whole entries (no preallocated tail).
    let oi = fs::metadata(&s.offset_index_path).unwrap().len();
    let ti = fs::metadata(&s.time_index_path).unwrap().len();
    assert_eq!(oi % 8, 0);
    assert!(oi <= 8);
    assert_eq!(ti, 12, "final time-index entry only");
    assert_eq!(s.txn_index_path, None);
    let snap = s.producer_snapshot_path.clone().unwrap();
    assert!(snap.ends_with("00000000000000000002.snapshot"));
    assert!(snap.exists());
    assert_eq!(s.leader_epochs, vec![(3, 0)]);
    assert_eq!(&s.leader_epoch_checkpoint[..], b"0\n1\n3 0\n");
    assert_eq!(all[1].leader_epochs, vec![(3, 2)]);
}

#[test]
fn missing_producer_snapshot_is_rebuilt_for_copy() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), tiered(&[]), &clock, true);
    log.append(pbatch(9, 0, 0, 1, T0), client()).unwrap();
    log.append(pbatch(9, 0, 1, 1, T0), client()).unwrap();
    log.roll().unwrap();
    log.append(batch(1, T0, 10), client()).unwrap();
    let snap = d.path().join("00000000000000000002.snapshot");
    let original = fs::read(&snap).unwrap();
    fs::remove_file(&snap).unwrap();
    log.set_high_watermark(log.log_end_offset());
    let c = log.segments_to_copy(0, 3).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].producer_snapshot_path.as_deref(), Some(snap.as_path()));
    assert_eq!(fs::read(&snap).unwrap(), original);
}

#[test]
fn local_retention_deletes_only_copied_segments_and_rolls_the_active_one() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(
        d.path(),
        tiered(&[("local.retention.ms", "10000")]),
        &clock,
        true,
    );
    fill(&log, 5, T0);
    clock.set_ms(T0 + 20_000);
    assert_eq!(log.highest_offset_in_remote_storage(), -1);
    assert_eq!(log.enforce_retention().unwrap(), 0, "nothing copied yet");
    log.set_highest_offset_in_remote_storage(1);
    assert_eq!(log.enforce_retention().unwrap(), 1);
    assert_eq!(log.segment_base_offsets(), vec![2, 4]);
    assert_eq!(
        log.log_start_offset(),
        0,
        "log start stays: remote holds 0..1"
    );
    assert_eq!(log.local_log_start_offset(), 2);
    match log.read(0, 1000, 5, true) {
        Err(LogError::OffsetMovedToTieredStorage {
            offset,
            local_log_start,
            ..
        }) => assert_eq!((offset, local_log_start), (0, 2)),
        other => panic!("expected OffsetMovedToTieredStorage, got {other:?}"),
    }
    assert_eq!(
        parse(log.read(2, 1000, 5, true).unwrap().records)[0].base_offset(),
        2
    );
    // Lowering is ignored.
    log.set_highest_offset_in_remote_storage(0);
    assert_eq!(log.highest_offset_in_remote_storage(), 1);
    // Segment 2 copied; the active segment 4 breaches too and everything before is copied:
    // it is rolled so it can be copied next.
    log.set_highest_offset_in_remote_storage(3);
    assert_eq!(log.enforce_retention().unwrap(), 1);
    assert_eq!(log.segment_base_offsets(), vec![4, 5]);
    log.set_high_watermark(log.log_end_offset());
    let c = log.segments_to_copy(4, 5).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].end_offset, 4);
    assert_eq!(log.enforce_retention().unwrap(), 0);
    log.set_highest_offset_in_remote_storage(4);
    assert_eq!(log.enforce_retention().unwrap(), 1);
    assert_eq!(log.segment_base_offsets(), vec![5]);
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.local_log_start_offset(), 5);
    // Local timestamp lookups see local data only.
    assert_eq!(log.offset_for_timestamp(T0).unwrap(), None);
}

#[test]
fn local_retention_bytes_only_deletes_copied_segments() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(
        d.path(),
        tiered(&[
            ("retention.bytes", "100000"),
            ("local.retention.bytes", "1"),
        ]),
        &clock,
        true,
    );
    fill(&log, 6, T0);
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4]);
    log.set_highest_offset_in_remote_storage(3);
    assert_eq!(log.enforce_retention().unwrap(), 2);
    assert_eq!(log.segment_base_offsets(), vec![4]);
    assert_eq!(log.log_start_offset(), 0);
}

#[test]
fn copy_disabled_uses_total_retention_and_moves_log_start() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = tiered(&[
        ("remote.log.copy.disable", "true"),
        ("retention.ms", "10000"),
    ]);
    let log = open(d.path(), cfg, &clock, true);
    fill(&log, 5, T0);
    clock.set_ms(T0 + 20_000);
    // No copy guard: everything including the (rolled) active segment goes, log start moves.
    assert_eq!(log.enforce_retention().unwrap(), 3);
    assert_eq!(log.segment_base_offsets(), vec![5]);
    assert_eq!(log.log_start_offset(), 5);
    assert_eq!(log.local_log_start_offset(), 5);
}

#[test]
fn non_tiered_logs_keep_total_retention() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = tiered(&[
        ("remote.storage.enable", "false"),
        ("retention.ms", "10000"),
    ]);
    let log = open(d.path(), cfg, &clock, true);
    assert!(!log.is_tiered());
    fill(&log, 5, T0);
    fill(&log, 1, T0 + 30_000);
    clock.set_ms(T0 + 20_000);
    assert_eq!(log.enforce_retention().unwrap(), 2);
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(log.segment_base_offsets(), vec![4]);
}

#[test]
fn advance_log_start_offset_accepts_the_remote_range_and_never_lowers() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(
        d.path(),
        tiered(&[("local.retention.ms", "1")]),
        &clock,
        true,
    );
    fill(&log, 6, T0);
    log.set_highest_offset_in_remote_storage(3);
    clock.set_ms(T0 + 20_000);
    log.enforce_retention().unwrap();
    // The breaching active segment was rolled (copied segments 0 and 2 deleted).
    assert_eq!(log.segment_base_offsets(), vec![4, 6]);
    assert_eq!(log.advance_log_start_offset(1).unwrap(), 1);
    assert_eq!(log.local_log_start_offset(), 4);
    assert_eq!(log.advance_log_start_offset(0).unwrap(), 1, "never lowers");
    assert_eq!(log.delete_records_before(3).unwrap(), 3);
    assert!(matches!(
        log.read(2, 100, 6, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.read(3, 100, 6, true),
        Err(LogError::OffsetMovedToTieredStorage { .. })
    ));
    assert_eq!(log.advance_log_start_offset(5).unwrap(), 5);
    assert_eq!(log.local_log_start_offset(), 5);
    assert_eq!(log.segment_base_offsets(), vec![4, 6]);
    assert_eq!(log.advance_log_start_offset(6).unwrap(), 6);
    assert_eq!(log.segment_base_offsets(), vec![6]);
    assert!(log.advance_log_start_offset(99).is_err());
    assert_eq!(log.log_start_offset(), 6);
}

#[test]
fn advancing_log_start_deletes_local_segments_wholly_below() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(d.path(), tiered(&[]), &clock, true);
    fill(&log, 6, T0);
    assert_eq!(log.advance_log_start_offset(4).unwrap(), 4);
    assert_eq!(log.segment_base_offsets(), vec![4]);
    assert_eq!(log.epoch_entries(), vec![(3, 4)]);
}

fn manager(dir: &std::path::Path, clock: &Arc<ManualClock>, cfg: LogConfig) -> LogManager {
    let id = Uuid::from_u128(1);
    let configs = move |_: &str| Some((id, cfg.clone()));
    LogManager::open(
        LogManagerOptions {
            log_dirs: vec![dir.to_path_buf()],
            default_config: LogConfig::default(),
            open_files_max: None,
        },
        clock.clone(),
        &configs,
    )
    .unwrap()
}

#[test]
fn tiered_log_start_is_checkpointed_and_restored() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = tiered(&[("local.retention.ms", "1")]);
    let tp = TopicPartition::new("t", 0);
    {
        let m = manager(d.path(), &clock, cfg.clone());
        let log = m
            .get_or_create(&tp, Uuid::from_u128(1), cfg.clone())
            .unwrap();
        fill(&log, 6, T0);
        log.set_highest_offset_in_remote_storage(3);
        clock.set_ms(T0 + 20_000);
        log.enforce_retention().unwrap();
        assert_eq!(log.segment_base_offsets(), vec![4, 6]);
        m.shutdown().unwrap();
        let ck = fs::read_to_string(d.path().join("log-start-offset-checkpoint")).unwrap();
        assert_eq!(
            ck, "0\n1\nt 0 0\n",
            "written even when below the first base"
        );
    }
    let m = manager(d.path(), &clock, cfg.clone());
    let log = m.get(&tp).unwrap();
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.local_log_start_offset(), 4);
    assert_eq!(log.highest_offset_in_remote_storage(), -1, "in memory only");
    assert_eq!(log.epoch_entries(), vec![(3, 0)], "remote epochs kept");
    assert!(matches!(
        log.read(1, 100, 6, true),
        Err(LogError::OffsetMovedToTieredStorage { .. })
    ));
    log.close().unwrap();
    drop(m);
    // The same dir opened as a non-tiered log: log start = first local base.
    let plain = LogConfig {
        remote_storage_enable: false,
        ..cfg
    };
    let m = manager(d.path(), &clock, plain);
    let log = m.get(&tp).unwrap();
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(log.local_log_start_offset(), 4);
}
