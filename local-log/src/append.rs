//! The append path of [`Log`]: validation (formats.md §1.5), `compression.type`, offset assignment
//! by patching only the 61-byte header (§1.6–1.8), producer-state checks (§4.4), roll, vectored
//! write, indexing and flush policy.
//!
//! A client batch is decompressed at most once, before the append lock: its records are
//! validated from that payload, and when Kafka's LogValidator would not assign offsets in place
//! (the topic's `compression.type` names another codec than the batch's, or a compressed batch's
//! offset deltas are not 0, 1, 2, …; `producer` keeps the batch's codec) the batch is rebuilt from
//! it with the target codec and level ([`shale_protocol::rebuild`]). Otherwise records are never
//! re-encoded: the header copy is patched (base offset, leader epoch, and for LogAppendTime or a
//! wrong max timestamp the timestamp fields + CRC) and written together with the untouched body
//! `Bytes` in one vectored write. Uncompressed batches are validated in place (borrowed record
//! views: no per-record allocation or refcounting).
//!
//! Coordinator batches (`AppendOrigin::Coordinator`) are transaction markers — one ABORT/COMMIT
//! control batch — or the group coordinator's transactional offset commits (producer epoch
//! fenced, no sequence check). Markers are validated before the lock and checked against the producer state under it; every origin's
//! markers then end the producer's transaction, and an aborted one with data gets a
//! `.txnindex` entry in the segment that receives the marker (`transactions.rs`).

use std::sync::atomic::Ordering;

use bytes::Bytes;
use shale_protocol::compression::{Compression, DEFAULT_MAX_DECOMPRESSED};
use shale_protocol::rebuild::{must_rebuild, rebuild, RebuildTarget};
use shale_protocol::record::{for_each_view_in_payload, ControlRecord};
use shale_protocol::record_batch::{batches, BatchError, BatchHeader, RecordBatch, TimestampType};

use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::log::{AppendInfo, AppendOrigin, Inner, Log};
use crate::producer_state::ProducerCheck;
use crate::transactions::{end_txn_marker_in, end_txn_marker_of};

/// One batch ready to be written: patched header + original body.
struct Prepared {
    header: BatchHeader,
    body: Bytes,
}

/// What an append will write and report.
struct Plan {
    prepared: Vec<Prepared>,
    /// LEO after the append.
    next: i64,
    max_ts: i64,
    /// Last offset of the batch holding `max_ts` (the time index's "shallow" offset).
    offset_of_max: i64,
    log_append_time: i64,
    records_total: i64,
}

/// What the checks before the append lock found in a client batch.
struct Checked {
    /// Largest record timestamp.
    max_ts: i64,
    /// The batch as rebuilt for `compression.type` (module docs), when it had to be.
    rebuilt: Option<RecordBatch>,
    /// The marker of a coordinator batch.
    marker: Option<ControlRecord>,
}

/// Kafka's `BrokerCompressionType.targetCompression`: the codec a client batch written with
/// `source` is stored with, and its level (`producer` keeps the codec at its default level).
fn target_compression(config: &LogConfig, source: Compression) -> (Compression, Option<i32>) {
    let codec = match config.compression_type.as_str() {
        "uncompressed" => Compression::None,
        name => match Compression::from_name(name) {
            Some(c) => c,
            // `producer` (the config layer admits nothing else).
            None => return (source, None),
        },
    };
    let level = match codec {
        Compression::Gzip => Some(config.compression_gzip_level),
        Compression::Lz4 => Some(config.compression_lz4_level),
        Compression::Zstd => Some(config.compression_zstd_level),
        Compression::None | Compression::Snappy => None,
    };
    (codec, level)
}

