//! Partition reassignment on the controller (KIP-455; Kafka's ReplicationControlManager
//! `alterPartitionReassignments`, `listPartitionReassignments` and the reassignment half of
//! PartitionChangeBuilder).
//!
//! Moving a partition from replicas R to a target T writes `replicas = T ++ (R − T)`,
//! `adding = T − R`, `removing = R − T`: the new replicas join as followers and copy the log
//! from the leader. The reassignment completes in the change where every adding replica is in
//! the ISR — at once when none is added, else when the leader's AlterPartition brings the last
//! one in: then `replicas = T`, the removed replicas leave the ISR, and a leader that was
//! removed (or is outside the new ISR) hands over to the first target replica in the ISR that
//! can lead. Removing a replica bumps the leader epoch, so the removed replica's fetches are
//! fenced. A new target while one is in progress is taken relative to the current (merged)
//! replica set, as Kafka does. Cancelling reverts to the replicas without the adding ones.

use std::collections::BTreeMap;

use crate::controller::Controller;
use crate::controller_leaders::is_active;
use crate::error::ControllerError;
use crate::image::{MetadataImage, PartitionImage, TopicImage, PARTITION_RECORD_VERSION};
use crate::records::{MetadataRecord, PartitionChangeRecord};
use crate::validation::check_assignment;

/// Why one partition's reassignment request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReassignError {
    /// UNKNOWN_TOPIC_OR_PARTITION.
    UnknownPartition,
    /// Cancelling where nothing is in progress (NO_REASSIGNMENT_IN_PROGRESS).
    NoReassignmentInProgress,
    /// INVALID_REPLICA_ASSIGNMENT, with Kafka's message.
    InvalidAssignment(String),
    /// A different replica count where the request does not allow one (KIP-860,
    /// INVALID_REPLICATION_FACTOR).
    ReplicationFactorChange,
}

/// One partition's reassignment in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reassignment {
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// Requested targets by topic: per partition, the new replicas or `None` to cancel.
pub type ReassignRequest = Vec<(String, Vec<(i32, Option<Vec<i32>>)>)>;
/// One topic's outcomes by partition, in request order.
pub type TopicOutcomes = (String, Vec<(i32, Result<(), ReassignError>)>);
/// Outcomes by topic, in request order.
pub type ReassignOutcomes = Vec<TopicOutcomes>;

impl Controller {
    /// AlterPartitionReassignments: starts, replaces or cancels reassignments.
    pub fn alter_reassignments(
        &self,
        req: ReassignRequest,
        allow_rf_change: bool,
    ) -> Result<ReassignOutcomes, ControllerError> {
        self.write(|image| {
            let mut records = Vec::new();
            let mut outcomes = Vec::new();
            for (name, parts) in req {
                let mut results = Vec::new();
                for (id, target) in parts {
                    let change = image
                        .topic(&name)
                        .ok_or(ReassignError::UnknownPartition)
                        .and_then(|t| reassign(image, t, id, target, allow_rf_change));
                    let outcome = change.map(|c| {
                        records.extend(c.map(MetadataRecord::PartitionChange));
                    });
                    results.push((id, outcome));
                }
                outcomes.push((name, results));
            }
            Ok((records, outcomes))
        })
    }

    /// ListPartitionReassignments: the reassignments in progress among `wanted` (every
    /// partition when `None`; unknown topics and partitions are skipped, as in Kafka).
    pub fn list_reassignments(
        &self,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    ) -> BTreeMap<String, Vec<Reassignment>> {
        let image = self.image();
        let mut out: BTreeMap<String, Vec<Reassignment>> = BTreeMap::new();
        let mut add = |t: &TopicImage, id: i32| {
            let Some(p) = t.partitions.get(&id) else {
                return;
            };
            if p.adding_replicas.is_empty() && p.removing_replicas.is_empty() {
                return;
            }
            out.entry(t.name.clone()).or_default().push(Reassignment {
                partition: id,
                replicas: p.replicas.clone(),
                adding: p.adding_replicas.clone(),
                removing: p.removing_replicas.clone(),
            });
        };
        match wanted {
            None => {
                for t in image.topics.values() {
                    t.partitions.keys().for_each(|&id| add(t, id));
                }
            }
            Some(wanted) => {
                for (name, ids) in wanted {
                    if let Some(t) = image.topic(&name) {
                        ids.into_iter().for_each(|id| add(t, id));
                    }
                }
            }
        }
        out
    }
}

