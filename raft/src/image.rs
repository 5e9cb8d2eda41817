//! The immutable metadata image the broker reads on every request, and the loader that builds
//! it from committed metadata records.
//!
//! A [`MetadataImage`] is a plain value: applying records yields a new image and never mutates
//! one in place, so readers hold an `Arc<MetadataImage>` without locks. Topics sit behind their
//! own `Arc` so an image change touching one topic copies only that topic.
//!
//! Records between BeginTransaction and EndTransaction are applied atomically: the
//! [`MetadataLoader`] buffers them (across batches) and publishes nothing until the end marker;
//! AbortTransaction drops them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::records::{
    AccessControlEntryRecord, BrokerEndpoint, ClientQuotaRecord, ConfigRecord, FeatureLevelRecord,
    MetadataRecord, PartitionChangeRecord, PartitionRecord, ProducerIdsRecord, QuotaEntity,
    RegisterBrokerRecord, TopicRecord, UserScramCredentialRecord, CONFIG_RESOURCE_BROKER,
    CONFIG_RESOURCE_TOPIC, NO_LEADER_CHANGE,
};

/// The feature that selects record versions.
pub const METADATA_VERSION_FEATURE: &str = "metadata.version";
/// PartitionRecord / PartitionChangeRecord version written at metadata.version 22.
pub const PARTITION_RECORD_VERSION: i16 = 1;
/// RegisterBrokerRecord version written at metadata.version 22.
pub const REGISTER_BROKER_RECORD_VERSION: i16 = 3;

/// The whole cluster metadata at one committed offset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetadataImage {
    pub cluster_id: String,
    /// Offset of the last record applied (-1 = nothing yet).
    pub last_offset: i64,
    /// Raft epoch of the batch holding `last_offset`.
    pub epoch: i32,
    pub features: BTreeMap<String, i16>,
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    pub topics: BTreeMap<String, Arc<TopicImage>>,
    pub topic_names_by_id: HashMap<Uuid, String>,
    /// Broker-level dynamic configs: key "" = cluster-wide default, else the broker id.
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// First producer id not yet handed out.
    pub next_producer_id: i64,
    /// SCRAM credentials by (user, mechanism number).
    pub scram: BTreeMap<(String, i8), UserScramCredentialRecord>,
    /// Client quotas by entity, then key (ClientQuotaRecords), shared between images until one
    /// changes them (the broker's quota manager re-reads them when the pointer changes).
    pub quotas: Arc<BTreeMap<QuotaEntity, BTreeMap<String, f64>>>,
    /// ACL bindings by id (AccessControlEntryRecords), shared between images until one
    /// changes them (the broker rebuilds its authorizer index when the pointer changes).
    pub acls: Arc<BTreeMap<Uuid, AccessControlEntryRecord>>,
}

/// One topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionImage>,
    /// Topic config overrides (dynamic topic configs).
    pub configs: BTreeMap<String, String>,
}

/// One partition's replica assignment and leadership.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionImage {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// Replicas a reassignment in progress adds (they are in `replicas` too).
    pub adding_replicas: Vec<i32>,
    /// Replicas a reassignment in progress removes (still in `replicas`).
    pub removing_replicas: Vec<i32>,
}

/// A registered broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: i32,
    /// The offset of the RegisterBrokerRecord that created this registration.
    pub epoch: i64,
    pub incarnation_id: Uuid,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    /// In controlled shutdown (BrokerRegistrationChangeRecord `InControlledShutdown=1`).
    pub in_controlled_shutdown: bool,
}

/// One broker listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Kafka's SecurityProtocol id (0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL).
    pub security_protocol: i16,
}

impl MetadataImage {
    /// An image with no records applied.
    pub fn empty(cluster_id: impl Into<String>) -> MetadataImage {
        MetadataImage {
            cluster_id: cluster_id.into(),
            last_offset: -1,
            ..MetadataImage::default()
        }
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.topic_names_by_id
            .get(id)
            .and_then(|n| self.topics.get(n))
    }

    /// The `metadata.version` feature level, 0 if not set.
    pub fn metadata_version(&self) -> i16 {
        self.features
            .get(METADATA_VERSION_FEATURE)
            .copied()
            .unwrap_or(0)
    }

