//! The second phase of a transaction: COMMIT or ABORT markers to every partition in it, then
//! the CompleteCommit/CompleteAbort record.
//!
//! Markers go to each partition's leader: appended here when this broker leads it
//! ([`write_local`], which WriteTxnMarkers uses too), otherwise in one WriteTxnMarkers request per
//! leader. A partition that refuses (leadership moving, not enough replicas) is retried with a
//! short backoff until its marker is in its ISR; a deleted topic's partition is dropped, as
//! Kafka's marker channel does. The loop ends early when this broker stops coordinating the
//! transaction: the next coordinator replays the Prepare* record and writes the markers again
//! (a marker written twice is harmless: the second finds no open transaction).

use super::state::{self, TxnValue};
use super::Ticket;
use crate::api::acks::{wait_for_isr, Pending};
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use shale_common::TopicPartition;
use shale_local_log::AppendOrigin;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a marker waits for its ISR before the partition is retried (a remote leader
/// answers WriteTxnMarkers once its ISR has the marker).
pub(crate) const MARKER_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before partitions that refused are tried again.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// One transaction's markers: who, which epoch, which outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Coordinator epoch (fences markers of an older coordinator).
    pub coordinator_epoch: i32,
    /// COMMIT (true) or ABORT.
    pub commit: bool,
}

/// Appends `marker` to `tp`, which this broker must lead, and returns the wait for its ISR.
/// A marker to a `__consumer_offsets` partition also completes the producer's transactional
/// offset commits there.
pub fn write_local(broker: &Broker, tp: &TopicPartition, marker: Marker) -> Result<Pending, E> {
    let part = broker
        .replicas()
        .get_leader(tp)
        .map_err(|e| crate::errors::replica_error(&e))?;
    let batch = shale_protocol::record::end_txn_marker(
        marker.producer_id,
        marker.producer_epoch,
        marker.coordinator_epoch,
        marker.commit,
        broker.clock.now_ms(),
    );
    let origin = AppendOrigin::Coordinator {
        leader_epoch: part.leader_epoch(),
    };
    let info = crate::api::storage_io(|| part.log.append(batch.into_bytes(), origin))
        .map_err(|e| crate::errors::log_error(&e))?;
    part.publish_progress();
    if &*tp.topic == crate::group::OFFSETS_TOPIC {
        broker
            .groups
            .with(|g| g.complete_txn_offsets(marker.producer_id, tp.partition, marker.commit));
    }
    Ok(Pending::new(part, info.last_offset + 1))
}

/// Aborts the process at crash point `name` when the `shale.debug.crash.file` names it and
/// this process is the first to remove the file: crash tests get one real crash at an exact
/// step of a commit, wherever it runs.
pub fn crash_point(broker: &Broker, name: &str) {
    let Some(file) = &broker.config.crash_file else {
        return;
    };
    let won = shale_common::blocking::io(|| {
        let named = std::fs::read_to_string(file).is_ok_and(|s| s.trim() == name);
        named && std::fs::remove_file(file).is_ok()
    });
    if won {
        tracing::error!(
            point = name,
            "shale.debug.crash.file: crash point reached, aborting"
        );
        std::process::abort();
    }
}

/// Who completes a transaction: the coordinator that ended it (crash points apply), or one
/// that found it prepared in the log (they do not, so a crash test's next coordinator finishes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Right after EndTxn, a fence or a timeout on this broker.
    Ended,
    /// Resumed after loading `__transaction_state`.
    Resumed,
}

