//! The request span (target [`TRACE_TARGET`], exported as an OpenTelemetry server span when
//! tracing is on): its attributes, the topic and partition counts of the requests that carry
//! them, and the response's error code ([`FirstError`]).
//!
//! Error code rule: the response's top-level error code when it is non-zero, else the first
//! non-zero code in response order (topics, then each topic's partitions), else 0.
//! With tracing off the span is disabled and none of this is computed.

use kafka_protocol::messages::*;
use shale_common::TRACE_TARGET;
use shale_protocol::codec::{Request, RequestHeader};
use tracing::field::Empty;
use tracing::Span;

/// The span of one request, named after its API (e.g. `Produce`).
pub(super) fn request_span(api: &str, api_key: i16, version: i16, correlation_id: i32) -> Span {
    tracing::info_span!(
        target: TRACE_TARGET,
        "kafka.request",
        otel.name = api,
        otel.kind = "server",
        otel.status_code = Empty,
        otel.status_description = Empty,
        messaging.system = "kafka",
        kafka.api_key = api_key,
        kafka.api_name = api,
        kafka.api_version = version,
        kafka.correlation_id = correlation_id,
        kafka.client_id = Empty,
        kafka.topic_count = Empty,
        kafka.partition_count = Empty,
        kafka.error_code = Empty,
    )
}

/// Records what the decoded request tells: client id and, where it has them, topic and
/// partition counts.
pub(super) fn record_request(span: &Span, header: &RequestHeader, request: &Request) {
    if span.is_disabled() {
        return;
    }
    if let Some(c) = &header.client_id {
        span.record("kafka.client_id", c.as_str());
    }
    // As i64: OpenTelemetry has no unsigned integers (tracing-opentelemetry would send text).
    let (topics, partitions) = counts(request);
    if let Some(t) = topics {
        span.record("kafka.topic_count", t as i64);
    }
    if let Some(p) = partitions {
        span.record("kafka.partition_count", p as i64);
    }
}

/// Marks the current request span failed: the connection is being closed.
pub(super) fn record_close(span: &Span, reason: &super::CloseReason) {
    if !span.is_disabled() {
        span.record("otel.status_code", "error");
        span.record("otel.status_description", reason.to_string());
    }
}

/// Records `code` on the current span (the request span: responses are built with no child
/// span entered).
pub(super) fn record_error_code(code: impl FnOnce() -> i16) {
    let span = Span::current();
    if !span.is_disabled() {
        span.record("kafka.error_code", code());
    }
}

fn counts(request: &Request) -> (Option<usize>, Option<usize>) {
    fn nested<T>(topics: &[T], partitions: impl Fn(&T) -> usize) -> (Option<usize>, Option<usize>) {
        (
            Some(topics.len()),
            Some(topics.iter().map(partitions).sum()),
        )
    }
    match request {
        Request::Produce(r) => nested(&r.topic_data, |t| t.partition_data.len()),
        Request::Fetch(r) => nested(&r.topics, |t| t.partitions.len()),
        Request::ListOffsets(r) => nested(&r.topics, |t| t.partitions.len()),
        Request::DeleteRecords(r) => nested(&r.topics, |t| t.partitions.len()),
        Request::OffsetForLeaderEpoch(r) => nested(&r.topics, |t| t.partitions.len()),
        Request::OffsetCommit(r) => nested(&r.topics, |t| t.partitions.len()),
        Request::OffsetDelete(r) => nested(&r.topics, |t| t.partitions.len()),
        Request::DescribeProducers(r) => nested(&r.topics, |t| t.partition_indexes.len()),
        Request::Metadata(r) => (r.topics.as_ref().map(Vec::len), None),
        Request::CreateTopics(r) => (Some(r.topics.len()), None),
        Request::DeleteTopics(r) => (Some(r.topics.len().max(r.topic_names.len())), None),
        Request::CreatePartitions(r) => (Some(r.topics.len()), None),
        Request::DescribeTopicPartitions(r) => (Some(r.topics.len()), None),
        _ => (None, None),
    }
}

