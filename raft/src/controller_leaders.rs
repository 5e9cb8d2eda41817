//! Partition leadership when a broker's state changes (Kafka's ReplicationControlManager
//! `generateLeaderAndIsrUpdates`): the records that move leadership off a broker that is fenced
//! or enters controlled shutdown, and the records that give leaderless partitions a leader
//! again when a broker is unfenced.
//!
//! * Leaving broker, partition it leads: the new leader is the first replica (in replica
//!   order) that is in the ISR and active (registered, unfenced, not shutting down); with none,
//!   the partition has no leader (-1) until one comes back.
//! * Leaving broker, any partition whose ISR holds it: it leaves the ISR, unless it is the last
//!   member — an ISR is never empty, as in Kafka, so the last member stays and the partition
//!   waits, leaderless, for it.
//! * Unfenced broker: every leaderless partition whose ISR holds it gets it as leader. A
//!   leaderless partition whose ISR members are all gone gets any active replica when
//!   `unclean.leader.election.enable` is true for its topic (topic override, else the cluster
//!   default), with an ISR of that replica alone.
//!
//! * ElectLeaders ([`elect`]): a preferred election gives the partition its first replica as
//!   leader when that replica is in the ISR and active; an unclean one gives a leaderless
//!   partition its first active ISR member, else (whatever the topic's config says: the operator
//!   asked) its first active replica with an ISR of that replica alone.
//!
//! A leader change bumps the leader epoch (the image does it for every record that names a
//! leader), every change the partition epoch.

use crate::image::{MetadataImage, PartitionImage, TopicImage, PARTITION_RECORD_VERSION};
use crate::records::{MetadataRecord, PartitionChangeRecord, NO_LEADER_CHANGE};

/// The topic config that allows electing a replica outside the ISR.
pub const UNCLEAN_LEADER_ELECTION: &str = "unclean.leader.election.enable";

/// Whether broker `id` can lead: registered, unfenced and not in controlled shutdown.
pub fn is_active(image: &MetadataImage, id: i32) -> bool {
    image
        .brokers
        .get(&id)
        .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
}

/// The records that take `leaving` out of every leadership and (where it is not the last
/// member) every ISR.
pub fn move_leadership_away(image: &MetadataImage, leaving: i32) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for (&id, p) in &topic.partitions {
            if !p.isr.contains(&leaving) && p.leader != leaving {
                continue;
            }
            let mut change = PartitionChangeRecord::new(PARTITION_RECORD_VERSION, topic.id, id);
            let isr: Vec<i32> = p.isr.iter().copied().filter(|&r| r != leaving).collect();
            if !isr.is_empty() && isr.len() != p.isr.len() {
                change.isr = Some(isr.clone());
            }
            if p.leader == leaving {
                change.leader = p
                    .replicas
                    .iter()
                    .copied()
                    .find(|&r| r != leaving && isr.contains(&r) && is_active(image, r))
                    .unwrap_or(-1);
            }
            if change.isr.is_some() || change.leader != NO_LEADER_CHANGE {
                records.push(MetadataRecord::PartitionChange(change));
            }
        }
    }
    records
}

/// The records that give leaderless partitions a leader now that `unfenced` is back.
pub fn elect_leaderless(image: &MetadataImage, unfenced: i32) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for (&id, p) in &topic.partitions {
            if p.leader != -1 || !p.replicas.contains(&unfenced) {
                continue;
            }
            let mut change = PartitionChangeRecord::new(PARTITION_RECORD_VERSION, topic.id, id);
            if p.isr.contains(&unfenced) {
                change.leader = unfenced;
            } else if isr_gone(image, p, unfenced) && unclean_allowed(image, topic) {
                change.leader = unfenced;
                change.isr = Some(vec![unfenced]);
            } else {
                continue;
            }
            records.push(MetadataRecord::PartitionChange(change));
        }
    }
    records
}

/// No ISR member other than `candidate` can lead.
fn isr_gone(image: &MetadataImage, p: &PartitionImage, candidate: i32) -> bool {
    !p.isr.iter().any(|&r| r != candidate && is_active(image, r))
}

/// `unclean.leader.election.enable` for `topic`: its override, else the cluster-wide dynamic
/// default, else false (Kafka's default).
fn unclean_allowed(image: &MetadataImage, topic: &TopicImage) -> bool {
    topic
        .configs
        .get(UNCLEAN_LEADER_ELECTION)
        .or_else(|| {
            image
                .broker_configs
                .get("")
                .and_then(|c| c.get(UNCLEAN_LEADER_ELECTION))
        })
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// ElectLeaders' election types (`election_type` 0 and 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

/// Why a partition's election did not change its leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionError {
    /// The partition already has such a leader (ELECTION_NOT_NEEDED).
    NotNeeded,
    /// The preferred replica is gone, fenced, shutting down or out of the ISR
    /// (PREFERRED_LEADER_NOT_AVAILABLE).
    PreferredNotAvailable,
    /// No replica can lead (ELIGIBLE_LEADERS_NOT_AVAILABLE).
    NoEligibleLeader,
    /// No such topic or partition (UNKNOWN_TOPIC_OR_PARTITION).
    UnknownPartition,
}

/// The change an election of `kind` makes to `partition` of `topic`.
pub fn elect(
    image: &MetadataImage,
    topic: &TopicImage,
    partition: i32,
    kind: ElectionType,
) -> Result<PartitionChangeRecord, ElectionError> {
    let p = topic
        .partitions
        .get(&partition)
        .ok_or(ElectionError::UnknownPartition)?;
    let mut change = PartitionChangeRecord::new(PARTITION_RECORD_VERSION, topic.id, partition);
    match kind {
        ElectionType::Preferred => {
            let preferred = *p
                .replicas
                .first()
                .ok_or(ElectionError::PreferredNotAvailable)?;
            if p.leader == preferred {
                return Err(ElectionError::NotNeeded);
            }
            if !p.isr.contains(&preferred) || !is_active(image, preferred) {
                return Err(ElectionError::PreferredNotAvailable);
            }
            change.leader = preferred;
        }
        ElectionType::Unclean => {
            if p.leader != -1 {
                return Err(ElectionError::NotNeeded);
            }
            let active = |r: &&i32| is_active(image, **r);
            if let Some(&r) = p.replicas.iter().filter(|r| p.isr.contains(r)).find(active) {
                change.leader = r;
            } else {
                let &r = p
                    .replicas
                    .iter()
                    .find(active)
                    .ok_or(ElectionError::NoEligibleLeader)?;
                change.leader = r;
                change.isr = Some(vec![r]);
            }
        }
    }
    Ok(change)
}

#[cfg(test)]
#[path = "controller_leaders_test.rs"]
mod tests;
