//! [`KRaft`]: the node-level state machine. It owns the persisted election state, the role, the
//! log view and the high watermark; it dispatches [`Event`]s to the role modules
//! ([`super::election`], [`super::leader`], [`super::follower`]) and holds the transitions they
//! share, each of which writes `quorum-state` first when a persisted field changes.

use std::sync::Arc;

use bytes::Bytes;
use shale_common::Rng;

use super::log::LogView;
use super::state::{FollowerState, Role, RoleKind};
use super::types::{Command, ElectionState, Event, KRaftError, Message, NodeId, Snapshot};

/// Static quorum configuration and timers (Kafka names and defaults in brackets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KRaftConfig {
    pub node_id: NodeId,
    /// The voter set (`controller.quorum.voters`); a node outside it is an observer.
    pub voters: Vec<NodeId>,
    /// Base election timeout; the actual one is random in `[T, 2T)` [election.timeout.ms 1000].
    pub election_timeout_ms: u64,
    /// No successful fetch for this long ends a follower's patience [fetch.timeout.ms 2000];
    /// a leader resigns when a majority has not fetched within 1.5 x this (check-quorum).
    pub fetch_timeout_ms: u64,
    /// Cap of the exponential backoff after a lost election [election.backoff.max.ms 1000].
    pub election_backoff_max_ms: u64,
    /// An unanswered request is retried after this long [request.timeout.ms 2000].
    pub request_timeout_ms: u64,
    /// Backoff after a refused fetch [retry.backoff.ms 20].
    pub retry_backoff_ms: u64,
    /// How long a leader parks an empty fetch [MAX_FETCH_WAIT_MS 500].
    pub fetch_max_wait_ms: u64,
    /// Entries per fetch response.
    pub fetch_max_entries: usize,
    /// Bytes per FetchSnapshot chunk (Kafka's client asks for 8 MiB).
    pub fetch_snapshot_max_bytes: usize,
    /// Observers a leader tracks (bounds the per-replica maps, which are keyed by fetchers).
    pub max_observers: usize,
    /// Pseudo ids (negative) of `controller.quorum.bootstrap.servers` entries: a node that
    /// knows no voter (it joins a dynamic quorum) asks one of them for the leader.
    pub bootstrap: Vec<NodeId>,
}

