//! The quorum's driver thread: the one place the sans-IO [`KRaft`] core runs. It owns the core
//! and its durable [`KRaftStore`], feeds them ticks, peers' messages and appends, and executes
//! the core's commands in order — storage commands on this thread (it is a plain thread, like
//! Kafka's raft I/O thread, so its fsyncs never block a tokio worker), `Send`s handed to the
//! network tasks, and committed entries handed to the [`StateMachine`].
//!
//! ```text
//!  inbound connections ── Input::Request{reply} ──►┐
//!  peer tasks ─────────── Input::Response ─────────►│ driver thread: KRaft + KRaftStore
//!  callers ────────────── Input::Append / Status ──►┘   │ Send(request)  → peer task queue
//!                                                        │ Send(response) → pending reply
//!                                                        │ Apply / LoadSnapshot → StateMachine
//!                                                        └ view ─► watch (epoch, leader, HW)
//! ```
//!
//! An answer the core produces for a peer's request goes to the connection still waiting for
//! it: one pending reply per (peer, request kind), as a peer has at most one request of a kind
//! in flight. The pending map is bounded by [`MAX_PENDING`] since peer ids come off the wire.
//! A storage error stops the driver (Kafka's raft thread exits the process on one): the view
//! then reports `stopped`.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shale_common::{Clock, Rng};
use shale_raft::kraft::store::{KRaftStore, Recovered};
use shale_raft::kraft::{Command, Entry, Event, KRaft, KRaftConfig, Message, NodeId, RoleKind};
use shale_raft::kraft::{KRaftError, Snapshot, Voter, VoterChange};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::wire::{QuorumStatus, ReplicaStatus};

/// How often the core's timers are advanced.
const TICK: Duration = Duration::from_millis(10);
/// How often the store removes files of deleted segments (after `file.delete.delay.ms`).
const HOUSEKEEPING: Duration = Duration::from_secs(10);
/// Requests from peers waiting for the core's answer, at most.
pub const MAX_PENDING: usize = 4096;
/// Inputs queued for the driver, at most.
pub const INPUT_QUEUE: usize = 1024;
/// Nodes the driver keeps a network task for, at most (voters, bootstrap servers and leaders
/// they named: addresses that come off the wire).
pub const MAX_PEERS: usize = 256;

/// What the core commits, in log order.
pub trait StateMachine: Send + std::fmt::Debug {
    /// Committed entries starting at `base_offset`.
    fn apply(&mut self, base_offset: i64, entries: &[Entry]);
    /// Replace the whole state with a committed snapshot (a lagging node installed it, or this
    /// node restarted from one).
    fn load_snapshot(&mut self, snapshot: &Snapshot);
    /// When a snapshot is due (by the machine's own policy): the offset it ends at (exclusive,
    /// everything below applied) and its bytes, which carry `voters_at(end)` (the voter set in
    /// force at that end in a dynamic quorum, KIP-853; None in a static one). Asked after
    /// every step.
    fn snapshot_due(&mut self, _now_ms: i64, _voters_at: &VotersAt<'_>) -> Option<(i64, Bytes)> {
        None
    }
}

/// The voter set in force at a snapshot's end offset, if it is a dynamic one.
pub type VotersAt<'a> = dyn Fn(i64) -> Option<Vec<Voter>> + 'a;

/// The kinds of request a peer can have waiting for an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Vote,
    BeginQuorumEpoch,
    Fetch,
    FetchSnapshot,
}

fn request_kind(msg: &Message) -> Option<Kind> {
    match msg {
        Message::Vote(_) => Some(Kind::Vote),
        Message::BeginQuorumEpoch { .. } => Some(Kind::BeginQuorumEpoch),
        Message::Fetch(_) => Some(Kind::Fetch),
        Message::FetchSnapshot(_) => Some(Kind::FetchSnapshot),
        Message::EndQuorumEpoch { .. }
        | Message::VoteResponse(_)
        | Message::BeginQuorumEpochResponse { .. }
        | Message::FetchResponse(_)
        | Message::FetchSnapshotResponse(_) => None,
    }
}

