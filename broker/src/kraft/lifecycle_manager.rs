//! The broker side of the broker lifecycle (Kafka's BrokerLifecycleManager): register with the
//! active controller, then heartbeat every `broker.heartbeat.interval.ms` with the offset of
//! the metadata this broker has applied.
//!
//! ```text
//!  BrokerRegistration (retried until accepted) ── broker epoch
//!  BrokerHeartbeat, want_fence=true  ── until the broker has caught up and loaded its logs
//!  BrokerHeartbeat, want_fence=false ── the controller unfences it (RUNNING)
//!  BrokerHeartbeat, want_shut_down   ── controlled shutdown: until should_shut_down
//! ```
//!
//! A heartbeat the controller refuses with STALE_BROKER_EPOCH (a new controller that lost the
//! registration, or a broker fenced and forgotten) sends the broker back to registering, with
//! the same incarnation id. The latest answer is published on a watch channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use shale_protocol::codec::decode_message;
use shale_protocol::kafka_protocol::error::ResponseError;
use shale_protocol::kafka_protocol::messages::broker_registration_request::{Feature, Listener};
use shale_protocol::kafka_protocol::messages::{
    ApiKey, BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerId, BrokerRegistrationRequest,
    BrokerRegistrationResponse,
};
use shale_protocol::kafka_protocol::protocol::{Encodable, Message, StrBytes};
use shale_raft::Endpoint;
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use super::controller_channel::ControllerChannel;

/// Versions sent (the newest both sides speak: Kafka 4.0's).
const REGISTRATION_VERSION: i16 = BrokerRegistrationRequest::VERSIONS.max;
const HEARTBEAT_VERSION: i16 = BrokerHeartbeatRequest::VERSIONS.max;

/// The pause between heartbeats while in controlled shutdown.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

/// Who this broker is, as it registers.
#[derive(Clone, Debug)]
pub struct Registration {
    pub broker_id: i32,
    pub cluster_id: String,
    /// Random per process start.
    pub incarnation_id: Uuid,
    /// Advertised client listeners.
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// The `metadata.version` range this broker supports.
    pub metadata_versions: (i16, i16),
}

/// What the controller last said about this broker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LifecycleState {
    /// The broker epoch (-1 until registered).
    pub broker_epoch: i64,
    pub fenced: bool,
    pub caught_up: bool,
    pub should_shut_down: bool,
}

/// The lifecycle of one running broker.
#[derive(Debug)]
pub struct BrokerLifecycle {
    state: watch::Receiver<LifecycleState>,
    ready: Arc<AtomicBool>,
    shutting_down: Arc<AtomicBool>,
    /// Wakes the heartbeat loop early (ready, shutting down).
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl BrokerLifecycle {
    /// Starts registering and heartbeating through `channel`; `applied_offset` reports the
    /// offset of the last metadata record this broker applied.
    pub fn start(
        channel: Arc<ControllerChannel>,
        registration: Registration,
        interval: Duration,
        applied_offset: Arc<dyn Fn() -> i64 + Send + Sync>,
    ) -> BrokerLifecycle {
        let (tx, state) = watch::channel(LifecycleState {
            broker_epoch: -1,
            fenced: true,
            ..LifecycleState::default()
        });
        let ready = Arc::new(AtomicBool::new(false));
        let shutting_down = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        let run = Run {
            wake: wake.clone(),
            channel,
            registration,
            interval,
            applied_offset,
            ready: ready.clone(),
            shutting_down: shutting_down.clone(),
            state: tx,
        };
        BrokerLifecycle {
            state,
            ready,
            shutting_down,
            wake,
            task: tokio::spawn(run.run()),
        }
    }

    /// The latest state.
    pub fn state(&self) -> watch::Receiver<LifecycleState> {
        self.state.clone()
    }

    /// Waits until the controller accepted the registration; returns the broker epoch.
    pub async fn registered(&self) -> anyhow::Result<i64> {
        let mut state = self.state.clone();
        let s = state.wait_for(|s| s.broker_epoch >= 0).await?;
        Ok(s.broker_epoch)
    }

    /// The broker has caught up and loaded its logs: ask to be unfenced.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Controlled shutdown: asks the controller to move leadership away and waits (at most
    /// `timeout`) until it says the broker may stop; then stops heartbeating.
    pub async fn controlled_shutdown(self, timeout: Duration) {
        self.shutting_down.store(true, Ordering::Release);
        self.wake.notify_one();
        let mut state = self.state.clone();
        let done = state.wait_for(|s| s.should_shut_down || s.broker_epoch < 0);
        match tokio::time::timeout(timeout, done).await {
            Ok(_) => tracing::info!("controlled shutdown confirmed by the controller"),
            Err(_) => tracing::warn!("controlled shutdown not confirmed by the controller in time"),
        }
        self.task.abort();
    }
}

/// The registering / heartbeating task.
struct Run {
    channel: Arc<ControllerChannel>,
    registration: Registration,
    interval: Duration,
    applied_offset: Arc<dyn Fn() -> i64 + Send + Sync>,
    ready: Arc<AtomicBool>,
    shutting_down: Arc<AtomicBool>,
    wake: Arc<Notify>,
    state: watch::Sender<LifecycleState>,
}

/// Why heartbeating stopped.
enum Ended {
    /// The controller no longer knows the epoch: register again.
    Stale,
    /// The controller allowed the controlled shutdown.
    ShutDown,
}

impl Run {
    async fn run(self) {
        loop {
            let epoch = self.register().await;
            self.state.send_modify(|s| s.broker_epoch = epoch);
            tracing::info!(broker_epoch = epoch, "registered with the controller");
            match self.heartbeat_until_stale(epoch).await {
                Ended::Stale => self.state.send_modify(|s| s.broker_epoch = -1),
                Ended::ShutDown => return,
            }
        }
    }

