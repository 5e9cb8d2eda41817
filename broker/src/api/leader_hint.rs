//! KIP-951 leader discovery: a Produce (v10+) or Fetch (v12+) partition answered with
//! NOT_LEADER_OR_FOLLOWER names the current leader and epoch, and the response lists the
//! endpoints of those leaders, so the client re-routes without a Metadata round trip.

use crate::replica::ReplicaError;
use kafka_protocol::protocol::StrBytes;
use shale_raft::MetadataImage;
use std::collections::BTreeSet;

/// The leader (id, epoch) a refusal names; `None` when the partition is simply unknown.
pub fn current_leader(e: &ReplicaError) -> Option<(i32, i32)> {
    match e {
        ReplicaError::NotLeader {
            leader_id,
            leader_epoch,
        } => Some((*leader_id, *leader_epoch)),
        ReplicaError::Unknown => None,
    }
}

/// A leader's endpoint on the client's listener: id, host, port, rack.
pub type Endpoint = (i32, StrBytes, i32, Option<StrBytes>);

/// The endpoints, on `listener`, of the registered, unfenced brokers among `leaders`, in id
/// order (leaders without one — unknown, fenced, `-1` — are left out, as in Kafka).
pub fn endpoints(
    image: &MetadataImage,
    listener: &str,
    leaders: impl IntoIterator<Item = i32>,
) -> Vec<Endpoint> {
    let ids: BTreeSet<i32> = leaders.into_iter().collect();
    ids.into_iter()
        .filter_map(|id| {
            let b = image.brokers.get(&id).filter(|b| !b.fenced)?;
            let (host, port, rack) = super::metadata::client_endpoint(b, listener)?;
            Some((id, host, port, rack))
        })
        .collect()
}
