//! Seeded simulation of one partition replicated on three brokers, with crashes, lost messages
//! and an isolated broker, on a virtual clock.
//!
//! Real code: each broker's [`ReplicaManager`] (its partition over a real log in a temporary
//! directory, roles from metadata images, the ISR and high-watermark rules), the follower's
//! handling of a fetch answer ([`super::fetcher::apply_partition`]: append, truncation on a
//! diverging epoch, out-of-range), the leader's divergence check and follower bookkeeping
//! ([`crate::api::replica_fetch::divergence`], `record_follower_fetch`, `isr_shrink`), acks=all
//! completion ([`Pending`]), the AlterPartition answer rules ([`answer`]) and the active
//! controller ([`Controller`]: registration, heartbeats, session fencing with election from the
//! ISR, AlterPartition). Simulated: time, the network between brokers and to the controller (a
//! fetch, an answer, an AlterPartition or its answer may be lost; one broker at a time may be
//! cut off from everything but clients), process crashes (the log files stay, the process state
//! goes) and restarts, and the clients (acks=all producers with `min.insync.replicas=2`, a
//! consumer reading up to a leader's high watermark). Brokers that reach the controller
//! heartbeat on time: a broker cut off from the controller but not from its followers would go
//! on acknowledging writes as a leader the controller has replaced, in Shale as in Kafka (see
//! docs/cluster.md, Failures), so the simulation does not cut those links separately.
//!
//! Checked after every step ([`World::check`]): the broker the controller names leader holds
//! every acknowledged record and every record a consumer read, at its offset; every replica
//! agrees with that leader below its own high watermark; a leader's high watermark never goes
//! back within its leader epoch; no offset is ever read with two different values. After the
//! chaos everything heals: the three replicas must converge to one log holding every
//! acknowledged record.
//!
//! `cargo test -p shale-broker --lib replica::sim` runs the default seeds; `SIM_SEED=N` replays
//! one seed; `SIM_SEEDS=N` (and `SIM_FIRST=K`) runs more.

use super::fetcher::apply_partition;
use super::{tests::metrics, Partition, ReplicaManager, Role};
use crate::api::acks::Pending;
use crate::api::replica_fetch::{divergence, Refusal};
use crate::kraft::broker_lifecycle::isr_error_code;
use crate::kraft::isr_sender::{answer, conclude, Answer};
use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::fetch_response::{EpochEndOffset, PartitionData};
use shale_common::{Clock, ManualClock, Rng, SeededRng, TopicPartition};
use shale_local_log::{AppendOrigin, LogConfig, LogManager, LogManagerOptions};
use shale_protocol::record::BatchBuilder;
use shale_raft::broker_liveness::Heartbeat;
use shale_raft::controller_isr::{AlterIsr, IsrChange};
use shale_raft::{
    format_dirs, BrokerRegistrationRequest, Controller, ControllerOptions, CreateTopicSpec,
    Endpoint, MetadataLogTuning,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

const CLUSTER: &str = "MkU3OEVBNTcwNTJENDM2Qg";
const BROKERS: i32 = 3;
const CONTROLLER_ID: i32 = 100;
const SESSION_MS: u64 = 3_000;
const HEARTBEAT_MS: u64 = 500;
const LAG_MS: i64 = 6_000;
const CHAOS_STEPS: usize = 300;
const HEAL_ROUNDS: usize = 400;

/// One broker process (or its absence).
struct Node {
    id: i32,
    dir: PathBuf,
    /// The broker epoch of its registration; -1 until the current process has registered.
    epoch: i64,
    /// Process starts so far (part of the incarnation id).
    incarnation: u64,
    /// The running process's replicas; `None` while it is down.
    rm: Option<ReplicaManager>,
    /// Cut off from the other brokers and the controller (clients still reach it).
    isolated: bool,
}

/// An acks=all produce waiting for its answer.
struct Produce {
    node: i32,
    incarnation: u64,
    pending: Pending,
    offset: i64,
    value: Bytes,
}

/// What a seed did, summed over seeds for the report.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    acked: usize,
    refused: usize,
    crashes: usize,
    leader_epochs: i32,
}

