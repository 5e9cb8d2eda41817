//! Concurrency of the tiering tasks: each partition's copy and expiration run as their own tasks,
//! bounded broker-wide by two pools, so one slow or hung partition never holds up the others.
//!
//! ```text
//!  every task interval, for each tiered leader partition:
//!    copy   not running for it? ─ spawn ─ wait for a copier permit (pool size) ─ copy_round
//!    expire not running for it? ─ spawn ─ wait for an expiration permit       ─ expire_round
//! ```
//!
//! The pools are Kafka's `remote.log.manager.copier.thread.pool.size` and
//! `remote.log.manager.expiration.thread.pool.size`; the byte-rate quota on uploads is shared by
//! every copier. A partition has at most one copy and one expiration in flight; a round that
//! finds its previous task still running skips it, as Kafka's fixed-delay scheduling does. What
//! is running is tracked by partition and cleared by a guard, so an aborted task frees its slot.

use super::{RemoteLogManager, TieredPartition};
use parking_lot::Mutex;
use shale_rlmm::TopicIdPartition;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Which of a partition's two tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Copy,
    Expire,
}

/// The two bounded pools and the tasks running in them.
#[derive(Debug)]
pub struct TaskPools {
    copiers: Arc<Semaphore>,
    expirers: Arc<Semaphore>,
    running: Arc<Mutex<HashSet<(TopicIdPartition, Kind)>>>,
    tasks: Mutex<JoinSet<()>>,
}

/// Clears a partition's running mark however its task ends (done, failed or aborted).
struct Running {
    set: Arc<Mutex<HashSet<(TopicIdPartition, Kind)>>>,
    key: (TopicIdPartition, Kind),
}

impl Drop for Running {
    fn drop(&mut self) {
        self.set.lock().remove(&self.key);
    }
}

impl TaskPools {
    /// Pools of `copiers` and `expirers` concurrent tasks (each at least 1).
    pub fn new(copiers: usize, expirers: usize) -> TaskPools {
        TaskPools {
            copiers: Arc::new(Semaphore::new(copiers.max(1))),
            expirers: Arc::new(Semaphore::new(expirers.max(1))),
            running: Arc::default(),
            tasks: Mutex::new(JoinSet::new()),
        }
    }

    /// Starts the copy and expiration of each partition that has none in flight. Returns at
    /// once; the tasks run on the current tokio runtime.
    pub fn schedule(&self, rlm: &Arc<RemoteLogManager>, partitions: &[Arc<dyn TieredPartition>]) {
        let mut tasks = self.tasks.lock();
        while tasks.try_join_next().is_some() {}
        for p in partitions {
            for kind in [Kind::Copy, Kind::Expire] {
                let key = (p.topic_id_partition(), kind);
                if !self.running.lock().insert(key.clone()) {
                    continue;
                }
                let running = Running {
                    set: self.running.clone(),
                    key,
                };
                let pool = match kind {
                    Kind::Copy => self.copiers.clone(),
                    Kind::Expire => self.expirers.clone(),
                };
                let (rlm, p) = (rlm.clone(), p.clone());
                tasks.spawn(async move {
                    let _running = running;
                    let Ok(_permit) = pool.acquire_owned().await else {
                        return; // closed at shutdown
                    };
                    match kind {
                        Kind::Copy => rlm.run_copy(p.as_ref()).await,
                        Kind::Expire => rlm.run_expire(p.as_ref()).await,
                    }
                });
            }
        }
    }

    /// Tasks in flight (waiting for a permit or running).
    pub fn in_flight(&self) -> usize {
        self.running.lock().len()
    }

    /// Stops every task at its next await point and waits until all are gone.
    pub async fn shutdown(&self) {
        self.copiers.close();
        self.expirers.close();
        let mut tasks = std::mem::take(&mut *self.tasks.lock());
        tasks.shutdown().await;
    }
}
