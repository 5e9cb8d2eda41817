//! Reads of tiered data for Fetch and ListOffsets.
//!
//! A remote read starts at the finished segment holding the offset and, unlike Kafka, continues
//! into the following segments while the byte budget lasts; the pieces come back as separate
//! `Bytes` chunks that the Fetch writer chains without copying. Read-ahead is told the next
//! segment so a sequential consumer never waits at a segment boundary.

use super::Tiering;
use crate::topic_metrics::Meter;
use bytes::Bytes;
use shale_protocol::record_batch::batches;
use shale_rlmm::RemoteLogSegmentState::CopySegmentFinished;
use shale_rlmm::{RemoteLogSegmentMetadata, TopicIdPartition};
use std::sync::atomic::{AtomicU64, Ordering};

/// Remote-read counters kept broker-wide only (the RemoteFetch* meters are per topic, in
/// [`crate::topic_metrics`]).
#[derive(Debug, Default)]
pub struct FetchStats {
    /// DelayedRemoteFetchMetrics ExpiresPerSec: reads that outlived `remote.fetch.max.wait.ms`.
    pub expired: AtomicU64,
}

/// Why a remote read produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum RemoteReadError {
    /// No finished remote segment holds the offset (it expired, or is not uploaded yet).
    #[error("no remote segment holds offset {0}")]
    NotFound(i64),
    /// The fetch rate limit is exhausted; the client retries.
    #[error("remote fetch quota exhausted")]
    Throttled,
    /// The object store or the remote data failed.
    #[error("remote read failed: {0}")]
    Storage(#[from] shale_remote_log::RemoteLogError),
}

/// The offset after the last whole batch in `bytes`.
fn next_offset_after(bytes: &Bytes) -> Option<i64> {
    batches(bytes.clone())
        .map_while(Result::ok)
        .last()
        .map(|b| b.next_offset())
}

