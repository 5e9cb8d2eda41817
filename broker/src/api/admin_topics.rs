//! CreateTopics, DeleteTopics, CreatePartitions and DeleteRecords.
//!
//! Metadata changes go through the controller (which validates names, counts and configs the
//! way Kafka does); the broker then reconciles its local logs with the new image. New partitions
//! first reserve their active segments' descriptors in the open-files budget
//! (`shale.log.open.files.max`): what the broker cannot host fails with POLICY_VIOLATION before
//! any metadata is written.
//!
//! The three mutations are charged to the client's `controller_mutation_rate` (KIP-599,
//! [`Mutations`]), on the node that handles them — the active controller, as in Kafka.

use super::admin_configs::topic_config_entries;
use super::{blocking, RequestContext};
use crate::errors::{controller_error, log_error_code};
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use shale_common::TopicPartition;
use shale_local_log::{FileReservation, LogError};
use shale_raft::acl::op;
use shale_raft::{ControllerError, CreateTopicSpec, CreatedTopic};
use std::sync::Arc;

/// Why a topic or its partitions could not be created.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CreateError {
    /// The controller refused the change.
    #[error(transparent)]
    Controller(ControllerError),
    /// The open-files budget cannot host the new partitions.
    #[error(transparent)]
    Capacity(LogError),
    /// The active controller, reached by forwarding, answered with this error.
    #[error("{1}")]
    Remote(i16, String),
}

impl CreateError {
    /// Kafka error code and message.
    pub(crate) fn code_and_message(&self) -> (i16, String) {
        match self {
            CreateError::Controller(e) => controller_error(e),
            CreateError::Capacity(e) => (log_error_code(e), e.to_string()),
            CreateError::Remote(code, message) => (*code, message.clone()),
        }
    }

    /// The topic existed already.
    pub(crate) fn is_already_exists(&self) -> bool {
        match self {
            CreateError::Controller(e) => matches!(e, ControllerError::TopicAlreadyExists(_)),
            CreateError::Capacity(_) => false,
            CreateError::Remote(code, _) => *code == E::TopicAlreadyExists.code(),
        }
    }
}

/// Creates a topic the broker itself needs (auto-creation, `__consumer_offsets`): through the
/// local controller, or, on a node of a cluster that is not the active controller, by
/// forwarding a CreateTopics request and waiting for the topic to reach this broker's image.
pub(crate) async fn create_internal(
    broker: &Arc<Broker>,
    spec: CreateTopicSpec,
) -> Result<(), CreateError> {
    if let Some(forwarder) = broker.forwarder().filter(|f| !f.is_controller()) {
        return forwarder.create_topic(broker, spec).await;
    }
    blocking(broker, move |b| create_topic_with_logs(b, spec, false))
        .await
        .map(drop)
}

/// Room in the open-files budget for `partitions` new active segments, held while their logs
/// are created.
fn reserve_logs(b: &Broker, partitions: i32) -> Result<FileReservation, CreateError> {
    b.logs().reserve(partitions.max(0) as usize).map_err(|e| {
        tracing::info!(error = %e, "refused new partitions");
        CreateError::Capacity(e)
    })
}

/// CreateTopics for one topic: validates it (resolving the partition count), reserves its
/// logs' descriptors, writes the metadata and creates the logs (not when `validate_only`).
pub(crate) fn create_topic_with_logs(
    b: &Broker,
    spec: CreateTopicSpec,
    validate_only: bool,
) -> Result<CreatedTopic, CreateError> {
    let checked = b
        .controller
        .create_topic(spec.clone(), true)
        .map_err(CreateError::Controller)?;
    let _room = reserve_logs(b, checked.num_partitions)?;
    if validate_only {
        return Ok(checked);
    }
    let created = b
        .controller
        .create_topic(spec, false)
        .map_err(CreateError::Controller)?;
    if let Err(e) = b.reconcile() {
        tracing::error!(error = %e, "creating logs for a new topic failed");
    }
    Ok(created)
}

