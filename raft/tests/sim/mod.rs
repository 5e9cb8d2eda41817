//! The simulator: virtual clock, event queue, network faults, crash/restart, client. See the
//! test file's docs for what it models; `checks` holds the invariants.

mod checks;
mod codec;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use shale_common::{Rng, SeededRng};
use shale_raft::kraft::{
    Command, ElectionState, Entry, Event, KRaft, KRaftConfig, KRaftError, LogView, Message, NodeId,
    RoleKind, Snapshot, Voter, VoterChange,
};

use checks::Checker;

const TICK_MS: u64 = 10;
/// After healing: a stable leader within this long, then the appends commit within COMMIT_BOUND.
const ELECT_BOUND_MS: u64 = 30_000;
const COMMIT_BOUND_MS: u64 = 20_000;
const HEAL_APPENDS: u64 = 5;
/// Record ids of the post-heal appends (chaos-phase ids count up from 0).
const HEAL_ID_BASE: u64 = 1 << 40;
/// The post-heal client re-sends what is not committed after this long.
const RETRY_MS: u64 = 3_000;

#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Voter count; None = 3 or 5 from the seed.
    pub voters: Option<usize>,
    pub observers: usize,
    pub chaos_ms: u64,
    /// Inject faults (loss, partitions, crashes) during the chaos phase.
    pub faults: bool,
    /// Nodes take snapshots at random applied offsets (and drop the log prefix) all along.
    pub snapshots: bool,
    /// The leader adds and removes voters (KIP-853) at random during the chaos phase.
    pub reconfig: bool,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            voters: None,
            observers: 1,
            chaos_ms: 20_000,
            faults: true,
            snapshots: true,
            reconfig: true,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct SimStats {
    pub elections: u64,
    pub committed: usize,
    pub crashes: u64,
    /// Snapshots created by nodes, and installed from a leader through FetchSnapshot.
    pub snapshots: u64,
    pub installs: u64,
    /// Voter changes the leader accepted (appended; not all commit).
    pub voter_changes: u64,
}

#[derive(Debug)]
enum SimEvent {
    Deliver {
        to: usize,
        from: NodeId,
        msg: Message,
    },
    FlushDone {
        node: usize,
        inc: u32,
    },
    Tick,
    Client,
    Fault,
    Snapshot,
    Reconfig,
    Restart {
        node: usize,
    },
}

pub(crate) struct Node {
    pub id: NodeId,
    pub core: Option<KRaft>,
    pub inc: u32,
    pub disk_state: Option<ElectionState>,
    /// The durable snapshot (written atomically) and the log: `disk_log[0]` is at `disk_start`.
    pub disk_snapshot: Option<Snapshot>,
    pub disk_start: i64,
    pub disk_log: Vec<Entry>,
    /// Durable log end offset.
    pub durable: i64,
    /// Crash after executing this many commands of the next event.
    pub crash_pending: Option<usize>,
    pub hw_seen: i64,
    /// Offsets below this are known to equal the committed log (log or snapshot).
    pub verified: i64,
    pub applied_next: i64,
    /// The state machine: every entry loaded (snapshot) or applied, from offset 0.
    pub state: Vec<Entry>,
}

impl Node {
    pub fn log_end(&self) -> i64 {
        self.disk_start + self.disk_log.len() as i64
    }

    pub fn snapshot_end(&self) -> i64 {
        self.disk_snapshot.as_ref().map_or(0, |s| s.id.end_offset)
    }

    /// The log entry at `off`, if the log holds it.
    pub fn entry(&self, off: i64) -> Option<&Entry> {
        let idx = usize::try_from(off - self.disk_start).ok()?;
        self.disk_log.get(idx)
    }

    /// Whether the node durably holds `e` at `off`, in its snapshot (checked against the
    /// committed log when written) or in its flushed log.
    pub fn holds(&self, off: i64, e: &Entry) -> bool {
        off < self.snapshot_end() || (off < self.durable && self.entry(off) == Some(e))
    }
}

