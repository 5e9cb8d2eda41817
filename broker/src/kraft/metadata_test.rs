use bytes::Bytes;
use shale_raft::kraft::{Entry, LeaderChange, Record};
use shale_raft::records::TopicRecord;
use uuid::Uuid;

use super::*;

fn data(epoch: i32, record: MetadataRecord) -> Entry {
    Entry {
        epoch,
        record: Record::Data(record.encode()),
    }
}

fn leader_change(epoch: i32, leader_id: i32) -> Entry {
    Entry {
        epoch,
        record: Record::LeaderChange(LeaderChange {
            leader_id,
            voters: vec![1, 2, 3],
            granting_voters: vec![leader_id],
        }),
    }
}

fn topic(name: &str) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: name.into(),
        topic_id: Uuid::from_u128(name.len() as u128 + 1),
    })
}

#[test]
fn applies_data_entries_and_leader_changes_advance_the_offset() {
    let (mut machine, applied) = MetadataApplier::new("c");
    machine.apply(
        0,
        &[
            leader_change(1, 1),
            data(1, topic("a")),
            data(1, topic("bb")),
        ],
    );
    let image = applied.image();
    assert_eq!((image.last_offset, image.epoch), (2, 1));
    assert!(image.topic("a").is_some() && image.topic("bb").is_some());
    machine.apply(3, &[leader_change(2, 2)]);
    let image = applied.image();
    assert_eq!((image.last_offset, image.epoch), (3, 2));
    assert_eq!(applied.applied_offset(), 3);
    let state = applied.lock();
    assert_eq!(state.epoch_of(2), Some(1));
    assert_eq!(state.epoch_of(3), Some(2));
    assert_eq!(state.epoch_of(-1), None);
}

#[test]
fn a_transaction_is_published_only_at_its_end() {
    let (mut machine, applied) = MetadataApplier::new("c");
    machine.apply(
        0,
        &[
            data(1, MetadataRecord::BeginTransaction { name: None }),
            data(1, topic("a")),
        ],
    );
    assert!(applied.image().topic("a").is_none());
    assert!(applied.lock().loader.in_transaction());
    machine.apply(2, &[data(1, MetadataRecord::EndTransaction)]);
    let image = applied.image();
    assert!(image.topic("a").is_some());
    assert_eq!(image.last_offset, 2);
}

#[test]
fn snapshots_by_bytes_or_time_and_a_loaded_snapshot_replaces_the_state() {
    let policy = SnapshotPolicy {
        max_bytes_between: 40,
        max_interval_ms: 1000,
    };
    let (machine, applied) = MetadataApplier::new("c");
    let mut machine = machine.with_snapshots(policy);
    assert_eq!(machine.snapshot_due(0, &|_| None), None, "nothing applied");
    machine.apply(0, &[leader_change(1, 1), data(1, topic("a"))]);
    assert_eq!(
        machine.snapshot_due(10, &|_| None),
        None,
        "under the byte and time limits"
    );
    assert!(
        machine.snapshot_due(1000, &|_| None).is_some(),
        "due by time"
    );
    assert_eq!(
        machine.snapshot_due(1001, &|_| None),
        None,
        "nothing applied since"
    );

    // Inside a metadata transaction no snapshot is taken, however many bytes.
    let open = data(1, MetadataRecord::BeginTransaction { name: None });
    let names = ["bb", "ccc", "dddd", "eeeee"];
    let mut entries = vec![open];
    entries.extend(names.iter().map(|n| data(1, topic(n))));
    machine.apply(2, &entries);
    assert_eq!(machine.snapshot_due(1002, &|_| None), None);
    machine.apply(7, &[data(1, MetadataRecord::EndTransaction)]);
    // In a dynamic quorum the snapshot carries the voter set in force at its end (KIP-853).
    let voters = |end: i64| {
        assert_eq!(end, 8);
        Some(vec![
            shale_raft::kraft::Voter::by_id(1),
            shale_raft::kraft::Voter::by_id(3),
        ])
    };
    let (end_offset, bytes) = machine.snapshot_due(1003, &voters).expect("due by bytes");
    assert_eq!(end_offset, 8);
    assert_eq!(
        shale_raft::snapshot::checkpoint_voters(&bytes),
        Some(vec![1, 3])
    );

    let (mut other, other_applied) = MetadataApplier::new("c");
    other.apply(0, &[leader_change(1, 2), data(1, topic("stale"))]);
    let id = shale_raft::kraft::SnapshotId {
        end_offset,
        epoch: 1,
    };
    other.load_snapshot(&Snapshot { id, data: bytes });
    let image = other_applied.image();
    assert!(
        image.topic("stale").is_none(),
        "the snapshot replaces the state"
    );
    for name in ["a", "bb", "eeeee"] {
        assert!(image.topic(name).is_some(), "{name}");
    }
    assert_eq!((image.last_offset, image.epoch), (7, 1));
    assert_eq!(other_applied.applied_offset(), 7);
    assert_eq!(*image, *applied.image());
    other.apply(8, &[data(2, topic("ffffff"))]);
    assert_eq!(other_applied.lock().epoch_of(8), Some(2));

    let garbage = Snapshot {
        id,
        data: Bytes::from_static(b"not a checkpoint"),
    };
    other.load_snapshot(&garbage);
    assert!(other_applied.lock().fault.is_some());
}

