//! One hosted partition: its local log, its role (leader or follower, with the epochs the
//! metadata image gave it) and the progress watch that waiting requests hold.
//!
//! The role is changed only by the [`super::ReplicaManager`] when a metadata image says so; the
//! log is never touched by a role change. A follower does not serve clients: its
//! [`FollowerState`] is what the follower fetcher (issue 11) will fetch with.

use crate::purgatory::{Progress, ProgressWatch};
use parking_lot::RwLock;
use shale_common::TopicPartition;
use shale_local_log::Log;
use std::sync::Arc;
use uuid::Uuid;

/// Where a follower replicates from: the leader and epoch of the image that made it a follower.
/// The follower fetcher (issue 11) fetches from `leader_id` with `leader_epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// The current leader, `-1` when the partition has none.
    pub leader_id: i32,
    /// The leader epoch the fetcher presents.
    pub leader_epoch: i32,
}

/// What this broker is for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// This broker serves produce and fetch in `leader_epoch`.
    Leader {
        /// The leader epoch.
        leader_epoch: i32,
    },
    /// Another broker (or none) leads; this replica only keeps its log.
    Follower(FollowerState),
}

impl Role {
    /// The leader epoch the image gave the partition.
    pub fn leader_epoch(&self) -> i32 {
        match self {
            Role::Leader { leader_epoch } => *leader_epoch,
            Role::Follower(f) => f.leader_epoch,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct State {
    role: Role,
    partition_epoch: i32,
}

/// A partition with a replica on this broker.
#[derive(Debug)]
pub struct Partition {
    /// Identity.
    pub tp: TopicPartition,
    /// The topic's id.
    pub topic_id: Uuid,
    /// Its log.
    pub log: Arc<Log>,
    state: RwLock<State>,
    progress: ProgressWatch,
}

impl Partition {
    /// A partition over `log` in `role`.
    pub(crate) fn new(
        tp: TopicPartition,
        topic_id: Uuid,
        log: Arc<Log>,
        role: Role,
        partition_epoch: i32,
    ) -> Partition {
        let part = Partition {
            tp,
            topic_id,
            log,
            state: RwLock::new(State {
                role,
                partition_epoch,
            }),
            progress: ProgressWatch::new(Progress::default()),
        };
        part.publish_progress();
        part
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.state.read().role
    }

    /// Whether this broker leads the partition.
    pub fn is_leader(&self) -> bool {
        matches!(self.role(), Role::Leader { .. })
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.role().leader_epoch()
    }

    /// The partition epoch of the image the role came from.
    pub fn partition_epoch(&self) -> i32 {
        self.state.read().partition_epoch
    }

    /// Switches to `role` for an image with `partition_epoch`. An image older than the one the
    /// role came from is ignored (Kafka's `makeLeader`/`makeFollower` do the same). Returns
    /// whether the role changed; waiting requests are woken then, so they re-check the role.
    pub(crate) fn set_role(&self, role: Role, partition_epoch: i32) -> bool {
        let mut state = self.state.write();
        if partition_epoch < state.partition_epoch {
            return false;
        }
        state.partition_epoch = partition_epoch;
        let changed = state.role != role;
        state.role = role;
        drop(state);
        if changed {
            self.progress.wake();
        }
        changed
    }

    /// The high watermark. Until followers replicate (issue 11), every appended record is
    /// committed.
    pub fn high_watermark(&self) -> i64 {
        self.log.log_end_offset()
    }

    /// Where requests that wait on this partition subscribe.
    pub fn progress(&self) -> &ProgressWatch {
        &self.progress
    }

    /// Publishes the log's current end offset and high watermark to waiting requests. Call it
    /// after every append.
    pub fn publish_progress(&self) {
        self.progress.publish(Progress {
            log_end_offset: self.log.log_end_offset(),
            high_watermark: self.high_watermark(),
            closed: false,
        });
    }

    /// Ends every wait on this partition (it is being deleted).
    pub(crate) fn close(&self) {
        self.progress.close();
    }
}
