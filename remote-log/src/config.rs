//! [`RemoteStorageConfig`]: the broker's `rsm.config.*` keys (prefix stripped), validated with
//! errors naming the key, and [`build_object_store`] turning it into an `ObjectStore`.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::ObjectStore;

use shale_common::Clock;

use crate::aws_credentials::DefaultChain;
use crate::error::{RemoteLogError, Result};
use crate::object_rsm::{DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE};

/// Which store backs remote storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// S3 or an S3-compatible server.
    S3,
    /// A local directory (single-node deployments, tests).
    File,
    /// Process memory (tests; lost on restart).
    Memory,
}

/// S3 settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `s3.bucket` (required for the s3 backend).
    pub bucket: Option<String>,
    /// `s3.endpoint` (e.g. `http://127.0.0.1:9000`); `None` = AWS.
    pub endpoint: Option<String>,
    /// `s3.region`, default `us-east-1`.
    pub region: String,
    /// `s3.access.key.id`; with the secret, overrides the AWS environment chain.
    pub access_key_id: Option<String>,
    /// `s3.secret.access.key`.
    pub secret_access_key: Option<String>,
    /// `s3.path.style`, default true.
    pub path_style: bool,
    /// `s3.allow.http`, default false (true when the endpoint is `http://`).
    pub allow_http: bool,
}

/// Remote storage configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStorageConfig {
    /// `storage.backend`: `s3` | `file` | `memory` (default `file`).
    pub backend: Backend,
    /// `file.root` (the broker supplies `<first log dir>/../shale-remote` as default).
    pub file_root: Option<PathBuf>,
    /// S3 settings.
    pub s3: S3Config,
    /// `prefix`: key prefix inside the bucket / root.
    pub prefix: String,
    /// `block.size.bytes`, default 1 MiB.
    pub block_size: u64,
    /// `cache.size.bytes`, default 256 MiB.
    pub cache_size: u64,
    /// `index.cache.size.bytes`, default 32 MiB.
    pub index_cache_size: u64,
    /// `readahead.blocks`, default 32 (fetched as GETs of 4 blocks, about eight in flight).
    pub readahead_blocks: u64,
    /// `multipart.threshold.bytes`, default 8 MiB.
    pub multipart_threshold: u64,
    /// `multipart.part.size.bytes`, default 8 MiB (S3 minimum 5 MiB).
    pub multipart_part_size: u64,
}

/// Every key this module understands.
pub const KEYS: &[&str] = &[
    "storage.backend",
    "file.root",
    "s3.bucket",
    "s3.endpoint",
    "s3.region",
    "s3.access.key.id",
    "s3.secret.access.key",
    "s3.path.style",
    "s3.allow.http",
    "prefix",
    "block.size.bytes",
    "cache.size.bytes",
    "index.cache.size.bytes",
    "readahead.blocks",
    "multipart.threshold.bytes",
    "multipart.part.size.bytes",
];

const MIB: u64 = 1 << 20;
const S3_MIN_PART: u64 = 5 * MIB;

impl Default for RemoteStorageConfig {
    fn default() -> Self {
        RemoteStorageConfig {
            backend: Backend::File,
            file_root: None,
            s3: S3Config {
                bucket: None,
                endpoint: None,
                region: "us-east-1".into(),
                access_key_id: None,
                secret_access_key: None,
                path_style: true,
                allow_http: false,
            },
            prefix: String::new(),
            block_size: MIB,
            cache_size: 256 * MIB,
            index_cache_size: 32 * MIB,
            readahead_blocks: 32,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            multipart_part_size: DEFAULT_PART_SIZE as u64,
        }
    }
}

fn parse_u64(key: &str, v: &str, min: u64, max: u64) -> Result<u64> {
    let n: u64 = v
        .trim()
        .parse()
        .map_err(|_| RemoteLogError::config(key, format!("{v:?} is not a non-negative integer")))?;
    if n < min || n > max {
        return Err(RemoteLogError::config(
            key,
            format!("{n} not in [{min}, {max}]"),
        ));
    }
    Ok(n)
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(RemoteLogError::config(
            key,
            format!("{v:?} is not true or false"),
        )),
    }
}

