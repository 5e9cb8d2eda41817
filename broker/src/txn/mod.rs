//! The transaction coordinator: transactional ids, their producer ids and epochs, and the
//! two-phase end of a transaction, persisted in `__transaction_state`.
//!
//! * [`state`] holds the per-id state machine (pure transitions), [`records`] Kafka's record
//!   layout.
//! * [`Transactions`] is the deterministic core: the ids of the `__transaction_state`
//!   partitions this broker leads (with the coordinator epoch of each), and one in-flight write
//!   per id at most ([`Transactions::begin`] / [`Transactions::finish`]): a second operation on
//!   the same id meanwhile gets CONCURRENT_TRANSACTIONS, as in Kafka.
//! * [`store`] appends the records and loads partitions on leadership changes; [`markers`]
//!   writes the COMMIT/ABORT markers to the partitions' leaders and completes the transaction;
//!   [`timers`] aborts timed-out transactions and expires idle ids.

pub mod markers;
pub mod records;
pub mod state;
pub mod store;
pub mod timers;

use crate::replica::peer_pool::PeerPool;
use kafka_protocol::error::ResponseError as E;
use parking_lot::Mutex;
use state::TxnValue;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

/// The name of the transaction state topic.
pub const TXN_TOPIC: &str = "__transaction_state";

/// The coordinator's configuration (`transaction.*`, `transactional.id.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions`.
    pub partitions: i32,
    /// `transaction.state.log.replication.factor` (one on a single node).
    pub replication_factor: i16,
    /// `transaction.state.log.min.isr`.
    pub min_isr: i32,
    /// `transaction.state.log.segment.bytes`.
    pub segment_bytes: i64,
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: i64,
    /// How long a write to `__transaction_state` waits for the ISR (`request.timeout.ms`).
    pub write_timeout_ms: i64,
    /// `transaction.partition.verification.enable` (KIP-890 part 1).
    pub verify_partitions: bool,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            partitions: 50,
            replication_factor: 3,
            min_isr: 2,
            segment_bytes: 104_857_600,
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
            abort_interval_ms: 10_000,
            remove_expired_interval_ms: 3_600_000,
            write_timeout_ms: 30_000,
            verify_partitions: true,
        }
    }
}

/// One transactional id as the coordinator holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The state last written.
    pub value: TxnValue,
    /// The epoch before the last bump (KIP-360 retries), -1 if none.
    pub last_epoch: i16,
    /// A write for this id is in flight.
    pub pending: bool,
}

/// A write in flight: where it goes, under which coordinator epoch, and what it writes
/// (`None`: the tombstone of an expired id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// Transactional id.
    pub id: String,
    /// Its `__transaction_state` partition.
    pub partition: i32,
    /// The coordinator epoch when the write began.
    pub coordinator_epoch: i32,
    /// The value written.
    pub value: Option<TxnValue>,
}

/// The deterministic coordinator core.
#[derive(Debug)]
pub struct Transactions {
    config: TxnConfig,
    partitions: i32,
    /// Led and loaded partitions, with their coordinator epoch (the partition's leader epoch).
    owned: BTreeMap<i32, i32>,
    /// Led partitions still being replayed.
    loading: BTreeSet<i32>,
    txns: HashMap<String, Entry>,
}

