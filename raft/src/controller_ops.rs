//! The controller's metadata operations: validation against the current image (see
//! [`crate::validation`]) and the records each change writes, following Kafka's
//! ReplicationControlManager / ConfigurationControlManager / ProducerIdControlManager, and
//! ElectLeaders over [`crate::controller_leaders`].

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::controller::{
    AlterConfigOp, ConfigOpType, ConfigResource, Controller, CreateTopicSpec, CreatedTopic,
};
use crate::controller_leaders::{elect, ElectionError, ElectionType};
use crate::error::ControllerError;
use crate::format::random_uuid_value;
use crate::image::{MetadataImage, PartitionImage};
use crate::records::{
    ConfigRecord, MetadataRecord, ProducerIdsRecord, TopicRecord, CONFIG_RESOURCE_BROKER,
    CONFIG_RESOURCE_TOPIC,
};
use crate::validation::{
    check_assignment, check_collision, check_partition_count, check_replication_factor,
    check_topic_config, check_topic_configs, is_list_config, place_replicas, topic_config_default,
    usable_brokers, validate_topic_name,
};

/// Producer ids handed out per AllocateProducerIds call.
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;

fn unknown_topic(name: &str) -> ControllerError {
    ControllerError::UnknownTopic(format!("Topic '{name}' does not exist."))
}

fn partition_records(
    topic_id: Uuid,
    assignment: &[(i32, Vec<i32>)],
) -> impl Iterator<Item = MetadataRecord> + '_ {
    assignment.iter().map(move |(p, replicas)| {
        let image = PartitionImage {
            replicas: replicas.clone(),
            isr: replicas.clone(),
            leader: replicas.first().copied().unwrap_or(-1),
            leader_epoch: 0,
            partition_epoch: 0,
            ..Default::default()
        };
        MetadataRecord::Partition(image.to_record(topic_id, *p))
    })
}

