//! Idempotent-producer state of one partition (formats.md §4.4) and its `<offset>.snapshot` files
//! (Kafka's ProducerSnapshot v1 with CRC-32C, §4.1).
//!
//! Per producer the last five batches `(last_seq, last_offset, offset_delta, timestamp)` are kept
//! for duplicate detection; the snapshot persists only the last one, like Kafka. Transactions:
//! each producer's `current_txn_start_offset` (set by its first transactional batch, cleared by
//! an ABORT/COMMIT marker, which also records the coordinator epoch), the transaction checks of
//! §4.4 (a non-transactional batch inside an open transaction, fenced producer or coordinator
//! epochs on markers), and the partition's open/unreplicated transactions in the shared
//! [`TxnTracker`] (`transactions.rs`), kept in step with every change of the map.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use shale_common::TopicPartition;
use shale_protocol::record::ControlRecord;
use shale_protocol::record_batch::{increment_sequence, BatchHeader};

use crate::checkpoint::replace_file;
use crate::error::{IoContext, LogError, Result};
use crate::transactions::{CompletedTxn, TxnTracker};

/// How many batches per producer are remembered for duplicate detection.
pub const MAX_CACHED_BATCHES: usize = 5;
/// `producer.id.expiration.ms` default.
pub const PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;
const SNAPSHOT_VERSION: i16 = 1;
const ENTRY_SIZE: usize = 46;

/// One producer as DescribeProducers reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerStateEntry {
    /// Producer id.
    pub producer_id: i64,
    /// Current epoch.
    pub producer_epoch: i16,
    /// Last sequence written (-1 if none).
    pub last_sequence: i32,
    /// Last offset written (-1 if none).
    pub last_offset: i64,
    /// Timestamp of the last write.
    pub last_timestamp: i64,
    /// Coordinator epoch of the last marker (-1 if none).
    pub coordinator_epoch: i32,
    /// First offset of the ongoing transaction (-1 if none).
    pub current_txn_start_offset: i64,
}

/// `sequence - decrement` with Kafka's wrap rule (below 0 it continues from `i32::MAX`).
pub(crate) fn decrement_sequence(sequence: i32, decrement: i32) -> i32 {
    if sequence < decrement {
        i32::MAX
            .wrapping_sub(decrement.wrapping_sub(sequence))
            .wrapping_add(1)
    } else {
        sequence.wrapping_sub(decrement)
    }
}

/// Metadata of one appended batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub(crate) last_seq: i32,
    pub(crate) last_offset: i64,
    pub(crate) offset_delta: i32,
    pub(crate) timestamp: i64,
}

impl BatchMeta {
    pub(crate) fn first_seq(&self) -> i32 {
        decrement_sequence(self.last_seq, self.offset_delta)
    }
    pub(crate) fn first_offset(&self) -> i64 {
        self.last_offset.wrapping_sub(i64::from(self.offset_delta))
    }
}

#[derive(Clone, Debug)]
struct Producer {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    last_timestamp: i64,
    coordinator_epoch: i32,
    txn_first_offset: i64,
}

impl Producer {
    fn new() -> Producer {
        Producer {
            epoch: -1,
            batches: VecDeque::new(),
            last_timestamp: -1,
            coordinator_epoch: -1,
            txn_first_offset: -1,
        }
    }
    fn last_seq(&self) -> i32 {
        self.batches.back().map_or(-1, |b| b.last_seq)
    }
}

/// Outcome of the pre-append producer check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ProducerCheck {
    /// Append it.
    Ok,
    /// A retry of a batch already in the log: do not write, answer with these offsets.
    Duplicate(BatchMeta),
}

/// The producer map of one partition plus its snapshot files.
#[derive(Debug)]
pub(crate) struct ProducerStateManager {
    dir: PathBuf,
    producers: HashMap<i64, Producer>,
    /// Exclusive end offset of what the map reflects.
    map_end_offset: i64,
    snapshots: BTreeMap<i64, PathBuf>,
    /// Open and unreplicated transactions, shared with the `Log` (read without the append lock).
    txns: Arc<Mutex<TxnTracker>>,
}

/// `<20-digit offset>.snapshot`.
pub(crate) fn snapshot_file_name(offset: i64) -> String {
    format!("{offset:020}.snapshot")
}