/// The change one partition's request makes (`None`: nothing to change).
fn reassign(
    image: &MetadataImage,
    topic: &TopicImage,
    id: i32,
    target: Option<Vec<i32>>,
    allow_rf_change: bool,
) -> Result<Option<PartitionChangeRecord>, ReassignError> {
    let p = topic
        .partitions
        .get(&id)
        .ok_or(ReassignError::UnknownPartition)?;
    let Some(target) = target else {
        return cancel(image, topic, id, p).map(Some);
    };
    check_assignment(image, vec![(id, target.clone())], id)
        .map_err(|e| ReassignError::InvalidAssignment(e.to_string()))?;
    let original = p.replicas.len() - p.adding_replicas.len();
    if !allow_rf_change && target.len() != original {
        return Err(ReassignError::ReplicationFactorChange);
    }
    let in_progress = !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty();
    if target == p.replicas && !in_progress {
        return Ok(None);
    }
    let mut replicas = target.clone();
    replicas.extend(p.replicas.iter().filter(|r| !target.contains(r)));
    let next = PartitionImage {
        adding_replicas: minus(&target, &p.replicas),
        removing_replicas: minus(&p.replicas, &target),
        replicas,
        ..p.clone()
    };
    Ok(Some(change_to(image, topic, id, p, complete(next))))
}

/// Reverts a reassignment in progress: the adding replicas go, the others stay.
fn cancel(
    image: &MetadataImage,
    topic: &TopicImage,
    id: i32,
    p: &PartitionImage,
) -> Result<PartitionChangeRecord, ReassignError> {
    if p.adding_replicas.is_empty() && p.removing_replicas.is_empty() {
        return Err(ReassignError::NoReassignmentInProgress);
    }
    let isr = minus(&p.isr, &p.adding_replicas);
    if isr.is_empty() {
        return Err(ReassignError::InvalidAssignment(
            "Cannot cancel: only adding replicas are in sync.".into(),
        ));
    }
    let next = PartitionImage {
        replicas: minus(&p.replicas, &p.adding_replicas),
        isr,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
        ..p.clone()
    };
    Ok(change_to(image, topic, id, p, next))
}

/// `p` with its reassignment completed when every adding replica is in its ISR (and some
/// other member remains); unchanged otherwise.
pub fn complete(p: PartitionImage) -> PartitionImage {
    let in_progress = !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty();
    if !in_progress || !p.adding_replicas.iter().all(|r| p.isr.contains(r)) {
        return p;
    }
    let isr = minus(&p.isr, &p.removing_replicas);
    if isr.is_empty() {
        return p;
    }
    PartitionImage {
        replicas: minus(&p.replicas, &p.removing_replicas),
        isr,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
        ..p
    }
}

/// The record taking partition `id` from `p` to `next`'s replicas, ISR and reassignment
/// state, electing a leader when `p`'s no longer fits and bumping the leader epoch when
/// replicas are removed.
pub fn change_to(
    image: &MetadataImage,
    topic: &TopicImage,
    id: i32,
    p: &PartitionImage,
    next: PartitionImage,
) -> PartitionChangeRecord {
    let mut change = PartitionChangeRecord::new(PARTITION_RECORD_VERSION, topic.id, id);
    if next.replicas != p.replicas {
        change.replicas = Some(next.replicas.clone());
    }
    if next.isr != p.isr {
        change.isr = Some(next.isr.clone());
    }
    if next.adding_replicas != p.adding_replicas {
        change.adding_replicas = Some(next.adding_replicas.clone());
    }
    if next.removing_replicas != p.removing_replicas {
        change.removing_replicas = Some(next.removing_replicas.clone());
    }
    let leader_fits = next.replicas.contains(&p.leader) && next.isr.contains(&p.leader);
    if !leader_fits {
        change.leader = next
            .replicas
            .iter()
            .copied()
            .find(|&r| next.isr.contains(&r) && is_active(image, r))
            .unwrap_or(-1);
    } else if p.replicas.iter().any(|r| !next.replicas.contains(r)) {
        // Same leader, new epoch: the removed replicas' fetches are fenced.
        change.leader = p.leader;
    }
    change
}

/// `a` without the members of `b`, in `a`'s order.
fn minus(a: &[i32], b: &[i32]) -> Vec<i32> {
    a.iter().copied().filter(|r| !b.contains(r)).collect()
}

#[cfg(test)]
#[path = "controller_reassign_test.rs"]
mod tests;
