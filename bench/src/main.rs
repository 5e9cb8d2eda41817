//! `shale-bench`: a Kafka load driver for comparing brokers with the same client. It speaks the
//! wire protocol itself (tokio + kafka-protocol, batches from `shale_protocol`), drives
//! pipelined producers and fetch-based consumers against a single-node broker, and prints ONE
//! JSON line per run: produce/consume msgs/s and MB/s, produce-ack and end-to-end latency
//! percentiles from HDR histograms, and error counts.
//!
//! Layout: `wire` (pipelined connection), `admin` (topic, offsets, producer id), `produce`,
//! `consume`, and the pure pieces `rate` (fixed-rate timeline), `keys` (key distributions) and
//! `stats` (histogram summaries).

mod admin;
mod consume;
mod keys;
mod produce;
mod rate;
mod stats;
mod wire;

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::json;
use std::time::{Duration, Instant};

/// Command-line flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "shale-bench",
    about = "Kafka load driver; prints one JSON line per run"
)]
pub struct Args {
    /// Broker address host:port (single-node brokers: every partition is led there).
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long, default_value = "shale-bench")]
    topic: String,
    /// Partitions to create the topic with when it does not exist.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Topic config for creation, `key=value` (repeatable).
    #[arg(long = "topic-config")]
    topic_config: Vec<String>,
    /// Value size in bytes (the first 8 bytes carry the send time when >= 8).
    #[arg(long, default_value_t = 100)]
    message_size: usize,
    /// none | uniform[:N] | zipf[:N[:S]]; seeded by --seed.
    #[arg(long, default_value = "none")]
    key_distribution: String,
    /// 1 or all (-1). acks=0 is not supported (no responses to time).
    #[arg(long, default_value = "1")]
    acks: String,
    /// Idempotent producers (InitProducerId, per-partition sequences, at most 5 in flight).
    #[arg(long)]
    idempotence: bool,
    /// none | gzip | snappy | lz4 | zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    #[arg(long, default_value_t = 1)]
    producers: usize,
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Run length in seconds (producers stop then; consumers drain to the end offsets).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Total records to produce instead of --duration.
    #[arg(long)]
    count: Option<u64>,
    /// Fixed-rate mode: total msgs/s across producers, latency from the intended send time.
    #[arg(long)]
    target_rate: Option<f64>,
    /// Records per produce batch (the maximum in fixed-rate mode).
    #[arg(long, default_value_t = 200)]
    batch_size: usize,
    /// Fixed-rate mode: schedule time one batch may span, in ms.
    #[arg(long, default_value_t = 5.0)]
    linger: f64,
    /// Produce requests in flight per producer connection.
    #[arg(long, default_value_t = 5)]
    max_in_flight: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Consumers start at the earliest offset (consume what exists) instead of the latest.
    #[arg(long)]
    from_beginning: bool,
    /// Extra idle connections held open during the run (ApiVersions, then nothing).
    #[arg(long, default_value_t = 0)]
    idle_connections: usize,
    /// Seconds consumers may take after producers stop to reach the end offsets.
    #[arg(long, default_value_t = 30.0)]
    drain_timeout: f64,
    /// Free-form label copied into the JSON line.
    #[arg(long, default_value = "")]
    label: String,
    /// Start-up probe: retry until one record is acknowledged, print its wall time and exit.
    #[arg(long)]
    probe: bool,
    /// Print the topic's offsets (earliest | latest | earliest-local) as JSON and exit.
    #[arg(long)]
    list_offsets: Option<String>,
    /// Connect over TLS, trusting the CA certificates in this PEM file (an SSL listener).
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
    /// Only measure TLS handshakes: open this many connections one after another (with
    /// --tls-ca; without it, TCP connections) and print the rate.
    #[arg(long, default_value_t = 0)]
    handshakes: u32,
}

