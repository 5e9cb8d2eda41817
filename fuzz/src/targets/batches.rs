//! `record_batch`: concatenated RecordBatch v2 bytes, as a Produce request or a segment read
//! carries them, through everything the broker does to a client batch before appending it: the
//! splitter, every header getter, the CRC check, decompression, both record parsers (owned
//! [`Record`]s and borrowed views, which must agree) and the rebuild for `compression.type`.
//!
//! Seeds: the real librdkafka and kafka-python batches of every codec
//! (`protocol/tests/fixtures/*.hex`), batches built here with headers, producer ids, control and
//! transactional flags, and concatenations of them. Three in four inputs get their CRCs fixed
//! after mutation so that they reach the record parsers.

use bytes::Bytes;
use shale_protocol::compression::Compression;
use shale_protocol::rebuild::{rebuild, RebuildTarget};
use shale_protocol::record::{BatchBuilder, Header, Record};
use shale_protocol::record_batch::{batches, RecordBatch, TimestampType};

use super::{maybe_fix_batch_crcs, unhex, Target};
use crate::rng::FuzzRng;
use crate::runner::Outcome;

const FIXTURES: [&str; 10] = [
    include_str!("../../../protocol/tests/fixtures/librdkafka_none.hex"),
    include_str!("../../../protocol/tests/fixtures/librdkafka_gzip.hex"),
    include_str!("../../../protocol/tests/fixtures/librdkafka_snappy.hex"),
    include_str!("../../../protocol/tests/fixtures/librdkafka_lz4.hex"),
    include_str!("../../../protocol/tests/fixtures/librdkafka_zstd.hex"),
    include_str!("../../../protocol/tests/fixtures/kafka_python_none.hex"),
    include_str!("../../../protocol/tests/fixtures/kafka_python_gzip.hex"),
    include_str!("../../../protocol/tests/fixtures/kafka_python_snappy.hex"),
    include_str!("../../../protocol/tests/fixtures/kafka_python_lz4.hex"),
    include_str!("../../../protocol/tests/fixtures/kafka_python_zstd.hex"),
];

/// The real client batches, one per client and codec.
pub fn client_batches() -> Vec<Vec<u8>> {
    FIXTURES.iter().map(|h| unhex(h)).collect()
}

/// Batches built here: every codec, headers, null keys and values, an idempotent producer, a
/// transactional batch and a commit marker.
pub fn built_batches() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, codec) in Compression::ALL.into_iter().enumerate() {
        let mut b = BatchBuilder::new(1_700_000_000_000);
        b.compression = codec;
        b.base_offset = i as i64 * 10;
        b.producer_id = 4242;
        b.producer_epoch = 1;
        b.base_sequence = 5;
        b.is_transactional = i % 2 == 1;
        b.timestamp_type = if i == 3 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        };
        let header = Header::new(Bytes::from_static(b"trace"), Some(Bytes::from_static(b"1")));
        b.push(
            1_700_000_000_000,
            Some(Bytes::from_static(b"key")),
            Some(Bytes::from(vec![b'v'; 40])),
            vec![header.clone(), header],
        );
        b.push(1_700_000_000_005, None, None, Vec::new());
        b.push(
            1_700_000_000_002,
            Some(Bytes::new()),
            Some(Bytes::new()),
            Vec::new(),
        );
        if let Ok(batch) = b.build() {
            out.push(batch.as_bytes().to_vec());
        }
    }
    let mut marker = BatchBuilder::new(1_700_000_000_000);
    marker.is_control = true;
    marker.is_transactional = true;
    marker.producer_id = 4242;
    marker.producer_epoch = 1;
    let key = Bytes::from_static(&[0, 0, 0, 1]);
    let value = Bytes::from_static(&[0, 0, 0, 0, 0, 3]);
    marker.push(1_700_000_000_000, Some(key), Some(value), Vec::new());
    if let Ok(batch) = marker.build() {
        out.push(batch.as_bytes().to_vec());
    }
    out
}