fn response_kind(msg: &Message) -> Option<Kind> {
    match msg {
        Message::VoteResponse(_) => Some(Kind::Vote),
        Message::BeginQuorumEpochResponse { .. } => Some(Kind::BeginQuorumEpoch),
        Message::FetchResponse(_) => Some(Kind::Fetch),
        Message::FetchSnapshotResponse(_) => Some(Kind::FetchSnapshot),
        Message::Vote(_)
        | Message::BeginQuorumEpoch { .. }
        | Message::EndQuorumEpoch { .. }
        | Message::Fetch(_)
        | Message::FetchSnapshot(_) => None,
    }
}

/// Inputs to the driver thread.
#[derive(Debug)]
pub enum Input {
    /// A peer's request; `reply` receives the core's answer (dropped if there is none).
    Request {
        from: NodeId,
        msg: Message,
        reply: oneshot::Sender<Message>,
    },
    /// A peer's answer to a request this node sent.
    Response { from: NodeId, msg: Message },
    /// Append records as one batch (leader only): the reply is the offset of the last record,
    /// committed once the high watermark passes it.
    Append {
        records: Vec<Bytes>,
        reply: oneshot::Sender<Result<i64, KRaftError>>,
    },
    /// The leader's description of the quorum (DescribeQuorum); None when not leading.
    Describe {
        reply: oneshot::Sender<Option<QuorumStatus>>,
    },
    /// Add or remove a voter (leader only, KIP-853): the reply is the offset of the Voters
    /// entry, committed once the high watermark passes it.
    ChangeVoters {
        change: VoterChange,
        reply: oneshot::Sender<Result<i64, KRaftError>>,
    },
    /// Where a node listens, learned from a response (a bootstrap server naming the leader).
    Endpoint { id: NodeId, host: String, port: u16 },
    /// Resign (a leader names its successors) and stop.
    Shutdown,
    /// Stop at once, without resigning or flushing, as a crash would (what is durable stays).
    Halt,
}

/// What the driver publishes after every step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumView {
    pub node_id: NodeId,
    pub epoch: i32,
    pub leader: Option<NodeId>,
    pub role: RoleKind,
    pub high_watermark: i64,
    pub log_end_offset: i64,
    /// Where the leader's controller listener is (configured, or learned at run time in a
    /// dynamic quorum).
    pub leader_address: Option<(String, u16)>,
    /// The voters in force with their controller-listener addresses, where known.
    pub voters: Arc<Vec<(NodeId, String, u16)>>,
    /// The driver has stopped (shutdown or a storage error).
    pub stopped: bool,
}

/// Handles to a running driver.
#[derive(Debug, Clone)]
pub struct DriverHandle {
    pub inputs: SyncSender<Input>,
    pub view: watch::Receiver<QuorumView>,
}

/// The driver's state on its thread.
struct Driver {
    core: KRaft,
    store: KRaftStore,
    clock: Arc<dyn Clock>,
    machine: Box<dyn StateMachine>,
    peers: HashMap<NodeId, mpsc::Sender<Message>>,
    spawn_peer: PeerSpawner,
    /// Controller-listener addresses: configured, or learned at run time.
    learned: HashMap<NodeId, (String, u16)>,
    /// The voters in force at their addresses, recomputed only when the set or an address
    /// changes (the view is published after every step).
    voter_addresses: Arc<Vec<(NodeId, String, u16)>>,
    pending: HashMap<(NodeId, Kind), oneshot::Sender<Message>>,
    view: watch::Sender<QuorumView>,
}

fn now_ms(clock: &Arc<dyn Clock>) -> u64 {
    clock.monotonic().as_millis() as u64
}

/// Everything the driver thread owns.
#[derive(Debug)]
pub struct DriverParts {
    pub cfg: KRaftConfig,
    pub store: KRaftStore,
    /// What the store recovered at open.
    pub recovered: Recovered,
    pub rng: Arc<dyn Rng>,
    pub clock: Arc<dyn Clock>,
    pub machine: Box<dyn StateMachine>,
    /// The queues of the network tasks sending to the other nodes.
    pub peers: HashMap<NodeId, mpsc::Sender<Message>>,
    /// Starts a task sending to a node first learned at run time (a voter added to a dynamic
    /// quorum, or its leader named by a bootstrap server).
    pub spawn_peer: PeerSpawner,
    /// Controller-listener addresses known at start (the configured voters, this node's own).
    pub addresses: HashMap<NodeId, (String, u16)>,
}

