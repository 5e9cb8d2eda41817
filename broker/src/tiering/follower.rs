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
        let epochs = parse_epoch_checkpoint(&checkpoint)?;
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

/// A leader-epoch checkpoint file (version 0, a count, then `epoch offset` lines).
fn parse_epoch_checkpoint(bytes: &[u8]) -> anyhow::Result<Vec<(i32, i64)>> {
    let text = std::str::from_utf8(bytes).context("leader-epoch checkpoint is not text")?;
    let mut lines = text.lines();
    anyhow::ensure!(lines.next() == Some("0"), "leader-epoch checkpoint version");
    let count: usize = lines.next().unwrap_or_default().parse()?;
    let entries = lines
        .map(|line| {
            let (e, o) = line.split_once(' ').context("malformed entry")?;
            Ok((e.parse()?, o.parse()?))
        })
        .collect::<anyhow::Result<Vec<(i32, i64)>>>()
        .context("leader-epoch checkpoint entry")?;
    anyhow::ensure!(entries.len() == count, "leader-epoch checkpoint count");
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::parse_epoch_checkpoint;

    #[test]
    fn reads_kafka_leader_epoch_checkpoints() {
        assert_eq!(
            parse_epoch_checkpoint(b"0\n2\n0 0\n3 120\n").unwrap(),
            vec![(0, 0), (3, 120)]
        );
        assert_eq!(parse_epoch_checkpoint(b"0\n0\n").unwrap(), vec![]);
        assert!(parse_epoch_checkpoint(b"1\n0\n").is_err());
        assert!(parse_epoch_checkpoint(b"0\n2\n0 0\n").is_err());
        assert!(parse_epoch_checkpoint(b"0\n1\n0 x\n").is_err());
    }
}
