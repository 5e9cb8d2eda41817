//! Kafka's KRaft metadata records (formats.md §6.2–6.3), byte-exact.
//!
//! A framed record is `uvarint frameVersion(=1) | uvarint apiKey | uvarint version | body`, the
//! body being the flexible generated encoding of that record version (tagged fields written only
//! when they differ from their default). [`MetadataRecord::encode`] and
//! [`MetadataRecord::decode`] are exact inverses for every version listed in the table of each
//! record; decoding rejects frame version 0, unknown api keys, unsupported versions and trailing
//! bytes.

use bytes::Bytes;
use uuid::Uuid;

use crate::error::RaftError;
use crate::flex::{tagged, FlexReader, FlexWriter};

/// The only frame version Kafka writes and accepts.
pub const FRAME_VERSION: u32 = 1;

/// ConfigRecord resource type of a topic.
pub const CONFIG_RESOURCE_TOPIC: i8 = 2;
/// ConfigRecord resource type of a broker (or the cluster default, resource name "").
pub const CONFIG_RESOURCE_BROKER: i8 = 4;

/// RegisterBrokerRecord (api key 0, versions 0-3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterBrokerRecord {
    pub version: i16,
    pub broker_id: i32,
    /// v2+.
    pub is_migrating_zk_broker: bool,
    pub incarnation_id: Uuid,
    pub broker_epoch: i64,
    pub end_points: Vec<BrokerEndpoint>,
    pub features: Vec<BrokerFeature>,
    pub rack: Option<String>,
    pub fenced: bool,
    /// v1+.
    pub in_controlled_shutdown: bool,
    /// v3+, tag 0 (written only when non-empty).
    pub log_dirs: Vec<Uuid>,
}

/// One listener of a registered broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: i16,
}

/// A feature range a broker supports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerFeature {
    pub name: String,
    pub min_supported_version: i16,
    pub max_supported_version: i16,
}

/// UnregisterBrokerRecord (api key 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnregisterBrokerRecord {
    pub broker_id: i32,
    pub broker_epoch: i64,
}

/// TopicRecord (api key 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicRecord {
    pub name: String,
    pub topic_id: Uuid,
}

/// PartitionRecord (api key 3, versions 0-2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRecord {
    pub version: i16,
    pub partition_id: i32,
    pub topic_id: Uuid,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub leader: i32,
    /// Tag 0, default 0.
    pub leader_recovery_state: i8,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// v1+, one directory id per replica.
    pub directories: Vec<Uuid>,
    /// v2+, tag 1.
    pub eligible_leader_replicas: Option<Vec<i32>>,
    /// v2+, tag 2.
    pub last_known_elr: Option<Vec<i32>>,
}

/// ConfigRecord (api key 4). `value` None deletes the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRecord {
    pub resource_type: i8,
    pub resource_name: String,
    pub name: String,
    pub value: Option<String>,
}

/// PartitionChangeRecord (api key 5, versions 0-2). Every field but the ids is tagged; `None` /
/// the sentinel defaults mean "unchanged".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionChangeRecord {
    pub version: i16,
    pub partition_id: i32,
    pub topic_id: Uuid,
    /// Tag 0.
    pub isr: Option<Vec<i32>>,
    /// Tag 1; -2 = unchanged, -1 = no leader.
    pub leader: i32,
    /// Tag 2.
    pub replicas: Option<Vec<i32>>,
    /// Tag 3.
    pub removing_replicas: Option<Vec<i32>>,
    /// Tag 4.
    pub adding_replicas: Option<Vec<i32>>,
    /// Tag 5; -1 = unchanged.
    pub leader_recovery_state: i8,
    /// Tag 6, v2+.
    pub eligible_leader_replicas: Option<Vec<i32>>,
    /// Tag 7, v2+.
    pub last_known_elr: Option<Vec<i32>>,
    /// Tag 8, v1+.
    pub directories: Option<Vec<Uuid>>,
}

/// The "leader unchanged" sentinel of [`PartitionChangeRecord::leader`].
pub const NO_LEADER_CHANGE: i32 = -2;

impl PartitionChangeRecord {
    /// A change record that changes nothing yet.
    pub fn new(version: i16, topic_id: Uuid, partition_id: i32) -> Self {
        PartitionChangeRecord {
            version,
            partition_id,
            topic_id,
            isr: None,
            leader: NO_LEADER_CHANGE,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            leader_recovery_state: -1,
            eligible_leader_replicas: None,
            last_known_elr: None,
            directories: None,
        }
    }
}

/// FenceBrokerRecord (7) and UnfenceBrokerRecord (8) share this shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerIdEpoch {
    pub id: i32,
    pub epoch: i64,
}

