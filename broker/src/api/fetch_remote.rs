//! The remote half of Fetch: partitions whose fetch offset lies in `[log start, local log start)`.
//!
//! Unlike Kafka (one remote partition per Fetch, a hard 500 ms cliff), every remote partition of
//! a request is read concurrently, the request's `max_bytes` holds across them (in request order;
//! the first data is always kept), and a read still running at `remote.fetch.max.wait.ms` is left
//! to finish in the background: its blocks land in the cache, so the client's next Fetch is a hit.
//! A read never holds the connection's other partitions: local data is already in hand.

use crate::errors::remote_read_error_code;
use crate::state::Broker;
use crate::tiering::RemoteReadError;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::FetchRequest;
use shale_protocol::fetch_writer::FetchPartitionData;
use shale_rlmm::TopicIdPartition;
use std::sync::Arc;
use tracing::Instrument;

use crate::fetch_session::FetchTarget;

/// A partition to read from the remote tier.
#[derive(Debug)]
pub(super) struct RemotePending {
    /// Its position in the response.
    pub index: usize,
    /// Its id.
    pub tp: TopicIdPartition,
    /// Where to read.
    pub offset: i64,
    /// Its byte limit.
    pub max_bytes: usize,
}

/// Reads every pending partition concurrently and fills `results` in request order.
pub(super) async fn fill(
    broker: &Arc<Broker>,
    req: &FetchRequest,
    results: &mut [(FetchTarget, FetchPartitionData)],
    pending: Vec<RemotePending>,
) {
    let Some(tiering) = broker.tiering().cloned() else {
        for p in pending {
            results[p.index].1.error_code = E::OffsetOutOfRange.code();
        }
        return;
    };
    let request_max = if req.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        req.max_bytes as usize
    };
    let local: usize = results.iter().map(|(_, p)| records_len(p)).sum();
    let mut remaining = request_max.saturating_sub(local);
    let mut any = local > 0;
    let deadline = tokio::time::Instant::now() + tiering.settings.fetch_max_wait;
    let reads: Vec<_> = pending
        .iter()
        .map(|p| {
            let (t, tp, offset, max) = (
                tiering.clone(),
                p.tp.clone(),
                p.offset,
                p.max_bytes.min(request_max),
            );
            // In the request's span: the read's remote GETs are its children.
            let read = async move { t.read(&tp, offset, max, true).await };
            tokio::spawn(read.in_current_span())
        })
        .collect();
    for (p, read) in pending.iter().zip(reads) {
        let out = &mut results[p.index].1;
        match tokio::time::timeout_at(deadline, read).await {
            Err(_) => tiering.note_expired(), // detached: it completes and warms the cache
            Ok(Err(join)) => {
                tracing::error!(partition = %p.tp, error = %join, "remote read task failed");
                out.error_code = E::KafkaStorageError.code();
            }
            Ok(Ok(Ok(chunks))) => {
                let n: usize = chunks.iter().map(|c| c.len()).sum();
                if n > 0 && (n <= remaining || !any) {
                    if req.isolation_level == 1 {
                        match aborted(broker, &tiering, p, &chunks).await {
                            Ok(list) => out.aborted_transactions = Some(list),
                            Err(code) => {
                                out.error_code = code;
                                continue;
                            }
                        }
                    }
                    out.records = chunks;
                    remaining = remaining.saturating_sub(n);
                    any = true;
                }
            }
            Ok(Ok(Err(e))) => {
                match &e {
                    RemoteReadError::NotFound(_) | RemoteReadError::Throttled => {
                        tracing::debug!(partition = %p.tp, offset = p.offset, error = %e, "remote read answered without data")
                    }
                    RemoteReadError::Storage(_) => {
                        tracing::warn!(partition = %p.tp, offset = p.offset, error = %e, "remote read failed")
                    }
                }
                if let Some(code) = remote_read_error_code(&e) {
                    out.error_code = code;
                }
            }
        }
    }
}

/// The aborted transactions among remote records a read_committed consumer gets: from the
/// remote segments' transaction indexes, and the local log's for a transaction whose ABORT
/// marker landed after the tiered range.
async fn aborted(
    broker: &Broker,
    tiering: &crate::tiering::Tiering,
    p: &RemotePending,
    chunks: &[bytes::Bytes],
) -> Result<Vec<(i64, i64)>, i16> {
    let upper = chunks
        .iter()
        .flat_map(|c| shale_protocol::record_batch::batches(c.clone()).map_while(Result::ok))
        .last()
        .map_or(p.offset, |b| b.next_offset());
    let mut found = tiering
        .aborted_transactions(&p.tp, p.offset, upper)
        .await
        .map_err(|e| {
            tracing::warn!(partition = %p.tp, error = %e, "remote transaction index unreadable");
            remote_read_error_code(&e).unwrap_or(E::KafkaStorageError.code())
        })?;
    let tp = shale_common::TopicPartition::new(&*p.tp.topic, p.tp.partition);
    if let Some(part) = broker.replicas().get(&tp) {
        let local = crate::api::storage_io(|| part.log.collect_aborted_txns(p.offset, upper));
        found.extend(local.unwrap_or_default());
    }
    found.sort_by_key(|a| (a.first_offset, a.producer_id));
    found.dedup();
    Ok(found
        .into_iter()
        .map(|a| (a.producer_id, a.first_offset))
        .collect())
}

fn records_len(p: &FetchPartitionData) -> usize {
    p.records.iter().map(|b| b.len()).sum()
}