/// CreatePartitions for one topic, with the same reservation as [`create_topic_with_logs`].
fn create_partitions_with_logs(
    b: &Broker,
    name: &str,
    count: i32,
    validate_only: bool,
) -> Result<(), CreateError> {
    b.controller
        .create_partitions(name, count, true)
        .map_err(CreateError::Controller)?;
    let current = b
        .image()
        .topic(name)
        .map_or(0, |t| t.partitions.len() as i32);
    let _room = reserve_logs(b, count - current)?;
    if validate_only {
        return Ok(());
    }
    b.controller
        .create_partitions(name, count, false)
        .map_err(CreateError::Controller)?;
    if let Err(e) = b.reconcile() {
        tracing::error!(error = %e, "creating logs for new partitions failed");
    }
    Ok(())
}

/// A request's partition mutations against the client's `controller_mutation_rate`. Strict
/// from CreateTopics v6, DeleteTopics v5 and CreatePartitions v3, as in Kafka: a topic asked
/// for while the client's bucket is empty fails with THROTTLING_QUOTA_EXCEEDED (the one that
/// empties it still passes); older versions are served and then throttled. Validate-only
/// requests are free. The throttle goes into the response and mutes the connection.
struct Mutations<'a> {
    broker: &'a Broker,
    ctx: &'a RequestContext<'a>,
    strict: bool,
    free: bool,
    throttle_ms: u64,
}

impl<'a> Mutations<'a> {
    fn new(broker: &'a Broker, ctx: &'a RequestContext<'a>, strict: bool, free: bool) -> Self {
        Mutations {
            broker,
            ctx,
            strict,
            free,
            throttle_ms: 0,
        }
    }

    /// Whether the next topic must be refused (strict versions, bucket empty).
    fn refused(&mut self) -> bool {
        if self.free || !self.strict {
            return false;
        }
        let (c, image) = (self.ctx, self.broker.image());
        let quotas = &self.broker.quotas;
        let wait = quotas.mutation_throttle(&image, &c.connection.principal, c.client_id);
        self.throttle_ms = self.throttle_ms.max(wait);
        wait > 0
    }

    /// Charges `partitions` created or deleted.
    fn record(&mut self, partitions: usize) {
        if self.free || partitions == 0 {
            return;
        }
        let (c, image) = (self.ctx, self.broker.image());
        let n = u32::try_from(partitions).unwrap_or(u32::MAX);
        let quotas = &self.broker.quotas;
        let wait = quotas.record_mutations(&image, &c.connection.principal, c.client_id, n);
        if !self.strict {
            self.throttle_ms = self.throttle_ms.max(wait);
        }
    }

    /// The response's `throttle_time_ms`; the connection rests that long.
    fn finish(self) -> i32 {
        self.ctx.connection.mute.rest(self.throttle_ms);
        i32::try_from(self.throttle_ms).unwrap_or(i32::MAX)
    }
}

fn throttled_message() -> Option<StrBytes> {
    Some(StrBytes::from_static_str(
        "The throttling quota has been exceeded.",
    ))
}

