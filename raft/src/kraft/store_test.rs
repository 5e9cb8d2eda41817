//! Tests of [`KRaftStore`]: every storage command survives a reopen, snapshots replace older
//! ones, leftovers and torn tails are handled at open, and a real single-voter [`KRaft`] core
//! driven through the store restarts with the same committed entries and a newer epoch.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use shale_common::{Clock, ManualClock, SeededRng};

use super::store::{KRaftStore, Recovered};
use super::*;
use crate::error::RaftError;
use crate::records::{FeatureLevelRecord, MetadataRecord};
use crate::snapshot::{encode_batch_file, list_snapshots};

fn clock() -> Arc<dyn Clock> {
    ManualClock::new(1_000)
}

fn open(dir: &Path) -> (KRaftStore, Recovered) {
    KRaftStore::open(dir, clock()).unwrap()
}

/// One batch per segment: every append after the first in a segment rolls.
fn open_tiny_segments(dir: &Path) -> (KRaftStore, Recovered) {
    KRaftStore::open_with(dir, 100, clock()).unwrap()
}

fn data(epoch: i32, v: &str) -> Entry {
    Entry {
        epoch,
        record: Record::Data(Bytes::copy_from_slice(v.as_bytes())),
    }
}

fn change(epoch: i32, leader: i32) -> Entry {
    Entry {
        epoch,
        record: Record::LeaderChange(LeaderChange {
            leader_id: leader,
            voters: vec![1, 2, 3],
            granting_voters: vec![1, 2],
        }),
    }
}

fn entries(epoch: i32, n: usize) -> Vec<Entry> {
    (0..n).map(|i| data(epoch, &format!("r{i}"))).collect()
}

fn append(store: &mut KRaftStore, base_offset: i64, entries: &[Entry]) {
    let cmd = Command::AppendBatch {
        base_offset,
        entries: entries.to_vec(),
    };
    assert_eq!(store.execute(&cmd).unwrap(), None);
}

fn flush(store: &mut KRaftStore) -> i64 {
    match store.execute(&Command::Flush).unwrap() {
        Some(Event::Flushed { up_to }) => up_to,
        other => panic!("Flush answered {other:?}"),
    }
}

/// A real snapshot file (header, `n` records, footer) for snapshot `id`.
fn snapshot(end_offset: i64, epoch: i32, n: usize) -> Snapshot {
    let records: Vec<_> = (0..n)
        .map(|i| {
            MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: format!("f{i}"),
                feature_level: i as i16,
            })
        })
        .collect();
    Snapshot {
        id: SnapshotId { end_offset, epoch },
        data: encode_batch_file(epoch, 0, 5, &records).unwrap(),
    }
}

fn partition(dir: &Path) -> PathBuf {
    dir.join(crate::metadata_log::METADATA_PARTITION_DIR)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(partition(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn election(epoch: i32, leader: i32, voted: i32) -> ElectionState {
    ElectionState {
        epoch,
        leader_id: leader,
        voted_id: voted,
        voters: vec![1, 2, 3],
    }
}

#[test]
fn an_empty_dir_recovers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, rec) = open(dir.path());
    assert_eq!(
        rec,
        Recovered {
            election: None,
            snapshot: None,
            log: LogView::default(),
        }
    );
    assert_eq!((store.log_start_offset(), store.log_end_offset()), (0, 0));
    assert_eq!(store.snapshot_id(), None);
}

#[test]
fn quorum_state_and_appends_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    let state = election(4, 2, 2);
    let cmd = Command::WriteQuorumState(state.clone());
    assert_eq!(store.execute(&cmd).unwrap(), None);
    let log = vec![
        change(1, 1),
        data(1, "a"),
        data(1, "b"),
        change(3, 2),
        data(3, "c"),
    ];
    append(&mut store, 0, &log[..3]);
    append(&mut store, 3, &log[3..]);
    assert_eq!(flush(&mut store), 5);
    store.close().unwrap();
    drop(store);

    let (mut store, rec) = open(dir.path());
    assert_eq!(rec.election, Some(state));
    assert_eq!(rec.snapshot, None);
    assert_eq!(rec.log, LogView::new(log.clone()));
    let later = election(5, -1, 1);
    store
        .execute(&Command::WriteQuorumState(later.clone()))
        .unwrap();
    drop(store);
    assert_eq!(open(dir.path()).1.election, Some(later));
    assert!(!names(dir.path()).iter().any(|n| n.ends_with(".tmp")));
}

