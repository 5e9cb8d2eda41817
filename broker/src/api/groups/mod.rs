//! The group APIs, one module per family. Each handler checks the coordinator is loaded and
//! `__consumer_offsets` exists, calls the coordinator core with the clock's `now` (through
//! [`write`] when the call may change persisted state), and shapes a response with only the
//! fields its version has.

pub mod delete_groups;
pub mod describe_groups;
pub mod find_coordinator;
pub mod heartbeat;
pub mod join;
pub mod leave;
pub mod list_groups;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod sync;
pub mod txn_offset_commit;

use crate::api::RequestContext;
use crate::group::store::{self, Persisted};
use crate::group::Groups;
use crate::state::Broker;
use kafka_protocol::error::ResponseError as E;
use std::sync::Arc;

/// Ready to coordinate: state loaded, `__consumer_offsets` created.
pub(crate) async fn ready(broker: &Arc<Broker>) -> Result<(), i16> {
    if !broker.groups.is_loaded() {
        return Err(E::CoordinatorLoadInProgress.code());
    }
    store::ensure_topic(broker).await
}

/// Ready to coordinate `group`: [`ready`], and its `__consumer_offsets` partition is led and
/// loaded here (NOT_COORDINATOR otherwise, so the client looks the coordinator up again).
pub(crate) async fn ready_for(broker: &Arc<Broker>, group: &str) -> Result<(), i16> {
    ready(broker).await?;
    coordinates(broker, group)
}

/// [`ready_for`], once the principal may perform `operation` on the group
/// (GROUP_AUTHORIZATION_FAILED otherwise, before anything else, as Kafka checks).
pub(crate) async fn ready_as(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    operation: i8,
    group: &str,
) -> Result<(), i16> {
    if !ctx.authz.group(operation, group) {
        return Err(E::GroupAuthorizationFailed.code());
    }
    ready_for(broker, group).await
}

/// Whether `group` is coordinated here; NOT_COORDINATOR otherwise.
pub(crate) fn coordinates(broker: &Broker, group: &str) -> Result<(), i16> {
    match broker.groups.with(|g| g.owns(group)) {
        true => Ok(()),
        false => Err(E::NotCoordinator.code()),
    }
}

/// Runs a coordinator operation that may change persisted state: under the coordinator's
/// write lock, `op` runs on the core with the clock's `now`, the records it queued are appended
/// and each change is applied with the outcome of its append; then, with the lock released,
/// the call waits until the ISR has the records (acks=-1, as Kafka's coordinator writes).
/// Returns `op`'s result and which groups' records could not be written or replicated. Nothing
/// awaits between the lock and its release, so a dropped request cannot leave an operation half
/// done.
pub(crate) async fn write<T>(
    broker: &Arc<Broker>,
    op: impl FnOnce(&mut Groups, i64) -> T,
) -> (T, Persisted) {
    let writing = broker.groups.lock_writes().await;
    let now = now(broker);
    let out = broker.groups.with(|g| op(g, now));
    let persisted = store::persist(&broker.groups, &store::BrokerLog(broker), now);
    drop(writing);
    let timeout = broker.groups.with(|g| g.config().commit_timeout_ms);
    let timeout = std::time::Duration::from_millis(timeout as u64);
    (out, persisted.replicated(timeout).await)
}

/// The current time.
pub(crate) fn now(broker: &Broker) -> i64 {
    broker.clock.now_ms()
}
