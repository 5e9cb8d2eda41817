//! The transaction state machine of one transactional id, as Kafka's coordinator runs it: the
//! persisted [`TxnValue`], and the pure transitions of InitProducerId, AddPartitionsToTxn /
//! AddOffsetsToTxn, EndTxn, the coordinator's own abort of a timed-out transaction, and the
//! completion after the markers are written. A transition only computes the next value; it is
//! applied once its record is in `__transaction_state` (see [`super::Transactions`]).
//!
//! Transaction version 2 (KIP-890 part 2, a client's EndTxn v5 and the partitions its Produce
//! v12 / TxnOffsetCommit v5 add) bumps the producer epoch at every EndTxn; the markers carry
//! the bumped epoch, so a late batch of the ended transaction is fenced at the partition. An
//! exhausted epoch moves the id to the next producer id (epoch 0) once the markers are
//! written. A retried EndTxn is recognised by its epoch being one below the stored one.

use kafka_protocol::error::ResponseError as E;
use std::collections::BTreeMap;

/// Kafka's transaction states (the byte stored in `TransactionStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i8)]
pub enum TxnState {
    /// No transaction in progress.
    Empty = 0,
    /// Partitions have been added; records may be written.
    Ongoing = 1,
    /// Commit decided; markers being written.
    PrepareCommit = 2,
    /// Abort decided; markers being written.
    PrepareAbort = 3,
    /// Commit markers written.
    CompleteCommit = 4,
    /// Abort markers written.
    CompleteAbort = 5,
    /// Expired transactional id (never persisted as a value: a tombstone is written).
    Dead = 6,
    /// The producer is being fenced before its ongoing transaction is aborted.
    PrepareEpochFence = 7,
}