/// Creates (or, with `validate_only`, checks) each topic.
pub async fn create_topics(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    let validate_only = req.validate_only;
    let cluster_create = ctx.authz.cluster(op::CREATE);
    let mut quota = Mutations::new(broker, ctx, version >= 6, validate_only);
    for t in &req.topics {
        if !cluster_create && !ctx.authz.topic(op::CREATE, &t.name) {
            resp.topics.push(create_denied(t.name.clone(), version));
            continue;
        }
        if quota.refused() {
            let mut out = CreatableTopicResult::default();
            out.name = t.name.clone();
            out.error_code = E::ThrottlingQuotaExceeded.code();
            out.error_message = throttled_message();
            out.num_partitions = -1;
            out.replication_factor = -1;
            resp.topics.push(out);
            continue;
        }
        let spec = CreateTopicSpec {
            name: t.name.0.to_string(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| b.0).collect(),
                    )
                })
                .collect(),
            configs: t
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect(),
        };
        let result = blocking(broker, move |b| {
            create_topic_with_logs(b, spec, validate_only)
        })
        .await;
        let mut out = CreatableTopicResult::default();
        out.name = t.name.clone();
        match result {
            Ok(created) => {
                tracing::info!(topic = %t.name.0, partitions = created.num_partitions, validate_only, "created topic");
                quota.record(created.num_partitions.max(0) as usize);
                out.topic_id = created.topic_id;
                out.num_partitions = created.num_partitions;
                out.replication_factor = created.replication_factor;
                if version >= 5 && !ctx.authz.topic(op::DESCRIBE_CONFIGS, &t.name) {
                    // Created, but the creator may not read its configuration.
                    out.topic_config_error_code = E::TopicAuthorizationFailed.code();
                    out.num_partitions = -1;
                    out.replication_factor = -1;
                } else if version >= 5 {
                    let entries = topic_config_entries(broker, &created.configs);
                    out.configs = Some(
                        entries
                            .into_iter()
                            .map(|e| {
                                let mut c = CreatableTopicConfigs::default();
                                c.name = StrBytes::from_string(e.name);
                                c.value = e.value.map(StrBytes::from_string);
                                c.config_source = e.source;
                                c
                            })
                            .collect(),
                    );
                }
            }
            Err(e) => {
                let (code, msg) = e.code_and_message();
                out.error_code = code;
                out.error_message = Some(StrBytes::from_string(msg));
                out.num_partitions = -1;
                out.replication_factor = -1;
            }
        }
        if version < 7 {
            out.topic_id = uuid::Uuid::nil();
        }
        if version < 5 {
            out.num_partitions = -1;
            out.replication_factor = -1;
        }
        if version < 1 {
            out.error_message = None;
        }
        resp.topics.push(out);
    }
    let throttle = quota.finish();
    if version >= 2 {
        resp.throttle_time_ms = throttle;
    }
    resp
}

/// A topic the principal may not create (CREATE on neither the cluster nor the topic).
fn create_denied(name: TopicName, version: i16) -> CreatableTopicResult {
    let mut out = CreatableTopicResult::default();
    out.name = name;
    out.error_code = E::TopicAuthorizationFailed.code();
    out.error_message = (version >= 1).then(|| StrBytes::from_static_str("Authorization failed."));
    out.num_partitions = -1;
    out.replication_factor = -1;
    out
}

/// Deletes topics by name (all versions) or id (v6+). A topic the principal may not describe
/// is TOPIC_AUTHORIZATION_FAILED whether it exists or not, as in Kafka.
pub async fn delete_topics(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let cluster_delete = ctx.authz.cluster(op::DELETE);
    let mut resp = DeleteTopicsResponse::default();
    let image = broker.image();
    let mut quota = Mutations::new(broker, ctx, version >= 5, false);
    let mut targets: Vec<(Option<TopicName>, uuid::Uuid)> = req
        .topic_names
        .iter()
        .map(|n| (Some(n.clone()), uuid::Uuid::nil()))
        .collect();
    targets.extend(req.topics.iter().map(|t| (t.name.clone(), t.topic_id)));
    for (name, id) in targets {
        let mut out = DeletableTopicResult::default();
        out.name = name.clone();
        out.topic_id = id;
        let resolved = match &name {
            Some(n) => Some(n.0.to_string()),
            None => image.topic_by_id(&id).map(|t| t.name.clone()),
        };
        let Some(topic) = resolved else {
            out.error_code = E::UnknownTopicId.code();
            resp.responses.push(out);
            continue;
        };
        if !broker.config.delete_topic_enable {
            out.error_code = E::TopicDeletionDisabled.code();
            resp.responses.push(out);
            continue;
        }
        if !cluster_delete && !ctx.authz.topic(op::DELETE, &topic) {
            if ctx.authz.topic(op::DESCRIBE, &topic) {
                out.name = Some(TopicName(StrBytes::from_string(topic.clone())));
            }
            out.error_code = E::TopicAuthorizationFailed.code();
            resp.responses.push(out);
            continue;
        }
        if quota.refused() {
            out.error_code = E::ThrottlingQuotaExceeded.code();
            out.error_message = throttled_message(); // strict versions have the field
            resp.responses.push(out);
            continue;
        }
        let partitions = image.topic(&topic).map_or(0, |t| t.partitions.len());
        let result = blocking(broker, move |b| {
            let r = b.controller.delete_topic(&topic);
            if r.is_ok() {
                if let Err(e) = b.reconcile() {
                    tracing::error!(error = %e, "deleting logs of a topic failed");
                }
            }
            r
        })
        .await;
        match result {
            Ok(deleted_id) => {
                quota.record(partitions);
                out.topic_id = deleted_id;
                if out.name.is_none() {
                    out.name = image
                        .topic_by_id(&deleted_id)
                        .map(|t| TopicName(StrBytes::from_string(t.name.clone())));
                }
            }
            Err(e) => {
                let (code, msg) = controller_error(&e);
                out.error_code = code;
                out.error_message = Some(StrBytes::from_string(msg));
            }
        }
        if version < 6 {
            out.topic_id = uuid::Uuid::nil();
        }
        if version < 5 {
            out.error_message = None;
        }
        resp.responses.push(out);
    }
    let throttle = quota.finish();
    if version >= 1 {
        resp.throttle_time_ms = throttle;
    }
    resp
}

