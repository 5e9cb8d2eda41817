//! Shared leaf crate: the injected [`Clock`] and [`Rng`] that library code must use instead of
//! ambient time and randomness, and [`TopicPartition`], Kafka's partition identity.
//!
//! Everything here is tiny on purpose; storage and protocol crates may all depend on it.

mod clock;
mod rng;
mod topic_partition;

pub use clock::{Clock, ManualClock, SystemClock};
pub use rng::{Rng, SeededRng};
pub use topic_partition::TopicPartition;
