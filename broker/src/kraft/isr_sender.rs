//! The partition leader's line to the controller for ISR changes (Kafka's
//! `AlterPartitionManager`): ISR changes the leaders propose are batched into one
//! AlterPartition (v3: topic ids, members with their broker epochs, KIP-903) on a channel of
//! their own, and each answer is handed back to its partition.
//!
//! At most one change per partition is in flight: a partition marks its change pending when
//! it is proposed and proposes nothing more until the answer (or new metadata) arrives. As in
//! Kafka's `handleAlterPartitionError`: INELIGIBLE_REPLICA, OPERATION_NOT_ATTEMPTED and
//! NOT_CONTROLLER (or a refused request) clear the pending mark, and the leader proposes again
//! when its followers' progress calls for it (the next fetch, the next shrink check); the other
//! refusals (stale epochs, unknown partition, NEW_LEADER_ELECTED …) mean this leader's state is
//! behind, so the change stays pending until new metadata replaces it. A request with no answer
//! may have been committed: the change stays pending and is sent again after
//! [`RESEND_BACKOFF`] (Kafka's AlterPartitionManager resends it too). Clearing it instead would
//! let the high watermark pass a joining follower the controller may already have put in the
//! ISR, and then elect (found by the replication simulation).
//! Every `replica.lag.time.max.ms / 2` the led partitions are checked for members to drop.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse, ApiKey, BrokerId};
use kafka_protocol::protocol::{Decodable, Encodable};
use shale_common::TopicPartition;
use tokio::sync::watch;

use super::controller_channel::ControllerChannel;
use crate::replica::Partition;
use crate::state::Broker;

/// The AlterPartition version sent.
const VERSION: i16 = 3;
/// Wait before sending again a change whose request got no answer.
const RESEND_BACKOFF: Duration = Duration::from_millis(200);

/// Sends the ISR changes `broker`'s leaders propose until `stop`, and checks for lagging
/// members every `lag / 2`.
pub async fn run(
    broker: std::sync::Weak<Broker>,
    channel: Arc<ControllerChannel>,
    lag: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut shrink_check = tokio::time::interval(lag / 2);
    loop {
        let Some(b) = broker.upgrade() else { return };
        let proposals = tokio::select! {
            p = b.replicas().take_isr_proposals() => p,
            _ = shrink_check.tick() => {
                b.replicas().propose_isr_shrinks(lag.as_millis() as i64);
                continue;
            }
            _ = stop.changed() => return,
        };
        send(&b, &channel, proposals).await;
    }
}

async fn send(
    broker: &Arc<Broker>,
    channel: &ControllerChannel,
    proposals: Vec<(TopicPartition, Vec<i32>)>,
) {
    let image = broker.replicas().image();
    let me = broker.config.node_id;
    let mut sent: Vec<(Arc<Partition>, Vec<i32>)> = Vec::new();
    let mut topics: Vec<TopicData> = Vec::new();
    for (tp, isr) in proposals {
        let Some(p) = broker.replicas().get(&tp).filter(|p| p.is_leader()) else {
            continue;
        };
        let members = isr
            .iter()
            .map(|&id| {
                let epoch = image.brokers.get(&id).map_or(-1, |b| b.epoch);
                BrokerState::default()
                    .with_broker_id(BrokerId(id))
                    .with_broker_epoch(epoch)
            })
            .collect();
        let part = PartitionData::default()
            .with_partition_index(tp.partition)
            .with_leader_epoch(p.leader_epoch())
            .with_new_isr_with_epochs(members)
            .with_partition_epoch(p.partition_epoch());
        match topics.iter_mut().find(|t| t.topic_id == p.topic_id) {
            Some(t) => t.partitions.push(part),
            None => topics.push(
                TopicData::default()
                    .with_topic_id(p.topic_id)
                    .with_partitions(vec![part]),
            ),
        }
        tracing::info!(partition = %tp, ?isr, "asking the controller to change the ISR");
        p.isr_change_sent(isr.clone());
        sent.push((p, isr));
    }
    if sent.is_empty() {
        return;
    }
    let epoch = image.brokers.get(&me).map_or(-1, |b| b.epoch);
    let req = AlterPartitionRequest::default()
        .with_broker_id(BrokerId(me))
        .with_broker_epoch(epoch)
        .with_topics(topics);
    let answered = call(channel, &req).await;
    let mut resend = Vec::new();
    for (p, isr) in sent {
        let answer = match &answered {
            Ok(resp) if resp.error_code != 0 => Answer::Retry,
            Ok(resp) => outcome(resp, &p),
            Err(e) => {
                tracing::warn!(partition = %p.tp, error = %e, "ISR change not answered; sending it again");
                Answer::Unknown
            }
        };
        resend.extend(conclude(&p, isr, answer).map(|isr| (p.tp.clone(), isr)));
    }
    if !resend.is_empty() {
        tokio::time::sleep(RESEND_BACKOFF).await;
        for (tp, isr) in resend {
            broker.replicas().propose_isr(&tp, isr);
        }
    }
}

