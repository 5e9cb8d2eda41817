//! Deleting a topic's remote data so that nothing is orphaned, even across a crash.
//!
//! ```text
//!  put delete marker ─ DELETE_PARTITION_MARKED ─ DELETE_PARTITION_STARTED ─
//!  every segment: DELETE_SEGMENT_STARTED ─ delete objects ─ DELETE_SEGMENT_FINISHED ─
//!  delete whatever else is under the partition prefix ─ DELETE_PARTITION_FINISHED ─ remove marker
//! ```
//! Kafka deletes segments directly and orphans them if the broker dies midway; here the marker
//! in the remote store is written first, and [`RemoteLogManager::sweep_deleted`] at start-up
//! finishes every partition that still has one.

use super::{RemoteLogManager, TaskError};
use shale_rlmm::RemotePartitionDeleteState::{
    DeletePartitionFinished, DeletePartitionMarked, DeletePartitionStarted,
};
use shale_rlmm::{RemotePartitionDeleteMetadata, RemotePartitionDeleteState, TopicIdPartition};

impl RemoteLogManager {
    /// Deletes every remote object of a partition whose topic was deleted.
    pub async fn delete_partition(&self, tp: &TopicIdPartition) -> Result<(), TaskError> {
        self.forget(tp);
        self.rsm.put_delete_marker(tp).await?;
        self.publish_partition_delete(tp, DeletePartitionMarked)?;
        self.publish_partition_delete(tp, DeletePartitionStarted)?;
        for m in self.metadata.segments(tp) {
            self.delete_segment(&m).await?;
        }
        let leftovers = self.rsm.delete_partition(tp).await?;
        if leftovers > 0 {
            tracing::info!(partition = %tp, objects = leftovers, "deleted remote objects without metadata");
        }
        self.publish_partition_delete(tp, DeletePartitionFinished)?;
        self.rsm.remove_delete_marker(tp).await?;
        tracing::info!(partition = %tp, "remote data deleted");
        Ok(())
    }

    /// Finishes deletions interrupted by a crash (partitions that still have a delete marker).
    pub async fn sweep_deleted(&self) -> Result<usize, TaskError> {
        let marked = self.rsm.list_delete_markers().await?;
        let n = marked.len();
        for tp in marked {
            tracing::info!(partition = %tp, "finishing an interrupted remote deletion");
            self.delete_partition(&tp).await?;
        }
        Ok(n)
    }

    fn publish_partition_delete(
        &self,
        tp: &TopicIdPartition,
        state: RemotePartitionDeleteState,
    ) -> Result<(), TaskError> {
        self.metadata
            .put_partition_delete(RemotePartitionDeleteMetadata {
                tp: tp.clone(),
                state,
                event_timestamp_ms: self.now(),
                broker_id: self.broker_id,
            })
            .map_err(TaskError::from)
    }
}
