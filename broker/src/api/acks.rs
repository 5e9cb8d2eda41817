//! acks=all: a produce that appended waits until the ISR has its records — the partition's
//! high watermark passes them — before it is answered (Kafka's delayed produce). The wait
//! ends early when this broker stops leading the partition, and at the request's timeout.
//!
//! | how the wait ends | partition answer |
//! |---|---|
//! | high watermark ≥ the records' end, ISR still ≥ min.insync.replicas | success |
//! | high watermark ≥ the records' end, ISR shrank below the min | NOT_ENOUGH_REPLICAS_AFTER_APPEND |
//! | leadership moved (another leader epoch, or no longer hosted) | NOT_LEADER_OR_FOLLOWER |
//! | timeout | REQUEST_TIMED_OUT |
//!
//! The records stay in the log in every case; only the acknowledgement differs.

use crate::purgatory::Waiter;
use crate::replica::Partition;
use kafka_protocol::error::ResponseError as E;
use std::sync::Arc;
use std::time::Duration;

/// One partition's appended records waiting for the ISR.
#[derive(Debug)]
pub struct Pending {
    partition: Arc<Partition>,
    /// The offset the high watermark must reach.
    required: i64,
    leader_epoch: i32,
}

impl Pending {
    /// Waits for `partition`'s high watermark to reach `required`.
    pub fn new(partition: Arc<Partition>, required: i64) -> Pending {
        let leader_epoch = partition.leader_epoch();
        Pending {
            partition,
            required,
            leader_epoch,
        }
    }

    /// The answer once the wait is over, `None` while it goes on.
    pub(crate) fn outcome(&self) -> Option<i16> {
        let p = &self.partition;
        if !p.is_leader() || p.leader_epoch() != self.leader_epoch || p.progress().current().closed
        {
            return Some(E::NotLeaderOrFollower.code());
        }
        if p.high_watermark() < self.required {
            return None;
        }
        Some(if p.enough_in_sync(true) {
            0
        } else {
            E::NotEnoughReplicasAfterAppend.code()
        })
    }
}

/// Waits for every pending partition (keyed by where its answer goes) and returns each one's
/// error code (0 = acknowledged).
pub async fn wait_for_isr<K: Copy>(pending: Vec<(K, Pending)>, timeout: Duration) -> Vec<(K, i16)> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut waiter = Waiter::new();
    for (_, p) in &pending {
        waiter.watch(p.partition.progress());
    }
    loop {
        waiter.mark_seen();
        let outcomes: Vec<Option<i16>> = pending.iter().map(|(_, p)| p.outcome()).collect();
        let done = outcomes.iter().all(Option::is_some);
        if done || !waiter.wait_until(deadline).await {
            let timed_out = E::RequestTimedOut.code();
            return pending
                .iter()
                .zip(outcomes)
                .map(|((k, p), o)| (*k, o.or_else(|| p.outcome()).unwrap_or(timed_out)))
                .collect();
        }
    }
}
