//! Consumer task: fetches its share of the topic's partitions (one Fetch in flight, all assigned
//! partitions in each request), counts records and value bytes, measures end-to-end latency from
//! the send time the producer stamped into the first 8 bytes of each value, and the time to the
//! first record. It stops when every assigned partition reaches the end offsets published on
//! `targets` (set once producers are done), or at `hard_deadline`.

use crate::produce::wall_micros;
use crate::stats::{record, TaskStats};
use crate::wire::Conn;
use anyhow::Context;
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};
use shale_protocol::record_batch::batches;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Fetch request version: topic names and no tagged fields. Tansu 0.6.0 answers Fetch v12 with a
/// top-level tagged field that Kafka defines only from v16 (node endpoints), which a strict
/// decoder refuses; v11 carries everything this consumer needs and works with both brokers.
const FETCH_VERSION: i16 = 11;

/// What one consumer task does.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub addr: String,
    pub topic: String,
    /// Assigned partitions and their start offsets.
    pub assigned: Vec<(i32, i64)>,
    /// Whether values carry a send-time stamp (message size >= 8).
    pub stamped: bool,
    pub max_wait_ms: i32,
    pub partition_max_bytes: i32,
    pub hard_deadline: Instant,
}

/// End offsets per partition index (indexed by partition id), once known.
pub type Targets = watch::Receiver<Option<Vec<i64>>>;

/// Runs one consumer to completion.
pub async fn run_consumer(cfg: ConsumerConfig, targets: Targets) -> TaskStats {
    let mut stats = TaskStats::default();
    if let Err(e) = consume_loop(&cfg, targets, &mut stats).await {
        stats.error(format!("consumer: {e:#}"));
    }
    stats
}

/// True when every `(partition, position)` is at or past its target.
pub fn reached(positions: &[(i32, i64)], targets: &[i64]) -> bool {
    positions.iter().all(|&(p, pos)| {
        usize::try_from(p)
            .ok()
            .and_then(|i| targets.get(i))
            .is_none_or(|&t| pos >= t)
    })
}

async fn consume_loop(
    cfg: &ConsumerConfig,
    targets: Targets,
    stats: &mut TaskStats,
) -> anyhow::Result<()> {
    let mut conn = Conn::connect(&cfg.addr).await?;
    let mut positions = cfg.assigned.clone();
    let start = Instant::now();
    loop {
        if let Some(t) = targets.borrow().as_ref() {
            if reached(&positions, t) {
                return Ok(());
            }
        }
        if Instant::now() >= cfg.hard_deadline {
            stats.error("consumer: drain deadline reached before end offsets");
            return Ok(());
        }
        let req = fetch_request(cfg, &positions);
        let resp = conn.call(&req, FETCH_VERSION).await.context("fetch")?;
        let mut progressed = false;
        for t in &resp.responses {
            for p in &t.partitions {
                let Some(slot) = positions
                    .iter_mut()
                    .find(|(id, _)| *id == p.partition_index)
                else {
                    continue;
                };
                if p.error_code != 0 {
                    stats.error(format!(
                        "fetch {}-{}: error {}",
                        cfg.topic, slot.0, p.error_code
                    ));
                    continue;
                }
                if let Some(records) = &p.records {
                    let before = slot.1;
                    slot.1 = consume_records(records.clone(), slot.1, cfg, stats, start)?;
                    progressed |= slot.1 > before;
                }
            }
        }
        if !progressed && resp.error_code != 0 {
            stats.error(format!("fetch: top-level error {}", resp.error_code));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn fetch_request(cfg: &ConsumerConfig, positions: &[(i32, i64)]) -> FetchRequest {
    let mut t = FetchTopic::default();
    t.topic = crate::admin::topic_name(&cfg.topic);
    for &(p, offset) in positions {
        let mut fp = FetchPartition::default();
        fp.partition = p;
        fp.fetch_offset = offset;
        fp.partition_max_bytes = cfg.partition_max_bytes;
        fp.current_leader_epoch = -1;
        fp.last_fetched_epoch = -1;
        fp.log_start_offset = -1;
        t.partitions.push(fp);
    }
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = cfg.max_wait_ms;
    req.min_bytes = 1;
    req.max_bytes = 64 * 1024 * 1024;
    req.session_id = 0;
    req.session_epoch = -1;
    req.topics = vec![t];
    req
}

/// Counts the records at or after `position` in `records`; returns the next position.
fn consume_records(
    records: Bytes,
    mut position: i64,
    cfg: &ConsumerConfig,
    stats: &mut TaskStats,
    start: Instant,
) -> anyhow::Result<i64> {
    for batch in batches(records) {
        let batch = batch.context("decode fetched batch")?;
        if batch.last_offset() < position {
            continue;
        }
        let base = batch.base_offset();
        let now_us = wall_micros();
        if stats.first_record_us.is_none() {
            stats.first_record_us = Some(start.elapsed().as_micros() as u64);
        }
        batch
            .for_each_record(|r| {
                if base + i64::from(r.offset_delta) < position {
                    return Ok(());
                }
                stats.msgs += 1;
                if let Some(v) = &r.value {
                    stats.bytes += v.len() as u64;
                    if cfg.stamped && v.len() >= 8 {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&v[..8]);
                        let sent = u64::from_be_bytes(b);
                        record(&mut stats.latency, now_us.saturating_sub(sent));
                    }
                }
                Ok(())
            })
            .context("decode fetched records")?;
        position = batch.next_offset();
    }
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reached_compares_each_partition() {
        assert!(reached(&[(0, 5), (2, 9)], &[5, 0, 9]));
        assert!(!reached(&[(0, 4), (2, 9)], &[5, 0, 9]));
        // Partitions without a target count as done.
        assert!(reached(&[(7, 0)], &[5]));
    }
}
