//! Elections: election timers of the non-leader roles, KIP-996 pre-votes (Prospective),
//! binding votes (Candidate), the vote-granting rules, exponential backoff after a lost
//! election, and BeginQuorumEpoch / EndQuorumEpoch on the receiving side.
//!
//! Granting a binding vote (Kafka `*State.canGrantVote`): we must be Unattached (or Prospective
//! without a known leader) in the request's epoch, must not have voted for anyone else in it,
//! and the candidate's (last epoch, end offset) must be at least ours. The vote is persisted
//! (`WriteQuorumState`) before the response is sent. A pre-vote changes nothing durable: it is
//! granted on log freshness alone, except by a leader or by a follower that has fetched from
//! its leader successfully.

use std::collections::BTreeSet;

use super::core::KRaft;
use super::state::{ElectionRound, Role, RoleKind};
use super::types::{Command, Message, NodeId, VoteRequest, VoteResponse};

impl KRaft {
    /// Timers of Unattached, Prospective, Candidate and Resigned.
    pub(super) fn election_tick(&mut self, out: &mut Vec<Command>) {
        let now = self.now;
        let voter = self.may_campaign();
        match &self.role {
            Role::Unattached { deadline_ms } if now >= *deadline_ms => {
                if voter {
                    self.start_prospective(out);
                } else {
                    self.probe_for_leader(out);
                }
            }
            Role::Prospective(round) if now >= round.deadline_ms => self.prospective_lost(out),
            Role::Candidate {
                backoff_until_ms: Some(until),
                ..
            } if now >= *until => self.campaign_or_stand_down(out),
            Role::Candidate {
                round,
                backoff_until_ms: None,
            } if now >= round.deadline_ms => self.candidate_lost(),
            Role::Resigned { deadline_ms } if now >= *deadline_ms => {
                self.campaign_or_stand_down(out)
            }
            _ => {}
        }
    }

    /// Prospective when it may campaign, else (removed from the voters, KIP-853) Unattached.
    fn campaign_or_stand_down(&mut self, out: &mut Vec<Command>) {
        if self.may_campaign() {
            self.start_prospective(out);
        } else {
            self.become_unattached(self.election.epoch, out);
        }
    }

    fn new_round(&self) -> ElectionRound {
        // A node campaigning outside its voter set (see `may_campaign`) does not vote for itself.
        let me = self.cfg.node_id;
        let granted = if self.is_voter(me) {
            BTreeSet::from([me])
        } else {
            BTreeSet::new()
        };
        ElectionRound {
            granted,
            rejected: BTreeSet::new(),
            deadline_ms: self.now + self.election_timeout(),
        }
    }

    /// Prospective in the current epoch: ask every other voter for a pre-vote for epoch + 1.
    pub(super) fn start_prospective(&mut self, out: &mut Vec<Command>) {
        self.role = Role::Prospective(self.new_round());
        let req = self.vote_request(self.election.epoch + 1, true);
        self.send_to_voters(Message::Vote(req), out);
        self.maybe_win_pre_vote(out);
    }

    /// Candidate in `epoch` (votes for itself, persisted first), asking every other voter.
    pub(super) fn start_candidate(&mut self, epoch: i32, out: &mut Vec<Command>) {
        self.set_election(epoch, -1, self.cfg.node_id, out);
        self.role = Role::Candidate {
            round: self.new_round(),
            backoff_until_ms: None,
        };
        let req = self.vote_request(epoch, false);
        self.send_to_voters(Message::Vote(req), out);
        self.maybe_win_vote(out);
    }

    fn vote_request(&self, epoch: i32, pre_vote: bool) -> VoteRequest {
        VoteRequest {
            epoch,
            candidate: self.cfg.node_id,
            last_epoch: self.log.last_epoch(),
            end_offset: self.log.end_offset(),
            pre_vote,
        }
    }

    pub(super) fn send_to_voters(&self, msg: Message, out: &mut Vec<Command>) {
        for &v in self.voters() {
            if v != self.cfg.node_id {
                out.push(Command::Send {
                    to: v,
                    msg: msg.clone(),
                });
            }
        }
    }

    fn maybe_win_pre_vote(&mut self, out: &mut Vec<Command>) {
        if let Role::Prospective(round) = &self.role {
            if round.granted.len() >= self.majority() {
                self.start_candidate(self.election.epoch + 1, out);
            } else if round.rejected.len() > self.voters().len() - self.majority() {
                self.prospective_lost(out);
            }
        }
    }

    fn maybe_win_vote(&mut self, out: &mut Vec<Command>) {
        if let Role::Candidate {
            round,
            backoff_until_ms: None,
        } = &self.role
        {
            if round.granted.len() >= self.majority() {
                let granting: Vec<NodeId> = round.granted.iter().copied().collect();
                self.become_leader(granting, out);
            } else if round.rejected.len() > self.voters().len() - self.majority() {
                self.candidate_lost();
            }
        }
    }

    /// The pre-vote failed: back to following the known leader, or Unattached.
    fn prospective_lost(&mut self, out: &mut Vec<Command>) {
        let leader = self.election.leader_id;
        if leader >= 0 && leader != self.cfg.node_id {
            self.become_follower(self.election.epoch, leader, out);
        } else {
            self.role = Role::Unattached {
                deadline_ms: self.now + self.election_timeout(),
            };
        }
    }

