//! The one place that maps Kafka request frames to typed messages and typed responses to frames.
//!
//! Owns: request-header parsing ([`peek_header`], [`split_request_header`]), request decoding
//! ([`decode_request`] into [`Request`]), guarded decoding of any other kafka-protocol message
//! ([`decode_message`]), response framing ([`encode_response`]), the two
//! hand-built compatibility answers ([`encode_api_versions_fallback`],
//! [`encode_produce_v0_2_unsupported`]) and the crate's [`CodecError`].
//!
//! Every message except the Fetch response (see [`crate::fetch_writer`]) goes through the
//! `kafka-protocol` crate. Frames passed in here never include the 4-byte size prefix; frames
//! produced here always do.
//!
//! # Allocation guard
//!
//! kafka-protocol reserves `Vec::with_capacity(count)` for an array *before* checking that
//! `count` elements can fit in the buffer, so a six-byte garbage Metadata body with count
//! 0x7fffffff aborts the process ("memory allocation failed" is an abort, not a panic). All
//! decoding therefore goes through [`GuardedBuf`], which bounds every value an array count can be
//! read from (see its docs) by `max(remaining + 1, 65536)`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{self as km, ApiKey, RequestHeader as KpRequestHeader};
use kafka_protocol::protocol::buf::{ByteBuf, NotEnoughBytesError};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes, VersionRange};

/// Error code UNSUPPORTED_VERSION.
const UNSUPPORTED_VERSION: i16 = 35;

/// Decoding/encoding failures at the wire edge. The broker answers `UnsupportedVersion` with an
/// error response where it can and closes the connection otherwise.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The frame ended before the message did.
    #[error("frame truncated")]
    Truncated,
    /// The api key is not one this broker serves.
    #[error("unknown or unserved api key {0}")]
    UnknownApiKey(i16),
    /// The api key is known but this version is outside the range we can decode.
    #[error("unsupported version {version} of api key {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
    /// The bytes do not form a valid message (or a response could not be encoded).
    #[error("malformed message (api key {api_key} v{version}): {reason}")]
    Malformed {
        api_key: i16,
        version: i16,
        reason: String,
    },
}

/// Parsed request header. `client_id` is a non-compact nullable string even in header v2.
#[derive(Debug, Clone)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<StrBytes>,
}

macro_rules! requests {
    ($($variant:ident => $ty:ident),* $(,)?) => {
        /// One variant per API the broker serves; kafka-protocol's request types inside (boxed so
        /// the enum stays small).
        #[derive(Debug, Clone, PartialEq)]
        pub enum Request {
            $($variant(Box<km::$ty>),)*
        }

        impl Request {
            /// The api key of this request.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $(Request::$variant(_) => ApiKey::$variant,)*
                }
            }

            /// The api keys [`decode_request`] accepts.
            pub const SERVED_API_KEYS: &'static [ApiKey] = &[$(ApiKey::$variant),*];

            /// The versions [`decode_request`] can decode for `api_key` (`None` if not served).
            ///
            /// This is the request message's own range, which is what the broker must advertise:
            /// kafka-protocol 0.18's `ApiKey::valid_versions()` is wider for a few APIs whose
            /// newest version is unstable in Kafka 4.1 and was not generated (OffsetCommit v10,
            /// OffsetFetch v10, InitProducerId v6).
            pub fn supported_versions(api_key: ApiKey) -> Option<VersionRange> {
                match api_key {
                    $(ApiKey::$variant => Some(<km::$ty as Message>::VERSIONS),)*
                    _ => None,
                }
            }

            fn decode_body<B: ByteBuf>(
                key: ApiKey,
                buf: &mut B,
                version: i16,
            ) -> Option<anyhow::Result<Request>> {
                match key {
                    $(ApiKey::$variant => Some(
                        km::$ty::decode(buf, version).map(|r| Request::$variant(Box::new(r))),
                    ),)*
                    _ => None,
                }
            }
        }
    };
}