impl RemoteStorageConfig {
    /// Parses `rsm.config.*` properties with the prefix already stripped. Unknown keys are errors.
    /// `default_file_root` is used when `file.root` is not given (the broker passes
    /// `<first log dir>/../shale-remote`).
    pub fn from_props<K, V>(
        props: impl IntoIterator<Item = (K, V)>,
        default_file_root: Option<&std::path::Path>,
    ) -> Result<Self>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut c = RemoteStorageConfig {
            file_root: default_file_root.map(std::path::Path::to_path_buf),
            ..RemoteStorageConfig::default()
        };
        let mut allow_http: Option<bool> = None;
        for (k, v) in props {
            let (k, v) = (k.as_ref(), v.as_ref());
            let opt = || (!v.trim().is_empty()).then(|| v.trim().to_string());
            match k {
                "storage.backend" => {
                    c.backend = match v.trim() {
                        "s3" => Backend::S3,
                        "file" => Backend::File,
                        "memory" => Backend::Memory,
                        other => {
                            return Err(RemoteLogError::config(
                                k,
                                format!("{other:?} is not one of s3, file, memory"),
                            ))
                        }
                    }
                }
                "file.root" => c.file_root = opt().map(PathBuf::from),
                "s3.bucket" => c.s3.bucket = opt(),
                "s3.endpoint" => c.s3.endpoint = opt(),
                "s3.region" => c.s3.region = opt().unwrap_or_else(|| "us-east-1".into()),
                "s3.access.key.id" => c.s3.access_key_id = opt(),
                "s3.secret.access.key" => c.s3.secret_access_key = opt(),
                "s3.path.style" => c.s3.path_style = parse_bool(k, v)?,
                "s3.allow.http" => allow_http = Some(parse_bool(k, v)?),
                "prefix" => c.prefix = v.trim().trim_matches('/').to_string(),
                "block.size.bytes" => c.block_size = parse_u64(k, v, 4096, 64 * MIB)?,
                "cache.size.bytes" => c.cache_size = parse_u64(k, v, 0, u64::MAX)?,
                "index.cache.size.bytes" => c.index_cache_size = parse_u64(k, v, 0, u64::MAX)?,
                "readahead.blocks" => c.readahead_blocks = parse_u64(k, v, 0, 1024)?,
                "multipart.threshold.bytes" => {
                    c.multipart_threshold = parse_u64(k, v, 0, u64::MAX)?
                }
                "multipart.part.size.bytes" => {
                    c.multipart_part_size = parse_u64(k, v, S3_MIN_PART, 5 << 30)?
                }
                _ => return Err(RemoteLogError::config(k, "unknown key")),
            }
        }
        let http_endpoint =
            c.s3.endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"));
        c.s3.allow_http = allow_http.unwrap_or(http_endpoint);
        c.validate()?;
        Ok(c)
    }

    /// Cross-key checks.
    pub fn validate(&self) -> Result<()> {
        if self.backend == Backend::S3 && self.s3.bucket.is_none() {
            return Err(RemoteLogError::config(
                "s3.bucket",
                "required when storage.backend=s3",
            ));
        }
        if self.backend == Backend::File && self.file_root.is_none() {
            return Err(RemoteLogError::config(
                "file.root",
                "required when storage.backend=file",
            ));
        }
        if self.s3.access_key_id.is_some() != self.s3.secret_access_key.is_some() {
            return Err(RemoteLogError::config(
                "s3.secret.access.key",
                "s3.access.key.id and s3.secret.access.key must be set together",
            ));
        }
        if self.cache_size > 0 && self.cache_size < self.block_size {
            return Err(RemoteLogError::config(
                "cache.size.bytes",
                format!(
                    "{} is smaller than block.size.bytes {}",
                    self.cache_size, self.block_size
                ),
            ));
        }
        if let Some(e) = &self.s3.endpoint {
            if e.starts_with("http://") && !self.s3.allow_http {
                return Err(RemoteLogError::config(
                    "s3.allow.http",
                    format!("false but s3.endpoint {e} is http"),
                ));
            }
        }
        Ok(())
    }
}

/// Builds the configured store (the `file` root is created if missing). `clock` times the
/// refresh of S3 credentials from the AWS default chain.
pub fn build_object_store(
    config: &RemoteStorageConfig,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn ObjectStore>> {
    match config.backend {
        Backend::Memory => Ok(Arc::new(InMemory::new())),
        Backend::File => {
            let root = config.file_root.as_ref().ok_or_else(|| {
                RemoteLogError::config("file.root", "required when storage.backend=file")
            })?;
            std::fs::create_dir_all(root).map_err(|source| RemoteLogError::Io {
                path: root.clone(),
                source,
            })?;
            let fs = LocalFileSystem::new_with_prefix(root)
                .map_err(|e| RemoteLogError::config("file.root", e.to_string()))?;
            Ok(Arc::new(fs))
        }
        Backend::S3 => build_s3(config, clock),
    }
}

fn build_s3(config: &RemoteStorageConfig, clock: Arc<dyn Clock>) -> Result<Arc<dyn ObjectStore>> {
    let s3 = &config.s3;
    let bucket = s3
        .bucket
        .as_deref()
        .ok_or_else(|| RemoteLogError::config("s3.bucket", "required when storage.backend=s3"))?;
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region(&s3.region)
        .with_virtual_hosted_style_request(!s3.path_style)
        .with_allow_http(s3.allow_http);
    if let Some(e) = &s3.endpoint {
        b = b.with_endpoint(e);
    }
    b = match (&s3.access_key_id, &s3.secret_access_key) {
        (Some(id), Some(secret)) => b.with_access_key_id(id).with_secret_access_key(secret),
        _ => b.with_credentials(Arc::new(DefaultChain::new(&s3.region, clock))),
    };
    let store = b
        .build()
        .map_err(|e| RemoteLogError::config("s3.bucket", e.to_string()))?;
    Ok(Arc::new(store))
}

#[cfg(test)]
#[path = "config_test.rs"]
mod tests;
