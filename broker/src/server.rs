//! Start-up, the accept loops and graceful shutdown.
//!
//! ```text
//!  start ─ format-if-empty ─ Controller::open ─ LogManager::open ─ Broker::new (reconcile)
//!        └ bind every listener ─ one accept loop each ──► one task per connection
//!                          housekeeping task (retention, checkpoints, log size)
//!                          /metrics task
//!  shutdown signal ─ stop accepting ─ connections finish their current request ─
//!        LogManager::shutdown (snapshots, checkpoints, clean marker) ─ Controller::shutdown
//! ```
//!
//! Each accepted connection is served by its own task ([`crate::connection`]: the TLS handshake
//! on a TLS listener, then its requests in order).
//!
//! Connection limits ([`crate::connection_limits`]): an accept loop waits while the broker holds
//! `max.connections` (as Kafka's acceptor blocks) and closes at once a connection whose address
//! is at `max.connections.per.ip`.

use crate::api::ConnectionInfo;
use crate::config::{BrokerConfig, Listener};
use crate::connection_limits::{ConnectionLimits, Refused};
use crate::kraft::cluster_node::ClusterNode;
use crate::kraft::driver::QuorumView;
use crate::state::Broker;
use crate::tiering::{Tiering, TieringParts, TieringSettings, TopicPolicy};
use crate::tls::ServerTls;
use anyhow::Context;
use shale_common::{Clock, SeededRng, SystemClock};
use shale_local_log::{LogManager, LogManagerOptions};
use shale_raft::{Controller, ControllerOptions};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// A broker started by [`start`].
#[derive(Debug)]
pub struct RunningBroker {
    /// The address the first listener is bound to.
    pub addr: SocketAddr,
    /// Every bound listener, in `listeners` order: name and address.
    pub listeners: Vec<(String, SocketAddr)>,
    /// The metrics endpoint, if enabled.
    pub metrics_addr: Option<SocketAddr>,
    broker: Arc<Broker>,
    /// The cluster side of a node of a multi-node cluster.
    cluster: Option<ClusterNode>,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningBroker {
    /// The running broker's state (embedders and tests inspect partitions through it).
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// This node's view of the metadata quorum (a node of a multi-node cluster only).
    pub fn quorum_view(&self) -> Option<watch::Receiver<QuorumView>> {
        self.cluster.as_ref().map(ClusterNode::view)
    }

    /// Stops the broker cleanly and waits for it. In a cluster the controller first moves
    /// leadership away (controlled shutdown) and the quorum is left last.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.controlled_shutdown().await;
        }
        let _ = self.stop.send(true);
        let result = self.done.await.context("broker task panicked")?;
        if let Some(cluster) = self.cluster.take() {
            cluster.stop().await;
        }
        result
    }
}

/// Runs a broker (or, with `process.roles=controller`, a controller-only quorum member) until
/// `shutdown` completes, then stops it cleanly.
pub async fn run(config: BrokerConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    if config.roles == crate::config::cluster::Roles::Controller {
        return crate::kraft::controller_node::run(config, shutdown).await;
    }
    let running = start(config).await?;
    for (name, addr) in &running.listeners {
        tracing::info!(listener = %name, %addr, "listening");
    }
    tracing::info!(addr = %running.addr, "started");
    shutdown.await;
    tracing::info!("shutting down");
    running.shutdown().await
}

