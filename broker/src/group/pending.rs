//! Changes to what `__consumer_offsets` holds, applied only once written.
//!
//! An operation never changes persisted state in memory directly. It queues a [`Pending`]: the
//! records to append and the [`Change`] they stand for. The store appends the records and then
//! calls [`Groups::apply`] with the outcome; only a successful append changes the state, so
//! memory and log cannot disagree after a failed write. This is Kafka's rule (the classic
//! coordinator updates its cache in the append callback; the coordinator runtime applies records
//! once they are written): a failed SyncGroup store leaves the assignment unset, answers every
//! waiting member with the error and rebalances; a failed commit leaves the offsets as they were.
//!
//! Persisted state is: committed offsets, the existence of a group with records, the stored
//! assignment of a generation and a static member's id. A group's metadata is also written when
//! it becomes empty ([`Change::Snapshot`]); that record mirrors a membership change made at once,
//! and a failure to write it is only logged, as in Kafka.

use super::membership::{replace_static, JoinParams};
use super::model::{Group, GroupState, JoinResult, SyncResult};
use super::records::OffsetValue;
use super::{Groups, Write};
use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// One group's records and the change they carry.
#[derive(Debug)]
pub struct Pending {
    /// The group.
    pub group: String,
    /// Its `__consumer_offsets` partition (every record of a group goes there).
    pub partition: i32,
    /// The records, in order; none when the change has nothing in the log.
    pub writes: Vec<Write>,
    /// What to apply once they are appended.
    pub change: Change,
}

/// What a [`Pending`]'s records stand for.
#[derive(Debug)]
pub enum Change {
    /// Group metadata mirroring a membership change already made (the group became empty).
    Snapshot,
    /// The leader's assignment for `generation`: on success the group becomes Stable and every
    /// waiting member gets its assignment; on failure they get the error and the group
    /// rebalances.
    Assignment {
        /// The generation the leader assigned.
        generation: i32,
        /// Assignment by member id (empty for members the leader left out).
        assignment: BTreeMap<String, Bytes>,
    },
    /// A static member restarting in a Stable group without a rebalance.
    StaticReplace(Box<StaticReplace>),
    /// Committed offsets.
    Commit(Vec<((String, i32), OffsetValue)>),
    /// Offsets removed (OffsetDelete, expiry); with `then_group`, the group as well if it is
    /// still empty without offsets.
    RemoveOffsets {
        /// (topic, partition) keys.
        keys: Vec<(String, i32)>,
        /// Remove the group too.
        then_group: bool,
    },
    /// DeleteGroups: the group and its offsets.
    DeleteGroup,
}

/// A static member's new member id, valid once the group record carrying it is written.
#[derive(Debug)]
pub struct StaticReplace {
    /// The member id being replaced (fenced on success).
    pub old_id: String,
    /// The new member id.
    pub new_id: String,
    /// The JoinGroup that restarted the member.
    pub join: JoinParams,
    /// Where the JoinGroup's answer goes.
    pub reply: oneshot::Sender<JoinResult>,
}

impl Groups {
    /// Queues `writes` for group `id` and the change to apply once they are appended.
    pub(crate) fn stage(&mut self, id: &str, writes: Vec<Write>, change: Change) {
        let partition = self.partition_for(id);
        self.pending.push(Pending {
            group: id.to_string(),
            partition,
            writes,
            change,
        });
    }

    /// Queues the group's current metadata ([`Change::Snapshot`]).
    pub(crate) fn snapshot_group(&mut self, id: &str) {
        let partition = self.partition_for(id);
        if let Some(g) = self.groups.get(id) {
            let w = Write::group(partition, id, Some(&g.to_value()));
            self.stage(id, vec![w], Change::Snapshot);
        }
    }

    /// Takes the queued changes, in order.
    pub fn take_pending(&mut self) -> Vec<Pending> {
        std::mem::take(&mut self.pending)
    }