    /// Applies `records` (a delta) and returns the new image. Transactions inside the slice
    /// are applied atomically; records of a transaction not ended within the slice are dropped.
    /// `last_offset` and `epoch` are left as they were (the loader sets them).
    pub fn apply(&self, records: &[MetadataRecord]) -> MetadataImage {
        let mut loader = MetadataLoader::new(self.clone());
        loader.apply_records(records);
        let mut out = (*loader.image).clone();
        out.last_offset = self.last_offset;
        out.epoch = self.epoch;
        out
    }

    /// Applies one non-transaction-marker record in place.
    fn apply_one(&mut self, rec: &MetadataRecord) {
        match rec {
            MetadataRecord::RegisterBroker(r) => self.register_broker(r),
            MetadataRecord::UnregisterBroker(r) => {
                if self.brokers.get(&r.broker_id).map(|b| b.epoch) == Some(r.broker_epoch) {
                    self.brokers.remove(&r.broker_id);
                }
            }
            MetadataRecord::FenceBroker(r) => self.set_fenced(r.id, r.epoch, true),
            MetadataRecord::UnfenceBroker(r) => self.set_fenced(r.id, r.epoch, false),
            MetadataRecord::BrokerRegistrationChange(r) => {
                match r.fenced {
                    1 => self.set_fenced(r.broker_id, r.broker_epoch, true),
                    -1 => self.set_fenced(r.broker_id, r.broker_epoch, false),
                    _ => {}
                }
                if r.in_controlled_shutdown == 1 {
                    self.set_in_controlled_shutdown(r.broker_id, r.broker_epoch);
                }
            }
            MetadataRecord::Topic(r) => self.add_topic(r),
            MetadataRecord::Partition(r) => self.add_partition(r),
            MetadataRecord::PartitionChange(r) => self.change_partition(r),
            MetadataRecord::Config(r) => self.set_config(r),
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.topic_names_by_id.remove(topic_id) {
                    self.topics.remove(&name);
                }
            }
            MetadataRecord::FeatureLevel(r) => {
                if r.feature_level == 0 {
                    self.features.remove(&r.name);
                } else {
                    self.features.insert(r.name.clone(), r.feature_level);
                }
            }
            MetadataRecord::ProducerIds(r) => self.next_producer_id = r.next_producer_id,
            MetadataRecord::UserScramCredential(r) => {
                self.scram.insert((r.name.clone(), r.mechanism), r.clone());
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                self.scram.remove(&(name.clone(), *mechanism));
            }
            MetadataRecord::ClientQuota(r) => {
                let quotas = Arc::make_mut(&mut self.quotas);
                match r.remove {
                    true => {
                        if let Some(values) = quotas.get_mut(&r.entity) {
                            values.remove(&r.key);
                            if values.is_empty() {
                                quotas.remove(&r.entity);
                            }
                        }
                    }
                    false => {
                        let values = quotas.entry(r.entity.clone()).or_default();
                        values.insert(r.key.clone(), r.value);
                    }
                }
            }
            MetadataRecord::AccessControlEntry(r) => {
                Arc::make_mut(&mut self.acls).insert(r.id, r.clone());
            }
            MetadataRecord::RemoveAccessControlEntry { id } => {
                Arc::make_mut(&mut self.acls).remove(id);
            }
            MetadataRecord::NoOp
            | MetadataRecord::ZkMigrationState { .. }
            | MetadataRecord::BeginTransaction { .. }
            | MetadataRecord::EndTransaction
            | MetadataRecord::AbortTransaction { .. } => {}
        }
    }

    fn register_broker(&mut self, r: &RegisterBrokerRecord) {
        let endpoints = r
            .end_points
            .iter()
            .map(|e| Endpoint {
                name: e.name.clone(),
                host: e.host.clone(),
                port: e.port,
                security_protocol: e.security_protocol,
            })
            .collect();
        self.brokers.insert(
            r.broker_id,
            BrokerRegistration {
                id: r.broker_id,
                epoch: r.broker_epoch,
                incarnation_id: r.incarnation_id,
                endpoints,
                rack: r.rack.clone(),
                fenced: r.fenced,
                in_controlled_shutdown: r.in_controlled_shutdown,
            },
        );
    }

    fn set_in_controlled_shutdown(&mut self, id: i32, epoch: i64) {
        if let Some(b) = self.brokers.get_mut(&id) {
            if b.epoch == epoch {
                b.in_controlled_shutdown = true;
            }
        }
    }

    fn set_fenced(&mut self, id: i32, epoch: i64, fenced: bool) {
        if let Some(b) = self.brokers.get_mut(&id) {
            if b.epoch == epoch {
                b.fenced = fenced;
            }
        }
    }

    fn add_topic(&mut self, r: &TopicRecord) {
        self.topic_names_by_id.insert(r.topic_id, r.name.clone());
        self.topics.insert(
            r.name.clone(),
            Arc::new(TopicImage {
                name: r.name.clone(),
                id: r.topic_id,
                partitions: BTreeMap::new(),
                configs: BTreeMap::new(),
            }),
        );
    }

    fn topic_mut(&mut self, id: &Uuid) -> Option<&mut TopicImage> {
        let name = self.topic_names_by_id.get(id)?;
        self.topics.get_mut(name).map(Arc::make_mut)
    }

    fn add_partition(&mut self, r: &PartitionRecord) {
        if let Some(t) = self.topic_mut(&r.topic_id) {
            t.partitions.insert(
                r.partition_id,
                PartitionImage {
                    replicas: r.replicas.clone(),
                    isr: r.isr.clone(),
                    leader: r.leader,
                    leader_epoch: r.leader_epoch,
                    partition_epoch: r.partition_epoch,
                    adding_replicas: r.adding_replicas.clone(),
                    removing_replicas: r.removing_replicas.clone(),
                },
            );
        }
    }

    fn change_partition(&mut self, r: &PartitionChangeRecord) {
        let Some(p) = self
            .topic_mut(&r.topic_id)
            .and_then(|t| t.partitions.get_mut(&r.partition_id))
        else {
            return;
        };
        if let Some(isr) = &r.isr {
            p.isr = isr.clone();
        }
        if let Some(replicas) = &r.replicas {
            p.replicas = replicas.clone();
        }
        if let Some(adding) = &r.adding_replicas {
            p.adding_replicas = adding.clone();
        }
        if let Some(removing) = &r.removing_replicas {
            p.removing_replicas = removing.clone();
        }
        if r.leader != NO_LEADER_CHANGE {
            p.leader = r.leader;
            p.leader_epoch += 1;
        }
        p.partition_epoch += 1;
    }

    fn set_config(&mut self, r: &ConfigRecord) {
        let map = match r.resource_type {
            CONFIG_RESOURCE_TOPIC => match self.topics.get_mut(&r.resource_name) {
                Some(t) => &mut Arc::make_mut(t).configs,
                None => return,
            },
            CONFIG_RESOURCE_BROKER => self
                .broker_configs
                .entry(r.resource_name.clone())
                .or_default(),
            _ => return,
        };
        match &r.value {
            Some(v) => {
                map.insert(r.name.clone(), v.clone());
            }
            None => {
                map.remove(&r.name);
            }
        }
        if r.resource_type == CONFIG_RESOURCE_BROKER {
            if let Some(m) = self.broker_configs.get(&r.resource_name) {
                if m.is_empty() {
                    self.broker_configs.remove(&r.resource_name);
                }
            }
        }
    }

    /// The records that rebuild this image from nothing, in Kafka's snapshot order: features
    /// (metadata.version first), brokers, topics with their partitions, configs, producer ids.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        let mut features: Vec<_> = self.features.iter().collect();
        features.sort_by_key(|(name, _)| (name.as_str() != METADATA_VERSION_FEATURE, *name));
        for (name, level) in features {
            out.push(MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: name.clone(),
                feature_level: *level,
            }));
        }
        out.extend(
            self.brokers
                .values()
                .map(|b| MetadataRecord::RegisterBroker(b.to_record())),
        );
        for t in self.topics.values() {
            out.push(MetadataRecord::Topic(TopicRecord {
                name: t.name.clone(),
                topic_id: t.id,
            }));
            for (id, p) in &t.partitions {
                out.push(MetadataRecord::Partition(p.to_record(t.id, *id)));
            }
        }
        for (resource, configs) in &self.broker_configs {
            out.extend(config_records(CONFIG_RESOURCE_BROKER, resource, configs));
        }
        for t in self.topics.values() {
            out.extend(config_records(CONFIG_RESOURCE_TOPIC, &t.name, &t.configs));
        }
        out.extend(
            self.scram
                .values()
                .map(|r| MetadataRecord::UserScramCredential(r.clone())),
        );
        for (entity, values) in self.quotas.iter() {
            out.extend(values.iter().map(|(key, value)| {
                MetadataRecord::ClientQuota(ClientQuotaRecord {
                    entity: entity.clone(),
                    key: key.clone(),
                    value: *value,
                    remove: false,
                })
            }));
        }
        out.extend(
            self.acls
                .values()
                .map(|r| MetadataRecord::AccessControlEntry(r.clone())),
        );
        if self.next_producer_id > 0 {
            out.push(MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id,
            }));
        }
        out
    }
}

