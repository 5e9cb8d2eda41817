//! LogManager: open/create/delete/shutdown, checkpoints and the clean-shutdown marker; dumps.
mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use shale_common::{ManualClock, TopicPartition};
use shale_local_log::{dump_file, AppendOrigin, LogConfig, LogManager, LogManagerOptions};
use uuid::Uuid;

fn mgr(dirs: &[std::path::PathBuf], clock: &Arc<ManualClock>, known: bool) -> LogManager {
    let id = Uuid::from_u128(7);
    let configs =
        move |t: &str| (known && t.starts_with("topic")).then(|| (id, LogConfig::default()));
    LogManager::open(
        LogManagerOptions {
            log_dirs: dirs.to_vec(),
            default_config: LogConfig::default(),
            open_files_max: None,
        },
        clock.clone(),
        &configs,
    )
    .unwrap()
}

#[test]
fn create_shutdown_reopen() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("a"), root.path().join("b")];
    let clock = ManualClock::new(T0);
    let m = mgr(&dirs, &clock, true);
    let id = Uuid::from_u128(7);
    for p in 0..4 {
        let log = m
            .get_or_create(&TopicPartition::new("topic", p), id, LogConfig::default())
            .unwrap();
        log.append(
            batch(2, T0, 5),
            AppendOrigin::Client {
                leader_epoch: 0,
                verification: None,
            },
        )
        .unwrap();
    }
    // Spread evenly over the two dirs.
    let in_a = m
        .all_logs()
        .iter()
        .filter(|l| l.dir().starts_with(&dirs[0]))
        .count();
    assert_eq!(in_a, 2);
    let tp0 = TopicPartition::new("topic", 0);
    let pdir = m.get(&tp0).unwrap().dir();
    assert_eq!(
        fs::read(pdir.join("partition.metadata")).unwrap(),
        format!(
            "version: 0\ntopic_id: {}",
            shale_common::kafka_uuid::encode(&id)
        )
        .into_bytes()
    );
    assert_eq!(
        fs::read(pdir.join("leader-epoch-checkpoint")).unwrap(),
        b"0\n1\n0 0\n"
    );
    assert_eq!(
        files(&pdir),
        vec![
            "00000000000000000000.index",
            "00000000000000000000.log",
            "00000000000000000000.timeindex",
            "leader-epoch-checkpoint",
            "partition.metadata"
        ]
    );
    m.get(&tp0).unwrap().delete_records_before(1).unwrap();
    let tp1 = TopicPartition::new("topic", 1);
    m.get(&tp1).unwrap().set_high_watermark(1);
    m.shutdown().unwrap();
    let marker = dirs[0].join(".kafka_cleanshutdown");
    assert_eq!(
        fs::read(&marker).unwrap(),
        br#"{"version":0,"brokerEpoch":-1}"#
    );
    let rp = fs::read_to_string(dirs[0].join("recovery-point-offset-checkpoint")).unwrap();
    assert!(rp.starts_with("0\n2\n"), "{rp}");
    assert!(rp.contains("topic 0 2\n") || rp.contains("topic 1 2\n"));
    let ls =
        fs::read_to_string(m.dir_of(&tp0).unwrap().join("log-start-offset-checkpoint")).unwrap();
    assert_eq!(ls, "0\n1\ntopic 0 1\n");
    let hw = fs::read_to_string(dirs[1].join("replication-offset-checkpoint")).unwrap();
    assert!(hw.starts_with("0\n2\n"));
    // Snapshot at LEO written on close.
    assert!(pdir.join("00000000000000000002.snapshot").exists());
    drop(m);

    let m = mgr(&dirs, &clock, true);
    assert!(!marker.exists(), "marker is deleted right after reading");
    assert_eq!(m.all_logs().len(), 4);
    assert!(m.stray_partitions().is_empty());
    let log = m.get(&tp0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (1, 2));
    // The high watermark comes back from the checkpoint, within the log's offsets.
    assert_eq!(m.get(&tp1).unwrap().high_watermark(), 1);
    assert_eq!(log.high_watermark(), 1, "never set: the log start");
    assert_eq!(log.topic_id(), Some(id));
    m.delete(&tp0).unwrap();
    assert!(m.get(&tp0).is_none());
    assert!(!pdir.exists());
    assert!(fs::read_dir(&dirs[0]).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with("-delete")));
    m.write_checkpoints().unwrap();
    m.housekeeping().unwrap();
}