/// Opens storage, binds the listeners and serves in the background.
pub async fn start(config: BrokerConfig) -> anyhow::Result<RunningBroker> {
    for key in &config.ignored {
        tracing::warn!(key = %key, "ignoring unknown configuration key");
    }
    // Listeners and limits first: a port in use or an unresolvable override fails start-up
    // before the data directories are touched.
    let limits = ConnectionLimits::from_config(&config.connection_limits).await?;
    let listeners = bind_listeners(&client_listeners(&config)).await?;
    let tls = {
        let config = config.clone();
        Arc::new(shale_common::blocking::io(move || {
            crate::tls::Contexts::load(&config)
        })?)
    };
    let clock = SystemClock::new();
    let cluster = match config.is_multi_node() {
        true => Some(ClusterNode::join(&config, &tls, clock.clone()).await?),
        false => None,
    };
    let controller = cluster.as_ref().map(ClusterNode::controller);
    // Loading logs and replaying metadata and offsets is file I/O: off the runtime's workers.
    let broker = Arc::new(shale_common::blocking::io(|| {
        open_broker(config, clock.clone(), controller)
    })?);
    broker.set_tls(tls.clone());
    // Tiering before the cluster attaches: a follower's first fetch may need the remote tier.
    start_tiering(&broker, clock).await?;
    if let Some(c) = &cluster {
        broker.set_forwarder(c.forwarder());
        c.attach(&broker);
    }
    shale_common::blocking::io(|| crate::group::store::sync_partitions(&broker));
    shale_common::blocking::io(|| crate::txn::timers::sync(&broker));
    let addrs = listeners
        .iter()
        .map(|(name, l)| Ok((name.clone(), l.local_addr()?)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let metrics_addr = match broker.config.metrics_address {
        Some(a) => {
            let l = TcpListener::bind(a)
                .await
                .with_context(|| format!("binding metrics endpoint {a}"))?;
            let bound = l.local_addr()?;
            let weak = Arc::downgrade(&broker);
            let render = move || {
                weak.upgrade()
                    .map(|b| b.render_metrics())
                    .unwrap_or_default()
            };
            tokio::spawn(crate::metrics::serve(l, Arc::new(render)));
            Some(bound)
        }
        None => None,
    };
    let (stop, stop_rx) = watch::channel(false);
    let listeners = listeners
        .into_iter()
        .map(|(name, l)| {
            let server = tls.server(&name);
            (name, l, server)
        })
        .collect();
    let done = tokio::spawn(serve(broker.clone(), listeners, Arc::new(limits), stop_rx));
    Ok(RunningBroker {
        addr: addrs[0].1,
        listeners: addrs,
        metrics_addr,
        broker,
        cluster,
        stop,
        done,
    })
}

/// The listeners clients connect to: all of them on a single node (its controller listener
/// answers clients too), all but the controller listeners on a node of a multi-node cluster
/// (they carry the quorum's traffic).
fn client_listeners(config: &BrokerConfig) -> Vec<Listener> {
    let multi = config.is_multi_node();
    config
        .listeners
        .iter()
        .filter(|l| !multi || !config.controller_listener_names.contains(&l.name))
        .cloned()
        .collect()
}

/// Opens the metadata controller (the single node's own, unless `cluster` brings the one over
/// the cluster's quorum) and the logs, and assembles the broker.
pub(crate) fn open_broker(
    config: BrokerConfig,
    clock: Arc<dyn Clock>,
    cluster: Option<Arc<Controller>>,
) -> anyhow::Result<Broker> {
    let rng = SeededRng::from_entropy();
    let mut dirs = config.log_dirs.clone();
    if !dirs.contains(&config.metadata_log_dir) {
        dirs.push(config.metadata_log_dir.clone());
    }
    let cluster_id = cluster.as_ref().map(|c| c.image().cluster_id.clone());
    shale_raft::format::ensure_formatted_as(
        &dirs,
        cluster_id.as_deref(),
        config.node_id,
        rng.as_ref(),
    )
    .context("formatting the data directories")?;
    let controller = match cluster {
        Some(c) => c,
        None => Arc::new(open_controller(&config, clock.clone(), rng)?),
    };
    let image = controller.image();
    let defaults = config.log_config.clone();
    let configs = |topic: &str| {
        image.topic(topic).map(|t| {
            let cfg = defaults
                .with_overrides(t.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap_or_else(|_| defaults.clone());
            (t.id, cfg)
        })
    };
    let logs = LogManager::open(
        LogManagerOptions {
            log_dirs: config.log_dirs.clone(),
            default_config: config.log_config.clone(),
            open_files_max: config.log_open_files_max,
        },
        clock.clone(),
        &configs,
    )
    .context("loading the logs")?;
    Ok(Broker::new(config, clock, controller, logs)?)
}

/// The single node's controller over its own metadata log (a quorum of one).
fn open_controller(
    config: &BrokerConfig,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn shale_common::Rng>,
) -> anyhow::Result<Controller> {
    let endpoints = config.advertised_endpoints();
    Controller::open(
        ControllerOptions {
            metadata_log_dir: config.metadata_log_dir.clone(),
            node_id: config.node_id,
            endpoints,
            rack: config.broker_rack.clone(),
            default_num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            snapshot_every_records: 20_000,
        },
        clock,
        rng,
    )
    .context("opening the metadata log")
}

/// Binds every listener, or fails naming the one that could not be bound. An empty host means
/// every interface (IPv6 and IPv4 where the machine has IPv6, else IPv4).
async fn bind_listeners(listeners: &[Listener]) -> anyhow::Result<Vec<(String, TcpListener)>> {
    let mut bound = Vec::with_capacity(listeners.len());
    for l in listeners {
        let socket = if l.host.is_empty() {
            match TcpListener::bind(("::", l.port)).await {
                Ok(s) => Ok(s),
                Err(_) => TcpListener::bind(("0.0.0.0", l.port)).await,
            }
        } else {
            TcpListener::bind((l.host.as_str(), l.port)).await
        };
        let socket = socket.with_context(|| format!("binding listener {l}"))?;
        bound.push((l.name.clone(), socket));
    }
    Ok(bound)
}

/// A bound listener and its TLS side.
type Bound = (String, TcpListener, Option<Arc<ServerTls>>);

async fn serve(
    broker: Arc<Broker>,
    listeners: Vec<Bound>,
    limits: Arc<ConnectionLimits>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let housekeeping = tokio::spawn(housekeeping(broker.clone(), stop.clone()));
    let group_timers = tokio::spawn(group_timers(broker.clone(), stop.clone()));
    let txn_timers = tokio::spawn(txn_timers(broker.clone(), stop.clone()));
    let tiering = tokio::spawn(tiering_tasks(broker.clone(), stop.clone()));
    let (tx, mut accepted) = mpsc::channel::<crate::connection::Accepted>(64);
    let mut acceptors = JoinSet::new();
    for bound in listeners {
        acceptors.spawn(accept_loop(
            broker.clone(),
            bound,
            limits.clone(),
            tx.clone(),
        ));
    }
    drop(tx);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            Some(a) = accepted.recv() => {
                connections.spawn(crate::connection::serve(broker.clone(), a, stop.clone()));
            }
            _ = stop.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    acceptors.abort_all();
    while acceptors.join_next().await.is_some() {}
    drop(accepted);
    broker.groups.with(|g| g.fail_waiters());
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(30), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections did not finish within 30 s; closing them");
        connections.abort_all();
    }
    tracing::debug!("connections closed");
    let _ = housekeeping.await;
    let _ = group_timers.await;
    let _ = txn_timers.await;
    let _ = tiering.await;
    if let Some(t) = broker.tiering() {
        t.stop_tasks().await;
        t.snapshot().await;
    }
    let b = broker.clone();
    shale_common::blocking::spawn(move || -> anyhow::Result<()> {
        b.logs().shutdown().context("closing the logs")?;
        b.controller
            .shutdown()
            .context("closing the metadata log")?;
        Ok(())
    })
    .await??;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Installs the topic-config policy and, when enabled, starts tiered storage.
async fn start_tiering(broker: &Arc<Broker>, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let settings = TieringSettings::from_config(&broker.config)?;
    let policy = TopicPolicy::new(broker.config.log_config.clone(), settings.enabled);
    broker.controller.set_topic_config_policy(Arc::new(policy));
    let parts = TieringParts {
        controller: broker.controller.clone(),
        replicas: broker.replicas().clone(),
        topic_metrics: broker.topic_metrics.clone(),
        topics: Arc::new(InternalTopics(Arc::downgrade(broker))),
        dialer: broker.inter_broker_dialer(),
    };
    let rng = SeededRng::from_entropy();
    if let Some(tiering) = Tiering::start(&broker.config, parts, clock, rng).await? {
        broker.set_tiering(tiering);
    }
    Ok(())
}

/// Tiering's way to create `__remote_log_metadata`: the broker's internal-topic path.
#[derive(Debug)]
struct InternalTopics(std::sync::Weak<Broker>);

impl crate::tiering::TopicCreator for InternalTopics {
    fn create(
        &self,
        spec: shale_raft::CreateTopicSpec,
    ) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>> {
        Box::pin(async move {
            let broker = self.0.upgrade().context("the broker is stopping")?;
            match crate::api::admin_topics::create_internal(&broker, spec).await {
                Ok(()) => Ok(()),
                Err(e) if e.is_already_exists() => Ok(()),
                Err(e) => Err(anyhow::anyhow!("{e}")),
            }
        })
    }
}

/// Runs `round` every `period` until `stop` changes. A slow round delays the next tick rather
/// than bunching ticks up; a round in progress is awaited (rounds that may stop early race
/// `stop` themselves).
async fn every<F, Fut>(period: Duration, mut stop: watch::Receiver<bool>, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        round().await;
    }
}

/// The tiering tasks, every `remote.log.manager.task.interval.ms`; a round stops at shutdown.
async fn tiering_tasks(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    let Some(tiering) = broker.tiering().cloned() else {
        return;
    };
    every(tiering.settings.task_interval, stop.clone(), || {
        let (tiering, mut stop) = (tiering.clone(), stop.clone());
        async move {
            tokio::select! {
                _ = tiering.run_round() => {}
                _ = stop.changed() => {}
            }
        }
    })
    .await;
}

/// The group coordinator's timers (sessions, rebalances, offset expiry), every 100 ms.
async fn group_timers(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    every(Duration::from_millis(100), stop, || {
        let b = broker.clone();
        async move {
            if let Err(e) =
                shale_common::blocking::spawn(move || crate::group::store::tick(&b)).await
            {
                tracing::error!(error = %e, "group coordinator timers panicked");
            }
        }
    })
    .await;
}

/// The transaction coordinator's timers: timed-out transactions are aborted every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, expired ids removed every
/// `transaction.remove.expired.transaction.cleanup.interval.ms`.
async fn txn_timers(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    let cfg = broker.txns.with(|c| c.config().clone());
    let period = cfg
        .abort_interval_ms
        .min(cfg.remove_expired_interval_ms)
        .max(1);
    let mut next_expiry = broker.clock.now_ms() + cfg.remove_expired_interval_ms;
    every(Duration::from_millis(period as u64), stop, || {
        let b = broker.clone();
        let now = b.clock.now_ms();
        let expire = now >= next_expiry;
        if expire {
            next_expiry = now + cfg.remove_expired_interval_ms;
        }
        async move { crate::txn::timers::tick(&b, true, expire).await }
    })
    .await;
}

/// Periodic retention, checkpoints, gauges and the check for renewed TLS store files.
async fn housekeeping(broker: Arc<Broker>, stop: watch::Receiver<bool>) {
    let every_ms = broker
        .config
        .retention_check_interval_ms
        .min(broker.config.checkpoint_interval_ms)
        .max(100);
    every(Duration::from_millis(every_ms), stop, || {
        let b = broker.clone();
        async move {
            let result = shale_common::blocking::spawn(move || {
                b.logs().housekeeping()?;
                b.logs().write_checkpoints()?;
                let size: u64 = b.logs().all_logs().iter().map(|l| l.size_in_bytes()).sum();
                b.metrics.log_size_bytes.set(size as i64);
                b.refresh_tls();
                Ok::<_, shale_local_log::LogError>(())
            })
            .await;
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "housekeeping failed"),
                Err(e) => tracing::error!(error = %e, "housekeeping panicked"),
            }
        }
    })
    .await;
}