struct Sim {
    seed: u64,
    rng: Arc<dyn Rng>,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    slab: Vec<Option<SimEvent>>,
    free: Vec<usize>,
    nodes: Vec<Node>,
    voters: Vec<NodeId>,
    /// Small fetch sizes split the leader's first batches (a new epoch's LeaderChange entry
    /// can then arrive after older entries), which the commit rules must survive.
    fetch_max_entries: usize,
    /// Small FetchSnapshot chunks make a snapshot take many round trips.
    snapshot_chunk: usize,
    snapshots_on: bool,
    /// A node is executing its start-up commands.
    starting: bool,
    loss_pct: u64,
    dup_pct: u64,
    blocked: BTreeSet<(NodeId, NodeId)>,
    faults_on: bool,
    next_record: u64,
    checker: Checker,
    trace: VecDeque<String>,
    /// SIM_TRACE=1: print every event.
    verbose: bool,
    stats: SimStats,
}

/// Runs one seed; panics (printing the seed and a trace) on any violation.
pub fn run_seed(seed: u64, opts: &SimOptions) -> SimStats {
    let mut sim = Sim::new(seed, opts);
    sim.run(opts);
    sim.stats.committed = sim.checker.committed_len();
    sim.stats
}

impl Sim {
    fn new(seed: u64, opts: &SimOptions) -> Sim {
        let rng = SeededRng::new(seed);
        let n_voters = opts.voters.unwrap_or(if rng.next_u64().is_multiple_of(2) {
            3
        } else {
            5
        });
        let voters: Vec<NodeId> = (1..=n_voters as NodeId).collect();
        let total = n_voters + opts.observers;
        let fetch_max_entries = [1, 2, 3, 64][(rng.next_u64() % 4) as usize];
        let snapshot_chunk = [256, 1024, 4096, 1 << 20][(rng.next_u64() % 4) as usize];
        let nodes = (0..total)
            .map(|i| Node {
                id: i as NodeId + 1,
                core: None,
                inc: 0,
                disk_state: None,
                disk_snapshot: None,
                disk_start: 0,
                disk_log: Vec::new(),
                durable: 0,
                crash_pending: None,
                hw_seen: 0,
                verified: 0,
                applied_next: 0,
                state: Vec::new(),
            })
            .collect();
        Sim {
            seed,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            nodes,
            checker: Checker::default(),
            fetch_max_entries,
            snapshot_chunk,
            snapshots_on: opts.snapshots,
            starting: false,
            voters,
            loss_pct: 0,
            dup_pct: 0,
            blocked: BTreeSet::new(),
            faults_on: opts.faults,
            next_record: 0,
            trace: VecDeque::new(),
            verbose: std::env::var("SIM_TRACE").is_ok_and(|v| v == "1"),
            stats: SimStats::default(),
        }
    }

