//! `shale format` and `shale random-uuid` (Kafka's `kafka-storage.sh format` / `random-uuid`,
//! formats.md §3.2, §6.7): each log dir gets `bootstrap.checkpoint` (header, the bootstrap
//! FeatureLevelRecords, footer; epoch 0, offsets from 0) and then `meta.properties` v1 with the
//! cluster id, node id and a fresh directory id. [`ensure_formatted`] is the embedded default:
//! it formats empty directories by itself and checks existing ones.

use std::fs;
use std::path::{Path, PathBuf};

use shale_common::kafka_uuid;
use shale_common::Rng;
use shale_local_log::MetaProperties;
use uuid::Uuid;

use crate::error::RaftError;
use crate::image::METADATA_VERSION_FEATURE;
use crate::records::{FeatureLevelRecord, MetadataRecord};
use crate::snapshot::{encode_batch_file, read_batch_file, write_atomic};

/// The bootstrap file in every formatted log dir.
pub const BOOTSTRAP_FILE: &str = "bootstrap.checkpoint";
/// metadata.version level of a fresh cluster (4.0-IV0).
pub const BOOTSTRAP_METADATA_VERSION: i16 = 22;

/// A random UUID as Kafka's `Uuid.randomUuid()` makes them: version-4 bits, never one of the
/// reserved ids (msb 0 and lsb < 100), never one whose string form starts with '-'.
pub fn random_uuid_value(rng: &dyn Rng) -> Uuid {
    loop {
        let mut b = rng.next_bytes16();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let id = Uuid::from_bytes(b);
        let (msb, lsb) = id.as_u64_pair();
        if (msb == 0 && lsb < 100) || kafka_uuid::encode(&id).starts_with('-') {
            continue;
        }
        return id;
    }
}

/// `shale random-uuid`: a fresh cluster id / directory id string (22 chars).
pub fn random_uuid(rng: &dyn Rng) -> String {
    kafka_uuid::encode(&random_uuid_value(rng))
}

/// The records a default format bootstraps: metadata.version first, then the other features
/// with a non-zero level sorted by name (group.version 1).
pub fn default_bootstrap_records() -> Vec<MetadataRecord> {
    vec![
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: METADATA_VERSION_FEATURE.into(),
            feature_level: BOOTSTRAP_METADATA_VERSION,
        }),
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "group.version".into(),
            feature_level: 1,
        }),
    ]
}

/// The bootstrap records of a formatted dir: its `bootstrap.checkpoint`, or the defaults
/// when the file is absent.
pub fn bootstrap_records(dir: &Path) -> Result<Vec<MetadataRecord>, RaftError> {
    let path = dir.join(BOOTSTRAP_FILE);
    if !path.exists() {
        return Ok(default_bootstrap_records());
    }
    Ok(read_batch_file(&path)?.records)
}

fn check_cluster_id(cluster_id: &str) -> Result<(), RaftError> {
    if kafka_uuid::decode(cluster_id).is_none() {
        return Err(RaftError::InvalidArgument(format!(
            "Cluster ID string {cluster_id} does not appear to be a valid UUID"
        )));
    }
    Ok(())
}

fn format_one(dir: &Path, cluster_id: &str, node_id: i32, rng: &dyn Rng) -> Result<(), RaftError> {
    fs::create_dir_all(dir).map_err(|e| RaftError::io(dir, e))?;
    let bytes = encode_batch_file(0, 0, 0, &default_bootstrap_records())?;
    let path = dir.join(BOOTSTRAP_FILE);
    write_atomic(&path, &dir.join(format!("{BOOTSTRAP_FILE}.tmp")), &bytes)?;
    let meta = MetaProperties {
        cluster_id: cluster_id.to_owned(),
        node_id,
        directory_id: random_uuid(rng),
    };
    meta.write(dir)?;
    Ok(())
}

/// `shale format`: formats every dir in `dirs`; refuses (before writing anything) when any of
/// them already has meta.properties.
pub fn format_dirs(
    dirs: &[PathBuf],
    cluster_id: &str,
    node_id: i32,
    rng: &dyn Rng,
) -> Result<(), RaftError> {
    check_cluster_id(cluster_id)?;
    if node_id < 0 {
        return Err(RaftError::InvalidArgument(format!(
            "node.id must be non-negative, got {node_id}"
        )));
    }
    if dirs.is_empty() {
        return Err(RaftError::InvalidArgument(
            "no log directories to format".into(),
        ));
    }
    for dir in dirs {
        if MetaProperties::read(dir)?.is_some() {
            return Err(RaftError::AlreadyFormatted { path: dir.clone() });
        }
    }
    for dir in dirs {
        format_one(dir, cluster_id, node_id, rng)?;
    }
    Ok(())
}

fn is_empty_dir(dir: &Path) -> Result<bool, RaftError> {
    match fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(RaftError::io(dir, e)),
    }
}

/// The embedded default: checks formatted dirs against `node_id` and against each other,
/// formats the missing or empty ones with the same cluster id (a random one when none exists
/// yet), and returns the cluster id. A non-empty dir without meta.properties is an error.
pub fn ensure_formatted(
    dirs: &[PathBuf],
    node_id: i32,
    rng: &dyn Rng,
) -> Result<String, RaftError> {
    ensure_formatted_as(dirs, None, node_id, rng)
}

/// [`ensure_formatted`] that also requires (or, for fresh dirs, uses) `cluster_id`.
pub fn ensure_formatted_as(
    dirs: &[PathBuf],
    cluster_id: Option<&str>,
    node_id: i32,
    rng: &dyn Rng,
) -> Result<String, RaftError> {
    let mut cluster = cluster_id.map(str::to_owned);
    let mut missing = Vec::new();
    for dir in dirs {
        match MetaProperties::read(dir)? {
            Some(meta) => {
                if meta.node_id != node_id {
                    return Err(RaftError::MetaPropertiesMismatch {
                        path: dir.clone(),
                        key: "node.id",
                        expected: node_id.to_string(),
                        found: meta.node_id.to_string(),
                    });
                }
                match &cluster {
                    Some(c) if *c != meta.cluster_id => {
                        return Err(RaftError::MetaPropertiesMismatch {
                            path: dir.clone(),
                            key: "cluster.id",
                            expected: c.clone(),
                            found: meta.cluster_id,
                        })
                    }
                    Some(_) => {}
                    None => cluster = Some(meta.cluster_id),
                }
            }
            None if is_empty_dir(dir)? => missing.push(dir.clone()),
            None => {
                return Err(RaftError::InvalidArgument(format!(
                    "{} is not empty but has no meta.properties; format it or empty it",
                    dir.display()
                )))
            }
        }
    }
    let cluster = cluster.unwrap_or_else(|| random_uuid(rng));
    if !missing.is_empty() {
        format_dirs(&missing, &cluster, node_id, rng)?;
    }
    Ok(cluster)
}

#[cfg(test)]
#[path = "format_test.rs"]
mod tests;