fn config_records<'a>(
    resource_type: i8,
    resource: &'a str,
    configs: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = MetadataRecord> + 'a {
    configs.iter().map(move |(k, v)| {
        MetadataRecord::Config(ConfigRecord {
            resource_type,
            resource_name: resource.to_owned(),
            name: k.clone(),
            value: Some(v.clone()),
        })
    })
}

/// A broker's registration as a RegisterBrokerRecord at the version Shale writes (no features,
/// no log dirs, not in controlled shutdown). `epoch` is the record's own offset.
pub fn register_broker_record(
    broker_id: i32,
    incarnation_id: Uuid,
    epoch: i64,
    endpoints: &[Endpoint],
    rack: Option<String>,
    fenced: bool,
) -> RegisterBrokerRecord {
    RegisterBrokerRecord {
        version: REGISTER_BROKER_RECORD_VERSION,
        broker_id,
        is_migrating_zk_broker: false,
        incarnation_id,
        broker_epoch: epoch,
        end_points: endpoints
            .iter()
            .map(|e| BrokerEndpoint {
                name: e.name.clone(),
                host: e.host.clone(),
                port: e.port,
                security_protocol: e.security_protocol,
            })
            .collect(),
        features: Vec::new(),
        rack,
        fenced,
        in_controlled_shutdown: false,
        log_dirs: Vec::new(),
    }
}

