//! The local RLMM snapshot file: the whole [`RemotePartitionMetadataStore`] (segments, per-epoch
//! state, partition-delete events) plus, per metadata partition, the last record offset it covers.
//! On start the manager loads it and replays each metadata partition from the covered offset + 1,
//! instead of from offset 0 (Kafka has no such file and always replays everything).
//!
//! Layout (big-endian; strings/uuids as in the record format):
//! ```text
//! magic "SHRLMMSN" | version i16 (=1) | written_at_ms i64 | num_metadata_partitions i32
//! | n u32 { metadata_partition i32, last_processed_offset i64 }
//! | n u32 { topic compact-string, topic_id uuid, partition i32,
//!           has_delete u8 [state i8, event_ts i64, broker i32],
//!           has_cache u8 [ n u32 { len u32, apiKey-0 record value },
//!                          n u32 { epoch i32, has_highest u8, highest i64,
//!                                  n u32 { start i64, segment uuid }, n u32 { segment uuid } } ] }
//! | crc32c u32 of everything before it
//! ```
//! The per-epoch state is stored verbatim because it depends on event order (supersession,
//! never-lowered highest offsets) and cannot be rebuilt from the segments alone. Files are
//! written to `<path>.tmp`, fsynced, renamed over `<path>`, and the directory is fsynced.

use crate::cache::{EpochState, RemoteLogMetadataCache};
use crate::error::{Result, RlmmError};
use crate::metadata::{RemoteLogMetadata, RemotePartitionDeleteMetadata, TopicIdPartition};
use crate::serde;
use crate::state::RemotePartitionDeleteState;
use crate::store::RemotePartitionMetadataStore;
use crate::wire::{put_compact_string, put_uuid, Reader};
use bytes::{BufMut, BytesMut};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SHRLMMSN";
const VERSION: i16 = 1;

/// Serializes `store` as a snapshot for a topic with `num_partitions` metadata partitions.
pub fn encode(
    store: &RemotePartitionMetadataStore,
    num_partitions: i32,
    written_at_ms: i64,
) -> Vec<u8> {
    let mut buf = BytesMut::with_capacity(4096);
    buf.put_slice(MAGIC);
    buf.put_i16(VERSION);
    buf.put_i64(written_at_ms);
    buf.put_i32(num_partitions);
    buf.put_u32(store.processed.len() as u32);
    for (mp, offset) in &store.processed {
        buf.put_i32(*mp);
        buf.put_i64(*offset);
    }
    let partitions = store.partitions();
    buf.put_u32(partitions.len() as u32);
    for tp in &partitions {
        put_compact_string(&mut buf, &tp.topic);
        put_uuid(&mut buf, &tp.topic_id);
        buf.put_i32(tp.partition);
        match store.delete_metadata.get(tp) {
            None => buf.put_u8(0),
            Some(d) => {
                buf.put_u8(1);
                buf.put_i8(d.state.id());
                buf.put_i64(d.event_timestamp_ms);
                buf.put_i32(d.broker_id);
            }
        }
        match store.caches.get(tp) {
            None => buf.put_u8(0),
            Some(cache) => {
                buf.put_u8(1);
                put_cache(&mut buf, cache);
            }
        }
    }
    let crc = crc32c::crc32c(&buf);
    buf.put_u32(crc);
    buf.to_vec()
}

fn put_cache(buf: &mut BytesMut, cache: &RemoteLogMetadataCache) {
    buf.put_u32(cache.segments.len() as u32);
    for m in cache.segments.values() {
        let record = serde::encode(&RemoteLogMetadata::Segment(m.clone()));
        buf.put_u32(record.len() as u32);
        buf.put_slice(&record);
    }
    buf.put_u32(cache.epochs.len() as u32);
    for (epoch, state) in &cache.epochs {
        buf.put_i32(*epoch);
        buf.put_u8(u8::from(state.highest_log_offset.is_some()));
        buf.put_i64(state.highest_log_offset.unwrap_or(-1));
        buf.put_u32(state.offset_to_id.len() as u32);
        for (start, id) in &state.offset_to_id {
            buf.put_i64(*start);
            put_uuid(buf, id);
        }
        buf.put_u32(state.unreferenced.len() as u32);
        for id in &state.unreferenced {
            put_uuid(buf, id);
        }
    }
}