/// Client batch: base offset := LEO, leader epoch stamped; for LogAppendTime (or a max timestamp
/// that does not match the records) the timestamp fields change and the CRC is recomputed.
fn plan_client(
    b: &RecordBatch,
    leader_epoch: i32,
    leo: i64,
    config: &LogConfig,
    now: i64,
    record_max: i64,
) -> Plan {
    let mut h = b.header();
    h.set_base_offset(leo);
    h.set_partition_leader_epoch(leader_epoch);
    let log_append = config.message_timestamp_type == TimestampType::LogAppendTime;
    let want = if log_append {
        (TimestampType::LogAppendTime, now)
    } else {
        (TimestampType::CreateTime, record_max)
    };
    if h.timestamp_type() != want.0 || h.max_timestamp() != want.1 {
        h.set_timestamp_type(want.0);
        h.set_max_timestamp(want.1);
        let crc = h.compute_crc(&b.body());
        h.set_crc(crc);
    }
    Plan {
        next: h.last_offset() + 1,
        max_ts: want.1,
        offset_of_max: h.last_offset(),
        log_append_time: if log_append { now } else { -1 },
        records_total: i64::from(b.record_count()),
        prepared: vec![Prepared {
            header: h,
            body: b.body(),
        }],
    }
}

/// KRaft leader batches: sequential offsets from LEO, everything else kept as written.
fn plan_raft(input: &[RecordBatch], leo: i64) -> Plan {
    let mut plan = Plan {
        prepared: Vec::with_capacity(input.len()),
        next: leo,
        max_ts: -1,
        offset_of_max: leo,
        log_append_time: -1,
        records_total: 0,
    };
    for b in input {
        let mut h = b.header();
        h.set_base_offset(plan.next);
        plan.next = h.last_offset() + 1;
        if h.max_timestamp() > plan.max_ts {
            plan.max_ts = h.max_timestamp();
            plan.offset_of_max = h.last_offset();
        }
        plan.records_total += i64::from(h.record_count());
        plan.prepared.push(Prepared {
            header: h,
            body: b.body(),
        });
    }
    plan
}

impl Log {
    /// A follower's batches: offsets as the leader wrote them, each batch after the previous
    /// one and the first at or above the log end offset (a gap is a compacted range).
    fn plan_replica(&self, input: &[RecordBatch], leo: i64) -> Result<Plan> {
        let mut plan = plan_raft(input, leo);
        let mut next = leo;
        for (p, b) in plan.prepared.iter_mut().zip(input) {
            if b.base_offset() < next {
                return Err(self.invalid(format!(
                    "replicated batch at offset {} is below the next offset {next}",
                    b.base_offset()
                )));
            }
            p.header.set_base_offset(b.base_offset());
            next = p.header.last_offset() + 1;
        }
        plan.next = next;
        plan.offset_of_max = leo;
        for p in &plan.prepared {
            if p.header.max_timestamp() == plan.max_ts {
                plan.offset_of_max = p.header.last_offset();
                break;
            }
        }
        Ok(plan)
    }

