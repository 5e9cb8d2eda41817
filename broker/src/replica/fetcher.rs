//! Follower fetchers (Kafka's `ReplicaFetcherManager` and `ReplicaFetcherThread`): every
//! partition this broker follows is copied from its leader by Fetch requests on the leader's
//! inter-broker listener.
//!
//! ```text
//!  sync(broker) ─ follower partitions grouped by (leader, hash(tp) % num.replica.fetchers)
//!               └ one task per group; a group that empties stops its task
//!  task ─ Fetch(ReplicaState{me, broker epoch}, per partition: CurrentLeaderEpoch,
//!  loop    FetchOffset = LEO, LastFetchedEpoch = latest epoch in the cache)
//!        ─ per partition:  records        → append as written (offsets, epochs, producers)
//!                          HW             → follower HW = min(leader HW, LEO)
//!                          DivergingEpoch → truncate where the logs part, fetch again
//!                          OUT_OF_RANGE   → start over at the leader's log start, or
//!                                           truncate to its HW (an unclean history)
//!                          OFFSET_MOVED_TO_TIERED_STORAGE → start after the remote segment
//!                                           below the leader's local log start (tiered_start)
//!                          other errors   → back off replica.fetch.backoff.ms
//! ```
//! A response is applied only to partitions still following that leader in the leader epoch
//! the fetch was sent in; a role change meanwhile makes the task skip them.

use super::connection::BrokerConnection;
use super::leader_calls::LeaderOf;
use super::{Partition, Role};
use crate::config::ReplicationConfig;
use crate::state::Broker;
use anyhow::Context;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse};
use parking_lot::Mutex;
use shale_common::TopicPartition;
use shale_local_log::{AppendOrigin, LogError};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Weak};
use tokio::sync::watch;
use tokio::time::Instant;

/// The Fetch version followers send (ReplicaState and topic ids).
const FETCH_VERSION: i16 = 16;

/// The follower fetch tasks of one broker.
#[derive(Debug)]
pub struct ReplicaFetchers {
    me: i32,
    config: ReplicationConfig,
    tasks: Mutex<HashMap<FetcherKey, watch::Sender<Vec<TopicPartition>>>>,
}

/// One fetch task: the leader it fetches from and its slot among `num.replica.fetchers`.
type FetcherKey = (i32, usize);

