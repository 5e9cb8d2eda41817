//! Lifecycle states of a remote segment and of a remote partition deletion, with their stable
//! wire ids and the allowed transitions (KIP-405 §2.4, §2.5).
//!
//! Segment lifecycle (self-transitions are always valid so retries and failover are idempotent):
//!
//! ```text
//!                 +---------------------+
//!   (none) -----> | COPY_SEGMENT_STARTED| (0)
//!                 +---------------------+
//!                    |               |
//!                    v               |
//!     +----------------------+       |
//!     | COPY_SEGMENT_FINISHED| (1)   |
//!     +----------------------+       |
//!                    |               |
//!                    v               v
//!                 +-----------------------+
//!                 | DELETE_SEGMENT_STARTED| (2)
//!                 +-----------------------+
//!                    |
//!                    v
//!                 +------------------------+
//!                 | DELETE_SEGMENT_FINISHED| (3, terminal)
//!                 +------------------------+
//! ```
//!
//! Partition deletion: `(none) -> DELETE_PARTITION_MARKED (0) -> DELETE_PARTITION_STARTED (1)
//! -> DELETE_PARTITION_FINISHED (2)`, again with self-transitions allowed.

use std::fmt;

/// State of one remote log segment; the discriminant is the int8 written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i8)]
pub enum RemoteLogSegmentState {
    /// Upload in progress; not readable.
    CopySegmentStarted = 0,
    /// Upload done; the segment serves reads.
    CopySegmentFinished = 1,
    /// Deletion in progress; not readable, still listed so deletion can be retried.
    DeleteSegmentStarted = 2,
    /// Deleted; the cache forgets the segment.
    DeleteSegmentFinished = 3,
}

impl RemoteLogSegmentState {
    /// All states in id order.
    pub const ALL: [RemoteLogSegmentState; 4] = [
        RemoteLogSegmentState::CopySegmentStarted,
        RemoteLogSegmentState::CopySegmentFinished,
        RemoteLogSegmentState::DeleteSegmentStarted,
        RemoteLogSegmentState::DeleteSegmentFinished,
    ];

    /// The stable wire id.
    pub fn id(self) -> i8 {
        self as i8
    }

    /// The state with wire id `id`, if any.
    pub fn from_id(id: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Whether a segment may move from `from` (`None` = not yet known) to `to`.
    pub fn is_valid_transition(from: Option<Self>, to: Self) -> bool {
        use RemoteLogSegmentState::*;
        match from {
            None => to == CopySegmentStarted,
            Some(f) if f == to => true,
            Some(CopySegmentStarted) => matches!(to, CopySegmentFinished | DeleteSegmentStarted),
            Some(CopySegmentFinished) => to == DeleteSegmentStarted,
            Some(DeleteSegmentStarted) => to == DeleteSegmentFinished,
            Some(DeleteSegmentFinished) => false,
        }
    }
}

impl fmt::Display for RemoteLogSegmentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            RemoteLogSegmentState::CopySegmentStarted => "COPY_SEGMENT_STARTED",
            RemoteLogSegmentState::CopySegmentFinished => "COPY_SEGMENT_FINISHED",
            RemoteLogSegmentState::DeleteSegmentStarted => "DELETE_SEGMENT_STARTED",
            RemoteLogSegmentState::DeleteSegmentFinished => "DELETE_SEGMENT_FINISHED",
        };
        f.write_str(name)
    }
}

/// State of a remote partition deletion; the discriminant is the int8 written on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i8)]
pub enum RemotePartitionDeleteState {
    /// Deletion requested.
    DeletePartitionMarked = 0,
    /// Segments are being deleted.
    DeletePartitionStarted = 1,
    /// All remote data is gone; the store drops the partition's cache.
    DeletePartitionFinished = 2,
}

impl RemotePartitionDeleteState {
    /// All states in id order.
    pub const ALL: [RemotePartitionDeleteState; 3] = [
        RemotePartitionDeleteState::DeletePartitionMarked,
        RemotePartitionDeleteState::DeletePartitionStarted,
        RemotePartitionDeleteState::DeletePartitionFinished,
    ];

