//! KIP-853 voter changes on the leader (Raft's single-server membership changes): a voter is
//! added or removed by appending a Voters entry holding the whole new set, which every node
//! obeys as soon as it holds the entry, committed or not ([`super::log::LogView::voters`]).
//! Safety needs one change at a time, made only once the leader has committed an entry of its
//! own epoch, so the leader refuses a change while the previous one is uncommitted or before
//! its epoch's first commit (Kafka answers REQUEST_TIMED_OUT), refuses to add a node that is
//! not fetching and caught up to the high watermark, and refuses duplicates, unknown voters and
//! removing the last one. A leader that removed itself keeps leading until the change commits,
//! then resigns (the new voters elect a successor).

use super::core::KRaft;
use super::state::Role;
use super::types::{Command, Entry, KRaftError, NodeId, Record, Voter};

/// One voter change: a voter to add (with its directory id and endpoints, which every node
/// learns from the Voters entry), or the id of one to remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoterChange {
    Add(Voter),
    Remove(NodeId),
}

impl KRaft {
    /// Appends the voter set after `change`; returns the offset of its Voters entry (the change
    /// is done once the high watermark passes it).
    pub(super) fn change_voters(
        &mut self,
        change: VoterChange,
        out: &mut Vec<Command>,
    ) -> Result<i64, KRaftError> {
        let Role::Leader(ls) = &self.role else {
            return Err(KRaftError::NotLeader {
                epoch: self.election.epoch,
                leader: self.leader(),
            });
        };
        let Some(hw) = ls.high_watermark else {
            return Err(KRaftError::VoterChangePending);
        };
        if self.log.last_voter_change().is_some_and(|o| o >= hw) {
            return Err(KRaftError::VoterChangePending);
        }
        let mut next = self.log.voter_records().to_vec();
        match change {
            VoterChange::Add(voter) => {
                let id = voter.id;
                if next.iter().any(|v| v.id == id) {
                    return Err(KRaftError::DuplicateVoter(id));
                }
                let window = self.cfg.fetch_timeout_ms;
                let caught_up = ls.replicas.get(&id).is_some_and(|p| {
                    p.end_offset >= hw && p.last_fetch_ms.is_some_and(|t| t + window > self.now)
                });
                if !caught_up {
                    return Err(KRaftError::VoterNotCaughtUp(id));
                }
                next.push(voter);
                next.sort_unstable_by_key(|v| v.id);
            }
            VoterChange::Remove(id) => {
                if !next.iter().any(|v| v.id == id) {
                    return Err(KRaftError::VoterNotFound(id));
                }
                next.retain(|v| v.id != id);
                if next.is_empty() {
                    return Err(KRaftError::LastVoter(id));
                }
            }
        }
        let offset = self.log.end_offset();
        let entry = Entry {
            epoch: self.election.epoch,
            record: Record::Voters(next),
        };
        self.leader_append(vec![entry], out);
        // A removal can shrink the majority: what is durable may commit at once.
        self.maybe_advance_leader_hw(out);
        Ok(offset)
    }

    /// Whether this node may start an election: a voter may; so may a node whose latest voter
    /// set leaves it out while that change is not known to be committed. Its log may be the
    /// freshest (a leader that removed itself and lost leadership before the removal
    /// committed), and without it the voters could be unable to elect anyone; elected, it
    /// leads without counting itself and resigns once the change commits, as Raft allows. A
    /// removed node's elections need a majority of its (new) set and a fresh log, so they stay
    /// safe; pre-votes keep them from disturbing a healthy quorum.
    pub(super) fn may_campaign(&self) -> bool {
        let me = self.cfg.node_id;
        self.is_voter(me)
            || self
                .log
                .last_voter_change()
                .is_some_and(|o| o >= self.high_watermark)
    }

    /// A leader outside the voter set resigns once that set is committed.
    pub(super) fn resign_if_removed(&mut self, out: &mut Vec<Command>) {
        let me = self.cfg.node_id;
        let committed = self
            .log
            .last_voter_change()
            .is_some_and(|o| o < self.high_watermark);
        if matches!(self.role, Role::Leader(_)) && !self.is_voter(me) && committed {
            self.resign(out);
        }
    }
}
