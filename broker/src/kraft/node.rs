//! One member of the metadata quorum, assembled: the durable store opened from the metadata
//! log dir, the driver thread, a sending task per other voter, and the controller listener.
//! [`QuorumNode::start`] brings it up; [`QuorumNode::shutdown`] resigns (a leader names its
//! successors with EndQuorumEpoch), flushes and stops the tasks.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shale_common::{Clock, Rng};
use shale_raft::kraft::store::KRaftStore;
use shale_raft::kraft::{KRaftConfig, KRaftError, NodeId};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use super::driver::{self, DriverHandle, DriverParts, Input, QuorumView, StateMachine};
use super::listener;
use super::peers::{self, Peer};
use super::wire::{Endpoint, WireContext};

/// What a quorum member needs to start.
#[derive(Debug)]
pub struct QuorumNodeConfig {
    pub node_id: NodeId,
    pub cluster_id: String,
    /// Every voter with its controller-listener address (this node included when it votes,
    /// or, in a dynamic quorum, to name its own endpoint).
    pub voters: Vec<Peer>,
    /// `controller.quorum.bootstrap.servers` entries other than this node, under pseudo ids
    /// (-2, -3, …): a node joining a dynamic quorum asks them for the leader.
    pub bootstrap: Vec<Peer>,
    /// The controller listener's name (KIP-853 endpoints carry it).
    pub listener_name: String,
    /// The metadata log dir (`metadata.log.dir`).
    pub dir: PathBuf,
    /// Kafka's quorum timers; [`KRaftConfig::new`] gives the defaults.
    pub raft: KRaftConfig,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    pub machine: Box<dyn StateMachine>,
    /// How the other controllers' listeners are reached.
    pub dialer: crate::tls::Dialer,
    /// The controller listener's TLS side, when it speaks TLS.
    pub tls: Option<Arc<crate::tls::ServerTls>>,
}

/// A running quorum member.
#[derive(Debug)]
pub struct QuorumNode {
    handle: DriverHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: watch::Sender<bool>,
    listener: Arc<listener::Shared>,
}

/// Starts the sending task of a peer, from any thread (the driver's included).
fn peer_spawner(
    ctx: Arc<WireContext>,
    inputs: std::sync::mpsc::SyncSender<driver::Input>,
    request_timeout: Duration,
) -> driver::PeerSpawner {
    let runtime = tokio::runtime::Handle::current();
    driver::PeerSpawner(Box::new(move |id, host, port| {
        let peer = Peer { id, host, port };
        let _entered = runtime.enter();
        peers::spawn_peer(peer, ctx.clone(), inputs.clone(), request_timeout)
    }))
}

impl QuorumNode {
    /// Opens the store, starts the driver, the peer tasks and the listener on `listener`. An
    /// observer (a broker-only node) has no listener: it only fetches from the voters.
    pub async fn start(
        cfg: QuorumNodeConfig,
        listener: Option<TcpListener>,
    ) -> anyhow::Result<QuorumNode> {
        let QuorumNodeConfig {
            node_id,
            cluster_id,
            voters,
            bootstrap,
            listener_name,
            dir,
            mut raft,
            clock,
            rng,
            machine,
            dialer,
            tls,
        } = cfg;
        raft.bootstrap = bootstrap.iter().map(|p| p.id).collect();
        let store_clock = clock.clone();
        let (store, recovered) =
            shale_common::blocking::spawn(move || KRaftStore::open(&dir, store_clock)).await??;
        let mut ctx = WireContext::new(cluster_id, node_id, listener_name);
        ctx.dialer = dialer;
        for p in &voters {
            let endpoint = Endpoint {
                host: p.host.clone(),
                port: p.port,
            };
            ctx.endpoints.insert(p.id, endpoint);
        }
        let ctx = Arc::new(ctx);
        let request_timeout = Duration::from_millis(raft.request_timeout_ms);
        let (inputs, rx) = std::sync::mpsc::sync_channel(driver::INPUT_QUEUE);
        let addresses = voters
            .iter()
            .map(|p| (p.id, (p.host.clone(), p.port)))
            .collect();
        let spawn_peer = peer_spawner(ctx.clone(), inputs.clone(), request_timeout);
        let others = voters.into_iter().filter(|p| p.id != node_id);
        let queues = others
            .chain(bootstrap)
            .map(|p| (p.id, (spawn_peer.0)(p.id, p.host, p.port)))
            .collect();
        let parts = DriverParts {
            cfg: raft,
            store,
            recovered,
            rng,
            clock: clock.clone(),
            machine,
            peers: queues,
            spawn_peer,
            addresses,
        };
        let (handle, thread) = driver::spawn(parts, inputs, rx)?;
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(listener::Shared {
            ctx,
            driver: handle.clone(),
            clock,
            timeout: request_timeout,
            controller: std::sync::OnceLock::new(),
            forwarded: std::sync::OnceLock::new(),
        });
        if let Some(listener) = listener {
            tokio::spawn(listener::serve(listener, tls, shared.clone(), stop_rx));
        }
        Ok(QuorumNode {
            handle,
            thread: Some(thread),
            stop,
            listener: shared,
        })
    }

    /// The driver's input queue and view, for a backend that talks to it from blocking
    /// threads (the metadata controller's [`super::metadata::KRaftMetadataQuorum`]).
    pub fn handle(&self) -> DriverHandle {
        self.handle.clone()
    }

    /// Hands BrokerRegistration / BrokerHeartbeat on the listener to `controller` (once; a
    /// later call is ignored).
    pub fn set_controller(&self, controller: Arc<shale_raft::Controller>) {
        let _ = self.listener.controller.set(controller);
    }

    /// Hands forwarded admin requests on the listener to `handler` (once).
    pub fn set_forwarded(&self, handler: Arc<dyn listener::ForwardedRequests>) {
        let _ = self.listener.forwarded.set(handler);
    }

    /// The latest view of the quorum from this node.
    pub fn view(&self) -> watch::Receiver<QuorumView> {
        self.handle.view.clone()
    }

    /// Appends records as one batch (leader only); returns the offset of the last one.
    pub async fn append(&self, records: Vec<Bytes>) -> Result<i64, AppendError> {
        let (reply, rx) = oneshot::channel();
        self.handle
            .inputs
            .try_send(Input::Append { records, reply })
            .map_err(|_| AppendError::Unavailable)?;
        rx.await
            .map_err(|_| AppendError::Unavailable)?
            .map_err(AppendError::Core)
    }

    /// Resigns, flushes and stops.
    pub async fn shutdown(self) {
        self.stop_with(Input::Shutdown).await;
    }

    /// Stops at once without resigning, as a crash would: peers notice only by their timeouts.
    pub async fn halt(self) {
        self.stop_with(Input::Halt).await;
    }

    async fn stop_with(mut self, input: Input) {
        let _ = self.stop.send(true);
        // The queue may be full: the driver must still get the last word.
        let inputs = self.handle.inputs.clone();
        let _ = shale_common::blocking::spawn(move || inputs.send(input)).await;
        if let Some(thread) = self.thread.take() {
            let _ = shale_common::blocking::spawn(move || thread.join()).await;
        }
    }
}

/// Why an append was not taken.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("the quorum driver is not running or is overloaded")]
    Unavailable,
    #[error(transparent)]
    Core(KRaftError),
}