#[test]
fn an_append_not_at_the_log_end_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    append(&mut store, 0, &entries(1, 2));
    for base in [0, 1, 3] {
        let cmd = Command::AppendBatch {
            base_offset: base,
            entries: entries(1, 1),
        };
        assert!(
            matches!(store.execute(&cmd), Err(RaftError::Quorum(_))),
            "{base}"
        );
    }
    assert_eq!(store.log_end_offset(), 2);
}

#[test]
fn commands_that_are_not_storage_do_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    append(&mut store, 0, &entries(1, 2));
    let before = names(dir.path());
    let s = snapshot(1, 1, 1);
    let cmds = [
        Command::Send {
            to: 2,
            msg: Message::BeginQuorumEpoch {
                epoch: 1,
                leader: 1,
            },
        },
        Command::Commit { high_watermark: 2 },
        Command::Apply {
            base_offset: 0,
            entries: entries(1, 2),
        },
        Command::LoadSnapshot(s),
    ];
    for cmd in &cmds {
        assert_eq!(store.execute(cmd).unwrap(), None, "{cmd:?}");
    }
    assert_eq!(names(dir.path()), before);
    assert_eq!(store.snapshot_id(), None);
    assert_eq!(store.log_end_offset(), 2);
}

#[test]
fn truncate_then_append() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    append(&mut store, 0, &entries(1, 3));
    append(&mut store, 3, &entries(2, 2));
    store.execute(&Command::Truncate { to: 2 }).unwrap();
    assert_eq!(store.log_end_offset(), 2);
    // At or above the end: nothing to do.
    store.execute(&Command::Truncate { to: 9 }).unwrap();
    let tail = vec![data(3, "x"), data(3, "y")];
    append(&mut store, 2, &tail);
    assert_eq!(flush(&mut store), 4);
    drop(store);

    let (_, rec) = open(dir.path());
    let mut want = entries(1, 2);
    want.extend(tail);
    assert_eq!(rec.log, LogView::new(want));
}

#[test]
fn truncating_inside_a_batch_keeps_the_entries_below() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    let log = entries(1, 6);
    append(&mut store, 0, &log);
    store.execute(&Command::Truncate { to: 4 }).unwrap();
    assert_eq!(store.log_end_offset(), 4);
    assert!(!names(dir.path())
        .iter()
        .any(|n| n.starts_with("truncation")));
    // Aligned with a batch boundary now.
    store.execute(&Command::Truncate { to: 4 }).unwrap();
    drop(store);
    assert_eq!(open(dir.path()).1.log, LogView::new(log[..4].to_vec()));
}

#[test]
fn an_interrupted_truncation_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    let mut log = entries(1, 2);
    log.extend(entries(2, 3));
    append(&mut store, 0, &log);
    flush(&mut store);
    // A crash after the batch [2, 5) was cut for a truncation to 3, before [2, 3) came back.
    store.execute(&Command::Truncate { to: 2 }).unwrap();
    flush(&mut store);
    drop(store);
    let journal = partition(dir.path()).join(super::store::TRUNCATION_JOURNAL);
    let kept = super::codec::encode_entries(2, &log[2..3], 0).unwrap();
    fs::write(&journal, &kept).unwrap();
    let (mut store, rec) = open(dir.path());
    assert_eq!(rec.log, LogView::new(log[..3].to_vec()));
    assert!(!journal.exists());

    // A journal the log has moved past (the cut never happened, or the re-append did) is
    // dropped without touching the log.
    append(&mut store, 3, &entries(2, 2));
    flush(&mut store);
    drop(store);
    fs::write(&journal, &kept).unwrap();
    let (_, rec) = open(dir.path());
    assert_eq!(rec.log.end_offset(), 5);
    assert!(!journal.exists());
}