/// UserScramCredentialRecord (api key 11): a user's SCRAM credential for one mechanism (1 =
/// SCRAM-SHA-256, 2 = SCRAM-SHA-512), never the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserScramCredentialRecord {
    pub name: String,
    pub mechanism: i8,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

/// AccessControlEntryRecord (api key 18): one ACL binding, with Kafka's numeric codes for the
/// resource type, pattern type, operation and permission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessControlEntryRecord {
    pub id: Uuid,
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission_type: i8,
}

/// A client-quota entity: `(entity type, name)` pairs, a `None` name being the type's default
/// (`user`, `client-id` or `ip`), sorted by type.
pub type QuotaEntity = Vec<(String, Option<String>)>;

/// ClientQuotaRecord (api key 14): one quota of an entity set or removed. Values compare by
/// their bits (the controller never writes NaN).
#[derive(Clone, Debug)]
pub struct ClientQuotaRecord {
    pub entity: QuotaEntity,
    /// `producer_byte_rate`, `consumer_byte_rate`, `request_percentage`, …
    pub key: String,
    pub value: f64,
    pub remove: bool,
}

impl PartialEq for ClientQuotaRecord {
    fn eq(&self, other: &Self) -> bool {
        (&self.entity, &self.key, self.value.to_bits(), self.remove)
            == (
                &other.entity,
                &other.key,
                other.value.to_bits(),
                other.remove,
            )
    }
}

impl Eq for ClientQuotaRecord {}

/// FeatureLevelRecord (api key 12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureLevelRecord {
    pub name: String,
    pub feature_level: i16,
}

/// ProducerIdsRecord (api key 15).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerIdsRecord {
    pub broker_id: i32,
    pub broker_epoch: i64,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
}

/// BrokerRegistrationChangeRecord (api key 17, versions 0-2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistrationChangeRecord {
    pub version: i16,
    pub broker_id: i32,
    pub broker_epoch: i64,
    /// Tag 0: -1 unfenced, 0 unchanged, 1 fenced.
    pub fenced: i8,
    /// Tag 1 (v1+): 0 unchanged.
    pub in_controlled_shutdown: i8,
    /// Tag 2 (v2+).
    pub log_dirs: Vec<Uuid>,
}

/// One decoded metadata record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataRecord {
    RegisterBroker(RegisterBrokerRecord),
    UnregisterBroker(UnregisterBrokerRecord),
    Topic(TopicRecord),
    Partition(PartitionRecord),
    Config(ConfigRecord),
    PartitionChange(PartitionChangeRecord),
    FenceBroker(BrokerIdEpoch),
    UnfenceBroker(BrokerIdEpoch),
    RemoveTopic {
        topic_id: Uuid,
    },
    UserScramCredential(UserScramCredentialRecord),
    FeatureLevel(FeatureLevelRecord),
    ClientQuota(ClientQuotaRecord),
    ProducerIds(ProducerIdsRecord),
    BrokerRegistrationChange(BrokerRegistrationChangeRecord),
    AccessControlEntry(AccessControlEntryRecord),
    RemoveAccessControlEntry {
        id: Uuid,
    },
    NoOp,
    ZkMigrationState {
        state: i8,
    },
    RemoveUserScramCredential {
        name: String,
        mechanism: i8,
    },
    /// Tag 0 = name.
    BeginTransaction {
        name: Option<String>,
    },
    EndTransaction,
    /// Tag 0 = reason.
    AbortTransaction {
        reason: Option<String>,
    },
}

impl MetadataRecord {
    /// Kafka's api key of this record type (formats.md §6.3).
    pub fn api_key(&self) -> u32 {
        use MetadataRecord::*;
        match self {
            RegisterBroker(_) => 0,
            UnregisterBroker(_) => 1,
            Topic(_) => 2,
            Partition(_) => 3,
            Config(_) => 4,
            PartitionChange(_) => 5,
            FenceBroker(_) => 7,
            UnfenceBroker(_) => 8,
            RemoveTopic { .. } => 9,
            UserScramCredential(_) => 11,
            FeatureLevel(_) => 12,
            ClientQuota(_) => 14,
            ProducerIds(_) => 15,
            BrokerRegistrationChange(_) => 17,
            AccessControlEntry(_) => 18,
            RemoveAccessControlEntry { .. } => 19,
            NoOp => 20,
            ZkMigrationState { .. } => 21,
            RemoveUserScramCredential { .. } => 22,
            BeginTransaction { .. } => 23,
            EndTransaction => 24,
            AbortTransaction { .. } => 25,
        }
    }

    /// The schema version this record is encoded at.
    pub fn version(&self) -> i16 {
        match self {
            MetadataRecord::RegisterBroker(r) => r.version,
            MetadataRecord::Partition(r) => r.version,
            MetadataRecord::PartitionChange(r) => r.version,
            MetadataRecord::BrokerRegistrationChange(r) => r.version,
            _ => 0,
        }
    }

