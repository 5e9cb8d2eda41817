//! Tiered-storage hooks of a [`Log`] (kip-405.md §0, §2.2, §4.2, §4.5): the local log start
//! offset, the in-memory highest offset in remote storage, which topics can be tiered, the
//! rolled segments eligible for upload ([`SegmentForCopy`]) and raising the log start offset from
//! the remote side. Local retention of tiered logs lives in `retention.rs`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use shale_common::TopicPartition;

use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::log::Log;
use crate::producer_state::{snapshot_file_name, ProducerStateManager};
use crate::segment::{file_name, Segment};

/// Topics never tiered even with `remote.storage.enable=true` (UnifiedLog `isRemoteLogEnabled`).
pub const NEVER_TIERED_TOPICS: &[&str] = &[
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
    "__remote_log_metadata",
    "__cluster_metadata",
];

/// Whether a log of `tp` with `config` is tiered: remote storage on, not compacted, not internal.
pub(crate) fn is_tiered(tp: &TopicPartition, config: &LogConfig) -> bool {
    config.remote_storage_enable
        && !config.cleanup_policy.compact
        && !NEVER_TIERED_TOPICS.contains(&tp.topic.as_ref())
}

/// A rolled segment ready to be uploaded, with everything kip-405 §2.2 `LogSegmentData` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentForCopy {
    /// Base offset (first offset) of the segment.
    pub base_offset: i64,
    /// Last offset covered: next segment's base - 1.
    pub end_offset: i64,
    /// Size of the `.log` file.
    pub size_bytes: u64,
    /// Largest record timestamp (or the file mtime if it has no timestamp).
    pub largest_timestamp: i64,
    /// The `.log` file.
    pub log_path: PathBuf,
    /// The `.index` file (trimmed to its entries).
    pub offset_index_path: PathBuf,
    /// The `.timeindex` file (trimmed, with its final entry).
    pub time_index_path: PathBuf,
    /// The `.txnindex` file, if one exists.
    pub txn_index_path: Option<PathBuf>,
    /// The producer snapshot at the next segment's base offset.
    pub producer_snapshot_path: Option<PathBuf>,
    /// Leader epochs in effect for `[base, next base)`, the first clipped up to `base_offset`.
    pub leader_epochs: Vec<(i32, i64)>,
    /// Leader-epoch checkpoint text (kip-405 §2.7) of every epoch starting below next base.
    pub leader_epoch_checkpoint: Bytes,
}

/// Epochs in effect for `[base, next_base)`: the entry covering `base` (clipped up to it) and
/// those starting inside the range.
pub(crate) fn epochs_in_range(
    entries: &[(i32, i64)],
    base: i64,
    next_base: i64,
) -> Vec<(i32, i64)> {
    let mut out = Vec::new();
    for (i, &(epoch, start)) in entries.iter().enumerate() {
        if start >= next_base {
            break;
        }
        let next_start = entries.get(i + 1).map_or(i64::MAX, |e| e.1);
        if next_start <= base {
            continue;
        }
        out.push((epoch, start.max(base)));
    }
    out
}

/// Leader-epoch checkpoint bytes (version 0) of the entries starting below `next_base`.
pub(crate) fn epoch_checkpoint_bytes(entries: &[(i32, i64)], next_base: i64) -> Bytes {
    let kept: Vec<&(i32, i64)> = entries.iter().filter(|e| e.1 < next_base).collect();
    let mut s = format!("0\n{}\n", kept.len());
    for (e, o) in kept {
        s.push_str(&format!("{e} {o}\n"));
    }
    Bytes::from(s)
}

impl Log {
    /// Whether this log is tiered (`remote.storage.enable`, not compacted, not internal).
    pub fn is_tiered(&self) -> bool {
        is_tiered(&self.tp, &self.config.read())
    }

