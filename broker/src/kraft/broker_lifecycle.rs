//! BrokerRegistration (api 62), BrokerHeartbeat (api 63), AllocateProducerIds (api 67) and
//! AlterPartition (api 56, v2–3) on the controller listener — what a broker asks of the
//! active controller for itself and for the partitions it leads: decode
//! with kafka-protocol, call the metadata [`Controller`] on a blocking thread (its writes wait
//! for the quorum to commit), encode the answer. A quorum member without a controller, or a
//! controller that is not active, answers NOT_CONTROLLER, as Kafka's controller does.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use shale_common::Clock;
use shale_protocol::codec::decode_message;
use shale_protocol::kafka_protocol::error::ResponseError;
use shale_protocol::kafka_protocol::messages::{
    alter_partition_response, AllocateProducerIdsRequest, AllocateProducerIdsResponse,
    AlterPartitionRequest, AlterPartitionResponse, ApiKey, BrokerHeartbeatRequest,
    BrokerHeartbeatResponse, BrokerId, BrokerRegistrationRequest, BrokerRegistrationResponse,
    ProducerId,
};
use shale_protocol::kafka_protocol::protocol::{Encodable, Message};
use shale_raft::broker_liveness::Heartbeat;
use shale_raft::controller_isr::{AlterIsr, IsrChange, IsrError, IsrState};
use shale_raft::{Controller, ControllerError, Endpoint};

use crate::errors::controller_error;

/// The versions served here, as (api, (min, max)).
pub const VERSIONS: [(ApiKey, (i16, i16)); 4] = [
    (
        ApiKey::BrokerRegistration,
        (
            BrokerRegistrationRequest::VERSIONS.min,
            BrokerRegistrationRequest::VERSIONS.max,
        ),
    ),
    (
        ApiKey::BrokerHeartbeat,
        (
            BrokerHeartbeatRequest::VERSIONS.min,
            BrokerHeartbeatRequest::VERSIONS.max,
        ),
    ),
    (
        ApiKey::AllocateProducerIds,
        (
            AllocateProducerIdsRequest::VERSIONS.min,
            AllocateProducerIdsRequest::VERSIONS.max,
        ),
    ),
    (
        ApiKey::AlterPartition,
        (
            AlterPartitionRequest::VERSIONS.min,
            AlterPartitionRequest::VERSIONS.max,
        ),
    ),
];

/// Whether `api_key` is answered by [`answer`].
pub fn handles(api_key: ApiKey) -> bool {
    VERSIONS.iter().any(|(k, _)| *k == api_key)
}