    /// The framed value written into a metadata batch record.
    pub fn encode(&self) -> Bytes {
        let mut w = FlexWriter::new();
        w.uvarint(FRAME_VERSION);
        w.uvarint(self.api_key());
        w.uvarint(self.version() as u32);
        self.write_body(&mut w);
        w.finish()
    }

    /// Parses a framed record value; the whole slice must be consumed.
    pub fn decode(buf: &[u8]) -> Result<MetadataRecord, RaftError> {
        let mut r = FlexReader::new(buf, "metadata record frame");
        let frame = r.uvarint()?;
        if frame != FRAME_VERSION {
            return Err(RaftError::Decode(format!(
                "unsupported metadata record frame version {frame}"
            )));
        }
        let api_key = r.uvarint()?;
        let raw_version = r.uvarint()?;
        let version = i16::try_from(raw_version).map_err(|_| RaftError::UnsupportedVersion {
            api_key,
            version: raw_version,
        })?;
        let max = max_version(api_key).ok_or(RaftError::UnknownRecordType { api_key })?;
        if version > max {
            return Err(RaftError::UnsupportedVersion {
                api_key,
                version: raw_version,
            });
        }
        let rec = read_body(&mut r, api_key, version)?;
        r.expect_end()?;
        Ok(rec)
    }

    fn write_body(&self, w: &mut FlexWriter) {
        use MetadataRecord::*;
        match self {
            RegisterBroker(r) => r.write(w),
            UnregisterBroker(r) => {
                w.i32(r.broker_id);
                w.i64(r.broker_epoch);
                w.no_tags();
            }
            Topic(r) => {
                w.string(&r.name);
                w.uuid(&r.topic_id);
                w.no_tags();
            }
            Partition(r) => r.write(w),
            Config(r) => {
                w.i8(r.resource_type);
                w.string(&r.resource_name);
                w.string(&r.name);
                w.nullable_string(r.value.as_deref());
                w.no_tags();
            }
            PartitionChange(r) => r.write(w),
            FenceBroker(r) | UnfenceBroker(r) => {
                w.i32(r.id);
                w.i64(r.epoch);
                w.no_tags();
            }
            RemoveTopic { topic_id } => {
                w.uuid(topic_id);
                w.no_tags();
            }
            UserScramCredential(r) => {
                w.string(&r.name);
                w.i8(r.mechanism);
                w.bytes(&r.salt);
                w.bytes(&r.stored_key);
                w.bytes(&r.server_key);
                w.i32(r.iterations);
                w.no_tags();
            }
            RemoveUserScramCredential { name, mechanism } => {
                w.string(name);
                w.i8(*mechanism);
                w.no_tags();
            }
            FeatureLevel(r) => {
                w.string(&r.name);
                w.i16(r.feature_level);
                w.no_tags();
            }
            ClientQuota(r) => {
                w.struct_array(&r.entity, |w, (kind, name)| {
                    w.string(kind);
                    w.nullable_string(name.as_deref());
                    w.no_tags();
                });
                w.string(&r.key);
                w.i64(r.value.to_bits() as i64);
                w.bool(r.remove);
                w.no_tags();
            }
            ProducerIds(r) => {
                w.i32(r.broker_id);
                w.i64(r.broker_epoch);
                w.i64(r.next_producer_id);
                w.no_tags();
            }
            BrokerRegistrationChange(r) => r.write(w),
            AccessControlEntry(r) => {
                w.uuid(&r.id);
                w.i8(r.resource_type);
                w.string(&r.resource_name);
                w.i8(r.pattern_type);
                w.string(&r.principal);
                w.string(&r.host);
                w.i8(r.operation);
                w.i8(r.permission_type);
                w.no_tags();
            }
            RemoveAccessControlEntry { id } => {
                w.uuid(id);
                w.no_tags();
            }
            NoOp | EndTransaction => w.no_tags(),
            ZkMigrationState { state } => {
                w.i8(*state);
                w.no_tags();
            }
            BeginTransaction { name: text } | AbortTransaction { reason: text } => {
                let tags: Vec<(u32, Bytes)> =
                    text.iter().map(|t| (0, tagged(|w| w.string(t)))).collect();
                w.tags(&tags);
            }
        }
    }
}

/// Highest version we decode of each known api key.
fn max_version(api_key: u32) -> Option<i16> {
    Some(match api_key {
        0 => 3,
        3 | 5 | 17 => 2,
        1 | 2 | 4 | 7 | 8 | 9 | 11 | 12 | 14 | 15 | 18 | 19 | 20 | 21 | 22 | 23 | 24 | 25 => 0,
        _ => return None,
    })
}

