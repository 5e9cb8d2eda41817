//! The partition side of Kafka transactions: which transactions are open or not yet replicated
//! ([`TxnTracker`]), hence the first unstable and last stable offsets, and the aborted
//! transactions Fetch needs ([`Log::collect_aborted_txns`], from the segments' `.txnindex`).
//!
//! The tracker mirrors Kafka's ProducerStateManager `ongoingTxns` and `unreplicatedTxns`. The
//! producer state (`producer_state.rs`) updates it as batches are applied, so it follows the
//! append path, replays at load and after truncation, and snapshot loads. It sits behind its own
//! small mutex, shared between the producer state (under the append lock) and the [`Log`], so
//! readers computing the LSO never wait for an append's file write. A completed transaction stays
//! unstable until the high watermark passes its marker; those entries are pruned lazily, each
//! time the first unstable offset is computed against the current high watermark.
//!
//! It also holds the KIP-890 verifications in flight ([`VerificationGuard`], Kafka's guard of
//! the same name): a producer's first batch of a transaction is checked with the coordinator
//! before the append, and a marker of that producer appended in between voids the check, so the
//! late batch of a transaction that just ended cannot open one nobody will end.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use shale_protocol::record::{control_record, ControlRecord};
use shale_protocol::record_batch::{BatchHeader, RecordBatch};

use crate::error::Result;
use crate::log::Log;
use crate::txn_index::AbortedTxn;

/// A transaction ended by a marker, as the producer state reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub(crate) producer_id: i64,
    /// First offset of the transaction.
    pub(crate) first_offset: i64,
    /// Offset of the marker.
    pub(crate) last_offset: i64,
    pub(crate) aborted: bool,
    /// First offset of the earliest transaction still open after this one ended, else the
    /// marker offset + 1 (the `.txnindex` entry's last stable offset).
    pub(crate) last_stable_offset: i64,
}

impl CompletedTxn {
    /// The `.txnindex` entry of an aborted transaction.
    pub(crate) fn aborted_txn(&self) -> AbortedTxn {
        AbortedTxn {
            producer_id: self.producer_id,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            last_stable_offset: self.last_stable_offset,
        }
    }
}

/// Open transactions and completed ones whose marker is not yet below the high watermark, both
/// keyed by the transaction's first offset.
#[derive(Debug, Default)]
pub(crate) struct TxnTracker {
    /// First offset → producer id and the epoch that opened the transaction.
    ongoing: BTreeMap<i64, (i64, i16)>,
    /// First offset → marker offset.
    unreplicated: BTreeMap<i64, i64>,
    /// Producer id → tokens of its verifications in flight (one per request being verified:
    /// bounded by the requests in flight, each removed when its guard drops).
    verifying: HashMap<i64, Vec<u64>>,
    next_token: u64,
}

impl TxnTracker {
    /// A transaction of `producer_id` at `epoch` starts at `first_offset`.
    pub(crate) fn begin(&mut self, producer_id: i64, epoch: i16, first_offset: i64) {
        self.ongoing.insert(first_offset, (producer_id, epoch));
    }

    /// The transaction that started at `first_offset` ended with the marker at `marker_offset`.
    pub(crate) fn complete(&mut self, first_offset: i64, marker_offset: i64) {
        self.ongoing.remove(&first_offset);
        self.unreplicated.insert(first_offset, marker_offset);
    }

    /// Whether `producer_id` has a transaction open that `epoch` opened.
    pub(crate) fn is_open(&self, producer_id: i64, epoch: i16) -> bool {
        self.ongoing.values().any(|&p| p == (producer_id, epoch))
    }

    /// A verification of `producer_id`'s next batch starts; its token.
    fn start_verification(&mut self, producer_id: i64) -> u64 {
        self.next_token += 1;
        let token = self.next_token;
        self.verifying.entry(producer_id).or_default().push(token);
        token
    }

    fn end_verification(&mut self, producer_id: i64, token: u64) {
        if let Some(tokens) = self.verifying.get_mut(&producer_id) {
            tokens.retain(|&t| t != token);
            if tokens.is_empty() {
                self.verifying.remove(&producer_id);
            }
        }
    }

    /// A marker of `producer_id` was appended: its verifications in flight no longer hold.
    pub(crate) fn void_verifications(&mut self, producer_id: i64) {
        self.verifying.remove(&producer_id);
    }

    /// Whether the verification `token` of `producer_id` still holds.
    pub(crate) fn is_verified(&self, producer_id: i64, token: u64) -> bool {
        self.verifying
            .get(&producer_id)
            .is_some_and(|t| t.contains(&token))
    }

