//! The transaction coordinator's background work: following leadership of
//! `__transaction_state` ([`sync`], which also resumes the transactions a previous coordinator
//! left between Prepare* and Complete*), aborting transactions open longer than their timeout
//! (`transaction.abort.timed.out.transaction.cleanup.interval.ms`; the producer is fenced by an
//! epoch bump, as Kafka does) and expiring transactional ids idle for
//! `transactional.id.expiration.ms` (a tombstone is written).

use super::state::{self, TxnState};
use super::{markers, store};
use crate::state::Broker;
use std::sync::Arc;

/// Follows leadership of `__transaction_state` (on a thread that may block, inside the
/// runtime) and starts completing the transactions found half done.
pub fn sync(broker: &Arc<Broker>) {
    let resumed = store::sync_partitions(broker);
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    for (id, value, epoch) in resumed {
        tracing::info!(%id, state = value.state.name(), "completing a transaction left by the previous coordinator");
        let resumed = markers::Completion::Resumed;
        handle.spawn(markers::complete(broker.clone(), id, value, epoch, resumed));
    }
}

/// One pass of the timers at the clock's now: aborts timed-out transactions when `abort` and
/// expires idle ids when `expire`.
pub async fn tick(broker: &Arc<Broker>, abort: bool, expire: bool) {
    let now = broker.clock.now_ms();
    let expiration = broker.txns.with(|c| c.config().id_expiration_ms);
    let (timed_out, idle): (Vec<String>, Vec<String>) = broker.txns.with(|c| {
        let owned = c.owned();
        let mut timed_out = Vec::new();
        let mut idle = Vec::new();
        for (id, e) in c.entries() {
            if e.pending || !owned.contains_key(&c.partition_for(id)) {
                continue;
            }
            let v = &e.value;
            let deadline = v.start_ts.saturating_add(i64::from(v.timeout_ms));
            if abort && v.state == TxnState::Ongoing && now > deadline {
                timed_out.push(id.clone());
            } else if expire && v.state.is_idle() && now >= v.update_ts.saturating_add(expiration) {
                idle.push(id.clone());
            }
        }
        (timed_out, idle)
    });
    for id in timed_out {
        abort_timed_out(broker, &id, now).await;
    }
    for id in idle {
        expire_id(broker, &id).await;
    }
}

async fn abort_timed_out(broker: &Arc<Broker>, id: &str, now: i64) {
    let ticket = broker.txns.with(|c| {
        let v = c
            .get(id)
            .filter(|e| !e.pending && e.value.state == TxnState::Ongoing)?;
        let next = state::abort_fenced(&v.value, now);
        c.begin(id, Some(next)).ok()
    });
    let Some(ticket) = ticket else { return };
    tracing::info!(%id, "aborting a transaction open longer than its timeout");
    let written = store::write(broker, &ticket).await;
    if broker.txns.with(|c| c.finish(&ticket, written)).is_ok() {
        if let Some(v) = ticket.value.clone() {
            let epoch = ticket.coordinator_epoch;
            let ended = markers::Completion::Ended;
            tokio::spawn(markers::complete(
                broker.clone(),
                id.to_string(),
                v,
                epoch,
                ended,
            ));
        }
    }
}

async fn expire_id(broker: &Arc<Broker>, id: &str) {
    let ticket = broker.txns.with(|c| {
        c.get(id)
            .filter(|e| !e.pending && e.value.state.is_idle())?;
        c.begin(id, None).ok()
    });
    let Some(ticket) = ticket else { return };
    tracing::info!(%id, "transactional id expired");
    let written = store::write(broker, &ticket).await;
    let _ = broker.txns.with(|c| c.finish(&ticket, written));
}
