//! One hosted partition: its local log, its role (leader or follower, with the epochs the
//! metadata image gave it) and the progress watch that waiting requests hold.
//!
//! The role is changed only by the [`super::ReplicaManager`] when a metadata image says so; the
//! log is never touched by a role change. A follower does not serve clients: its
//! [`FollowerState`] is what the follower fetcher (issue 11) will fetch with.

use super::isr::LeaderView;
use crate::purgatory::{Progress, ProgressWatch};
use parking_lot::RwLock;
use shale_common::TopicPartition;
use shale_local_log::Log;
use std::sync::atomic::{AtomicI64, Ordering};
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

/// Where the image places a partition's replicas.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// The replica set, preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
}

#[derive(Debug)]
struct State {
    role: Role,
    partition_epoch: i32,
    assignment: Assignment,
    /// The followers' progress, while this broker leads.
    leader: Option<LeaderView>,
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
    /// This broker.
    me: i32,
    state: RwLock<State>,
    /// Offsets below it are committed: replicated to the whole ISR (leader), or as the leader
    /// last said (follower).
    high_watermark: AtomicI64,
    progress: ProgressWatch,
}

impl Partition {
    /// Broker `me`'s replica over `log` in `role`.
    pub(crate) fn new(
        tp: TopicPartition,
        topic_id: Uuid,
        log: Arc<Log>,
        me: i32,
        role: Role,
        partition_epoch: i32,
        assignment: Assignment,
    ) -> Partition {
        let part = Partition {
            tp,
            topic_id,
            high_watermark: AtomicI64::new(log.high_watermark()),
            log,
            me,
            state: RwLock::new(State {
                role: Role::Follower(FollowerState {
                    leader_id: -1,
                    leader_epoch: -1,
                }),
                partition_epoch: -1,
                assignment: Assignment::default(),
                leader: None,
            }),
            progress: ProgressWatch::new(Progress::default()),
        };
        part.set_role(role, partition_epoch, assignment);
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

    /// Switches to `role` for an image with `partition_epoch` and `assignment`. An image older
    /// than the one the role came from is ignored; an equal one is taken (Kafka's
    /// `makeLeader`/`makeFollower`: the controller's AlterPartition answer may have given that
    /// epoch already). A new leader epoch starts a new [`LeaderView`]; the same epoch only
    /// updates its ISR. A new leader epoch starts in the epoch cache at the log end. Returns
    /// whether the role changed; waiting requests are woken then, so they re-check the role.
    pub(crate) fn set_role(
        &self,
        role: Role,
        partition_epoch: i32,
        assignment: Assignment,
    ) -> bool {
        let mut state = self.state.write();
        if partition_epoch < state.partition_epoch {
            return false;
        }
        let changed = state.role != role;
        state.leader = match (role, state.leader.take()) {
            (Role::Leader { .. }, Some(mut view))
                if !changed && view.replicas() == assignment.replicas.as_slice() =>
            {
                view.set_isr(&assignment.isr);
                Some(view)
            }
            (Role::Leader { .. }, _) => Some(LeaderView::new(
                self.me,
                &assignment.replicas,
                &assignment.isr,
                self.log.log_end_offset(),
                self.log.config().min_insync_replicas,
                self.log.clock().now_ms(),
            )),
            (Role::Follower(_), _) => None,
        };
        state.partition_epoch = partition_epoch;
        state.assignment = assignment;
        state.role = role;
        drop(state);
        if changed {
            if let Role::Leader { leader_epoch } = role {
                // Outside the state lock: it writes the leader-epoch checkpoint.
                if let Err(e) = self.log.assign_leader_epoch(leader_epoch) {
                    tracing::error!(partition = %self.tp, leader_epoch, error = %e, "cannot start the leader epoch in the epoch cache");
                }
            }
            self.publish_progress();
            self.progress.wake();
        }
        changed
    }

    /// The replica set and ISR of the image the role came from.
    pub fn assignment(&self) -> Assignment {
        self.state.read().assignment.clone()
    }

    /// The high watermark.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Leader: raises the high watermark to what the ISR's log end offsets allow (it never
    /// goes down). Returns whether it moved.
    fn advance_high_watermark(&self) -> bool {
        let leo = self.log.log_end_offset();
        let state = self.state.read();
        let Some(allowed) = state.leader.as_ref().and_then(|v| v.high_watermark(leo)) else {
            return false;
        };
        self.high_watermark
            .fetch_max(allowed.min(leo), Ordering::AcqRel)
            < allowed.min(leo)
    }

    /// Follower: takes the leader's high watermark, bounded by this replica's log (it may go
    /// down, as Kafka's follower high watermark may).
    pub fn set_follower_high_watermark(&self, leader_hw: i64) {
        let hw = leader_hw
            .min(self.log.log_end_offset())
            .max(self.log.log_start_offset());
        self.high_watermark.store(hw, Ordering::Release);
        self.publish_progress();
    }

    /// A follower's fetch at `fetch_offset` (its log end offset). Returns `None` for a broker
    /// that is not a follower of this partition (or when this broker does not lead it), else
    /// the ISR to ask the controller for when the follower has caught up enough to join;
    /// `eligible` says whether a broker may join. The expansion is pending from this moment
    /// (Kafka's `prepareIsrExpand`): the high watermark waits for the joining follower before
    /// the request even leaves, or the controller could add a follower that lacks committed
    /// records — and elect it.
    pub fn record_follower_fetch(
        &self,
        follower: i32,
        fetch_offset: i64,
        eligible: impl Fn(i32) -> bool,
    ) -> Option<Option<Vec<i32>>> {
        let leo = self.log.log_end_offset();
        let now = self.log.clock().now_ms();
        let expansion = {
            let mut state = self.state.write();
            let view = state.leader.as_mut()?;
            if !view.record_fetch(follower, fetch_offset, leo, now) {
                return None;
            }
            let expansion = view.expansion(self.high_watermark(), eligible);
            if let Some(isr) = &expansion {
                view.set_pending(isr.clone());
            }
            expansion
        };
        if self.advance_high_watermark() {
            self.publish_progress();
        }
        Some(expansion)
    }

    /// Leader: the ISR to ask for when members have not caught up for `lag_ms`.
    pub fn isr_shrink(&self, lag_ms: i64) -> Option<Vec<i32>> {
        let now = self.log.clock().now_ms();
        let state = self.state.read();
        state.leader.as_ref()?.shrink(now, lag_ms)
    }

    /// Leader: an ISR change was sent to the controller for this partition epoch.
    pub fn isr_change_sent(&self, isr: Vec<i32>) {
        if let Some(view) = self.state.write().leader.as_mut() {
            view.set_pending(isr);
        }
    }

    /// Leader: the controller's answer to an ISR change: `Some((isr, partition epoch))` when
    /// committed, `None` when refused (the committed ISR stays; new metadata will tell).
    pub fn isr_change_answered(&self, committed: Option<(Vec<i32>, i32)>) {
        let mut state = self.state.write();
        match committed {
            Some((isr, partition_epoch)) if partition_epoch >= state.partition_epoch => {
                state.partition_epoch = partition_epoch;
                state.assignment.isr = isr.clone();
                if let Some(view) = state.leader.as_mut() {
                    view.set_isr(&isr);
                }
            }
            _ => {
                if let Some(view) = state.leader.as_mut() {
                    view.clear_pending();
                }
            }
        }
        drop(state);
        self.publish_progress();
    }

    /// Leader: whether the ISR meets `min.insync.replicas` (acks=all produce is refused with
    /// NOT_ENOUGH_REPLICAS otherwise; with `maximal`, the pending expansion counts, as for a
    /// produce that completed).
    pub fn enough_in_sync(&self, maximal: bool) -> bool {
        let min_isr = self.log.config().min_insync_replicas;
        let mut state = self.state.write();
        match state.leader.as_mut() {
            Some(view) => {
                view.set_min_isr(min_isr);
                if maximal {
                    view.enough_in_maximal_isr()
                } else {
                    view.enough_in_sync()
                }
            }
            None => false,
        }
    }

    /// Where requests that wait on this partition subscribe.
    pub fn progress(&self) -> &ProgressWatch {
        &self.progress
    }

    /// Publishes the log's current end offset and high watermark to waiting requests (a
    /// leader first raises its high watermark as far as the ISR allows). Call it after every
    /// append.
    pub fn publish_progress(&self) {
        if self.is_leader() {
            self.advance_high_watermark();
        } else {
            let leo = self.log.log_end_offset();
            self.high_watermark.fetch_min(leo, Ordering::AcqRel);
        }
        self.log.set_high_watermark(self.high_watermark());
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