    /// True when changes wait to be written.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Applies `change` of group `id` after its append: `Ok` when the records are in the log,
    /// else the error code the coordinator answers.
    pub fn apply(&mut self, id: &str, change: Change, outcome: Result<(), i16>, now: i64) {
        match change {
            Change::Snapshot => {}
            Change::Assignment {
                generation,
                assignment,
            } => self.finish_sync(id, generation, assignment, outcome, now),
            Change::StaticReplace(r) => self.finish_static_replace(id, *r, outcome, now),
            Change::Commit(offsets) if outcome.is_ok() => {
                let g = self
                    .groups
                    .entry(id.to_string())
                    .or_insert_with(|| Group::new(id, now));
                if g.state != GroupState::Dead {
                    g.offsets.extend(offsets);
                }
            }
            Change::RemoveOffsets { keys, then_group } if outcome.is_ok() => {
                let Some(g) = self.groups.get_mut(id) else {
                    return;
                };
                for k in &keys {
                    g.offsets.remove(k);
                }
                let unused =
                    g.state == GroupState::Empty && g.offsets.is_empty() && g.pending.is_empty();
                if then_group && unused {
                    self.groups.remove(id);
                }
            }
            Change::DeleteGroup if outcome.is_ok() => {
                self.groups.remove(id);
            }
            Change::Commit(_) | Change::RemoveOffsets { .. } | Change::DeleteGroup => {}
        }
    }

    /// The leader's assignment was written (or not). Applies only if the group is still
    /// completing that generation; otherwise a rebalance already answered the members.
    fn finish_sync(
        &mut self,
        id: &str,
        generation: i32,
        assignment: BTreeMap<String, Bytes>,
        outcome: Result<(), i16>,
        now: i64,
    ) {
        let Some(g) = self.groups.get_mut(id) else {
            return;
        };
        if g.state != GroupState::CompletingRebalance || g.generation != generation {
            return;
        }
        match outcome {
            Ok(()) => {
                g.transition(GroupState::Stable, now);
                let (pt, pn) = (g.protocol_type.clone(), g.protocol.clone());
                for m in g.members.values_mut() {
                    m.assignment = assignment.get(&m.id).cloned().unwrap_or_default();
                    m.touch(now);
                    m.complete_sync(SyncResult {
                        error: 0,
                        protocol_type: pt.clone(),
                        protocol_name: pn.clone(),
                        assignment: m.assignment.clone(),
                    });
                }
            }
            Err(code) => {
                tracing::warn!(group = %id, generation, code, "storing the assignment failed; rebalancing");
                for m in g.members.values_mut() {
                    m.assignment = Bytes::new();
                    if m.sync_waiter.is_some() {
                        m.touch(now);
                    }
                    m.complete_sync(SyncResult::error(code));
                }
                self.prepare_rebalance(id, now);
            }
        }
    }

    /// The static member's new id was written (or not): replace the old id, or answer the
    /// JoinGroup with the error and keep the old id.
    fn finish_static_replace(
        &mut self,
        id: &str,
        r: StaticReplace,
        outcome: Result<(), i16>,
        now: i64,
    ) {
        let Some(g) = self.groups.get_mut(id) else {
            let _ = r
                .reply
                .send(JoinResult::error(E::UnknownMemberId.code(), ""));
            return;
        };
        if let Err(code) = outcome {
            tracing::warn!(group = %id, member = %r.new_id, code, "persisting a static member's new id failed; keeping the old id");
            let _ = r.reply.send(JoinResult {
                error: code,
                generation: g.generation,
                protocol_type: g.protocol_type.clone(),
                protocol_name: g.protocol.clone(),
                leader: g.leader.clone().unwrap_or_default(),
                ..JoinResult::default()
            });
            return;
        }
        let same_member = g
            .members
            .get(&r.old_id)
            .is_some_and(|m| m.instance_id.is_some() && m.instance_id == r.join.instance_id);
        if g.state != GroupState::Stable || !same_member {
            let _ = r
                .reply
                .send(JoinResult::error(E::UnknownMemberId.code(), ""));
            return;
        }
        replace_static(g, &r.old_id, &r.new_id, &r.join, now);
        let mut result = g.join_result(&r.new_id);
        if g.leader.as_deref() == Some(r.new_id.as_str()) {
            // KIP-814: a v9 leader is told it leads but must not reassign; older leaders get
            // no member list, so they do not run the assignor.
            if r.join.version >= 9 {
                result.skip_assignment = true;
            } else {
                result.members.clear();
            }
        }
        let _ = r.reply.send(result);
    }
}