/// All batch seeds: single batches, and a few concatenations.
pub fn batch_seeds() -> Vec<Vec<u8>> {
    let mut seeds = client_batches();
    seeds.extend(built_batches());
    let singles = seeds.clone();
    for pair in singles.windows(2).step_by(3) {
        seeds.push([pair[0].as_slice(), pair[1].as_slice()].concat());
    }
    seeds
}

/// The `record_batch` target.
#[derive(Debug)]
pub struct RecordBatchTarget {
    seeds: Vec<Vec<u8>>,
    inputs: u64,
}

impl RecordBatchTarget {
    pub fn new() -> Self {
        RecordBatchTarget {
            seeds: batch_seeds(),
            inputs: 0,
        }
    }
}

impl Default for RecordBatchTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for RecordBatchTarget {
    fn name(&self) -> &str {
        "record_batch"
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn fixup(&self, input: &mut Vec<u8>, _seed: &[u8], rng: &mut FuzzRng) {
        maybe_fix_batch_crcs(input, rng);
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        self.inputs += 1;
        let mut accepted = false;
        let mut iter = batches(Bytes::copy_from_slice(input));
        for batch in iter.by_ref() {
            let Ok(batch) = batch else { break };
            accepted |= check_batch(&batch, self.inputs & 7 == 0)?;
        }
        let _ = (iter.position(), iter.truncated_tail());
        Ok(if accepted {
            Outcome::Accepted
        } else {
            Outcome::Rejected
        })
    }
}

/// Exercises one batch; `Ok(true)` if its records parsed. `Err` if the two record parsers
/// disagree.
pub fn check_batch(batch: &RecordBatch, try_rebuild: bool) -> Result<bool, String> {
    let _ = (
        batch.base_offset(),
        batch.last_offset(),
        batch.next_offset(),
        batch.last_sequence(),
        batch.timestamp_type(),
        batch.delete_horizon_ms(),
        batch.is_control(),
        batch.is_transactional(),
        batch.size(),
        batch.header(),
    );
    let crc_ok = batch.verify_crc().is_ok();
    let owned = batch.records();
    let mut views = Vec::new();
    let viewed = batch.for_each_record_view(|r| {
        views.push((
            r.offset_delta,
            r.key.map(<[u8]>::to_vec),
            r.value.map(<[u8]>::to_vec),
        ));
        let _ = batch.record_view_timestamp(r);
        Ok(())
    });
    match (&owned, &viewed) {
        (Ok(records), Ok(())) => compare(records, &views)?,
        (Ok(_), Err(e)) => return Err(format!("records() parsed, record views failed: {e}")),
        (Err(e), Ok(())) => return Err(format!("record views parsed, records() failed: {e}")),
        (Err(_), Err(_)) => {}
    }
    let _ = batch.max_record_timestamp();
    if let (Ok(records), true) = (&owned, try_rebuild && crc_ok) {
        for r in records {
            let _ = batch.record_timestamp(r);
        }
        let target = RebuildTarget {
            compression: match batch.compression() {
                Ok(Compression::None) => Compression::Lz4,
                _ => Compression::None,
            },
            level: None,
            timestamp_type: TimestampType::CreateTime,
            log_append_time: 1_700_000_000_000,
        };
        if let Ok(payload) = batch.records_payload(1 << 20) {
            if let Ok(rebuilt) = rebuild(batch, &payload, &target) {
                let again = rebuilt
                    .records()
                    .map_err(|e| format!("rebuilt batch: {e}"))?;
                if again.len() != records.len() {
                    return Err(format!(
                        "rebuilt batch has {} records, the source {}",
                        again.len(),
                        records.len()
                    ));
                }
            }
        }
    }
    Ok(owned.is_ok())
}

type View = (i32, Option<Vec<u8>>, Option<Vec<u8>>);

fn compare(records: &[Record], views: &[View]) -> Result<(), String> {
    if records.len() != views.len() {
        return Err(format!(
            "records() found {} records, views {}",
            records.len(),
            views.len()
        ));
    }
    for (r, (delta, key, value)) in records.iter().zip(views) {
        if r.offset_delta != *delta
            || r.key.as_deref() != key.as_deref()
            || r.value.as_deref() != value.as_deref()
        {
            return Err(format!(
                "record at delta {delta} differs between the parsers"
            ));
        }
    }
    Ok(())
}
