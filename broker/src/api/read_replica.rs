//! Fetching from the closest replica (KIP-392): which replica may answer a consumer's fetch,
//! and the in-sync replica in the consumer's rack a leader points the consumer at when
//! `replica.selector.class` is Kafka's RackAwareReplicaSelector.
//!
//! As in Kafka, a consumer fetch that carries client metadata (Fetch v11+) may be served by a
//! follower, up to the follower's high watermark; older consumer fetches and follower fetches
//! are served by the leader only. The leader answers a consumer in another rack than its own
//! with `preferred_read_replica` and no records when an in-sync replica that can serve lives in
//! the consumer's rack; the client then fetches there.

use std::sync::Arc;

use shale_common::TopicPartition;
use shale_raft::controller_leaders::is_active;

use crate::replica::{Partition, ReplicaError};
use crate::state::Broker;

/// The partition to read for a fetch from `replica` (-1: a consumer), or why this broker
/// cannot serve it. `client_rack` is `Some` for a consumer fetch with client metadata.
pub(super) fn partition(
    broker: &Broker,
    tp: &TopicPartition,
    replica: i32,
    client_rack: Option<&str>,
) -> Result<Arc<Partition>, ReplicaError> {
    let led = broker.replicas().get_leader(tp);
    if matches!(led, Err(ReplicaError::NotLeader { .. })) && replica < 0 && client_rack.is_some() {
        if let Some(follower) = broker.replicas().get(tp) {
            return Ok(follower);
        }
    }
    led
}

/// The in-sync replica in `rack` a leader sends a consumer to, if the selector is on, the
/// leader is in another rack and such a replica can serve.
pub(super) fn preferred(broker: &Broker, partition: &Partition, rack: &str) -> Option<i32> {
    if !broker.config.replication.rack_aware_reads || rack.is_empty() || !partition.is_leader() {
        return None;
    }
    let image = broker.replicas().image();
    let rack_of = |id: i32| image.brokers.get(&id).and_then(|b| b.rack.as_deref());
    let me = broker.config.node_id;
    if rack_of(me) == Some(rack) {
        return None;
    }
    let assignment = partition.assignment();
    assignment
        .replicas
        .iter()
        .copied()
        .filter(|&r| r != me && assignment.isr.contains(&r))
        .find(|&r| rack_of(r) == Some(rack) && is_active(&image, r))
}
