//! The cluster side of a broker node: a combined node (`process.roles=broker,controller`) in a
//! quorum of several voters, or a broker-only node (`process.roles=broker`) observing a quorum
//! of controller-only nodes. Either has the quorum member (an observer without a listener on a
//! broker-only node) and a metadata controller over it, as in [`super::controller_node`] (on an
//! observer it never becomes active: its image is the applied metadata), plus the broker's
//! side of the cluster: registration and heartbeats to the active controller, catching up on
//! the metadata log before any partition log is opened, following metadata as it commits, and
//! forwarding controller-bound client requests to the active controller.
//!
//! ```text
//!  join ─ meta.properties ─ QuorumNode on the controller listener ─ Controller
//!       └ BrokerLifecycle: BrokerRegistration ─ broker epoch = offset of its record
//!       └ wait until the applied metadata reaches that offset (the image is caught up: a log
//!         absent from it really is a deleted topic's)
//!  attach(broker) ─ follow: reconcile partitions (and the group coordinator's partitions of
//!                   __consumer_offsets) on every applied offset
//!                 ─ forwarded requests arriving on the controller listener go to the broker's
//!                   own handlers; the broker forwards its clients' admin requests
//!                 ─ ready: heartbeats ask to be unfenced
//!  controlled_shutdown ─ (broker stops serving, logs closed) ─ stop: the quorum resigns
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shale_common::{Clock, Rng, SeededRng};
use shale_raft::Controller;
use tokio::sync::watch;

use super::controller_channel::ControllerChannel;
use super::controller_node;
use super::driver::QuorumView;
use super::lifecycle_manager::{BrokerLifecycle, LifecycleState, Registration};
use super::metadata::Applied;
use super::node::QuorumNode;
use super::wire::WireContext;
use crate::api::forward::Forwarder;
use crate::config::cluster::Roles;
use crate::config::BrokerConfig;
use crate::replica::ReplicaFetchers;
use crate::state::Broker;

/// How long a controlled shutdown waits for the controller's consent.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request to the active controller may take (finding it included).
const CONTROLLER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster side of a running combined node.
#[derive(Debug)]
pub struct ClusterNode {
    node: QuorumNode,
    controller: Arc<Controller>,
    applied: Arc<Applied>,
    lifecycle: Option<BrokerLifecycle>,
    /// What the controller last said about this broker (its epoch above all).
    lifecycle_state: watch::Receiver<LifecycleState>,
    forward: Arc<ControllerChannel>,
    /// ISR changes go to the controller on a channel of their own.
    isr_channel: Arc<ControllerChannel>,
    fetchers: Arc<ReplicaFetchers>,
    stop: watch::Sender<bool>,
}

