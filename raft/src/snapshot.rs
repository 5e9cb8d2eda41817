//! Metadata snapshot files (formats.md §6.5) and the batch-file layout they share with
//! `bootstrap.checkpoint` (§6.7): a SnapshotHeader control batch at offset 0, data batches of
//! framed records, a SnapshotFooter control batch; offsets count from 0 inside the file and
//! every batch carries the snapshot epoch.
//!
//! Snapshots are named `<endOffset 20d>-<epoch 10d>.checkpoint` (end offset exclusive), written
//! to a `.part` file, fsynced and renamed, so a crash leaves either the whole file or a `.part`
//! that the next start deletes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use shale_protocol::record_batch::batches;

use crate::batch::{
    control_batch, decode_batch, decode_voter_entries, decode_voters, kraft_version_value,
    snapshot_footer_value, snapshot_header_value, values_batch, voters_entries_value,
    MetadataBatch, VoterEntry, CONTROL_KRAFT_VERSION, CONTROL_KRAFT_VOTERS,
    CONTROL_SNAPSHOT_FOOTER, CONTROL_SNAPSHOT_HEADER,
};
use crate::error::RaftError;
use crate::records::MetadataRecord;

/// Largest data batch (in bytes of record values) written to a snapshot file.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// Identity of a snapshot: the exclusive end offset and the epoch of its last record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SnapshotId {
    pub end_offset: i64,
    pub epoch: i32,
}

impl SnapshotId {
    /// `<endOffset 20d>-<epoch 10d>.checkpoint`.
    pub fn file_name(&self) -> String {
        format!("{:020}-{:010}.checkpoint", self.end_offset, self.epoch)
    }

    /// Parses a finished snapshot's file name.
    pub fn parse(name: &str) -> Option<SnapshotId> {
        let stem = name.strip_suffix(".checkpoint")?;
        let (end, epoch) = stem.split_once('-')?;
        if end.len() != 20 || epoch.len() != 10 {
            return None;
        }
        Some(SnapshotId {
            end_offset: end.parse().ok()?,
            epoch: epoch.parse().ok()?,
        })
    }
}

/// A snapshot file's content.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotContent {
    /// LastContainedLogTimestamp of the header.
    pub last_contained_log_timestamp: i64,
    pub records: Vec<MetadataRecord>,
}

/// Encodes a batch file: header, `records` in data batches, footer.
pub fn encode_batch_file(
    epoch: i32,
    last_contained_log_timestamp: i64,
    now_ms: i64,
    records: &[MetadataRecord],
) -> Result<Bytes, RaftError> {
    let values: Vec<Bytes> = records.iter().map(MetadataRecord::encode).collect();
    encode_checkpoint(epoch, last_contained_log_timestamp, now_ms, None, &values)
}

/// Encodes a checkpoint: the SnapshotHeader; with a dynamic voter set (KIP-853) a
/// KRaftVersionRecord (kraft.version 1) and the VotersRecord, as Kafka writes them; `values`
/// (framed records) in data batches of at most 1 MiB; the SnapshotFooter.
pub fn encode_checkpoint(
    epoch: i32,
    last_contained_log_timestamp: i64,
    now_ms: i64,
    voters: Option<&[VoterEntry]>,
    values: &[Bytes],
) -> Result<Bytes, RaftError> {
    let voters = voters.map(voters_entries_value).transpose()?;
    encode_checkpoint_with(epoch, last_contained_log_timestamp, now_ms, voters, values)
}

/// [`encode_checkpoint`] with an encoded VotersRecord value.
pub fn encode_checkpoint_with(
    epoch: i32,
    last_contained_log_timestamp: i64,
    now_ms: i64,
    voters: Option<Bytes>,
    values: &[Bytes],
) -> Result<Bytes, RaftError> {
    let mut out = BytesMut::new();
    let header = snapshot_header_value(last_contained_log_timestamp)?;
    let mut control = vec![(CONTROL_SNAPSHOT_HEADER, header)];
    if let Some(voters) = voters {
        control.push((CONTROL_KRAFT_VERSION, kraft_version_value(1)));
        control.push((CONTROL_KRAFT_VOTERS, voters));
    }
    let mut offset = 0i64;
    for (control_type, value) in control {
        let b = control_batch(offset, epoch, now_ms, control_type, value)?;
        out.extend_from_slice(b.as_bytes());
        offset += 1;
    }
    let mut start = 0;
    while start < values.len() {
        let mut end = start;
        let mut size = 0;
        while end < values.len() && (end == start || size < MAX_BATCH_BYTES) {
            size += values[end].len();
            end += 1;
        }
        let b = values_batch(offset, epoch, now_ms, &values[start..end])?;
        out.extend_from_slice(b.as_bytes());
        offset += (end - start) as i64;
        start = end;
    }
    let footer = snapshot_footer_value()?;
    let b = control_batch(offset, epoch, now_ms, CONTROL_SNAPSHOT_FOOTER, footer)?;
    out.extend_from_slice(b.as_bytes());
    Ok(out.freeze())
}