    /// The election failed: wait `min(100 ms x rand[0, 2^retries), max)`, then pre-vote again.
    fn candidate_lost(&mut self) {
        self.election_retries = self.election_retries.saturating_add(1);
        let span = 1u64 << self.election_retries.min(20);
        let backoff = (100 * (self.rng.next_u64() % span)).min(self.cfg.election_backoff_max_ms);
        if let Role::Candidate {
            backoff_until_ms, ..
        } = &mut self.role
        {
            *backoff_until_ms = Some(self.now + backoff);
        }
    }

    pub(super) fn on_vote_request(
        &mut self,
        from: NodeId,
        req: VoteRequest,
        out: &mut Vec<Command>,
    ) {
        // The candidate need not be a voter in our view (KIP-853): a voter added by an entry we
        // have not fetched yet must still be able to win, as Raft's membership changes require.
        let valid = from == req.candidate
            && req.end_offset >= 0
            && req.last_epoch >= 0
            && req.last_epoch < req.epoch;
        let granted = if !valid {
            false
        } else if req.pre_vote {
            self.can_grant_pre_vote(&req)
        } else {
            if req.epoch > self.election.epoch {
                self.become_unattached(req.epoch, out);
            }
            self.grant_vote(&req, out)
        };
        let resp = VoteResponse {
            epoch: self.election.epoch,
            leader: if granted { None } else { self.leader() },
            granted,
            pre_vote: req.pre_vote,
        };
        out.push(Command::Send {
            to: from,
            msg: Message::VoteResponse(resp),
        });
    }

    fn can_grant_pre_vote(&self, req: &VoteRequest) -> bool {
        if req.epoch <= self.election.epoch
            || !self.log.is_up_to_date(req.last_epoch, req.end_offset)
        {
            return false;
        }
        match &self.role {
            Role::Leader(_) => false,
            Role::Follower(f) => !f.fetched,
            _ => true,
        }
    }

    /// Decides a binding vote in our (already adjusted) epoch, persisting it before answering.
    fn grant_vote(&mut self, req: &VoteRequest, out: &mut Vec<Command>) -> bool {
        if req.epoch != self.election.epoch || self.election.leader_id >= 0 {
            return false;
        }
        let voted = self.election.voted_id;
        let state_ok = match self.role.kind() {
            RoleKind::Unattached => true,
            RoleKind::Prospective => voted != self.cfg.node_id,
            _ => false,
        };
        if !state_ok
            || (voted >= 0 && voted != req.candidate)
            || !self.log.is_up_to_date(req.last_epoch, req.end_offset)
        {
            return false;
        }
        self.set_election(self.election.epoch, -1, req.candidate, out);
        self.role = Role::Unattached {
            deadline_ms: self.now + self.election_timeout(),
        };
        true
    }

    pub(super) fn on_vote_response(
        &mut self,
        from: NodeId,
        resp: VoteResponse,
        out: &mut Vec<Command>,
    ) {
        if !self.is_voter(from) {
            return;
        }
        if resp.epoch > self.election.epoch {
            self.observe_epoch(resp.epoch, resp.leader, out);
            return;
        }
        let epoch = self.election.epoch;
        match &mut self.role {
            Role::Prospective(round) if resp.pre_vote => {
                if resp.granted {
                    round.granted.insert(from);
                } else if resp.epoch == epoch && resp.leader.is_some() {
                    self.observe_epoch(resp.epoch, resp.leader, out);
                    return;
                } else {
                    round.rejected.insert(from);
                }
                self.maybe_win_pre_vote(out);
            }
            Role::Candidate {
                round,
                backoff_until_ms: None,
            } if !resp.pre_vote && resp.epoch == epoch => {
                if resp.granted {
                    round.granted.insert(from);
                } else {
                    round.rejected.insert(from);
                }
                self.maybe_win_vote(out);
            }
            _ => {
                self.observe_epoch(resp.epoch, resp.leader, out);
            }
        }
    }

    pub(super) fn on_begin_quorum_epoch(
        &mut self,
        from: NodeId,
        epoch: i32,
        leader: NodeId,
        out: &mut Vec<Command>,
    ) {
        // A leader outside our voter set is still obeyed (it may have been added by an entry we
        // have not fetched yet).
        if from != leader {
            return;
        }
        self.observe_epoch(epoch, Some(leader), out);
        // Answer even a stale leader: our higher epoch in the response makes it step down
        // (a voter that raised its epoch in a failed election rejoins this way).
        let msg = Message::BeginQuorumEpochResponse {
            epoch: self.election.epoch,
            leader: self.leader(),
        };
        out.push(Command::Send { to: from, msg });
    }

    /// A resigning leader: its followers stop trusting it and time out after a delay that
    /// depends on their position among the preferred successors (Kafka
    /// `endEpochElectionBackoff`): 0 for the first, `(max >> (n-1)) << (p-1)` for position p,
    /// `max` if unlisted.
    pub(super) fn on_end_quorum_epoch(
        &mut self,
        epoch: i32,
        leader: NodeId,
        successors: &[NodeId],
        out: &mut Vec<Command>,
    ) {
        self.observe_epoch(epoch, Some(leader), out);
        let max = self.cfg.election_backoff_max_ms;
        let n = successors.len() as u32;
        let delay = match successors.iter().position(|&s| s == self.cfg.node_id) {
            Some(0) => 0,
            Some(p) => (max >> (n - 1).min(63)) << (p as u32 - 1).min(63),
            None => max,
        };
        let now = self.now;
        if let Role::Follower(f) = &mut self.role {
            if epoch == self.election.epoch && f.leader == leader {
                f.fetched = false;
                f.fetch_deadline_ms = f.fetch_deadline_ms.min(now + delay);
            }
        }
    }
}