impl BrokerRegistration {
    /// The RegisterBrokerRecord (current version) describing this registration.
    pub fn to_record(&self) -> RegisterBrokerRecord {
        RegisterBrokerRecord {
            in_controlled_shutdown: self.in_controlled_shutdown,
            ..register_broker_record(
                self.id,
                self.incarnation_id,
                self.epoch,
                &self.endpoints,
                self.rack.clone(),
                self.fenced,
            )
        }
    }
}

impl PartitionImage {
    /// The PartitionRecord (current version) describing this partition; directories are
    /// "unassigned" (the nil UUID) for every replica.
    pub fn to_record(&self, topic_id: Uuid, partition_id: i32) -> PartitionRecord {
        PartitionRecord {
            version: PARTITION_RECORD_VERSION,
            partition_id,
            topic_id,
            replicas: self.replicas.clone(),
            isr: self.isr.clone(),
            removing_replicas: self.removing_replicas.clone(),
            adding_replicas: self.adding_replicas.clone(),
            leader: self.leader,
            leader_recovery_state: 0,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            directories: vec![Uuid::nil(); self.replicas.len()],
            eligible_leader_replicas: None,
            last_known_elr: None,
        }
    }
}

/// Builds images batch by batch from the committed log, honouring metadata transactions.
#[derive(Debug)]
pub struct MetadataLoader {
    image: Arc<MetadataImage>,
    /// Image with the open transaction's records applied so far; None outside a transaction.
    pending: Option<MetadataImage>,
}

impl MetadataLoader {
    pub fn new(image: MetadataImage) -> MetadataLoader {
        MetadataLoader {
            image: Arc::new(image),
            pending: None,
        }
    }

    /// The last published image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.clone()
    }

    /// True while a metadata transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.pending.is_some()
    }

    /// Applies one committed data batch whose last record has `last_offset`, written in raft
    /// `epoch`. Publishes a new image unless a transaction remains open.
    pub fn apply_batch(&mut self, last_offset: i64, epoch: i32, records: &[MetadataRecord]) {
        self.apply_records(records);
        if self.pending.is_none() {
            let img = Arc::make_mut(&mut self.image);
            img.last_offset = last_offset;
            img.epoch = epoch;
        }
    }

    fn apply_records(&mut self, records: &[MetadataRecord]) {
        for rec in records {
            match rec {
                MetadataRecord::BeginTransaction { .. } => {
                    // A nested begin restarts from the published image, as an abort would.
                    self.pending = Some((*self.image).clone());
                }
                MetadataRecord::EndTransaction => {
                    if let Some(done) = self.pending.take() {
                        self.image = Arc::new(done);
                    }
                }
                MetadataRecord::AbortTransaction { .. } => self.pending = None,
                other => match &mut self.pending {
                    Some(p) => p.apply_one(other),
                    None => Arc::make_mut(&mut self.image).apply_one(other),
                },
            }
        }
    }
}

#[cfg(test)]
#[path = "image_test.rs"]
mod tests;
