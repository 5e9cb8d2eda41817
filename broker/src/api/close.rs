//! Why a connection is closed instead of answered: [`CloseReason`], produced by the frame reader
//! and by [`super::handle`], logged once by the connection loop, which then closes the
//! connection (Kafka closes the socket on a request it cannot parse or serve).

use kafka_protocol::messages::ApiKey;
use shale_protocol::codec::CodecError;

/// The reason a connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum CloseReason {
    /// The size prefix is negative or above `socket.request.max.bytes`.
    #[error("request size {size} is outside 0..={max} (socket.request.max.bytes)")]
    RequestTooLarge {
        /// The size prefix.
        size: i32,
        /// `socket.request.max.bytes`.
        max: usize,
    },
    /// The first bytes are a TLS handshake record on a listener that speaks plain Kafka.
    #[error(
        "a TLS handshake on a plaintext listener: the client uses SSL (security.protocol) but \
         this listener's protocol is PLAINTEXT"
    )]
    TlsOnPlaintext,
    /// The stream ended in the middle of a frame.
    #[error("truncated request: {read} of {size} bytes")]
    Truncated {
        /// Bytes received.
        read: usize,
        /// The size prefix.
        size: usize,
    },
    /// Reading from the socket failed.
    #[error("reading the request failed: {0}")]
    Read(#[source] std::io::Error),
    /// The frame is too short to hold a request header.
    #[error("unreadable request header: {0}")]
    MalformedHeader(#[source] CodecError),
    /// An api key this broker does not serve.
    #[error("api key {0} is not served by this broker")]
    UnsupportedApi(i16),
    /// A served api at a version outside the range this broker decodes.
    #[error("unsupported version {version} of api key {api_key}")]
    UnsupportedVersion {
        /// Api key.
        api_key: i16,
        /// Requested version.
        version: i16,
    },
    /// The request body does not decode.
    #[error("malformed request (api key {api_key} v{version}): {reason}")]
    MalformedRequest {
        /// Api key.
        api_key: i16,
        /// Version.
        version: i16,
        /// What the decoder found.
        reason: String,
    },
    /// An acks=0 Produce failed for these partitions; with no response to say so, the
    /// connection is closed (Kafka's rule).
    #[error("an acks=0 produce request failed ({0}): closing the connection to tell the producer")]
    AcksZeroFailed(String),
    /// The response could not be encoded (a broker bug, not the client's).
    #[error("cannot encode the {api:?} v{version} response: {reason}")]
    EncodeFailed {
        /// Api.
        api: ApiKey,
        /// Version.
        version: i16,
        /// What the encoder found.
        reason: String,
    },
}

impl CloseReason {
    /// The reason for a request of `api_key`/`version` the codec refused.
    pub fn from_codec(e: CodecError, api_key: i16, version: i16) -> Self {
        match e {
            CodecError::UnknownApiKey(k) => CloseReason::UnsupportedApi(k),
            CodecError::UnsupportedVersion { api_key, version } => {
                CloseReason::UnsupportedVersion { api_key, version }
            }
            CodecError::Truncated => CloseReason::MalformedRequest {
                api_key,
                version,
                reason: "frame truncated".into(),
            },
            CodecError::Malformed {
                api_key,
                version,
                reason,
            } => CloseReason::MalformedRequest {
                api_key,
                version,
                reason,
            },
        }
    }

    /// True when the peer sent something this broker refuses (as opposed to the connection
    /// failing or the broker failing to answer).
    pub fn is_bad_request(&self) -> bool {
        match self {
            CloseReason::RequestTooLarge { .. }
            | CloseReason::TlsOnPlaintext
            | CloseReason::MalformedHeader(_)
            | CloseReason::UnsupportedApi(_)
            | CloseReason::UnsupportedVersion { .. }
            | CloseReason::MalformedRequest { .. } => true,
            CloseReason::Truncated { .. }
            | CloseReason::Read(_)
            | CloseReason::AcksZeroFailed(_)
            | CloseReason::EncodeFailed { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_errors_keep_their_kind() {
        let r = CloseReason::from_codec(CodecError::UnknownApiKey(999), 999, 0);
        assert!(matches!(r, CloseReason::UnsupportedApi(999)));
        let r = CloseReason::from_codec(
            CodecError::UnsupportedVersion {
                api_key: 3,
                version: 99,
            },
            3,
            99,
        );
        assert!(matches!(
            r,
            CloseReason::UnsupportedVersion {
                api_key: 3,
                version: 99
            }
        ));
        let r = CloseReason::from_codec(CodecError::Truncated, 1, 4);
        assert!(matches!(
            r,
            CloseReason::MalformedRequest {
                api_key: 1,
                version: 4,
                ..
            }
        ));
        assert!(r.is_bad_request());
        assert!(!CloseReason::Truncated { read: 1, size: 2 }.is_bad_request());
    }
}