/// The error code a span reports for a response (see the module doc for the rule).
pub(crate) trait FirstError {
    /// The top-level code if non-zero, else the first non-zero nested one, else 0.
    fn first_error(&self) -> i16;
}

pub(super) fn first(codes: impl IntoIterator<Item = i16>) -> i16 {
    codes.into_iter().find(|&c| c != 0).unwrap_or(0)
}

macro_rules! first_error {
    ($($ty:ty => |$r:ident| $codes:expr;)*) => {$(
        impl FirstError for $ty {
            fn first_error(&self) -> i16 {
                let $r = self;
                first($codes)
            }
        }
    )*};
}

/// Responses whose codes are all top-level, or one per item of a list.
macro_rules! flat {
    (top: $($ty:ty),*; items: $($ity:ty => $items:ident),*;) => {
        first_error! { $($ty => |r| [r.error_code];)* }
        first_error! { $($ity => |r| r.$items.iter().map(|i| i.error_code);)* }
    };
}

/// Responses with a code per partition, listed per topic.
macro_rules! per_partition {
    ($($ty:ty => $topics:ident . $partitions:ident),*) => {
        first_error! {$(
            $ty => |r| r.$topics.iter().flat_map(|t| t.$partitions.iter().map(|p| p.error_code));
        )*}
    };
}

flat! {
    top: ApiVersionsResponse, InitProducerIdResponse, DescribeClusterResponse, HeartbeatResponse,
        JoinGroupResponse, SyncGroupResponse, ListGroupsResponse, ListPartitionReassignmentsResponse,
        AddOffsetsToTxnResponse, EndTxnResponse, ListTransactionsResponse, UpdateFeaturesResponse,
        DescribeAclsResponse, DescribeClientQuotasResponse;
    items: CreateTopicsResponse => topics, DeleteTopicsResponse => responses,
        CreatePartitionsResponse => results, DescribeConfigsResponse => results,
        AlterConfigsResponse => responses, IncrementalAlterConfigsResponse => responses,
        DescribeGroupsResponse => groups, DeleteGroupsResponse => results,
        DescribeTransactionsResponse => transaction_states,
        AlterUserScramCredentialsResponse => results, CreateAclsResponse => results,
        DeleteAclsResponse => filter_results, AlterClientQuotasResponse => entries;
}

per_partition! {
    ProduceResponse => responses.partition_responses,
    ListOffsetsResponse => topics.partitions,
    DeleteRecordsResponse => topics.partitions,
    OffsetForLeaderEpochResponse => topics.partitions,
    OffsetCommitResponse => topics.partitions,
    DescribeProducersResponse => topics.partitions,
    TxnOffsetCommitResponse => topics.partitions
}