/// The voter ids of a checkpoint's VotersRecord (see [`checkpoint_voter_entries`]).
pub fn checkpoint_voters(data: &Bytes) -> Option<Vec<i32>> {
    let entries = checkpoint_voter_entries(data)?;
    Some(entries.iter().map(|v| v.id).collect())
}

/// The voter set of a checkpoint's VotersRecord, read from the control batches before its
/// first data batch; None without one (a static quorum) or when `data` is not a checkpoint.
pub fn checkpoint_voter_entries(data: &Bytes) -> Option<Vec<VoterEntry>> {
    for b in batches(data.clone()) {
        let b = b.ok()?;
        if !b.is_control() {
            return None;
        }
        for r in b.records().ok()? {
            let key = r.key.as_deref().unwrap_or_default();
            if key.len() >= 4 && i16::from_be_bytes([key[2], key[3]]) == CONTROL_KRAFT_VOTERS {
                return decode_voter_entries(r.value.unwrap_or_default()).ok();
            }
        }
    }
    None
}

/// What a checkpoint's raft layer holds besides the records: the voter set of its VotersRecord
/// (None without one: a static quorum), and the raw data-record values.
pub fn checkpoint_contents(data: Bytes) -> Result<(Option<Vec<i32>>, Vec<Bytes>), RaftError> {
    let mut voters = None;
    let mut values = Vec::new();
    for b in batches(data) {
        let b = b?;
        b.verify_crc()?;
        for r in b.records()? {
            if !b.is_control() {
                values.push(r.value.unwrap_or_default());
                continue;
            }
            let key = r.key.as_deref().unwrap_or_default();
            if key.len() >= 4 && i16::from_be_bytes([key[2], key[3]]) == CONTROL_KRAFT_VOTERS {
                voters = Some(decode_voters(r.value.unwrap_or_default())?);
            }
        }
    }
    Ok((voters, values))
}

/// Writes `bytes` to `tmp`, fsyncs, renames to `path` and fsyncs the directory.
pub(crate) fn write_atomic(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<(), RaftError> {
    let mut f = fs::File::create(tmp).map_err(|e| RaftError::io(tmp, e))?;
    f.write_all(bytes).map_err(|e| RaftError::io(tmp, e))?;
    f.sync_all().map_err(|e| RaftError::io(tmp, e))?;
    fs::rename(tmp, path).map_err(|e| RaftError::io(path, e))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            // Directory fsync makes the rename durable; not every platform allows it.
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Parses a batch file, checking the header/footer framing and offsets.
pub fn decode_batch_file(path: &Path, bytes: Bytes) -> Result<SnapshotContent, RaftError> {
    let corrupt = |reason: String| RaftError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let total = bytes.len();
    let mut iter = batches(bytes);
    let mut expected = 0i64;
    let mut header_ts = None;
    let mut footer = false;
    let mut records = Vec::new();
    for b in iter.by_ref() {
        let b = b?;
        if footer {
            return Err(corrupt("batch after the footer".into()));
        }
        if b.base_offset() != expected {
            return Err(corrupt(format!(
                "batch at offset {} where {expected} was expected",
                b.base_offset()
            )));
        }
        expected = b.last_offset() + 1;
        match decode_batch(&b)? {
            MetadataBatch::Control { types, .. } if header_ts.is_none() => {
                if types.first() != Some(&CONTROL_SNAPSHOT_HEADER) {
                    return Err(corrupt("first batch is not a SnapshotHeader".into()));
                }
                let rec = b.records()?;
                let value = rec
                    .first()
                    .and_then(|r| r.value.as_deref())
                    .unwrap_or_default();
                if value.len() < 10 {
                    return Err(corrupt("short SnapshotHeader".into()));
                }
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&value[2..10]);
                header_ts = Some(i64::from_be_bytes(ts));
            }
            _ if header_ts.is_none() => {
                return Err(corrupt("first batch is not a SnapshotHeader".into()))
            }
            MetadataBatch::Control { types, .. } => {
                footer = types.contains(&CONTROL_SNAPSHOT_FOOTER);
            }
            MetadataBatch::Data { records: r, .. } => records.extend(r),
        }
    }
    if iter.position() != total || !footer {
        return Err(corrupt("missing SnapshotFooter (truncated file)".into()));
    }
    Ok(SnapshotContent {
        last_contained_log_timestamp: header_ts.unwrap_or_default(),
        records,
    })
}

/// Reads and validates one batch file.
pub fn read_batch_file(path: &Path) -> Result<SnapshotContent, RaftError> {
    let bytes = fs::read(path).map_err(|e| RaftError::io(path, e))?;
    decode_batch_file(path, Bytes::from(bytes))
}

/// Writes snapshot `id` of `records` into `dir` (via `<name>-<suffix>.checkpoint.part`).
pub fn write_snapshot(
    dir: &Path,
    id: SnapshotId,
    last_contained_log_timestamp: i64,
    now_ms: i64,
    records: &[MetadataRecord],
    suffix: u64,
) -> Result<PathBuf, RaftError> {
    let bytes = encode_batch_file(id.epoch, last_contained_log_timestamp, now_ms, records)?;
    let name = id.file_name();
    let stem = name.trim_end_matches(".checkpoint");
    let tmp = dir.join(format!("{stem}-{suffix:016x}.checkpoint.part"));
    let path = dir.join(&name);
    write_atomic(&path, &tmp, &bytes)?;
    Ok(path)
}

/// Finished snapshots in `dir`, oldest first.
pub fn list_snapshots(dir: &Path) -> Result<Vec<SnapshotId>, RaftError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(RaftError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| RaftError::io(dir, e))?;
        if let Some(id) = entry.file_name().to_str().and_then(SnapshotId::parse) {
            out.push(id);
        }
    }
    out.sort();
    Ok(out)
}