#[test]
fn strays_and_special_dirs() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().to_path_buf()];
    let clock = ManualClock::new(T0);
    fs::create_dir_all(root.path().join("__cluster_metadata-0")).unwrap();
    fs::create_dir_all(
        root.path()
            .join("old-0.0123456789abcdef0123456789abcdef-delete"),
    )
    .unwrap();
    fs::create_dir_all(root.path().join("other-3")).unwrap();
    let m = mgr(&dirs, &clock, true);
    assert_eq!(m.stray_partitions(), vec![TopicPartition::new("other", 3)]);
    assert!(m
        .get(&TopicPartition::new("__cluster_metadata", 0))
        .is_none());
    assert!(!root
        .path()
        .join("old-0.0123456789abcdef0123456789abcdef-delete")
        .exists());
    // Unclean restart (no marker): logs are recovered from the checkpoints.
    let log = m.get(&TopicPartition::new("other", 3)).unwrap();
    log.append(batch(3, T0, 5), client()).unwrap();
    m.write_checkpoints().unwrap();
    drop(log);
    drop(m);
    let m = mgr(&dirs, &clock, false);
    assert_eq!(
        m.get(&TopicPartition::new("other", 3))
            .unwrap()
            .log_end_offset(),
        3
    );
}

#[test]
fn dump_formats() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cfg = LogConfig::default()
        .with_overrides([("index.interval.bytes", "1")])
        .unwrap();
    let log = open(d.path(), cfg, &clock, true);
    log.append(pbatch(9, 0, 0, 2, T0), client()).unwrap();
    log.append(batch(1, T0 + 5, 1), client()).unwrap();
    log.close().unwrap();
    let mut out = Vec::new();
    dump_file(&d.path().join("00000000000000000000.log"), true, &mut out).unwrap();
    let s = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[0].starts_with("Dumping "));
    assert_eq!(lines[1], "Log starting offset: 0");
    assert!(lines[2].starts_with(
        "baseOffset: 0 lastOffset: 1 count: 2 baseSequence: 0 lastSequence: 1 producerId: 9 producerEpoch: 0 partitionLeaderEpoch: 3 isTransactional: false isControl: false deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: 1700000000000 size: "
    ), "{}", lines[2]);
    assert!(
        lines[2].contains(" magic: 2 compresscodec: none crc: "),
        "{}",
        lines[2]
    );
    assert!(lines[2].ends_with(" isvalid: true"), "{}", lines[2]);
    assert_eq!(
        lines[3],
        "| offset: 0 CreateTime: 1700000000000 keySize: 1 valueSize: 1 sequence: 0 headerKeys: [] key: k payload: v"
    );
    assert_eq!(
        lines[4],
        "| offset: 1 CreateTime: 1700000000000 keySize: 1 valueSize: 1 sequence: 1 headerKeys: [] key: k payload: v"
    );
    assert!(lines[5].starts_with("baseOffset: 2 lastOffset: 2 count: 1"));

    let mut out = Vec::new();
    dump_file(
        &d.path().join("00000000000000000000.index"),
        false,
        &mut out,
    )
    .unwrap();
    let s = String::from_utf8(out).unwrap();
    let pos = lines[2]
        .split("size: ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(
        s.lines().nth(1).unwrap(),
        format!("offset: 2 position: {pos}")
    );

    let mut out = Vec::new();
    dump_file(
        &d.path().join("00000000000000000000.timeindex"),
        false,
        &mut out,
    )
    .unwrap();
    let s = String::from_utf8(out).unwrap();
    assert_eq!(
        s.lines().nth(1).unwrap(),
        format!("timestamp: {} offset: 2", T0 + 5)
    );

    let mut out = Vec::new();
    dump_file(
        &d.path().join("00000000000000000003.snapshot"),
        false,
        &mut out,
    )
    .unwrap();
    let s = String::from_utf8(out).unwrap();
    assert_eq!(
        s.lines().nth(1).unwrap(),
        "producerId: 9 producerEpoch: 0 coordinatorEpoch: -1 currentTxnFirstOffset: OptionalLong.empty lastTimestamp: 1700000000000 firstSequence: 0 lastSequence: 1 lastOffset: 1 offsetDelta: 1 timestamp: 1700000000000"
    );
}