requests! {
    ApiVersions => ApiVersionsRequest,
    Metadata => MetadataRequest,
    Produce => ProduceRequest,
    Fetch => FetchRequest,
    ListOffsets => ListOffsetsRequest,
    CreateTopics => CreateTopicsRequest,
    DeleteTopics => DeleteTopicsRequest,
    CreatePartitions => CreatePartitionsRequest,
    DescribeConfigs => DescribeConfigsRequest,
    AlterConfigs => AlterConfigsRequest,
    IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
    DescribeCluster => DescribeClusterRequest,
    DescribeTopicPartitions => DescribeTopicPartitionsRequest,
    DeleteRecords => DeleteRecordsRequest,
    InitProducerId => InitProducerIdRequest,
    DescribeProducers => DescribeProducersRequest,
    OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
    DescribeQuorum => DescribeQuorumRequest,
    ElectLeaders => ElectLeadersRequest,
    UpdateFeatures => UpdateFeaturesRequest,
    AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
    ListPartitionReassignments => ListPartitionReassignmentsRequest,
    DescribeLogDirs => DescribeLogDirsRequest,
    FindCoordinator => FindCoordinatorRequest,
    JoinGroup => JoinGroupRequest,
    SyncGroup => SyncGroupRequest,
    Heartbeat => HeartbeatRequest,
    LeaveGroup => LeaveGroupRequest,
    OffsetCommit => OffsetCommitRequest,
    OffsetFetch => OffsetFetchRequest,
    ListGroups => ListGroupsRequest,
    DescribeGroups => DescribeGroupsRequest,
    DeleteGroups => DeleteGroupsRequest,
    OffsetDelete => OffsetDeleteRequest,
    SaslHandshake => SaslHandshakeRequest,
    SaslAuthenticate => SaslAuthenticateRequest,
    DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
    AlterUserScramCredentials => AlterUserScramCredentialsRequest,
    CreateAcls => CreateAclsRequest,
    DescribeAcls => DescribeAclsRequest,
    DeleteAcls => DeleteAclsRequest,
    DescribeClientQuotas => DescribeClientQuotasRequest,
    AlterClientQuotas => AlterClientQuotasRequest,
    AddPartitionsToTxn => AddPartitionsToTxnRequest,
    AddOffsetsToTxn => AddOffsetsToTxnRequest,
    EndTxn => EndTxnRequest,
    WriteTxnMarkers => WriteTxnMarkersRequest,
    TxnOffsetCommit => TxnOffsetCommitRequest,
    DescribeTransactions => DescribeTransactionsRequest,
    ListTransactions => ListTransactionsRequest,
}

/// Reads only api_key/version/correlation_id (first 8 bytes) — enough to answer errors even when
/// the rest is garbage.
pub fn peek_header(frame: &[u8]) -> Result<(i16, i16, i32), CodecError> {
    let mut b = frame.get(..8).ok_or(CodecError::Truncated)?;
    Ok((b.get_i16(), b.get_i16(), b.get_i32()))
}

/// Parses the request header of any frame whose api key kafka-protocol knows, whatever the
/// version (even one we cannot decode), and returns it with the body that follows. Used to
/// answer requests [`decode_request`] refuses, e.g. Produce v0–2.
pub fn split_request_header(frame: &Bytes) -> Result<(RequestHeader, Bytes), CodecError> {
    let (key, version, _) = peek_header(frame)?;
    let api_key = ApiKey::try_from(key).map_err(|()| CodecError::UnknownApiKey(key))?;
    let mut buf = GuardedBuf::new(frame.clone());
    let header = decode_header(&mut buf, api_key, version)?;
    Ok((header, buf.inner))
}

/// Decodes header + body from the frozen frame (without the 4-byte size prefix). Zero-copy for
/// Produce records: they are slices of `frame`.
pub fn decode_request(frame: Bytes) -> Result<(RequestHeader, Request), CodecError> {
    let (key, version, _) = peek_header(&frame)?;
    let api_key = ApiKey::try_from(key).map_err(|()| CodecError::UnknownApiKey(key))?;
    let range = Request::supported_versions(api_key).ok_or(CodecError::UnknownApiKey(key))?;
    if version < range.min || version > range.max {
        return Err(CodecError::UnsupportedVersion {
            api_key: key,
            version,
        });
    }
    guarded(frame, |buf| decode_frame(buf, api_key, version))
}

/// Decodes one kafka-protocol message `M` at `version` from `bytes` behind the same allocation
/// guard as requests (see the module docs): for messages read outside a request frame, such as
/// the LeaderChangeMessage of a metadata-log control record. Bytes after the message are
/// ignored. Errors carry api key -1.
pub fn decode_message<M: Decodable>(bytes: Bytes, version: i16) -> Result<M, CodecError> {
    guarded(bytes, |buf| {
        M::decode(buf, version).map_err(|e| buf.classify(-1, version, e))
    })
}

