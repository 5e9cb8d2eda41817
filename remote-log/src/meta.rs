//! The RLMM metadata types this crate works with, re-exported from `shale-rlmm`.

pub use shale_rlmm::{
    RemoteLogSegmentId, RemoteLogSegmentMetadata, RemoteLogSegmentState, TopicIdPartition,
};
