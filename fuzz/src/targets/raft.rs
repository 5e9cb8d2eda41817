//! The KRaft targets: `raft.record` (a framed metadata record value), `raft.batch` (one batch of
//! the `__cluster_metadata` log, data or control, and LeaderChangeMessage values) and
//! `raft.snapshot` (a whole snapshot file: header batch, data batches, footer batch).
//!
//! Seeds: every record type at every version the broker writes, with populated arrays and
//! optional fields; batches and snapshot files built by shale-raft's own encoders. Batch CRCs are
//! fixed after most mutations so that inputs reach the record decoders.

use std::path::Path;

use bytes::Bytes;
use shale_protocol::record_batch::RecordBatch;
use shale_raft::batch::{
    control_batch, data_batch, decode_batch, decode_leader_change, leader_change_value,
    snapshot_footer_value, snapshot_header_value, MetadataBatch, CONTROL_LEADER_CHANGE,
    CONTROL_SNAPSHOT_FOOTER, CONTROL_SNAPSHOT_HEADER,
};
use shale_raft::quorum::LeaderChange;
use shale_raft::records::{
    BrokerEndpoint, BrokerFeature, BrokerIdEpoch, BrokerRegistrationChangeRecord, ConfigRecord,
    FeatureLevelRecord, PartitionChangeRecord, PartitionRecord, ProducerIdsRecord,
    RegisterBrokerRecord, TopicRecord, UnregisterBrokerRecord,
};
use shale_raft::snapshot::{decode_batch_file, encode_batch_file};
use shale_raft::MetadataRecord;
use uuid::Uuid;

use super::{maybe_fix_batch_crcs, outcome, Target};
use crate::rng::FuzzRng;
use crate::runner::Outcome;

const TOPIC: Uuid = Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888);
const DIR: Uuid = Uuid::from_u128(0x9999_aaaa_bbbb_cccc_dddd_eeee_ffff_0000);

fn register_broker(version: i16) -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        version,
        broker_id: 1,
        is_migrating_zk_broker: false,
        incarnation_id: DIR,
        broker_epoch: 7,
        end_points: vec![BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9092,
            security_protocol: 0,
        }],
        features: vec![BrokerFeature {
            name: "metadata.version".into(),
            min_supported_version: 1,
            max_supported_version: 25,
        }],
        rack: Some("r1".into()),
        fenced: true,
        in_controlled_shutdown: false,
        log_dirs: if version >= 2 { vec![DIR] } else { Vec::new() },
    })
}

fn partition(version: i16) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        version,
        partition_id: 0,
        topic_id: TOPIC,
        replicas: vec![1, 2],
        isr: vec![1],
        removing_replicas: vec![2],
        adding_replicas: Vec::new(),
        leader: 1,
        leader_recovery_state: 0,
        leader_epoch: 3,
        partition_epoch: 4,
        directories: if version >= 1 {
            vec![DIR, DIR]
        } else {
            Vec::new()
        },
        eligible_leader_replicas: (version >= 2).then(|| vec![2]),
        last_known_elr: (version >= 2).then(|| vec![1]),
    })
}

fn partition_change(version: i16) -> MetadataRecord {
    let mut r = PartitionChangeRecord::new(version, TOPIC, 0);
    r.isr = Some(vec![1, 2]);
    r.leader = 2;
    r.replicas = Some(vec![1, 2]);
    r.leader_recovery_state = 0;
    if version >= 1 {
        r.directories = Some(vec![DIR, DIR]);
    }
    if version >= 2 {
        r.eligible_leader_replicas = Some(vec![1]);
        r.last_known_elr = Some(Vec::new());
    }
    MetadataRecord::PartitionChange(r)
}

/// One record of every type, at every version.
pub fn sample_records() -> Vec<MetadataRecord> {
    let mut out: Vec<MetadataRecord> = (0..=3).map(register_broker).collect();
    out.extend((0..=2).map(partition));
    out.extend((0..=2).map(partition_change));
    out.extend((0..=2).map(|version| {
        MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            version,
            broker_id: 1,
            broker_epoch: 7,
            fenced: 1,
            in_controlled_shutdown: 0,
            log_dirs: if version >= 2 { vec![DIR] } else { Vec::new() },
        })
    }));
    out.extend([
        MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
            broker_id: 1,
            broker_epoch: 7,
        }),
        MetadataRecord::Topic(TopicRecord {
            name: "events".into(),
            topic_id: TOPIC,
        }),
        MetadataRecord::Config(ConfigRecord {
            resource_type: 2,
            resource_name: "events".into(),
            name: "retention.ms".into(),
            value: Some("1000".into()),
        }),
        MetadataRecord::Config(ConfigRecord {
            resource_type: 4,
            resource_name: String::new(),
            name: "x".into(),
            value: None,
        }),
        MetadataRecord::FenceBroker(BrokerIdEpoch { id: 1, epoch: 7 }),
        MetadataRecord::UnfenceBroker(BrokerIdEpoch { id: 1, epoch: 7 }),
        MetadataRecord::RemoveTopic { topic_id: TOPIC },
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "metadata.version".into(),
            feature_level: 25,
        }),
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 7,
            next_producer_id: 1000,
        }),
        MetadataRecord::NoOp,
        MetadataRecord::ZkMigrationState { state: 0 },
        MetadataRecord::BeginTransaction {
            name: Some("t".into()),
        },
        MetadataRecord::EndTransaction,
        MetadataRecord::AbortTransaction { reason: None },
    ]);
    out
}