/// Runs `decode` over `bytes` through a [`GuardedBuf`], twice if the first pass clamped a value.
fn guarded<T>(
    bytes: Bytes,
    mut decode: impl FnMut(&mut GuardedBuf) -> Result<T, CodecError>,
) -> Result<T, CodecError> {
    let mut buf = GuardedBuf::new(bytes.clone());
    let first = decode(&mut buf)?;
    if buf.clamped.is_empty() {
        return Ok(first);
    }
    // Some 32-bit value was larger than the rest of the frame. The first pass proved it was not
    // an array count (a clamped count cannot be satisfied), so the structure is sound: decode
    // again with the real values.
    let mut again = GuardedBuf::replay(bytes, std::mem::take(&mut buf.clamped));
    decode(&mut again)
}

fn decode_frame(
    buf: &mut GuardedBuf,
    api_key: ApiKey,
    version: i16,
) -> Result<(RequestHeader, Request), CodecError> {
    let header = decode_header(buf, api_key, version)?;
    let key = api_key as i16;
    let body = Request::decode_body(api_key, buf, version)
        .ok_or(CodecError::UnknownApiKey(key))?
        .map_err(|e| buf.classify(key, version, e))?;
    // Bytes after the body are ignored, as Kafka ignores them (AbstractRequest.parseRequest reads
    // the message and never checks the rest). librdkafka 2.16 sends three such bytes after an
    // "all topics" Metadata v13 request.
    Ok((header, body))
}

fn decode_header(
    buf: &mut GuardedBuf,
    api_key: ApiKey,
    version: i16,
) -> Result<RequestHeader, CodecError> {
    let key = api_key as i16;
    let header_version = api_key.request_header_version(version);
    let h =
        KpRequestHeader::decode(buf, header_version).map_err(|e| buf.classify(key, version, e))?;
    Ok(RequestHeader {
        api_key: h.request_api_key,
        api_version: h.request_api_version,
        correlation_id: h.correlation_id,
        client_id: h.client_id,
    })
}

/// A `Bytes` reader that keeps kafka-protocol from reserving absurd capacities.
///
/// kafka-protocol reads every 32-bit array count with `try_get_i32` and every compact count with
/// `try_get_u8` (unsigned varint); nothing else in message decoding uses `try_get_u8` except
/// booleans. So:
/// * a 32-bit value larger than `limit` is *clamped* to `limit` (first pass) and its offset
///   recorded. If it was an array count, the decode must fail (each element takes at least one
///   byte and fewer than `limit` remain); if it was an ordinary integer field (e.g. Fetch
///   `max_bytes`), the structure is unchanged and a replay pass reads the real value — in the
///   replay, a large value at any other offset is refused;
/// * a multi-byte varint larger than `limit` is refused outright: as a compact count or length it
///   cannot be valid, and booleans on the wire are 0 or 1.
#[derive(Debug)]
struct GuardedBuf {
    inner: Bytes,
    total: usize,
    /// Offsets of clamped 32-bit reads (first pass), or of allowed large ones (replay), in
    /// read order.
    clamped: Vec<usize>,
    replay: bool,
    /// Replay: index of the next allowed offset (reads happen in the same order).
    next_allowed: usize,
    refused: bool,
}

/// Counts below this are harmless to reserve even with large elements.
const SMALL_COUNT: usize = 1 << 16;

impl GuardedBuf {
    fn new(inner: Bytes) -> Self {
        let total = inner.len();
        Self {
            inner,
            total,
            clamped: Vec::new(),
            replay: false,
            next_allowed: 0,
            refused: false,
        }
    }

    fn replay(inner: Bytes, allowed: Vec<usize>) -> Self {
        let mut b = Self::new(inner);
        b.clamped = allowed;
        b.replay = true;
        b
    }

    fn limit(&self) -> usize {
        (self.inner.remaining() + 1).max(SMALL_COUNT)
    }

    fn offset(&self) -> usize {
        self.total - self.inner.remaining()
    }

    fn refuse(&mut self, requested: usize) -> bytes::TryGetError {
        self.refused = true;
        bytes::TryGetError {
            requested,
            available: self.inner.remaining(),
        }
    }

