//! AlterPartition on the controller (Kafka's ReplicationControlManager `alterPartition`): a
//! partition leader asks to change its ISR; the controller checks the request against the
//! partition's committed state and writes one PartitionChangeRecord per accepted change.
//!
//! The checks, in Kafka's order (per partition):
//! * unknown topic id or partition;
//! * leader or partition epoch newer than the controller's: this controller is behind
//!   (NOT_CONTROLLER, the leader retries);
//! * older leader epoch (FENCED_LEADER_EPOCH); the sender is not the leader (INVALID_REQUEST);
//!   older partition epoch (INVALID_UPDATE_VERSION);
//! * an ISR that is not a subset of the replicas, repeats a member or leaves out the leader
//!   (INVALID_REQUEST);
//! * a member that cannot be in an ISR: unregistered, fenced, shutting down, or (KIP-903)
//!   another incarnation than the broker epoch the leader saw (INELIGIBLE_REPLICA).
//!
//! Before any of that, the sender's own broker epoch must be its registration's
//! (STALE_BROKER_EPOCH for the whole request). An accepted ISR that holds every replica a
//! reassignment adds completes that reassignment in the same record
//! ([`crate::controller_reassign`]). The leader recovery state is not kept: only
//! RECOVERED (0) is accepted.

use std::collections::HashSet;

use uuid::Uuid;

use crate::controller::Controller;
use crate::controller_leaders::is_active;
use crate::controller_reassign::{change_to, complete};
use crate::error::ControllerError;
use crate::image::{MetadataImage, PartitionImage};
use crate::records::{MetadataRecord, PartitionChangeRecord, NO_LEADER_CHANGE};

/// One partition's requested ISR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrChange {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The members with the broker epoch the leader knows for each (-1: unknown, not checked).
    pub new_isr: Vec<(i32, i64)>,
    pub leader_recovery_state: i8,
}

/// An AlterPartition request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterIsr {
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub partitions: Vec<IsrChange>,
}

/// A partition's state after an accepted change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrState {
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
}

/// Why one partition's change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsrError {
    /// UNKNOWN_TOPIC_ID.
    UnknownTopicId,
    /// UNKNOWN_TOPIC_OR_PARTITION.
    UnknownPartition,
    /// The leader has seen a newer state than this controller (NOT_CONTROLLER).
    ControllerBehind,
    /// FENCED_LEADER_EPOCH.
    FencedLeaderEpoch,
    /// INVALID_UPDATE_VERSION.
    InvalidUpdateVersion,
    /// Not the leader, or a malformed ISR (INVALID_REQUEST).
    InvalidRequest,
    /// INELIGIBLE_REPLICA.
    IneligibleReplica,
    /// The change completed a reassignment that moved the leader away from the sender; it
    /// was written (NEW_LEADER_ELECTED).
    NewLeaderElected,
}

type Outcome = Result<IsrState, IsrError>;

impl Controller {
    /// AlterPartition: one outcome per requested change, in request order.
    pub fn alter_partition(
        &self,
        req: AlterIsr,
    ) -> Result<Vec<Result<IsrState, IsrError>>, ControllerError> {
        self.write(|image| {
            let registered = image.brokers.get(&req.broker_id).map(|b| b.epoch);
            if registered != Some(req.broker_epoch) {
                return Err(ControllerError::StaleBrokerEpoch {
                    broker_id: req.broker_id,
                    sent: req.broker_epoch,
                    registered: registered.unwrap_or(-1),
                });
            }
            let mut records = Vec::new();
            let mut seen = HashSet::new();
            let outcomes = req
                .partitions
                .iter()
                .map(|change| {
                    if !seen.insert((change.topic_id, change.partition)) {
                        return Err(IsrError::InvalidRequest);
                    }
                    let (outcome, record) = apply(image, req.broker_id, change)?;
                    records.extend(record.map(MetadataRecord::PartitionChange));
                    outcome
                })
                .collect();
            Ok((records, outcomes))
        })
    }
}

/// The outcome of `change` asked by `sender` and the record it writes (none when the ISR is
/// already the requested one). A change that completes a reassignment moving the leader is
/// written but answered with NEW_LEADER_ELECTED, as in Kafka.
fn apply(
    image: &MetadataImage,
    sender: i32,
    change: &IsrChange,
) -> Result<(Outcome, Option<PartitionChangeRecord>), IsrError> {
    let topic = image
        .topic_by_id(&change.topic_id)
        .ok_or(IsrError::UnknownTopicId)?;
    let p = topic
        .partitions
        .get(&change.partition)
        .ok_or(IsrError::UnknownPartition)?;
    check_epochs(p, sender, change)?;
    let isr: Vec<i32> = change.new_isr.iter().map(|&(id, _)| id).collect();
    let distinct: HashSet<i32> = isr.iter().copied().collect();
    let well_formed = distinct.len() == isr.len()
        && isr.iter().all(|r| p.replicas.contains(r))
        && isr.contains(&p.leader)
        && change.leader_recovery_state == 0;
    if !well_formed {
        return Err(IsrError::InvalidRequest);
    }
    if !change
        .new_isr
        .iter()
        .all(|&(id, epoch)| eligible(image, id, epoch))
    {
        return Err(IsrError::IneligibleReplica);
    }
    let next = complete(PartitionImage { isr, ..p.clone() });
    let unchanged = IsrState {
        leader: p.leader,
        leader_epoch: p.leader_epoch,
        isr: p.isr.clone(),
        partition_epoch: p.partition_epoch,
    };
    if next == *p {
        return Ok((Ok(unchanged), None));
    }
    let record = change_to(image, topic, change.partition, p, next);
    let new_leader = record.leader != NO_LEADER_CHANGE;
    let state = IsrState {
        leader: if new_leader { record.leader } else { p.leader },
        leader_epoch: p.leader_epoch + i32::from(new_leader),
        isr: record.isr.clone().unwrap_or(unchanged.isr),
        partition_epoch: p.partition_epoch + 1,
    };
    let outcome = if state.leader == p.leader {
        Ok(state)
    } else {
        Err(IsrError::NewLeaderElected)
    };
    Ok((outcome, Some(record)))
}

/// The epoch checks, in Kafka's order.
fn check_epochs(p: &PartitionImage, sender: i32, change: &IsrChange) -> Result<(), IsrError> {
    if change.leader_epoch > p.leader_epoch || change.partition_epoch > p.partition_epoch {
        return Err(IsrError::ControllerBehind);
    }
    if change.leader_epoch < p.leader_epoch {
        return Err(IsrError::FencedLeaderEpoch);
    }
    if sender != p.leader {
        return Err(IsrError::InvalidRequest);
    }
    if change.partition_epoch < p.partition_epoch {
        return Err(IsrError::InvalidUpdateVersion);
    }
    Ok(())
}

/// Whether broker `id` may be in an ISR: active, and (when `epoch` is known) the same
/// incarnation.
fn eligible(image: &MetadataImage, id: i32, epoch: i64) -> bool {
    let same_incarnation = image
        .brokers
        .get(&id)
        .is_some_and(|b| epoch == -1 || b.epoch == epoch);
    same_incarnation && is_active(image, id)
}

#[cfg(test)]
#[path = "controller_isr_test.rs"]
mod tests;
