//! The RLMM targets: `rlmm.record` (a `__remote_log_metadata` record value through
//! `serde::decode_record`, then applied to a metadata store as the manager does) and
//! `rlmm.snapshot` (the local RLMM snapshot file through `snapshot::decode`).
//!
//! Seeds: one record of each api key (segment, update, partition delete, snapshot record) and
//! snapshots of a store holding them. Snapshot CRCs are fixed after most mutations.

use std::collections::BTreeMap;

use bytes::Bytes;
use shale_rlmm::metadata::{
    RemoteLogMetadata, RemoteLogSegmentId, RemoteLogSegmentMetadata,
    RemoteLogSegmentMetadataUpdate, RemotePartitionDeleteMetadata, TopicIdPartition,
};
use shale_rlmm::serde::{self, DecodedRecord, RemoteLogSegmentMetadataSnapshot};
use shale_rlmm::snapshot;
use shale_rlmm::state::{RemoteLogSegmentState, RemotePartitionDeleteState};
use shale_rlmm::store::RemotePartitionMetadataStore;
use uuid::Uuid;

use super::{outcome, Target};
use crate::rng::FuzzRng;
use crate::runner::Outcome;

/// Metadata partitions of the snapshot seeds.
const PARTITIONS: i32 = 50;

fn tp(partition: i32) -> TopicIdPartition {
    TopicIdPartition::new(Uuid::from_u128(0xabcd), "events", partition)
}

fn events() -> Vec<RemoteLogMetadata> {
    let id = RemoteLogSegmentId::new(tp(0), Uuid::from_u128(0x5e6));
    let epochs: BTreeMap<i32, i64> = [(0, 0), (2, 40), (5, 90)].into_iter().collect();
    let mut segment = RemoteLogSegmentMetadata {
        id: id.clone(),
        start_offset: 0,
        end_offset: 99,
        max_timestamp_ms: 1_700_000_000_000,
        broker_id: 1,
        event_timestamp_ms: 1_700_000_000_001,
        segment_leader_epochs: epochs,
        segment_size_in_bytes: 4096,
        custom_metadata: None,
        state: RemoteLogSegmentState::CopySegmentStarted,
    };
    let update = RemoteLogSegmentMetadataUpdate {
        id: id.clone(),
        event_timestamp_ms: 1_700_000_000_002,
        custom_metadata: Some(Bytes::from_static(b"plugin")),
        state: RemoteLogSegmentState::CopySegmentFinished,
        broker_id: 1,
    };
    let delete = RemotePartitionDeleteMetadata {
        tp: tp(1),
        state: RemotePartitionDeleteState::DeletePartitionMarked,
        event_timestamp_ms: 1_700_000_000_003,
        broker_id: 1,
    };
    let first = RemoteLogMetadata::Segment(segment.clone());
    segment.id = RemoteLogSegmentId::new(tp(0), Uuid::from_u128(0x5e7));
    segment.start_offset = 100;
    segment.end_offset = 199;
    segment.segment_leader_epochs = [(5, 100)].into_iter().collect();
    vec![
        first,
        RemoteLogMetadata::Update(update),
        RemoteLogMetadata::Segment(segment),
        RemoteLogMetadata::PartitionDelete(delete),
    ]
}

fn snapshot_record() -> RemoteLogSegmentMetadataSnapshot {
    RemoteLogSegmentMetadataSnapshot {
        segment_id: Uuid::from_u128(0x5e6),
        start_offset: 0,
        end_offset: 99,
        broker_id: 1,
        max_timestamp_ms: 1_700_000_000_000,
        event_timestamp_ms: 1_700_000_000_001,
        segment_leader_epochs: [(0, 0)].into_iter().collect(),
        segment_size_in_bytes: 4096,
        custom_metadata: Some(Bytes::from_static(b"x")),
        state: RemoteLogSegmentState::CopySegmentFinished,
    }
}

/// `rlmm.record`; decoded events are applied to a store that starts afresh every 256 inputs.
#[derive(Debug)]
pub struct RecordTarget {
    seeds: Vec<Vec<u8>>,
    store: RemotePartitionMetadataStore,
    offset: i64,
}

impl RecordTarget {
    pub fn new() -> Self {
        let mut seeds: Vec<Vec<u8>> = events().iter().map(|e| serde::encode(e).to_vec()).collect();
        seeds.push(serde::encode_snapshot(&snapshot_record()).to_vec());
        RecordTarget {
            seeds,
            store: RemotePartitionMetadataStore::new(),
            offset: 0,
        }
    }
}

impl Default for RecordTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for RecordTarget {
    fn name(&self) -> &str {
        "rlmm.record"
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        self.offset += 1;
        if self.offset % 256 == 0 {
            self.store = RemotePartitionMetadataStore::new();
            for (i, e) in events().iter().enumerate() {
                self.store.apply(0, i as i64, e);
            }
        }
        let decoded = serde::decode_record(input);
        match &decoded {
            Ok(DecodedRecord::Metadata(m)) => {
                let again = serde::decode(&serde::encode(m))
                    .map_err(|e| format!("re-encoded {m:?} does not decode: {e}"))?;
                if &again != m {
                    return Err(format!("round trip changed {m:?} into {again:?}"));
                }
                let _ = self.store.apply(0, self.offset, m);
                let _ = self.store.apply_record(1, self.offset, input);
            }
            Ok(DecodedRecord::Snapshot(s)) => {
                let again = serde::decode_record(&serde::encode_snapshot(s))
                    .map_err(|e| format!("re-encoded {s:?} does not decode: {e}"))?;
                if again != DecodedRecord::Snapshot(s.clone()) {
                    return Err(format!("round trip changed {s:?} into {again:?}"));
                }
            }
            Err(_) => {}
        }
        Ok(outcome(&decoded))
    }
}

/// `rlmm.snapshot`; what decodes must survive encode + decode unchanged.
#[derive(Debug)]
pub struct SnapshotTarget {
    seeds: Vec<Vec<u8>>,
}

impl SnapshotTarget {
    pub fn new() -> Self {
        let mut store = RemotePartitionMetadataStore::new();
        let mut seeds = vec![snapshot::encode(&store, PARTITIONS, 1_700_000_000_000)];
        for (i, e) in events().iter().enumerate() {
            store.apply(i as i32 % 3, i as i64, e);
            seeds.push(snapshot::encode(&store, PARTITIONS, 1_700_000_000_000));
        }
        store.mark_all_initialized();
        seeds.push(snapshot::encode(&store, PARTITIONS, 1_700_000_000_000));
        SnapshotTarget { seeds }
    }
}

impl Default for SnapshotTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for SnapshotTarget {
    fn name(&self) -> &str {
        "rlmm.snapshot"
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn fixup(&self, input: &mut Vec<u8>, _seed: &[u8], rng: &mut FuzzRng) {
        if input.len() >= 4 && rng.chance(7, 8) {
            let body = input.len() - 4;
            let crc = crc32c::crc32c(&input[..body]);
            input[body..].copy_from_slice(&crc.to_be_bytes());
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let Ok(store) = snapshot::decode(input, PARTITIONS) else {
            return Ok(Outcome::Rejected);
        };
        let encoded = snapshot::encode(&store, PARTITIONS, 1_700_000_000_000);
        let again = snapshot::decode(&encoded, PARTITIONS)
            .map_err(|e| format!("re-encoded snapshot does not decode: {e}"))?;
        if snapshot::encode(&again, PARTITIONS, 1_700_000_000_000) != encoded {
            return Err("snapshot round trip is not stable".into());
        }
        Ok(Outcome::Accepted)
    }
}