/// Parses a snapshot; any damage, a different metadata partition count or an inconsistent cache is
/// an error (the caller then replays from scratch).
pub fn decode(bytes: &[u8], num_partitions: i32) -> Result<RemotePartitionMetadataStore> {
    if bytes.len() < MAGIC.len() + 4 {
        return Err(RlmmError::serde("snapshot too short"));
    }
    let (body, crc_bytes) = bytes.split_at(bytes.len() - 4);
    let stored = Reader::new(crc_bytes).u32("snapshot crc")?;
    if crc32c::crc32c(body) != stored {
        return Err(RlmmError::serde("snapshot CRC mismatch"));
    }
    let mut r = Reader::new(body);
    if r.take(MAGIC.len(), "snapshot magic")? != MAGIC {
        return Err(RlmmError::serde("not an RLMM snapshot (bad magic)"));
    }
    let version = r.i16("snapshot version")?;
    if version != VERSION {
        return Err(RlmmError::serde(format!(
            "unknown snapshot version {version}"
        )));
    }
    r.i64("written at")?;
    let n = r.i32("metadata partition count")?;
    if n != num_partitions {
        return Err(RlmmError::PartitionCountMismatch {
            expected: num_partitions,
            actual: n,
        });
    }
    let mut store = RemotePartitionMetadataStore::new();
    for _ in 0..r.u32("processed count")? {
        let mp = r.i32("metadata partition")?;
        let offset = r.i64("processed offset")?;
        store.processed.insert(mp, offset);
    }
    for _ in 0..r.u32("partition count")? {
        read_partition(&mut r, &mut store)?;
    }
    if r.remaining() != 0 {
        return Err(RlmmError::serde("trailing bytes in snapshot"));
    }
    Ok(store)
}

fn read_partition(r: &mut Reader<'_>, store: &mut RemotePartitionMetadataStore) -> Result<()> {
    let topic = r.compact_string("snapshot topic")?;
    let topic_id = r.uuid("snapshot topic id")?;
    let partition = r.i32("snapshot partition")?;
    let tp = TopicIdPartition::new(topic_id, topic, partition);
    if r.u8("delete flag")? == 1 {
        let raw = r.i8("delete state")?;
        let state = RemotePartitionDeleteState::from_id(raw)
            .ok_or_else(|| RlmmError::serde(format!("unknown partition delete state {raw}")))?;
        let event_timestamp_ms = r.i64("delete event ts")?;
        let broker_id = r.i32("delete broker")?;
        let d = RemotePartitionDeleteMetadata {
            tp: tp.clone(),
            state,
            event_timestamp_ms,
            broker_id,
        };
        store.delete_metadata.insert(tp.clone(), d);
    }
    if r.u8("cache flag")? == 1 {
        let cache = read_cache(r, tp.clone())?;
        store.caches.insert(tp, cache);
    }
    Ok(())
}

