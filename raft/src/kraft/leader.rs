//! The leader: becoming leader (LeaderChange entry at the start of the epoch, BeginQuorumEpoch
//! to every voter), serving Fetch (records, a diverging epoch, or an error), parking empty
//! fetches, the high watermark, check-quorum and resignation. BeginQuorumEpoch is resent every
//! `fetch.timeout / 2` to voters that have not acknowledged it or have not fetched for a fetch
//! timeout; a voter stuck in a higher epoch (after a failed election) answers with that epoch,
//! and the stale leader steps down so that a new election can include it.
//!
//! High watermark (Kafka `LeaderState.maybeUpdateHighWatermark`): sort the voters' durable end
//! offsets (the leader's flushed offset, the others' last accepted fetch offsets) descending and
//! take index `voters / 2`; accept it only above the epoch start offset and above the current
//! value, so it needs a current-epoch entry on a majority and never goes back.

use std::collections::BTreeMap;

use super::core::KRaft;
use super::state::{LeaderState, ParkedFetch, ReplicaProgress, Role};
use super::types::{
    Command, Entry, FetchError, FetchRequest, FetchResponse, FetchResult, LeaderChange, Message,
    NodeId, Record,
};

impl KRaft {
    pub(super) fn become_leader(&mut self, granting: Vec<NodeId>, out: &mut Vec<Command>) {
        let me = self.cfg.node_id;
        self.set_election(self.election.epoch, me, me, out);
        self.election_retries = 0;
        let replicas: BTreeMap<NodeId, ReplicaProgress> = self
            .voters()
            .iter()
            .filter(|&&v| v != me)
            .map(|&v| {
                let p = ReplicaProgress {
                    end_offset: -1,
                    last_fetch_ms: None,
                    acknowledged: false,
                };
                (v, p)
            })
            .collect();
        self.role = Role::Leader(LeaderState {
            epoch_start_offset: self.log.end_offset(),
            high_watermark: None,
            replicas,
            parked: BTreeMap::new(),
            next_begin_resend_ms: self.now + self.cfg.fetch_timeout_ms / 2,
            since_ms: self.now,
        });
        let change = LeaderChange {
            leader_id: me,
            voters: self.voters().to_vec(),
            granting_voters: granting,
        };
        let entry = Entry {
            epoch: self.election.epoch,
            record: Record::LeaderChange(change),
        };
        let begin = Message::BeginQuorumEpoch {
            epoch: self.election.epoch,
            leader: me,
        };
        self.send_to_voters(begin, out);
        self.leader_append(vec![entry], out);
    }

    /// Appends entries of the current epoch, asks for a flush and wakes parked fetches.
    pub(super) fn leader_append(&mut self, entries: Vec<Entry>, out: &mut Vec<Command>) {
        if entries.is_empty() {
            return;
        }
        let base_offset = self.log.end_offset();
        self.log.append(&entries);
        out.push(Command::AppendBatch {
            base_offset,
            entries,
        });
        out.push(Command::Flush);
        self.answer_parked(false, out);
        // A one-voter quorum commits on its own flush; others need fetches.
    }

    /// Check-quorum, BeginQuorumEpoch resends and expired parked fetches.
    pub(super) fn leader_tick(&mut self, out: &mut Vec<Command>) {
        let now = self.now;
        let Role::Leader(ls) = &mut self.role else {
            return;
        };
        let window = self.cfg.fetch_timeout_ms * 3 / 2;
        let heard = |p: &ReplicaProgress| p.last_fetch_ms.unwrap_or(ls.since_ms) + window > now;
        // A leader that removed itself (KIP-853) no longer counts itself.
        let me = self.cfg.node_id;
        let voters = self.log.voters();
        let live = voters
            .iter()
            .filter(|&&v| v == me || ls.replicas.get(&v).is_some_and(heard))
            .count();
        if live < voters.len() / 2 + 1 {
            self.resign(out);
            return;
        }
        if now >= ls.next_begin_resend_ms {
            ls.next_begin_resend_ms = now + self.cfg.fetch_timeout_ms / 2;
            let epoch = self.election.epoch;
            let fetch_timeout = self.cfg.fetch_timeout_ms;
            for (&id, p) in &ls.replicas {
                // Unacknowledged, or silent for a fetch timeout (it may sit in a higher epoch
                // after a failed election; its response then makes us step down).
                let silent = p.last_fetch_ms.is_none_or(|t| t + fetch_timeout <= now);
                if (!p.acknowledged || silent) && self.log.voters().contains(&id) {
                    let msg = Message::BeginQuorumEpoch {
                        epoch,
                        leader: self.cfg.node_id,
                    };
                    out.push(Command::Send { to: id, msg });
                }
            }
        }
        self.answer_parked(true, out);
    }

