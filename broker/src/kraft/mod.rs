//! The controller side of multi-voter KRaft on the network: how the consensus core in
//! [`shale_raft::kraft`] talks to other controllers (Shale or Kafka 4.x) over Kafka's KRaft
//! RPCs on the controller listener.
//!
//! * [`wire`] — the core's messages as Kafka's Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch,
//!   FetchSnapshot and DescribeQuorum bodies, both directions.
//! * [`driver`] — the thread that runs the sans-IO core with its durable store.
//! * [`peers`] — one task per other voter, sending the core's requests.
//! * [`listener`] — the controller listener, answering peers' requests.
//! * [`broker_lifecycle`] — BrokerRegistration, BrokerHeartbeat, AllocateProducerIds and
//!   AlterPartition on that listener.
//! * [`node`] — a quorum member assembled from the above.
//! * [`metadata`] — the controller's metadata quorum over a member: committed entries applied
//!   to the metadata image, leader-only commits.
//! * [`controller_node`] — a controller-only `shale` process (`process.roles=controller`).
//! * [`controller_channel`] — a broker's connection to the active controller.
//! * [`lifecycle_manager`] — the broker side of BrokerRegistration / BrokerHeartbeat.
//! * [`isr_sender`] — a partition leader's ISR changes, sent to the controller.
//! * [`cluster_node`] — a combined node in a multi-voter quorum: the above, assembled.

pub mod broker_lifecycle;
pub mod cluster_node;
pub mod controller_apis;
pub mod controller_channel;
pub mod controller_node;
pub mod driver;
pub mod isr_sender;
pub mod lifecycle_manager;
pub mod listener;
pub mod metadata;
pub mod node;
pub mod peers;
pub mod raft_voters;
pub mod wire;

#[cfg(test)]
#[path = "wire_test.rs"]
mod wire_test;
