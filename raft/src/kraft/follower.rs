//! Followers and observers: pull replication from the leader. A fetch carries the log end
//! offset and last epoch; a voter sends its next fetch only once everything it appended is
//! flushed, so its fetch offset counts as durable on the leader. Responses bring entries (to
//! append), a diverging epoch (to truncate to, never below the high watermark), a snapshot id
//! (then the `snapshot` module pulls it with FetchSnapshot), or an error with the responder's
//! view of the epoch. Followers learn the high watermark as `min(leader's, own end offset)`. A fetch timeout turns a voter Prospective; an observer goes
//! back to probing voters for the leader.

use super::core::KRaft;
use super::state::Role;
use super::types::{
    Command, FetchError, FetchRequest, FetchResponse, FetchResult, KRaftError, Message, NodeId,
};

impl KRaft {
    pub(super) fn follower_tick(&mut self, out: &mut Vec<Command>) {
        let now = self.now;
        let timeout = self.cfg.request_timeout_ms;
        let Role::Follower(f) = &mut self.role else {
            return;
        };
        if now >= f.fetch_deadline_ms {
            if self.may_campaign() {
                self.start_prospective(out);
            } else {
                let epoch = self.election.epoch;
                self.become_unattached(epoch, out);
            }
            return;
        }
        if f.in_flight.is_some_and(|(_, sent)| now >= sent + timeout) {
            f.in_flight = None;
        }
        self.maybe_send_fetch(out);
    }

    fn fetch_request(&mut self) -> FetchRequest {
        self.fetch_seq += 1;
        FetchRequest {
            seq: self.fetch_seq,
            epoch: self.election.epoch,
            replica: self.cfg.node_id,
            fetch_offset: self.log.end_offset(),
            last_fetched_epoch: self.log.last_epoch(),
            high_watermark: self.high_watermark,
        }
    }

    /// Sends the next fetch if none is outstanding, the log is flushed and no backoff applies.
    pub(super) fn maybe_send_fetch(&mut self, out: &mut Vec<Command>) {
        let now = self.now;
        let ready = match &self.role {
            Role::Follower(f) => {
                f.in_flight.is_none()
                    && now >= f.next_fetch_ms
                    && self.flushed >= self.log.end_offset()
            }
            _ => false,
        };
        if !ready {
            return;
        }
        let (seq, msg) = match self.snapshot_request() {
            Some(r) => r,
            None => {
                let req = self.fetch_request();
                (req.seq, Message::Fetch(req))
            }
        };
        if let Role::Follower(f) = &mut self.role {
            f.in_flight = Some((seq, now));
            out.push(Command::Send { to: f.leader, msg });
        }
    }

    /// An observer without a leader asks a random voter (a bootstrap server when it knows no
    /// voter: a node joining a dynamic quorum); the answer names the leader.
    pub(super) fn probe_for_leader(&mut self, out: &mut Vec<Command>) {
        let me = self.cfg.node_id;
        let mut targets: Vec<NodeId> = self.voters().iter().copied().filter(|v| *v != me).collect();
        if targets.is_empty() {
            targets.clone_from(&self.cfg.bootstrap);
        }
        if let Some(n) = std::num::NonZeroU64::new(targets.len() as u64) {
            let to = targets[(self.rng.next_u64() % n) as usize];
            let req = self.fetch_request();
            out.push(Command::Send {
                to,
                msg: Message::Fetch(req),
            });
        }
        let epoch = self.election.epoch;
        self.become_unattached(epoch, out);
    }

    pub(super) fn on_fetch_response(
        &mut self,
        from: NodeId,
        resp: FetchResponse,
        out: &mut Vec<Command>,
    ) -> Result<(), KRaftError> {
        if self.observe_epoch(resp.epoch, resp.leader, out) || resp.epoch != self.election.epoch {
            return Ok(());
        }
        let now = self.now;
        let backoff = self.cfg.retry_backoff_ms;
        let fetch_timeout = self.cfg.fetch_timeout_ms;
        let Role::Follower(f) = &mut self.role else {
            return Ok(());
        };
        if f.leader != from || f.in_flight.map(|(seq, _)| seq) != Some(resp.seq) {
            return Ok(()); // stale, duplicated or from someone else
        }
        f.in_flight = None;
        match resp.result {
            FetchResult::Error(e) => {
                f.next_fetch_ms = now + backoff;
                if e == FetchError::ShuttingDown {
                    f.fetched = false;
                }
            }
            FetchResult::Snapshot { id } => {
                f.fetched = true;
                f.fetch_deadline_ms = now + fetch_timeout;
                self.start_snapshot_fetch(id);
            }
            FetchResult::Diverging { epoch, end_offset } => {
                f.fetched = true;
                f.fetch_deadline_ms = now + fetch_timeout;
                self.truncate_diverging(epoch, end_offset, out)?;
            }
            FetchResult::Records {
                base_offset,
                entries,
                high_watermark,
            } => {
                f.fetched = true;
                f.fetch_deadline_ms = now + fetch_timeout;
                if base_offset == self.log.end_offset() && !entries.is_empty() {
                    self.log.append(&entries);
                    out.push(Command::AppendBatch {
                        base_offset,
                        entries,
                    });
                    out.push(Command::Flush);
                }
                if let Some(hw) = high_watermark {
                    self.raise_high_watermark(hw.min(self.log.end_offset()), out);
                }
            }
        }
        self.maybe_send_fetch(out);
        Ok(())
    }

    /// Truncates to where our log and the leader's agree on `epoch`; refuses (fatal) to cut
    /// below the high watermark.
    fn truncate_diverging(
        &mut self,
        epoch: i32,
        end_offset: i64,
        out: &mut Vec<Command>,
    ) -> Result<(), KRaftError> {
        let (_, ours) = self.log.end_offset_for_epoch(epoch);
        let to = end_offset.min(ours).min(self.log.end_offset());
        if to < self.high_watermark {
            return Err(KRaftError::TruncateBelowHighWatermark {
                to,
                high_watermark: self.high_watermark,
            });
        }
        if to < self.log.end_offset() {
            self.log.truncate(to);
            self.flushed = self.flushed.min(to);
            out.push(Command::Truncate { to });
        }
        Ok(())
    }
}