#[test]
fn delete_prefix_after_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open_tiny_segments(dir.path());
    let log: Vec<Entry> = (0..6).map(|i| data(1 + i / 3, &format!("r{i}"))).collect();
    for (i, e) in log.iter().enumerate() {
        append(&mut store, i as i64, std::slice::from_ref(e));
    }
    flush(&mut store);
    // A prefix deletion no durable snapshot covers is refused.
    let early = store.execute(&Command::DeleteLogPrefix { to: 4 });
    assert!(matches!(early, Err(RaftError::Quorum(_))));
    let s = snapshot(4, 2, 3);
    store.execute(&Command::WriteSnapshot(s.clone())).unwrap();
    store.execute(&Command::DeleteLogPrefix { to: 4 }).unwrap();
    assert_eq!((store.log_start_offset(), store.log_end_offset()), (4, 6));
    // Truncating below the log start is refused.
    let below = store.execute(&Command::Truncate { to: 3 });
    assert!(matches!(below, Err(RaftError::Quorum(_))));
    drop(store);

    let (store, rec) = open_tiny_segments(dir.path());
    assert_eq!(rec.snapshot, Some(s.clone()));
    assert_eq!(rec.log, LogView::starting_at(4, 2, log[4..].to_vec()));
    assert_eq!(store.snapshot_id(), Some(s.id));
    // The first segment is gone from the log; its renamed `.deleted` files may still be
    // waiting for the background deleter.
    assert!(!names(dir.path())
        .iter()
        .any(|n| n == "00000000000000000000.log"));
}

#[test]
fn a_prefix_inside_a_segment_comes_back_and_the_core_deletes_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    let log = entries(1, 6);
    append(&mut store, 0, &log);
    flush(&mut store);
    let s = snapshot(4, 1, 2);
    store.execute(&Command::WriteSnapshot(s.clone())).unwrap();
    store.execute(&Command::DeleteLogPrefix { to: 4 }).unwrap();
    assert_eq!(store.log_start_offset(), 4);
    drop(store);

    // Segments are only deleted whole: the log still starts at 0 on disk.
    let (mut store, rec) = open(dir.path());
    assert_eq!(rec.log, LogView::new(log.clone()));
    let cfg = KRaftConfig::new(1, vec![1, 2, 3]);
    let (node, cmds) = KRaft::restore(
        cfg,
        SeededRng::new(3),
        0,
        rec.election,
        rec.snapshot,
        rec.log,
    );
    assert!(
        cmds.contains(&Command::DeleteLogPrefix { to: 4 }),
        "{cmds:?}"
    );
    assert_eq!(node.log(), &LogView::starting_at(4, 1, log[4..].to_vec()));
    for cmd in &cmds {
        store.execute(cmd).unwrap();
    }
    assert_eq!(store.log_start_offset(), 4);
}

#[test]
fn reset_log_after_installing_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    append(&mut store, 0, &entries(1, 5));
    flush(&mut store);
    let s = snapshot(50, 3, 4);
    // Reset to an offset no durable snapshot ends at is refused.
    let early = store.execute(&Command::ResetLog { start_offset: 50 });
    assert!(matches!(early, Err(RaftError::Quorum(_))));
    store.execute(&Command::WriteSnapshot(s.clone())).unwrap();
    let wrong = store.execute(&Command::ResetLog { start_offset: 40 });
    assert!(matches!(wrong, Err(RaftError::Quorum(_))));
    store
        .execute(&Command::ResetLog { start_offset: 50 })
        .unwrap();
    assert_eq!((store.log_start_offset(), store.log_end_offset()), (50, 50));
    let tail = entries(3, 2);
    append(&mut store, 50, &tail);
    assert_eq!(flush(&mut store), 52);
    drop(store);

    let (_, rec) = open(dir.path());
    assert_eq!(rec.snapshot, Some(s));
    assert_eq!(rec.log, LogView::starting_at(50, 3, tail));
}

#[test]
fn a_log_start_without_a_snapshot_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    let s = snapshot(7, 1, 0);
    store.execute(&Command::WriteSnapshot(s.clone())).unwrap();
    store
        .execute(&Command::ResetLog { start_offset: 7 })
        .unwrap();
    drop(store);
    fs::remove_file(partition(dir.path()).join("00000000000000000007-0000000001.checkpoint"))
        .unwrap();
    let err = KRaftStore::open(dir.path(), clock()).unwrap_err();
    assert!(matches!(err, RaftError::Corrupt { .. }), "{err}");
}

#[test]
fn a_new_checkpoint_replaces_older_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    append(&mut store, 0, &entries(1, 4));
    append(&mut store, 4, &entries(2, 4));
    let a = snapshot(3, 1, 1);
    let b = snapshot(6, 2, 2);
    store.execute(&Command::WriteSnapshot(a.clone())).unwrap();
    store.execute(&Command::WriteSnapshot(b.clone())).unwrap();
    let ids = list_snapshots(&partition(dir.path())).unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!((ids[0].end_offset, ids[0].epoch), (6, 2));
    // Going back to an older snapshot is refused and keeps the newer one.
    let older = store.execute(&Command::WriteSnapshot(a));
    assert!(matches!(older, Err(RaftError::Quorum(_))));
    assert_eq!(store.snapshot_id(), Some(b.id));
    assert!(!names(dir.path()).iter().any(|n| n.ends_with(".part")));
    drop(store);
    assert_eq!(open(dir.path()).1.snapshot, Some(b));
}