#[test]
fn an_undecodable_entry_is_a_fault() {
    let (mut machine, applied) = MetadataApplier::new("c");
    let bad = Entry {
        epoch: 1,
        record: Record::Data(Bytes::from_static(&[0xff, 0xff, 0xff])),
    };
    machine.apply(0, &[bad, data(1, topic("a"))]);
    let state = applied.lock();
    assert!(state.fault.is_some());
    assert_eq!(state.offset, 1);
}

/// A stand-in driver: answers appends with offsets and, when `commit_epoch` is set, applies
/// them at once in that epoch (as if committed).
struct FakeDriver {
    view: tokio::sync::watch::Sender<QuorumView>,
    machine: Arc<std::sync::Mutex<MetadataApplier>>,
    appended: Arc<std::sync::Mutex<Vec<MetadataRecord>>>,
    commit_epoch: Arc<std::sync::Mutex<Option<i32>>>,
}

fn view(role: RoleKind, epoch: i32, leader: Option<i32>) -> QuorumView {
    QuorumView {
        leader_address: None,
        voters: Default::default(),
        node_id: 1,
        epoch,
        leader,
        role,
        high_watermark: 0,
        log_end_offset: 0,
        stopped: false,
    }
}

fn fake(initial: QuorumView) -> (FakeDriver, KRaftMetadataQuorum) {
    let (machine, applied) = MetadataApplier::new("c");
    let machine = Arc::new(std::sync::Mutex::new(machine));
    let (view_tx, view_rx) = tokio::sync::watch::channel(initial);
    let (inputs, rx) = std::sync::mpsc::sync_channel::<Input>(16);
    let appended = Arc::new(std::sync::Mutex::new(Vec::new()));
    let commit_epoch = Arc::new(std::sync::Mutex::new(None));
    let (m, a, ce) = (machine.clone(), appended.clone(), commit_epoch.clone());
    std::thread::spawn(move || {
        let mut next = 100i64;
        while let Ok(input) = rx.recv() {
            if let Input::Append { records, reply } = input {
                let n = records.len() as i64;
                let _ = reply.send(Ok(next + n - 1));
                let decoded: Vec<MetadataRecord> = records
                    .iter()
                    .map(|r| MetadataRecord::decode(r).unwrap())
                    .collect();
                if let Some(epoch) = *ce.lock().unwrap() {
                    let entries: Vec<Entry> =
                        decoded.iter().cloned().map(|r| data(epoch, r)).collect();
                    m.lock().unwrap().apply(next, &entries);
                }
                a.lock().unwrap().extend(decoded);
                next += n;
            }
        }
    });
    let handle = DriverHandle {
        inputs,
        view: view_rx,
    };
    let quorum = KRaftMetadataQuorum::new(
        1,
        applied,
        handle,
        shale_common::SystemClock::new(),
        Duration::from_millis(200),
    );
    let driver = FakeDriver {
        view: view_tx,
        machine,
        appended,
        commit_epoch,
    };
    (driver, quorum)
}

