//! Human-readable dumps of log-dir files for `shale dump-log`, in the style of Kafka's
//! `kafka-dump-log.sh`: `.log` (batches, optionally records), `.index`, `.timeindex`, `.txnindex`,
//! `.snapshot` and text checkpoints / metadata files.

use std::fs;
use std::io::Write;
use std::path::Path;

use bytes::Bytes;
use shale_protocol::record_batch::{batches, RecordBatch, TimestampType};

use crate::error::{LogError, Result};
use crate::producer_state::decode_snapshot;

fn out_err(path: &Path, e: std::io::Error) -> LogError {
    LogError::io(path, e)
}

fn base_of(path: &Path) -> i64 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Writes a dump of `path` to `out`; `print_records` adds one line per record for `.log` files.
pub fn dump_file(path: &Path, print_records: bool, out: &mut dyn Write) -> Result<()> {
    let data = fs::read(path).map_err(|e| LogError::io(path, e))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let w = |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(|e| out_err(path, e));
    w(out, format!("Dumping {}", path.display()))?;
    let base = base_of(path);
    if is_batch_checkpoint(&name) {
        // A KRaft snapshot (`<end offset>-<epoch>.checkpoint`) or `bootstrap.checkpoint`:
        // record batches from offset 0, as kafka-dump-log.sh reads them.
        dump_log(path, Bytes::from(data), 0, print_records, out)
    } else if name.ends_with(".log") {
        dump_log(path, Bytes::from(data), base, print_records, out)
    } else if name.ends_with(".index") {
        dump_offset_index(path, &data, base, out)
    } else if name.ends_with(".txnindex") {
        dump_txn_index(path, &data, out)
    } else if name.ends_with(".timeindex") {
        for (i, c) in data.chunks_exact(12).enumerate() {
            let mut t = [0u8; 8];
            t.copy_from_slice(&c[..8]);
            let ts = i64::from_be_bytes(t);
            let rel = u32::from_be_bytes([c[8], c[9], c[10], c[11]]);
            if i > 0 && rel == 0 {
                break;
            }
            w(
                out,
                format!(
                    "timestamp: {} offset: {}",
                    ts,
                    base.wrapping_add(i64::from(rel))
                ),
            )?;
        }
        Ok(())
    } else if name.ends_with(".snapshot") {
        for e in decode_snapshot(path, &data)? {
            let txn = if e.txn_first_offset < 0 {
                "OptionalLong.empty".to_string()
            } else {
                format!("OptionalLong[{}]", e.txn_first_offset)
            };
            let mut line = format!(
                "producerId: {} producerEpoch: {} coordinatorEpoch: {} currentTxnFirstOffset: {} lastTimestamp: {}",
                e.producer_id, e.epoch, e.coordinator_epoch, txn, e.timestamp
            );
            if e.last_offset >= 0 {
                let first_seq =
                    crate::producer_state::decrement_sequence(e.last_seq, e.offset_delta);
                line.push_str(&format!(
                    " firstSequence: {} lastSequence: {} lastOffset: {} offsetDelta: {} timestamp: {}",
                    first_seq, e.last_seq, e.last_offset, e.offset_delta, e.timestamp
                ));
            }
            w(out, line)?;
        }
        Ok(())
    } else {
        out.write_all(&data).map_err(|e| out_err(path, e))
    }
}

/// `.index` entries as `offset: <o> position: <p>`.
fn dump_offset_index(path: &Path, data: &[u8], base: i64, out: &mut dyn Write) -> Result<()> {
    let w = |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(|e| out_err(path, e));
    if data.len() < 8 {
        return w(out, format!("{} is empty.", path.display()));
    }
    for (i, c) in data.chunks_exact(8).enumerate() {
        let rel = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        let pos = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
        // A crash can leave a zero-filled preallocated tail: stop at the first such entry.
        if i > 0 && rel == 0 {
            break;
        }
        w(
            out,
            format!(
                "offset: {} position: {}",
                base.wrapping_add(i64::from(rel)),
                pos
            ),
        )?;
    }
    Ok(())
}

/// `.txnindex` entries in the style of Kafka's dump of aborted transactions.
fn dump_txn_index(path: &Path, data: &[u8], out: &mut dyn Write) -> Result<()> {
    for c in data.chunks_exact(crate::txn_index::ENTRY_SIZE) {
        let at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&c[o..o + 8]);
            i64::from_be_bytes(a)
        };
        writeln!(
            out,
            "version: {} producerId: {} firstOffset: {} lastOffset: {} lastStableOffset: {}",
            i16::from_be_bytes([c[0], c[1]]),
            at(2),
            at(10),
            at(18),
            at(26)
        )
        .map_err(|e| out_err(path, e))?;
    }
    Ok(())
}