impl ProducerStateManager {
    /// Empty state; lists the snapshot files present in `dir`.
    pub(crate) fn new(dir: &Path) -> Result<ProducerStateManager> {
        let mut snapshots = BTreeMap::new();
        for e in fs::read_dir(dir).ctx(dir)? {
            let e = e.ctx(dir)?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".snapshot") {
                if let Ok(o) = stem.parse::<i64>() {
                    snapshots.insert(o, e.path());
                }
            }
        }
        Ok(ProducerStateManager {
            dir: dir.to_path_buf(),
            producers: HashMap::new(),
            map_end_offset: 0,
            snapshots,
            txns: Arc::default(),
        })
    }

    /// The transaction tracker this map keeps up to date.
    pub(crate) fn txns(&self) -> Arc<Mutex<TxnTracker>> {
        self.txns.clone()
    }

    #[cfg(test)]
    pub(crate) fn map_end_offset(&self) -> i64 {
        self.map_end_offset
    }

    pub(crate) fn snapshot_offsets(&self) -> Vec<i64> {
        self.snapshots.keys().copied().collect()
    }

    /// Client-origin check (§4.4): duplicate first, then epoch fencing, then sequence.
    pub(crate) fn check(&self, tp: &TopicPartition, h: &BatchHeader) -> Result<ProducerCheck> {
        let pid = h.producer_id();
        let Some(p) = self.producers.get(&pid) else {
            return Ok(ProducerCheck::Ok);
        };
        let epoch = h.producer_epoch();
        let (first, last) = (h.base_sequence(), h.last_sequence());
        if epoch == p.epoch {
            if let Some(b) = p
                .batches
                .iter()
                .find(|b| b.first_seq() == first && b.last_seq == last)
            {
                return Ok(ProducerCheck::Duplicate(*b));
            }
        }
        if epoch < p.epoch {
            return Err(LogError::InvalidProducerEpoch {
                tp: tp.clone(),
                producer_id: pid,
                current: p.epoch,
                found: epoch,
            });
        }
        if epoch != p.epoch {
            if first != 0 && p.epoch != -1 {
                return Err(LogError::OutOfOrderSequence {
                    tp: tp.clone(),
                    producer_id: pid,
                    expected: 0,
                    found: first,
                });
            }
        } else {
            let last_seq = p.last_seq();
            let in_seq = first == last_seq.wrapping_add(1) || (first == 0 && last_seq == i32::MAX);
            if !in_seq {
                return Err(LogError::OutOfOrderSequence {
                    tp: tp.clone(),
                    producer_id: pid,
                    expected: increment_sequence(last_seq, 1),
                    found: first,
                });
            }
        }
        if p.txn_first_offset >= 0 && !h.is_transactional() {
            return Err(LogError::InvalidTxnState {
                tp: tp.clone(),
                producer_id: pid,
                reason: format!(
                    "non-transactional batch while a transaction is open since offset {}",
                    p.txn_first_offset
                ),
            });
        }
        Ok(ProducerCheck::Ok)
    }

    /// Coordinator-origin check of an ABORT/COMMIT marker (§4.4): an older producer epoch is
    /// INVALID_PRODUCER_EPOCH, an older coordinator epoch TRANSACTION_COORDINATOR_FENCED.
    /// A coordinator's transactional data batch: only an older producer epoch is refused.
    pub(crate) fn check_epoch(&self, tp: &TopicPartition, h: &BatchHeader) -> Result<()> {
        match self.producers.get(&h.producer_id()) {
            Some(p) if h.producer_epoch() < p.epoch => Err(LogError::InvalidProducerEpoch {
                tp: tp.clone(),
                producer_id: h.producer_id(),
                current: p.epoch,
                found: h.producer_epoch(),
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn check_marker(
        &self,
        tp: &TopicPartition,
        h: &BatchHeader,
        marker: &ControlRecord,
    ) -> Result<()> {
        let pid = h.producer_id();
        let Some(p) = self.producers.get(&pid) else {
            return Ok(());
        };
        if h.producer_epoch() < p.epoch {
            return Err(LogError::InvalidProducerEpoch {
                tp: tp.clone(),
                producer_id: pid,
                current: p.epoch,
                found: h.producer_epoch(),
            });
        }
        let found = marker.coordinator_epoch.unwrap_or(-1);
        if found < p.coordinator_epoch {
            return Err(LogError::TransactionCoordinatorFenced {
                tp: tp.clone(),
                producer_id: pid,
                current: p.coordinator_epoch,
                found,
            });
        }
        Ok(())
    }

    /// Records an appended batch (`base_offset` is its assigned first offset; `marker` the
    /// ABORT/COMMIT record of a control batch). Batches without a producer id only advance the
    /// map end offset; a control batch without a marker (emptied by the cleaner, or of another
    /// type) changes nothing else, as in Kafka. Returns the transaction a marker ended, if it had
    /// data.
    pub(crate) fn update(
        &mut self,
        h: &BatchHeader,
        base_offset: i64,
        marker: Option<&ControlRecord>,
    ) -> Option<CompletedTxn> {
        let last_offset = base_offset.wrapping_add(i64::from(h.last_offset_delta()));
        self.map_end_offset = self.map_end_offset.max(last_offset.wrapping_add(1));
        let pid = h.producer_id();
        if pid < 0 {
            return None;
        }
        if h.is_control() {
            let coordinator_epoch = marker?.coordinator_epoch?;
            let aborted = marker.is_some_and(ControlRecord::is_abort);
            return self.end_txn(h, base_offset, coordinator_epoch, aborted);
        }
        let p = self.producers.entry(pid).or_insert_with(Producer::new);
        if h.producer_epoch() != p.epoch {
            p.batches.clear();
            p.epoch = h.producer_epoch();
        }
        p.last_timestamp = h.max_timestamp();
        if h.is_transactional() && p.txn_first_offset < 0 {
            p.txn_first_offset = base_offset;
            self.txns.lock().begin(pid, p.epoch, base_offset);
        }
        if h.base_sequence() >= 0 {
            p.batches.push_back(BatchMeta {
                last_seq: h.last_sequence(),
                last_offset,
                offset_delta: h.last_offset_delta(),
                timestamp: h.max_timestamp(),
            });
            while p.batches.len() > MAX_CACHED_BATCHES {
                p.batches.pop_front();
            }
        }
        None
    }

    /// Applies an ABORT/COMMIT marker at `offset`: the producer's open transaction (if any) ends,
    /// its coordinator epoch and last timestamp are recorded.
    fn end_txn(
        &mut self,
        h: &BatchHeader,
        offset: i64,
        coordinator_epoch: i32,
        aborted: bool,
    ) -> Option<CompletedTxn> {
        let pid = h.producer_id();
        self.txns.lock().void_verifications(pid);
        let p = self.producers.entry(pid).or_insert_with(Producer::new);
        if h.producer_epoch() != p.epoch {
            p.batches.clear();
            p.epoch = h.producer_epoch();
        }
        let first = p.txn_first_offset;
        p.txn_first_offset = -1;
        p.coordinator_epoch = coordinator_epoch;
        p.last_timestamp = h.max_timestamp();
        if first < 0 {
            return None;
        }
        let mut txns = self.txns.lock();
        txns.complete(first, offset);
        Some(CompletedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: offset,
            aborted,
            last_stable_offset: txns.first_ongoing().unwrap_or(offset + 1),
        })
    }

    /// Sets the map end offset (e.g. after loading an empty log at its start offset).
    pub(crate) fn set_map_end_offset(&mut self, offset: i64) {
        self.map_end_offset = offset;
    }

    /// Producers for DescribeProducers, sorted by id.
    pub(crate) fn entries(&self) -> Vec<ProducerStateEntry> {
        let mut v: Vec<ProducerStateEntry> = self
            .producers
            .iter()
            .map(|(&id, p)| ProducerStateEntry {
                producer_id: id,
                producer_epoch: p.epoch,
                last_sequence: p.last_seq(),
                last_offset: p.batches.back().map_or(-1, |b| b.last_offset),
                last_timestamp: p.last_timestamp,
                coordinator_epoch: p.coordinator_epoch,
                current_txn_start_offset: p.txn_first_offset,
            })
            .collect();
        v.sort_by_key(|e| e.producer_id);
        v
    }

    /// Drops producers idle for `producer.id.expiration.ms` without an open transaction.
    pub(crate) fn expire(&mut self, now_ms: i64) {
        self.producers.retain(|_, p| {
            p.txn_first_offset >= 0
                || now_ms.saturating_sub(p.last_timestamp) < PRODUCER_ID_EXPIRATION_MS
        });
    }

    /// Drops all state (map end offset set to `offset`).
    pub(crate) fn reset(&mut self, offset: i64) {
        self.producers.clear();
        self.txns.lock().reset_to([]);
        self.map_end_offset = offset;
    }

    /// Writes `<map_end_offset>.snapshot` durably unless one already exists at that offset.
    pub(crate) fn take_snapshot(&mut self) -> Result<()> {
        self.write_snapshot(true).map(|_| ())
    }

    /// [`Self::take_snapshot`] without any fsync (segment roll): returns the file written, for
    /// the background flusher to fsync. A crash before then leaves a file that fails its CRC
    /// and is discarded at load, as Kafka does with a corrupt snapshot.
    pub(crate) fn take_snapshot_unsynced(&mut self) -> Result<Option<PathBuf>> {
        self.write_snapshot(false)
    }

    fn write_snapshot(&mut self, durable: bool) -> Result<Option<PathBuf>> {
        let off = self.map_end_offset;
        if self.snapshots.contains_key(&off) {
            return Ok(None);
        }
        let path = self.dir.join(snapshot_file_name(off));
        replace_file(&path, &self.encode(), durable)?;
        self.snapshots.insert(off, path.clone());
        Ok(Some(path))
    }

    /// The snapshot bytes for the current map.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort();
        let mut body = Vec::with_capacity(4 + ids.len() * ENTRY_SIZE);
        body.extend_from_slice(&(ids.len() as i32).to_be_bytes());
        for id in ids {
            let p = &self.producers[id];
            let b = p.batches.back();
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&p.epoch.to_be_bytes());
            body.extend_from_slice(&b.map_or(-1, |b| b.last_seq).to_be_bytes());
            body.extend_from_slice(&b.map_or(-1, |b| b.last_offset).to_be_bytes());
            body.extend_from_slice(&b.map_or(0, |b| b.offset_delta).to_be_bytes());
            body.extend_from_slice(&p.last_timestamp.to_be_bytes());
            body.extend_from_slice(&p.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&p.txn_first_offset.to_be_bytes());
        }
        let mut out = Vec::with_capacity(6 + body.len());
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Loads the newest valid snapshot at or below `max_offset`, deleting invalid ones and those
    /// above `max_offset`. Returns the offset loaded from (`None` = no usable snapshot).
    pub(crate) fn load_latest(&mut self, max_offset: i64, now_ms: i64) -> Result<Option<i64>> {
        let above: Vec<i64> = self
            .snapshots
            .range(max_offset + 1..)
            .map(|(o, _)| *o)
            .collect();
        for o in above {
            self.delete_snapshot(o)?;
        }
        while let Some((&off, path)) = self.snapshots.iter().next_back() {
            let path = path.clone();
            match fs::read(&path)
                .ctx(&path)
                .and_then(|b| decode_snapshot(&path, &b))
            {
                Ok(entries) => {
                    self.producers.clear();
                    for e in entries {
                        if e.txn_first_offset < 0
                            && now_ms.saturating_sub(e.timestamp) >= PRODUCER_ID_EXPIRATION_MS
                        {
                            continue;
                        }
                        let mut p = Producer::new();
                        p.epoch = e.epoch;
                        p.last_timestamp = e.timestamp;
                        p.coordinator_epoch = e.coordinator_epoch;
                        p.txn_first_offset = e.txn_first_offset;
                        if e.last_offset >= 0 {
                            p.batches.push_back(BatchMeta {
                                last_seq: e.last_seq,
                                last_offset: e.last_offset,
                                offset_delta: e.offset_delta,
                                timestamp: e.timestamp,
                            });
                        }
                        self.producers.insert(e.producer_id, p);
                    }
                    self.txns.lock().reset_to(
                        self.producers
                            .iter()
                            .filter(|(_, p)| p.txn_first_offset >= 0)
                            .map(|(id, p)| (*id, p.epoch, p.txn_first_offset)),
                    );
                    self.map_end_offset = off;
                    return Ok(Some(off));
                }
                Err(err) => {
                    tracing::warn!(%err, "deleting unreadable producer snapshot");
                    self.delete_snapshot(off)?;
                }
            }
        }
        Ok(None)
    }

    /// Deletes the snapshot file at `offset` if tracked.
    pub(crate) fn delete_snapshot(&mut self, offset: i64) -> Result<()> {
        if let Some(p) = self.snapshots.remove(&offset) {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(&p, e)),
            }
        }
        Ok(())
    }

    /// Path of the snapshot file at exactly `offset`, if tracked.
    pub(crate) fn snapshot_path(&self, offset: i64) -> Option<PathBuf> {
        self.snapshots.get(&offset).cloned()
    }

    /// Starts tracking a snapshot file written by someone else at `offset`.
    pub(crate) fn register_snapshot(&mut self, offset: i64, path: PathBuf) {
        self.snapshots.insert(offset, path);
    }

    /// An empty manager over the same dir that knows only the snapshots at or below `max_offset`
    /// (used to rebuild the state at a past offset without touching this one).
    pub(crate) fn fork_below(&self, max_offset: i64) -> ProducerStateManager {
        ProducerStateManager {
            dir: self.dir.clone(),
            producers: HashMap::new(),
            map_end_offset: 0,
            snapshots: self
                .snapshots
                .range(..=max_offset)
                .map(|(o, p)| (*o, p.clone()))
                .collect(),
            txns: Arc::default(),
        }
    }

    /// Forgets the snapshot at `offset` and returns its path (the caller renames it `.deleted`).
    pub(crate) fn detach_snapshot(&mut self, offset: i64) -> Option<PathBuf> {
        self.snapshots.remove(&offset)
    }

    /// Deletes snapshots whose offset is not in `keep` except the largest one above all of them.
    pub(crate) fn delete_strays(&mut self, segment_bases: &[i64]) -> Result<()> {
        let max_base = segment_bases.iter().copied().max().unwrap_or(i64::MIN);
        let largest = self.snapshots.keys().next_back().copied();
        let strays: Vec<i64> = self
            .snapshots
            .keys()
            .copied()
            .filter(|o| {
                let keep_largest = Some(*o) == largest && *o > max_base;
                !(segment_bases.contains(o) || keep_largest)
            })
            .collect();
        for o in strays {
            self.delete_snapshot(o)?;
        }
        Ok(())
    }
}