    async fn register(&self) -> i64 {
        loop {
            match self.try_register().await {
                Ok(epoch) => return epoch,
                Err(e) => tracing::info!(error = %e, "broker registration not accepted yet"),
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    async fn try_register(&self) -> anyhow::Result<i64> {
        let r = &self.registration;
        let listeners = r
            .endpoints
            .iter()
            .map(|e| {
                Listener::default()
                    .with_name(StrBytes::from_string(e.name.clone()))
                    .with_host(StrBytes::from_string(e.host.clone()))
                    .with_port(e.port)
                    .with_security_protocol(e.security_protocol)
            })
            .collect();
        let feature = Feature::default()
            .with_name(StrBytes::from_static_str(
                shale_raft::image::METADATA_VERSION_FEATURE,
            ))
            .with_min_supported_version(r.metadata_versions.0)
            .with_max_supported_version(r.metadata_versions.1);
        let request = BrokerRegistrationRequest::default()
            .with_broker_id(BrokerId(r.broker_id))
            .with_cluster_id(StrBytes::from_string(r.cluster_id.clone()))
            .with_incarnation_id(r.incarnation_id)
            .with_listeners(listeners)
            .with_features(vec![feature])
            .with_rack(r.rack.clone().map(StrBytes::from_string));
        let mut body = BytesMut::new();
        request.encode(&mut body, REGISTRATION_VERSION)?;
        let answer = self
            .channel
            .send(ApiKey::BrokerRegistration, REGISTRATION_VERSION, &body)
            .await?;
        let response: BrokerRegistrationResponse = decode_message(answer, REGISTRATION_VERSION)?;
        if response.error_code != 0 {
            anyhow::bail!("BrokerRegistration error code {}", response.error_code);
        }
        Ok(response.broker_epoch)
    }

    /// Heartbeats every interval until the controller no longer knows `epoch`.
    async fn heartbeat_until_stale(&self, epoch: i64) -> Ended {
        loop {
            match self.heartbeat(epoch).await {
                Ok(response) if response.error_code == 0 => {
                    let next = LifecycleState {
                        broker_epoch: epoch,
                        fenced: response.is_fenced,
                        caught_up: response.is_caught_up,
                        should_shut_down: response.should_shut_down,
                    };
                    self.state.send_if_modified(|s| {
                        let changed = *s != next;
                        *s = next;
                        changed
                    });
                    if response.should_shut_down {
                        return Ended::ShutDown;
                    }
                }
                Ok(response) if response.error_code == ResponseError::StaleBrokerEpoch.code() => {
                    tracing::warn!(
                        broker_epoch = epoch,
                        "the controller no longer knows this broker epoch: registering again"
                    );
                    return Ended::Stale;
                }
                Ok(response) => {
                    tracing::debug!(code = response.error_code, "broker heartbeat refused");
                }
                Err(e) => tracing::debug!(error = %e, "broker heartbeat failed"),
            }
            // In a controlled shutdown the controller is asked again at once (a short pause
            // only), as Kafka's broker does, so leaving takes round trips rather than intervals.
            let pause = if self.shutting_down.load(Ordering::Acquire) {
                SHUTDOWN_POLL
            } else {
                self.interval
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    async fn heartbeat(&self, epoch: i64) -> anyhow::Result<BrokerHeartbeatResponse> {
        let request = BrokerHeartbeatRequest::default()
            .with_broker_id(BrokerId(self.registration.broker_id))
            .with_broker_epoch(epoch)
            .with_current_metadata_offset((self.applied_offset)())
            .with_want_fence(!self.ready.load(Ordering::Acquire))
            .with_want_shut_down(self.shutting_down.load(Ordering::Acquire));
        let mut body = BytesMut::new();
        request.encode(&mut body, HEARTBEAT_VERSION)?;
        let answer = self
            .channel
            .send(ApiKey::BrokerHeartbeat, HEARTBEAT_VERSION, &body)
            .await?;
        Ok(decode_message(answer, HEARTBEAT_VERSION)?)
    }
}