/// Hands the answer about `p`'s pending change to `isr` to the partition; returns the change
/// when it must be sent again (no answer).
pub(crate) fn conclude(p: &Partition, isr: Vec<i32>, answer: Answer) -> Option<Vec<i32>> {
    match answer {
        Answer::Committed(isr, epoch) => p.isr_change_answered(Some((isr, epoch))),
        Answer::Retry => p.isr_change_answered(None),
        Answer::AwaitMetadata => {}
        Answer::Unknown => return Some(isr),
    }
    None
}

async fn call(
    channel: &ControllerChannel,
    req: &AlterPartitionRequest,
) -> anyhow::Result<AlterPartitionResponse> {
    let mut body = BytesMut::new();
    req.encode(&mut body, VERSION)?;
    let mut resp = channel.send(ApiKey::AlterPartition, VERSION, &body).await?;
    let resp = AlterPartitionResponse::decode(&mut resp, VERSION)?;
    if resp.error_code != 0 {
        tracing::warn!(
            code = resp.error_code,
            "the controller refused AlterPartition"
        );
    }
    Ok(resp)
}

/// What the controller's answer means for a partition's pending change.
pub(crate) enum Answer {
    /// Committed: this ISR at this partition epoch.
    Committed(Vec<i32>, i32),
    /// Refused for now: back to the committed ISR, propose again when progress calls for it.
    Retry,
    /// Refused because this leader's state is behind: stay pending until new metadata.
    AwaitMetadata,
    /// No answer: the change may have been committed; it stays pending and is sent again.
    Unknown,
}

/// The controller's answer for `p`.
fn outcome(resp: &AlterPartitionResponse, p: &Partition) -> Answer {
    let data = resp
        .topics
        .iter()
        .find(|t| t.topic_id == p.topic_id)
        .and_then(|t| {
            t.partitions
                .iter()
                .find(|d| d.partition_index == p.tp.partition)
        });
    let Some(d) = data else {
        return Answer::Retry;
    };
    let code = d.error_code;
    if code != 0 {
        tracing::info!(partition = %p.tp, code, "the controller refused the ISR change");
    }
    answer(code, d.isr.iter().map(|b| b.0).collect(), d.partition_epoch)
}

/// What a partition's AlterPartition answer (`code`; on success the committed ISR and partition
/// epoch) means for its pending change: Kafka's `handleAlterPartitionError`.
pub(crate) fn answer(code: i16, isr: Vec<i32>, partition_epoch: i32) -> Answer {
    if code == 0 {
        return Answer::Committed(isr, partition_epoch);
    }
    let retry = [
        ResponseError::IneligibleReplica,
        ResponseError::OperationNotAttempted,
        ResponseError::NotController,
    ];
    if retry.iter().any(|e| e.code() == code) {
        Answer::Retry
    } else {
        Answer::AwaitMetadata
    }
}
