//! The metadata quorum on the network: Kafka's KRaft RPCs ([`wire`]), the driver thread that
//! runs the sans-IO core with its durable store ([`driver`]), the tasks sending to the other
//! voters ([`peers`]), the controller listener ([`listener`]) and their assembly ([`node`]).

pub mod driver;
pub mod listener;
pub mod node;
pub mod peers;
pub mod wire;