struct World {
    rng: Arc<dyn Rng>,
    clock: Arc<ManualClock>,
    controller: Controller,
    tp: TopicPartition,
    nodes: Vec<Node>,
    produces: Vec<Produce>,
    next_value: u64,
    /// Records acknowledged to an acks=all producer: offset → value.
    acked: BTreeMap<i64, Bytes>,
    /// Records a consumer read: offset → value.
    read: BTreeMap<i64, Bytes>,
    /// The highest high watermark seen per (broker, incarnation, leader epoch) while leading.
    hw_seen: HashMap<(i32, u64, i32), i64>,
    stats: Stats,
    _root: tempfile::TempDir,
}

impl World {
    fn new(seed: u64) -> World {
        let root = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_700_000_000_000);
        let cdir = root.path().join("controller");
        format_dirs(
            std::slice::from_ref(&cdir),
            CLUSTER,
            CONTROLLER_ID,
            &*SeededRng::new(seed),
        )
        .unwrap();
        let opts = ControllerOptions {
            metadata_log_dir: cdir,
            node_id: CONTROLLER_ID,
            endpoints: vec![],
            rack: None,
            default_num_partitions: 1,
            default_replication_factor: 1,
            snapshot_every_records: 0,
        };
        let tuning = MetadataLogTuning::default();
        let controller = Controller::open_with(opts, tuning, clock.clone(), SeededRng::new(seed))
            .unwrap()
            .with_broker_session_timeout_ms(SESSION_MS);
        let nodes = (1..=BROKERS)
            .map(|id| Node {
                id,
                dir: root.path().join(format!("broker{id}")),
                epoch: -1,
                incarnation: 0,
                rm: None,
                isolated: false,
            })
            .collect();
        let mut w = World {
            rng: SeededRng::new(seed),
            clock,
            controller,
            tp: TopicPartition::new("t", 0),
            nodes,
            produces: Vec::new(),
            next_value: 0,
            acked: BTreeMap::new(),
            read: BTreeMap::new(),
            hw_seen: HashMap::new(),
            stats: Stats::default(),
            _root: root,
        };
        for i in 0..w.nodes.len() {
            w.start(i);
            w.heartbeat(i);
        }
        let spec = CreateTopicSpec {
            name: "t".into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![(0, (1..=BROKERS).collect())],
            configs: vec![("min.insync.replicas".into(), "2".into())],
        };
        w.controller.create_topic(spec, false).unwrap();
        for i in 0..w.nodes.len() {
            w.heartbeat(i);
        }
        w
    }

    fn now(&self) -> u64 {
        self.clock.now_ms() as u64
    }

    fn chance(&self, percent: u64) -> bool {
        self.rng.next_u64() % 100 < percent
    }

    fn below(&self, n: usize) -> usize {
        (self.rng.next_u64() % n as u64) as usize
    }

    /// The replica of a running broker.
    fn replica(&self, i: usize) -> Option<Arc<Partition>> {
        self.nodes[i].rm.as_ref()?.get(&self.tp)
    }

    /// Starts broker `i`'s process: it opens (and recovers) its logs and registers later.
    fn start(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let logs = LogManager::open(
            LogManagerOptions {
                log_dirs: vec![n.dir.clone()],
                default_config: LogConfig::default(),
                open_files_max: Some(1000),
            },
            self.clock.clone(),
            &|_| None,
        )
        .unwrap();
        n.rm = Some(ReplicaManager::new(
            n.id,
            logs,
            LogConfig::default(),
            metrics(),
        ));
        n.incarnation += 1;
        n.epoch = -1;
    }

    /// Broker `i` dies: its process state goes, its files stay (the page cache survives a
    /// process crash). Its clients' produces get no answer.
    fn crash(&mut self, i: usize) {
        let id = self.nodes[i].id;
        self.nodes[i].rm = None;
        self.produces.retain(|p| p.node != id);
        self.stats.crashes += 1;
    }

    /// Broker `i` registers if it has not yet (this process), else heartbeats; then it applies
    /// the controller's metadata. Nothing reaches the controller from an isolated broker.
    fn heartbeat(&mut self, i: usize) {
        let now = self.now();
        let n = &mut self.nodes[i];
        let Some(rm) = n.rm.as_ref().filter(|_| !n.isolated) else {
            return;
        };
        if n.epoch < 0 {
            let req = BrokerRegistrationRequest {
                broker_id: n.id,
                cluster_id: CLUSTER.into(),
                incarnation_id: Uuid::from_u64_pair(n.id as u64, n.incarnation),
                endpoints: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "localhost".into(),
                    port: 9000 + n.id as u16,
                    security_protocol: 0,
                }],
                rack: None,
            };
            match self.controller.register_broker(req, now) {
                Ok(epoch) => n.epoch = epoch,
                Err(_) => return, // the previous process's session is still live
            }
        }
        let hb = Heartbeat {
            broker_id: n.id,
            broker_epoch: n.epoch,
            current_metadata_offset: self.controller.log_end_offset(),
            want_fence: false,
            want_shutdown: false,
        };
        if self.controller.broker_heartbeat(hb, now).is_err() {
            n.epoch = -1;
            return;
        }
        rm.apply(self.controller.image()).unwrap();
    }

    /// Time passes. Running brokers that reach the controller heartbeat every
    /// [`HEARTBEAT_MS`] (a session expires only for a crashed or isolated broker); the
    /// controller fences brokers whose session expired, electing new leaders.
    fn tick(&mut self, max_ms: u64) {
        let mut left = 1 + self.rng.next_u64() % max_ms;
        while left > 0 {
            let ms = left.min(HEARTBEAT_MS);
            left -= ms;
            self.clock.advance(std::time::Duration::from_millis(ms));
            for i in 0..self.nodes.len() {
                self.heartbeat(i);
            }
            let now = self.now();
            while let Ok(Some(_)) = self.controller.fence_stale_brokers(now) {}
        }
    }

    /// A client sends one record with acks=all to a broker that believes it leads.
    fn produce(&mut self) {
        let leaders: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.replica(i).is_some_and(|p| p.is_leader()))
            .collect();
        if leaders.is_empty() {
            return;
        }
        let i = leaders[self.below(leaders.len())];
        let p = self.replica(i).unwrap();
        if !p.enough_in_sync(false) {
            self.stats.refused += 1; // NOT_ENOUGH_REPLICAS
            return;
        }
        let value = Bytes::from(format!("v{}", self.next_value));
        self.next_value += 1;
        let now = self.clock.now_ms();
        let mut batch = BatchBuilder::new(now);
        batch.push(now, None, Some(value.clone()), vec![]);
        let origin = AppendOrigin::Client {
            leader_epoch: p.leader_epoch(),
            verification: None,
        };
        let info = p
            .log
            .append(batch.build().unwrap().into_bytes(), origin)
            .unwrap();
        p.publish_progress();
        let n = &self.nodes[i];
        self.produces.push(Produce {
            node: n.id,
            incarnation: n.incarnation,
            pending: Pending::new(p, info.first_offset + 1),
            offset: info.first_offset,
            value,
        });
    }

    /// Answers the produces whose wait is over.
    fn settle(&mut self) {
        let nodes = &self.nodes;
        let alive = |p: &Produce| {
            let n = &nodes[(p.node - 1) as usize];
            n.rm.is_some() && n.incarnation == p.incarnation
        };
        let mut waiting = Vec::new();
        for p in std::mem::take(&mut self.produces) {
            match p.pending.outcome() {
                None if alive(&p) => waiting.push(p),
                Some(0) => {
                    let previous = self.acked.insert(p.offset, p.value.clone());
                    assert!(previous.is_none(), "offset {} acknowledged twice", p.offset);
                    self.stats.acked += 1;
                }
                _ => {}
            }
        }
        self.produces = waiting;
    }

    /// Follower `i` fetches once from the leader it knows.
    fn fetch(&mut self, i: usize) {
        let Some(p) = self.replica(i) else { return };
        let Role::Follower(f) = p.role() else { return };
        let leader = (f.leader_id - 1) as usize;
        if f.leader_id < 1 || self.nodes[i].isolated || self.nodes[leader].isolated {
            return;
        }
        let Some(lp) = self.replica(leader) else {
            return;
        };
        if self.chance(10) {
            return; // the request is lost
        }
        let ask = FetchAsk {
            follower: self.nodes[i].id,
            offset: p.log.log_end_offset(),
            last_epoch: p.log.latest_epoch().unwrap_or(-1),
            leader_epoch: f.leader_epoch,
        };
        let image = self.controller.image();
        let eligible = |r: i32| image.brokers.get(&r).is_some_and(|b| !b.fenced);
        let (data, proposal) = serve(&lp, &ask, eligible);
        if let Some(isr) = proposal {
            self.nodes[leader]
                .rm
                .as_ref()
                .unwrap()
                .propose_isr(&self.tp, isr);
        }
        if self.chance(10) {
            return; // the answer is lost
        }
        apply_partition(&p, &data).unwrap();
    }

    /// Leaders check for lagging followers and send their ISR changes to the controller.
    fn alter_isr(&mut self) {
        for i in 0..self.nodes.len() {
            let Some(rm) = self.nodes[i].rm.as_ref() else {
                continue;
            };
            rm.propose_isr_shrinks(LAG_MS);
            for (_, isr) in rm.drain_isr_proposals() {
                self.send_isr(i, isr);
            }
        }
    }

    fn send_isr(&mut self, i: usize, isr: Vec<i32>) {
        let Some(p) = self.replica(i).filter(|p| p.is_leader()) else {
            return;
        };
        let image = self.controller.image();
        let change = IsrChange {
            topic_id: p.topic_id,
            partition: 0,
            leader_epoch: p.leader_epoch(),
            partition_epoch: p.partition_epoch(),
            new_isr: isr
                .iter()
                .map(|&id| (id, image.brokers.get(&id).map_or(-1, |b| b.epoch)))
                .collect(),
            leader_recovery_state: 0,
        };
        p.isr_change_sent(isr.clone());
        let outcome = if self.nodes[i].isolated || self.chance(10) {
            Answer::Unknown // the request is lost
        } else {
            let req = AlterIsr {
                broker_id: self.nodes[i].id,
                broker_epoch: self.nodes[i].epoch,
                partitions: vec![change],
            };
            match self.controller.alter_partition(req) {
                _ if self.chance(10) => Answer::Unknown, // the answer is lost
                Ok(mut outcomes) => match outcomes.remove(0) {
                    Ok(s) => answer(0, s.isr, s.partition_epoch),
                    Err(e) => answer(isr_error_code(e), Vec::new(), -1),
                },
                Err(_) => Answer::Retry,
            }
        };
        if let Some(isr) = conclude(&p, isr, outcome) {
            let rm = self.nodes[i].rm.as_ref().unwrap();
            rm.propose_isr(&self.tp, isr);
        }
    }

    /// A consumer reads a broker that believes it leads, up to its high watermark.
    fn consume(&mut self) {
        let i = self.below(self.nodes.len());
        let Some(p) = self.replica(i).filter(|p| p.is_leader()) else {
            return;
        };
        for (offset, value) in records(&p, p.high_watermark()) {
            let seen = self.read.entry(offset).or_insert_with(|| value.clone());
            assert_eq!(*seen, value, "offset {offset} was read with two values");
        }
    }

    /// Prints the replicas' state (`SIM_TRACE=1`, with `SIM_SEED` to replay one seed).
    fn trace(&self, what: &str) {
        if std::env::var_os("SIM_TRACE").is_none() {
            return;
        }
        let image = self.controller.image();
        let part = &image.topic("t").unwrap().partitions[&0];
        let mut line = format!(
            "{what:<10} controller: leader {} epoch {} isr {:?} |",
            part.leader, part.leader_epoch, part.isr
        );
        for (i, n) in self.nodes.iter().enumerate() {
            match self.replica(i) {
                Some(p) => {
                    line += &format!(
                        " {}{}: {:?} leo {} hw {} epochs {:?} |",
                        n.id,
                        if n.isolated { "(cut)" } else { "" },
                        p.role(),
                        p.log.log_end_offset(),
                        p.high_watermark(),
                        p.log.epoch_entries()
                    )
                }
                None => line += &format!(" {}: down |", n.id),
            }
        }
        eprintln!("{line} acked {:?}", self.acked.keys().collect::<Vec<_>>());
    }

    /// One random step of the chaos phase.
    fn step(&mut self) {
        let i = self.below(self.nodes.len());
        match self.rng.next_u64() % 100 {
            0..=29 => self.produce(),
            30..=54 => self.fetch(i),
            55..=62 => self.alter_isr(),
            63..=72 => (0..self.nodes.len()).for_each(|i| self.heartbeat(i)),
            73..=84 => self.tick(1_500),
            85..=89 => self.consume(),
            90..=92 if self.nodes[i].rm.is_some() => self.crash(i),
            93..=96 if self.nodes[i].rm.is_none() => self.start(i),
            97 if self.nodes.iter().all(|n| !n.isolated) => self.nodes[i].isolated = true,
            98..=99 => self.nodes.iter_mut().for_each(|n| n.isolated = false),
            _ => {}
        }
        self.settle();
        self.trace(&format!("step/{i}"));
    }

    /// One healed round: every broker up and connected, everyone fetches and heartbeats.
    fn heal_round(&mut self) {
        for i in 0..self.nodes.len() {
            self.nodes[i].isolated = false;
            if self.nodes[i].rm.is_none() {
                self.start(i);
            }
            self.heartbeat(i);
            self.fetch(i);
        }
        self.alter_isr();
        self.tick(200);
        self.settle();
    }

    /// Whether the three replicas hold one log, all in the ISR, committed to its end.
    fn converged(&self) -> bool {
        let image = self.controller.image();
        let Some(part) = image.topic("t").and_then(|t| t.partitions.get(&0)) else {
            return false;
        };
        if part.leader < 1 || part.isr.len() != self.nodes.len() {
            return false;
        }
        let Some(leader) = self.replica((part.leader - 1) as usize) else {
            return false;
        };
        let leo = leader.log.log_end_offset();
        leader.is_leader()
            && leader.high_watermark() == leo
            && (0..self.nodes.len()).all(|i| {
                self.replica(i)
                    .is_some_and(|p| p.log.log_end_offset() == leo)
            })
    }
}