impl ReplicaFetchers {
    /// Fetchers for broker `me`; none runs until [`ReplicaFetchers::sync`].
    pub fn new(me: i32, config: ReplicationConfig) -> ReplicaFetchers {
        ReplicaFetchers {
            me,
            config,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Hands every follower partition to the fetcher of its leader, starting fetchers for new
    /// leaders and stopping those left with nothing to fetch.
    pub fn sync(&self, broker: &Arc<Broker>) {
        let mut want: HashMap<(i32, usize), Vec<TopicPartition>> = HashMap::new();
        for p in broker.replicas().all() {
            if let Role::Follower(f) = p.role() {
                if f.leader_id >= 0 && f.leader_id != self.me {
                    let key = (f.leader_id, self.fetcher_of(&p.tp));
                    want.entry(key).or_default().push(p.tp.clone());
                }
            }
        }
        let mut tasks = self.tasks.lock();
        // A dropped sender ends its task.
        tasks.retain(|key, tx| match want.remove(key) {
            Some(parts) => {
                tx.send_replace(parts);
                true
            }
            None => false,
        });
        for ((leader, index), parts) in want {
            let (tx, rx) = watch::channel(parts);
            let task = Fetcher {
                broker: Arc::downgrade(broker),
                me: self.me,
                leader,
                config: self.config.clone(),
                conn: BrokerConnection::new(
                    format!("broker-{}-fetcher-{index}", self.me),
                    self.config.socket_timeout,
                    broker.inter_broker_dialer(),
                ),
                delayed: HashMap::new(),
            };
            tokio::spawn(task.run(rx));
            tasks.insert((leader, index), tx);
        }
    }

    /// Stops every fetcher.
    pub fn shutdown(&self) {
        self.tasks.lock().clear();
    }

    fn fetcher_of(&self, tp: &TopicPartition) -> usize {
        let mut h = DefaultHasher::new();
        tp.hash(&mut h);
        (h.finish() % self.config.fetchers.max(1) as u64) as usize
    }
}

/// What one fetch asked for a partition.
struct Sent {
    partition: Arc<Partition>,
    leader_epoch: i32,
}

/// What to do with a partition after its answer.
pub(super) enum Next {
    FetchAgain,
    BackOff,
    /// The leader has tiered the offsets asked for: start from the remote tier.
    FromRemote {
        leader_log_start: i64,
    },
}

/// One fetch task: a source broker and the partitions it leads that fetch through this task.
struct Fetcher {
    broker: Weak<Broker>,
    me: i32,
    leader: i32,
    config: ReplicationConfig,
    conn: BrokerConnection,
    delayed: HashMap<TopicPartition, Instant>,
}

impl Fetcher {
    async fn run(mut self, mut parts: watch::Receiver<Vec<TopicPartition>>) {
        tracing::info!(leader = self.leader, "replica fetcher started");
        loop {
            if parts.has_changed().is_err() {
                break;
            }
            let assigned = parts.borrow_and_update().clone();
            let now = Instant::now();
            self.delayed.retain(|_, until| *until > now);
            let Some((addr, req, sent)) = self.next_request(&assigned) else {
                let wake = self.delayed.values().min().copied();
                let wake = wake.unwrap_or(now + self.config.fetch_backoff);
                tokio::select! {
                    changed = parts.changed() => if changed.is_err() { break },
                    _ = tokio::time::sleep_until(wake) => {}
                }
                continue;
            };
            let resp: anyhow::Result<FetchResponse> = self
                .conn
                .call((&addr.0, addr.1), ApiKey::Fetch, FETCH_VERSION, &req)
                .await;
            match resp {
                Ok(resp) if resp.error_code == 0 => self.apply(&resp, &sent).await,
                Ok(resp) => self.back_off_all(&sent, &format!("error {}", resp.error_code)),
                Err(e) => self.back_off_all(&sent, &e.to_string()),
            }
        }
        tracing::info!(leader = self.leader, "replica fetcher stopped");
    }

    fn back_off_all(&mut self, sent: &HashMap<(uuid::Uuid, i32), Sent>, why: &str) {
        tracing::warn!(
            leader = self.leader,
            error = why,
            "replica fetch failed; backing off"
        );
        let until = Instant::now() + self.config.fetch_backoff;
        for s in sent.values() {
            self.delayed.insert(s.partition.tp.clone(), until);
        }
    }

    /// The leader's address and the Fetch for every assigned partition not backing off.
    #[allow(clippy::type_complexity)]
    fn next_request(
        &self,
        assigned: &[TopicPartition],
    ) -> Option<(
        (String, u16),
        FetchRequest,
        HashMap<(uuid::Uuid, i32), Sent>,
    )> {
        let broker = self.broker.upgrade()?;
        let image = broker.replicas().image();
        let leader = image.brokers.get(&self.leader)?;
        let listener = &self.config.inter_broker_listener;
        let endpoint = leader.endpoints.iter().find(|e| &e.name == listener)?;
        let addr = (endpoint.host.clone(), endpoint.port);
        let broker_epoch = image.brokers.get(&self.me).map_or(-1, |b| b.epoch);
        let mut sent = HashMap::new();
        let mut topics: Vec<FetchTopic> = Vec::new();
        for tp in assigned.iter().filter(|tp| !self.delayed.contains_key(*tp)) {
            let Some(p) = broker.replicas().get(tp) else {
                continue;
            };
            let Role::Follower(f) = p.role() else {
                continue;
            };
            if f.leader_id != self.leader {
                continue;
            }
            let part = FetchPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(f.leader_epoch)
                .with_fetch_offset(p.log.log_end_offset())
                .with_last_fetched_epoch(p.log.latest_epoch().unwrap_or(-1))
                .with_log_start_offset(p.log.log_start_offset())
                .with_partition_max_bytes(self.config.fetch_max_bytes);
            match topics.last_mut() {
                Some(t) if t.topic_id == p.topic_id => t.partitions.push(part),
                _ => topics.push(
                    FetchTopic::default()
                        .with_topic_id(p.topic_id)
                        .with_partitions(vec![part]),
                ),
            }
            let key = (p.topic_id, tp.partition);
            sent.insert(
                key,
                Sent {
                    leader_epoch: f.leader_epoch,
                    partition: p,
                },
            );
        }
        if sent.is_empty() {
            return None;
        }
        let req = FetchRequest::default()
            .with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(self.me))
                    .with_replica_epoch(broker_epoch),
            )
            .with_max_wait_ms(self.config.fetch_wait_max.as_millis() as i32)
            .with_min_bytes(self.config.fetch_min_bytes)
            .with_max_bytes(self.config.fetch_response_max_bytes)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics);
        Some((addr, req, sent))
    }

    async fn apply(&mut self, resp: &FetchResponse, sent: &HashMap<(uuid::Uuid, i32), Sent>) {
        let until = Instant::now() + self.config.fetch_backoff;
        let mut from_remote = Vec::new();
        for t in &resp.responses {
            for data in &t.partitions {
                let Some(s) = sent.get(&(t.topic_id, data.partition_index)) else {
                    continue;
                };
                let p = &s.partition;
                let following = matches!(p.role(), Role::Follower(f)
                    if f.leader_id == self.leader && f.leader_epoch == s.leader_epoch);
                if !following {
                    continue;
                }
                let next = shale_common::blocking::io(|| apply_partition(p, data));
                match next {
                    Ok(Next::FetchAgain) => {}
                    Ok(Next::BackOff) => {
                        self.delayed.insert(p.tp.clone(), until);
                    }
                    Ok(Next::FromRemote { leader_log_start }) => {
                        from_remote.push((p.clone(), leader_log_start));
                    }
                    Err(e) => {
                        tracing::error!(partition = %p.tp, leader = self.leader, error = %e, "cannot apply fetched data; backing off");
                        self.delayed.insert(p.tp.clone(), until);
                    }
                }
            }
        }
        for (p, leader_log_start) in from_remote {
            if let Err(e) = self.start_from_remote(&p, leader_log_start).await {
                tracing::warn!(partition = %p.tp, leader = self.leader, error = %format!("{e:#}"),
                    "cannot start from the remote tier yet; backing off");
                self.delayed.insert(p.tp.clone(), until);
            }
        }
    }

    async fn start_from_remote(
        &mut self,
        p: &Arc<Partition>,
        leader_log_start: i64,
    ) -> anyhow::Result<i64> {
        let broker = self.broker.upgrade().context("the broker is stopping")?;
        let image = broker.replicas().image();
        let listener = &self.config.inter_broker_listener;
        let leader = LeaderOf::find(&image, &p.tp.topic, p.tp.partition, listener)?;
        anyhow::ensure!(leader.leader == self.leader, "the leader moved");
        super::tiered_start::start_from_remote(
            &broker,
            &mut self.conn,
            &leader,
            p,
            leader_log_start,
        )
        .await
    }
}

