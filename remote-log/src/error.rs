//! The crate's single error type. Variants carry object keys, paths and offsets; [`ErrorKind`]
//! lets the broker map failures to Kafka error codes at its edge (this crate knows none).

use std::path::PathBuf;
use std::sync::Arc;

/// Result alias of this crate.
pub type Result<T, E = RemoteLogError> = std::result::Result<T, E>;

pub use shale_common::ErrorKind;

/// Errors of remote storage.
#[derive(Debug, thiserror::Error)]
pub enum RemoteLogError {
    /// A remote object (or a section of one) is missing.
    #[error("remote resource not found: {what}")]
    NotFound {
        /// What was looked for (object key, index type and segment).
        what: String,
    },
    /// An object-store request failed.
    #[error("object store {op} of {key} failed: {source}")]
    Store {
        /// The request kind (put, get, head, delete, list).
        op: &'static str,
        /// Object key or prefix.
        key: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// Local file I/O failed while reading a segment's files.
    #[error("i/o on {path}: {source}", path = path.display())]
    Io {
        /// The local file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Uploaded or downloaded data does not match what was expected.
    #[error("integrity check failed for {key}: {detail}")]
    Integrity {
        /// Object key.
        key: String,
        /// What did not match.
        detail: String,
    },
    /// Custom metadata, an index or record batches could not be decoded.
    #[error("corrupt remote data in {what}: {detail}")]
    Corrupt {
        /// Segment or object concerned.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// Offset or byte position outside what the segment holds.
    #[error("{what}: {detail}")]
    OutOfRange {
        /// Segment concerned.
        what: String,
        /// The offending value and the valid range.
        detail: String,
    },
    /// A configuration key has an invalid value.
    #[error("invalid remote storage config {key}: {detail}")]
    Config {
        /// The key without the `rsm.config.` prefix.
        key: String,
        /// Why it is invalid.
        detail: String,
    },
    /// An error shared by several waiters of one single-flighted cache load.
    #[error(transparent)]
    Shared(Arc<RemoteLogError>),
}

impl RemoteLogError {
    /// The classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Store { source, .. } => match source {
                object_store::Error::NotFound { .. } => ErrorKind::NotFound,
                _ => ErrorKind::Storage,
            },
            Self::Io { .. } => ErrorKind::Storage,
            Self::Integrity { .. } | Self::Corrupt { .. } => ErrorKind::Corrupt,
            Self::OutOfRange { .. } => ErrorKind::OutOfRange,
            Self::Config { .. } => ErrorKind::Config,
            Self::Shared(e) => e.kind(),
        }
    }

    /// True when the error means "object or section does not exist".
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }

    /// Wraps a store error, turning the store's NotFound into [`RemoteLogError::NotFound`].
    pub(crate) fn store(
        op: &'static str,
        key: impl std::fmt::Display,
        e: object_store::Error,
    ) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::NotFound {
                what: format!("object {key}"),
            },
            source => Self::Store {
                op,
                key: key.to_string(),
                source,
            },
        }
    }

    pub(crate) fn config(key: &str, detail: impl Into<String>) -> Self {
        Self::Config {
            key: key.to_string(),
            detail: detail.into(),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

impl From<Arc<RemoteLogError>> for RemoteLogError {
    fn from(e: Arc<RemoteLogError>) -> Self {
        match Arc::try_unwrap(e) {
            Ok(inner) => inner,
            Err(shared) => Self::Shared(shared),
        }
    }
}
