//! KIP-630 snapshots in the core: creating one (only at an applied offset at or below the high
//! watermark; the log prefix it covers is deleted once the snapshot is written), adopting the
//! latest at restart, and moving one to a lagging replica. A leader answers a Fetch whose
//! offset lies below its log start (or whose last fetched epoch predates the snapshot) with the
//! snapshot's id; the follower then pulls it with FetchSnapshot in position-based chunks,
//! installs it (write, reset the log to start at its end, load it into the state machine,
//! commit up to its end) and continues fetching records from its end offset. The core keeps
//! the latest snapshot's bytes in memory to serve chunks.

use bytes::Bytes;

use super::core::KRaft;
use super::state::{Role, SnapshotFetch};
use super::types::{
    Command, FetchError, FetchRequest, FetchSnapshotRequest, FetchSnapshotResponse,
    FetchSnapshotResult, KRaftError, Message, NodeId, Snapshot, SnapshotId,
};

impl KRaft {
    /// At restart: makes the log consistent with the durable snapshot and loads it.
    pub(super) fn adopt_snapshot(&mut self, s: Snapshot, out: &mut Vec<Command>) {
        let SnapshotId { end_offset, epoch } = s.id;
        let start = self.log.start_offset();
        let consistent = start <= end_offset
            && self.log.end_offset() >= end_offset
            && (start == end_offset
                || self.log.get(end_offset - 1).map(|e| e.epoch) == Some(epoch));
        if !consistent {
            self.log.reset(end_offset, epoch);
            out.push(Command::ResetLog {
                start_offset: end_offset,
            });
        } else if start < end_offset {
            self.log.delete_prefix(end_offset);
            out.push(Command::DeleteLogPrefix { to: end_offset });
        } else {
            self.log.set_start_epoch(epoch);
        }
        self.flushed = self.log.end_offset();
        self.load_snapshot(s, out);
    }

    /// Hands a committed snapshot to the state machine: Apply continues from its end.
    fn load_snapshot(&mut self, s: Snapshot, out: &mut Vec<Command>) {
        let end = s.id.end_offset;
        if let Some(voters) = crate::snapshot::checkpoint_voter_entries(&s.data) {
            self.log.set_base_voters(voters, true);
        }
        out.push(Command::LoadSnapshot(s.clone()));
        self.applied = self.applied.max(end);
        if end > self.high_watermark {
            self.high_watermark = end;
            out.push(Command::Commit {
                high_watermark: end,
            });
        }
        self.snapshot = Some(s);
    }

    /// [`super::Event::CreateSnapshot`]: write the snapshot, then delete the prefix it covers.
    pub(super) fn create_snapshot(
        &mut self,
        end_offset: i64,
        data: Bytes,
        out: &mut Vec<Command>,
    ) -> Result<(), KRaftError> {
        let start = self.log.start_offset();
        let limit = self.high_watermark.min(self.applied);
        let last = (end_offset > start && end_offset <= limit)
            .then(|| self.log.get(end_offset - 1))
            .flatten();
        let Some(last) = last else {
            return Err(KRaftError::InvalidSnapshot {
                end_offset,
                log_start: start,
                high_watermark: limit,
            });
        };
        let id = SnapshotId {
            end_offset,
            epoch: last.epoch,
        };
        let snapshot = Snapshot { id, data };
        out.push(Command::WriteSnapshot(snapshot.clone()));
        self.log.delete_prefix(end_offset);
        // Everything below the snapshot's end is durable (in the snapshot).
        self.flushed = self.flushed.max(end_offset);
        out.push(Command::DeleteLogPrefix { to: end_offset });
        self.snapshot = Some(snapshot);
        Ok(())
    }

    /// The snapshot a fetcher must load first (Kafka `validateOffsetAndEpoch` → SNAPSHOT).
    pub(super) fn snapshot_for_fetch(&self, req: &FetchRequest) -> Option<SnapshotId> {
        let id = self.snapshot.as_ref()?.id;
        let start = self.log.start_offset();
        let needed = req.fetch_offset < start
            || (req.fetch_offset == start && req.last_fetched_epoch != id.epoch)
            || req.last_fetched_epoch < id.epoch;
        needed.then_some(id)
    }