    fn rand(&self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    fn schedule(&mut self, at: u64, ev: SimEvent) {
        let idx = match self.free.pop() {
            Some(i) => {
                self.slab[i] = Some(ev);
                i
            }
            None => {
                self.slab.push(Some(ev));
                self.slab.len() - 1
            }
        };
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, idx)));
    }

    fn note(&mut self, line: String) {
        if self.verbose {
            eprintln!("t={} {line}", self.now);
        }
        if self.trace.len() >= 60 {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("t={} {}", self.now, line));
    }

    pub(crate) fn fail(&self, what: &str) -> ! {
        let trace: Vec<&str> = self.trace.iter().map(|s| s.as_str()).collect();
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| match &n.core {
                Some(c) => format!(
                    "node {} {:?} epoch {} leader {:?} voters {:?} hw {} log [{}, {}) durable {} snapshot {:?}",
                    n.id,
                    c.role(),
                    c.epoch(),
                    c.leader(),
                    c.voters(),
                    c.high_watermark(),
                    n.disk_start,
                    n.log_end(),
                    n.durable,
                    c.snapshot_id()
                ),
                None => format!("node {} down", n.id),
            })
            .collect();
        panic!(
            "SIM FAILURE seed={} at t={}ms: {what}\nreplay: SIM_SEED={} cargo test -p shale-raft --test kraft_sim sim_seeds\nnodes:\n{}\nlast events:\n{}",
            self.seed,
            self.now,
            self.seed,
            nodes.join("\n"),
            trace.join("\n")
        );
    }

    fn run(&mut self, opts: &SimOptions) {
        for i in 0..self.nodes.len() {
            self.start_node(i);
        }
        self.schedule(TICK_MS, SimEvent::Tick);
        self.schedule(50, SimEvent::Client);
        if self.faults_on {
            self.schedule(500 + self.rand(1500), SimEvent::Fault);
        }
        if self.snapshots_on {
            self.schedule(200 + self.rand(1000), SimEvent::Snapshot);
        }
        if opts.reconfig {
            self.schedule(300 + self.rand(2000), SimEvent::Reconfig);
        }
        self.run_until(opts.chaos_ms);
        self.heal();
        let stable_by = self.now + ELECT_BOUND_MS;
        let leader = loop {
            self.run_until(self.now + TICK_MS);
            if let Some(l) = self.stable_leader() {
                break l;
            }
            if self.now > stable_by {
                self.fail("liveness: no stable leader within the bound after healing");
            }
        };
        self.note(format!("stable leader {leader}"));
        // The client retries appends that a leader change dropped (uncommitted entries of a
        // deposed leader are legitimately truncated); each must commit on every node in time.
        let ids: Vec<u64> = (0..HEAL_APPENDS).map(|k| HEAL_ID_BASE + k).collect();
        let commit_by = self.now + COMMIT_BOUND_MS;
        let mut next_try = self.now;
        while !self.checker.all_committed_everywhere(&ids, &self.nodes) {
            if self.now > commit_by {
                let missing = self.checker.missing(&ids);
                self.fail(&format!(
                    "liveness: appends after healing (ids {ids:?}) not committed on every node in time; uncommitted: {missing:?}"
                ));
            }
            if self.now >= next_try {
                if let Some(l) = self.stable_leader() {
                    let missing = self.checker.missing(&ids);
                    self.append_ids(l, &missing);
                    next_try = self.now + RETRY_MS;
                }
            }
            self.run_until(self.now + TICK_MS);
        }
    }

    fn run_until(&mut self, until: u64) {
        while let Some(Reverse((at, _, idx))) = self.queue.peek().copied() {
            if at > until {
                break;
            }
            self.queue.pop();
            let ev = self.slab[idx].take().expect("scheduled event");
            self.free.push(idx);
            self.now = at;
            self.step(ev);
        }
        self.now = self.now.max(until);
    }

    fn step(&mut self, ev: SimEvent) {
        match ev {
            SimEvent::Deliver { to, from, msg } => {
                self.note(format!("{from}->{} {msg:?}", self.nodes[to].id));
                self.feed(to, Event::Message { from, msg });
            }
            SimEvent::FlushDone { node, inc } => {
                let n = &mut self.nodes[node];
                if n.core.is_some() && n.inc == inc {
                    n.durable = n.log_end();
                    let up_to = n.durable;
                    self.feed(node, Event::Flushed { up_to });
                }
            }
            SimEvent::Tick => {
                for i in 0..self.nodes.len() {
                    self.feed(i, Event::Tick { now_ms: self.now });
                }
                self.schedule(self.now + TICK_MS, SimEvent::Tick);
            }
            SimEvent::Client => {
                self.client_append();
                let next = self.now + 20 + self.rand(300);
                self.schedule(next, SimEvent::Client);
            }
            SimEvent::Fault => {
                if self.faults_on {
                    self.inject_fault();
                    let next = self.now + 200 + self.rand(2000);
                    self.schedule(next, SimEvent::Fault);
                }
            }
            SimEvent::Snapshot => {
                self.take_snapshot();
                // Aggressive during chaos; after healing, slow enough that a laggard's transfer
                // (which restarts when the leader replaces its snapshot) completes.
                let next = if self.faults_on {
                    self.now + 200 + self.rand(1000)
                } else {
                    self.now + 3000 + self.rand(3000)
                };
                self.schedule(next, SimEvent::Snapshot);
            }
            SimEvent::Reconfig => {
                if self.faults_on {
                    self.change_voters();
                    let next = self.now + 300 + self.rand(2000);
                    self.schedule(next, SimEvent::Reconfig);
                }
            }
            SimEvent::Restart { node } => {
                if self.nodes[node].core.is_none() {
                    self.start_node(node);
                }
            }
        }
    }

    fn config(&self, id: NodeId) -> KRaftConfig {
        let mut cfg = KRaftConfig::new(id, self.voters.clone());
        cfg.fetch_max_entries = self.fetch_max_entries;
        cfg.fetch_snapshot_max_bytes = self.snapshot_chunk;
        cfg
    }

    fn start_node(&mut self, i: usize) {
        let rng = SeededRng::new(self.rng.next_u64());
        let n = &self.nodes[i];
        let log = LogView::starting_at(n.disk_start, 0, n.disk_log.clone());
        let (core, cmds) = KRaft::restore(
            self.config(n.id),
            rng,
            self.now,
            n.disk_state.clone(),
            n.disk_snapshot.clone(),
            log,
        );
        self.note(format!(
            "start node {} as {:?} epoch {}",
            n.id,
            core.role(),
            core.epoch()
        ));
        self.nodes[i].core = Some(core);
        self.starting = true;
        self.execute(i, cmds);
        self.starting = false;
    }

    /// Feeds an event to a live node and executes its commands (or a prefix, then crashes).
    fn feed(&mut self, i: usize, event: Event) {
        let Some(core) = self.nodes[i].core.as_mut() else {
            return;
        };
        let is_shutdown = event == Event::Shutdown;
        let cmds = match core.handle(event) {
            Ok(c) => c,
            Err(KRaftError::NotLeader { .. }) => Vec::new(),
            Err(e) => self.fail(&format!("node {} reported {e}", self.nodes[i].id)),
        };
        self.execute(i, cmds);
        if is_shutdown {
            self.crash(i);
        }
    }

    fn execute(&mut self, i: usize, cmds: Vec<Command>) {
        let cut = self.nodes[i].crash_pending.take();
        for (k, cmd) in cmds.into_iter().enumerate() {
            if cut == Some(k) {
                self.crash(i);
                return;
            }
            self.execute_one(i, cmd);
        }
        if cut.is_some() {
            self.crash(i);
            return;
        }
        checks::after_step(self, i);
    }

    fn execute_one(&mut self, i: usize, cmd: Command) {
        let id = self.nodes[i].id;
        match cmd {
            Command::Send { to, msg } => self.send(id, to, msg),
            Command::WriteQuorumState(s) => {
                checks::on_persist(self, i, &s);
                self.nodes[i].disk_state = Some(s);
            }
            Command::AppendBatch {
                base_offset,
                entries,
            } => {
                let n = &mut self.nodes[i];
                if base_offset != n.log_end() {
                    let end = n.log_end();
                    self.fail(&format!(
                        "node {id}: append at {base_offset}, log end {end}"
                    ));
                }
                n.disk_log.extend(entries);
            }
            Command::Truncate { to } => {
                checks::on_truncate(self, i, to);
                let n = &mut self.nodes[i];
                n.disk_log.truncate((to - n.disk_start) as usize);
                n.durable = n.durable.min(to);
            }
            Command::WriteSnapshot(s) => {
                checks::on_write_snapshot(self, i, &s);
                self.nodes[i].disk_snapshot = Some(s);
            }
            Command::DeleteLogPrefix { to } => {
                checks::on_delete_prefix(self, i, to);
                let n = &mut self.nodes[i];
                n.disk_log.drain(..(to - n.disk_start) as usize);
                n.disk_start = to;
                n.durable = n.durable.max(to);
                n.verified = n.verified.max(to);
            }
            Command::ResetLog { start_offset } => {
                checks::on_reset_log(self, i, start_offset);
                let n = &mut self.nodes[i];
                n.disk_log.clear();
                n.disk_start = start_offset;
                n.durable = start_offset;
                n.verified = start_offset;
                if !self.starting {
                    self.stats.installs += 1;
                }
            }
            Command::LoadSnapshot(s) => checks::on_load_snapshot(self, i, &s),
            Command::Flush => {
                let at = self.now + 1 + self.rand(5);
                let inc = self.nodes[i].inc;
                self.schedule(at, SimEvent::FlushDone { node: i, inc });
            }
            Command::Commit { high_watermark } => checks::on_commit(self, i, high_watermark),
            Command::Apply {
                base_offset,
                entries,
            } => checks::on_apply(self, i, base_offset, &entries),
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: Message) {
        if self.blocked.contains(&(from, to)) || self.rand(100) < self.loss_pct {
            return;
        }
        let copies = if self.rand(100) < self.dup_pct { 2 } else { 1 };
        for _ in 0..copies {
            let delay = if self.rand(10) == 0 {
                10 + self.rand(190)
            } else {
                1 + self.rand(10)
            };
            let ev = SimEvent::Deliver {
                to: (to - 1) as usize,
                from,
                msg: msg.clone(),
            };
            self.schedule(self.now + delay, ev);
        }
    }

    fn crash(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if n.core.take().is_none() {
            return;
        }
        n.inc += 1;
        n.disk_log.truncate((n.durable - n.disk_start) as usize);
        n.verified = n.verified.min(n.durable);
        n.hw_seen = 0;
        n.applied_next = 0;
        n.state.clear();
        n.crash_pending = None;
        let id = n.id;
        self.stats.crashes += 1;
        self.note(format!("crash node {id}"));
        let back = self.now + 100 + self.rand(3000);
        self.schedule(back, SimEvent::Restart { node: i });
    }

    fn inject_fault(&mut self) {
        let n = self.nodes.len();
        let victim = self.rand(n as u64) as usize;
        let vid = self.nodes[victim].id;
        match self.rand(8) {
            0 => {
                self.note(format!("fault: crash node {vid} mid-step"));
                self.nodes[victim].crash_pending = Some(self.rand(4) as usize);
            }
            1 => {
                self.note(format!("fault: shutdown node {vid}"));
                self.feed(victim, Event::Shutdown);
            }
            2 => {
                self.note(format!("fault: isolate node {vid}"));
                for other in 1..=n as NodeId {
                    if other != vid {
                        self.blocked.insert((vid, other));
                        self.blocked.insert((other, vid));
                    }
                }
            }
            3 => {
                let group: Vec<bool> = (0..n).map(|_| self.rand(2) == 0).collect();
                self.note(format!("fault: split brain {group:?}"));
                for a in 0..n {
                    for b in 0..n {
                        if group[a] != group[b] {
                            self.blocked.insert((a as NodeId + 1, b as NodeId + 1));
                        }
                    }
                }
            }
            4 | 5 => {
                self.note("fault: heal partitions".into());
                self.blocked.clear();
            }
            _ => {
                self.loss_pct = self.rand(30);
                self.dup_pct = self.rand(10);
                self.note(format!(
                    "fault: loss {}% dup {}%",
                    self.loss_pct, self.dup_pct
                ));
            }
        }
    }

    fn heal(&mut self) {
        self.note("heal: network whole, all nodes up".into());
        self.faults_on = false;
        self.blocked.clear();
        self.loss_pct = 0;
        self.dup_pct = 0;
        for i in 0..self.nodes.len() {
            self.nodes[i].crash_pending = None;
            if self.nodes[i].core.is_none() {
                self.start_node(i);
            }
        }
    }

    /// The leader every node follows in its epoch, if there is one.
    fn stable_leader(&self) -> Option<NodeId> {
        let leader = self.nodes.iter().find_map(|n| {
            let c = n.core.as_ref()?;
            (c.role() == RoleKind::Leader).then(|| (n.id, c.epoch()))
        })?;
        let all = self.nodes.iter().all(|n| {
            n.core
                .as_ref()
                .is_some_and(|c| c.epoch() == leader.1 && c.leader() == Some(leader.0))
        });
        all.then_some(leader.0)
    }

    fn client_append(&mut self) {
        let leaders: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i]
                    .core
                    .as_ref()
                    .is_some_and(|c| c.role() == RoleKind::Leader)
            })
            .collect();
        if leaders.is_empty() {
            return;
        }
        let pick = leaders[self.rand(leaders.len() as u64) as usize];
        let count = 1 + self.rand(3);
        self.append_to(self.nodes[pick].id, count);
    }

    /// A node (the leader half the time, making FetchSnapshot likely for laggards) snapshots
    /// its state machine at a random applied offset above its current snapshot.
    fn take_snapshot(&mut self) {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].core.is_some())
            .collect();
        let leader = live.iter().copied().find(|&i| {
            self.nodes[i]
                .core
                .as_ref()
                .is_some_and(|c| c.role() == RoleKind::Leader)
        });
        let pick = match leader {
            Some(l) if self.rand(2) == 0 => l,
            _ if live.is_empty() => return,
            _ => live[self.rand(live.len() as u64) as usize],
        };
        let n = &self.nodes[pick];
        let from = n
            .core
            .as_ref()
            .and_then(|c| c.snapshot_id())
            .map_or(0, |s| s.end_offset);
        let applied = n.applied_next;
        if applied <= from {
            return;
        }
        let end = if self.rand(2) == 0 {
            applied
        } else {
            from + 1 + self.rand((applied - from) as u64) as i64
        };
        let data = codec::encode_snapshot(&n.state[..end as usize]);
        self.note(format!("snapshot node {} at {end}", n.id));
        self.stats.snapshots += 1;
        self.feed(
            pick,
            Event::CreateSnapshot {
                end_offset: end,
                data,
            },
        );
    }

    /// The leader (if any) adds a random non-voter or removes a random voter, itself included.
    /// Refusals (a change pending, a laggard, the last voter) are part of the test.
    fn change_voters(&mut self) {
        let Some(i) = (0..self.nodes.len()).find(|&i| {
            let core = self.nodes[i].core.as_ref();
            core.is_some_and(|c| c.role() == RoleKind::Leader)
        }) else {
            return;
        };
        let voters = self.nodes[i].core.as_ref().map(|c| c.voters().to_vec());
        let voters = voters.unwrap_or_default();
        let all: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        let outside: Vec<NodeId> = all.into_iter().filter(|id| !voters.contains(id)).collect();
        let change = if !outside.is_empty() && (voters.len() < 3 || self.rand(2) == 0) {
            VoterChange::Add(Voter::by_id(
                outside[self.rand(outside.len() as u64) as usize],
            ))
        } else {
            VoterChange::Remove(voters[self.rand(voters.len() as u64) as usize])
        };
        self.note(format!("node {} asked to {change:?}", self.nodes[i].id));
        let core = self.nodes[i].core.as_mut().expect("leader is live");
        match core.handle(Event::ChangeVoters(change.clone())) {
            Ok(cmds) => {
                self.stats.voter_changes += 1;
                self.execute(i, cmds);
            }
            Err(
                KRaftError::VoterChangePending
                | KRaftError::VoterNotCaughtUp(_)
                | KRaftError::DuplicateVoter(_)
                | KRaftError::VoterNotFound(_)
                | KRaftError::LastVoter(_),
            ) => {}
            Err(e) => self.fail(&format!("voter change {change:?}: {e}")),
        }
    }

    fn append_to(&mut self, id: NodeId, count: u64) {
        let ids: Vec<u64> = (self.next_record..self.next_record + count).collect();
        self.next_record += count;
        self.append_ids(id, &ids);
    }

    fn append_ids(&mut self, node: NodeId, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        let records = ids
            .iter()
            .map(|id| Bytes::from(id.to_be_bytes().to_vec()))
            .collect();
        self.feed((node - 1) as usize, Event::AppendRequested { records });
    }
}