    /// First offset of the earliest open transaction.
    pub(crate) fn first_ongoing(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Earliest first offset of an open transaction or of a completed one whose marker is at or
    /// above `high_watermark` (completed ones below it are dropped on the way).
    pub(crate) fn first_unstable(&mut self, high_watermark: i64) -> Option<i64> {
        self.unreplicated
            .retain(|_, marker| *marker >= high_watermark);
        let unreplicated = self.unreplicated.keys().next().copied();
        match (self.first_ongoing(), unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Starts over with exactly the open transactions `(producer id, epoch, first offset)` (a
    /// snapshot load); nothing is unreplicated.
    pub(crate) fn reset_to(&mut self, ongoing: impl IntoIterator<Item = (i64, i16, i64)>) {
        self.unreplicated.clear();
        self.ongoing = ongoing
            .into_iter()
            .map(|(pid, epoch, first)| (first, (pid, epoch)))
            .collect();
    }

    /// Open transactions as `(producer id, first offset)`, by first offset.
    #[cfg(test)]
    pub(crate) fn ongoing(&self) -> Vec<(i64, i64)> {
        self.ongoing.iter().map(|(f, (p, _))| (*p, *f)).collect()
    }
}

/// A KIP-890 verification in flight for one producer's batch on one partition: taken before the
/// coordinator is asked, handed to the append (`AppendOrigin::Client::verification`), and
/// released when dropped. A marker of the producer appended meanwhile voids it, and the append
/// of a batch that would open a transaction is then refused with INVALID_TXN_STATE.
#[derive(Debug)]
pub struct VerificationGuard {
    txns: Arc<Mutex<TxnTracker>>,
    producer_id: i64,
    token: u64,
}

impl VerificationGuard {
    /// The token the append checks.
    pub fn token(&self) -> u64 {
        self.token
    }
}

impl Drop for VerificationGuard {
    fn drop(&mut self) {
        self.txns
            .lock()
            .end_verification(self.producer_id, self.token);
    }
}

/// The ABORT/COMMIT marker a control batch carries (`None` for data batches, KRaft control
/// batches, emptied or unreadable ones).
pub(crate) fn end_txn_marker_of(batch: &RecordBatch) -> Option<ControlRecord> {
    if !batch.is_control() {
        return None;
    }
    control_record(batch)
        .ok()
        .flatten()
        .filter(ControlRecord::is_end_txn_marker)
}

/// [`end_txn_marker_of`] for a patched header and its body (the append path).
pub(crate) fn end_txn_marker_in(header: &BatchHeader, body: &[u8]) -> Option<ControlRecord> {
    if !header.is_control() {
        return None;
    }
    RecordBatch::from_parts(header, body)
        .ok()
        .and_then(|b| end_txn_marker_of(&b))
}

impl Log {
    /// Kafka's first unstable offset: the first offset of the earliest transaction that is
    /// open, or completed but with its marker not yet below the high watermark (never below the
    /// log start offset). `None` when every transaction is decided and replicated. Does not take
    /// the append lock.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let hw = self.high_watermark();
        let first = self.txns.lock().first_unstable(hw)?;
        Some(first.max(self.log_start_offset()))
    }

    /// Starts a KIP-890 verification of `producer_id`'s next transactional batch (see
    /// [`VerificationGuard`]); take it before asking the coordinator. Does not take the append
    /// lock.
    pub fn start_verification(&self, producer_id: i64) -> VerificationGuard {
        let token = self.txns.lock().start_verification(producer_id);
        VerificationGuard {
            txns: self.txns.clone(),
            producer_id,
            token,
        }
    }

    /// Whether `producer_id` has a transaction open in this log that `epoch` opened (KIP-890:
    /// only a producer's first batch of a transaction is verified or added; under transaction
    /// version 2 a batch of the next epoch starts the next transaction, as Kafka's
    /// `hasOngoingTransaction(producerId, producerEpoch)`). Does not take the append lock.
    pub fn has_open_txn(&self, producer_id: i64, epoch: i16) -> bool {
        self.txns.lock().is_open(producer_id, epoch)
    }

    /// The last stable offset: `min(first unstable offset, high watermark)` (Fetch at
    /// READ_COMMITTED, ListOffsets, tiering and the cleaner stop there). Does not take the
    /// append lock.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        self.first_unstable_offset().map_or(hw, |f| f.min(hw))
    }

    /// Kafka's `collectAbortedTransactions`: the aborted transactions with `last_offset >=
    /// start_offset` and `first_offset < upper_bound_offset`, walking the segments from the one
    /// holding `start_offset` and stopping after the first segment holding an entry whose last
    /// stable offset is >= `upper_bound_offset` (no later entry can matter). Reads the cached
    /// `.txnindex` entries; does not take the append lock.
    pub fn collect_aborted_txns(
        &self,
        start_offset: i64,
        upper_bound_offset: i64,
    ) -> Result<Vec<AbortedTxn>> {
        let segs = self.segments_snapshot();
        let from = segs
            .partition_point(|s| s.base_offset <= start_offset)
            .saturating_sub(1);
        let mut out = Vec::new();
        for seg in segs.iter().skip(from) {
            if seg.collect_aborted_txns(start_offset, upper_bound_offset, &mut out) {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_first_unstable_follows_the_high_watermark() {
        let mut t = TxnTracker::default();
        assert_eq!(t.first_unstable(0), None);
        t.begin(1, 0, 5);
        t.begin(2, 0, 7);
        assert!(t.is_open(1, 0) && !t.is_open(1, 1));
        assert_eq!(t.first_unstable(0), Some(5));
        t.complete(5, 9);
        assert_eq!(t.first_ongoing(), Some(7));
        // Completed but its marker (9) is not below the high watermark: still unstable.
        assert_eq!(t.first_unstable(9), Some(5));
        assert_eq!(t.first_unstable(10), Some(7));
        t.complete(7, 11);
        assert_eq!(t.first_unstable(10), Some(7));
        assert_eq!(t.first_unstable(12), None);
        t.reset_to([(3, 0, 20)]);
        assert_eq!(t.ongoing(), vec![(3, 20)]);
        assert_eq!(t.first_unstable(100), Some(20));
    }
}
