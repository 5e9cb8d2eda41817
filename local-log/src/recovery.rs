//! Loading a partition directory (formats.md §5.1): cleanup of temporary files, opening segments,
//! crash recovery from the recovery point after an unclean stop (re-validation, truncation of a
//! torn tail, deletion of later segments, index rebuild, leader-epoch rebuild, `.txnindex` rebuild),
//! and rebuilding the producer state (with the open transactions) from the newest snapshot plus a
//! replay of the batches after it.
//!
//! A recovered segment's `.txnindex` needs the producer state at each ABORT marker (its entry's
//! last stable offset is the earliest other open transaction), so, as Kafka's `recoverSegment`,
//! each recovered segment is replayed through a producer state rebuilt up to its base offset
//! (a fork that only reads snapshots: it never writes one).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shale_common::TopicPartition;
use shale_protocol::record_batch::RecordBatch;

use crate::config::LogConfig;
use crate::epoch_cache::EpochCache;
use crate::error::{IoContext, LogError, Result};
use crate::files::OpenFiles;
use crate::log::{LogOpenOptions, TimestampOffset};
use crate::producer_state::ProducerStateManager;
use crate::segment::{file_name, Segment};
use crate::transactions::end_txn_marker_of;

/// What `load` produces for `Log::open`.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) segments: Vec<Arc<Segment>>,
    pub(crate) producers: ProducerStateManager,
    pub(crate) epochs: EpochCache,
    pub(crate) log_start_offset: i64,
    pub(crate) log_end_offset: i64,
    pub(crate) recovery_point: i64,
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io(path, e)),
    }
}