impl TxnState {
    /// The state of a stored byte.
    pub fn from_i8(v: i8) -> Option<TxnState> {
        use TxnState::*;
        Some(match v {
            0 => Empty,
            1 => Ongoing,
            2 => PrepareCommit,
            3 => PrepareAbort,
            4 => CompleteCommit,
            5 => CompleteAbort,
            6 => Dead,
            7 => PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name (DescribeTransactions, ListTransactions filters, `kafka-transactions.sh`).
    pub fn name(self) -> &'static str {
        use TxnState::*;
        match self {
            Empty => "Empty",
            Ongoing => "Ongoing",
            PrepareCommit => "PrepareCommit",
            PrepareAbort => "PrepareAbort",
            CompleteCommit => "CompleteCommit",
            CompleteAbort => "CompleteAbort",
            Dead => "Dead",
            PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// A commit or abort whose markers are still to be written.
    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }

    /// No transaction open or ending: the id may expire.
    pub fn is_idle(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

/// One transactional id's persisted state (TransactionLogValue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnValue {
    /// Producer id.
    pub producer_id: i64,
    /// Producer id of the last committed transaction (v1 tag 0; -1).
    pub prev_producer_id: i64,
    /// Producer id handed out next (v1 tag 1; -1).
    pub next_producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` of the producer.
    pub timeout_ms: i32,
    /// State.
    pub state: TxnState,
    /// Partitions in the transaction, by topic (sorted ids).
    pub partitions: BTreeMap<String, Vec<i32>>,
    /// Last update.
    pub update_ts: i64,
    /// When the transaction started (-1 when none).
    pub start_ts: i64,
    /// Transaction version of the client (v1 tag 2; 0).
    pub client_version: i16,
}

impl TxnValue {
    /// A new id's state before its first epoch bump.
    pub fn new(producer_id: i64, timeout_ms: i32, now: i64) -> TxnValue {
        TxnValue {
            producer_id,
            prev_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeMap::new(),
            update_ts: now,
            start_ts: -1,
            client_version: 0,
        }
    }

    /// Whether `topic`-`p` is in the transaction.
    pub fn contains(&self, topic: &str, p: i32) -> bool {
        self.partitions.get(topic).is_some_and(|v| v.contains(&p))
    }

    /// The partitions as (topic, partition) pairs.
    pub fn partition_list(&self) -> Vec<(String, i32)> {
        self.partitions
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |&p| (t.clone(), p)))
            .collect()
    }
}

/// Transitions fail with a Kafka error code.
pub type Step<T> = Result<T, E>;

/// The epoch at which a producer id is exhausted and a new id is needed.
const EPOCH_EXHAUSTED: i16 = i16::MAX - 1;

/// Transaction version 2: the epoch is bumped at every EndTxn.
pub const TV2: i16 = 2;

/// Whether an EndTxn of transaction version 2 on `cur` needs the next producer id.
pub fn end_needs_new_id(cur: &TxnValue) -> bool {
    cur.producer_epoch >= EPOCH_EXHAUSTED
}

/// The producer id and epoch a client continues with after `v` (EndTxn v5's answer): the next
/// producer id at epoch 0 when the epoch overflowed, else the value's own.
pub fn client_ids(v: &TxnValue) -> (i64, i16) {
    match v.next_producer_id >= 0 {
        true => (v.next_producer_id, 0),
        false => (v.producer_id, v.producer_epoch),
    }
}

/// Whether InitProducerId needs a fresh producer id: a new transactional id, or an exhausted
/// epoch.
pub fn needs_new_id(cur: Option<&TxnValue>) -> bool {
    cur.is_none_or(|v| v.producer_epoch >= EPOCH_EXHAUSTED)
}

/// What InitProducerId does to an existing id.
#[derive(Debug, PartialEq, Eq)]
pub enum InitStep {
    /// Write this value (an epoch bump, or a new producer id), then answer with it.
    Write(TxnValue),
    /// A retry of an InitProducerId already done: answer with the current id and epoch.
    Current,
    /// An open transaction must be aborted first (the producer is fenced): write this
    /// PrepareAbort and answer CONCURRENT_TRANSACTIONS; the client retries.
    FenceAndAbort(TxnValue),
}

/// InitProducerId on an existing id (`expected` = KIP-360's producer id and epoch, if sent).
/// `new_id` is a fresh producer id, used when the epoch is exhausted.
pub fn init(
    cur: &TxnValue,
    last_epoch: i16,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    new_id: i64,
    now: i64,
) -> Step<InitStep> {
    use TxnState::*;
    match cur.state {
        PrepareAbort | PrepareCommit | PrepareEpochFence => Err(E::ConcurrentTransactions),
        Dead => Err(E::ConcurrentTransactions),
        Ongoing => Ok(InitStep::FenceAndAbort(abort_fenced(cur, now))),
        Empty | CompleteCommit | CompleteAbort => {
            if let Some((pid, epoch)) = expected {
                if pid != cur.producer_id {
                    return Err(E::ProducerFenced);
                }
                if epoch != -1 && epoch != cur.producer_epoch {
                    return match epoch == last_epoch {
                        true => Ok(InitStep::Current),
                        false => Err(E::ProducerFenced),
                    };
                }
            }
            let mut next = cur.clone();
            if cur.producer_epoch >= EPOCH_EXHAUSTED {
                next.producer_id = new_id;
                next.producer_epoch = 0;
            } else {
                next.producer_epoch = cur.producer_epoch + 1;
            }
            next.state = Empty;
            next.partitions.clear();
            next.timeout_ms = timeout_ms;
            next.start_ts = -1;
            next.update_ts = now;
            Ok(InitStep::Write(next))
        }
    }
}

/// The PrepareAbort that fences the producer of an ongoing transaction (epoch + 1), as the
/// coordinator writes for a timed-out transaction or a new InitProducerId.
pub fn abort_fenced(cur: &TxnValue, now: i64) -> TxnValue {
    let mut next = cur.clone();
    if cur.producer_epoch < EPOCH_EXHAUSTED {
        next.producer_epoch = cur.producer_epoch + 1;
    }
    next.state = TxnState::PrepareAbort;
    next.next_producer_id = -1;
    // A fence is not a client's epoch bump: no retry of the old epoch is recognised after it.
    next.client_version = 0;
    next.update_ts = now;
    next
}

/// The producer of a request is the id's current one.
fn check_producer(cur: &TxnValue, producer_id: i64, epoch: i16) -> Step<()> {
    if producer_id != cur.producer_id {
        return Err(E::InvalidProducerIdMapping);
    }
    if epoch != cur.producer_epoch {
        return Err(E::ProducerFenced);
    }
    Ok(())
}

/// AddPartitionsToTxn / AddOffsetsToTxn, or a partition added for a client of transaction
/// version `client_version` 2 by its Produce / TxnOffsetCommit: `None` when every partition is
/// already in the ongoing transaction (nothing to write).
pub fn add_partitions(
    cur: &TxnValue,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
    client_version: i16,
    now: i64,
) -> Step<Option<TxnValue>> {
    use TxnState::*;
    // The next transaction of a client whose last EndTxn overflowed its epoch starts with the
    // next producer id before the markers are written: it waits, it is not fenced.
    if cur.state.is_prepare() && (producer_id, epoch) == (cur.next_producer_id, 0) {
        return Err(E::ConcurrentTransactions);
    }
    check_producer(cur, producer_id, epoch)?;
    match cur.state {
        PrepareCommit | PrepareAbort | PrepareEpochFence => Err(E::ConcurrentTransactions),
        Dead => Err(E::InvalidTxnState),
        Ongoing if partitions.iter().all(|(t, p)| cur.contains(t, *p)) => Ok(None),
        Empty | CompleteCommit | CompleteAbort | Ongoing => {
            let mut next = cur.clone();
            if cur.state != Ongoing {
                next.partitions.clear();
                next.start_ts = now;
            }
            for (t, p) in partitions {
                let ids = next.partitions.entry(t.clone()).or_default();
                if !ids.contains(p) {
                    ids.push(*p);
                    ids.sort_unstable();
                }
            }
            next.state = Ongoing;
            next.client_version = client_version;
            next.update_ts = now;
            Ok(Some(next))
        }
    }
}

/// What EndTxn does.
#[derive(Debug, PartialEq, Eq)]
pub enum EndStep {
    /// Write this PrepareCommit/PrepareAbort, answer, then write the markers.
    Prepare(TxnValue),
    /// A retry of an EndTxn already complete: answer success.
    AlreadyDone,
}

/// EndTxn from the client; `tv2` for EndTxn v5+ (transaction version 2), whose prepare bumps
/// the epoch and, when it is exhausted, names `new_id` as the next producer id.
pub fn end(
    cur: &TxnValue,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    tv2: bool,
    new_id: i64,
    now: i64,
) -> Step<EndStep> {
    use TxnState::*;
    match cur.client_version >= TV2 {
        true => check_end_v2(cur, producer_id, epoch)?,
        false => check_producer(cur, producer_id, epoch)?,
    }
    match (cur.state, commit) {
        (Ongoing, _) => {
            let mut next = cur.clone();
            next.state = if commit { PrepareCommit } else { PrepareAbort };
            next.client_version = 0;
            next.next_producer_id = -1;
            if tv2 {
                next.client_version = TV2;
                next.producer_epoch = cur.producer_epoch.saturating_add(1);
                if end_needs_new_id(cur) {
                    next.next_producer_id = new_id;
                }
            }
            next.update_ts = now;
            Ok(EndStep::Prepare(next))
        }
        (CompleteCommit, true) | (CompleteAbort, false) => Ok(EndStep::AlreadyDone),
        (PrepareCommit, true) | (PrepareAbort, false) => Err(E::ConcurrentTransactions),
        (PrepareEpochFence, _) => Err(E::ConcurrentTransactions),
        _ => Err(E::InvalidTxnState),
    }
}

/// Kafka's epoch rule for an EndTxn on a transaction of version 2: the stored epoch while the
/// transaction is open; one above the request's for a retry of an end already prepared or
/// completed (or, after an overflow, the previous producer id at the exhausted epoch).
fn check_end_v2(cur: &TxnValue, producer_id: i64, epoch: i16) -> Step<()> {
    use TxnState::*;
    let retry_on_overflow =
        cur.prev_producer_id == producer_id && epoch == EPOCH_EXHAUSTED && cur.producer_epoch == 0;
    let retry_on_bump = i32::from(cur.producer_epoch) == i32::from(epoch) + 1;
    if cur.producer_id != producer_id && !retry_on_overflow {
        return Err(E::InvalidProducerIdMapping);
    }
    let valid = match cur.state {
        Ongoing | Empty | Dead | PrepareEpochFence => epoch == cur.producer_epoch,
        PrepareCommit | PrepareAbort => retry_on_bump,
        CompleteCommit | CompleteAbort => retry_on_bump || retry_on_overflow,
    };
    match valid {
        true => Ok(()),
        false => Err(E::ProducerFenced),
    }
}

/// The Complete* value once every marker of a Prepare* value is written; under transaction
/// version 2 an overflowed id moves to the next producer id at epoch 0.
pub fn complete(prepared: &TxnValue, now: i64) -> TxnValue {
    let mut next = prepared.clone();
    next.state = match prepared.state {
        TxnState::PrepareCommit => TxnState::CompleteCommit,
        _ => TxnState::CompleteAbort,
    };
    if prepared.client_version >= TV2 {
        next.prev_producer_id = prepared.producer_id;
        if prepared.next_producer_id >= 0 {
            next.producer_id = prepared.next_producer_id;
            next.producer_epoch = 0;
            next.next_producer_id = -1;
        }
    }
    next.partitions.clear();
    next.update_ts = now;
    next
}

#[cfg(test)]
#[path = "state_test.rs"]
mod tests;