/// A follower's fetch of the partition.
struct FetchAsk {
    follower: i32,
    offset: i64,
    last_epoch: i32,
    leader_epoch: i32,
}

/// The leader's answer to `ask` and the ISR it now wants, if any.
fn serve(
    lp: &Partition,
    ask: &FetchAsk,
    eligible: impl Fn(i32) -> bool,
) -> (PartitionData, Option<Vec<i32>>) {
    let data = PartitionData::default()
        .with_high_watermark(lp.high_watermark())
        .with_log_start_offset(lp.log.log_start_offset());
    let refused = |e: E| (data.clone().with_error_code(e.code()), None);
    match lp.role() {
        Role::Leader { leader_epoch } if leader_epoch == ask.leader_epoch => {}
        Role::Leader { leader_epoch } if ask.leader_epoch < leader_epoch => {
            return refused(E::FencedLeaderEpoch)
        }
        Role::Leader { .. } => return refused(E::UnknownLeaderEpoch),
        Role::Follower(_) => return refused(E::NotLeaderOrFollower),
    }
    match divergence(lp, ask.last_epoch, ask.offset) {
        Some(Refusal::Diverging { epoch, end_offset }) => {
            let at = EpochEndOffset::default()
                .with_epoch(epoch)
                .with_end_offset(end_offset);
            return (data.with_diverging_epoch(at), None);
        }
        Some(Refusal::OutOfRange) => return refused(E::OffsetOutOfRange),
        None => {}
    }
    let proposal = lp
        .record_follower_fetch(ask.follower, ask.offset, eligible)
        .flatten();
    let data = data.with_high_watermark(lp.high_watermark());
    match lp.log.read(ask.offset, 4096, lp.log.log_end_offset(), true) {
        Ok(read) => (data.with_records(Some(read.records)), proposal),
        Err(_) => (data.with_error_code(E::OffsetOutOfRange.code()), proposal),
    }
}