/// Removes leftovers of interrupted writes and deletions (`*.checkpoint.part`, `*.deleted`).
pub fn remove_partial_files(dir: &Path) -> Result<(), RaftError> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".checkpoint.part") || name.ends_with(".checkpoint.deleted") {
            fs::remove_file(entry.path()).map_err(|e| RaftError::io(entry.path(), e))?;
        }
    }
    Ok(())
}

/// Deletes every snapshot older than `keep` (rename to `.deleted`, then remove).
pub fn delete_snapshots_before(dir: &Path, keep: SnapshotId) -> Result<(), RaftError> {
    for id in list_snapshots(dir)? {
        if id < keep {
            let path = dir.join(id.file_name());
            let gone = dir.join(format!("{}.deleted", id.file_name()));
            fs::rename(&path, &gone).map_err(|e| RaftError::io(&path, e))?;
            fs::remove_file(&gone).map_err(|e| RaftError::io(&gone, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::FeatureLevelRecord;

    fn recs(n: usize) -> Vec<MetadataRecord> {
        (0..n)
            .map(|i| {
                MetadataRecord::FeatureLevel(FeatureLevelRecord {
                    name: format!("f{i}"),
                    feature_level: i as i16,
                })
            })
            .collect()
    }

    #[test]
    fn names_parse_and_sort() {
        let id = SnapshotId {
            end_offset: 12345,
            epoch: 3,
        };
        assert_eq!(id.file_name(), "00000000000000012345-0000000003.checkpoint");
        assert_eq!(SnapshotId::parse(&id.file_name()), Some(id));
        assert_eq!(SnapshotId::parse("1-2.checkpoint"), None);
        assert_eq!(
            SnapshotId::parse("00000000000000012345-0000000003.checkpoint.part"),
            None
        );
    }

    #[test]
    fn write_read_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let a = SnapshotId {
            end_offset: 10,
            epoch: 1,
        };
        let b = SnapshotId {
            end_offset: 20,
            epoch: 2,
        };
        write_snapshot(dir.path(), a, 7, 100, &recs(3), 1).unwrap();
        write_snapshot(dir.path(), b, 8, 100, &recs(5), 2).unwrap();
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![a, b]);
        let content = read_batch_file(&dir.path().join(b.file_name())).unwrap();
        assert_eq!(content.records, recs(5));
        assert_eq!(content.last_contained_log_timestamp, 8);
        delete_snapshots_before(dir.path(), b).unwrap();
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![b]);
        // No .part left behind.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn batch_file_layout_and_truncation() {
        let bytes = encode_batch_file(0, 0, 5, &recs(2)).unwrap();
        let all: Vec<_> = batches(bytes.clone()).map(|b| b.unwrap()).collect();
        assert_eq!(all.len(), 3);
        assert_eq!((all[0].base_offset(), all[0].is_control()), (0, true));
        assert_eq!((all[1].base_offset(), all[1].last_offset()), (1, 2));
        assert_eq!((all[2].base_offset(), all[2].is_control()), (3, true));
        assert!(all.iter().all(|b| b.partition_leader_epoch() == 0));
        let p = Path::new("x");
        assert_eq!(
            decode_batch_file(p, bytes.clone()).unwrap().records,
            recs(2)
        );
        for cut in [1, 61, bytes.len() - 1] {
            assert!(
                decode_batch_file(p, bytes.slice(..cut)).is_err(),
                "cut {cut}"
            );
        }
        // Empty record list: header + footer only.
        let empty = encode_batch_file(4, 0, 5, &[]).unwrap();
        assert_eq!(batches(empty.clone()).count(), 2);
        assert!(decode_batch_file(p, empty).unwrap().records.is_empty());
    }
}