    fn corrupt(&self, e: &BatchError) -> LogError {
        if e.is_corrupt_message() {
            LogError::CorruptRecord {
                tp: self.tp.clone(),
                reason: e.to_string(),
            }
        } else {
            LogError::InvalidRecord {
                tp: self.tp.clone(),
                reason: e.to_string(),
            }
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> LogError {
        LogError::InvalidRecord {
            tp: self.tp.clone(),
            reason: reason.into(),
        }
    }

    /// Splits the request buffer into complete batches (a truncated tail is dropped) and applies
    /// the framing, size and CRC checks common to every origin.
    fn split_batches(&self, records: Bytes, config: &LogConfig) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for item in batches(records) {
            let b = item.map_err(|e| self.corrupt(&e))?;
            if b.size() > config.max_message_bytes.max(0) as usize {
                return Err(LogError::RecordTooLarge {
                    tp: self.tp.clone(),
                    size: b.size(),
                    max: config.max_message_bytes.max(0) as usize,
                });
            }
            b.verify_crc().map_err(|e| self.corrupt(&e))?;
            out.push(b);
        }
        Ok(out)
    }

    /// LogValidator's batch-level checks of a client batch (offsets, count, control, sequence).
    fn check_client_header(&self, b: &RecordBatch) -> Result<()> {
        if b.base_offset() != 0 {
            return Err(self.invalid(format!(
                "base offset {} of a client batch must be 0",
                b.base_offset()
            )));
        }
        let count = i64::from(b.record_count());
        let span = i64::from(b.last_offset_delta()) + 1;
        if span <= 0 || count <= 0 || span != count {
            return Err(self.invalid(format!(
                "record count {count} does not match last offset delta {}",
                b.last_offset_delta()
            )));
        }
        if b.is_control() {
            return Err(self.invalid("control batches are not accepted from clients"));
        }
        if b.producer_id() >= 0 && b.base_sequence() < 0 {
            return Err(self.invalid(format!(
                "producer id {} without a base sequence",
                b.producer_id()
            )));
        }
        Ok(())
    }

    /// LogValidator checks for one client batch, then its rebuild when `compression.type` asks
    /// for one. The batch is decompressed once, here.
    fn validate_client_batch(
        &self,
        b: &RecordBatch,
        config: &LogConfig,
        now: i64,
    ) -> Result<Checked> {
        self.check_client_header(b)?;
        let payload = b
            .records_payload(DEFAULT_MAX_DECOMPRESSED)
            .map_err(|e| self.corrupt(&e))?;
        let (max_ts, sequential) = self.validate_client_records(b, &payload, config, now)?;
        let rebuilt = self.rebuild_for_topic(b, &payload, sequential, config, now)?;
        Ok(Checked {
            max_ts,
            rebuilt,
            marker: None,
        })
    }

    /// A coordinator append: exactly one control batch of a producer holding one ABORT/COMMIT
    /// marker record.
    fn validate_marker_batch(&self, input: &[RecordBatch]) -> Result<Checked> {
        let [b] = input else {
            return Err(self.invalid(format!(
                "expected exactly one transaction marker batch, found {}",
                input.len()
            )));
        };
        if b.producer_id() < 0 || !b.is_transactional() {
            return Err(
                self.invalid("a coordinator batch must be transactional and carry a producer id")
            );
        }
        if !b.is_control() {
            // The group coordinator's transactional offset commits (TxnOffsetCommit).
            return Ok(Checked {
                max_ts: b.max_timestamp(),
                rebuilt: None,
                marker: None,
            });
        }
        if b.record_count() != 1 || b.last_offset_delta() != 0 {
            return Err(self.invalid(format!(
                "a transaction marker batch holds one record, found {}",
                b.record_count()
            )));
        }
        let Some(marker) = end_txn_marker_of(b) else {
            return Err(self.invalid("control batch without an ABORT or COMMIT marker"));
        };
        Ok(Checked {
            max_ts: b.max_timestamp(),
            rebuilt: None,
            marker: Some(marker),
        })
    }

    /// Record-level checks (keys of a compacted topic, timestamps) over the batch's decompressed
    /// `payload`. Returns the max record timestamp and whether the offset deltas are 0, 1, 2, ….
    fn validate_client_records(
        &self,
        b: &RecordBatch,
        payload: &[u8],
        config: &LogConfig,
        now: i64,
    ) -> Result<(i64, bool)> {
        let compact = config.cleanup_policy.compact;
        let create_time = config.message_timestamp_type == TimestampType::CreateTime;
        let batch_log_append = b.timestamp_type() == TimestampType::LogAppendTime;
        let mut max_ts = -1i64;
        let mut sequential = true;
        let mut ts_error: Option<(i64, String)> = None;
        let mut key_error: Option<String> = None;
        let mut index = 0usize;
        // check_client_header made sure the count is positive.
        let count = usize::try_from(b.record_count()).unwrap_or(0);
        for_each_view_in_payload(payload, count, |r| {
            let ts = b.record_view_timestamp(r);
            sequential &= usize::try_from(r.offset_delta).is_ok_and(|d| d == index);
            if compact && r.key.is_none() && key_error.is_none() {
                key_error = Some(format!(
                    "record {index} has no key but the topic is compacted"
                ));
            }
            if create_time && ts != -1 {
                let before = now.saturating_sub(ts);
                let after = ts.saturating_sub(now);
                if ts_error.is_none()
                    && (before > config.message_timestamp_before_max_ms
                        || after > config.message_timestamp_after_max_ms)
                {
                    ts_error = Some((
                        ts,
                        format!(
                            "record {index} timestamp is outside the allowed window around {now}"
                        ),
                    ));
                }
            } else if batch_log_append && ts_error.is_none() {
                ts_error = Some((
                    ts,
                    format!("record {index} has LogAppendTime on a CreateTime topic"),
                ));
            }
            max_ts = max_ts.max(ts);
            index += 1;
            Ok(())
        })
        .map_err(|e| self.corrupt(&e))?;
        if let Some((timestamp, reason)) = ts_error {
            return Err(LogError::InvalidTimestamp {
                tp: self.tp.clone(),
                timestamp,
                reason,
            });
        }
        if let Some(reason) = key_error {
            return Err(self.invalid(reason));
        }
        Ok((max_ts, sequential))
    }

    /// The batch rewritten with the topic's codec, when Kafka would not keep its bytes
    /// ([`must_rebuild`]); a rebuilt batch must still fit `max.message.bytes`.
    fn rebuild_for_topic(
        &self,
        b: &RecordBatch,
        payload: &Bytes,
        sequential: bool,
        config: &LogConfig,
        now: i64,
    ) -> Result<Option<RecordBatch>> {
        let source = b.compression().map_err(|e| self.corrupt(&e))?;
        let (compression, level) = target_compression(config, source);
        if !must_rebuild(source, compression, sequential) {
            return Ok(None);
        }
        let target = RebuildTarget {
            compression,
            level,
            timestamp_type: config.message_timestamp_type,
            log_append_time: now,
        };
        let out = rebuild(b, payload, &target).map_err(|e| self.corrupt(&e))?;
        let max = config.max_message_bytes.max(0) as usize;
        if out.size() > max {
            return Err(LogError::RecordTooLarge {
                tp: self.tp.clone(),
                size: out.size(),
                max,
            });
        }
        Ok(Some(out))
    }

    /// Checks done before taking the append lock (they do not depend on the log's state):
    /// record-level validation of a client batch, including the one decompression of a
    /// compressed batch, and its rebuild for `compression.type`. Other origins get max
    /// timestamp -1 and no rebuild.
    fn pre_validate(
        &self,
        input: &[RecordBatch],
        origin: AppendOrigin,
        config: &LogConfig,
        now: i64,
    ) -> Result<Checked> {
        let unchecked = Checked {
            max_ts: -1,
            rebuilt: None,
            marker: None,
        };
        match origin {
            AppendOrigin::Client { .. } if input.is_empty() => Ok(unchecked),
            AppendOrigin::Client { .. } => {
                if input.len() != 1 {
                    return Err(self.invalid(format!(
                        "expected exactly one record batch, found {}",
                        input.len()
                    )));
                }
                self.validate_client_batch(&input[0], config, now)
            }
            AppendOrigin::Coordinator { .. } if input.is_empty() => Ok(unchecked),
            AppendOrigin::Coordinator { .. } => self.validate_marker_batch(input),
            AppendOrigin::RaftLeader | AppendOrigin::Replication => {
                if let Some(b) = input.iter().find(|b| b.last_offset_delta() < 0) {
                    return Err(self.invalid(format!(
                        "negative last offset delta {}",
                        b.last_offset_delta()
                    )));
                }
                Ok(unchecked)
            }
        }
    }

    /// The answer for an input without a complete batch.
    fn nothing_appended(&self) -> AppendInfo {
        AppendInfo {
            first_offset: -1,
            last_offset: -1,
            log_append_time: -1,
            log_start_offset: self.log_start_offset(),
            max_timestamp: -1,
            record_count: 0,
            records_converted: 0,
            duplicate: false,
        }
    }

    /// Producer-state check of an idempotent client batch: `Some(info)` for a duplicate (nothing
    /// is written; the original offsets are returned), errors for fencing/sequence problems.
    fn check_producer(
        &self,
        inner: &Inner,
        b: &RecordBatch,
        config: &LogConfig,
    ) -> Result<Option<AppendInfo>> {
        if b.producer_id() < 0 {
            return Ok(None);
        }
        let ProducerCheck::Duplicate(meta) = inner.producers.check(&self.tp, &b.header())? else {
            return Ok(None);
        };
        let lat = config.message_timestamp_type == TimestampType::LogAppendTime;
        Ok(Some(AppendInfo {
            first_offset: meta.first_offset(),
            last_offset: meta.last_offset,
            log_append_time: if lat { meta.timestamp } else { -1 },
            log_start_offset: self.log_start_offset(),
            max_timestamp: meta.timestamp,
            record_count: i64::from(b.record_count()),
            records_converted: 0,
            duplicate: true,
        }))
    }

    /// KIP-890's guard: a transactional batch that would open a transaction needs its
    /// verification to still hold (no marker of its producer appended since it began).
    fn check_verified(&self, b: &RecordBatch, token: u64) -> Result<()> {
        let pid = b.producer_id();
        if !b.is_transactional() || pid < 0 {
            return Ok(());
        }
        let txns = self.txns.lock();
        if txns.is_open(pid, b.producer_epoch()) || txns.is_verified(pid, token) {
            return Ok(());
        }
        Err(LogError::InvalidTxnState {
            tp: self.tp.clone(),
            producer_id: pid,
            reason: "its transaction ended between verification and append".into(),
        })
    }

    /// What `origin`'s append will write (under the append lock, after the producer-state
    /// checks), or `Err(answer)` for an idempotent client retry, which writes nothing.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        inner: &Inner,
        input: &[RecordBatch],
        checked: &Checked,
        origin: AppendOrigin,
        leo: i64,
        config: &LogConfig,
        now: i64,
    ) -> Result<std::result::Result<Plan, AppendInfo>> {
        Ok(Ok(match origin {
            AppendOrigin::Client {
                leader_epoch,
                verification,
            } => {
                let b = checked.rebuilt.as_ref().unwrap_or(&input[0]);
                if let Some(dup) = self.check_producer(inner, b, config)? {
                    return Ok(Err(dup));
                }
                if let Some(token) = verification {
                    self.check_verified(b, token)?;
                }
                plan_client(b, leader_epoch, leo, config, now, checked.max_ts)
            }
            AppendOrigin::Coordinator { leader_epoch } => {
                let b = &input[0];
                match &checked.marker {
                    Some(marker) => inner
                        .producers
                        .check_marker(&self.tp, &b.header(), marker)?,
                    None => inner.producers.check_epoch(&self.tp, &b.header())?,
                }
                plan_client(b, leader_epoch, leo, config, now, checked.max_ts)
            }
            AppendOrigin::RaftLeader => plan_raft(input, leo),
            AppendOrigin::Replication => self.plan_replica(input, leo)?,
        }))
    }