/// Applies one partition's answer to the follower's log.
pub(super) fn apply_partition(p: &Partition, data: &PartitionData) -> Result<Next, LogError> {
    match data.error_code {
        0 if data.diverging_epoch.epoch >= 0 => {
            let (epoch, end) = (data.diverging_epoch.epoch, data.diverging_epoch.end_offset);
            let to = truncation_offset(p, epoch, end);
            tracing::info!(partition = %p.tp, epoch, end, to, "log diverges from the leader's; truncating");
            p.log.truncate_to(to)?;
            p.publish_progress();
            Ok(Next::FetchAgain)
        }
        0 => {
            if let Some(records) = data.records.as_ref().filter(|r| !r.is_empty()) {
                p.log.append(records.clone(), AppendOrigin::Replication)?;
            }
            p.set_follower_high_watermark(data.high_watermark);
            // DeleteRecords and retention on the leader move this replica's log start too, up
            // to what is committed here.
            let start = data.log_start_offset.min(p.high_watermark());
            if start > p.log.log_start_offset() {
                p.log.delete_records_before(start)?;
            }
            Ok(Next::FetchAgain)
        }
        code if code == E::OffsetOutOfRange.code() => {
            let leo = p.log.log_end_offset();
            if data.log_start_offset > leo {
                tracing::info!(partition = %p.tp, leader_log_start = data.log_start_offset, leo, "behind the leader's log start; starting over there");
                p.log.truncate_fully_and_start_at(data.log_start_offset)?;
            } else if data.high_watermark >= 0 && data.high_watermark < leo {
                tracing::warn!(partition = %p.tp, leader_hw = data.high_watermark, leo, "ahead of the leader (unclean history); truncating to its high watermark");
                p.log.truncate_to(data.high_watermark)?;
            } else {
                return Ok(Next::BackOff);
            }
            p.publish_progress();
            Ok(Next::FetchAgain)
        }
        code if code == E::OffsetMovedToTieredStorage.code() => Ok(Next::FromRemote {
            leader_log_start: data.log_start_offset,
        }),
        code => {
            tracing::debug!(partition = %p.tp, code, "replica fetch refused; backing off");
            Ok(Next::BackOff)
        }
    }
}

/// Where to truncate when the leader says our logs part after `leader_end` of `epoch`
/// (Kafka's `getOffsetTruncationState`): the end of that epoch on both sides when we know it,
/// else the end of our largest epoch below it (the next fetch narrows it further).
fn truncation_offset(p: &Partition, epoch: i32, leader_end: i64) -> i64 {
    let leo = p.log.log_end_offset();
    let to = match p.log.end_offset_for_epoch(epoch) {
        Some((ours, end)) if ours == epoch => leader_end.min(end),
        Some((_, end)) => end,
        None => leader_end,
    };
    to.min(leo)
}
