//! WriteTxnMarkers (v1, inter-broker): a transaction coordinator on another broker asks this
//! partition leader to append COMMIT/ABORT markers. Each marker is appended with the
//! coordinator origin (producer-epoch and coordinator-epoch fencing in the log) and answered once
//! it is in the ISR (acks=-1, as Kafka appends markers), per partition.

use crate::api::acks::wait_for_isr;
use crate::state::Broker;
use crate::txn::markers::{write_local, Marker};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use shale_common::TopicPartition;
use std::sync::Arc;
use std::time::Duration;

/// How long markers wait for their ISR.
const ISR_TIMEOUT: Duration = Duration::from_secs(30);

/// Appends every requested marker and answers each partition.
pub async fn handle(broker: &Arc<Broker>, req: &WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let mut resp = WriteTxnMarkersResponse::default();
    // (marker index, topic index, partition index) -> error code
    let mut codes: Vec<Vec<Vec<i16>>> = Vec::new();
    let mut waits = Vec::new();
    for (mi, m) in req.markers.iter().enumerate() {
        let marker = Marker {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            coordinator_epoch: m.coordinator_epoch,
            commit: m.transaction_result,
        };
        let mut topics = Vec::new();
        for (ti, t) in m.topics.iter().enumerate() {
            let mut parts = Vec::new();
            for (pi, &p) in t.partition_indexes.iter().enumerate() {
                let tp = TopicPartition::new(t.name.as_str(), p);
                match write_local(broker, &tp, marker) {
                    Ok(w) => {
                        waits.push(((mi, ti, pi), w));
                        parts.push(0);
                    }
                    Err(e) => {
                        tracing::debug!(partition = %tp, error = ?e, "marker refused");
                        parts.push(e.code());
                    }
                }
            }
            topics.push(parts);
        }
        codes.push(topics);
    }
    for ((mi, ti, pi), code) in wait_for_isr(waits, ISR_TIMEOUT).await {
        codes[mi][ti][pi] = code;
    }
    crate::txn::markers::crash_point(broker, "txn.marker-received");
    for (mi, m) in req.markers.iter().enumerate() {
        let mut r = WritableTxnMarkerResult::default();
        r.producer_id = m.producer_id;
        for (ti, t) in m.topics.iter().enumerate() {
            let mut tr = WritableTxnMarkerTopicResult::default();
            tr.name = t.name.clone();
            tr.partitions = t
                .partition_indexes
                .iter()
                .enumerate()
                .map(|(pi, &p)| {
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(p)
                        .with_error_code(codes[mi][ti][pi])
                })
                .collect();
            r.topics.push(tr);
        }
        resp.markers.push(r);
    }
    resp
}
