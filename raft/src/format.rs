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

use crate::batch::{voters_entries_value, VoterEntry};
use crate::error::RaftError;
use crate::image::METADATA_VERSION_FEATURE;
use crate::metadata_log::METADATA_TOPIC;
use crate::records::{FeatureLevelRecord, MetadataRecord};
use crate::snapshot::{
    checkpoint_voters, encode_batch_file, encode_checkpoint_with, read_batch_file, write_atomic,
    SnapshotId,
};

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

/// `transaction.version` of a fresh cluster: 2 (KIP-890 part 2), as Kafka 4.0 formats.
pub const BOOTSTRAP_TRANSACTION_VERSION: i16 = 2;

/// The records a default format bootstraps: metadata.version first, then the other features
/// with a non-zero level sorted by name (group.version 1, transaction.version 2).
pub fn default_bootstrap_records() -> Vec<MetadataRecord> {
    let feature = |name: &str, feature_level| {
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: name.into(),
            feature_level,
        })
    };
    vec![
        feature(METADATA_VERSION_FEATURE, BOOTSTRAP_METADATA_VERSION),
        feature("group.version", 1),
        feature("transaction.version", BOOTSTRAP_TRANSACTION_VERSION),
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

/// Appends `records` to the bootstrap records of each formatted dir (`shale format
/// --add-scram`): the cluster applies them with the features when its metadata log starts.
pub fn append_bootstrap_records(
    dirs: &[PathBuf],
    records: &[MetadataRecord],
) -> Result<(), RaftError> {
    for dir in dirs {
        let mut all = bootstrap_records(dir)?;
        all.extend(records.iter().cloned());
        let bytes = encode_batch_file(0, 0, 0, &all)?;
        let path = dir.join(BOOTSTRAP_FILE);
        write_atomic(&path, &dir.join(format!("{BOOTSTRAP_FILE}.tmp")), &bytes)?;
    }
    Ok(())
}

fn check_cluster_id(cluster_id: &str) -> Result<(), RaftError> {
    if kafka_uuid::decode(cluster_id).is_none() {
        return Err(RaftError::InvalidArgument(format!(
            "Cluster ID string {cluster_id} does not appear to be a valid UUID"
        )));
    }
    Ok(())
}

fn format_one(
    dir: &Path,
    cluster_id: &str,
    node_id: i32,
    directory_id: Uuid,
) -> Result<(), RaftError> {
    fs::create_dir_all(dir).map_err(|e| RaftError::io(dir, e))?;
    let bytes = encode_batch_file(0, 0, 0, &default_bootstrap_records())?;
    let path = dir.join(BOOTSTRAP_FILE);
    write_atomic(&path, &dir.join(format!("{BOOTSTRAP_FILE}.tmp")), &bytes)?;
    let meta = MetaProperties {
        cluster_id: cluster_id.to_owned(),
        node_id,
        directory_id: kafka_uuid::encode(&directory_id),
    };
    meta.write(dir)?;
    Ok(())
}

/// The initial voter set of a dynamic quorum (KIP-853), chosen at format time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitialVoters {
    /// `--standalone`: this node alone, at these controller-listener endpoints.
    Standalone(Vec<(String, String, u16)>),
    /// `--initial-controllers`: these voters; this node's entry names its metadata dir's
    /// directory id.
    List(Vec<VoterEntry>),
}

/// Parses `--initial-controllers`: `id@host:port:directory-id` entries, comma-separated, each
/// endpoint on the listener `listener`.
pub fn parse_initial_controllers(text: &str, listener: &str) -> Result<Vec<VoterEntry>, RaftError> {
    let bad = |entry: &str, why: &str| {
        RaftError::InvalidArgument(format!(
            "--initial-controllers entry '{entry}': {why} (expected id@host:port:directory-id)"
        ))
    };
    let mut out: Vec<VoterEntry> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, rest) = entry.split_once('@').ok_or_else(|| bad(entry, "no '@'"))?;
        let id: i32 = id.parse().map_err(|_| bad(entry, "bad node id"))?;
        let (address, dir) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad(entry, "no directory id"))?;
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| bad(entry, "no port"))?;
        let port: u16 = port.parse().map_err(|_| bad(entry, "bad port"))?;
        let directory_id = kafka_uuid::decode(dir).ok_or_else(|| bad(entry, "bad directory id"))?;
        if id < 0 || out.iter().any(|v| v.id == id) {
            return Err(bad(entry, "negative or repeated node id"));
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        out.push(VoterEntry {
            id,
            directory_id,
            endpoints: vec![(listener.to_owned(), host, port)],
        });
    }
    if out.is_empty() {
        return Err(RaftError::InvalidArgument(
            "--initial-controllers names no controller".into(),
        ));
    }
    Ok(out)
}