    /// Answers parked fetches that now have data, or (if `expired_only`) whose wait is over.
    fn answer_parked(&mut self, expired_only: bool, out: &mut Vec<Command>) {
        let now = self.now;
        let end = self.log.end_offset();
        let Role::Leader(ls) = &mut self.role else {
            return;
        };
        let ready: Vec<NodeId> = ls
            .parked
            .iter()
            .filter(|(_, p)| now >= p.deadline_ms || (!expired_only && p.fetch_offset < end))
            .map(|(&id, _)| id)
            .collect();
        let hw = ls.high_watermark;
        let taken: Vec<(NodeId, ParkedFetch)> = ready
            .into_iter()
            .filter_map(|id| ls.parked.remove(&id).map(|p| (id, p)))
            .collect();
        for (id, p) in taken {
            let result = self.records_from(p.fetch_offset, hw);
            out.push(self.fetch_reply(id, p.seq, result));
        }
    }

    /// Wakes every parked fetch (the high watermark moved).
    fn answer_all_parked(&mut self, out: &mut Vec<Command>) {
        if let Role::Leader(ls) = &mut self.role {
            for p in ls.parked.values_mut() {
                p.deadline_ms = 0;
            }
        }
        self.answer_parked(true, out);
    }

    fn records_from(&self, offset: i64, high_watermark: Option<i64>) -> FetchResult {
        FetchResult::Records {
            base_offset: offset,
            entries: self.log.slice(offset, self.cfg.fetch_max_entries),
            high_watermark,
        }
    }

    fn fetch_reply(&self, to: NodeId, seq: u64, result: FetchResult) -> Command {
        let msg = Message::FetchResponse(FetchResponse {
            seq,
            epoch: self.election.epoch,
            leader: self.leader(),
            result,
        });
        Command::Send { to, msg }
    }

    /// Fetch from a follower or observer; non-leaders answer with an error and their view.
    pub(super) fn on_fetch_request(
        &mut self,
        from: NodeId,
        req: FetchRequest,
        out: &mut Vec<Command>,
    ) {
        let valid = req.fetch_offset >= 0 && req.last_fetched_epoch <= req.epoch;
        if let Some(e) = self.fetch_error(req.epoch, valid && from == req.replica) {
            out.push(self.fetch_reply(from, req.seq, FetchResult::Error(e)));
            return;
        }
        if let Some(id) = self.snapshot_for_fetch(&req) {
            // Below our log start: the fetcher must load the snapshot first.
            self.record_fetch(from, None);
            out.push(self.fetch_reply(from, req.seq, FetchResult::Snapshot { id }));
            return;
        }
        let (div_epoch, div_end) = self.log.end_offset_for_epoch(req.last_fetched_epoch);
        if div_epoch != req.last_fetched_epoch || div_end < req.fetch_offset {
            // Diverging: do not record this replica's offset (it may hold entries we do not).
            let result = FetchResult::Diverging {
                epoch: div_epoch,
                end_offset: div_end,
            };
            out.push(self.fetch_reply(from, req.seq, result));
            return;
        }
        self.record_fetch(from, Some(req.fetch_offset));
        self.maybe_advance_leader_hw(out);
        let Role::Leader(ls) = &mut self.role else {
            return;
        };
        // Park an empty fetch only when the fetcher already knows our high watermark.
        let knows_hw = ls.high_watermark.is_none_or(|hw| req.high_watermark >= hw);
        if req.fetch_offset >= self.log.end_offset()
            && knows_hw
            && ls.parked.len() <= self.cfg.max_observers + self.log.voters().len()
        {
            let parked = ParkedFetch {
                seq: req.seq,
                fetch_offset: req.fetch_offset,
                deadline_ms: self.now + self.cfg.fetch_max_wait_ms,
            };
            ls.parked.insert(from, parked);
            return;
        }
        let hw = ls.high_watermark;
        let result = self.records_from(req.fetch_offset, hw);
        out.push(self.fetch_reply(from, req.seq, result));
    }