#[test]
fn a_follower_is_not_the_controller_and_names_the_leader() {
    let (_driver, quorum) = fake(view(RoleKind::Follower, 3, Some(2)));
    let err = quorum.check_active().unwrap_err();
    assert!(
        matches!(err, ControllerError::NotController { leader: Some(2) }),
        "{err:?}"
    );
    let err = quorum.commit(vec![topic("a")]).unwrap_err();
    assert!(
        matches!(err, ControllerError::NotController { .. }),
        "{err:?}"
    );
}

#[test]
fn a_new_leader_serves_only_after_applying_its_own_epoch() {
    let (driver, quorum) = fake(view(RoleKind::Leader, 2, Some(1)));
    driver
        .machine
        .lock()
        .unwrap()
        .apply(0, &[leader_change(1, 3), data(1, topic("a"))]);
    let err = quorum.check_active().unwrap_err();
    assert!(
        matches!(err, ControllerError::NotController { leader: Some(1) }),
        "{err:?}"
    );
    driver
        .machine
        .lock()
        .unwrap()
        .apply(2, &[leader_change(2, 1)]);
    quorum.check_active().unwrap();
    assert!(driver.appended.lock().unwrap().is_empty());
}

#[test]
fn commit_waits_for_the_apply_and_checks_its_epoch() {
    let (driver, quorum) = fake(view(RoleKind::Leader, 2, Some(1)));
    *driver.commit_epoch.lock().unwrap() = Some(2);
    quorum.commit(vec![topic("a"), topic("bb")]).unwrap();
    assert!(quorum.image().topic("bb").is_some());
    assert_eq!(quorum.image().last_offset, 101);

    // Applied, but in another epoch: the append was lost to a new leader.
    *driver.commit_epoch.lock().unwrap() = Some(3);
    let err = quorum.commit(vec![topic("ccc")]).unwrap_err();
    assert!(
        matches!(err, ControllerError::NotController { .. }),
        "{err:?}"
    );

    // Never committed: a retriable timeout.
    *driver.commit_epoch.lock().unwrap() = None;
    let err = quorum.commit(vec![topic("dddd")]).unwrap_err();
    assert!(matches!(err, ControllerError::Timeout(_)), "{err:?}");

    driver.view.send_modify(|v| v.stopped = true);
    let err = quorum.commit(vec![topic("eeeee")]).unwrap_err();
    assert!(
        matches!(err, ControllerError::Storage(RaftError::Closed)),
        "{err:?}"
    );
}

#[test]
fn a_dangling_transaction_is_aborted_and_a_fresh_cluster_bootstrapped() {
    let (driver, quorum) = fake(view(RoleKind::Leader, 2, Some(1)));
    let quorum = quorum.with_bootstrap(shale_raft::format::default_bootstrap_records());
    driver.machine.lock().unwrap().apply(
        0,
        &[
            data(1, MetadataRecord::BeginTransaction { name: None }),
            data(1, topic("a")),
            leader_change(2, 1),
        ],
    );
    *driver.commit_epoch.lock().unwrap() = Some(2);
    quorum.check_active().unwrap();
    let appended = driver.appended.lock().unwrap().clone();
    assert!(
        matches!(
            appended.first(),
            Some(MetadataRecord::AbortTransaction { .. })
        ),
        "{appended:?}"
    );
    let image = quorum.image();
    assert!(image.topic("a").is_none());
    assert!(image.metadata_version() > 0);
    // Bootstrapped once only.
    let before = driver.appended.lock().unwrap().len();
    quorum.check_active().unwrap();
    assert_eq!(driver.appended.lock().unwrap().len(), before);
}