fn read_cache(r: &mut Reader<'_>, tp: TopicIdPartition) -> Result<RemoteLogMetadataCache> {
    let mut cache = RemoteLogMetadataCache::new(tp);
    for _ in 0..r.u32("segment count")? {
        let len = r.u32("segment length")? as usize;
        let record = r.take(len, "segment record")?;
        let RemoteLogMetadata::Segment(m) = serde::decode(record)? else {
            return Err(RlmmError::serde(
                "snapshot segment is not an apiKey-0 record",
            ));
        };
        cache.segments.insert(m.id.id, m);
    }
    let mut epochs = BTreeMap::new();
    for _ in 0..r.u32("epoch count")? {
        let epoch = r.i32("epoch")?;
        let has_highest = r.u8("has highest")? == 1;
        let highest = r.i64("highest")?;
        let mut state = EpochState {
            highest_log_offset: has_highest.then_some(highest),
            ..EpochState::default()
        };
        for _ in 0..r.u32("referenced count")? {
            let start = r.i64("referenced start")?;
            state.offset_to_id.insert(start, r.uuid("referenced id")?);
        }
        for _ in 0..r.u32("unreferenced count")? {
            state.unreferenced.insert(r.uuid("unreferenced id")?);
        }
        epochs.insert(epoch, state);
    }
    cache.epochs = epochs;
    cache.check_consistency()?;
    Ok(cache)
}

/// Reads the snapshot file; `Ok(None)` if it does not exist.
pub(crate) fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RlmmError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| RlmmError::Io { path: p, source }
    };
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let d = std::fs::File::open(dir).map_err(io(dir))?;
        d.sync_all().map_err(io(dir))?;
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".tmp");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{
        RemoteLogSegmentId, RemoteLogSegmentMetadata, RemoteLogSegmentMetadataUpdate,
    };
    use crate::state::RemoteLogSegmentState;
    use uuid::Uuid;

    fn populated() -> RemotePartitionMetadataStore {
        let mut s = RemotePartitionMetadataStore::new();
        let tp = TopicIdPartition::new(Uuid::from_u128(5), "foo", 1);
        let mut offset = 0;
        for (n, start, end) in [(1u128, 10, 100), (2, 5, 150), (3, 151, 200)] {
            let id = RemoteLogSegmentId::new(tp.clone(), Uuid::from_u128(n));
            let epochs = BTreeMap::from([(0, start)]);
            let m =
                RemoteLogSegmentMetadata::new(id.clone(), start, end, 9, 1, 2, 64, epochs).unwrap();
            s.apply(7, offset, &RemoteLogMetadata::Segment(m));
            let u = RemoteLogSegmentMetadataUpdate {
                id,
                event_timestamp_ms: 3,
                custom_metadata: Some(bytes::Bytes::from_static(b"cm")),
                state: RemoteLogSegmentState::CopySegmentFinished,
                broker_id: 1,
            };
            s.apply(7, offset + 1, &RemoteLogMetadata::Update(u));
            offset += 2;
        }
        let other = TopicIdPartition::new(Uuid::from_u128(6), "bar", 0);
        let d = RemotePartitionDeleteMetadata {
            tp: other,
            state: RemotePartitionDeleteState::DeletePartitionMarked,
            event_timestamp_ms: 4,
            broker_id: 2,
        };
        s.apply(2, 40, &RemoteLogMetadata::PartitionDelete(d));
        s
    }

    #[test]
    fn round_trip_preserves_everything() {
        let s = populated();
        let bytes = encode(&s, 50, 123);
        let back = decode(&bytes, 50).unwrap();
        assert_eq!(back.caches, s.caches);
        assert_eq!(back.delete_metadata, s.delete_metadata);
        assert_eq!(back.processed, s.processed);
        assert!(!back.initialized);
    }

    #[test]
    fn damage_is_detected() {
        let bytes = encode(&populated(), 50, 123);
        for i in [0, 9, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(decode(&b, 50).is_err(), "flip at {i}");
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len], 50).is_err(), "truncated to {len}");
        }
        assert!(matches!(
            decode(&bytes, 10),
            Err(RlmmError::PartitionCountMismatch {
                expected: 10,
                actual: 50
            })
        ));
    }

    #[test]
    fn file_write_is_atomic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("remote-log-metadata-snapshot");
        assert!(read_file(&path).unwrap().is_none());
        write_file(&path, b"one").unwrap();
        write_file(&path, b"two").unwrap();
        assert_eq!(read_file(&path).unwrap().unwrap(), b"two");
        assert!(!tmp_path(&path).exists());
    }
}