first_error! {
    DescribeUserScramCredentialsResponse => |r| {
        let each = r.results.iter().map(|u| u.error_code);
        [r.error_code].into_iter().chain(each)
    };
    LeaveGroupResponse => |r| {
        let each = r.members.iter().map(|m| m.error_code);
        [r.error_code].into_iter().chain(each)
    };
    FindCoordinatorResponse => |r| {
        let each = r.coordinators.iter().map(|c| c.error_code);
        [r.error_code].into_iter().chain(each)
    };
    ElectLeadersResponse => |r| {
        let results = r.replica_election_results.iter();
        let partitions = results.flat_map(|t| t.partition_result.iter());
        [r.error_code].into_iter().chain(partitions.map(|p| p.error_code))
    };
    AlterPartitionReassignmentsResponse => |r| {
        let partitions = r.responses.iter().flat_map(|t| t.partitions.iter());
        [r.error_code].into_iter().chain(partitions.map(|p| p.error_code))
    };
    DescribeQuorumResponse => |r| {
        let partitions = r.topics.iter().flat_map(|t| t.partitions.iter());
        [r.error_code].into_iter().chain(partitions.map(|p| p.error_code))
    };
    DescribeLogDirsResponse => |r| {
        let each = r.results.iter().map(|d| d.error_code);
        [r.error_code].into_iter().chain(each)
    };
    MetadataResponse => |r| r.topics.iter().flat_map(|t| {
        let partitions = t.partitions.iter().map(|p| p.error_code);
        [t.error_code].into_iter().chain(partitions)
    });
    DescribeTopicPartitionsResponse => |r| r.topics.iter().flat_map(|t| {
        let partitions = t.partitions.iter().map(|p| p.error_code);
        [t.error_code].into_iter().chain(partitions)
    });
    OffsetDeleteResponse => |r| {
        let partitions = r.topics.iter().flat_map(|t| t.partitions.iter());
        [r.error_code].into_iter().chain(partitions.map(|p| p.error_code))
    };
    AddPartitionsToTxnResponse => |r| {
        let old = r.results_by_topic_v3_and_below.iter();
        let new = r.results_by_transaction.iter().flat_map(|t| t.topic_results.iter());
        let partitions = old.chain(new).flat_map(|t| t.results_by_partition.iter());
        [r.error_code].into_iter().chain(partitions.map(|p| p.partition_error_code))
    };
    WriteTxnMarkersResponse => |r| {
        let topics = r.markers.iter().flat_map(|m| m.topics.iter());
        topics.flat_map(|t| t.partitions.iter().map(|p| p.error_code))
    };
    OffsetFetchResponse => |r| {
        // Up to v7 one group's topics; from v8 a list of groups, each with its own code.
        let old = r.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code));
        let groups = r.groups.iter().flat_map(|g| {
            let partitions = g.topics.iter().flat_map(|t| t.partitions.iter());
            [g.error_code].into_iter().chain(partitions.map(|p| p.error_code))
        });
        [r.error_code].into_iter().chain(old).chain(groups)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_code_then_the_first_nested_one() {
        let mut r = ProduceResponse::default();
        assert_eq!(r.first_error(), 0);
        let mut t = produce_response::TopicProduceResponse::default();
        for code in [0, 6, 3] {
            let mut p = produce_response::PartitionProduceResponse::default();
            p.error_code = code;
            t.partition_responses.push(p);
        }
        r.responses.push(t);
        assert_eq!(r.first_error(), 6);

        let mut f = FindCoordinatorResponse::default();
        let mut c = find_coordinator_response::Coordinator::default();
        c.error_code = 15;
        f.coordinators.push(c);
        assert_eq!(f.first_error(), 15);
        f.error_code = 14;
        assert_eq!(f.first_error(), 14);
    }

    #[test]
    fn a_topic_code_comes_before_its_partitions_and_groups_are_read() {
        let mut m = MetadataResponse::default();
        let mut t = metadata_response::MetadataResponseTopic::default();
        let mut p = metadata_response::MetadataResponsePartition::default();
        p.error_code = 9;
        t.partitions.push(p);
        m.topics.push(t.clone());
        assert_eq!(m.first_error(), 9);
        m.topics[0].error_code = 3;
        assert_eq!(m.first_error(), 3);

        let mut o = OffsetFetchResponse::default();
        let mut g = offset_fetch_response::OffsetFetchResponseGroup::default();
        g.error_code = 16;
        o.groups
            .push(offset_fetch_response::OffsetFetchResponseGroup::default());
        o.groups.push(g);
        assert_eq!(o.first_error(), 16);
    }

    #[test]
    fn counts_topics_and_partitions_where_the_request_has_them() {
        let mut produce = ProduceRequest::default();
        for n in [2, 3] {
            let mut t = produce_request::TopicProduceData::default();
            t.partition_data = vec![Default::default(); n];
            produce.topic_data.push(t);
        }
        assert_eq!(
            counts(&Request::Produce(Box::new(produce))),
            (Some(2), Some(5))
        );
        let mut all_topics = MetadataRequest::default();
        all_topics.topics = None;
        assert_eq!(
            counts(&Request::Metadata(Box::new(all_topics))),
            (None, None)
        );
        let hb = HeartbeatRequest::default();
        assert_eq!(counts(&Request::Heartbeat(Box::new(hb))), (None, None));
    }
}