    fn classify(&self, api_key: i16, version: i16, e: anyhow::Error) -> CodecError {
        let short = e.downcast_ref::<bytes::TryGetError>().is_some()
            || e.downcast_ref::<NotEnoughBytesError>().is_some();
        if self.refused {
            CodecError::Malformed {
                api_key,
                version,
                reason: "array count or length exceeds the frame".into(),
            }
        } else if short {
            CodecError::Truncated
        } else {
            CodecError::Malformed {
                api_key,
                version,
                reason: format!("{e:#}"),
            }
        }
    }
}

impl Buf for GuardedBuf {
    fn remaining(&self) -> usize {
        self.inner.remaining()
    }
    fn chunk(&self) -> &[u8] {
        self.inner.chunk()
    }
    fn advance(&mut self, cnt: usize) {
        self.inner.advance(cnt)
    }
    fn try_get_i32(&mut self) -> Result<i32, bytes::TryGetError> {
        let at = self.offset();
        let v = self.inner.try_get_i32()?;
        let limit = self.limit();
        if v <= 0 || (v as usize) <= limit {
            return Ok(v);
        }
        if self.replay {
            if self.clamped.get(self.next_allowed) == Some(&at) {
                self.next_allowed += 1;
                Ok(v)
            } else {
                Err(self.refuse(v as usize))
            }
        } else {
            self.clamped.push(at);
            Ok(i32::try_from(limit).unwrap_or(i32::MAX))
        }
    }
    fn try_get_u8(&mut self) -> Result<u8, bytes::TryGetError> {
        let chunk = self.inner.chunk();
        if let Some(&first) = chunk.first() {
            if first & 0x80 != 0 {
                let mut value: u64 = 0;
                for (i, b) in chunk.iter().take(5).enumerate() {
                    value |= u64::from(b & 0x7f) << (7 * i);
                    if b & 0x80 == 0 {
                        break;
                    }
                }
                if value > self.limit() as u64 {
                    return Err(self.refuse(usize::try_from(value).unwrap_or(usize::MAX)));
                }
            }
        }
        self.inner.try_get_u8()
    }
}

impl ByteBuf for GuardedBuf {
    fn peek_bytes(&mut self, r: std::ops::Range<usize>) -> Bytes {
        self.inner.slice(r)
    }
    fn get_bytes(&mut self, size: usize) -> Bytes {
        self.inner.split_to(size)
    }
}

/// Encodes a response frame WITH the 4-byte size prefix and the right response header version
/// (ApiVersions: always header v0; others per `ApiKey::response_header_version`).
pub fn encode_response<M: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &M,
) -> Result<Bytes, CodecError> {
    let key = api_key as i16;
    let fail = |reason: String| CodecError::Malformed {
        api_key: key,
        version,
        reason,
    };
    let flexible_header =
        api_key != ApiKey::ApiVersions && api_key.response_header_version(version) >= 1;
    let header_len = if flexible_header { 5 } else { 4 };
    let body_len = body
        .compute_size(version)
        .map_err(|e| fail(format!("cannot size response: {e:#}")))?;
    let size = i32::try_from(header_len + body_len)
        .map_err(|_| fail(format!("response of {body_len} bytes is too large")))?;
    let mut out = BytesMut::with_capacity(4 + header_len + body_len);
    out.put_i32(size);
    out.put_i32(correlation_id);
    if flexible_header {
        out.put_u8(0); // no tagged fields in the response header
    }
    body.encode(&mut out, version)
        .map_err(|e| fail(format!("cannot encode response: {e:#}")))?;
    if out.len() != 4 + header_len + body_len {
        return Err(fail(format!(
            "encoded {} bytes but computed {}",
            out.len() - 4 - header_len,
            body_len
        )));
    }
    Ok(out.freeze())
}

/// Answer to an ApiVersions request of a version newer than we know (kafka-protocol cannot
/// decode it): a v0-shaped response (header v0) with error UNSUPPORTED_VERSION (35) and our api
/// list `(key, min, max)`, so the client retries with a version we know.
pub fn encode_api_versions_fallback(correlation_id: i32, apis: &[(i16, i16, i16)]) -> Bytes {
    let body_len = 2 + 4 + 6 * apis.len();
    let mut out = BytesMut::with_capacity(8 + body_len);
    out.put_i32((4 + body_len) as i32);
    out.put_i32(correlation_id);
    out.put_i16(UNSUPPORTED_VERSION);
    out.put_i32(apis.len() as i32);
    for &(key, min, max) in apis {
        out.put_i16(key);
        out.put_i16(min);
        out.put_i16(max);
    }
    out.freeze()
}