/// `shale format --standalone` / `--initial-controllers`: [`format_dirs`], then the bootstrap
/// snapshot `__cluster_metadata-0/00000000000000000000-0000000000.checkpoint` in
/// `metadata_dir` (a SnapshotHeader, KRaftVersion 1, the VotersRecord, a SnapshotFooter), as
/// Kafka's formatter writes it. The metadata dir's directory id is this node's voter's.
pub fn format_dirs_dynamic(
    dirs: &[PathBuf],
    metadata_dir: &Path,
    cluster_id: &str,
    node_id: i32,
    rng: &dyn Rng,
    initial: &InitialVoters,
) -> Result<(), RaftError> {
    let (voters, own_dir) = match initial {
        InitialVoters::Standalone(endpoints) => {
            let id = random_uuid_value(rng);
            let me = VoterEntry {
                id: node_id,
                directory_id: id,
                endpoints: endpoints.clone(),
            };
            (vec![me], Some(id))
        }
        InitialVoters::List(list) => {
            let own = list
                .iter()
                .find(|v| v.id == node_id)
                .map(|v| v.directory_id);
            (list.clone(), own)
        }
    };
    let ids: Vec<(PathBuf, Uuid)> = dirs
        .iter()
        .map(|d| {
            let id = match own_dir {
                Some(own) if d == metadata_dir => own,
                _ => random_uuid_value(rng),
            };
            (d.clone(), id)
        })
        .collect();
    format_checked(&ids, cluster_id, node_id)?;
    let log_dir = metadata_dir.join(format!("{METADATA_TOPIC}-0"));
    fs::create_dir_all(&log_dir).map_err(|e| RaftError::io(&log_dir, e))?;
    let value = voters_entries_value(&voters)?;
    let bytes = encode_checkpoint_with(0, 0, 0, Some(value), &[])?;
    let name = SnapshotId {
        end_offset: 0,
        epoch: 0,
    }
    .file_name();
    write_atomic(
        &log_dir.join(&name),
        &log_dir.join(format!("{name}.part")),
        &bytes,
    )
}

/// The voter ids of a dynamic quorum's bootstrap snapshot in `metadata_dir`, if it has one.
pub fn bootstrap_voters(metadata_dir: &Path) -> Result<Option<Vec<i32>>, RaftError> {
    let dir = metadata_dir.join(format!("{METADATA_TOPIC}-0"));
    let name = SnapshotId {
        end_offset: 0,
        epoch: 0,
    }
    .file_name();
    match fs::read(dir.join(&name)) {
        Ok(bytes) => Ok(checkpoint_voters(&bytes::Bytes::from(bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RaftError::io(dir.join(name), e)),
    }
}

/// `shale format`: formats every dir in `dirs`; refuses (before writing anything) when any of
/// them already has meta.properties.
pub fn format_dirs(
    dirs: &[PathBuf],
    cluster_id: &str,
    node_id: i32,
    rng: &dyn Rng,
) -> Result<(), RaftError> {
    let ids: Vec<(PathBuf, Uuid)> = dirs
        .iter()
        .map(|d| (d.clone(), random_uuid_value(rng)))
        .collect();
    format_checked(&ids, cluster_id, node_id)
}

/// Formats each dir with its directory id, after the checks of [`format_dirs`].
fn format_checked(
    dirs: &[(PathBuf, Uuid)],
    cluster_id: &str,
    node_id: i32,
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
    for (dir, _) in dirs {
        if MetaProperties::read(dir)?.is_some() {
            return Err(RaftError::AlreadyFormatted { path: dir.clone() });
        }
    }
    for (dir, id) in dirs {
        format_one(dir, cluster_id, node_id, *id)?;
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