/// Accepts connections on one listener until aborted, within the connection limits.
async fn accept_loop(
    broker: Arc<Broker>,
    (name, listener, tls): Bound,
    limits: Arc<ConnectionLimits>,
    tx: mpsc::Sender<crate::connection::Accepted>,
) {
    let mut refusals = RefusalLog::default();
    let shared_name: Arc<str> = Arc::from(name.as_str());
    loop {
        limits.wait_for_slot().await;
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(listener = %name, error = %e, "accept failed");
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::Interrupted
                ) {
                    // Out of descriptors or memory: give closing connections a moment.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        let permit = loop {
            match limits.try_acquire(peer.ip()) {
                Ok(permit) => break Some(permit),
                // Another listener took the last slot since the wait: hold this one until free.
                Err(Refused::BrokerFull) => limits.wait_for_slot().await,
                Err(Refused::PerIp { limit }) => {
                    broker.metrics.connections_rejected.inc();
                    refusals.note(&name, peer, limit);
                    break None;
                }
            }
        };
        let Some(permit) = permit else {
            continue; // dropping the stream closes the connection
        };
        // `connection_creation_rate` (ip quotas): over it, the connection is held unserved for
        // the throttle time, then closed, as Kafka's acceptor does.
        let wait = broker.quotas.record_connection(&broker.image(), peer.ip());
        if wait > 0 {
            broker.metrics.connections_rejected.inc();
            tracing::debug!(listener = %name, %peer, wait_ms = wait, "connection over its address's connection_creation_rate: closed unserved");
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                drop((stream, permit));
            });
            continue;
        }
        let _ = stream.set_nodelay(true);
        let accepted = crate::connection::Accepted {
            stream,
            connection: ConnectionInfo {
                peer,
                listener: shared_name.clone(),
                forwarded: false,
                principal: Arc::from(crate::tls::ANONYMOUS),
                mute: Default::default(),
            },
            permit,
            tls: tls.clone(),
        };
        if tx.send(accepted).await.is_err() {
            return;
        }
    }
}

/// Logs refused connections without a line per connection during a flood: the first refusal,
/// then a count at most every 10 s (the metric has the exact total).
#[derive(Default)]
struct RefusalLog {
    last: Option<tokio::time::Instant>,
    since_last: u64,
}

impl RefusalLog {
    fn note(&mut self, listener: &str, peer: SocketAddr, limit: usize) {
        self.since_last += 1;
        tracing::debug!(%listener, %peer, limit, "closed connection: address at its limit");
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        tracing::warn!(
            %listener,
            %peer,
            limit,
            refused = self.since_last,
            "closing new connections from addresses at max.connections.per.ip"
        );
        self.last = Some(tokio::time::Instant::now());
        self.since_last = 0;
    }
}
