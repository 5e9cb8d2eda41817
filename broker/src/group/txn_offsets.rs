//! Transactional offset commits (TxnOffsetCommit): offsets written inside a producer's
//! transaction are held per `__consumer_offsets` partition and producer id, invisible to
//! OffsetFetch (which answers UNSTABLE_OFFSET_COMMIT to a `require_stable` fetch meanwhile),
//! and become committed offsets only when the COMMIT marker lands on that partition; an ABORT
//! drops them. Replay after a restart or failover follows the same rule from the log's
//! transactional batches and markers.

use super::model::Group;
use super::records::OffsetValue;
use super::Groups;
use kafka_protocol::error::ResponseError as E;

/// At most this many producers may hold uncommitted offsets at once (the map is keyed by client
/// input); more get COORDINATOR_NOT_AVAILABLE until transactions end.
pub const MAX_PENDING_PRODUCERS: usize = 100_000;

/// One pending offset: group, (topic, partition), value.
pub type PendingOffset = (String, (String, i32), OffsetValue);

impl Groups {
    /// TxnOffsetCommit's checks of the committer: a known member (or none) and its generation
    /// (when given); a group that does not exist yet is fine.
    pub fn check_txn_committer(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        producer_id: i64,
    ) -> Result<(), E> {
        if group.is_empty() {
            return Err(E::InvalidGroupId);
        }
        let partition = self.partition_for(group);
        if self.txn_offsets.len() >= MAX_PENDING_PRODUCERS
            && !self.txn_offsets.contains_key(&(partition, producer_id))
        {
            return Err(E::CoordinatorNotAvailable);
        }
        let Some(g) = self.groups.get(group) else {
            return Ok(());
        };
        if !member_id.is_empty() && !g.members.contains_key(member_id) {
            return Err(E::UnknownMemberId);
        }
        if generation >= 0 && generation != g.generation {
            return Err(E::IllegalGeneration);
        }
        Ok(())
    }

    /// Holds `offsets` of `group` for `producer_id` until its transaction ends.
    pub fn stage_txn_offsets(
        &mut self,
        producer_id: i64,
        group: &str,
        offsets: Vec<((String, i32), OffsetValue)>,
    ) {
        let partition = self.partition_for(group);
        let held = self
            .txn_offsets
            .entry((partition, producer_id))
            .or_default();
        for (tp, v) in offsets {
            held.retain(|(g, t, _)| !(g == group && *t == tp));
            held.push((group.to_string(), tp, v));
        }
    }

    /// The marker of `producer_id`'s transaction reached `__consumer_offsets` partition
    /// `partition`: its offsets there are committed (COMMIT) or dropped (ABORT).
    pub fn complete_txn_offsets(&mut self, producer_id: i64, partition: i32, commit: bool) {
        let Some(held) = self.txn_offsets.remove(&(partition, producer_id)) else {
            return;
        };
        if !commit {
            return;
        }
        for (group, tp, v) in held {
            let g = self
                .groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group, v.commit_ts));
            g.offsets.insert(tp, v);
        }
    }

    /// Whether `group` has uncommitted transactional offsets for `topic`-`partition`.
    pub fn has_pending_txn_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        let p = self.partition_for(group);
        self.txn_offsets
            .range((p, i64::MIN)..=(p, i64::MAX))
            .any(|(_, held)| {
                held.iter()
                    .any(|(g, (t, q), _)| g == group && t == topic && *q == partition)
            })
    }

    /// Drops the pending offsets of partition `p` (unloaded).
    pub(crate) fn drop_txn_offsets(&mut self, p: i32) {
        self.txn_offsets.retain(|(partition, _), _| *partition != p);
    }
}
