//! What a follower reads from the remote tier when its leader has moved the offsets it needs
//! there (Kafka's `TierStateMachine`, kip-405 §4.8): the remote segment that ends just below
//! the leader's local log start, its leader-epoch checkpoint and its producer snapshot. The
//! follower then starts its log after that segment and fetches only the leader's local tail.

use super::Tiering;
use anyhow::Context;
use bytes::Bytes;
use shale_remote_log::{IndexType, RemoteStorageManager};
use shale_rlmm::TopicIdPartition;

/// The state a follower starts from: its log begins at `next_offset`.
#[derive(Debug)]
pub struct RemoteStart {
    /// The end offset of the remote segment + 1: where the follower fetches from.
    pub next_offset: i64,
    /// The segment's leader-epoch checkpoint entries `(epoch, start offset)`.
    pub epochs: Vec<(i32, i64)>,
    /// The segment's producer snapshot, when one was uploaded with it.
    pub producer_snapshot: Option<Bytes>,
}

impl Tiering {
    /// Finds the COPY_SEGMENT_FINISHED segment holding `target` in `epoch` (reading the
    /// partition's metadata forward first: it may have been published moments ago by the
    /// leader) and fetches its auxiliary state.
    pub async fn remote_start(
        &self,
        tp: TopicIdPartition,
        epoch: i32,
        target: i64,
    ) -> anyhow::Result<RemoteStart> {
        let active = self.activate().await?;
        let rlmm = active.rlmm.clone();
        let lookup = tp.clone();
        let meta = shale_common::blocking::spawn(move || {
            rlmm.catch_up(std::slice::from_ref(&lookup))?;
            rlmm.remote_log_segment_metadata(&lookup, epoch, target)
        })
        .await??;
        let meta = meta.with_context(|| {
            format!("no remote segment of {tp} holds offset {target} in leader epoch {epoch}")
        })?;
        let checkpoint = self
            .rsm
            .fetch_index(&meta, IndexType::LeaderEpoch)
            .await
            .context("fetching the remote leader-epoch checkpoint")?;
        let epochs = shale_local_log::parse_leader_epoch_checkpoint(&checkpoint)
            .context("reading the remote leader-epoch checkpoint")?;
        let producer_snapshot = match self
            .rsm
            .fetch_index(&meta, IndexType::ProducerSnapshot)
            .await
        {
            Ok(bytes) => Some(bytes),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e).context("fetching the remote producer snapshot"),
        };
        Ok(RemoteStart {
            next_offset: meta.end_offset + 1,
            epochs,
            producer_snapshot,
        })
    }
}