/// `(offset, value)` of every record of `p`'s log from its start up to `end` (exclusive).
fn records(p: &Partition, end: i64) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    let mut from = p.log.log_start_offset();
    while from < end {
        let read = p.log.read(from, 1 << 20, end, true).unwrap();
        let batch = crate::tiering::metadata_topic::values_from(read.records, from).unwrap();
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        out.extend(batch.into_iter().filter(|(o, _)| *o < end));
        from = last + 1;
    }
    out
}

impl World {
    /// The invariants, after every step.
    fn check(&mut self, seed: u64, step: usize) {
        let ctx = || format!("seed {seed}, step {step}");
        let image = self.controller.image();
        let part = &image.topic("t").unwrap().partitions[&0];
        self.stats.leader_epochs = self.stats.leader_epochs.max(part.leader_epoch);
        let leader = (part.leader >= 1)
            .then(|| self.replica((part.leader - 1) as usize))
            .flatten();
        if let Some(l) = &leader {
            let held: BTreeMap<i64, Bytes> =
                records(l, l.log.log_end_offset()).into_iter().collect();
            for (what, expected) in [("acknowledged", &self.acked), ("read", &self.read)] {
                for (o, v) in expected.range(l.log.log_start_offset()..) {
                    let ok = held.get(o) == Some(v);
                    assert!(
                        ok,
                        "{}: {what} offset {o} is not on leader {}",
                        ctx(),
                        part.leader
                    );
                }
            }
            for i in 0..self.nodes.len() {
                let Some(p) = self.replica(i) else { continue };
                for (o, v) in records(&p, p.high_watermark()) {
                    let ok = held.get(&o) == Some(&v);
                    assert!(
                        ok,
                        "{}: broker {} differs from the leader at {o}, below its high watermark",
                        ctx(),
                        i + 1
                    );
                }
            }
        }
        for i in 0..self.nodes.len() {
            let Some(p) = self.replica(i).filter(|p| p.is_leader()) else {
                continue;
            };
            let key = (
                self.nodes[i].id,
                self.nodes[i].incarnation,
                p.leader_epoch(),
            );
            let hw = p.high_watermark();
            let seen = self.hw_seen.entry(key).or_insert(hw);
            assert!(
                hw >= *seen,
                "{}: broker {} high watermark went back",
                ctx(),
                i + 1
            );
            *seen = hw;
        }
    }
}