/// Reads a body with no known tagged fields: `fields`, then a skipped tag section.
fn plain<T>(
    r: &mut FlexReader<'_>,
    fields: impl FnOnce(&mut FlexReader<'_>) -> Result<T, RaftError>,
) -> Result<T, RaftError> {
    let out = fields(r)?;
    r.skip_tags()?;
    Ok(out)
}

fn broker_id_epoch(r: &mut FlexReader<'_>) -> Result<BrokerIdEpoch, RaftError> {
    plain(r, |r| {
        Ok(BrokerIdEpoch {
            id: r.i32()?,
            epoch: r.i64()?,
        })
    })
}

fn read_body(
    r: &mut FlexReader<'_>,
    api_key: u32,
    version: i16,
) -> Result<MetadataRecord, RaftError> {
    use MetadataRecord as M;
    Ok(match api_key {
        0 => M::RegisterBroker(RegisterBrokerRecord::read(r, version)?),
        1 => M::UnregisterBroker(plain(r, |r| {
            Ok(UnregisterBrokerRecord {
                broker_id: r.i32()?,
                broker_epoch: r.i64()?,
            })
        })?),
        2 => M::Topic(plain(r, |r| {
            Ok(TopicRecord {
                name: r.string()?,
                topic_id: r.uuid()?,
            })
        })?),
        3 => M::Partition(PartitionRecord::read(r, version)?),
        4 => M::Config(plain(r, |r| {
            Ok(ConfigRecord {
                resource_type: r.i8()?,
                resource_name: r.string()?,
                name: r.string()?,
                value: r.nullable_string()?,
            })
        })?),
        5 => M::PartitionChange(PartitionChangeRecord::read(r, version)?),
        7 => M::FenceBroker(broker_id_epoch(r)?),
        8 => M::UnfenceBroker(broker_id_epoch(r)?),
        9 => M::RemoveTopic {
            topic_id: plain(r, |r| r.uuid())?,
        },
        11 => M::UserScramCredential(plain(r, |r| {
            Ok(UserScramCredentialRecord {
                name: r.string()?,
                mechanism: r.i8()?,
                salt: r.bytes()?,
                stored_key: r.bytes()?,
                server_key: r.bytes()?,
                iterations: r.i32()?,
            })
        })?),
        22 => plain(r, |r| {
            Ok(M::RemoveUserScramCredential {
                name: r.string()?,
                mechanism: r.i8()?,
            })
        })?,
        12 => M::FeatureLevel(plain(r, |r| {
            Ok(FeatureLevelRecord {
                name: r.string()?,
                feature_level: r.i16()?,
            })
        })?),
        14 => M::ClientQuota(plain(r, |r| {
            let entity = r.struct_array(|r| {
                let pair = (r.string()?, r.nullable_string()?);
                r.skip_tags()?;
                Ok(pair)
            })?;
            Ok(ClientQuotaRecord {
                entity,
                key: r.string()?,
                value: f64::from_bits(r.i64()? as u64),
                remove: r.bool()?,
            })
        })?),
        15 => M::ProducerIds(plain(r, |r| {
            Ok(ProducerIdsRecord {
                broker_id: r.i32()?,
                broker_epoch: r.i64()?,
                next_producer_id: r.i64()?,
            })
        })?),
        17 => M::BrokerRegistrationChange(BrokerRegistrationChangeRecord::read(r, version)?),
        18 => M::AccessControlEntry(plain(r, |r| {
            Ok(AccessControlEntryRecord {
                id: r.uuid()?,
                resource_type: r.i8()?,
                resource_name: r.string()?,
                pattern_type: r.i8()?,
                principal: r.string()?,
                host: r.string()?,
                operation: r.i8()?,
                permission_type: r.i8()?,
            })
        })?),
        19 => M::RemoveAccessControlEntry {
            id: plain(r, |r| r.uuid())?,
        },
        20 => plain(r, |_| Ok(M::NoOp))?,
        21 => M::ZkMigrationState {
            state: plain(r, |r| r.i8())?,
        },
        23 => M::BeginTransaction {
            name: read_tag0_string(r)?,
        },
        24 => plain(r, |_| Ok(M::EndTransaction))?,
        25 => M::AbortTransaction {
            reason: read_tag0_string(r)?,
        },
        _ => return Err(RaftError::UnknownRecordType { api_key }),
    })
}

/// A tag section whose only known field is a nullable string at tag 0.
fn read_tag0_string(r: &mut FlexReader<'_>) -> Result<Option<String>, RaftError> {
    let mut text = None;
    r.tags(|tag, sub| {
        if tag == 0 {
            text = sub.nullable_string()?;
            return Ok(true);
        }
        Ok(false)
    })?;
    Ok(text)
}

#[path = "records_versioned.rs"]
mod versioned;

#[cfg(test)]
#[path = "records_test.rs"]
mod tests;