    /// Validates, assigns offsets in the header only, appends, indexes, rolls and flushes.
    /// `records` may hold several batches (RaftLeader); a truncated trailing batch is ignored.
    pub fn append(&self, records: Bytes, origin: AppendOrigin) -> Result<AppendInfo> {
        shale_common::blocking::check("Log::append");
        let config = self.config_arc();
        let input = self.split_batches(records, &config)?;
        let now = self.clock.now_ms();
        // Record-level validation (and the one decompression of a compressed batch, and a
        // rebuild for compression.type) happens before taking the append lock; it does not
        // depend on the log's state.
        let checked = self.pre_validate(&input, origin, &config, now)?;
        let mut inner = self.lock_open()?;
        let leo = self.log_end_offset();
        if input.is_empty() {
            return Ok(self.nothing_appended());
        }
        let plan = match self.plan(&inner, &input, &checked, origin, leo, &config, now)? {
            Ok(plan) => plan,
            Err(dup) => return Ok(dup),
        };
        let Plan {
            prepared,
            next,
            max_ts,
            offset_of_max,
            log_append_time,
            records_total,
        } = plan;
        let first_offset = prepared.first().map_or(leo, |p| p.header.base_offset());
        let total: u64 = prepared.iter().map(|p| p.header.size() as u64).sum();
        if total > config.segment_bytes.max(0) as u64 {
            return Err(LogError::RecordListTooLarge {
                tp: self.tp.clone(),
                size: total as usize,
                max: config.segment_bytes.max(0) as usize,
            });
        }
        let written = self.write_prepared(
            &mut inner,
            &config,
            &prepared,
            total,
            max_ts,
            offset_of_max,
            now,
        );
        self.note_append_outcome(&written);
        written?;
        self.log_end_offset.store(next, Ordering::Release);
        inner.unflushed_messages += records_total;
        if inner.unflushed_messages >= config.flush_messages {
            self.flush_locked(&mut inner)?;
        }
        Ok(AppendInfo {
            first_offset,
            last_offset: next - 1,
            log_append_time,
            log_start_offset: self.log_start_offset(),
            max_timestamp: max_ts,
            record_count: records_total,
            records_converted: if checked.rebuilt.is_some() {
                records_total
            } else {
                0
            },
            duplicate: false,
        })
    }

