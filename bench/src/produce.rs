//! Producer task: builds v2 record batches with `BatchBuilder` (optionally compressed, optionally
//! idempotent with per-partition sequences), sends them round-robin over the topic's partitions
//! on one connection with up to `max_in_flight` Produce requests outstanding, and records the
//! ack latency of every record. In fixed-rate mode every record has an intended send time on a
//! timeline and latency is measured from it (see `rate.rs`).

use crate::keys::{KeyDistribution, KeyGen};
use crate::rate::RateSchedule;
use crate::stats::{record, TaskStats};
use crate::wire::{Conn, Pending};
use anyhow::Context;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ProduceRequest;
use rand::{Rng, SeedableRng};
use shale_protocol::compression::Compression;
use shale_protocol::record::BatchBuilder;
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Produce request version (flexible, topic names).
const PRODUCE_VERSION: i16 = 9;

/// What one producer task does.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub addr: String,
    pub topic: String,
    pub partitions: Vec<i32>,
    pub message_size: usize,
    pub keys: KeyDistribution,
    pub acks: i16,
    pub idempotent: bool,
    pub compression: Compression,
    /// Records per batch (max in fixed-rate mode).
    pub batch_size: usize,
    /// Fixed-rate mode: how much schedule time one batch may span.
    pub linger: Duration,
    pub max_in_flight: usize,
    /// Fixed-rate mode when set (this producer's share of the target rate).
    pub rate: Option<RateSchedule>,
    /// Stop at this instant...
    pub deadline: Option<Instant>,
    /// ...or after this many records.
    pub count: Option<u64>,
    pub seed: u64,
    /// Index of this producer (spreads the round-robin start).
    pub index: usize,
}

/// A batch waiting for its ack.
#[derive(Debug)]
struct InFlight {
    pending: Pending,
    records: u64,
    /// Intended send time of the first record (fixed rate) or the actual send time.
    first: Instant,
    /// Spacing between intended record times (zero outside fixed-rate mode).
    spacing: Duration,
}

/// Microseconds since the UNIX epoch (wall clock), written into record values for end-to-end
/// latency.
pub fn wall_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Runs one producer to completion.
pub async fn run_producer(cfg: ProducerConfig) -> TaskStats {
    let mut stats = TaskStats::default();
    if let Err(e) = produce_loop(&cfg, &mut stats).await {
        stats.error(format!("producer {}: {e:#}", cfg.index));
    }
    stats
}

/// A payload of `size` seeded random bytes (compressible ratio like real data is not modelled).
pub fn payload(size: usize, seed: u64) -> Bytes {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; size];
    // Half random, half repeated text: compression has something to do but does not win big.
    for (i, b) in v.iter_mut().enumerate() {
        *b = if i % 2 == 0 {
            rng.gen()
        } else {
            b'a' + (i % 26) as u8
        };
    }
    Bytes::from(v)
}

/// A record value: `template` with its first 8 bytes replaced by `stamp_us` (big-endian).
pub fn stamped_value(template: &Bytes, stamp_us: u64) -> Bytes {
    if template.len() < 8 {
        return template.clone();
    }
    let mut b = BytesMut::from(&template[..]);
    b[..8].copy_from_slice(&stamp_us.to_be_bytes());
    b.freeze()
}