/// Deletes leftovers (`.cleaned`, `.swap`, `.tmp`, orphan indexes) and returns the base offsets
/// of the `.log` files, and the `.deleted` files (for the background deleter).
fn clean_dir(dir: &Path) -> Result<(Vec<i64>, Vec<PathBuf>)> {
    let mut logs = BTreeSet::new();
    let mut indexes = Vec::new();
    let mut deleted = Vec::new();
    for e in fs::read_dir(dir).ctx(dir)? {
        let e = e.ctx(dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name.ends_with(".deleted") {
            deleted.push(path);
            continue;
        }
        if [".cleaned", ".swap", ".tmp"]
            .iter()
            .any(|s| name.ends_with(s))
        {
            remove(&path)?;
            continue;
        }
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let Some(base) = stem.parse::<i64>().ok().filter(|b| *b >= 0) else {
            continue;
        };
        match ext {
            "log" => {
                logs.insert(base);
            }
            "index" | "timeindex" | "txnindex" => indexes.push((base, path)),
            _ => {}
        }
    }
    for (base, path) in indexes {
        if !logs.contains(&base) {
            remove(&path)?;
        }
    }
    Ok((logs.into_iter().collect(), deleted))
}

fn delete_segment_files(seg: &Segment) -> Result<()> {
    seg.delete_files()
}

/// Loads or recovers the log in `dir`.
pub(crate) fn load(
    files: &OpenFiles,
    dir: &Path,
    tp: &TopicPartition,
    config: &LogConfig,
    opts: &LogOpenOptions,
    now_ms: i64,
) -> Result<Loaded> {
    crate::swap::complete_swaps(dir)?;
    let (bases, leftovers) = clean_dir(dir)?;
    crate::deleter::delete_later(leftovers);
    let mut segments = Vec::with_capacity(bases.len());
    let mut needs_recovery = Vec::with_capacity(bases.len());
    for base in bases {
        let (seg, missing) = Segment::open(files, dir, base, config, now_ms)?;
        segments.push(Arc::new(seg));
        needs_recovery.push(missing);
    }
    let mut epochs = EpochCache::load(dir)?;
    epochs.ensure_file()?;
    recover_segments(
        dir,
        tp,
        config,
        opts,
        &mut segments,
        &needs_recovery,
        &mut epochs,
        now_ms,
    )?;
    let mut log_end = segments
        .last()
        .map_or(opts.log_start_offset, |s| s.next_offset());
    if opts.log_start_offset > log_end {
        for s in segments.drain(..) {
            delete_segment_files(&s)?;
        }
        epochs.clear()?;
    }
    if segments.is_empty() {
        log_end = opts.log_start_offset.max(0);
        segments.push(Arc::new(Segment::create(
            files, dir, log_end, config, now_ms,
        )?));
    }
    settle(&segments, config)?;
    // Tiered logs keep a log start below the first local segment (remote data, invariant 5).
    let log_start = if crate::tiering::is_tiered(tp, config) {
        opts.log_start_offset.max(0)
    } else {
        opts.log_start_offset.max(segments[0].base_offset)
    };
    epochs.truncate_from_end(log_end)?;
    epochs.truncate_from_start(log_start)?;
    let recovery_point = if opts.had_clean_shutdown {
        log_end
    } else {
        opts.recovery_point.min(log_end)
    };
    let producers = load_producer_state(
        dir,
        &segments,
        log_start,
        log_end,
        opts.had_clean_shutdown,
        now_ms,
    )?;
    Ok(Loaded {
        segments,
        producers,
        epochs,
        log_start_offset: log_start,
        log_end_offset: log_end,
        recovery_point,
    })
}

/// Inactive segments closed with their indexes out of memory until their first read (a start-up
/// leaves one descriptor per partition open), the last one active.
fn settle(segments: &[Arc<Segment>], config: &LogConfig) -> Result<()> {
    let Some((active, inactive)) = segments.split_last() else {
        return Ok(());
    };
    for s in inactive {
        s.unload_indexes(crate::segment::Fsync::Now)?;
        s.release();
    }
    active.activate(config.segment_index_bytes)
}

/// Re-validates the segments from the recovery point on (all of them after an unclean stop's
/// recovery point, only `needs_recovery` ones after a clean stop), rebuilding their indexes and
/// the leader-epoch cache and the `.txnindex`; a truncated corrupt tail deletes every later
/// segment.
#[allow(clippy::too_many_arguments)]
fn recover_segments(
    dir: &Path,
    tp: &TopicPartition,
    config: &LogConfig,
    opts: &LogOpenOptions,
    segments: &mut Vec<Arc<Segment>>,
    needs_recovery: &[bool],
    epochs: &mut EpochCache,
    now_ms: i64,
) -> Result<()> {
    let recover_from = if opts.had_clean_shutdown {
        segments.len()
    } else {
        segments
            .partition_point(|s| s.base_offset <= opts.recovery_point)
            .saturating_sub(1)
    };
    // The producer state after the previously recovered segment: where the next one starts
    // when it follows directly (recovery usually covers a run of trailing segments).
    let mut carried: Option<(usize, ProducerStateManager)> = None;
    let mut i = 0;
    while i < segments.len() {
        if i >= recover_from || needs_recovery[i] {
            let seg = &segments[i];
            let mut pm = match carried.take() {
                Some((prev, pm)) if prev + 1 == i => pm,
                _ => producer_state_at(dir, &segments[..i], seg.base_offset, now_ms)?,
            };
            let truncated = recover_segment(seg, config, epochs, &mut pm)?;
            carried = Some((i, pm));
            if truncated > 0 {
                tracing::warn!(%tp, base = seg.base_offset, truncated, "truncated corrupt log tail");
                for later in segments.drain(i + 1..) {
                    delete_segment_files(&later)?;
                }
            }
        }
        i += 1;
    }
    Ok(())
}

/// Recovers one segment, replaying its batches through the leader-epoch cache and `pm` (the
/// producer state at its base offset), which rebuilds its `.txnindex`. Returns the bytes cut.
fn recover_segment(
    seg: &Segment,
    config: &LogConfig,
    epochs: &mut EpochCache,
    pm: &mut ProducerStateManager,
) -> Result<u64> {
    let mut on_batch = |b: &RecordBatch| -> Result<()> {
        let e = b.partition_leader_epoch();
        if e >= 0 && epochs.latest_epoch().is_none_or(|l| e > l) {
            epochs.assign(e, b.base_offset())?;
        }
        let marker = end_txn_marker_of(b);
        let done = pm.update(&b.header(), b.base_offset(), marker.as_ref());
        if let Some(t) = done.filter(|t| t.aborted) {
            seg.append_aborted_txn(t.aborted_txn())?;
        }
        Ok(())
    };
    seg.recover(config.index_interval_bytes, &mut on_batch)
}

/// §5.1 step 7: snapshot + replay, ending with a snapshot at LEO.
fn load_producer_state(
    dir: &Path,
    segments: &[Arc<Segment>],
    log_start: i64,
    log_end: i64,
    clean: bool,
    now_ms: i64,
) -> Result<ProducerStateManager> {
    let mut pm = ProducerStateManager::new(dir)?;
    let bases: Vec<i64> = segments.iter().map(|s| s.base_offset).collect();
    pm.delete_strays(&bases)?;
    if segments.iter().all(|s| s.size() == 0) && pm.snapshot_offsets().is_empty() {
        // A brand-new (or emptied) log: nothing to remember, no snapshot file (as Kafka).
        pm.reset(log_end);
        return Ok(pm);
    }
    if pm.snapshot_offsets().is_empty() && clean {
        for &b in bases.iter().rev().take(2).rev() {
            pm.set_map_end_offset(b);
            pm.take_snapshot()?;
        }
    } else {
        rebuild_producer_state(&mut pm, segments, log_start, log_end, now_ms)?;
    }
    pm.set_map_end_offset(log_end);
    pm.take_snapshot()?;
    Ok(pm)
}

/// Loads the newest snapshot <= `log_end` and replays batches from there to `log_end`, taking
/// snapshots at the bases of the last two segments on the way.
pub(crate) fn rebuild_producer_state(
    pm: &mut ProducerStateManager,
    segments: &[Arc<Segment>],
    log_start: i64,
    log_end: i64,
    now_ms: i64,
) -> Result<()> {
    let from = match pm.load_latest(log_end, now_ms)? {
        Some(o) => o,
        None => {
            pm.reset(log_start);
            log_start
        }
    };
    let n = segments.len();
    for (i, seg) in segments.iter().enumerate() {
        if seg.next_offset() <= from {
            continue;
        }
        if i + 2 >= n && seg.base_offset > from {
            pm.set_map_end_offset(seg.base_offset);
            pm.take_snapshot()?;
        }
        replay_segment(pm, seg, from, log_end)?;
    }
    Ok(())
}

/// Applies the batches of `seg` with offsets in `[from, to)` to `pm` (stopping at an invalid
/// one, which recovery has cut off).
fn replay_segment(pm: &mut ProducerStateManager, seg: &Segment, from: i64, to: i64) -> Result<()> {
    let (_, pos) = seg.offset_lookup(from)?;
    let mut it = seg.batches_from(u64::from(pos));
    while let Some((_, item)) = it.next_batch()? {
        let Ok(batch) = item else { break };
        if batch.last_offset() < from {
            continue;
        }
        if batch.base_offset() >= to {
            break;
        }
        let marker = end_txn_marker_of(&batch);
        pm.update(&batch.header(), batch.base_offset(), marker.as_ref());
    }
    Ok(())
}

/// The producer state just below `offset`, for recovering the segment based there: the newest
/// snapshot at or below it plus a replay of `earlier` (the segments before). It never writes a
/// snapshot (an unreadable one is deleted, as by any load).
fn producer_state_at(
    dir: &Path,
    earlier: &[Arc<Segment>],
    offset: i64,
    now_ms: i64,
) -> Result<ProducerStateManager> {
    let mut pm = ProducerStateManager::new(dir)?.fork_below(offset);
    let start = earlier.first().map_or(offset, |s| s.base_offset);
    let from = match pm.load_latest(offset, now_ms)? {
        Some(o) => o,
        None => {
            pm.reset(start);
            start
        }
    };
    for seg in earlier.iter().filter(|s| s.next_offset() > from) {
        replay_segment(&mut pm, seg, from, offset)?;
    }
    Ok(pm)
}

/// Scans batches of `seg` from `pos` for the first record (offset in `[log_start, leo)`) whose
/// timestamp satisfies `pred`; batches whose max timestamp fails `pred` are skipped.
pub(crate) fn scan_for_timestamp(
    seg: &Segment,
    pos: u64,
    log_start: i64,
    leo: i64,
    pred: impl Fn(i64) -> bool,
) -> Result<Option<TimestampOffset>> {
    let path = seg.log_path();
    let mut it = seg.batches_from(pos);
    while let Some((_, item)) = it.next_batch()? {
        let batch = item.map_err(|e| LogError::corrupt(&path, e.to_string()))?;
        if batch.base_offset() >= leo {
            break;
        }
        if batch.last_offset() < log_start || !pred(batch.max_timestamp()) {
            continue;
        }
        let mut found = None;
        let epoch = batch.partition_leader_epoch();
        batch
            .for_each_record(|r| {
                let off = batch.base_offset() + i64::from(r.offset_delta);
                let t = batch.record_timestamp(r);
                if found.is_none() && off >= log_start && pred(t) {
                    found = Some(TimestampOffset {
                        timestamp: t,
                        offset: off,
                        leader_epoch: (epoch >= 0).then_some(epoch),
                    });
                }
                Ok(())
            })
            .map_err(|e| LogError::corrupt(&path, e.to_string()))?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Path of a segment file (used by tests and dump).
#[allow(dead_code)]
pub(crate) fn segment_file(dir: &Path, base: i64, suffix: &str) -> std::path::PathBuf {
    dir.join(file_name(base, suffix))
}
