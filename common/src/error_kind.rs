//! The one error vocabulary every crate speaks at its seams.
//!
//! Each crate keeps its own error type with the detail (paths, offsets, object keys); each type
//! answers `kind()` with one of these few kinds, which say what a caller — in the end the broker,
//! mapping kinds to Kafka error codes in one exhaustive match — should do about it.

/// What went wrong, coarsely: enough to choose a Kafka error code or a retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad input from a client or caller: reject it; nothing is damaged.
    Invalid,
    /// A configuration value is invalid.
    Config,
    /// The named offset, segment, partition or object does not exist.
    NotFound,
    /// An offset or position outside what is held.
    OutOfRange,
    /// A producer's epoch or sequence is stale or out of order.
    Fenced,
    /// This node does not (or no longer) serve the partition: the log is closed, deleted, or led
    /// elsewhere.
    NotLeader,
    /// Transient: retrying later may succeed (a component still loading, a store outage).
    Retriable,
    /// Stored or received bytes failed an integrity check or could not be parsed.
    Corrupt,
    /// Local or remote storage failed (I/O, out of space, out of descriptors).
    Storage,
}