    /// Tiered with `remote.log.copy.disable=false`: local retention only deletes copied data.
    pub(crate) fn is_tiered_and_copy_enabled(&self) -> bool {
        let c = self.config.read();
        is_tiered(&self.tp, &c) && !c.remote_log_copy_disable
    }

    /// First offset held locally: `max(log start, base of the first local segment)`.
    pub fn local_log_start_offset(&self) -> i64 {
        self.log_start_offset()
            .max(self.first_segment_base_offset())
    }

    /// Last offset known to be in remote storage (-1 = none). In memory only.
    pub fn highest_offset_in_remote_storage(&self) -> i64 {
        self.highest_remote_offset.load(Ordering::Acquire)
    }

    /// Records that everything up to `offset` is in remote storage. Only ever raises the value
    /// (as Kafka's `updateHighestOffsetInRemoteStorage`); see
    /// [`Log::reset_highest_offset_in_remote_storage`].
    pub fn set_highest_offset_in_remote_storage(&self, offset: i64) {
        self.highest_remote_offset
            .fetch_max(offset.max(-1), Ordering::AcqRel);
    }

    /// Forgets what is in remote storage (-1), e.g. after tiering was disabled.
    pub fn reset_highest_offset_in_remote_storage(&self) {
        self.highest_remote_offset.store(-1, Ordering::Release);
    }

    /// Rolled segments (never the active one) whose next segment's base is <= `last_stable_offset`
    /// and <= the log's own [`Log::last_stable_offset`] (so no offered segment reaches the LSO:
    /// the broker must keep [`Log::set_high_watermark`] current), and whose end offset is >= `from_offset`, oldest first (kip-405 §4.2). A missing producer
    /// snapshot at the next base is rebuilt and written first, without holding the append lock.
    /// Blocking (file I/O): call it off the async runtime.
    pub fn segments_to_copy(
        &self,
        from_offset: i64,
        last_stable_offset: i64,
    ) -> Result<Vec<SegmentForCopy>> {
        shale_common::blocking::check("Log::segments_to_copy");
        drop(self.lock_open()?); // a closed log answers with its error
        let segs = self.segments_snapshot();
        let entries = self.epoch_entries();
        let dir = self.dir();
        // Never past the log's own last stable offset: no open or unreplicated transaction and
        // nothing above the high watermark goes to the remote tier.
        let last_stable_offset = last_stable_offset.min(self.last_stable_offset());
        let mut out = Vec::new();
        for pair in segs.windows(2) {
            let (seg, next) = (&pair[0], &pair[1]);
            if next.base_offset > last_stable_offset {
                break;
            }
            let end_offset = next.base_offset - 1;
            if end_offset < from_offset {
                continue;
            }
            let snapshot = self.snapshot_at(&segs, next.base_offset)?;
            let (offset_index_path, time_index_path) = {
                let st = seg.state.lock();
                (
                    st.offset_index.path().to_path_buf(),
                    st.time_index.path().to_path_buf(),
                )
            };
            let txn = dir.join(file_name(seg.base_offset, ".txnindex"));
            out.push(SegmentForCopy {
                base_offset: seg.base_offset,
                end_offset,
                size_bytes: seg.size(),
                largest_timestamp: seg.largest_timestamp(),
                log_path: seg.log_path(),
                offset_index_path,
                time_index_path,
                txn_index_path: txn.exists().then_some(txn),
                producer_snapshot_path: Some(snapshot),
                leader_epochs: epochs_in_range(&entries, seg.base_offset, next.base_offset),
                leader_epoch_checkpoint: epoch_checkpoint_bytes(&entries, next.base_offset),
            });
        }
        Ok(out)
    }