/// Starts the network task for a node, given its id and address; returns its queue.
pub struct PeerSpawner(pub Box<dyn Fn(NodeId, String, u16) -> mpsc::Sender<Message> + Send>);

impl std::fmt::Debug for PeerSpawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerSpawner")
    }
}

/// Starts the driver thread; `inputs`/`rx` are the two ends of its input queue (the peer
/// tasks were given `inputs` before the driver existed).
pub fn spawn(
    parts: DriverParts,
    inputs: SyncSender<Input>,
    rx: Receiver<Input>,
) -> std::io::Result<(DriverHandle, std::thread::JoinHandle<()>)> {
    let DriverParts {
        cfg,
        store,
        recovered,
        rng,
        clock,
        machine,
        peers,
        spawn_peer,
        addresses,
    } = parts;
    let node_id = cfg.node_id;
    let (core, commands) = KRaft::restore(
        cfg,
        rng,
        now_ms(&clock),
        recovered.election,
        recovered.snapshot,
        recovered.log,
    );
    let (view_tx, view) = watch::channel(QuorumView {
        node_id,
        epoch: core.epoch(),
        leader: core.leader(),
        role: core.role(),
        high_watermark: core.high_watermark(),
        log_end_offset: core.log().end_offset(),
        leader_address: None,
        voters: Arc::default(),
        stopped: false,
    });
    let mut driver = Driver {
        core,
        store,
        clock,
        machine,
        peers,
        spawn_peer,
        learned: addresses,
        voter_addresses: Arc::default(),
        pending: HashMap::new(),
        view: view_tx,
    };
    let thread = std::thread::Builder::new()
        .name(format!("kraft-{node_id}"))
        .spawn(move || driver.run(commands, rx))?;
    Ok((DriverHandle { inputs, view }, thread))
}

impl Driver {
    fn run(&mut self, first: Vec<Command>, rx: Receiver<Input>) {
        let result = self.execute(first).and_then(|()| self.serve(&rx));
        if let Err(e) = result {
            tracing::error!(node = self.core.node_id(), error = %e, "metadata quorum stopped on a storage error");
        }
        self.publish(true);
    }

    fn serve(&mut self, rx: &Receiver<Input>) -> Result<(), shale_raft::RaftError> {
        let mut next_tick = now_ms(&self.clock);
        let mut next_housekeeping = next_tick + HOUSEKEEPING.as_millis() as u64;
        loop {
            let now = now_ms(&self.clock);
            if now >= next_tick {
                next_tick = now + TICK.as_millis() as u64;
                self.step(Event::Tick { now_ms: now })?;
            }
            if now >= next_housekeeping {
                next_housekeeping = now + HOUSEKEEPING.as_millis() as u64;
                self.store.housekeeping()?;
            }
            let wait = Duration::from_millis(next_tick.saturating_sub(now_ms(&self.clock)));
            match rx.recv_timeout(wait) {
                Ok(Input::Shutdown) => return self.shutdown(),
                Ok(Input::Halt) => return Ok(()),
                Ok(input) => self.on_input(input)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.shutdown(),
            }
            self.maybe_snapshot()?;
        }
    }

    /// Turns the state machine's due snapshot into one of the core's (written, then the log
    /// prefix it covers is dropped). A refused snapshot is logged and skipped: the machine
    /// asks again later.
    fn maybe_snapshot(&mut self) -> Result<(), shale_raft::RaftError> {
        let log = self.core.log();
        let voters_at = |end: i64| log.dynamic_voters_at(end - 1).map(<[Voter]>::to_vec);
        let due = self.machine.snapshot_due(self.clock.now_ms(), &voters_at);
        let Some((end_offset, data)) = due else {
            return Ok(());
        };
        match self.core.handle(Event::CreateSnapshot { end_offset, data }) {
            Ok(commands) => {
                self.execute(commands)?;
                tracing::info!(
                    node = self.core.node_id(),
                    end_offset,
                    "metadata snapshot written"
                );
                Ok(())
            }
            Err(e) => {
                tracing::warn!(node = self.core.node_id(), error = %e, "metadata snapshot skipped");
                Ok(())
            }
        }
    }