/// `raft.record`: `MetadataRecord::decode`; what decodes must survive encode + decode unchanged.
#[derive(Debug)]
pub struct RecordTarget {
    seeds: Vec<Vec<u8>>,
}

impl RecordTarget {
    pub fn new() -> Self {
        RecordTarget {
            seeds: sample_records()
                .iter()
                .map(|r| r.encode().to_vec())
                .collect(),
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
        "raft.record"
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let Ok(record) = MetadataRecord::decode(input) else {
            return Ok(Outcome::Rejected);
        };
        match MetadataRecord::decode(&record.encode()) {
            Ok(again) if again == record => Ok(Outcome::Accepted),
            Ok(again) => Err(format!("round trip changed {record:?} into {again:?}")),
            Err(e) => Err(format!("re-encoded {record:?} does not decode: {e}")),
        }
    }
}

fn leader_change(voters: &[i32]) -> LeaderChange {
    LeaderChange {
        leader_id: voters.first().copied().unwrap_or(-1),
        voters: voters.to_vec(),
        granting_voters: voters.iter().copied().take(2).collect(),
    }
}

/// `raft.batch`: one metadata log batch through `decode_batch` (and the LeaderChangeMessage of a
/// control record); an input that is not a batch is decoded as a LeaderChangeMessage value.
#[derive(Debug)]
pub struct BatchTarget {
    seeds: Vec<Vec<u8>>,
}

impl BatchTarget {
    pub fn new() -> Self {
        let mut seeds = Vec::new();
        let records = sample_records();
        for chunk in records.chunks(5) {
            if let Ok(b) = data_batch(100, 3, 1_700_000_000_000, chunk) {
                seeds.push(b.as_bytes().to_vec());
            }
        }
        let values = [
            (
                CONTROL_LEADER_CHANGE,
                leader_change_value(&leader_change(&[1, 2, 3])),
            ),
            (
                CONTROL_SNAPSHOT_HEADER,
                snapshot_header_value(1_700_000_000_000),
            ),
            (CONTROL_SNAPSHOT_FOOTER, snapshot_footer_value()),
        ];
        for (control_type, value) in values {
            let Ok(value) = value else { continue };
            seeds.push(value.to_vec());
            if let Ok(b) = control_batch(7, 3, 1_700_000_000_000, control_type, value) {
                seeds.push(b.as_bytes().to_vec());
            }
        }
        if let Ok(v) = leader_change_value(&leader_change(&[])) {
            seeds.push(v.to_vec());
        }
        BatchTarget { seeds }
    }
}

impl Default for BatchTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for BatchTarget {
    fn name(&self) -> &str {
        "raft.batch"
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn fixup(&self, input: &mut Vec<u8>, _seed: &[u8], rng: &mut FuzzRng) {
        maybe_fix_batch_crcs(input, rng);
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let bytes = Bytes::copy_from_slice(input);
        let Ok(batch) = RecordBatch::new(bytes.clone()) else {
            return Ok(outcome(&decode_leader_change(bytes)));
        };
        let decoded = decode_batch(&batch);
        if let Ok(MetadataBatch::Control { types, .. }) = &decoded {
            if types.contains(&CONTROL_LEADER_CHANGE) {
                for r in batch.records().map_err(|e| e.to_string())? {
                    let _ = decode_leader_change(r.value.unwrap_or_default());
                }
            }
        }
        if let Ok(b) = &decoded {
            let _ = (b.epoch(), b.last_offset());
        }
        Ok(outcome(&decoded))
    }
}

/// `raft.snapshot`: a whole snapshot file through `decode_batch_file`.
#[derive(Debug)]
pub struct SnapshotTarget {
    seeds: Vec<Vec<u8>>,
}

impl SnapshotTarget {
    pub fn new() -> Self {
        let records = sample_records();
        let seeds = [&records[..], &records[..3], &[]]
            .iter()
            .filter_map(|r| encode_batch_file(3, 1_700_000_000_000, 1_700_000_000_001, r).ok())
            .map(|b| b.to_vec())
            .collect();
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
        "raft.snapshot"
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn fixup(&self, input: &mut Vec<u8>, _seed: &[u8], rng: &mut FuzzRng) {
        maybe_fix_batch_crcs(input, rng);
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let path = Path::new("fuzz.checkpoint");
        Ok(outcome(&decode_batch_file(
            path,
            Bytes::copy_from_slice(input),
        )))
    }
}