    /// The producer snapshot file at `offset`, rebuilding it from older snapshots and a replay of
    /// the batches below `offset` when missing (Kafka takes one at every roll). The append lock is
    /// held only to look the snapshot up, to fork the producer state and to register the result:
    /// the replay reads rolled segments below `offset`, which appends never change.
    fn snapshot_at(&self, segs: &[Arc<Segment>], offset: i64) -> Result<PathBuf> {
        let mut fork: ProducerStateManager = {
            let inner = self.lock_open()?;
            if let Some(p) = inner.producers.snapshot_path(offset) {
                if p.exists() {
                    return Ok(p);
                }
            }
            inner.producers.fork_below(offset)
        };
        let now = self.clock.now_ms();
        let from = match fork.load_latest(offset, now)? {
            Some(o) => o,
            None => {
                fork.reset(self.log_start_offset());
                self.log_start_offset()
            }
        };
        for seg in segs {
            if seg.next_offset() <= from || seg.base_offset >= offset {
                continue;
            }
            let (_, pos) = seg.offset_lookup(from)?;
            let mut it = seg.batches_from(u64::from(pos));
            while let Some((_, item)) = it.next_batch()? {
                let batch = item.map_err(|e| LogError::corrupt(seg.log_path(), e.to_string()))?;
                if batch.base_offset() >= offset {
                    break;
                }
                if batch.last_offset() >= from {
                    let marker = crate::transactions::end_txn_marker_of(&batch);
                    fork.update(&batch.header(), batch.base_offset(), marker.as_ref());
                }
            }
        }
        fork.set_map_end_offset(offset);
        let path = self.dir().join(snapshot_file_name(offset));
        crate::checkpoint::write_atomic(&path, &fork.encode())?;
        self.lock_open()?
            .producers
            .register_snapshot(offset, path.clone());
        Ok(path)
    }

    /// Raises the log start offset to `offset` (never lowers it; error above LEO), truncates the
    /// leader-epoch cache from the start and deletes local segments wholly below it. Used by remote
    /// expiration and DeleteRecords; `offset` may be below the local log start (remote range).
    /// Returns the log start offset afterwards.
    pub fn advance_log_start_offset(&self, offset: i64) -> Result<i64> {
        shale_common::blocking::check("Log::advance_log_start_offset");
        let mut inner = self.lock_open()?;
        let leo = self.log_end_offset();
        if offset > leo {
            return Err(LogError::OffsetOutOfRange {
                tp: self.tp.clone(),
                offset,
                log_start: self.log_start_offset(),
                log_end: leo,
            });
        }
        if offset > self.log_start_offset() {
            self.log_start_offset.store(offset, Ordering::Release);
            self.epochs.lock().truncate_from_start(offset)?;
            let (doomed, _) =
                self.deletable(|_, next| next.is_some_and(|n| n.base_offset <= offset));
            self.delete_prefix(&mut inner, doomed, true)?;
        }
        Ok(self.log_start_offset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_ranges_clip_and_checkpoint_text() {
        let e = [(0, 0), (2, 10), (4, 20), (5, 30)];
        assert_eq!(epochs_in_range(&e, 12, 25), vec![(2, 12), (4, 20)]);
        assert_eq!(epochs_in_range(&e, 20, 30), vec![(4, 20)]);
        assert_eq!(epochs_in_range(&e, 0, 10), vec![(0, 0)]);
        assert_eq!(epochs_in_range(&e, 35, 40), vec![(5, 35)]);
        assert_eq!(
            &epoch_checkpoint_bytes(&e, 25)[..],
            b"0\n3\n0 0\n2 10\n4 20\n"
        );
        assert_eq!(&epoch_checkpoint_bytes(&[], 25)[..], b"0\n0\n");
    }

    #[test]
    fn internal_and_compacted_topics_are_never_tiered() {
        let mut c = LogConfig {
            remote_storage_enable: true,
            ..LogConfig::default()
        };
        assert!(is_tiered(&TopicPartition::new("t", 0), &c));
        for t in NEVER_TIERED_TOPICS {
            assert!(!is_tiered(&TopicPartition::new(*t, 0), &c));
        }
        c.cleanup_policy.compact = true;
        assert!(!is_tiered(&TopicPartition::new("t", 0), &c));
    }
}