#[test]
fn leftovers_are_ignored_and_older_checkpoints_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    append(&mut store, 0, &entries(1, 8));
    let newest = snapshot(6, 1, 2);
    store
        .execute(&Command::WriteSnapshot(newest.clone()))
        .unwrap();
    drop(store);
    let p = partition(dir.path());
    // A crash before the older one was removed, and interrupted writes of newer ones.
    let old = snapshot(2, 1, 1);
    fs::write(
        p.join("00000000000000000002-0000000001.checkpoint"),
        &old.data,
    )
    .unwrap();
    fs::write(
        p.join("00000000000000000008-0000000001.checkpoint.part"),
        b"half",
    )
    .unwrap();
    fs::write(
        p.join("00000000000000000007-0000000001.checkpoint.deleted"),
        b"gone",
    )
    .unwrap();

    let (store, rec) = open(dir.path());
    assert_eq!(rec.snapshot, Some(newest.clone()));
    assert_eq!(store.snapshot_id(), Some(newest.id));
    let checkpoints: Vec<_> = names(dir.path())
        .into_iter()
        .filter(|n| n.contains(".checkpoint"))
        .collect();
    assert_eq!(checkpoints, ["00000000000000000006-0000000001.checkpoint"]);
}

#[test]
fn an_unreadable_checkpoint_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    append(&mut store, 0, &entries(1, 4));
    store
        .execute(&Command::WriteSnapshot(snapshot(2, 1, 3)))
        .unwrap();
    drop(store);
    let path = partition(dir.path()).join("00000000000000000002-0000000001.checkpoint");
    let good = fs::read(&path).unwrap();
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    let footerless = snapshot(2, 1, 3).data.slice(..good.len() - 1);
    for bad in [flipped, footerless.to_vec(), b"garbage".to_vec()] {
        fs::write(&path, &bad).unwrap();
        let err = KRaftStore::open(dir.path(), clock()).unwrap_err();
        assert!(matches!(err, RaftError::Corrupt { .. }), "{err}");
    }
    fs::write(&path, &good).unwrap();
    assert!(open(dir.path()).1.snapshot.is_some());
}

#[test]
fn a_snapshot_that_is_not_a_checkpoint_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    append(&mut store, 0, &entries(1, 4));
    let s = Snapshot {
        id: SnapshotId {
            end_offset: 2,
            epoch: 1,
        },
        data: Bytes::from_static(b"opaque"),
    };
    assert!(store.execute(&Command::WriteSnapshot(s)).is_err());
    assert_eq!(store.snapshot_id(), None);
    assert!(list_snapshots(&partition(dir.path())).unwrap().is_empty());
}

#[test]
fn a_torn_tail_is_cut_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = open(dir.path());
    let log = entries(1, 3);
    append(&mut store, 0, &log);
    flush(&mut store);
    drop(store);
    let seg = partition(dir.path()).join("00000000000000000000.log");
    let mut f = fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 90, 0xde, 0xad])
        .unwrap();
    drop(f);

    let (mut store, rec) = open(dir.path());
    assert_eq!(rec.log, LogView::new(log));
    assert_eq!(store.log_end_offset(), 3);
    append(&mut store, 3, &entries(2, 1));
    flush(&mut store);
    drop(store);
    assert_eq!(open(dir.path()).1.log.end_offset(), 4);
}

// ---- a real core driven through the store ----------------------------------------------------

/// A single-voter node and what its state machine saw.
struct Node {
    core: KRaft,
    store: KRaftStore,
    now: u64,
    /// Every entry handed out in `Apply`, by offset.
    applied: BTreeMap<i64, Entry>,
    loaded: Option<Snapshot>,
    commits: i64,
}

impl Node {
    /// Opens the store and restores the core from what it recovered.
    fn start(dir: &Path, now: u64) -> Node {
        let (store, rec) = KRaftStore::open(dir, clock()).unwrap();
        let cfg = KRaftConfig::new(1, vec![1]);
        let (core, cmds) = KRaft::restore(
            cfg,
            SeededRng::new(7),
            now,
            rec.election,
            rec.snapshot,
            rec.log,
        );
        let mut node = Node {
            core,
            store,
            now,
            applied: BTreeMap::new(),
            loaded: None,
            commits: 0,
        };
        node.run(cmds);
        node
    }