    /// Why a Fetch or FetchSnapshot in `epoch` cannot be served here, if it cannot.
    pub(super) fn fetch_error(&self, epoch: i32, valid: bool) -> Option<FetchError> {
        let ours = self.election.epoch;
        if !valid {
            Some(FetchError::InvalidRequest)
        } else if epoch < ours {
            Some(FetchError::FencedLeaderEpoch)
        } else if epoch > ours {
            Some(FetchError::UnknownLeaderEpoch)
        } else if matches!(self.role, Role::Resigned { .. }) {
            Some(FetchError::ShuttingDown)
        } else if !matches!(self.role, Role::Leader(_)) {
            Some(FetchError::NotLeader)
        } else {
            None
        }
    }

    /// Notes a successful fetch (check-quorum); `offset` is its durable end offset, if known.
    pub(super) fn record_fetch(&mut self, from: NodeId, offset: Option<i64>) {
        let now = self.now;
        let voter = self.is_voter(from);
        let Role::Leader(ls) = &mut self.role else {
            return;
        };
        // Replicas tracked besides the voters (the leader tracks every voter but itself).
        let voters = self.log.voters();
        let others = voters.len() - usize::from(voters.contains(&self.cfg.node_id));
        let observers = ls.replicas.len().saturating_sub(others);
        if !voter && !ls.replicas.contains_key(&from) && observers >= self.cfg.max_observers {
            return;
        }
        let p = ls.replicas.entry(from).or_insert(ReplicaProgress {
            end_offset: -1,
            last_fetch_ms: None,
            acknowledged: false,
        });
        if let Some(offset) = offset {
            p.end_offset = offset;
        }
        p.last_fetch_ms = Some(now);
        p.acknowledged = true;
    }

    pub(super) fn on_begin_response(
        &mut self,
        from: NodeId,
        epoch: i32,
        leader: Option<NodeId>,
        out: &mut Vec<Command>,
    ) {
        if epoch != self.election.epoch {
            if self.is_voter(from) {
                self.observe_epoch(epoch, leader, out);
            }
            return;
        }
        if let Role::Leader(ls) = &mut self.role {
            if let Some(p) = ls.replicas.get_mut(&from) {
                p.acknowledged = true;
            }
        }
    }

    /// Recomputes the high watermark from the voters' durable offsets.
    pub(super) fn maybe_advance_leader_hw(&mut self, out: &mut Vec<Command>) {
        let me = self.cfg.node_id;
        let Role::Leader(ls) = &mut self.role else {
            return;
        };
        let voters = self.log.voters();
        let mut offsets: Vec<i64> = voters
            .iter()
            .map(|v| {
                if *v == me {
                    self.flushed
                } else {
                    ls.replicas.get(v).map_or(-1, |p| p.end_offset)
                }
            })
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = offsets[voters.len() / 2];
        if candidate <= ls.epoch_start_offset || ls.high_watermark.is_some_and(|h| candidate <= h) {
            return;
        }
        ls.high_watermark = Some(candidate);
        self.raise_high_watermark(candidate, out);
        self.answer_all_parked(out);
        self.resign_if_removed(out);
    }

    /// Steps down: Resigned in this epoch, EndQuorumEpoch to the other voters naming them by
    /// fetch offset, highest first. A no-op for other roles.
    pub(super) fn resign(&mut self, out: &mut Vec<Command>) {
        let Role::Leader(ls) = &self.role else {
            return;
        };
        let mut others: Vec<(i64, NodeId)> = ls
            .replicas
            .iter()
            .filter(|(id, _)| self.is_voter(**id))
            .map(|(&id, p)| (p.end_offset, id))
            .collect();
        others.sort_unstable_by(|a, b| b.cmp(a));
        let msg = Message::EndQuorumEpoch {
            epoch: self.election.epoch,
            leader: self.cfg.node_id,
            preferred_successors: others.into_iter().map(|(_, id)| id).collect(),
        };
        self.send_to_voters(msg, out);
        self.role = Role::Resigned {
            deadline_ms: self.now + self.election_timeout(),
        };
    }
}