    fn shutdown(&mut self) -> Result<(), shale_raft::RaftError> {
        self.step(Event::Shutdown)?;
        self.store.execute(&Command::Flush)?;
        Ok(())
    }

    fn on_input(&mut self, input: Input) -> Result<(), shale_raft::RaftError> {
        match input {
            Input::Request { from, msg, reply } => {
                if let Some(kind) = request_kind(&msg) {
                    if self.pending.len() >= MAX_PENDING
                        && !self.pending.contains_key(&(from, kind))
                    {
                        tracing::warn!(from, "too many quorum requests waiting; refusing one");
                        return Ok(());
                    }
                    self.pending.insert((from, kind), reply);
                }
                let kind = request_kind(&msg);
                self.step(Event::Message { from, msg })?;
                // Only a Fetch waits (parked until data arrives); any other request the core
                // did not answer at once gets no answer: its connection is told so.
                if let Some(kind) = kind.filter(|k| *k != Kind::Fetch) {
                    self.pending.remove(&(from, kind));
                }
                Ok(())
            }
            Input::Response { from, msg } => self.step(Event::Message { from, msg }),
            Input::Append { records, reply } => {
                self.append(Event::AppendRequested { records }, reply)
            }
            Input::Describe { reply } => {
                let _ = reply.send(self.describe());
                Ok(())
            }
            Input::ChangeVoters { change, reply } => {
                self.append(Event::ChangeVoters(change), reply)
            }
            Input::Endpoint { id, host, port } => {
                self.connect(id, host, port);
                Ok(())
            }
            Input::Shutdown => self.shutdown(),
            Input::Halt => Ok(()),
        }
    }

    /// DescribeQuorum's view: the leader's progress of every replica. The last-caught-up time
    /// is the last fetch that reached the high watermark (Kafka compares with the leader's log
    /// end at fetch time); times are wall-clock milliseconds.
    fn describe(&self) -> Option<QuorumStatus> {
        let replicas = self.core.replica_progress()?;
        let mono = now_ms(&self.clock);
        let wall = self.clock.now_ms();
        let hw = self.core.high_watermark();
        let to_wall = |t: Option<u64>| t.map_or(-1, |t| wall - mono.saturating_sub(t) as i64);
        let me = ReplicaStatus {
            id: self.core.node_id(),
            directory_id: Uuid::nil(),
            log_end_offset: self.core.log().end_offset(),
            last_fetch_timestamp: wall,
            last_caught_up_timestamp: wall,
        };
        let mut out = QuorumStatus {
            leader_id: me.id,
            leader_epoch: self.core.epoch(),
            high_watermark: hw,
            voters: vec![me],
            observers: Vec::new(),
        };
        for (&id, p) in replicas {
            let caught_up = if p.end_offset >= hw {
                p.last_fetch_ms
            } else {
                None
            };
            let r = ReplicaStatus {
                id,
                directory_id: Uuid::nil(),
                log_end_offset: p.end_offset,
                last_fetch_timestamp: to_wall(p.last_fetch_ms),
                last_caught_up_timestamp: to_wall(caught_up),
            };
            if self.core.is_voter(id) {
                out.voters.push(r);
            } else {
                out.observers.push(r);
            }
        }
        Some(out)
    }

    /// Feeds one event and executes what follows from it.
    fn step(&mut self, event: Event) -> Result<(), shale_raft::RaftError> {
        match self.core.handle(event) {
            Ok(commands) => self.execute(commands),
            Err(e) => {
                // A fatal core error (asked to truncate committed entries): stop, as Kafka does.
                Err(shale_raft::RaftError::InvalidArgument(e.to_string()))
            }
        }
    }