async fn produce_loop(cfg: &ProducerConfig, stats: &mut TaskStats) -> anyhow::Result<()> {
    let mut conn = Conn::connect(&cfg.addr).await?;
    let (producer_id, epoch) = if cfg.idempotent {
        crate::admin::init_producer_id(&mut conn).await?
    } else {
        (-1, -1)
    };
    let mut sequences = vec![0i32; cfg.partitions.len()];
    let mut keys = KeyGen::new(cfg.keys, cfg.seed ^ 0x9e37_79b9);
    let template = payload(cfg.message_size, cfg.seed);
    let max_in_flight = if cfg.idempotent {
        cfg.max_in_flight.clamp(1, 5)
    } else {
        cfg.max_in_flight.max(1)
    };
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    let mut next_partition = cfg.index % cfg.partitions.len().max(1);
    let (start, wall_start) = (Instant::now(), wall_micros());
    let mut sent: u64 = 0;
    loop {
        if cfg.count.is_some_and(|c| sent >= c) || cfg.deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        let mut n = match cfg.rate {
            Some(r) => r.batch_len(cfg.linger, cfg.batch_size) as u64,
            None => cfg.batch_size.max(1) as u64,
        };
        if let Some(c) = cfg.count {
            n = n.min(c - sent);
        }
        while inflight.len() >= max_in_flight {
            if let Some(f) = inflight.pop_front() {
                complete(f, cfg, stats).await;
            }
        }
        let (first, spacing, stamp) = match cfg.rate {
            Some(r) => {
                let first = start + r.intended_offset(sent);
                // The batch is complete when its last record is due.
                tokio::time::sleep_until((start + r.intended_offset(sent + n - 1)).into()).await;
                let spacing = r.intended_offset(1);
                (
                    first,
                    spacing,
                    wall_start + r.intended_offset(sent).as_micros() as u64,
                )
            }
            None => (Instant::now(), Duration::ZERO, wall_micros()),
        };
        let slot = next_partition;
        next_partition = (next_partition + 1) % cfg.partitions.len().max(1);
        let producer = cfg
            .idempotent
            .then_some((producer_id, epoch, sequences[slot]));
        if cfg.idempotent {
            sequences[slot] =
                shale_protocol::record_batch::increment_sequence(sequences[slot], n as i32);
        }
        let timing = (stamp, spacing.as_micros() as u64, n);
        let batch = build_batch(cfg.compression, producer, timing, &mut keys, &template)?;
        let req = produce_request(&cfg.topic, cfg.partitions[slot], cfg.acks, batch);
        let pending = conn.send(&req, PRODUCE_VERSION).await?;
        inflight.push_back(InFlight {
            pending,
            records: n,
            first,
            spacing,
        });
        sent += n;
    }
    while let Some(f) = inflight.pop_front() {
        complete(f, cfg, stats).await;
    }
    Ok(())
}

/// Encodes `n` records stamped `stamp_us + i * spacing_us` (`timing` = `(stamp_us, spacing_us,
/// n)`) into one batch; `producer` = `(id, epoch, base sequence)` for idempotent producers.
fn build_batch(
    compression: Compression,
    producer: Option<(i64, i16, i32)>,
    timing: (u64, u64, u64),
    keys: &mut KeyGen,
    template: &Bytes,
) -> anyhow::Result<Bytes> {
    let (stamp, spacing_us, n) = timing;
    let mut b = BatchBuilder::new((stamp / 1000) as i64);
    b.compression = compression;
    if let Some((id, epoch, sequence)) = producer {
        b.producer_id = id;
        b.producer_epoch = epoch;
        b.base_sequence = sequence;
    }
    for i in 0..n {
        let us = stamp + spacing_us * i;
        b.push(
            (us / 1000) as i64,
            keys.next_key(),
            Some(stamped_value(template, us)),
            Vec::new(),
        );
    }
    Ok(b.build().context("build batch")?.into_bytes())
}

fn produce_request(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = crate::admin::topic_name(topic);
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 30_000;
    req.topic_data = vec![t];
    req
}

async fn complete(f: InFlight, cfg: &ProducerConfig, stats: &mut TaskStats) {
    let (resp, at) = match f.pending.decode::<ProduceRequest>(PRODUCE_VERSION).await {
        Ok(r) => r,
        Err(e) => {
            stats.error(format!("produce: {e:#}"));
            return;
        }
    };
    let errors: Vec<i16> = resp
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter())
        .map(|p| p.error_code)
        .filter(|&c| c != 0)
        .collect();
    if let Some(code) = errors.first() {
        stats.error(format!("produce to {}: error code {code}", cfg.topic));
        return;
    }
    stats.msgs += f.records;
    stats.bytes += f.records * cfg.message_size as u64;
    for i in 0..f.records {
        let intended = f.first + f.spacing * i as u32;
        record(
            &mut stats.latency,
            at.saturating_duration_since(intended).as_micros() as u64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_values_carry_the_time() {
        let t = payload(16, 1);
        let v = stamped_value(&t, 0x0102_0304_0506_0708);
        assert_eq!(&v[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&v[8..], &t[8..]);
        let small = payload(4, 1);
        assert_eq!(stamped_value(&small, 5), small);
        assert_eq!(payload(16, 1), payload(16, 1));
    }
}
