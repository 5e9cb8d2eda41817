//! AddRaftVoter (api 80) and RemoveRaftVoter (api 81) on the controller listener: KIP-853 voter
//! changes, as `kafka-metadata-quorum.sh add-controller` / `remove-controller` send them to the
//! active controller. The quorum leader appends the new voter set (one change at a time) and
//! answers once it is committed, or when the request's timeout runs out (REQUEST_TIMED_OUT).
//! Refusals use Kafka's codes: NOT_LEADER_OR_FOLLOWER off the leader, DUPLICATE_VOTER,
//! VOTER_NOT_FOUND, REQUEST_TIMED_OUT while a change is pending or the new voter lags,
//! INCONSISTENT_CLUSTER_ID for another cluster's request.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, ApiKey, RemoveRaftVoterRequest,
    RemoveRaftVoterResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message as _, StrBytes};
use shale_raft::kraft::{KRaftError, Voter, VoterChange};
use tokio::sync::oneshot;

use super::driver::Input;
use super::listener::Shared;

/// The versions served here, as (api, (min, max)).
pub const VERSIONS: [(ApiKey, (i16, i16)); 2] = [
    (
        ApiKey::AddRaftVoter,
        (
            AddRaftVoterRequest::VERSIONS.min,
            AddRaftVoterRequest::VERSIONS.max,
        ),
    ),
    (
        ApiKey::RemoveRaftVoter,
        (
            RemoveRaftVoterRequest::VERSIONS.min,
            RemoveRaftVoterRequest::VERSIONS.max,
        ),
    ),
];

/// Whether `api_key` is answered by [`answer`].
pub fn handles(api_key: ApiKey) -> bool {
    VERSIONS.iter().any(|(k, _)| *k == api_key)
}

/// The response body for an AddRaftVoter or RemoveRaftVoter request.
pub async fn answer(
    api_key: ApiKey,
    version: i16,
    mut body: Bytes,
    shared: &Shared,
) -> anyhow::Result<Bytes> {
    let (cluster, change, timeout) = if api_key == ApiKey::AddRaftVoter {
        let req = AddRaftVoterRequest::decode(&mut body, version)?;
        let voter = Voter {
            id: req.voter_id,
            directory_id: req.voter_directory_id,
            endpoints: req
                .listeners
                .iter()
                .map(|l| (l.name.to_string(), l.host.to_string(), l.port))
                .collect(),
        };
        let timeout = Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0));
        (req.cluster_id, VoterChange::Add(voter), timeout)
    } else {
        let req = RemoveRaftVoterRequest::decode(&mut body, version)?;
        (
            req.cluster_id,
            VoterChange::Remove(req.voter_id),
            shared.timeout,
        )
    };
    let (code, message) = if cluster.is_some_and(|c| *c != *shared.ctx.cluster_id) {
        (E::InconsistentClusterId.code(), None)
    } else {
        change_voters(change, timeout.min(shared.timeout * 15), shared).await
    };
    let message = message.map(StrBytes::from_string);
    let mut out = BytesMut::new();
    if api_key == ApiKey::AddRaftVoter {
        let resp = AddRaftVoterResponse::default()
            .with_error_code(code)
            .with_error_message(message);
        resp.encode(&mut out, version)?;
    } else {
        let resp = RemoveRaftVoterResponse::default()
            .with_error_code(code)
            .with_error_message(message);
        resp.encode(&mut out, version)?;
    }
    Ok(out.freeze())
}

/// Asks the core for `change` and waits until it is committed: (error code, message).
async fn change_voters(
    change: VoterChange,
    timeout: Duration,
    shared: &Shared,
) -> (i16, Option<String>) {
    let (reply, rx) = oneshot::channel();
    let input = Input::ChangeVoters { change, reply };
    if shared.driver.inputs.try_send(input).is_err() {
        return (E::RequestTimedOut.code(), Some("quorum busy".into()));
    }
    let offset = match rx.await {
        Ok(Ok(offset)) => offset,
        Ok(Err(e)) => return refusal(&e),
        Err(_) => return (E::RequestTimedOut.code(), Some("quorum stopped".into())),
    };
    let mut view = shared.driver.view.clone();
    let committed = async move {
        let done = view
            .wait_for(|v| v.high_watermark > offset || v.stopped)
            .await;
        done.map(|v| !v.stopped).unwrap_or(false)
    };
    match tokio::time::timeout(timeout, committed).await {
        Ok(true) => (0, None),
        _ => (
            E::RequestTimedOut.code(),
            Some(format!(
                "voter change at offset {offset} not committed in time"
            )),
        ),
    }
}

/// Kafka's answer to a refused voter change.
fn refusal(e: &KRaftError) -> (i16, Option<String>) {
    let code = match e {
        KRaftError::NotLeader { .. } => E::NotLeaderOrFollower,
        KRaftError::DuplicateVoter(_) => E::DuplicateVoter,
        KRaftError::VoterNotFound(_) => E::VoterNotFound,
        KRaftError::LastVoter(_) => E::InvalidRequest,
        _ => E::RequestTimedOut,
    };
    (code.code(), Some(e.to_string()))
}
