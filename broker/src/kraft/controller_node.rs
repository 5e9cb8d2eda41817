//! A controller-only `shale` process (`process.roles=controller`): one voter of a static
//! metadata quorum (`controller.quorum.voters`), serving the quorum's RPCs on its controller
//! listener, with the metadata [`Controller`] on top so that the node that becomes active
//! bootstraps a fresh cluster (and aborts a metadata transaction a previous leader left open),
//! as Kafka's controller does on activation.
//!
//! ```text
//!  start ─ meta.properties (shale format) ─ QuorumNode on the controller listener
//!        └ Controller over KRaftMetadataQuorum ─ activation task: on each new leadership of this
//!          node, Controller::check_active (catch up, abort, bootstrap) on a blocking thread;
//!          while leading, every second, Controller::fence_stale_brokers (expired sessions) and,
//!          with auto.leader.rebalance.enable, Controller::balance_leaders
//!        └ the listener hands BrokerRegistration / BrokerHeartbeat / AllocateProducerIds to the
//!          Controller, and admin requests brokers forward (CreateTopics, …) to the broker's
//!          handlers over a broker state without partitions or listeners
//!  shutdown ─ the leader resigns (EndQuorumEpoch) ─ store flushed
//! ```
//!
//! The log directory must have been formatted with `shale format --cluster-id ID --config FILE`
//! (every voter with the same id), as Kafka's `kafka-storage.sh format` is required first.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shale_common::{Clock, SeededRng, SystemClock};
use shale_local_log::MetaProperties;
use shale_raft::kraft::{KRaftConfig, RoleKind};
use shale_raft::{Controller, ControllerOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::driver::QuorumView;
use super::metadata::{Applied, KRaftMetadataQuorum, MetadataApplier, SnapshotPolicy};
use super::node::{QuorumNode, QuorumNodeConfig};
use super::peers::Peer;
use crate::api::forward::LocalAdmin;
use crate::config::{BrokerConfig, Listener};

/// How long a metadata write (or a new leader's catch-up) may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Preferred leader elections one balancing round commits at most (Kafka's
/// `maxElectionsPerImbalance`).
const MAX_ELECTIONS_PER_ROUND: usize = 1000;
/// How often the leader looks for brokers whose session expired.
const FENCE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A running controller-only node.
#[derive(Debug)]
pub struct RunningController {
    /// The controller listener's bound address.
    pub addr: SocketAddr,
    node: QuorumNode,
    controller: Arc<Controller>,
    /// The handlers of forwarded admin requests (held: the listener keeps a weak reference).
    _admin: Arc<crate::state::Broker>,
}

impl RunningController {
    /// This node's view of the quorum.
    pub fn view(&self) -> watch::Receiver<QuorumView> {
        self.node.view()
    }

    /// The metadata controller (active only while this node leads).
    pub fn controller(&self) -> &Arc<Controller> {
        &self.controller
    }

    /// Resigns if leading, flushes and stops.
    pub async fn shutdown(self) {
        self.node.shutdown().await;
    }
}

/// Runs a controller-only node until `shutdown` completes.
pub async fn run(config: BrokerConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let running = start(config).await?;
    tracing::info!(addr = %running.addr, "controller listening");
    shutdown.await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// Opens the metadata log, joins the quorum and starts serving.
pub async fn start(config: BrokerConfig) -> anyhow::Result<RunningController> {
    for key in &config.ignored {
        tracing::warn!(key = %key, "ignoring unknown configuration key");
    }
    let meta = read_meta(&config).await?;
    let (listener, socket) = bind_controller_listener(&config).await?;
    let addr = socket.local_addr()?;
    let tls = {
        let config = config.clone();
        shale_common::blocking::io(move || crate::tls::Contexts::load(&config))?
    };
    let clock: Arc<dyn Clock> = SystemClock::new();
    let (node, applied) = join_quorum(
        &config,
        &meta.cluster_id,
        (listener.name, Some(socket)),
        &tls,
        clock.clone(),
    )
    .await?;
    let controller = start_controller(&config, &node, applied, clock.clone()).await?;
    // Admin requests brokers forward here run through the broker's own handlers, on a broker
    // state that hosts no partitions (a controller is never a replica) and has no listeners.
    let admin = {
        let controller = controller.clone();
        let admin = shale_common::blocking::io(move || {
            crate::server::open_broker(config, clock, Some(controller))
        })?;
        Arc::new(admin)
    };
    node.set_forwarded(Arc::new(LocalAdmin::new(&admin)));
    Ok(RunningController {
        addr,
        node,
        controller,
        _admin: admin,
    })
}

/// The first controller listener (`controller.listener.names`) in `listeners`.
pub(super) fn controller_listener(config: &BrokerConfig) -> anyhow::Result<Listener> {
    config
        .listeners
        .iter()
        .find(|l| config.controller_listener_names.contains(&l.name))
        .cloned()
        .context("no controller listener (controller.listener.names) in listeners")
}

/// Binds this node's controller listener.
pub(super) async fn bind_controller_listener(
    config: &BrokerConfig,
) -> anyhow::Result<(Listener, TcpListener)> {
    let listener = controller_listener(config)?;
    let socket = TcpListener::bind((listener.host.as_str(), listener.port))
        .await
        .with_context(|| format!("binding controller listener {listener}"))?;
    Ok((listener, socket))
}

/// Starts this node's quorum member over its metadata log dir: a voter serving `socket`, or an
/// observer fetching from the voters (`socket` None); its applier snapshots the metadata by
/// `metadata.log.max.*` settings.
pub(super) async fn join_quorum(
    config: &BrokerConfig,
    cluster_id: &str,
    (listener_name, socket): (String, Option<TcpListener>),
    tls: &crate::tls::Contexts,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(QuorumNode, Arc<Applied>)> {
    let mut voters = peers(config);
    let ids = voters.iter().map(|v| v.id).collect();
    if voters.is_empty() {
        // A dynamic quorum: the voters come from the log; name our own endpoint for responses.
        if let Ok(own) = controller_listener(config) {
            let host = if own.host.is_empty() {
                "localhost".into()
            } else {
                own.host
            };
            voters.push(Peer {
                id: config.node_id,
                host,
                port: own.port,
            });
        }
    }
    let bootstrap = (2..)
        .zip(&config.bootstrap_servers)
        .map(|(k, (host, port))| Peer {
            id: -k,
            host: host.clone(),
            port: *port,
        })
        .collect();
    let (machine, applied) = MetadataApplier::new(cluster_id);
    let machine = machine.with_snapshots(SnapshotPolicy {
        max_bytes_between: config.metadata_snapshot_max_bytes,
        max_interval_ms: config.metadata_snapshot_max_interval_ms,
    });
    let node_config = QuorumNodeConfig {
        dialer: tls.dialer(&listener_name),
        tls: tls.server(&listener_name),
        node_id: config.node_id,
        cluster_id: cluster_id.to_owned(),
        voters,
        bootstrap,
        listener_name,
        dir: config.metadata_log_dir.clone(),
        raft: KRaftConfig::new(config.node_id, ids),
        clock,
        rng: SeededRng::from_entropy(),
        machine: Box::new(machine),
    };
    let node = QuorumNode::start(node_config, socket).await?;
    Ok((node, applied))
}

/// The voters of `controller.quorum.voters`.
pub(super) fn peers(config: &BrokerConfig) -> Vec<Peer> {
    config
        .voters
        .iter()
        .map(|v| Peer {
            id: v.id,
            host: v.host.clone(),
            port: v.port,
        })
        .collect()
}

/// The metadata controller over `node`'s quorum: it answers BrokerRegistration and
/// BrokerHeartbeat on the controller listener, activates whenever this node becomes leader and
/// fences brokers whose session expired while it leads.
pub(super) async fn start_controller(
    config: &BrokerConfig,
    node: &QuorumNode,
    applied: Arc<Applied>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<Controller>> {
    let dir = config.metadata_log_dir.clone();
    let bootstrap =
        shale_common::blocking::spawn(move || shale_raft::format::bootstrap_records(&dir))
            .await??;
    let quorum = KRaftMetadataQuorum::new(
        config.node_id,
        applied,
        node.handle(),
        clock.clone(),
        WRITE_TIMEOUT,
    )
    .with_bootstrap(bootstrap);
    let controller = Arc::new(
        Controller::with_quorum(
            controller_options(config),
            Arc::new(quorum),
            SeededRng::from_entropy(),
        )
        .with_broker_session_timeout_ms(config.broker_session_timeout_ms),
    );
    node.set_controller(controller.clone());
    tokio::spawn(activate_on_leadership(node.view(), controller.clone()));
    tokio::spawn(fence_stale_brokers(node.view(), controller.clone(), clock));
    if config.auto_leader_rebalance {
        let every = Duration::from_secs(config.leader_imbalance_check_interval_s);
        tokio::spawn(balance_leaders(node.view(), controller.clone(), every));
    }
    Ok(controller)
}

/// `meta.properties` of the metadata log dir, which must be formatted for this node.
pub(super) async fn read_meta(config: &BrokerConfig) -> anyhow::Result<MetaProperties> {
    let dir = config.metadata_log_dir.clone();
    let read = shale_common::blocking::spawn({
        let dir = dir.clone();
        move || MetaProperties::read(&dir)
    });
    let meta = read.await??.with_context(|| {
        format!(
            "{} is not formatted: run `shale format --cluster-id ID --config FILE` on every \
             controller with the same cluster id first",
            dir.display()
        )
    })?;
    anyhow::ensure!(
        meta.node_id == config.node_id,
        "{} was formatted for node.id={}, this is node.id={}",
        dir.display(),
        meta.node_id,
        config.node_id
    );
    Ok(meta)
}

fn controller_options(config: &BrokerConfig) -> ControllerOptions {
    ControllerOptions {
        metadata_log_dir: config.metadata_log_dir.clone(),
        node_id: config.node_id,
        endpoints: Vec::new(),
        rack: None,
        default_num_partitions: config.num_partitions,
        default_replication_factor: config.default_replication_factor,
        snapshot_every_records: 0,
    }
}

/// Each time this node becomes leader in a new epoch, activates the controller (catch up to its
/// own epoch, abort a dangling metadata transaction, bootstrap a fresh cluster), retrying while
/// it stays leader of that epoch.
async fn activate_on_leadership(
    mut view: watch::Receiver<QuorumView>,
    controller: Arc<Controller>,
) {
    let mut activated_epoch = -1;
    loop {
        let current = view.borrow_and_update().clone();
        if current.stopped {
            return;
        }
        if current.role == RoleKind::Leader && current.epoch != activated_epoch {
            let c = controller.clone();
            match shale_common::blocking::spawn(move || c.check_active()).await {
                Ok(Ok(())) => {
                    activated_epoch = current.epoch;
                    tracing::info!(epoch = current.epoch, "active controller");
                }
                Ok(Err(e)) => {
                    tracing::info!(epoch = current.epoch, error = %e, "controller not activated yet");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "controller activation panicked");
                    return;
                }
            }
        }
        if view.changed().await.is_err() {
            return;
        }
    }
}

/// While this node leads, runs `round` on a blocking thread every `every`; a round that says
/// more work is waiting (`Ok(true)`) is followed by another at once.
async fn while_leading<F>(view: watch::Receiver<QuorumView>, every: Duration, what: &str, round: F)
where
    F: Fn() -> Result<bool, shale_raft::ControllerError> + Clone + Send + 'static,
{
    loop {
        let current = view.borrow().clone();
        if current.stopped {
            return;
        }
        let mut more = false;
        if current.role == RoleKind::Leader {
            match shale_common::blocking::spawn(round.clone()).await {
                Ok(Ok(again)) => more = again,
                Ok(Err(e)) => tracing::debug!(error = %e, "no {what} round"),
                Err(e) => {
                    tracing::error!(error = %e, "{what} panicked");
                    return;
                }
            }
        }
        if !more {
            tokio::time::sleep(every).await;
        }
    }
}

/// Fences brokers whose session expired, one per round.
async fn fence_stale_brokers(
    view: watch::Receiver<QuorumView>,
    controller: Arc<Controller>,
    clock: Arc<dyn Clock>,
) {
    let round = move || {
        let now_ms = u64::try_from(clock.now_ms()).unwrap_or(0);
        Ok(controller.fence_stale_brokers(now_ms)?.is_some())
    };
    while_leading(view, FENCE_CHECK_INTERVAL, "stale-broker check", round).await;
}

/// `auto.leader.rebalance.enable`: every `every`, preferred leader elections for partitions
/// led by another replica than their first; a full round ([`MAX_ELECTIONS_PER_ROUND`]) is
/// followed by another at once, as in Kafka's controller.
async fn balance_leaders(
    view: watch::Receiver<QuorumView>,
    controller: Arc<Controller>,
    every: Duration,
) {
    let round = move || {
        let moved = controller.balance_leaders(MAX_ELECTIONS_PER_ROUND)?;
        if moved > 0 {
            tracing::info!(moved, "preferred leaders restored");
        }
        Ok(moved >= MAX_ELECTIONS_PER_ROUND)
    };
    while_leading(view, every, "leader balancing", round).await;
}
