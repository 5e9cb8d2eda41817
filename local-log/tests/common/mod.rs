//! Shared helpers for the local-log integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use shale_common::{ManualClock, TopicPartition};
use shale_local_log::{AppendOrigin, Log, LogConfig, LogOpenOptions};
use shale_protocol::record::BatchBuilder;
use shale_protocol::record_batch::{batches, RecordBatch};

pub const T0: i64 = 1_700_000_000_000;

pub fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

pub fn client() -> AppendOrigin {
    AppendOrigin::Client {
        leader_epoch: 3,
        verification: None,
    }
}

/// A client batch of `n` records (key "k<i>", value of `value_len` bytes) at timestamp `ts`.
pub fn batch(n: usize, ts: i64, value_len: usize) -> Bytes {
    let mut b = BatchBuilder::new(ts);
    for i in 0..n {
        b.push(
            ts,
            Some(Bytes::from(format!("k{i}"))),
            Some(Bytes::from(vec![b'v'; value_len])),
            vec![],
        );
    }
    b.build().unwrap().into_bytes()
}

/// An idempotent producer batch.
pub fn pbatch(pid: i64, epoch: i16, seq: i32, n: usize, ts: i64) -> Bytes {
    let mut b = BatchBuilder::new(ts);
    b.producer_id = pid;
    b.producer_epoch = epoch;
    b.base_sequence = seq;
    for _ in 0..n {
        b.push(
            ts,
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from_static(b"v")),
            vec![],
        );
    }
    b.build().unwrap().into_bytes()
}

pub fn opts(clean: bool) -> LogOpenOptions {
    LogOpenOptions {
        topic_id: None,
        recovery_point: 0,
        log_start_offset: 0,
        had_clean_shutdown: clean,
    }
}

pub fn open(dir: &Path, config: LogConfig, clock: &Arc<ManualClock>, clean: bool) -> Log {
    Log::open(dir.to_path_buf(), tp(), config, opts(clean), clock.clone()).unwrap()
}

pub fn parse(b: Bytes) -> Vec<RecordBatch> {
    batches(b).map(|r| r.unwrap()).collect()
}

/// Offsets of all batches readable from `from`, walking the whole log.
pub fn all_batches(log: &Log) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let r = log.read(next, 1 << 20, log.log_end_offset(), true).unwrap();
        let got = parse(r.records);
        assert!(!got.is_empty(), "no batch at {next}");
        next = got.last().unwrap().last_offset() + 1;
        out.extend(got);
    }
    out
}

pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Polls until the background flusher has moved the recovery point to at least `offset` (a
/// roll's fsyncs run there), failing after ten seconds.
#[allow(dead_code)]
pub fn wait_for_recovery_point(log: &Log, offset: i64) -> i64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rp = log.recovery_point();
        if rp >= offset {
            return rp;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "recovery point stuck at {rp}, expected {offset}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