/// Writes the markers of `prepared` (a PrepareCommit/PrepareAbort of `id`, written under
/// `coordinator_epoch`) and then its Complete* record. Runs until done or until this broker no
/// longer coordinates `id` under that epoch.
pub async fn complete(
    broker: Arc<Broker>,
    id: String,
    prepared: TxnValue,
    coordinator_epoch: i32,
    how: Completion,
) {
    let marker = Marker {
        producer_id: prepared.producer_id,
        producer_epoch: prepared.producer_epoch,
        coordinator_epoch,
        commit: prepared.state == state::TxnState::PrepareCommit,
    };
    let mut remaining = prepared.partition_list();
    while !remaining.is_empty() {
        if !still_coordinating(&broker, &id, coordinator_epoch) {
            tracing::info!(%id, "coordinator moved; the next one completes the transaction");
            return;
        }
        let crash = how == Completion::Ended;
        remaining = write_round(&broker, &remaining, marker, crash).await;
        if !remaining.is_empty() {
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }
    if how == Completion::Ended {
        crash_point(&broker, "txn.markers-written");
    }
    loop {
        let now = broker.clock.now_ms();
        let done = state::complete(&prepared, now);
        let ticket = broker.txns.with(|c| c.begin(&id, Some(done)));
        let ticket: Ticket = match ticket {
            Ok(t) => t,
            Err(E::ConcurrentTransactions) => {
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            }
            Err(_) => return,
        };
        let written = super::store::write(&broker, &ticket).await;
        match broker.txns.with(|c| c.finish(&ticket, written)) {
            Ok(()) => return,
            Err(E::NotCoordinator) => return,
            Err(e) => {
                tracing::warn!(%id, error = ?e, "completing the transaction failed; retrying");
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
        }
    }
}

fn still_coordinating(broker: &Broker, id: &str, coordinator_epoch: i32) -> bool {
    broker
        .txns
        .with(|c| c.locate(id).map(|(_, e)| e == coordinator_epoch))
        .unwrap_or(false)
}

/// One round: every remaining partition's marker to its leader. Returns the partitions to try
/// again.
async fn write_round(
    broker: &Broker,
    partitions: &[(String, i32)],
    marker: Marker,
    crash: bool,
) -> Vec<(String, i32)> {
    let image = broker.image();
    let me = broker.config.node_id;
    let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    let mut retry = Vec::new();
    for (topic, p) in partitions {
        let Some(t) = image.topic(topic) else {
            tracing::info!(topic, "topic deleted; its marker is dropped");
            continue;
        };
        match t.partitions.get(p).map(|x| x.leader) {
            Some(leader) if leader >= 0 => by_leader
                .entry(leader)
                .or_default()
                .push((topic.clone(), *p)),
            Some(_) => retry.push((topic.clone(), *p)),
            None => tracing::info!(topic, partition = p, "partition gone; marker dropped"),
        }
    }
    let groups = by_leader.len();
    for (i, (leader, tps)) in by_leader.into_iter().enumerate() {
        let refused = match leader == me {
            true => write_here(broker, &tps, marker, crash).await,
            false => write_remote(broker, leader, &tps, marker).await,
        };
        retry.extend(refused);
        if crash && i == 0 && groups > 1 {
            crash_point(broker, "txn.between-markers");
        }
    }
    retry
}

/// Markers to partitions led here; returns those that refused.
async fn write_here(
    broker: &Broker,
    tps: &[(String, i32)],
    marker: Marker,
    crash: bool,
) -> Vec<(String, i32)> {
    let mut waits = Vec::new();
    let mut refused = Vec::new();
    for (i, (topic, p)) in tps.iter().enumerate() {
        if crash && i == 1 {
            crash_point(broker, "txn.between-markers");
        }
        match write_local(broker, &TopicPartition::new(topic.as_str(), *p), marker) {
            Ok(w) => waits.push((i, w)),
            Err(e) => {
                tracing::debug!(topic, partition = p, error = ?e, "marker refused");
                refused.push(tps[i].clone());
            }
        }
    }
    for (i, code) in wait_for_isr(waits, MARKER_TIMEOUT).await {
        if code != 0 {
            refused.push(tps[i].clone());
        }
    }
    refused
}

/// Markers to partitions led by broker `leader`, in one WriteTxnMarkers; returns those that
/// refused (all of them when the call failed).
async fn write_remote(
    broker: &Broker,
    leader: i32,
    tps: &[(String, i32)],
    marker: Marker,
) -> Vec<(String, i32)> {
    let image = broker.image();
    let listener = &broker.config.replication.inter_broker_listener;
    let Some(addr) = image
        .brokers
        .get(&leader)
        .filter(|b| !b.fenced)
        .and_then(|b| b.endpoints.iter().find(|e| &e.name == listener))
        .map(|e| (e.host.clone(), e.port))
    else {
        return tps.to_vec();
    };
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in tps {
        topics.entry(t.as_str()).or_default().push(*p);
    }
    let req = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(marker.producer_id))
        .with_producer_epoch(marker.producer_epoch)
        .with_transaction_result(marker.commit)
        .with_coordinator_epoch(marker.coordinator_epoch)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    WritableTxnMarkerTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partition_indexes(ps)
                })
                .collect(),
        )]);
    let resp: anyhow::Result<WriteTxnMarkersResponse> = broker
        .txns
        .marker_peers
        .call(
            &broker.inter_broker_dialer(),
            (&addr.0, addr.1),
            ApiKey::WriteTxnMarkers,
            1,
            &req,
        )
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(leader, error = %e, "WriteTxnMarkers failed");
            return tps.to_vec();
        }
    };
    let mut refused = Vec::new();
    for m in &resp.markers {
        for t in &m.topics {
            for p in &t.partitions {
                let gone = p.error_code == E::UnknownTopicOrPartition.code()
                    && image.topic(t.name.as_str()).is_none();
                if p.error_code != 0 && !gone {
                    refused.push((t.name.to_string(), p.partition_index));
                }
            }
        }
    }
    refused
}