    /// The stable wire id.
    pub fn id(self) -> i8 {
        self as i8
    }

    /// The state with wire id `id`, if any.
    pub fn from_id(id: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Whether a partition deletion may move from `from` (`None` = nothing recorded) to `to`.
    pub fn is_valid_transition(from: Option<Self>, to: Self) -> bool {
        use RemotePartitionDeleteState::*;
        match from {
            None => to == DeletePartitionMarked,
            Some(f) if f == to => true,
            Some(DeletePartitionMarked) => to == DeletePartitionStarted,
            Some(DeletePartitionStarted) => to == DeletePartitionFinished,
            Some(DeletePartitionFinished) => false,
        }
    }
}

impl fmt::Display for RemotePartitionDeleteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            RemotePartitionDeleteState::DeletePartitionMarked => "DELETE_PARTITION_MARKED",
            RemotePartitionDeleteState::DeletePartitionStarted => "DELETE_PARTITION_STARTED",
            RemotePartitionDeleteState::DeletePartitionFinished => "DELETE_PARTITION_FINISHED",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::RemoteLogSegmentState as S;
    use super::RemotePartitionDeleteState as P;

    #[test]
    fn segment_ids_are_stable() {
        assert_eq!(
            S::ALL.map(S::id),
            [0, 1, 2, 3],
            "wire ids must never change"
        );
        for s in S::ALL {
            assert_eq!(S::from_id(s.id()), Some(s));
        }
        assert_eq!(S::from_id(4), None);
        assert_eq!(S::from_id(-1), None);
    }

    #[test]
    fn segment_transition_table() {
        // (from, to, valid) for every pair, including the initial "none" source.
        let valid: &[(Option<S>, S)] = &[
            (None, S::CopySegmentStarted),
            (Some(S::CopySegmentStarted), S::CopySegmentStarted),
            (Some(S::CopySegmentStarted), S::CopySegmentFinished),
            (Some(S::CopySegmentStarted), S::DeleteSegmentStarted),
            (Some(S::CopySegmentFinished), S::CopySegmentFinished),
            (Some(S::CopySegmentFinished), S::DeleteSegmentStarted),
            (Some(S::DeleteSegmentStarted), S::DeleteSegmentStarted),
            (Some(S::DeleteSegmentStarted), S::DeleteSegmentFinished),
            (Some(S::DeleteSegmentFinished), S::DeleteSegmentFinished),
        ];
        let froms = std::iter::once(None).chain(S::ALL.map(Some));
        let mut checked = 0;
        for from in froms {
            for to in S::ALL {
                let expect = valid.contains(&(from, to));
                assert_eq!(
                    S::is_valid_transition(from, to),
                    expect,
                    "{from:?} -> {to:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 20);
    }

    #[test]
    fn partition_delete_ids_and_transitions() {
        assert_eq!(P::ALL.map(P::id), [0, 1, 2]);
        for s in P::ALL {
            assert_eq!(P::from_id(s.id()), Some(s));
        }
        assert_eq!(P::from_id(3), None);
        let valid: &[(Option<P>, P)] = &[
            (None, P::DeletePartitionMarked),
            (Some(P::DeletePartitionMarked), P::DeletePartitionMarked),
            (Some(P::DeletePartitionMarked), P::DeletePartitionStarted),
            (Some(P::DeletePartitionStarted), P::DeletePartitionStarted),
            (Some(P::DeletePartitionStarted), P::DeletePartitionFinished),
            (Some(P::DeletePartitionFinished), P::DeletePartitionFinished),
        ];
        for from in std::iter::once(None).chain(P::ALL.map(Some)) {
            for to in P::ALL {
                let expect = valid.contains(&(from, to));
                assert_eq!(
                    P::is_valid_transition(from, to),
                    expect,
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn display_uses_kafka_names() {
        assert_eq!(S::CopySegmentFinished.to_string(), "COPY_SEGMENT_FINISHED");
        assert_eq!(
            P::DeletePartitionStarted.to_string(),
            "DELETE_PARTITION_STARTED"
        );
    }
}