    fn execute(&mut self, commands: Vec<Command>) -> Result<(), shale_raft::RaftError> {
        let mut queue: std::collections::VecDeque<Command> = commands.into();
        while let Some(cmd) = queue.pop_front() {
            match &cmd {
                Command::Send { to, msg } => self.send(*to, msg.clone()),
                Command::Apply {
                    base_offset,
                    entries,
                } => self.machine.apply(*base_offset, entries),
                Command::LoadSnapshot(s) => self.machine.load_snapshot(s),
                _ => {
                    if let Some(event) = self.store.execute(&cmd)? {
                        let more = self
                            .core
                            .handle(event)
                            .map_err(|e| shale_raft::RaftError::InvalidArgument(e.to_string()))?;
                        queue.extend(more);
                    }
                }
            }
        }
        self.connect_voters();
        self.publish(false);
        Ok(())
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        if let Some(kind) = response_kind(&msg) {
            if let Some(reply) = self.pending.remove(&(to, kind)) {
                let _ = reply.send(msg);
            }
            return;
        }
        match self.peers.get(&to) {
            // A full queue drops the message: the core's timers resend what matters.
            Some(q) => {
                if q.try_send(msg).is_err() {
                    tracing::debug!(to, "quorum message dropped: peer queue full or closed");
                }
            }
            None => tracing::debug!(to, "quorum message to a node with no known address dropped"),
        }
    }

    /// Feeds a leader-only append (records or a voter change) and replies with the offset of
    /// the last entry appended, or why the core refused.
    fn append(
        &mut self,
        event: Event,
        reply: oneshot::Sender<Result<i64, KRaftError>>,
    ) -> Result<(), shale_raft::RaftError> {
        match self.core.handle(event) {
            Ok(commands) => {
                // The leader's log view already ends with what was appended.
                let _ = reply.send(Ok(self.core.log().end_offset() - 1));
                self.execute(commands)
            }
            Err(e) => {
                let _ = reply.send(Err(e));
                Ok(())
            }
        }
    }

    /// Starts the network task for `id` unless it has one.
    fn connect(&mut self, id: NodeId, host: String, port: u16) {
        if id == self.core.node_id() || self.peers.contains_key(&id) {
            return;
        }
        if self.peers.len() >= MAX_PEERS {
            tracing::warn!(
                peer = id,
                "too many quorum peers; not connecting to another"
            );
            return;
        }
        tracing::info!(node = self.core.node_id(), peer = id, %host, port, "connecting to a quorum member");
        let queue = (self.spawn_peer.0)(id, host.clone(), port);
        self.peers.insert(id, queue);
        self.learned.insert(id, (host, port));
    }

    /// Connects to every voter of the set in force that has no network task yet, at the
    /// endpoint its Voters record names (a voter added to a dynamic quorum).
    fn connect_voters(&mut self) {
        let me = self.core.node_id();
        let missing: Vec<(NodeId, String, u16)> = self
            .core
            .log()
            .voter_records()
            .iter()
            .filter(|v| v.id != me && !self.peers.contains_key(&v.id))
            .filter_map(|v| v.endpoints.first().map(|(_, h, p)| (v.id, h.clone(), *p)))
            .collect();
        let changed = !missing.is_empty();
        for (id, host, port) in missing {
            self.connect(id, host, port);
        }
        let ids = self.voter_addresses.iter().map(|v| v.0);
        if changed || !ids.eq(self.core.voters().iter().copied()) {
            self.voter_addresses = Arc::new(self.voter_addresses());
        }
    }

    /// The voters in force at their addresses: the Voters record's endpoint, else the
    /// configured or learned one.
    fn voter_addresses(&self) -> Vec<(NodeId, String, u16)> {
        let log = self.core.log();
        let recorded = |id: NodeId| {
            let v = log.voter_records().iter().find(|v| v.id == id)?;
            v.endpoints.first().map(|(_, h, p)| (h.clone(), *p))
        };
        self.core
            .voters()
            .iter()
            .filter_map(|&id| {
                let (host, port) = recorded(id).or_else(|| self.learned.get(&id).cloned())?;
                Some((id, host, port))
            })
            .collect()
    }

    fn publish(&self, stopped: bool) {
        let view = QuorumView {
            node_id: self.core.node_id(),
            epoch: self.core.epoch(),
            leader: self.core.leader(),
            role: self.core.role(),
            high_watermark: self.core.high_watermark(),
            log_end_offset: self.core.log().end_offset(),
            leader_address: self
                .core
                .leader()
                .and_then(|l| self.learned.get(&l).cloned()),
            voters: self.voter_addresses.clone(),
            stopped,
        };
        self.view.send_if_modified(|v| {
            let changed = *v != view;
            *v = view;
            changed
        });
    }
}