/// `bootstrap.checkpoint`, or `<20 digits>-<10 digits>.checkpoint` (a metadata snapshot).
fn is_batch_checkpoint(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".checkpoint") else {
        return false;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    stem == "bootstrap"
        || stem
            .split_once('-')
            .is_some_and(|(end, epoch)| digits(end, 20) && digits(epoch, 10))
}

fn dump_log(
    path: &Path,
    data: Bytes,
    base: i64,
    print_records: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let wl = |out: &mut dyn Write, s: String| writeln!(out, "{s}").map_err(|e| out_err(path, e));
    wl(out, format!("Log starting offset: {base}"))?;
    let mut position = 0usize;
    for item in batches(data.clone()) {
        let b = match item {
            Ok(b) => b,
            Err(e) => {
                wl(
                    out,
                    format!("Found invalid batch at position {position}: {e}"),
                )?;
                break;
            }
        };
        wl(out, batch_line(&b, position))?;
        if print_records {
            dump_records(path, &b, out)?;
        }
        position += b.size();
    }
    let trailing = data.len() - position;
    if trailing > 0 {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        wl(
            out,
            format!("Found {trailing} invalid bytes at the end of {file}"),
        )?;
    }
    Ok(())
}

fn ts_label(b: &RecordBatch) -> &'static str {
    match b.timestamp_type() {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

fn batch_line(b: &RecordBatch, position: usize) -> String {
    let codec = b.compression().map_or("unknown", |c| c.name());
    let horizon = b
        .delete_horizon_ms()
        .map_or("OptionalLong.empty".to_string(), |h| {
            format!("OptionalLong[{h}]")
        });
    format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {} deleteHorizonMs: {} position: {} {}: {} size: {} magic: {} compresscodec: {} crc: {} isvalid: {}",
        b.base_offset(),
        b.last_offset(),
        b.record_count(),
        b.base_sequence(),
        b.last_sequence(),
        b.producer_id(),
        b.producer_epoch(),
        b.partition_leader_epoch(),
        b.is_transactional(),
        b.is_control(),
        horizon,
        position,
        ts_label(b),
        b.max_timestamp(),
        b.size(),
        b.magic(),
        codec,
        b.crc(),
        b.verify_crc().is_ok()
    )
}

fn dump_records(path: &Path, b: &RecordBatch, out: &mut dyn Write) -> Result<()> {
    let mut lines = Vec::new();
    let res = b.for_each_record(|r| {
        let seq = if b.base_sequence() >= 0 {
            shale_protocol::record_batch::increment_sequence(b.base_sequence(), r.offset_delta)
        } else {
            -1
        };
        let keys: Vec<String> = r
            .headers
            .iter()
            .map(|h| String::from_utf8_lossy(&h.key).into_owned())
            .collect();
        let mut line = format!(
            "| offset: {} {}: {} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
            b.base_offset().wrapping_add(i64::from(r.offset_delta)),
            ts_label(b),
            b.record_timestamp(r),
            r.key.as_ref().map_or(-1, |k| k.len() as i64),
            r.value.as_ref().map_or(-1, |v| v.len() as i64),
            seq,
            keys.join(",")
        );
        // As kafka-dump-log --print-data-log: key and payload, when present, as text.
        if let Some(k) = &r.key {
            line.push_str(&format!(" key: {}", String::from_utf8_lossy(k)));
        }
        if let Some(v) = &r.value {
            line.push_str(&format!(" payload: {}", String::from_utf8_lossy(v)));
        }
        lines.push(line);
        Ok(())
    });
    for l in lines {
        writeln!(out, "{l}").map_err(|e| out_err(path, e))?;
    }
    if let Err(e) = res {
        writeln!(out, "| invalid records: {e}").map_err(|e| out_err(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shale_protocol::record::BatchBuilder;

    #[test]
    fn records_past_the_end_of_the_offset_range_dump_without_overflow() {
        let mut b = BatchBuilder::new(0);
        b.base_offset = i64::MAX;
        b.push(0, None, Some(Bytes::from_static(b"a")), Vec::new());
        b.push(0, None, Some(Bytes::from_static(b"b")), Vec::new());
        let batch = b.build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        fs::write(&path, batch.as_bytes()).unwrap();
        let mut out = Vec::new();
        dump_file(&path, true, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(&format!("| offset: {} ", i64::MIN)), "{text}");
    }
}