impl ClusterNode {
    /// Joins the quorum, registers this broker and waits until its metadata has caught up with
    /// its own registration.
    pub async fn join(
        config: &BrokerConfig,
        tls: &crate::tls::Contexts,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<ClusterNode> {
        join(config, tls, clock).await
    }
}

async fn join(
    config: &BrokerConfig,
    tls: &crate::tls::Contexts,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<ClusterNode> {
    let meta = controller_node::read_meta(config).await?;
    // A combined node serves the quorum on its controller listener; a broker-only node is an
    // observer and only connects to the controllers' listeners.
    let (listener_name, socket) = match config.roles {
        Roles::Broker => {
            let name = config.controller_listener_names.first().cloned();
            (name.context("controller.listener.names is empty")?, None)
        }
        _ => {
            let (listener, socket) = controller_node::bind_controller_listener(config).await?;
            (listener.name, Some(socket))
        }
    };
    let voters = controller_node::peers(config);
    let (node, applied) = controller_node::join_quorum(
        config,
        &meta.cluster_id,
        (listener_name.clone(), socket),
        tls,
        clock.clone(),
    )
    .await?;
    let controller =
        controller_node::start_controller(config, &node, applied.clone(), clock.clone()).await?;
    let channel = |name: &str| {
        let mut ctx = WireContext::new(meta.cluster_id.clone(), config.node_id, name);
        ctx.dialer = tls.dialer(name);
        Arc::new(ControllerChannel::new(
            &voters,
            node.view(),
            ctx,
            CONTROLLER_REQUEST_TIMEOUT,
        ))
    };
    let lifecycle = BrokerLifecycle::start(
        channel(&listener_name),
        registration(config, &meta.cluster_id, &*SeededRng::from_entropy()),
        Duration::from_millis(config.broker_heartbeat_interval_ms),
        {
            let applied = applied.clone();
            Arc::new(move || applied.applied_offset())
        },
    );
    let epoch = lifecycle.registered().await?;
    let mut offsets = applied.subscribe();
    offsets.wait_for(|offset| *offset >= epoch).await?;
    tracing::info!(
        broker_epoch = epoch,
        "metadata caught up with this broker's registration"
    );
    let forward = channel(&listener_name);
    let isr_channel = channel(&listener_name);
    let fetchers = Arc::new(ReplicaFetchers::new(
        config.node_id,
        config.replication.clone(),
    ));
    Ok(ClusterNode {
        isr_channel,
        fetchers,
        node,
        controller,
        applied,
        lifecycle_state: lifecycle.state(),
        lifecycle: Some(lifecycle),
        forward,
        stop: watch::channel(false).0,
    })
}

/// What this broker tells the controller about itself.
fn registration(config: &BrokerConfig, cluster_id: &str, rng: &dyn Rng) -> Registration {
    Registration {
        broker_id: config.node_id,
        cluster_id: cluster_id.to_string(),
        incarnation_id: uuid::Uuid::from_bytes(rng.next_bytes16()),
        endpoints: config.advertised_endpoints(),
        rack: config.broker_rack.clone(),
        metadata_versions: (
            shale_raft::format::BOOTSTRAP_METADATA_VERSION,
            shale_raft::format::BOOTSTRAP_METADATA_VERSION,
        ),
    }
}

impl ClusterNode {
    /// The metadata controller over the quorum (active only while this node leads).
    pub fn controller(&self) -> Arc<Controller> {
        self.controller.clone()
    }

    /// This node's view of the quorum.
    pub fn view(&self) -> watch::Receiver<QuorumView> {
        self.node.view()
    }

    /// Follows the offset of the applied metadata.
    pub fn applied_offsets(&self) -> watch::Receiver<i64> {
        self.applied.subscribe()
    }

    /// The broker's way to the active controller.
    pub fn forwarder(&self) -> Forwarder {
        Forwarder::new(
            self.forward.clone(),
            self.node.view(),
            self.applied.subscribe(),
            self.lifecycle_state.clone(),
        )
    }

    /// Wires the opened broker in: it follows the metadata, answers requests forwarded to this
    /// node's controller, and asks to be unfenced.
    pub fn attach(&self, broker: &Arc<Broker>) {
        self.node
            .set_forwarded(Arc::new(crate::api::forward::LocalAdmin::new(broker)));
        tokio::spawn(follow(
            Arc::downgrade(broker),
            self.fetchers.clone(),
            self.applied.subscribe(),
            self.stop.subscribe(),
        ));
        tokio::spawn(super::isr_sender::run(
            Arc::downgrade(broker),
            self.isr_channel.clone(),
            broker.config.replication.lag_time_max,
            self.stop.subscribe(),
        ));
        if let Some(lifecycle) = &self.lifecycle {
            lifecycle.set_ready();
        }
    }

    /// Controlled shutdown: the controller moves this broker's leaderships away first.
    pub async fn controlled_shutdown(&mut self) {
        if let Some(lifecycle) = self.lifecycle.take() {
            lifecycle
                .controlled_shutdown(CONTROLLED_SHUTDOWN_TIMEOUT)
                .await;
        }
    }

    /// Stops following the metadata and leaves the quorum (resigning if leading).
    pub async fn stop(mut self) {
        self.controlled_shutdown().await;
        let _ = self.stop.send(true);
        self.fetchers.shutdown();
        self.node.shutdown().await;
    }
}

/// Reconciles the broker's partitions with every newly applied metadata offset, and the group
/// coordinator with its leadership of `__consumer_offsets`.
async fn follow(
    broker: std::sync::Weak<Broker>,
    fetchers: Arc<ReplicaFetchers>,
    mut offsets: watch::Receiver<i64>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let Some(b) = broker.upgrade() else { return };
        let reconciled = b.clone();
        let result = shale_common::blocking::spawn(move || {
            let reconciled = b.reconcile();
            b.refresh_tls_if_changed();
            crate::group::store::sync_partitions(&b);
            crate::txn::timers::sync(&b);
            reconciled
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "applying metadata to partitions failed"),
            Err(e) => {
                tracing::error!(error = %e, "applying metadata to partitions panicked");
                return;
            }
        }
        fetchers.sync(&reconciled);
        drop(reconciled);
        tokio::select! {
            changed = offsets.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}
