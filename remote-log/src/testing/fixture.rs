//! [`SegmentFixture`]: a Kafka-format segment on disk (`.log` of v2 batches, offset and time
//! indexes, optional txn index and producer snapshot, leader-epoch checkpoint) with matching
//! [`RemoteLogSegmentMetadata`], for tests of the RSM, caches and reader.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use shale_protocol::record::BatchBuilder;
use shale_protocol::record_batch::RecordBatch;
use uuid::Uuid;

use crate::meta::{
    RemoteLogSegmentId, RemoteLogSegmentMetadata, RemoteLogSegmentState, TopicIdPartition,
};
use crate::rsm::LogSegmentData;

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "shale-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// The path.
    pub fn path(&self) -> &FsPath {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where one batch of a fixture lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// First offset.
    pub base_offset: i64,
    /// Last offset.
    pub last_offset: i64,
    /// Byte position in the `.log`.
    pub position: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Shape of a fixture segment.
#[derive(Debug, Clone)]
pub struct FixtureSpec {
    /// Base offset.
    pub base_offset: i64,
    /// Number of batches.
    pub batches: usize,
    /// Records per batch.
    pub records_per_batch: usize,
    /// Bytes of each record value.
    pub value_size: usize,
    /// Offset-index interval in bytes (Kafka's `index.interval.bytes`).
    pub index_interval: u64,
    /// Write a transaction index and a producer snapshot.
    pub with_txn_and_snapshot: bool,
}

impl Default for FixtureSpec {
    fn default() -> Self {
        FixtureSpec {
            base_offset: 100,
            batches: 20,
            records_per_batch: 5,
            value_size: 100,
            index_interval: 1024,
            with_txn_and_snapshot: true,
        }
    }
}

/// Timestamp of the record at `offset` in fixtures.
pub fn fixture_timestamp(offset: i64) -> i64 {
    1_700_000_000_000 + offset * 10
}

/// A segment on disk plus its metadata.
#[derive(Debug)]
pub struct SegmentFixture {
    /// Holds the files.
    pub dir: TempDir,
    /// The files as handed to `copy_log_segment`.
    pub data: LogSegmentData,
    /// Metadata (COPY_SEGMENT_STARTED, no custom metadata).
    pub meta: RemoteLogSegmentMetadata,
    /// The `.log` bytes.
    pub log: Bytes,
    /// Batch positions.
    pub batches: Vec<BatchInfo>,
}

fn build_batch(base: i64, n: usize, value_size: usize) -> RecordBatch {
    let mut b = BatchBuilder::new(fixture_timestamp(base));
    b.base_offset = base;
    b.partition_leader_epoch = 0;
    for i in 0..n as i64 {
        let v = Bytes::from(vec![(base + i) as u8; value_size]);
        b.push(fixture_timestamp(base + i), None, Some(v), Vec::new());
    }
    b.build().expect("fixture batch builds")
}

impl SegmentFixture {
    /// Writes a segment of `spec` for partition `tp` with a fresh segment id.
    pub fn build(tp: &TopicIdPartition, spec: &FixtureSpec) -> Self {
        let dir = TempDir::new("segment");
        let (mut log, mut oidx, mut tidx) = (BytesMut::new(), BytesMut::new(), BytesMut::new());
        let mut batches = Vec::new();
        let (mut since_index, mut max_ts) = (0u64, i64::MIN);
        let mut off = spec.base_offset;
        for _ in 0..spec.batches {
            let batch = build_batch(off, spec.records_per_batch, spec.value_size);
            let pos = log.len() as u64;
            let last = batch.last_offset();
            if since_index >= spec.index_interval {
                oidx.put_i32((last - spec.base_offset) as i32);
                oidx.put_i32(pos as i32);
                since_index = 0;
            }
            if batch.max_timestamp() > max_ts {
                max_ts = batch.max_timestamp();
                tidx.put_i64(max_ts);
                tidx.put_i32((last - spec.base_offset) as i32);
            }
            since_index += batch.size() as u64;
            log.put_slice(batch.as_bytes());
            batches.push(BatchInfo {
                base_offset: off,
                last_offset: last,
                position: pos,
                size: batch.size() as u64,
            });
            off = last + 1;
        }
        let write = |name: &str, b: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, b).expect("write fixture file");
            p
        };
        let name = format!("{:020}", spec.base_offset);
        let (txn, snap) = if spec.with_txn_and_snapshot {
            (
                Some(write(&format!("{name}.txnindex"), &[7u8; 40])),
                Some(write(&format!("{name}.snapshot"), b"producer-snapshot")),
            )
        } else {
            (None, None)
        };
        let data = LogSegmentData {
            log: write(&format!("{name}.log"), &log),
            offset_index: write(&format!("{name}.index"), &oidx),
            time_index: write(&format!("{name}.timeindex"), &tidx),
            txn_index: txn,
            producer_snapshot: snap,
            leader_epochs: Bytes::from(format!("0\n1\n0 {}\n", spec.base_offset)),
        };
        let meta = RemoteLogSegmentMetadata {
            id: RemoteLogSegmentId {
                tp: tp.clone(),
                id: Uuid::new_v4(),
            },
            start_offset: spec.base_offset,
            end_offset: off - 1,
            max_timestamp_ms: max_ts,
            broker_id: 0,
            event_timestamp_ms: 0,
            segment_leader_epochs: BTreeMap::from([(0, spec.base_offset)]),
            segment_size_in_bytes: log.len() as i32,
            custom_metadata: None,
            state: RemoteLogSegmentState::CopySegmentStarted,
        };
        SegmentFixture {
            dir,
            data,
            meta,
            log: log.freeze(),
            batches,
        }
    }

    /// The metadata with the custom metadata returned by the copy.
    pub fn finished(&self, custom: Option<Bytes>) -> RemoteLogSegmentMetadata {
        RemoteLogSegmentMetadata {
            custom_metadata: custom,
            state: RemoteLogSegmentState::CopySegmentFinished,
            ..self.meta.clone()
        }
    }
}

/// A topic partition for tests.
pub fn test_tp(topic: &str, partition: i32) -> TopicIdPartition {
    TopicIdPartition {
        topic_id: {
            let h = u128::from(crc32c::crc32c(topic.as_bytes()));
            Uuid::from_u128((h << 96) | (h << 32) | 0x5a1e)
        },
        topic: topic.into(),
        partition,
    }
}
