//! The partition leader's line to the controller for ISR changes (Kafka's
//! `AlterPartitionManager`): ISR changes the leaders propose are batched into one
//! AlterPartition (v3: topic ids, members with their broker epochs, KIP-903) on a channel of
//! their own, and each answer is handed back to its partition.
//!
//! At most one change per partition is in flight: a partition marks its change pending when
//! it is sent and proposes nothing more until the answer (or new metadata) arrives. A refused
//! or lost change just clears the pending mark; the leader proposes again when its followers'
//! progress calls for it (the next fetch, the next shrink check), so nothing is retried blind.
//! Every `replica.lag.time.max.ms / 2` the led partitions are checked for members to drop.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
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
    let mut sent: Vec<Arc<Partition>> = Vec::new();
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
        p.isr_change_sent(isr);
        sent.push(p);
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
    for p in sent {
        let committed = match &answered {
            Ok(resp) => outcome(resp, &p),
            Err(e) => {
                tracing::warn!(partition = %p.tp, error = %e, "ISR change not answered");
                None
            }
        };
        p.isr_change_answered(committed);
    }
}

async fn call(
    channel: &ControllerChannel,
    req: &AlterPartitionRequest,
) -> anyhow::Result<AlterPartitionResponse> {
    let mut body = BytesMut::new();
    req.encode(&mut body, VERSION)?;
    let mut resp = channel.send(ApiKey::AlterPartition, VERSION, &body).await?;
    let resp = AlterPartitionResponse::decode(&mut resp, VERSION)?;
    anyhow::ensure!(
        resp.error_code == 0,
        "AlterPartition error {}",
        resp.error_code
    );
    Ok(resp)
}

/// The committed ISR and partition epoch the controller answered for `p`, `None` when it
/// refused the change.
fn outcome(resp: &AlterPartitionResponse, p: &Partition) -> Option<(Vec<i32>, i32)> {
    let t = resp.topics.iter().find(|t| t.topic_id == p.topic_id)?;
    let d = t
        .partitions
        .iter()
        .find(|d| d.partition_index == p.tp.partition)?;
    if d.error_code != 0 {
        tracing::info!(partition = %p.tp, code = d.error_code, "the controller refused the ISR change");
        return None;
    }
    let isr = d.isr.iter().map(|b| b.0).collect();
    Some((isr, d.partition_epoch))
}
