//! DescribeTransactions and ListTransactions (`kafka-transactions.sh describe` / `list`): the
//! transactional ids this broker coordinates, as its coordinator holds them.

use super::RequestContext;
use crate::state::Broker;
use crate::txn::Entry;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_transactions_response::{self as describe, TopicData};
use kafka_protocol::messages::list_transactions_response as list;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use shale_raft::acl::op;
use std::sync::Arc;

/// The state names ListTransactions filters by.
const STATES: [&str; 8] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

/// DescribeTransactions: each id's state, or NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS /
/// TRANSACTIONAL_ID_NOT_FOUND.
pub async fn describe(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let ready = super::txn::ready(broker).await;
    let mut resp = DescribeTransactionsResponse::default();
    for id in &req.transactional_ids {
        let mut s = describe::TransactionState::default();
        s.transactional_id = id.clone();
        s.producer_id = ProducerId(-1);
        s.producer_epoch = -1;
        s.transaction_start_time_ms = -1;
        if !ctx.authz.transactional_id(op::DESCRIBE, id) {
            s.error_code = E::TransactionalIdAuthorizationFailed.code();
            resp.transaction_states.push(s);
            continue;
        }
        let found = ready.and_then(|()| {
            broker.txns.with(|c| {
                c.locate(id.as_str())?;
                c.get(id.as_str())
                    .cloned()
                    .ok_or(E::TransactionalIdNotFound)
            })
        });
        match found {
            Ok(e) => {
                fill(&mut s, &e);
                // Topics the principal may not describe are left out, as Kafka does.
                s.topics.retain(|t| ctx.authz.topic(op::DESCRIBE, &t.topic));
            }
            Err(e) => s.error_code = e.code(),
        }
        resp.transaction_states.push(s);
    }
    resp
}

fn fill(s: &mut describe::TransactionState, e: &Entry) {
    let v = &e.value;
    s.transaction_state = StrBytes::from_static_str(v.state.name());
    s.transaction_timeout_ms = v.timeout_ms;
    s.transaction_start_time_ms = v.start_ts;
    s.producer_id = ProducerId(v.producer_id);
    s.producer_epoch = v.producer_epoch;
    s.topics = v
        .partitions
        .iter()
        .map(|(t, ps)| {
            TopicData::default()
                .with_topic(TopicName(StrBytes::from_string(t.clone())))
                .with_partitions(ps.clone())
        })
        .collect();
}

/// ListTransactions with state, producer id, duration (v1) and id pattern (v2) filters.
pub async fn list(
    broker: &Arc<Broker>,
    ctx: &RequestContext<'_>,
    req: &ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut resp = ListTransactionsResponse::default();
    if let Err(e) = super::txn::ready(broker).await {
        resp.error_code = e.code();
        return resp;
    }
    let pattern = match req.transactional_id_pattern.as_deref() {
        Some(p) if !p.is_empty() => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(r) => Some(r),
            Err(_) => {
                resp.error_code = E::InvalidRegularExpression.code();
                return resp;
            }
        },
        _ => None,
    };
    let (known, unknown): (Vec<&StrBytes>, Vec<&StrBytes>) = req
        .state_filters
        .iter()
        .partition(|s| STATES.contains(&s.as_str()));
    resp.unknown_state_filters = unknown.into_iter().cloned().collect();
    let now = broker.clock.now_ms();
    let keep = |id: &str, e: &Entry| {
        let v = &e.value;
        (req.state_filters.is_empty() || known.iter().any(|s| s.as_str() == v.state.name()))
            && (req.producer_id_filters.is_empty()
                || req.producer_id_filters.iter().any(|p| p.0 == v.producer_id))
            && (req.duration_filter < 0 || now.saturating_sub(v.start_ts) >= req.duration_filter)
            && pattern.as_ref().is_none_or(|r| r.is_match(id))
            && ctx.authz.transactional_id(op::DESCRIBE, id)
    };
    resp.transaction_states = broker.txns.with(|c| {
        let owned = c.owned();
        c.entries()
            .filter(|(id, _)| owned.contains_key(&c.partition_for(id)))
            .filter(|(id, e)| keep(id, e))
            .map(|(id, e)| {
                list::TransactionState::default()
                    .with_transactional_id(TransactionalId(StrBytes::from_string(id.clone())))
                    .with_producer_id(ProducerId(e.value.producer_id))
                    .with_transaction_state(StrBytes::from_static_str(e.value.state.name()))
            })
            .collect()
    });
    resp
}
