//! `request.<ApiKey>`: one target per API the broker serves. Each input is a whole request frame
//! (header + body, without the size prefix) fed to `codec::decode_request`, exactly as the
//! broker's connection loop does, including its Produce v0–2 refusal path
//! (`split_request_header` + `encode_produce_v0_2_unsupported`) and the ApiVersions fallback.
//!
//! Seeds: for every version the broker advertises, the request encoded by kafka-protocol from
//! its default value and from populated values (where that version can carry them, with unknown
//! tagged fields on flexible versions), with Produce carrying the real client batches.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{self as km, ApiKey, RequestHeader};
use kafka_protocol::protocol::{Encodable, Message, StrBytes};
use shale_protocol::codec::{self, CodecError, Request};

use super::{batches, Target};
use crate::rng::FuzzRng;
use crate::runner::Outcome;

/// The name of the target of `key`.
pub fn name_of(key: ApiKey) -> String {
    format!("request.{key:?}")
}

/// The names of all request targets.
pub fn names() -> Vec<String> {
    Request::SERVED_API_KEYS
        .iter()
        .map(|k| name_of(*k))
        .collect()
}

/// The target called `name`, if it is a request target.
pub fn make(name: &str) -> Option<RequestTarget> {
    let key = *Request::SERVED_API_KEYS
        .iter()
        .find(|k| name_of(**k) == name)?;
    Some(RequestTarget {
        name: name.to_string(),
        seeds: seeds_for(key),
    })
}

/// Fuzzes the decoder of one api key.
#[derive(Debug)]
pub struct RequestTarget {
    name: String,
    seeds: Vec<Vec<u8>>,
}

impl Target for RequestTarget {
    fn name(&self) -> &str {
        &self.name
    }

    fn seeds(&self) -> &[Vec<u8>] {
        &self.seeds
    }

    fn fixup(&self, input: &mut Vec<u8>, seed: &[u8], rng: &mut FuzzRng) {
        // Most inputs keep the seed's api key and version, so each version's body decoder gets
        // its share; the rest explore the header checks too.
        if input.len() >= 4 && seed.len() >= 4 && rng.chance(7, 8) {
            input[..4].copy_from_slice(&seed[..4]);
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        let frame = Bytes::copy_from_slice(input);
        let (_, version, correlation_id) = match codec::peek_header(&frame) {
            Ok(h) => h,
            Err(_) => return Ok(Outcome::Rejected),
        };
        match codec::decode_request(frame.clone()) {
            Ok((header, request)) => {
                if header.api_key != request.api_key() as i16 || header.api_version != version {
                    return Err(format!(
                        "decoded header {}/{} does not match the frame's {:?}/{version}",
                        header.api_key,
                        header.api_version,
                        request.api_key()
                    ));
                }
                Ok(Outcome::Accepted)
            }
            Err(CodecError::UnsupportedVersion { api_key: 18, .. }) => {
                codec::encode_api_versions_fallback(correlation_id, &[(18, 0, 4)]);
                Ok(Outcome::Rejected)
            }
            Err(CodecError::UnsupportedVersion {
                api_key: 0,
                version,
            }) if version < 3 => {
                let Ok((_, body)) = codec::split_request_header(&frame) else {
                    return Ok(Outcome::Rejected);
                };
                Ok(super::outcome(&codec::encode_produce_v0_2_unsupported(
                    version,
                    correlation_id,
                    &body,
                )))
            }
            Err(_) => Ok(Outcome::Rejected),
        }
    }
}

/// Header + body of `body` at `version`, or `None` if that version cannot carry `body`.
fn frame<M: Encodable>(key: ApiKey, version: i16, body: &M) -> Option<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("rdkafka")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .ok()?;
    body.encode(&mut buf, version).ok()?;
    Some(buf.to_vec())
}

/// Appends the frames of every variant in `bodies` at every version of `M`.
pub(crate) fn push_all<M: Encodable + Message>(out: &mut Vec<Vec<u8>>, key: ApiKey, bodies: &[M]) {
    for version in M::VERSIONS.min..=M::VERSIONS.max {
        out.extend(bodies.iter().filter_map(|b| frame(key, version, b)));
    }
}

fn tagged<M>(m: M, set: impl FnOnce(&mut M)) -> M {
    let mut m = m;
    set(&mut m);
    m
}

fn unknown_tag() -> std::collections::BTreeMap<i32, Bytes> {
    [(999, Bytes::from_static(b"\x01\x02"))]
        .into_iter()
        .collect()
}

