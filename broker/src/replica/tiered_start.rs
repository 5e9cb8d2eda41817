//! A follower whose fetch offset its leader has already tiered (the leader answers
//! OFFSET_MOVED_TO_TIERED_STORAGE, kip-405 §4.8) starts from the remote tier instead of
//! copying the whole log:
//!
//! 1. ListOffsets EARLIEST_LOCAL (-4) on the leader: its local log start `L` and that offset's
//!    leader epoch `E`;
//! 2. the epoch of `L - 1`: 0 when `E` is 0, else the epoch OffsetForLeaderEpoch(`E - 1`) names
//!    if that epoch ends after `L - 1` (epochs without records), else `E`;
//! 3. the remote segment holding `L - 1` in that epoch, its leader-epoch checkpoint and producer
//!    snapshot ([`crate::tiering::Tiering::remote_start`]);
//! 4. the log restarts empty after that segment, with the leader's log start below it, those
//!    epochs and that producer state; fetching resumes there.

use super::connection::BrokerConnection;
use super::leader_calls::LeaderOf;
use super::Partition;
use crate::state::Broker;
use anyhow::Context;
use std::sync::Arc;

/// ListOffsets' EARLIEST_LOCAL timestamp.
const EARLIEST_LOCAL: i64 = -4;

/// Restarts `p` from the remote tier; returns the offset fetching resumes at.
pub(super) async fn start_from_remote(
    broker: &Broker,
    conn: &mut BrokerConnection,
    leader: &LeaderOf,
    p: &Arc<Partition>,
    leader_log_start: i64,
) -> anyhow::Result<i64> {
    let tiering = broker
        .tiering()
        .context("tiered storage is off on this broker")?;
    anyhow::ensure!(p.log.is_tiered(), "the topic is not tiered here");
    let me = broker.config.node_id;
    let (local_start, epoch) = leader.list_offset(conn, me, EARLIEST_LOCAL).await?;
    anyhow::ensure!(
        local_start > 0,
        "the leader's local log starts at {local_start}"
    );
    let target = local_start - 1;
    let epoch = if epoch <= 0 {
        0
    } else {
        match leader.epoch_end(conn, me, epoch - 1).await? {
            (previous, end) if previous >= 0 && end > target => previous,
            _ => epoch,
        }
    };
    let start = tiering
        .remote_start(
            crate::tiering::Tiering::topic_id_partition(p),
            epoch,
            target,
        )
        .await?;
    let next = start.next_offset;
    let log = &p.log;
    shale_common::blocking::io(|| {
        log.start_from_remote(
            next,
            leader_log_start,
            &start.epochs,
            start.producer_snapshot.as_deref(),
        )
    })?;
    log.set_highest_offset_in_remote_storage(next - 1);
    p.publish_progress();
    tracing::info!(partition = %p.tp, leader = leader.leader, next, epoch,
        leader_local_start = local_start, "follower started from the remote tier");
    Ok(next)
}
