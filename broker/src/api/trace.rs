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

first_error! {
    ApiVersionsResponse => |r| [r.error_code];
    InitProducerIdResponse => |r| [r.error_code];
    DescribeClusterResponse => |r| [r.error_code];
    HeartbeatResponse => |r| [r.error_code];
    JoinGroupResponse => |r| [r.error_code];
    SyncGroupResponse => |r| [r.error_code];
    ListGroupsResponse => |r| [r.error_code];
    LeaveGroupResponse => |r| [r.error_code].into_iter().chain(r.members.iter().map(|m| m.error_code));
    FindCoordinatorResponse => |r| [r.error_code].into_iter().chain(r.coordinators.iter().map(|c| c.error_code));
    ProduceResponse => |r| r.responses.iter().flat_map(|t| t.partition_responses.iter().map(|p| p.error_code));
    ListOffsetsResponse => |r| r.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code));
    DeleteRecordsResponse => |r| r.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code));
    OffsetForLeaderEpochResponse => |r| r.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code));
    OffsetCommitResponse => |r| r.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code));
    DescribeProducersResponse => |r| r.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code));
    MetadataResponse => |r| r.topics.iter().flat_map(|t| [t.error_code].into_iter().chain(t.partitions.iter().map(|p| p.error_code)));
    DescribeTopicPartitionsResponse => |r| r.topics.iter().flat_map(|t| [t.error_code].into_iter().chain(t.partitions.iter().map(|p| p.error_code)));
    OffsetDeleteResponse => |r| [r.error_code].into_iter().chain(r.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)));
    DescribeLogDirsResponse => |r| [r.error_code].into_iter().chain(r.results.iter().map(|d| d.error_code));
    CreateTopicsResponse => |r| r.topics.iter().map(|t| t.error_code);
    DeleteTopicsResponse => |r| r.responses.iter().map(|t| t.error_code);
    CreatePartitionsResponse => |r| r.results.iter().map(|t| t.error_code);
    DescribeConfigsResponse => |r| r.results.iter().map(|t| t.error_code);
    AlterConfigsResponse => |r| r.responses.iter().map(|t| t.error_code);
    IncrementalAlterConfigsResponse => |r| r.responses.iter().map(|t| t.error_code);
    DescribeGroupsResponse => |r| r.groups.iter().map(|g| g.error_code);
    DeleteGroupsResponse => |r| r.results.iter().map(|g| g.error_code);
    OffsetFetchResponse => |r| [r.error_code].into_iter()
        .chain(r.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)))
        .chain(r.groups.iter().flat_map(|g| [g.error_code].into_iter()
            .chain(g.topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)))));
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
}