    /// FetchSnapshot: one chunk of the current snapshot, or an error with our view.
    pub(super) fn on_fetch_snapshot_request(
        &mut self,
        from: NodeId,
        req: FetchSnapshotRequest,
        out: &mut Vec<Command>,
    ) {
        let error = self.fetch_error(req.epoch, from == req.replica);
        let result = match (error, &self.snapshot) {
            (Some(e), _) => FetchSnapshotResult::Error(e),
            (None, Some(s)) if s.id == req.id => {
                let size = s.data.len() as u64;
                // Kafka: position >= size is out of range; an empty snapshot still has chunk 0.
                if req.position > size || (req.position == size && size > 0) {
                    FetchSnapshotResult::Error(FetchError::PositionOutOfRange)
                } else {
                    let from_pos = req.position as usize;
                    let to = from_pos.saturating_add(self.cfg.fetch_snapshot_max_bytes.max(1));
                    FetchSnapshotResult::Chunk {
                        id: s.id,
                        size,
                        position: req.position,
                        data: s.data.slice(from_pos..to.min(s.data.len())),
                    }
                }
            }
            (None, _) => FetchSnapshotResult::Error(FetchError::SnapshotNotFound),
        };
        if error.is_none() {
            self.record_fetch(from, None);
        }
        let msg = Message::FetchSnapshotResponse(FetchSnapshotResponse {
            seq: req.seq,
            epoch: self.election.epoch,
            leader: self.leader(),
            result,
        });
        out.push(Command::Send { to: from, msg });
    }

    /// A Fetch answered with a snapshot id: start pulling it (unless it would undo commits).
    pub(super) fn start_snapshot_fetch(&mut self, id: SnapshotId) {
        let valid = id.end_offset >= self.high_watermark && id.epoch >= 0;
        let backoff = self.now + self.cfg.retry_backoff_ms;
        if let Role::Follower(f) = &mut self.role {
            if valid {
                f.snapshot = Some(SnapshotFetch {
                    id,
                    data: Vec::new(),
                });
            } else {
                f.next_fetch_ms = backoff;
            }
        }
    }

    /// The next FetchSnapshot request for the snapshot being pulled, if any.
    pub(super) fn snapshot_request(&mut self) -> Option<(u64, Message)> {
        let Role::Follower(f) = &self.role else {
            return None;
        };
        let s = f.snapshot.as_ref()?;
        let (id, position) = (s.id, s.data.len() as u64);
        self.fetch_seq += 1;
        let req = FetchSnapshotRequest {
            seq: self.fetch_seq,
            epoch: self.election.epoch,
            replica: self.cfg.node_id,
            id,
            position,
        };
        Some((self.fetch_seq, Message::FetchSnapshot(req)))
    }

    pub(super) fn on_fetch_snapshot_response(
        &mut self,
        from: NodeId,
        resp: FetchSnapshotResponse,
        out: &mut Vec<Command>,
    ) {
        if self.observe_epoch(resp.epoch, resp.leader, out) || resp.epoch != self.election.epoch {
            return;
        }
        let now = self.now;
        let backoff = self.cfg.retry_backoff_ms;
        let fetch_timeout = self.cfg.fetch_timeout_ms;
        let Role::Follower(f) = &mut self.role else {
            return;
        };
        if f.leader != from || f.in_flight.map(|(seq, _)| seq) != Some(resp.seq) {
            return; // stale, duplicated or from someone else
        }
        f.in_flight = None;
        let mut complete = None;
        match resp.result {
            FetchSnapshotResult::Error(
                FetchError::SnapshotNotFound
                | FetchError::PositionOutOfRange
                | FetchError::InvalidRequest,
            ) => {
                // The leader replaced it (or our request was off): fetch again to learn the
                // current snapshot. Kafka counts the answer as contact with the leader.
                f.snapshot = None;
                f.fetch_deadline_ms = now + fetch_timeout;
            }
            FetchSnapshotResult::Error(e) => {
                f.next_fetch_ms = now + backoff;
                if e == FetchError::ShuttingDown {
                    f.fetched = false;
                }
            }
            FetchSnapshotResult::Chunk {
                id,
                size,
                position,
                data,
            } => {
                f.fetched = true;
                f.fetch_deadline_ms = now + fetch_timeout;
                match f.snapshot.as_mut() {
                    Some(s) if s.id == id && s.data.len() as u64 == position => {
                        s.data.extend_from_slice(&data);
                        if s.data.len() as u64 >= size {
                            complete = f.snapshot.take().filter(|s| s.data.len() as u64 == size);
                        }
                    }
                    _ => f.snapshot = None,
                }
            }
        }
        if let Some(s) = complete {
            self.install_snapshot(s, out);
        }
        self.maybe_send_fetch(out);
    }

    /// A fully fetched snapshot: write it, restart the log at its end, load it, commit it.
    fn install_snapshot(&mut self, s: SnapshotFetch, out: &mut Vec<Command>) {
        let SnapshotId { end_offset, epoch } = s.id;
        if end_offset < self.high_watermark {
            return; // would undo commits; fetch records instead
        }
        let snapshot = Snapshot {
            id: s.id,
            data: Bytes::from(s.data),
        };
        out.push(Command::WriteSnapshot(snapshot.clone()));
        self.log.reset(end_offset, epoch);
        self.flushed = end_offset;
        out.push(Command::ResetLog {
            start_offset: end_offset,
        });
        self.load_snapshot(snapshot, out);
    }
}