/// One decoded snapshot entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotEntry {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) last_seq: i32,
    pub(crate) last_offset: i64,
    pub(crate) offset_delta: i32,
    pub(crate) timestamp: i64,
    pub(crate) coordinator_epoch: i32,
    pub(crate) txn_first_offset: i64,
}

fn be<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

/// Parses a snapshot file (version 1, CRC-32C over bytes `[6, EOF)`).
pub(crate) fn decode_snapshot(path: &Path, b: &[u8]) -> Result<Vec<SnapshotEntry>> {
    if b.len() < 10 {
        return Err(LogError::corrupt(
            path,
            "snapshot shorter than its 10-byte header",
        ));
    }
    let version = i16::from_be_bytes(be(b, 0));
    if version != SNAPSHOT_VERSION {
        return Err(LogError::corrupt(
            path,
            format!("unsupported snapshot version {version}"),
        ));
    }
    let crc = u32::from_be_bytes(be(b, 2));
    let actual = crc32c::crc32c(&b[6..]);
    if crc != actual {
        return Err(LogError::corrupt(
            path,
            format!("snapshot CRC {crc:#010x} != computed {actual:#010x}"),
        ));
    }
    let count = i32::from_be_bytes(be(b, 6));
    let count =
        usize::try_from(count).map_err(|_| LogError::corrupt(path, "negative entry count"))?;
    if b.len() != 10 + count * ENTRY_SIZE {
        return Err(LogError::corrupt(
            path,
            format!("{count} entries do not match file size {}", b.len()),
        ));
    }
    Ok(b[10..]
        .chunks_exact(ENTRY_SIZE)
        .map(|e| SnapshotEntry {
            producer_id: i64::from_be_bytes(be(e, 0)),
            epoch: i16::from_be_bytes(be(e, 8)),
            last_seq: i32::from_be_bytes(be(e, 10)),
            last_offset: i64::from_be_bytes(be(e, 14)),
            offset_delta: i32::from_be_bytes(be(e, 22)),
            timestamp: i64::from_be_bytes(be(e, 26)),
            coordinator_epoch: i32::from_be_bytes(be(e, 34)),
            txn_first_offset: i64::from_be_bytes(be(e, 38)),
        })
        .collect())
}

#[cfg(test)]
#[path = "producer_state_test.rs"]
mod tests;
