//! The leader's side of a follower's Fetch (Kafka's `Partition.fetchRecords` for a replica):
//! the divergence check on the follower's last fetched epoch (KIP-320/595 truncation on
//! fetch), then the follower's progress — its fetch offset is its log end offset — which may
//! raise the high watermark and ask the controller to add it back to the ISR.
//!
//! A diverging follower is told where its log and the leader's part ways and gets no records;
//! its progress is not recorded then (Kafka's KAFKA-13141), since its fetch offset is not yet
//! a prefix of the leader's log.

use crate::fetch_session::FetchTarget;
use crate::replica::Partition;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use shale_protocol::fetch_writer::FetchPartitionData;

/// Why a follower's fetch gets no records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its log diverges from the leader's after `end_offset` of `epoch`.
    Diverging {
        /// The largest leader epoch at or below the follower's last fetched epoch.
        epoch: i32,
        /// Where that epoch ends on the leader.
        end_offset: i64,
    },
    /// The leader knows no epoch at or below the follower's.
    OutOfRange,
}

impl Refusal {
    /// Writes the refusal into the partition's answer (its high watermark and log start stay).
    pub(super) fn apply(self, out: &mut FetchPartitionData) {
        match self {
            Refusal::Diverging { epoch, end_offset } => {
                out.diverging_epoch = Some((epoch, end_offset))
            }
            Refusal::OutOfRange => out.error_code = E::OffsetOutOfRange.code(),
        }
    }
}

/// Whether a follower whose last batch is of `last_fetched_epoch` and whose log ends at
/// `fetch_offset` has a log that parts from the leader's (`None`: it is a prefix).
pub(crate) fn divergence(
    partition: &Partition,
    last_fetched_epoch: i32,
    fetch_offset: i64,
) -> Option<Refusal> {
    if last_fetched_epoch < 0 {
        return None;
    }
    match partition.log.end_offset_for_epoch(last_fetched_epoch) {
        None => Some(Refusal::OutOfRange),
        Some((epoch, end_offset)) if epoch < last_fetched_epoch || end_offset < fetch_offset => {
            Some(Refusal::Diverging { epoch, end_offset })
        }
        Some(_) => None,
    }
}

/// Checks a fetch from follower `replica` of `partition` (led here) and records its progress.
pub(super) fn check(
    broker: &Broker,
    partition: &Partition,
    t: &FetchTarget,
    replica: i32,
) -> Option<Refusal> {
    if let Some(refusal) = divergence(partition, t.last_fetched_epoch, t.fetch_offset) {
        return Some(refusal);
    }
    let image = broker.replicas().image();
    let eligible = |r: i32| {
        image
            .brokers
            .get(&r)
            .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
    };
    if let Some(Some(isr)) = partition.record_follower_fetch(replica, t.fetch_offset, eligible) {
        broker.replicas().propose_isr(&partition.tp, isr);
    }
    None
}
