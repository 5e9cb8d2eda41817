//! The group APIs, one module per family. Each handler checks the coordinator is loaded and
//! `__consumer_offsets` exists, calls the coordinator core with the clock's `now`, persists
//! what the core queued, and shapes a response with only the fields its version has.

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

use crate::group::store;
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

/// Persists queued records; the error code to answer when that fails.
pub(crate) fn persist(broker: &Broker) -> Result<(), i16> {
    super::storage_io(|| store::flush(broker)).map_err(|e| {
        tracing::warn!(error = %e, "cannot write __consumer_offsets");
        E::CoordinatorNotAvailable.code()
    })
}

/// The current time.
pub(crate) fn now(broker: &Broker) -> i64 {
    broker.clock.now_ms()
}