impl Tiering {
    /// Finished remote segments of a partition, oldest first.
    pub fn finished_segments(&self, tp: &TopicIdPartition) -> Vec<RemoteLogSegmentMetadata> {
        let Some(active) = self.active() else {
            return Vec::new(); // nothing was ever tiered on this broker
        };
        let mut segments: Vec<_> = active
            .rlmm
            .list_remote_log_segments(tp)
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.state == CopySegmentFinished)
            .collect();
        segments.sort_by_key(|m| m.start_offset);
        segments
    }

    /// Reads `tp`'s metadata forward (starting the metadata manager if it is not yet).
    async fn catch_up_partition(&self, tp: &TopicIdPartition) {
        let rlmm = match self.activate().await {
            Ok(active) => active.rlmm.clone(),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "remote log metadata not loaded");
                return;
            }
        };
        let tp = tp.clone();
        match shale_common::blocking::spawn(move || rlmm.catch_up(&[tp])).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot read remote log metadata forward"),
            Err(e) => tracing::error!(error = %e, "reading remote log metadata forward panicked"),
        }
    }

    /// The highest offset in remote storage (-1 when nothing is copied), for ListOffsets -5.
    pub fn highest_remote_offset(&self, tp: &TopicIdPartition) -> i64 {
        self.finished_segments(tp)
            .iter()
            .map(|m| m.end_offset)
            .max()
            .unwrap_or(-1)
    }

    /// Whole batches from the one holding `offset`, up to `max_bytes` (one batch at least when
    /// `min_one`), continuing across segment boundaries.
    pub async fn read(
        &self,
        tp: &TopicIdPartition,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<Vec<Bytes>, RemoteReadError> {
        if !self.fetch_quota.try_acquire(0) {
            return Err(RemoteReadError::Throttled);
        }
        let topic = self.topic_metrics.topic(&tp.topic);
        let count = |meter, n| self.topic_metrics.record(topic.as_deref(), meter, n);
        count(Meter::RemoteFetchRequests, 1);
        let holding = |segments: &[RemoteLogSegmentMetadata]| {
            segments
                .iter()
                .position(|m| m.start_offset <= offset && offset <= m.end_offset)
        };
        let mut segments = self.finished_segments(tp);
        if holding(&segments).is_none() {
            // A leader since moments ago may not have read what its predecessor published.
            self.catch_up_partition(tp).await;
            segments = self.finished_segments(tp);
        }
        let mut i = holding(&segments).ok_or(RemoteReadError::NotFound(offset))?;
        let (mut chunks, mut total, mut next_offset) = (Vec::new(), 0usize, offset);
        while i < segments.len() && total < max_bytes {
            let meta = &segments[i];
            let next = segments.get(i + 1);
            let read = self
                .reader
                .read_with_next(
                    meta,
                    next,
                    next_offset,
                    max_bytes - total,
                    min_one && total == 0,
                )
                .await;
            let bytes = match read {
                Ok(b) => b,
                Err(e) => {
                    count(Meter::RemoteFetchErrors, 1);
                    if total > 0 {
                        break; // serve what was read; the next fetch retries the rest
                    }
                    return Err(RemoteReadError::Storage(e));
                }
            };
            if bytes.is_empty() {
                break;
            }
            total += bytes.len();
            // Continue only when this read reached the segment's last offset (a read may stop
            // early: at the byte budget, or with what is cached) and the next segment starts
            // right after it; anything else would skip offsets.
            let reached_end = next_offset_after(&bytes).is_some_and(|o| o > meta.end_offset);
            chunks.push(bytes);
            match next {
                Some(n) if reached_end && n.start_offset == meta.end_offset + 1 => {
                    next_offset = n.start_offset
                }
                _ => break,
            }
            i += 1;
        }
        count(Meter::RemoteFetchBytes, total as u64);
        self.fetch_quota.try_acquire(total as u64);
        Ok(chunks)
    }

    /// The aborted transactions a read_committed consumer needs for remote records
    /// `[start, upper)` of `tp`: the transaction indexes of the remote segments those records
    /// span (cached with the other indexes; a segment uploaded without one has none), as
    /// Kafka's remote fetch collects them. An index that cannot be read is an error: serving the
    /// records without it would show aborted data.
    pub async fn aborted_transactions(
        &self,
        tp: &TopicIdPartition,
        start: i64,
        upper: i64,
    ) -> Result<Vec<shale_local_log::AbortedTxn>, RemoteReadError> {
        let mut out = Vec::new();
        let segments = self.finished_segments(tp);
        for meta in segments
            .iter()
            .filter(|m| m.end_offset >= start && m.start_offset < upper)
        {
            let cache = self.reader.index_cache();
            let kind = shale_remote_log::IndexType::Transaction;
            let bytes = match cache.get(meta, kind).await {
                Ok(b) => b,
                Err(e) if e.is_not_found() => {
                    // No aborted transaction in the segment: remember that, no GET next time.
                    cache.insert(meta.id.id, kind, Bytes::new()).await;
                    continue;
                }
                Err(e) => return Err(RemoteReadError::Storage(e)),
            };
            out.extend(
                shale_local_log::parse_txn_index(&bytes)
                    .into_iter()
                    .filter(|a| a.last_offset >= start && a.first_offset < upper),
            );
        }
        Ok(out)
    }

    /// The first remote record with timestamp ≥ `ts` at or after `log_start`: (offset, timestamp).
    pub async fn offset_for_timestamp(
        &self,
        tp: &TopicIdPartition,
        ts: i64,
        log_start: i64,
    ) -> Result<Option<(i64, i64)>, RemoteReadError> {
        for meta in self.finished_segments(tp) {
            if meta.end_offset < log_start || meta.max_timestamp_ms < ts {
                continue;
            }
            let found = self
                .reader
                .offset_for_timestamp(&meta, ts)
                .await
                .map_err(RemoteReadError::Storage)?;
            if let Some((offset, timestamp)) = found.filter(|(o, _)| *o >= log_start) {
                return Ok(Some((offset, timestamp)));
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp in remote storage (first one if tied), for
    /// ListOffsets -3 over tiered data too (Kafka only searches local segments).
    pub async fn max_timestamp(
        &self,
        tp: &TopicIdPartition,
        log_start: i64,
    ) -> Result<Option<(i64, i64)>, RemoteReadError> {
        let best = self
            .finished_segments(tp)
            .into_iter()
            .filter(|m| m.end_offset >= log_start)
            .max_by_key(|m| (m.max_timestamp_ms, std::cmp::Reverse(m.start_offset)));
        match best {
            Some(m) => {
                self.offset_for_timestamp(tp, m.max_timestamp_ms, log_start)
                    .await
            }
            None => Ok(None),
        }
    }

    /// Counts a remote read that outlived the fetch's wait (it goes on to fill the cache).
    pub fn note_expired(&self) {
        self.fetch_stats.expired.fetch_add(1, Ordering::Relaxed);
    }
}
