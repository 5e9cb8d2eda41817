//! Seeded deterministic simulation of the multi-voter KRaft core (`shale_raft::kraft`).
//!
//! N voters (3 or 5, chosen by the seed) and one observer run on a virtual clock over a network
//! that loses, delays, reorders and duplicates messages and can isolate a node or split the
//! cluster in two. Nodes crash (possibly in the middle of executing a command list) and restart
//! from what they had made durable: the last `quorum-state` written, the latest snapshot and the
//! flushed log suffix. A client appends records at random times to whichever node leads. Nodes
//! (the leader half the time) snapshot their state machine (the applied entries, serialized by
//! `codec.rs`) at random applied offsets and drop the log prefix, so a node that was down or cut
//! off usually catches up through FetchSnapshot, whose chunks the network treats like any message.
//! The leader adds and removes voters at random (KIP-853; the pool is every node, so removed
//! voters become observers and observers become voters, the leader may remove itself), and
//! snapshots carry the voter set in force at their end. After a chaos phase the
//! network heals and every node comes back; then a leader must emerge and fresh appends must
//! commit on every node within a bounded virtual time.
//!
//! Checked after every step (see `checks.rs`): at most one leader per epoch and no node leads
//! the same epoch twice (across restarts); a persisted vote never changes within an epoch;
//! persisted epochs never go back; the core's log equals the node's log; a node's high
//! watermark only rises within one incarnation (a restart starts again from 0 and re-learns
//! it); entries below any node's high watermark agree with the global committed log, and once
//! a node holds a committed entry it is never truncated; every majority of the voter set in
//! force at the committed log's end holds its last entry durably (with static voters: it is
//! durable on a majority); the highest-epoch leader holds all of it; `Apply` hands out exactly the
//! node's log, in order, without gaps. Snapshots: every written or loaded snapshot decodes to
//! exactly the committed log below its end offset (with the matching epoch) and never replaces a
//! later one; no node holds a snapshot beyond its high watermark; the log start moves only to
//! the durable snapshot's end; `LoadSnapshot` sets the state machine to the committed prefix and
//! the next `Apply` starts at the snapshot's end (a load never moves the applied offset back).
//!
//! `cargo test -p shale-raft --test kraft_sim` runs the default seeds; `SIM_SEED=N` replays
//! one seed exactly; `SIM_SEEDS=10000` (optionally `SIM_FIRST=K`) runs a long batch.

mod sim;

use sim::{run_seed, SimOptions};

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

#[test]
fn sim_seeds() {
    let seeds: Vec<u64> = match env_u64("SIM_SEED") {
        Some(s) => vec![s],
        None => {
            let first = env_u64("SIM_FIRST").unwrap_or(0);
            let n = env_u64("SIM_SEEDS").unwrap_or(200);
            (first..first + n).collect()
        }
    };
    let (mut elections, mut crashes, mut committed) = (0, 0, 0);
    let (mut snapshots, mut installs, mut voter_changes) = (0, 0, 0);
    for seed in &seeds {
        let stats = run_seed(*seed, &SimOptions::default());
        elections += stats.elections;
        crashes += stats.crashes;
        committed += stats.committed;
        snapshots += stats.snapshots;
        installs += stats.installs;
        voter_changes += stats.voter_changes;
    }
    eprintln!(
        "sim: {} seeds, {elections} leader elections, {crashes} crashes, {committed} committed entries, {snapshots} snapshots, {installs} installed through FetchSnapshot, {voter_changes} voter changes",
        seeds.len()
    );
    assert!(
        elections >= seeds.len() as u64,
        "every seed elects at least one leader"
    );
    if seeds.len() >= 100 {
        assert!(installs > 0, "some node catches up through FetchSnapshot");
        assert!(voter_changes > 0, "some leader changes the voter set");
    }
}

#[test]
fn sim_single_voter_commits_alone() {
    let opts = SimOptions {
        voters: Some(1),
        observers: 0,
        chaos_ms: 2_000,
        faults: false,
        snapshots: true,
        reconfig: false,
    };
    let stats = run_seed(7, &opts);
    assert!(stats.committed >= 1, "{stats:?}");
}

#[test]
fn sim_healthy_cluster_commits_everything() {
    for seed in 0..4 {
        let opts = SimOptions {
            voters: None,
            observers: 1,
            chaos_ms: 5_000,
            faults: false,
            snapshots: true,
            reconfig: false,
        };
        let stats = run_seed(seed, &opts);
        assert_eq!(stats.elections, 1, "seed {seed}: {stats:?}");
        assert!(stats.committed > 10, "seed {seed}: {stats:?}");
    }
}