impl Controller {
    /// CreateTopics for one topic. Writes TopicRecord, ConfigRecords and PartitionRecords in
    /// one atomic batch (nothing when `validate_only`).
    pub fn create_topic(
        &self,
        spec: CreateTopicSpec,
        validate_only: bool,
    ) -> Result<CreatedTopic, ControllerError> {
        let topic_id = random_uuid_value(self.rng());
        let opts = self.options().clone();
        self.write(|image| {
            validate_topic_name(&spec.name)?;
            if image.topic(&spec.name).is_some() {
                return Err(ControllerError::TopicAlreadyExists(spec.name.clone()));
            }
            check_collision(image, &spec.name)?;
            let assignment = if spec.assignments.is_empty() {
                let n = if spec.num_partitions == -1 {
                    opts.default_num_partitions
                } else {
                    spec.num_partitions
                };
                let rf = if spec.replication_factor == -1 {
                    opts.default_replication_factor
                } else {
                    spec.replication_factor
                };
                check_partition_count(n)?;
                let brokers = usable_brokers(image);
                check_replication_factor(rf, brokers.len())?;
                place_replicas(&brokers, 0, n, rf)
            } else {
                if spec.num_partitions != -1 || spec.replication_factor != -1 {
                    return Err(ControllerError::InvalidRequest(
                        "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                    ));
                }
                check_assignment(image, spec.assignments.clone(), 0)?
            };
            let configs = check_topic_configs(&spec.configs)?;
            self.check_policy(image, &spec.name, None, &configs)?;
            let created = CreatedTopic {
                topic_id: if validate_only { Uuid::nil() } else { topic_id },
                num_partitions: assignment.len() as i32,
                replication_factor: assignment.first().map_or(0, |(_, r)| r.len() as i16),
                configs: configs.clone(),
            };
            if validate_only {
                return Ok((Vec::new(), created));
            }
            let mut records = vec![MetadataRecord::Topic(TopicRecord {
                name: spec.name.clone(),
                topic_id,
            })];
            records.extend(configs.iter().map(|(k, v)| topic_config(&spec.name, k, Some(v))));
            records.extend(partition_records(topic_id, &assignment));
            Ok((records, created))
        })
    }

    /// DeleteTopics by name: writes RemoveTopicRecord, returns the deleted topic's id.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, ControllerError> {
        self.write(|image| {
            let topic = image.topic(name).ok_or_else(|| unknown_topic(name))?;
            Ok((
                vec![MetadataRecord::RemoveTopic { topic_id: topic.id }],
                topic.id,
            ))
        })
    }

    /// DeleteTopics by id: returns the deleted topic's name.
    pub fn delete_topic_by_id(&self, id: &Uuid) -> Result<String, ControllerError> {
        self.write(|image| {
            let topic = image
                .topic_by_id(id)
                .ok_or(ControllerError::UnknownTopicId(*id))?;
            Ok((
                vec![MetadataRecord::RemoveTopic { topic_id: topic.id }],
                topic.name.clone(),
            ))
        })
    }

    /// CreatePartitions: grows `name` to `new_total` partitions, placed like the existing ones.
    pub fn create_partitions(
        &self,
        name: &str,
        new_total: i32,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        self.write(|image| {
            let topic = image.topic(name).ok_or_else(|| unknown_topic(name))?;
            let current = topic.partitions.len() as i32;
            if new_total < current {
                return Err(ControllerError::InvalidPartitions(format!(
                    "The topic {name} currently has {current} partition(s); {new_total} would not be an increase."
                )));
            }
            if new_total == current {
                return Err(ControllerError::InvalidPartitions(format!(
                    "Topic already has {current} partition(s)."
                )));
            }
            let rf = topic
                .partitions
                .values()
                .next()
                .map_or(1, |p| p.replicas.len() as i16);
            let brokers = usable_brokers(image);
            check_replication_factor(rf, brokers.len())?;
            let assignment = place_replicas(&brokers, current, new_total - current, rf);
            if validate_only {
                return Ok((Vec::new(), ()));
            }
            Ok((partition_records(topic.id, &assignment).collect(), ()))
        })
    }

    /// IncrementalAlterConfigs on one resource.
    pub fn alter_configs(
        &self,
        resource: ConfigResource,
        ops: Vec<AlterConfigOp>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        self.write(|image| {
            let (rtype, rname, current) = resolve(image, &resource)?;
            let mut target = current.clone();
            let mut seen = std::collections::BTreeSet::new();
            for op in &ops {
                let key = &op.name;
                if !seen.insert(key.clone()) {
                    return Err(ControllerError::InvalidRequest(format!(
                        "Error due to duplicate config keys: {key}"
                    )));
                }
                apply_op(rtype, &mut target, op)?;
            }
            if rtype == CONFIG_RESOURCE_TOPIC {
                self.check_policy(image, &rname, Some(&current), &target)?;
            }
            let records = diff_records(rtype, &rname, &current, &target);
            Ok((if validate_only { Vec::new() } else { records }, ()))
        })
    }

    /// Legacy AlterConfigs: `configs` become the complete set of overrides.
    pub fn replace_configs(
        &self,
        resource: ConfigResource,
        configs: Vec<(String, String)>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        self.write(|image| {
            let (rtype, rname, current) = resolve(image, &resource)?;
            let target = if rtype == CONFIG_RESOURCE_TOPIC {
                let target = check_topic_configs(&configs)?;
                self.check_policy(image, &rname, Some(&current), &target)?;
                target
            } else {
                configs.into_iter().collect()
            };
            let records = diff_records(rtype, &rname, &current, &target);
            Ok((if validate_only { Vec::new() } else { records }, ()))
        })
    }

    /// AllocateProducerIds: hands `broker_id` the next block of 1000 ids. A broker asking over
    /// the wire names its broker epoch, which must be its current registration's, as Kafka's
    /// controller checks (STALE_BROKER_EPOCH otherwise); the node's own broker passes `None`.
    pub fn allocate_producer_ids(
        &self,
        broker_id: i32,
        broker_epoch: Option<i64>,
    ) -> Result<(i64, i32), ControllerError> {
        self.write(|image| {
            let broker = image.brokers.get(&broker_id).ok_or_else(|| {
                ControllerError::InvalidRequest(format!("Broker {broker_id} is not registered."))
            })?;
            if let Some(sent) = broker_epoch.filter(|e| *e != broker.epoch) {
                return Err(ControllerError::StaleBrokerEpoch {
                    broker_id,
                    sent,
                    registered: broker.epoch,
                });
            }
            let first = image.next_producer_id;
            let record = MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id,
                broker_epoch: broker.epoch,
                next_producer_id: first + i64::from(PRODUCER_ID_BLOCK_SIZE),
            });
            Ok((vec![record], (first, PRODUCER_ID_BLOCK_SIZE)))
        })
    }
}

/// One topic's election outcomes, by partition.
pub type TopicElections = (String, Vec<(i32, Result<(), ElectionError>)>);