/// Raises a topic's partition count.
pub async fn create_partitions(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &CreatePartitionsRequest,
    version: i16,
) -> CreatePartitionsResponse {
    let mut resp = CreatePartitionsResponse::default();
    let validate_only = req.validate_only;
    let mut quota = Mutations::new(broker, ctx, version >= 3, validate_only);
    for t in &req.topics {
        if !ctx.authz.topic(op::ALTER, &t.name) {
            let mut out = CreatePartitionsTopicResult::default();
            out.name = t.name.clone();
            out.error_code = E::TopicAuthorizationFailed.code();
            out.error_message = None;
            resp.results.push(out);
            continue;
        }
        let mut out = CreatePartitionsTopicResult::default();
        out.name = t.name.clone();
        if quota.refused() {
            out.error_code = E::ThrottlingQuotaExceeded.code();
            out.error_message = throttled_message();
            resp.results.push(out);
            continue;
        }
        let (name, count) = (t.name.0.to_string(), t.count);
        let before = broker
            .image()
            .topic(&name)
            .map_or(0, |t| t.partitions.len());
        let result = blocking(broker, move |b| {
            create_partitions_with_logs(b, &name, count, validate_only)
        })
        .await;
        match result {
            Ok(()) => quota.record((count.max(0) as usize).saturating_sub(before)),
            Err(e) => {
                let (code, msg) = e.code_and_message();
                out.error_code = code;
                out.error_message = Some(StrBytes::from_string(msg));
            }
        }
        resp.results.push(out);
    }
    resp.throttle_time_ms = quota.finish();
    resp
}

/// Raises log start offsets (offset -1 means the high watermark).
pub fn delete_records(
    broker: &Broker,
    ctx: &RequestContext<'_>,
    req: &DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut resp = DeleteRecordsResponse::default();
    for t in &req.topics {
        let mut out = DeleteRecordsTopicResult::default();
        out.name = t.name.clone();
        let allowed = ctx.authz.topic(op::DELETE, &t.name);
        for p in &t.partitions {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = p.partition_index;
            r.low_watermark = -1;
            let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
            match broker.replicas().get_leader(&tp) {
                _ if !allowed => r.error_code = E::TopicAuthorizationFailed.code(),
                Err(e) => r.error_code = crate::errors::replica_error(&e).code(),
                Ok(part) => {
                    let target = if p.offset == -1 {
                        part.high_watermark()
                    } else {
                        p.offset
                    };
                    if target < 0 || target > part.high_watermark() {
                        r.error_code = E::OffsetOutOfRange.code();
                    } else {
                        match super::storage_io(|| part.log.delete_records_before(target)) {
                            Ok(low) => r.low_watermark = low,
                            Err(e) => r.error_code = log_error_code(&e),
                        }
                    }
                }
            }
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    resp
}
