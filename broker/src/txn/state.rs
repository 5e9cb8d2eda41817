//! The transaction state machine of one transactional id, as Kafka's coordinator runs it
//! (transaction version 0/1): the persisted [`TxnValue`], and the pure transitions of
//! InitProducerId, AddPartitionsToTxn/AddOffsetsToTxn, EndTxn, the coordinator's own abort of a
//! timed-out transaction, and the completion after the markers are written. A transition only
//! computes the next value; it is applied once its record is in `__transaction_state` (see
//! [`super::Transactions`]).

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

/// AddPartitionsToTxn / AddOffsetsToTxn: `None` when every partition is already in the ongoing
/// transaction (nothing to write).
pub fn add_partitions(
    cur: &TxnValue,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
    now: i64,
) -> Step<Option<TxnValue>> {
    use TxnState::*;
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

/// EndTxn from the client.
pub fn end(cur: &TxnValue, producer_id: i64, epoch: i16, commit: bool, now: i64) -> Step<EndStep> {
    use TxnState::*;
    check_producer(cur, producer_id, epoch)?;
    match (cur.state, commit) {
        (Ongoing, _) => {
            let mut next = cur.clone();
            next.state = if commit { PrepareCommit } else { PrepareAbort };
            next.update_ts = now;
            Ok(EndStep::Prepare(next))
        }
        (CompleteCommit, true) | (CompleteAbort, false) => Ok(EndStep::AlreadyDone),
        (PrepareCommit, true) | (PrepareAbort, false) => Err(E::ConcurrentTransactions),
        (PrepareEpochFence, _) => Err(E::ConcurrentTransactions),
        _ => Err(E::InvalidTxnState),
    }
}

/// The Complete* value once every marker of a Prepare* value is written.
pub fn complete(prepared: &TxnValue, now: i64) -> TxnValue {
    let mut next = prepared.clone();
    next.state = match prepared.state {
        TxnState::PrepareCommit => TxnState::CompleteCommit,
        _ => TxnState::CompleteAbort,
    };
    next.partitions.clear();
    next.update_ts = now;
    next
}

#[cfg(test)]
#[path = "state_test.rs"]
mod tests;