/// The response body for a request of one of the [`VERSIONS`] APIs.
pub async fn answer(
    api_key: ApiKey,
    version: i16,
    body: Bytes,
    controller: Option<Arc<Controller>>,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Bytes> {
    let now_ms = u64::try_from(clock.now_ms()).unwrap_or(0);
    let mut out = BytesMut::new();
    match api_key {
        ApiKey::BrokerRegistration => {
            let req: BrokerRegistrationRequest = decode_message(body, version)?;
            let result = call(controller, move |c| {
                c.register_broker(registration(&req), now_ms)
            })
            .await;
            let (code, epoch) = match result {
                Ok(epoch) => (0, epoch),
                Err(code) => (code, -1),
            };
            BrokerRegistrationResponse::default()
                .with_error_code(code)
                .with_broker_epoch(epoch)
                .encode(&mut out, version)?;
        }
        ApiKey::AllocateProducerIds => {
            let req: AllocateProducerIdsRequest = decode_message(body, version)?;
            let (id, epoch) = (req.broker_id.0, req.broker_epoch);
            let response = match call(controller, move |c| {
                c.allocate_producer_ids(id, Some(epoch))
            })
            .await
            {
                Ok((first, len)) => AllocateProducerIdsResponse::default()
                    .with_producer_id_start(ProducerId(first))
                    .with_producer_id_len(len),
                Err(code) => AllocateProducerIdsResponse::default()
                    .with_error_code(code)
                    .with_producer_id_start(ProducerId(-1)),
            };
            response.encode(&mut out, version)?;
        }
        ApiKey::AlterPartition => alter_partition(version, body, controller)
            .await?
            .encode(&mut out, version)?,
        _ => heartbeat(version, body, controller, now_ms)
            .await?
            .encode(&mut out, version)?,
    }
    Ok(out.freeze())
}

async fn heartbeat(
    version: i16,
    body: Bytes,
    controller: Option<Arc<Controller>>,
    now_ms: u64,
) -> anyhow::Result<BrokerHeartbeatResponse> {
    let req: BrokerHeartbeatRequest = decode_message(body, version)?;
    let hb = Heartbeat {
        broker_id: req.broker_id.0,
        broker_epoch: req.broker_epoch,
        current_metadata_offset: req.current_metadata_offset,
        want_fence: req.want_fence,
        want_shutdown: req.want_shut_down,
    };
    Ok(
        match call(controller, move |c| c.broker_heartbeat(hb, now_ms)).await {
            Ok(reply) => BrokerHeartbeatResponse::default()
                .with_is_caught_up(reply.is_caught_up)
                .with_is_fenced(reply.is_fenced)
                .with_should_shut_down(reply.should_shut_down),
            // Kafka's defaults on error: not caught up, fenced.
            Err(code) => BrokerHeartbeatResponse::default()
                .with_error_code(code)
                .with_is_fenced(true),
        },
    )
}

async fn alter_partition(
    version: i16,
    body: Bytes,
    controller: Option<Arc<Controller>>,
) -> anyhow::Result<AlterPartitionResponse> {
    let req: AlterPartitionRequest = decode_message(body, version)?;
    let asked = alter_isr(&req);
    let outcomes = match call(controller, move |c| c.alter_partition(asked)).await {
        Ok(outcomes) => outcomes,
        Err(code) => return Ok(AlterPartitionResponse::default().with_error_code(code)),
    };
    let mut outcomes = outcomes.into_iter();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .zip(outcomes.by_ref())
                .map(|(p, outcome)| partition_outcome(p.partition_index, outcome))
                .collect();
            alter_partition_response::TopicData::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    Ok(AlterPartitionResponse::default().with_topics(topics))
}

/// The controller's form of an AlterPartition request; v2 members carry no broker epoch (-1).
fn alter_isr(req: &AlterPartitionRequest) -> AlterIsr {
    let partitions = req.topics.iter().flat_map(|t| {
        t.partitions.iter().map(|p| IsrChange {
            topic_id: t.topic_id,
            partition: p.partition_index,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: if p.new_isr_with_epochs.is_empty() {
                p.new_isr.iter().map(|b| (b.0, -1)).collect()
            } else {
                let members = p.new_isr_with_epochs.iter();
                members.map(|b| (b.broker_id.0, b.broker_epoch)).collect()
            },
            leader_recovery_state: p.leader_recovery_state,
        })
    });
    AlterIsr {
        broker_id: req.broker_id.0,
        broker_epoch: req.broker_epoch,
        partitions: partitions.collect(),
    }
}

fn partition_outcome(
    index: i32,
    outcome: Result<IsrState, IsrError>,
) -> alter_partition_response::PartitionData {
    let data = alter_partition_response::PartitionData::default().with_partition_index(index);
    match outcome {
        Ok(s) => data
            .with_leader_id(BrokerId(s.leader))
            .with_leader_epoch(s.leader_epoch)
            .with_isr(s.isr.into_iter().map(BrokerId).collect())
            .with_partition_epoch(s.partition_epoch),
        Err(e) => data.with_error_code(isr_error_code(e)),
    }
}

/// Kafka's error code for a refused ISR change (AlterPartition v2+).
pub(crate) fn isr_error_code(e: IsrError) -> i16 {
    let kafka = match e {
        IsrError::UnknownTopicId => ResponseError::UnknownTopicId,
        IsrError::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        IsrError::ControllerBehind => ResponseError::NotController,
        IsrError::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
        IsrError::InvalidUpdateVersion => ResponseError::InvalidUpdateVersion,
        IsrError::InvalidRequest => ResponseError::InvalidRequest,
        IsrError::IneligibleReplica => ResponseError::IneligibleReplica,
        IsrError::NewLeaderElected => ResponseError::NewLeaderElected,
    };
    kafka.code()
}

fn registration(req: &BrokerRegistrationRequest) -> shale_raft::BrokerRegistrationRequest {
    shale_raft::BrokerRegistrationRequest {
        broker_id: req.broker_id.0,
        cluster_id: req.cluster_id.to_string(),
        incarnation_id: req.incarnation_id,
        endpoints: req
            .listeners
            .iter()
            .map(|l| Endpoint {
                name: l.name.to_string(),
                host: l.host.to_string(),
                port: l.port,
                security_protocol: l.security_protocol,
            })
            .collect(),
        rack: req.rack.as_ref().map(|r| r.to_string()),
    }
}

/// Runs `f` on the controller on a blocking thread; the error is a Kafka error code.
async fn call<T: Send + 'static>(
    controller: Option<Arc<Controller>>,
    f: impl FnOnce(&Controller) -> Result<T, ControllerError> + Send + 'static,
) -> Result<T, i16> {
    let Some(controller) = controller else {
        return Err(ResponseError::NotController.code());
    };
    match shale_common::blocking::spawn(move || f(&controller)).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => {
            let (code, message) = controller_error(&e);
            tracing::debug!(code, %message, "broker lifecycle request refused");
            Err(code)
        }
        Err(e) => {
            tracing::error!(error = %e, "broker lifecycle request panicked");
            Err(ResponseError::UnknownServerError.code())
        }
    }
}