fn parse_acks(s: &str) -> anyhow::Result<i16> {
    match s {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        other => bail!("--acks {other}: use 1 or all"),
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(ca) = &args.tls_ca {
        if let Err(e) = wire::use_tls(ca) {
            println!(
                "{}",
                json!({"label": args.label, "fatal": format!("{e:#}"), "errors": 1})
            );
            std::process::exit(1);
        }
    }
    let result = if args.handshakes > 0 {
        handshakes(&args).await
    } else if args.probe {
        probe(&args).await
    } else if let Some(which) = &args.list_offsets {
        offsets(&args, which).await
    } else {
        run(&args).await
    };
    match result {
        Ok(line) => println!("{line}"),
        Err(e) => {
            println!(
                "{}",
                json!({"label": args.label, "fatal": format!("{e:#}"), "errors": 1})
            );
            std::process::exit(1);
        }
    }
}

/// Connections opened one after another (each a TCP connect and, over TLS, a full handshake
/// completed by an ApiVersions round trip), per second.
async fn handshakes(args: &Args) -> anyhow::Result<serde_json::Value> {
    let start = std::time::Instant::now();
    for _ in 0..args.handshakes {
        let mut conn = wire::Conn::connect(&args.bootstrap).await?;
        conn.call(&kafka_protocol::messages::ApiVersionsRequest::default(), 0)
            .await?;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(json!({
        "label": args.label,
        "tls": args.tls_ca.is_some(),
        "connections": args.handshakes,
        "seconds": secs,
        "per_second": f64::from(args.handshakes) / secs,
    }))
}

/// The offsets of every partition of the topic at `which`.
async fn offsets(args: &Args, which: &str) -> anyhow::Result<serde_json::Value> {
    let at = match which {
        "earliest" => admin::EARLIEST,
        "latest" => admin::LATEST,
        "earliest-local" => admin::EARLIEST_LOCAL,
        other => bail!("--list-offsets {other}: earliest | latest | earliest-local"),
    };
    let mut conn = wire::Conn::connect(&args.bootstrap).await?;
    let n = admin::partition_count(&mut conn, &args.topic)
        .await?
        .with_context(|| format!("topic {} does not exist", args.topic))?;
    let ids: Vec<i32> = (0..n as i32).collect();
    let offsets = admin::list_offsets(&mut conn, &args.topic, &ids, at).await?;
    Ok(json!({"topic": args.topic, "which": which, "offsets": offsets}))
}

/// Retries (every 1 ms, up to 60 s) until one record is acknowledged with acks=1.
async fn probe(args: &Args) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match probe_once(args).await {
            Ok(()) => {
                return Ok(
                    json!({"label": args.label, "probe": true, "ack_unix_us": produce::wall_micros(),
                    "probe_elapsed_ms": started.elapsed().as_secs_f64() * 1e3, "attempts": attempts}),
                )
            }
            Err(e) if started.elapsed() > Duration::from_secs(60) => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

async fn probe_once(args: &Args) -> anyhow::Result<()> {
    let mut conn = wire::Conn::connect(&args.bootstrap).await?;
    admin::ensure_topic(&mut conn, &args.topic, args.partitions, &[]).await?;
    drop(conn);
    let cfg = produce::ProducerConfig {
        count: Some(1),
        deadline: None,
        rate: None,
        ..producer_config(args, 1, 0)?
    };
    let stats = produce::run_producer(cfg).await;
    if stats.errors > 0 || stats.msgs != 1 {
        bail!("probe produce failed: {:?}", stats.error_samples);
    }
    Ok(())
}

fn producer_config(
    args: &Args,
    partitions: usize,
    index: usize,
) -> anyhow::Result<produce::ProducerConfig> {
    let compression = shale_protocol::compression::Compression::from_name(&args.compression)
        .with_context(|| format!("--compression {}", args.compression))?;
    let rate = match args.target_rate {
        Some(r) => Some(
            rate::RateSchedule::new(rate::per_producer_rate(r, args.producers))
                .context("--target-rate must be > 0")?,
        ),
        None => None,
    };
    Ok(produce::ProducerConfig {
        addr: args.bootstrap.clone(),
        topic: args.topic.clone(),
        partitions: (0..partitions as i32).collect(),
        message_size: args.message_size,
        keys: keys::KeyDistribution::parse(&args.key_distribution).map_err(anyhow::Error::msg)?,
        acks: parse_acks(&args.acks)?,
        idempotent: args.idempotence,
        compression,
        batch_size: args.batch_size.max(1),
        linger: Duration::from_secs_f64(args.linger.max(0.0) / 1e3),
        max_in_flight: args.max_in_flight,
        rate,
        deadline: None,
        count: None,
        seed: args.seed.wrapping_add(index as u64 * 7919),
        index,
    })
}

/// Splits `total` into `n` near-equal shares.
fn split_count(total: u64, n: usize) -> Vec<u64> {
    let n = n.max(1) as u64;
    (0..n)
        .map(|i| total / n + u64::from(i < total % n))
        .collect()
}

async fn run(args: &Args) -> anyhow::Result<serde_json::Value> {
    let configs: Vec<(String, String)> = args
        .topic_config
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect::<Option<_>>()
        .context("--topic-config wants key=value")?;
    let mut admin_conn = wire::Conn::connect(&args.bootstrap).await?;
    let npart =
        admin::ensure_topic(&mut admin_conn, &args.topic, args.partitions, &configs).await?;
    let ids: Vec<i32> = (0..npart as i32).collect();
    let _idle = admin::idle_connections(&args.bootstrap, args.idle_connections).await?;
    let at = if args.from_beginning {
        admin::EARLIEST
    } else {
        admin::LATEST
    };
    let starts = admin::list_offsets(&mut admin_conn, &args.topic, &ids, at).await?;
    let (targets_tx, targets_rx) = tokio::sync::watch::channel(None);
    if args.producers == 0 {
        let ends = admin::list_offsets(&mut admin_conn, &args.topic, &ids, admin::LATEST).await?;
        let _ = targets_tx.send(Some(ends));
    }
    let start = Instant::now();
    let run_for = Duration::from_secs_f64(args.duration.max(0.0));
    // Consumers stop at the drain deadline (counted as an error): after the run plus
    // --drain-timeout, or 600 s plus it for a --count run.
    let produce_for = if args.count.is_some() {
        Duration::from_secs(600)
    } else {
        run_for
    };
    let hard_deadline = start + produce_for + Duration::from_secs_f64(args.drain_timeout);
    let consumers = spawn_consumers(args, &ids, &starts, hard_deadline, &targets_rx);
    let counts = args.count.map(|c| split_count(c, args.producers));
    let mut producers = Vec::new();
    for i in 0..args.producers {
        let mut cfg = producer_config(args, npart, i)?;
        match &counts {
            Some(c) => cfg.count = Some(c[i]),
            None => cfg.deadline = Some(start + run_for),
        }
        producers.push(tokio::spawn(produce::run_producer(cfg)));
    }
    let mut produced = stats::TaskStats::default();
    for p in producers {
        produced.merge(&p.await.context("producer task")?);
    }
    let produce_secs = start.elapsed().as_secs_f64();
    if args.producers > 0 {
        let ends = admin::list_offsets(&mut admin_conn, &args.topic, &ids, admin::LATEST).await?;
        let _ = targets_tx.send(Some(ends));
    }
    let mut consumed = stats::TaskStats::default();
    for c in consumers {
        consumed.merge(&c.await.context("consumer task")?);
    }
    let consume_secs = start.elapsed().as_secs_f64();
    Ok(report(
        args,
        npart,
        &produced,
        produce_secs,
        &consumed,
        consume_secs,
    ))
}

/// Spawns the consumers; consumer `c` gets the partitions `p` with `p % consumers == c`.
fn spawn_consumers(
    args: &Args,
    ids: &[i32],
    starts: &[i64],
    hard_deadline: Instant,
    targets_rx: &consume::Targets,
) -> Vec<tokio::task::JoinHandle<stats::TaskStats>> {
    let mut consumers = Vec::new();
    for c in 0..args.consumers {
        let assigned: Vec<(i32, i64)> = ids
            .iter()
            .zip(starts)
            .filter(|(p, _)| **p as usize % args.consumers == c)
            .map(|(p, s)| (*p, *s))
            .collect();
        let cfg = consume::ConsumerConfig {
            addr: args.bootstrap.clone(),
            topic: args.topic.clone(),
            assigned,
            stamped: args.message_size >= 8,
            max_wait_ms: 100,
            partition_max_bytes: 4 * 1024 * 1024,
            hard_deadline,
        };
        consumers.push(tokio::spawn(consume::run_consumer(cfg, targets_rx.clone())));
    }
    consumers
}

fn report(
    args: &Args,
    npart: usize,
    produced: &stats::TaskStats,
    produce_secs: f64,
    consumed: &stats::TaskStats,
    consume_secs: f64,
) -> serde_json::Value {
    let (p_msgs, p_mb) = stats::rates(produced.msgs, produced.bytes, produce_secs);
    let (c_msgs, c_mb) = stats::rates(consumed.msgs, consumed.bytes, consume_secs);
    let mut samples = produced.error_samples.clone();
    samples.extend(consumed.error_samples.iter().cloned());
    json!({
        "label": args.label,
        "topic": args.topic,
        "partitions": npart,
        "message_size": args.message_size,
        "acks": args.acks,
        "idempotence": args.idempotence,
        "compression": args.compression,
        "key_distribution": args.key_distribution,
        "producers": args.producers,
        "consumers": args.consumers,
        "batch_size": args.batch_size,
        "target_rate": args.target_rate,
        "idle_connections": args.idle_connections,
        "seed": args.seed,
        "produce": {
            "msgs": produced.msgs, "bytes": produced.bytes, "secs": produce_secs,
            "msgs_per_s": p_msgs, "mb_per_s": p_mb, "errors": produced.errors,
            "ack_latency": stats::summarize(&produced.latency),
        },
        "consume": {
            "msgs": consumed.msgs, "bytes": consumed.bytes, "secs": consume_secs,
            "msgs_per_s": c_msgs, "mb_per_s": c_mb, "errors": consumed.errors,
            "first_record_ms": consumed.first_record_us.map(|u| u as f64 / 1e3),
            "e2e_latency": stats::summarize(&consumed.latency),
        },
        "errors": produced.errors + consumed.errors,
        "error_samples": samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_split_and_acks() {
        assert_eq!(split_count(10, 3), vec![4, 3, 3]);
        assert_eq!(split_count(2, 0), vec![2]);
        assert_eq!(parse_acks("all").ok(), Some(-1));
        assert_eq!(parse_acks("1").ok(), Some(1));
        assert!(parse_acks("0").is_err());
    }

    #[test]
    fn flags_parse() {
        let a = Args::try_parse_from([
            "shale-bench",
            "--partitions",
            "6",
            "--acks",
            "all",
            "--target-rate",
            "1000",
            "--key-distribution",
            "zipf:100:1.1",
            "--count",
            "5",
        ]);
        let a = a.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.partitions, 6);
        assert_eq!(a.count, Some(5));
        let cfg = producer_config(&a, 6, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.acks, -1);
        assert!(cfg.rate.is_some());
    }
}