/// The seed corpus of `key`.
pub fn seeds_for(key: ApiKey) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    macro_rules! defaults {
        ($($k:ident => $ty:ident),* $(,)?) => {
            match key {
                $(ApiKey::$k => {
                    let plain = km::$ty::default();
                    let tags = tagged(km::$ty::default(), |m| m.unknown_tagged_fields = unknown_tag());
                    push_all(&mut out, key, &[plain, tags]);
                })*
                _ => {}
            }
        };
    }
    defaults! {
        ApiVersions => ApiVersionsRequest, Metadata => MetadataRequest,
        Produce => ProduceRequest, Fetch => FetchRequest, ListOffsets => ListOffsetsRequest,
        CreateTopics => CreateTopicsRequest, DeleteTopics => DeleteTopicsRequest,
        CreatePartitions => CreatePartitionsRequest, DescribeConfigs => DescribeConfigsRequest,
        AlterConfigs => AlterConfigsRequest,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
        DescribeCluster => DescribeClusterRequest,
        DescribeTopicPartitions => DescribeTopicPartitionsRequest,
        DeleteRecords => DeleteRecordsRequest, InitProducerId => InitProducerIdRequest,
        DescribeProducers => DescribeProducersRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        DescribeQuorum => DescribeQuorumRequest,
        ElectLeaders => ElectLeadersRequest, UpdateFeatures => UpdateFeaturesRequest,
        AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
        ListPartitionReassignments => ListPartitionReassignmentsRequest,
        DescribeLogDirs => DescribeLogDirsRequest, FindCoordinator => FindCoordinatorRequest,
        JoinGroup => JoinGroupRequest, SyncGroup => SyncGroupRequest,
        Heartbeat => HeartbeatRequest, LeaveGroup => LeaveGroupRequest,
        OffsetCommit => OffsetCommitRequest, OffsetFetch => OffsetFetchRequest,
        ListGroups => ListGroupsRequest, DescribeGroups => DescribeGroupsRequest,
        DeleteGroups => DeleteGroupsRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest,
        AddOffsetsToTxn => AddOffsetsToTxnRequest, EndTxn => EndTxnRequest,
        WriteTxnMarkers => WriteTxnMarkersRequest, TxnOffsetCommit => TxnOffsetCommitRequest,
        SaslAuthenticate => SaslAuthenticateRequest,
        DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
        AlterUserScramCredentials => AlterUserScramCredentialsRequest,
        CreateAcls => CreateAclsRequest,
        DescribeAcls => DescribeAclsRequest,
        DeleteAcls => DeleteAclsRequest,
        DescribeClientQuotas => DescribeClientQuotasRequest,
        AlterClientQuotas => AlterClientQuotasRequest,
        DescribeTransactions => DescribeTransactionsRequest,
        ListTransactions => ListTransactionsRequest,
    }
    // The two APIs without a flexible version (no tagged fields).
    match key {
        ApiKey::OffsetDelete => push_all(&mut out, key, &[km::OffsetDeleteRequest::default()]),
        ApiKey::SaslHandshake => {
            let mechanism = StrBytes::from_static_str("PLAIN");
            let r = km::SaslHandshakeRequest::default().with_mechanism(mechanism);
            push_all(&mut out, key, &[km::SaslHandshakeRequest::default(), r]);
        }
        _ => {}
    }
    super::requests_populated::push_populated(&mut out, key);
    if key == ApiKey::Produce {
        out.extend(produce_v0_2_seeds());
    }
    out.extend(super::captures::frames_for(key));
    out
}

/// Produce v0–2 frames (kafka-protocol cannot encode them): v3 without its transactional id.
fn produce_v0_2_seeds() -> Vec<Vec<u8>> {
    let body = super::requests_populated::produce(batches::client_batches().into_iter().take(2));
    let Some(v3) = frame(ApiKey::Produce, 3, &body) else {
        return Vec::new();
    };
    // Header v1: key, version, correlation id, client id (i16 length + 7 bytes); then the v3
    // body starts with the null transactional id (ff ff).
    let header_len = 2 + 2 + 4 + 2 + "rdkafka".len();
    (0..3i16)
        .map(|version| {
            let mut f = v3[..header_len].to_vec();
            f[2..4].copy_from_slice(&version.to_be_bytes());
            f.extend_from_slice(&v3[header_len + 2..]);
            f
        })
        .collect()
}
