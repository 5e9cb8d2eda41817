//! Test helpers usable from other crates (not `cfg(test)`): [`InMemoryMetadataTopic`], a
//! [`MetadataTopic`] kept in memory with a knob to fail chosen appends.

use crate::error::{Result, RlmmError};
use crate::manager::MetadataTopic;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::Arc;

/// An in-memory `__remote_log_metadata`: one `Vec` of record values per partition.
#[derive(Debug, Default)]
pub struct InMemoryMetadataTopic {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    partitions: Option<Vec<Vec<Bytes>>>,
    append_calls: u64,
    failing_appends: BTreeSet<u64>,
    records_read: u64,
}

impl InMemoryMetadataTopic {
    /// A topic that does not exist yet (`ensure` creates it).
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A topic that already exists with `partitions` partitions.
    pub fn with_partitions(partitions: i32) -> Arc<Self> {
        let t = Self::default();
        t.inner.lock().partitions = Some(vec![Vec::new(); partitions.max(0) as usize]);
        Arc::new(t)
    }

    /// Makes the `n`-th append call from now (1 = the next one) fail without writing anything.
    pub fn fail_nth_append(&self, n: u64) {
        let mut inner = self.inner.lock();
        let target = inner.append_calls + n.max(1);
        inner.failing_appends.insert(target);
    }

    /// Number of append calls so far (failed ones included).
    pub fn append_calls(&self) -> u64 {
        self.inner.lock().append_calls
    }

    /// Number of records returned by `read` so far.
    pub fn records_read(&self) -> u64 {
        self.inner.lock().records_read
    }

    /// The partition count, if the topic exists.
    pub fn partition_count(&self) -> Option<i32> {
        self.inner
            .lock()
            .partitions
            .as_ref()
            .map(|p| p.len() as i32)
    }

    /// All record values of one partition.
    pub fn records(&self, partition: i32) -> Vec<Bytes> {
        let inner = self.inner.lock();
        let parts = inner.partitions.as_deref().unwrap_or_default();
        usize::try_from(partition)
            .ok()
            .and_then(|p| parts.get(p))
            .cloned()
            .unwrap_or_default()
    }

    /// Total number of records over all partitions.
    pub fn total_records(&self) -> usize {
        let inner = self.inner.lock();
        inner.partitions.iter().flatten().map(Vec::len).sum()
    }
}

fn partition_mut(parts: &mut Option<Vec<Vec<Bytes>>>, partition: i32) -> Result<&mut Vec<Bytes>> {
    let parts = parts.as_mut().ok_or_else(|| RlmmError::Topic {
        reason: "topic __remote_log_metadata does not exist".to_string(),
    })?;
    usize::try_from(partition)
        .ok()
        .and_then(|p| parts.get_mut(p))
        .ok_or_else(|| RlmmError::Topic {
            reason: format!("no partition __remote_log_metadata-{partition}"),
        })
}

impl MetadataTopic for InMemoryMetadataTopic {
    fn ensure(&self, partitions: i32) -> Result<()> {
        let mut inner = self.inner.lock();
        match &inner.partitions {
            None => {
                inner.partitions = Some(vec![Vec::new(); partitions.max(0) as usize]);
                Ok(())
            }
            Some(p) if p.len() as i32 == partitions => Ok(()),
            Some(p) => Err(RlmmError::PartitionCountMismatch {
                expected: partitions,
                actual: p.len() as i32,
            }),
        }
    }

    fn append(&self, partition: i32, value: Bytes) -> Result<i64> {
        let mut inner = self.inner.lock();
        inner.append_calls += 1;
        let call = inner.append_calls;
        if inner.failing_appends.remove(&call) {
            return Err(RlmmError::Topic {
                reason: format!("injected failure of append #{call} to partition {partition}"),
            });
        }
        let log = partition_mut(&mut inner.partitions, partition)?;
        log.push(value);
        Ok(log.len() as i64 - 1)
    }

    fn read(
        &self,
        partition: i32,
        from_offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<(i64, Bytes)>> {
        let mut inner = self.inner.lock();
        let log = partition_mut(&mut inner.partitions, partition)?;
        let start = usize::try_from(from_offset.max(0)).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for (i, value) in log.iter().enumerate().skip(start) {
            if !out.is_empty() && bytes + value.len() > max_bytes {
                break;
            }
            bytes += value.len();
            out.push((i as i64, value.clone()));
        }
        inner.records_read += out.len() as u64;
        Ok(out)
    }

    fn end_offset(&self, partition: i32) -> Result<i64> {
        let mut inner = self.inner.lock();
        Ok(partition_mut(&mut inner.partitions, partition)?.len() as i64)
    }
}