fn run_seed(seed: u64) -> Stats {
    let mut w = World::new(seed);
    for step in 0..CHAOS_STEPS {
        w.step();
        w.check(seed, step);
    }
    let mut rounds = 0;
    while !w.converged() {
        rounds += 1;
        assert!(
            rounds <= HEAL_ROUNDS,
            "seed {seed}: no convergence after healing"
        );
        w.heal_round();
        w.trace("heal");
        w.check(seed, CHAOS_STEPS + rounds);
    }
    let leader = w.replica(0).unwrap();
    let log: BTreeMap<i64, Bytes> = records(&leader, leader.log.log_end_offset())
        .into_iter()
        .collect();
    for i in 1..w.nodes.len() {
        let p = w.replica(i).unwrap();
        let other: BTreeMap<i64, Bytes> = records(&p, p.log.log_end_offset()).into_iter().collect();
        assert_eq!(log, other, "seed {seed}: replicas differ after healing");
    }
    for (o, v) in &w.acked {
        assert_eq!(
            log.get(o),
            Some(v),
            "seed {seed}: acknowledged offset {o} lost"
        );
    }
    w.stats
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

#[test]
fn replication_sim_seeds() {
    let seeds: Vec<u64> = match env_u64("SIM_SEED") {
        Some(s) => vec![s],
        None => {
            let first = env_u64("SIM_FIRST").unwrap_or(0);
            (first..first + env_u64("SIM_SEEDS").unwrap_or(100)).collect()
        }
    };
    let mut total = Stats::default();
    for &seed in &seeds {
        let s = run_seed(seed);
        total.acked += s.acked;
        total.refused += s.refused;
        total.crashes += s.crashes;
        total.leader_epochs += s.leader_epochs;
    }
    println!("{} seeds: {total:?}", seeds.len());
    if seeds.len() >= 20 {
        // The chaos must have done something: acknowledged writes, crashes and failovers.
        let failovers = total.leader_epochs > seeds.len() as i32;
        assert!(
            total.acked > 0 && total.crashes > 0 && failovers,
            "{total:?}"
        );
    }
}