impl Transactions {
    /// An empty core.
    pub fn new(config: TxnConfig) -> Self {
        Transactions {
            partitions: config.partitions,
            config,
            owned: BTreeMap::new(),
            loading: BTreeSet::new(),
            txns: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// Sets the partition count of `__transaction_state` (from the topic, once it exists).
    pub fn set_partitions(&mut self, n: i32) {
        self.partitions = n.max(1);
    }

    /// The `__transaction_state` partition of `id`.
    pub fn partition_for(&self, id: &str) -> i32 {
        crate::group::records::partition_for(id, self.partitions)
    }

    /// The partition and coordinator epoch of `id`, if coordinated here: NOT_COORDINATOR when
    /// this broker does not lead its partition, COORDINATOR_LOAD_IN_PROGRESS while replaying.
    pub fn locate(&self, id: &str) -> Result<(i32, i32), E> {
        let p = self.partition_for(id);
        if self.loading.contains(&p) {
            return Err(E::CoordinatorLoadInProgress);
        }
        self.owned
            .get(&p)
            .map(|&epoch| (p, epoch))
            .ok_or(E::NotCoordinator)
    }

    /// The id's state, if known.
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.txns.get(id)
    }

    /// Every known id (DescribeTransactions/ListTransactions, timers).
    pub fn entries(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.txns.iter()
    }

    /// KIP-890 part 1: whether `topic`-`partition` is in the ongoing transaction of `id` with
    /// this producer id and epoch (INVALID_TXN_STATE when it is not).
    pub fn verify(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), E> {
        self.locate(id)?;
        let e = self.get(id).ok_or(E::InvalidProducerIdMapping)?;
        if e.value.producer_id != producer_id {
            return Err(E::InvalidProducerIdMapping);
        }
        if e.value.producer_epoch != epoch {
            return Err(E::ProducerFenced);
        }
        match e.value.state == state::TxnState::Ongoing && e.value.contains(topic, partition) {
            true => Ok(()),
            false => Err(E::InvalidTxnState),
        }
    }

    /// Starts writing `value` for `id`: CONCURRENT_TRANSACTIONS when a write is in flight.
    pub fn begin(&mut self, id: &str, value: Option<TxnValue>) -> Result<Ticket, E> {
        let (partition, coordinator_epoch) = self.locate(id)?;
        if let Some(e) = self.txns.get_mut(id) {
            if e.pending {
                return Err(E::ConcurrentTransactions);
            }
            e.pending = true;
        } else if let Some(v) = &value {
            let mut placeholder = v.clone();
            placeholder.producer_epoch = -1;
            self.txns.insert(
                id.to_string(),
                Entry {
                    value: placeholder,
                    last_epoch: -1,
                    pending: true,
                },
            );
        }
        Ok(Ticket {
            id: id.to_string(),
            partition,
            coordinator_epoch,
            value,
        })
    }

    /// Ends a write: applied when it succeeded and the partition is still coordinated here
    /// under the same epoch (else NOT_COORDINATOR: the next coordinator replays the record).
    pub fn finish(&mut self, t: &Ticket, written: Result<(), E>) -> Result<(), E> {
        let same_epoch = self.owned.get(&t.partition) == Some(&t.coordinator_epoch);
        let outcome = written.and(match same_epoch {
            true => Ok(()),
            false => Err(E::NotCoordinator),
        });
        let Some(e) = self.txns.get_mut(&t.id) else {
            return outcome;
        };
        e.pending = false;
        if outcome.is_err() {
            if e.value.producer_epoch < 0 && e.value.state == state::TxnState::Empty {
                self.txns.remove(&t.id);
            }
            return outcome;
        }
        match &t.value {
            Some(v) => {
                if v.producer_epoch != e.value.producer_epoch
                    || v.producer_id != e.value.producer_id
                {
                    e.last_epoch = e.value.producer_epoch;
                }
                e.value = v.clone();
            }
            None => {
                self.txns.remove(&t.id);
            }
        }
        Ok(())
    }

    /// Partition `p` is being replayed.
    pub fn start_loading(&mut self, p: i32) {
        self.loading.insert(p);
    }

    /// Applies one replayed record.
    pub fn replay(&mut self, id: String, value: Option<TxnValue>) {
        match value {
            Some(v) => {
                let last_epoch = self.txns.get(&id).map_or(-1, |e| e.value.producer_epoch);
                self.txns.insert(
                    id,
                    Entry {
                        value: v,
                        last_epoch,
                        pending: false,
                    },
                );
            }
            None => {
                self.txns.remove(&id);
            }
        }
    }

    /// Partition `p` is loaded and coordinated under `coordinator_epoch`; returns its ids whose
    /// markers are still to be written (Prepare* states), for the caller to complete.
    pub fn own(&mut self, p: i32, coordinator_epoch: i32) -> Vec<(String, TxnValue)> {
        self.loading.remove(&p);
        self.owned.insert(p, coordinator_epoch);
        let partitions = self.partitions;
        self.txns
            .iter()
            .filter(|(id, e)| {
                e.value.state.is_prepare()
                    && crate::group::records::partition_for(id, partitions) == p
            })
            .map(|(id, e)| (id.clone(), e.value.clone()))
            .collect()
    }

    /// This broker no longer leads partition `p`: its ids are dropped.
    pub fn unload(&mut self, p: i32) {
        self.owned.remove(&p);
        self.loading.remove(&p);
        let partitions = self.partitions;
        self.txns
            .retain(|id, _| crate::group::records::partition_for(id, partitions) != p);
    }

    /// The coordinated partitions with their coordinator epochs.
    pub fn owned(&self) -> BTreeMap<i32, i32> {
        self.owned.clone()
    }
}

/// How long a partition leader's AddPartitionsToTxn at another broker may take (a Produce
/// waits for it).
const VERIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The coordinator as the broker holds it.
#[derive(Debug)]
pub struct TxnCoordinator {
    core: Mutex<Transactions>,
    loaded: AtomicBool,
    /// Serializes [`store::sync_partitions`] runs.
    sync: Mutex<()>,
    /// Connections to other brokers for markers to partition leaders.
    pub marker_peers: PeerPool,
    /// Connections to other brokers' coordinators for a partition leader's verifications and
    /// adds (KIP-890).
    pub verify_peers: PeerPool,
}

impl TxnCoordinator {
    /// A coordinator that answers COORDINATOR_LOAD_IN_PROGRESS until it has synced once.
    pub fn new(config: TxnConfig) -> Self {
        TxnCoordinator {
            core: Mutex::new(Transactions::new(config)),
            loaded: AtomicBool::new(false),
            sync: Mutex::new(()),
            marker_peers: PeerPool::new("shale-txn-markers", markers::MARKER_TIMEOUT),
            verify_peers: PeerPool::new("shale-txn-verify", VERIFY_TIMEOUT),
        }
    }

    /// Runs `f` on the core.
    pub fn with<T>(&self, f: impl FnOnce(&mut Transactions) -> T) -> T {
        f(&mut self.core.lock())
    }

    /// True once the first leadership sync ran.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    fn set_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
    }
}

#[cfg(test)]
#[path = "core_test.rs"]
mod tests;