impl Controller {
    /// ElectLeaders: elects the leaders `kind` asks for in `partitions`, by topic; `None` means
    /// every partition, answering only those whose leader changed or could not be elected, as
    /// Kafka's controller does.
    pub fn elect_leaders(
        &self,
        kind: ElectionType,
        partitions: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Vec<TopicElections>, ControllerError> {
        self.write(|image| {
            let all = partitions.is_none();
            let wanted = partitions.unwrap_or_else(|| {
                let each = image.topics.values();
                each.map(|t| (t.name.clone(), t.partitions.keys().copied().collect()))
                    .collect()
            });
            let mut records = Vec::new();
            let mut results = Vec::new();
            for (name, ids) in wanted {
                let ids: std::collections::BTreeSet<i32> = ids.into_iter().collect();
                let mut outcomes = Vec::new();
                for id in ids {
                    let outcome = match image.topic(&name) {
                        None => Err(ElectionError::UnknownPartition),
                        Some(t) => elect(image, t, id, kind)
                            .map(|c| records.push(MetadataRecord::PartitionChange(c))),
                    };
                    if !(all && outcome == Err(ElectionError::NotNeeded)) {
                        outcomes.push((id, outcome));
                    }
                }
                if !(all && outcomes.is_empty()) {
                    results.push((name, outcomes));
                }
            }
            Ok((records, results))
        })
    }

    /// One round of `auto.leader.rebalance.enable`: a preferred leader election for up to
    /// `max` partitions whose leader is not their first replica while that replica is in the
    /// ISR and active (Kafka's KRaft controller, `maxElectionsPerImbalance`). Returns how many
    /// leaderships moved; `max` of them means more may be waiting.
    pub fn balance_leaders(&self, max: usize) -> Result<usize, ControllerError> {
        self.write(|image| {
            let mut records = Vec::new();
            'topics: for t in image.topics.values() {
                for id in t.partitions.keys() {
                    if records.len() >= max {
                        break 'topics;
                    }
                    if let Ok(change) = elect(image, t, *id, ElectionType::Preferred) {
                        records.push(MetadataRecord::PartitionChange(change));
                    }
                }
            }
            let moved = records.len();
            Ok((records, moved))
        })
    }
}

fn topic_config(topic: &str, key: &str, value: Option<&String>) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type: CONFIG_RESOURCE_TOPIC,
        resource_name: topic.to_owned(),
        name: key.to_owned(),
        value: value.cloned(),
    })
}

/// The resource's type, name and current overrides.
fn resolve(
    image: &MetadataImage,
    resource: &ConfigResource,
) -> Result<(i8, String, BTreeMap<String, String>), ControllerError> {
    match resource {
        ConfigResource::Topic(name) => {
            let topic = image.topic(name).ok_or_else(|| unknown_topic(name))?;
            Ok((CONFIG_RESOURCE_TOPIC, name.clone(), topic.configs.clone()))
        }
        ConfigResource::Broker(id) => {
            let rname = id.map(|i| i.to_string()).unwrap_or_default();
            let current = image
                .broker_configs
                .get(&rname)
                .cloned()
                .unwrap_or_default();
            Ok((CONFIG_RESOURCE_BROKER, rname, current))
        }
    }
}

fn list_items(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn apply_op(
    rtype: i8,
    target: &mut BTreeMap<String, String>,
    op: &AlterConfigOp,
) -> Result<(), ControllerError> {
    let is_topic = rtype == CONFIG_RESOURCE_TOPIC;
    let k = &op.name;
    let value = || {
        op.value.clone().ok_or_else(|| {
            ControllerError::InvalidRequest(format!("Null value not supported for: {k}"))
        })
    };
    match op.op {
        ConfigOpType::Set => {
            let v = value()?;
            if is_topic {
                check_topic_config(k, &v)?;
            }
            target.insert(k.clone(), v);
        }
        ConfigOpType::Delete => {
            if is_topic && topic_config_default(k).is_none() {
                check_topic_config(k, "")?;
            }
            target.remove(k);
        }
        ConfigOpType::Append | ConfigOpType::Subtract => {
            if is_topic && !is_list_config(k) {
                return Err(ControllerError::InvalidConfig {
                    key: k.clone(),
                    reason: format!("Config value append is not allowed for config key: {k}"),
                });
            }
            let base = target
                .get(k)
                .cloned()
                .or_else(|| {
                    topic_config_default(k)
                        .filter(|_| is_topic)
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            let mut items = list_items(&base);
            let given = list_items(&value()?);
            if op.op == ConfigOpType::Append {
                for g in given {
                    if !items.contains(&g) {
                        items.push(g);
                    }
                }
            } else {
                items.retain(|i| !given.contains(i));
            }
            let joined = items.join(",");
            if is_topic {
                check_topic_config(k, &joined)?;
            }
            target.insert(k.clone(), joined);
        }
    }
    Ok(())
}

/// ConfigRecords turning `current` into `target` (only keys that change).
fn diff_records(
    rtype: i8,
    rname: &str,
    current: &BTreeMap<String, String>,
    target: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    let record = |k: &String, v: Option<&String>| {
        MetadataRecord::Config(ConfigRecord {
            resource_type: rtype,
            resource_name: rname.to_owned(),
            name: k.clone(),
            value: v.cloned(),
        })
    };
    for (k, v) in target {
        if current.get(k) != Some(v) {
            out.push(record(k, Some(v)));
        }
    }
    for k in current.keys() {
        if !target.contains_key(k) {
            out.push(record(k, None));
        }
    }
    out
}