    /// Logs a change between failing and succeeding appends once, at ERROR when they start to
    /// fail (disk full, I/O error: clients see KAFKA_STORAGE_ERROR) and at INFO when they work
    /// again; [`Log::appends_failing`] exposes the state.
    fn note_append_outcome(&self, outcome: &Result<()>) {
        match outcome {
            Err(e @ (LogError::Io { .. } | LogError::OutOfFiles { .. })) => {
                if !self.appends_failing.swap(true, Ordering::AcqRel) {
                    tracing::error!(partition = %self.tp, error = %e, "appends failing; reads go on, every produce retries");
                }
            }
            Ok(()) => {
                if self.appends_failing.swap(false, Ordering::AcqRel) {
                    tracing::info!(partition = %self.tp, "appends succeed again");
                }
            }
            Err(_) => {}
        }
    }

    /// True while appends to this log fail on an I/O error.
    pub fn appends_failing(&self) -> bool {
        self.appends_failing.load(Ordering::Acquire)
    }

    /// Rolls if needed, writes header copies + bodies with one vectored write, then updates
    /// producer state and the epoch cache.
    #[allow(clippy::too_many_arguments)]
    fn write_prepared(
        &self,
        inner: &mut Inner,
        config: &LogConfig,
        prepared: &[Prepared],
        total: u64,
        max_ts: i64,
        offset_of_max: i64,
        now: i64,
    ) -> Result<()> {
        let last_offset = prepared.last().map_or(0, |p| p.header.last_offset());
        let needs_roll = self
            .segments_snapshot()
            .last()
            .is_none_or(|a| a.should_roll(config, total, max_ts, last_offset, now));
        if needs_roll {
            self.roll_locked(inner)?;
        }
        let segs = self.segments_snapshot();
        let Some(active) = segs.last() else {
            return Err(LogError::Closed {
                tp: self.tp.clone(),
            });
        };
        let mut slices: Vec<&[u8]> = Vec::with_capacity(prepared.len() * 2);
        for p in prepared {
            slices.push(p.header.as_bytes());
            slices.push(&p.body);
        }
        let first_ts = prepared.first().map_or(-1, |p| p.header.max_timestamp());
        active.append(
            &slices,
            total,
            last_offset,
            max_ts,
            offset_of_max,
            first_ts,
            config.index_interval_bytes,
        )?;
        let mut epochs = self.epochs.lock();
        for p in prepared {
            let marker = end_txn_marker_in(&p.header, &p.body);
            let done = inner
                .producers
                .update(&p.header, p.header.base_offset(), marker.as_ref());
            if let Some(t) = done.filter(|t| t.aborted) {
                active.append_aborted_txn(t.aborted_txn())?;
            }
            let e = p.header.partition_leader_epoch();
            if e >= 0 {
                epochs.assign(e, p.header.base_offset())?;
            }
        }
        Ok(())
    }
}
