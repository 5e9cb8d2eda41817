//! `shale-limits`: the physical limits a broker is compared against, measured on the same
//! machine in the same run. Prints one JSON line per measurement:
//!
//! * `disk DIR`: sequential 1 MiB writes to a new file in DIR, fsync every `--fsync-mib` MiB
//!   (0 = one fsync at the end), MB/s including the final fsync;
//! * `tcp`: one loopback TCP stream, 1 MiB writes, for `--secs`, MB/s received;
//! * `s3`: uploads a `--object-mib` MiB object to an S3-compatible endpoint, then reads it back
//!   with ranged GETs of `--block` bytes, `--concurrency` at a time: MB/s and GET latency.

use anyhow::Context;
use clap::{Parser, Subcommand};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use serde_json::json;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "shale-limits",
    about = "Physical limits: disk, loopback TCP, S3 ranged GETs"
)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Sequential write + fsync rate of the disk holding DIR.
    Disk {
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 256)]
        mib: u64,
        #[arg(long, default_value_t = 0)]
        fsync_mib: u64,
    },
    /// Loopback TCP throughput of one stream.
    Tcp {
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
    },
    /// Ranged-GET throughput of an S3-compatible server.
    S3 {
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        bucket: String,
        #[arg(long, default_value = "AKIDEXAMPLE")]
        access_key: String,
        #[arg(long, default_value = "SECRETEXAMPLE")]
        secret_key: String,
        #[arg(long, default_value_t = 64)]
        object_mib: u64,
        #[arg(long, default_value_t = 1_048_576)]
        block: u64,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let line = match Args::parse().what {
        What::Disk {
            dir,
            mib,
            fsync_mib,
        } => disk(&dir, mib, fsync_mib)?,
        What::Tcp { secs } => tcp(Duration::from_secs_f64(secs))?,
        What::S3 {
            endpoint,
            bucket,
            access_key,
            secret_key,
            object_mib,
            block,
            concurrency,
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(s3(
                &endpoint,
                &bucket,
                &access_key,
                &secret_key,
                object_mib,
                block,
                concurrency,
            ))?
        }
    };
    println!("{line}");
    Ok(())
}

fn disk(dir: &std::path::Path, mib: u64, fsync_mib: u64) -> anyhow::Result<serde_json::Value> {
    let path = dir.join(format!("shale-limits-{}.dat", std::process::id()));
    let buf = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    {
        let mut f = std::fs::File::create(&path).with_context(|| path.display().to_string())?;
        for i in 1..=mib {
            f.write_all(&buf)?;
            if fsync_mib > 0 && i % fsync_mib == 0 {
                f.sync_data()?;
            }
        }
        f.sync_all()?;
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    Ok(
        json!({"limit": "disk_seq_write_fsync", "mib": mib, "fsync_every_mib": fsync_mib,
        "secs": secs, "mb_per_s": (mib as f64 * 1048576.0 / 1e6 / secs * 100.0).round() / 100.0}),
    )
}

fn tcp(run: Duration) -> anyhow::Result<serde_json::Value> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    let mut s = std::net::TcpStream::connect(addr)?;
    let buf = vec![0xa5u8; 1 << 20];
    let start = Instant::now();
    while start.elapsed() < run {
        s.write_all(&buf)?;
    }
    drop(s);
    let total = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
    let secs = start.elapsed().as_secs_f64();
    Ok(
        json!({"limit": "loopback_tcp", "bytes": total, "secs": secs,
        "mb_per_s": (total as f64 / 1e6 / secs * 100.0).round() / 100.0}),
    )
}

async fn s3(
    endpoint: &str,
    bucket: &str,
    access_key: &str,
    secret_key: &str,
    object_mib: u64,
    block: u64,
    concurrency: usize,
) -> anyhow::Result<serde_json::Value> {
    let store: Arc<dyn ObjectStore> = Arc::new(
        AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_endpoint(endpoint)
            .with_access_key_id(access_key)
            .with_secret_access_key(secret_key)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()?,
    );
    let key = ObjectPath::from(format!("shale-limits/object-{object_mib}"));
    let size = object_mib << 20;
    store
        .put(&key, PutPayload::from(vec![0x3cu8; size as usize]))
        .await
        .context("put")?;
    let ranges: Vec<std::ops::Range<u64>> = (0..size.div_ceil(block))
        .map(|i| i * block..((i + 1) * block).min(size))
        .collect();
    // A sliding window: a new GET starts as soon as one finishes, `concurrency` in flight.
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(ranges.len());
    let mut inflight = tokio::task::JoinSet::new();
    let mut pending = ranges.into_iter();
    loop {
        while inflight.len() < concurrency.max(1) {
            let Some(r) = pending.next() else { break };
            let (store, key) = (store.clone(), key.clone());
            inflight.spawn(async move {
                let t = Instant::now();
                store.get_range(&key, r).await.map(|_| t.elapsed())
            });
        }
        let Some(done) = inflight.join_next().await else {
            break;
        };
        latencies.push(done?.context("ranged get")?.as_secs_f64() * 1e3);
    }
    let secs = start.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let p50 = latencies.get(latencies.len() / 2).copied().unwrap_or(0.0);
    let _ = store.delete(&key).await;
    Ok(
        json!({"limit": "s3_ranged_get", "object_mib": object_mib, "block": block,
        "concurrency": concurrency, "gets": latencies.len(), "secs": secs, "get_p50_ms": p50,
        "mb_per_s": (size as f64 / 1e6 / secs * 100.0).round() / 100.0}),
    )
}
