//! What a metadata image means for this broker's replicas: the partitions to delete, and the
//! role every hosted partition should have (Kafka's `TopicsDelta.localChanges`).
//!
//! The computation is pure — it compares the image with what is hosted and touches no log —
//! so it is tested on crafted images alone.

use super::partition::{Assignment, FollowerState, Role};
use shale_common::TopicPartition;
use shale_raft::{MetadataImage, TopicImage};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Why a hosted partition's local data goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// Its topic (or the partition) is gone from the image.
    TopicDeleted,
    /// A topic of the same name with another id replaced it: delete, then create afresh.
    TopicRecreated,
    /// This broker is no longer in the partition's replica set.
    ReassignedAway,
}

/// A partition this broker hosts according to the image, with the role it should have.
#[derive(Debug, Clone)]
pub struct Hosted {
    /// Identity.
    pub tp: TopicPartition,
    /// The topic.
    pub topic: Arc<TopicImage>,
    /// The role the image gives this broker.
    pub role: Role,
    /// The image's partition epoch.
    pub partition_epoch: i32,
    /// The image's replicas and ISR.
    pub assignment: Assignment,
}

/// The local consequences of an image.
#[derive(Debug, Default)]
pub struct LocalChanges {
    /// Hosted partitions whose local data must go.
    pub deletes: Vec<(TopicPartition, DeleteReason)>,
    /// Every partition whose replica set includes this broker.
    pub hosted: Vec<Hosted>,
}

/// Compares `image` with the partitions hosted now (`tp → topic id`) for broker `node_id`.
pub fn local_changes(
    image: &MetadataImage,
    hosted_now: &HashMap<TopicPartition, Uuid>,
    node_id: i32,
) -> LocalChanges {
    let mut changes = LocalChanges::default();
    for (tp, id) in hosted_now {
        let reason = match image.topic(&tp.topic) {
            None => Some(DeleteReason::TopicDeleted),
            Some(t) if t.id != *id => Some(DeleteReason::TopicRecreated),
            Some(t) => match t.partitions.get(&tp.partition) {
                None => Some(DeleteReason::TopicDeleted),
                Some(p) if !p.replicas.contains(&node_id) => Some(DeleteReason::ReassignedAway),
                Some(_) => None,
            },
        };
        if let Some(reason) = reason {
            changes.deletes.push((tp.clone(), reason));
        }
    }
    for topic in image.topics.values() {
        for (&index, p) in &topic.partitions {
            if !p.replicas.contains(&node_id) {
                continue;
            }
            let role = if p.leader == node_id {
                Role::Leader {
                    leader_epoch: p.leader_epoch,
                }
            } else {
                Role::Follower(FollowerState {
                    leader_id: p.leader,
                    leader_epoch: p.leader_epoch,
                })
            };
            changes.hosted.push(Hosted {
                tp: TopicPartition::new(topic.name.as_str(), index),
                topic: topic.clone(),
                role,
                partition_epoch: p.partition_epoch,
                assignment: Assignment {
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                },
            });
        }
    }
    changes
}