/// Produce v0–2, which kafka-protocol 0.18 cannot decode. We advertise Produce min 0 (the
/// librdkafka compression trap, KAFKA-18659) but reject v0–2: this parses the request `body`
/// (the bytes after the request header, see [`split_request_header`]) and answers every
/// partition with UNSUPPORTED_VERSION (35) and base offset -1. An unparsable body is an error
/// (the broker closes the connection). `acks` is the body's first i16; when it is 0 the
/// client expects no response at all.
pub fn encode_produce_v0_2_unsupported(
    version: i16,
    correlation_id: i32,
    body: &[u8],
) -> Result<Bytes, CodecError> {
    if !(0..=2).contains(&version) {
        return Err(CodecError::UnsupportedVersion {
            api_key: ApiKey::Produce as i16,
            version,
        });
    }
    let topics = parse_produce_v0_2(version, body)?;
    let mut out = BytesMut::new();
    out.put_i32(0); // size, patched below
    out.put_i32(correlation_id);
    out.put_i32(topics.len() as i32);
    for (name, partitions) in &topics {
        out.put_i16(name.len() as i16);
        out.put_slice(name);
        out.put_i32(partitions.len() as i32);
        for &p in partitions {
            out.put_i32(p);
            out.put_i16(UNSUPPORTED_VERSION);
            out.put_i64(-1); // base_offset
            if version >= 2 {
                out.put_i64(-1); // log_append_time_ms
            }
        }
    }
    if version >= 1 {
        out.put_i32(0); // throttle_time_ms
    }
    let size = i32::try_from(out.len() - 4).map_err(|_| produce_v0_2_error(version, "too big"))?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out.freeze())
}

fn produce_v0_2_error(version: i16, reason: &str) -> CodecError {
    CodecError::Malformed {
        api_key: ApiKey::Produce as i16,
        version,
        reason: reason.into(),
    }
}

type ProduceV0Topics<'a> = Vec<(&'a [u8], Vec<i32>)>;

/// Layout of Produce v0–2: acks i16, timeout_ms i32, topics [name string, partitions [index
/// i32, records nullable bytes]] — v3 without transactional_id.
fn parse_produce_v0_2(version: i16, mut b: &[u8]) -> Result<ProduceV0Topics<'_>, CodecError> {
    let short = |_| CodecError::Truncated;
    let bad = |reason: &str| produce_v0_2_error(version, reason);
    b.try_get_i16().map_err(short)?; // acks
    b.try_get_i32().map_err(short)?; // timeout_ms
    let n_topics = b.try_get_i32().map_err(short)?;
    let n_topics = usize::try_from(n_topics).map_err(|_| bad("negative topic count"))?;
    if n_topics > b.len() {
        return Err(bad("topic count exceeds the frame"));
    }
    let mut topics = Vec::with_capacity(n_topics);
    for _ in 0..n_topics {
        let len = b.try_get_i16().map_err(short)?;
        let len = usize::try_from(len).map_err(|_| bad("null or negative topic name"))?;
        let name = b.get(..len).ok_or(CodecError::Truncated)?;
        std::str::from_utf8(name).map_err(|_| bad("topic name is not UTF-8"))?;
        b = &b[len..];
        let n_parts = b.try_get_i32().map_err(short)?;
        let n_parts = usize::try_from(n_parts).map_err(|_| bad("negative partition count"))?;
        if n_parts > b.len() {
            return Err(bad("partition count exceeds the frame"));
        }
        let mut partitions = Vec::with_capacity(n_parts);
        for _ in 0..n_parts {
            partitions.push(b.try_get_i32().map_err(short)?);
            let records = b.try_get_i32().map_err(short)?;
            if records >= 0 {
                let records = records as usize;
                if records > b.len() {
                    return Err(CodecError::Truncated);
                }
                b = &b[records..];
            } else if records != -1 {
                return Err(bad("negative records length"));
            }
        }
        topics.push((name, partitions));
    }
    if !b.is_empty() {
        return Err(bad("trailing bytes after the body"));
    }
    Ok(topics)
}

#[cfg(test)]
#[path = "codec_test.rs"]
mod tests;
