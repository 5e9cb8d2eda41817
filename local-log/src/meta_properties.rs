//! Small text files that identify things: the KRaft `meta.properties` (v1) of a log dir
//! (formats.md §3.2), a partition's `partition.metadata` (§3.4), the `.kafka_cleanshutdown`
//! marker (§3.5). Ids in them are Kafka's UUID text ([`shale_common::kafka_uuid`]).

use std::fs;
use std::path::Path;

use shale_common::kafka_uuid;
use uuid::Uuid;

use crate::checkpoint::write_atomic;
use crate::error::{LogError, Result};

/// File name of the KRaft properties file.
pub const META_PROPERTIES: &str = "meta.properties";
/// File name of the per-partition topic-id file.
pub const PARTITION_METADATA: &str = "partition.metadata";
/// File name of the clean-shutdown marker.
pub const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";

/// KRaft `meta.properties` version 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaProperties {
    /// `cluster.id`.
    pub cluster_id: String,
    /// `node.id`.
    pub node_id: i32,
    /// `directory.id` (base64url UUID).
    pub directory_id: String,
}

impl MetaProperties {
    /// Reads `<dir>/meta.properties`; `Ok(None)` if absent. Comment lines and key order are
    /// ignored; version must be 1 and the three keys present.
    pub fn read(dir: &Path) -> Result<Option<MetaProperties>> {
        let path = dir.join(META_PROPERTIES);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LogError::io(&path, e)),
        };
        let mut version = None;
        let (mut cluster_id, mut node_id, mut directory_id) = (None, None, None);
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(LogError::corrupt(&path, format!("malformed line {line:?}")));
            };
            match k.trim() {
                "version" => version = Some(v.trim().to_string()),
                "cluster.id" => cluster_id = Some(v.trim().to_string()),
                "node.id" => node_id = v.trim().parse::<i32>().ok(),
                "directory.id" => directory_id = Some(v.trim().to_string()),
                _ => {}
            }
        }
        if version.as_deref() != Some("1") {
            return Err(LogError::corrupt(
                &path,
                format!("unsupported version {version:?}"),
            ));
        }
        match (cluster_id, node_id, directory_id) {
            (Some(cluster_id), Some(node_id), Some(directory_id)) => Ok(Some(MetaProperties {
                cluster_id,
                node_id,
                directory_id,
            })),
            _ => Err(LogError::corrupt(
                &path,
                "missing cluster.id, node.id or directory.id",
            )),
        }
    }

    /// Writes `<dir>/meta.properties` (tmp + fsync + rename) with a bare `#` comment header.
    /// Use [`MetaProperties::write_at`] to get Kafka's dated header too.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(META_PROPERTIES), self.render(None).as_bytes())
    }

    /// Like [`MetaProperties::write`], with the `#<Java Date.toString()>` line Kafka writes,
    /// for the wall time `now_ms` (UTC).
    pub fn write_at(&self, dir: &Path, now_ms: i64) -> Result<()> {
        write_atomic(
            &dir.join(META_PROPERTIES),
            self.render(Some(now_ms)).as_bytes(),
        )
    }

    fn render(&self, now_ms: Option<i64>) -> String {
        let mut s = String::from("#\n");
        if let Some(ms) = now_ms {
            s.push('#');
            s.push_str(&java_date_utc(ms));
            s.push('\n');
        }
        s.push_str(&format!(
            "node.id={}\ndirectory.id={}\nversion=1\ncluster.id={}\n",
            self.node_id, self.directory_id, self.cluster_id
        ));
        s
    }
}

/// `java.util.Date.toString()` in UTC, e.g. `Fri Oct 25 03:33:01 UTC 2024`.
pub(crate) fn java_date_utc(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian), days since 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        year
    )
}

/// Writes `<partition dir>/partition.metadata`: exactly `version: 0\ntopic_id: <base64url>`.
pub(crate) fn write_partition_metadata(dir: &Path, topic_id: &Uuid) -> Result<()> {
    let text = format!("version: 0\ntopic_id: {}", kafka_uuid::encode(topic_id));
    write_atomic(&dir.join(PARTITION_METADATA), text.as_bytes())
}

/// Reads `<partition dir>/partition.metadata`; `Ok(None)` if absent.
pub(crate) fn read_partition_metadata(dir: &Path) -> Result<Option<Uuid>> {
    let path = dir.join(PARTITION_METADATA);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io(&path, e)),
    };
    let mut version = None;
    let mut id = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["version:", v] => version = Some(*v),
            ["topic_id:", v] => id = kafka_uuid::decode(v),
            _ => {}
        }
    }
    match (version, id) {
        (Some("0"), Some(id)) => Ok(Some(id)),
        _ => Err(LogError::corrupt(
            &path,
            "expected version 0 and a topic_id",
        )),
    }
}

/// Content of the clean-shutdown marker (broker epoch unknown).
pub(crate) const CLEAN_SHUTDOWN_CONTENT: &[u8] = br#"{"version":0,"brokerEpoch":-1}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_metadata_exact_bytes() {
        let d = tempfile::tempdir().unwrap();
        write_partition_metadata(d.path(), &Uuid::from_u128(1)).unwrap();
        assert_eq!(
            fs::read(d.path().join(PARTITION_METADATA)).unwrap(),
            b"version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAQ"
        );
        assert_eq!(
            read_partition_metadata(d.path()).unwrap(),
            Some(Uuid::from_u128(1))
        );
    }

    #[test]
    fn meta_properties_round_trip_and_kafka_layout() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(MetaProperties::read(d.path()).unwrap(), None);
        let m = MetaProperties {
            cluster_id: "MkU3OEVBNTcwNTJENDM2Qg".into(),
            node_id: 1,
            directory_id: "J8aAPcfLQt2bqs1JT_rMgQ".into(),
        };
        m.write_at(d.path(), 1_729_827_181_000).unwrap();
        let text = fs::read_to_string(d.path().join(META_PROPERTIES)).unwrap();
        assert_eq!(
            text,
            "#\n#Fri Oct 25 03:33:01 UTC 2024\nnode.id=1\ndirectory.id=J8aAPcfLQt2bqs1JT_rMgQ\nversion=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qg\n"
        );
        assert_eq!(MetaProperties::read(d.path()).unwrap(), Some(m.clone()));
        // Key order and comments do not matter to the reader.
        fs::write(
            d.path().join(META_PROPERTIES),
            "#x\ncluster.id=MkU3OEVBNTcwNTJENDM2Qg\nversion=1\ndirectory.id=J8aAPcfLQt2bqs1JT_rMgQ\nnode.id=1\n",
        )
        .unwrap();
        assert_eq!(MetaProperties::read(d.path()).unwrap(), Some(m.clone()));
        m.write(d.path()).unwrap();
        assert_eq!(MetaProperties::read(d.path()).unwrap(), Some(m));
        fs::write(d.path().join(META_PROPERTIES), "version=0\nbroker.id=1\n").unwrap();
        assert!(MetaProperties::read(d.path()).is_err());
    }

    #[test]
    fn java_dates() {
        assert_eq!(java_date_utc(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(
            java_date_utc(1_700_000_000_000),
            "Tue Nov 14 22:13:20 UTC 2023"
        );
    }
}