    /// Executes commands in order through the store, feeding `Flushed` back to the core.
    fn run(&mut self, cmds: Vec<Command>) {
        let mut queue = VecDeque::from(cmds);
        while let Some(cmd) = queue.pop_front() {
            match &cmd {
                Command::Apply {
                    base_offset,
                    entries,
                } => {
                    for (i, e) in entries.iter().enumerate() {
                        self.applied.insert(base_offset + i as i64, e.clone());
                    }
                }
                Command::LoadSnapshot(s) => self.loaded = Some(s.clone()),
                Command::Commit { high_watermark } => self.commits = *high_watermark,
                _ => {}
            }
            if let Some(event) = self.store.execute(&cmd).unwrap() {
                queue.extend(self.core.handle(event).unwrap());
            }
        }
    }

    fn handle(&mut self, event: Event) {
        let cmds = self.core.handle(event).unwrap();
        self.run(cmds);
    }

    /// Ticks until the node leads and has committed its LeaderChange.
    fn elect(&mut self) {
        for _ in 0..200 {
            if self.core.role() == RoleKind::Leader
                && self.core.high_watermark() == self.core.log().end_offset()
            {
                return;
            }
            self.now += 100;
            self.handle(Event::Tick { now_ms: self.now });
        }
        panic!("no leader: {:?}", self.core.role());
    }

    fn propose(&mut self, values: &[&str]) {
        let records = values
            .iter()
            .map(|v| Bytes::copy_from_slice(v.as_bytes()))
            .collect();
        self.handle(Event::AppendRequested { records });
        assert_eq!(self.commits, self.core.log().end_offset());
    }

    fn data_applied(&self) -> Vec<(i64, Bytes)> {
        self.applied
            .iter()
            .filter_map(|(o, e)| match &e.record {
                Record::Data(v) => Some((*o, v.clone())),
                Record::LeaderChange(_) | Record::Voters(_) => None,
            })
            .collect()
    }
}

#[test]
fn a_single_voter_restarts_with_its_commits_and_a_newer_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = Node::start(dir.path(), 0);
    n.elect();
    let first_epoch = n.core.epoch();
    assert!(first_epoch >= 1);
    n.propose(&["a", "b"]);
    n.propose(&["c"]);
    let before = n.applied.clone();
    assert_eq!(n.data_applied().len(), 3);
    let end = n.core.log().end_offset();
    drop(n);

    // Restart: the durable log and quorum-state come back; the node never reuses an epoch.
    let (_, rec) = KRaftStore::open(dir.path(), clock()).unwrap();
    assert_eq!(rec.log.end_offset(), end);
    assert_eq!(rec.election.as_ref().map(|e| e.epoch), Some(first_epoch));
    drop(rec);
    let mut n = Node::start(dir.path(), 10_000);
    assert!(n.core.epoch() >= first_epoch);
    n.elect();
    let second_epoch = n.core.epoch();
    assert!(second_epoch > first_epoch);
    for (offset, entry) in &before {
        assert_eq!(n.applied.get(offset), Some(entry), "offset {offset}");
    }
    assert_eq!(n.applied.len(), before.len() + 1);

    // A snapshot of everything so far, more records, and another restart.
    let hw = n.core.high_watermark();
    let s = snapshot(hw, second_epoch, 2);
    n.handle(Event::CreateSnapshot {
        end_offset: hw,
        data: s.data.clone(),
    });
    assert_eq!(n.store.snapshot_id(), Some(s.id));
    n.propose(&["d"]);
    let tail: Vec<_> = n
        .applied
        .range(hw..)
        .map(|(o, e)| (*o, e.clone()))
        .collect();
    drop(n);

    let mut n = Node::start(dir.path(), 20_000);
    assert_eq!(n.loaded, Some(s));
    n.elect();
    assert!(n.core.epoch() > second_epoch);
    assert_eq!(n.core.log().start_offset(), hw);
    assert!(n.applied.keys().all(|&o| o >= hw));
    for (offset, entry) in &tail {
        assert_eq!(n.applied.get(offset), Some(entry), "offset {offset}");
    }
    assert_eq!(
        n.data_applied().last().map(|(_, v)| v.clone()),
        Some(Bytes::from_static(b"d"))
    );
}