impl KRaftConfig {
    /// Kafka's defaults for `node_id` among `voters`.
    pub fn new(node_id: NodeId, voters: Vec<NodeId>) -> KRaftConfig {
        KRaftConfig {
            node_id,
            voters,
            election_timeout_ms: 1000,
            fetch_timeout_ms: 2000,
            election_backoff_max_ms: 1000,
            request_timeout_ms: 2000,
            retry_backoff_ms: 20,
            fetch_max_wait_ms: 500,
            fetch_max_entries: 64,
            fetch_snapshot_max_bytes: 8 << 20,
            max_observers: 1024,
            bootstrap: Vec::new(),
        }
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// Votes needed to win: a strict majority of the voters.
    pub fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// A multi-voter KRaft node (voter or observer), sans IO.
#[derive(Debug)]
pub struct KRaft {
    pub(super) cfg: KRaftConfig,
    pub(super) rng: Arc<dyn Rng>,
    pub(super) now: u64,
    /// Epoch, leader and vote exactly as last written to `quorum-state`.
    pub(super) election: ElectionState,
    pub(super) role: Role,
    pub(super) log: LogView,
    /// The latest durable snapshot; the log starts at its end offset.
    pub(super) snapshot: Option<Snapshot>,
    /// Durable log end offset.
    pub(super) flushed: i64,
    /// Committed below this offset (this incarnation's knowledge; 0 after a restart).
    pub(super) high_watermark: i64,
    /// Entries below this were handed out in [`Command::Apply`].
    pub(super) applied: i64,
    pub(super) fetch_seq: u64,
    /// Consecutive lost elections, for the exponential backoff.
    pub(super) election_retries: u32,
}

impl KRaft {
    /// Starts (or restarts) a node from its durable state: `stored` is the `quorum-state` file
    /// (None if absent) and `log` the durable log. Restart rules follow Kafka's
    /// `QuorumState.initialize`; a former leader comes back Resigned in its epoch.
    pub fn new(
        cfg: KRaftConfig,
        rng: Arc<dyn Rng>,
        now_ms: u64,
        stored: Option<ElectionState>,
        log: LogView,
    ) -> (KRaft, Vec<Command>) {
        KRaft::restore(cfg, rng, now_ms, stored, None, log)
    }

    /// [`KRaft::new`] with the latest durable snapshot. The log may still start below the
    /// snapshot (a crash before the prefix was deleted) or end below or diverge from it (a crash
    /// while installing); the returned commands then delete the prefix or reset the log. With a
    /// snapshot, the node starts with it loaded ([`Command::LoadSnapshot`]) and committed.
    pub fn restore(
        cfg: KRaftConfig,
        rng: Arc<dyn Rng>,
        now_ms: u64,
        stored: Option<ElectionState>,
        snapshot: Option<Snapshot>,
        log: LogView,
    ) -> (KRaft, Vec<Command>) {
        let me = cfg.node_id;
        let blank = ElectionState {
            epoch: 0,
            leader_id: -1,
            voted_id: -1,
            voters: cfg.voters.clone(),
        };
        let flushed = log.end_offset();
        let mut log = log;
        let configured = cfg.voters.iter().map(|id| super::types::Voter::by_id(*id));
        log.set_base_voters(configured.collect(), false);
        let mut node = KRaft {
            election: stored.clone().unwrap_or_else(|| blank.clone()),
            cfg,
            rng,
            now: now_ms,
            role: Role::Unattached { deadline_ms: 0 },
            log,
            snapshot: None,
            flushed,
            high_watermark: 0,
            applied: 0,
            fetch_seq: 0,
            election_retries: 0,
        };
        let mut out = Vec::new();
        if let Some(s) = snapshot {
            node.adopt_snapshot(s, &mut out);
        }
        let voter = node.is_voter(me);
        let e = node.election.clone();
        if stored.is_none() || e.epoch < node.log.last_epoch() {
            let epoch = e.epoch.max(node.log.last_epoch());
            node.become_unattached(epoch, &mut out);
            node.persist(&mut out);
        } else if e.leader_id == me {
            node.role = Role::Resigned {
                deadline_ms: node.now + node.election_timeout(),
            };
        } else if node.may_campaign() && e.voted_id == me && e.leader_id < 0 {
            node.start_candidate(e.epoch, &mut out);
        } else if e.leader_id >= 0 {
            node.become_follower(e.epoch, e.leader_id, &mut out);
        } else {
            node.role = Role::Unattached {
                deadline_ms: node.now + node.unattached_timeout(),
            };
        }
        if voter && node.voters().len() == 1 && node.role.kind() == RoleKind::Unattached {
            node.start_prospective(&mut out);
        }
        (node, out)
    }

    pub fn node_id(&self) -> NodeId {
        self.cfg.node_id
    }

    pub fn epoch(&self) -> i32 {
        self.election.epoch
    }

    pub fn role(&self) -> RoleKind {
        self.role.kind()
    }

    /// The leader this node knows for its epoch.
    pub fn leader(&self) -> Option<NodeId> {
        match &self.role {
            Role::Leader(_) => Some(self.cfg.node_id),
            Role::Follower(f) => Some(f.leader),
            _ => None,
        }
    }

    pub fn election_state(&self) -> &ElectionState {
        &self.election
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    pub fn log(&self) -> &LogView {
        &self.log
    }

    /// The leader's view of the other replicas in its epoch (None unless leading).
    pub fn replica_progress(
        &self,
    ) -> Option<&std::collections::BTreeMap<NodeId, super::state::ReplicaProgress>> {
        match &self.role {
            Role::Leader(l) => Some(&l.replicas),
            _ => None,
        }
    }

    /// The static configuration (voters, timers).
    pub fn config(&self) -> &KRaftConfig {
        &self.cfg
    }

    /// The voter set in force: the latest in the log (KIP-853), else the static one.
    pub fn voters(&self) -> &[NodeId] {
        self.log.voters()
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters().contains(&id)
    }

    /// Votes (or durable copies) that make a majority of the voters in force.
    pub fn majority(&self) -> usize {
        self.voters().len() / 2 + 1
    }

    /// The latest durable snapshot's id.
    pub fn snapshot_id(&self) -> Option<super::types::SnapshotId> {
        self.snapshot.as_ref().map(|s| s.id)
    }

    /// Handles one event; commands must be executed in order.
    pub fn handle(&mut self, event: Event) -> Result<Vec<Command>, KRaftError> {
        let mut out = Vec::new();
        match event {
            Event::Tick { now_ms } => {
                self.now = self.now.max(now_ms);
                self.on_tick(&mut out);
            }
            Event::Message { from, msg } => self.on_message(from, msg, &mut out)?,
            Event::AppendRequested { records } => self.append_records(records, &mut out)?,
            Event::ChangeVoters(change) => {
                self.change_voters(change, &mut out)?;
            }
            Event::Flushed { up_to } => self.on_flushed(up_to, &mut out),
            Event::Shutdown => self.resign(&mut out),
            Event::CreateSnapshot { end_offset, data } => {
                self.create_snapshot(end_offset, data, &mut out)?
            }
        }
        Ok(out)
    }

    fn on_tick(&mut self, out: &mut Vec<Command>) {
        match self.role.kind() {
            RoleKind::Leader => self.leader_tick(out),
            RoleKind::Follower => self.follower_tick(out),
            _ => self.election_tick(out),
        }
    }

    fn on_message(
        &mut self,
        from: NodeId,
        msg: Message,
        out: &mut Vec<Command>,
    ) -> Result<(), KRaftError> {
        match msg {
            Message::Vote(req) => self.on_vote_request(from, req, out),
            Message::VoteResponse(resp) => self.on_vote_response(from, resp, out),
            Message::BeginQuorumEpoch { epoch, leader } => {
                self.on_begin_quorum_epoch(from, epoch, leader, out)
            }
            Message::BeginQuorumEpochResponse { epoch, leader } => {
                self.on_begin_response(from, epoch, leader, out)
            }
            Message::EndQuorumEpoch {
                epoch,
                leader,
                preferred_successors,
            } => self.on_end_quorum_epoch(epoch, leader, &preferred_successors, out),
            Message::Fetch(req) => self.on_fetch_request(from, req, out),
            Message::FetchResponse(resp) => return self.on_fetch_response(from, resp, out),
            Message::FetchSnapshot(req) => self.on_fetch_snapshot_request(from, req, out),
            Message::FetchSnapshotResponse(resp) => {
                self.on_fetch_snapshot_response(from, resp, out)
            }
        }
        Ok(())
    }

    fn append_records(
        &mut self,
        records: Vec<Bytes>,
        out: &mut Vec<Command>,
    ) -> Result<(), KRaftError> {
        if self.role.kind() != RoleKind::Leader {
            return Err(KRaftError::NotLeader {
                epoch: self.election.epoch,
                leader: self.leader(),
            });
        }
        let entries = records
            .into_iter()
            .map(|r| super::types::Entry {
                epoch: self.election.epoch,
                record: super::types::Record::Data(r),
            })
            .collect();
        self.leader_append(entries, out);
        Ok(())
    }

    fn on_flushed(&mut self, up_to: i64, out: &mut Vec<Command>) {
        self.flushed = self.flushed.max(up_to.min(self.log.end_offset()));
        match self.role.kind() {
            RoleKind::Leader => self.maybe_advance_leader_hw(out),
            RoleKind::Follower => self.maybe_send_fetch(out),
            _ => {}
        }
    }

    // ---- shared transitions -------------------------------------------------------------

    /// Emits `WriteQuorumState` for the current election state.
    pub(super) fn persist(&self, out: &mut Vec<Command>) {
        out.push(Command::WriteQuorumState(self.election.clone()));
    }

    /// Sets epoch, leader and vote, persisting them if anything changed.
    pub(super) fn set_election(
        &mut self,
        epoch: i32,
        leader: i32,
        voted: i32,
        out: &mut Vec<Command>,
    ) {
        let next = ElectionState {
            epoch,
            leader_id: leader,
            voted_id: voted,
            voters: self.voters().to_vec(),
        };
        if next != self.election {
            self.election = next;
            self.persist(out);
        }
    }

    /// Unattached in `epoch` (no leader; the vote is kept only within the same epoch).
    pub(super) fn become_unattached(&mut self, epoch: i32, out: &mut Vec<Command>) {
        let voted = if epoch == self.election.epoch {
            self.election.voted_id
        } else {
            -1
        };
        self.set_election(epoch, -1, voted, out);
        self.role = Role::Unattached {
            deadline_ms: self.now + self.unattached_timeout(),
        };
    }

    /// Follower of `leader` in `epoch`; fetches at once.
    pub(super) fn become_follower(&mut self, epoch: i32, leader: NodeId, out: &mut Vec<Command>) {
        let voted = if epoch == self.election.epoch {
            self.election.voted_id
        } else {
            -1
        };
        self.set_election(epoch, leader, voted, out);
        self.election_retries = 0;
        self.role = Role::Follower(FollowerState {
            leader,
            fetch_deadline_ms: self.now + self.cfg.fetch_timeout_ms,
            fetched: false,
            in_flight: None,
            next_fetch_ms: self.now,
            snapshot: None,
        });
        self.maybe_send_fetch(out);
    }

    /// Reacts to an epoch (and maybe leader) seen in any message: a newer epoch moves us to it;
    /// a leader learned for our own epoch makes us its follower. Returns true if the role
    /// changed.
    pub(super) fn observe_epoch(
        &mut self,
        epoch: i32,
        leader: Option<NodeId>,
        out: &mut Vec<Command>,
    ) -> bool {
        let me = self.cfg.node_id;
        let leader = leader.filter(|&l| l >= 0 && l != me);
        if epoch > self.election.epoch {
            match leader {
                Some(l) => self.become_follower(epoch, l, out),
                None => self.become_unattached(epoch, out),
            }
            return true;
        }
        if epoch == self.election.epoch {
            if let Some(l) = leader {
                let kind = self.role.kind();
                if kind != RoleKind::Follower && kind != RoleKind::Leader {
                    self.become_follower(epoch, l, out);
                    return true;
                }
            }
        }
        false
    }

    /// Raises the high watermark to `hw` and hands newly committed entries to the runtime.
    pub(super) fn raise_high_watermark(&mut self, hw: i64, out: &mut Vec<Command>) {
        let hw = hw.min(self.log.end_offset());
        if hw <= self.high_watermark {
            return;
        }
        self.high_watermark = hw;
        out.push(Command::Commit { high_watermark: hw });
        if hw > self.applied {
            let entries = self.log.range(self.applied, hw);
            out.push(Command::Apply {
                base_offset: self.applied,
                entries,
            });
            self.applied = hw;
        }
    }

    /// A random election timeout in `[T, 2T)`.
    pub(super) fn election_timeout(&self) -> u64 {
        let t = self.cfg.election_timeout_ms.max(1);
        t + self.rng.next_u64() % t
    }

    /// How long an Unattached node waits: an election timeout for voters, a request retry for
    /// observers looking for the leader.
    fn unattached_timeout(&self) -> u64 {
        if self.may_campaign() {
            self.election_timeout()
        } else {
            self.cfg.retry_backoff_ms.max(1) * 10
        }
    }
}
