//! [`ObjectRsm`]: the RemoteStorageManager on any `object_store::ObjectStore` (S3, local files,
//! memory). Two objects per segment (layout.rs): the `.log` (multipart above a threshold, size
//! verified by HEAD after upload, CRC-32C computed while streaming) and one `.indexes` object
//! whose section lengths travel in the custom metadata ([`SegmentManifest`]), so reads need no
//! metadata GET.

use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::cache::ObjectRef;
use crate::error::{RemoteLogError, Result};
use crate::layout::Layout;
use crate::manifest::SegmentManifest;
use crate::meta::{RemoteLogSegmentMetadata, TopicIdPartition};
use crate::rsm::{IndexType, LogSegmentData, RemoteStorageManager};

/// Default size above which the `.log` is uploaded with multipart.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 8 << 20;
/// Default multipart part size.
pub const DEFAULT_PART_SIZE: usize = 8 << 20;
const READ_BUF: usize = 1 << 20;
const MULTIPART_CONCURRENCY: usize = 4;

/// RemoteStorageManager over an object store.
#[derive(Debug, Clone)]
pub struct ObjectRsm {
    store: Arc<dyn ObjectStore>,
    layout: Layout,
    multipart_threshold: u64,
    part_size: usize,
}

fn segment_name(meta: &RemoteLogSegmentMetadata) -> String {
    format!(
        "segment {} of {}-{} at offset {}",
        meta.id.id, meta.id.tp.topic, meta.id.tp.partition, meta.start_offset
    )
}

fn io_err(path: &FsPath) -> impl FnOnce(std::io::Error) -> RemoteLogError + '_ {
    move |source| RemoteLogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

async fn read_file(path: &FsPath) -> Result<Bytes> {
    tokio::fs::read(path)
        .await
        .map(Bytes::from)
        .map_err(io_err(path))
}

impl ObjectRsm {
    /// An RSM writing under `prefix` with default multipart settings.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        ObjectRsm {
            store,
            layout: Layout::new(prefix),
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// Overrides the multipart threshold and part size (part size ≥ 5 MiB on S3).
    pub fn with_multipart(mut self, threshold: u64, part_size: usize) -> Self {
        self.multipart_threshold = threshold;
        self.part_size = part_size.max(1);
        self
    }

    /// The key layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The segment's manifest: decoded from custom metadata, else read from the `.indexes` footer.
    pub async fn manifest(&self, meta: &RemoteLogSegmentMetadata) -> Result<SegmentManifest> {
        match &meta.custom_metadata {
            Some(cm) => SegmentManifest::decode(cm, &segment_name(meta)),
            None => self.manifest_from_footer(meta).await,
        }
    }

    async fn manifest_from_footer(
        &self,
        meta: &RemoteLogSegmentMetadata,
    ) -> Result<SegmentManifest> {
        let key = self.layout.indexes_key(&meta.id, meta.start_offset);
        let size = self
            .store
            .head(&key)
            .await
            .map_err(|e| RemoteLogError::store("head", &key, e))?
            .size;
        let tail_len = size.min(129);
        let tail = self.get_range(&key, size - tail_len..size).await?;
        let bad = || RemoteLogError::corrupt(format!("footer of {key}"), "truncated");
        let n = usize::from(*tail.last().ok_or_else(bad)?);
        let start = tail.len().checked_sub(n + 1).ok_or_else(bad)?;
        SegmentManifest::decode(&tail[start..tail.len() - 1], &segment_name(meta))
    }

    /// The `.log` object and its size (from custom metadata, else the metadata's segment size).
    pub fn log_object(&self, meta: &RemoteLogSegmentMetadata) -> Result<ObjectRef> {
        let key = self.layout.log_key(&meta.id, meta.start_offset);
        let size = match &meta.custom_metadata {
            Some(cm) => SegmentManifest::decode(cm, &segment_name(meta))?.log_size,
            None => u64::try_from(meta.segment_size_in_bytes).map_err(|_| {
                RemoteLogError::corrupt(segment_name(meta), "negative segment size")
            })?,
        };
        Ok(ObjectRef { key, size })
    }

    async fn get_range(&self, key: &Path, range: Range<u64>) -> Result<Bytes> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        self.store
            .get_range(key, range)
            .await
            .map_err(|e| RemoteLogError::store("get", key, e))
    }

    async fn upload_log(&self, key: &Path, path: &FsPath) -> Result<(u64, u32)> {
        let mut file = tokio::fs::File::open(path).await.map_err(io_err(path))?;
        let len = file.metadata().await.map_err(io_err(path))?.len();
        let (size, crc) = if len <= self.multipart_threshold {
            let data = read_file(path).await?;
            let crc = crc32c::crc32c(&data);
            let size = data.len() as u64;
            self.store
                .put(key, data.into())
                .await
                .map_err(|e| RemoteLogError::store("put", key, e))?;
            (size, crc)
        } else {
            self.upload_multipart(key, &mut file, path).await?
        };
        let stored = self
            .store
            .head(key)
            .await
            .map_err(|e| RemoteLogError::store("head", key, e))?
            .size;
        if stored != size {
            return Err(RemoteLogError::Integrity {
                key: key.to_string(),
                detail: format!("uploaded {size} bytes but the store holds {stored}"),
            });
        }
        Ok((size, crc))
    }

    async fn upload_multipart(
        &self,
        key: &Path,
        file: &mut tokio::fs::File,
        path: &FsPath,
    ) -> Result<(u64, u32)> {
        let upload = self
            .store
            .put_multipart(key)
            .await
            .map_err(|e| RemoteLogError::store("put", key, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let mut buf = vec![0u8; READ_BUF];
        let (mut size, mut crc) = (0u64, 0u32);
        let res: Result<()> = async {
            loop {
                let n = file.read(&mut buf).await.map_err(io_err(path))?;
                if n == 0 {
                    return Ok(());
                }
                writer
                    .wait_for_capacity(MULTIPART_CONCURRENCY)
                    .await
                    .map_err(|e| RemoteLogError::store("put", key, e))?;
                crc = crc32c::crc32c_append(crc, &buf[..n]);
                size += n as u64;
                writer.write(&buf[..n]);
            }
        }
        .await;
        if let Err(e) = res {
            let _ = writer.abort().await;
            return Err(e);
        }
        writer
            .finish()
            .await
            .map_err(|e| RemoteLogError::store("put", key, e))?;
        Ok((size, crc))
    }

    async fn build_indexes(&self, data: &LogSegmentData) -> Result<(BytesMut, [Option<u64>; 5])> {
        async fn opt(p: &Option<PathBuf>) -> Result<Option<Bytes>> {
            match p {
                Some(p) => read_file(p).await.map(Some),
                None => Ok(None),
            }
        }
        // Object order: offset, timestamp, producer snapshot, leader epoch, transaction.
        let parts = [
            Some(read_file(&data.offset_index).await?),
            Some(read_file(&data.time_index).await?),
            opt(&data.producer_snapshot).await?,
            Some(data.leader_epochs.clone()),
            opt(&data.txn_index).await?,
        ];
        let total: usize = parts.iter().flatten().map(Bytes::len).sum();
        let mut out = BytesMut::with_capacity(total + 80);
        let mut sections = [None; 5];
        for (slot, part) in parts.iter().enumerate() {
            if let Some(b) = part {
                out.put_slice(b);
                sections[slot] = Some(b.len() as u64);
            }
        }
        Ok((out, sections))
    }

    async fn copy_inner(
        &self,
        meta: &RemoteLogSegmentMetadata,
        data: &LogSegmentData,
    ) -> Result<Bytes> {
        let log_key = self.layout.log_key(&meta.id, meta.start_offset);
        let idx_key = self.layout.indexes_key(&meta.id, meta.start_offset);
        let (mut indexes, sections) = self.build_indexes(data).await?;
        let (log_size, log_crc) = self.upload_log(&log_key, &data.log).await?;
        let manifest = SegmentManifest {
            log_size,
            log_crc,
            sections,
        };
        let encoded = manifest.encode();
        indexes.put_slice(&encoded);
        indexes.put_u8(encoded.len() as u8);
        self.store
            .put(&idx_key, indexes.freeze().into())
            .await
            .map_err(|e| RemoteLogError::store("put", &idx_key, e))?;
        Ok(encoded)
    }

    async fn delete_tolerant(&self, key: &Path) -> Result<bool> {
        match self.store.delete(key).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(RemoteLogError::store("delete", key, e)),
        }
    }

    async fn list_dirs(&self, prefix: Option<&Path>) -> Result<Vec<Path>> {
        match self.store.list_with_delimiter(prefix).await {
            Ok(r) => Ok(r.common_prefixes),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(RemoteLogError::store(
                "list",
                prefix.map(Path::to_string).unwrap_or_default(),
                e,
            )),
        }
    }
}

#[async_trait]
impl RemoteStorageManager for ObjectRsm {
    async fn copy_log_segment(
        &self,
        meta: &RemoteLogSegmentMetadata,
        data: &LogSegmentData,
    ) -> Result<Option<Bytes>> {
        match self.copy_inner(meta, data).await {
            Ok(cm) => Ok(Some(cm)),
            Err(e) => {
                // Best effort: do not leave a half-copied segment behind.
                let _ = self.delete_log_segment(meta).await;
                Err(e)
            }
        }
    }

    async fn fetch_log_segment(
        &self,
        meta: &RemoteLogSegmentMetadata,
        start: u64,
        end_exclusive: Option<u64>,
    ) -> Result<Bytes> {
        let obj = self.log_object(meta)?;
        if start > obj.size {
            return Err(RemoteLogError::OutOfRange {
                what: segment_name(meta),
                detail: format!("start position {start} beyond segment size {}", obj.size),
            });
        }
        let end = end_exclusive.unwrap_or(obj.size).min(obj.size);
        self.get_range(&obj.key, start..end.max(start)).await
    }

    async fn fetch_index(
        &self,
        meta: &RemoteLogSegmentMetadata,
        index: IndexType,
    ) -> Result<Bytes> {
        let manifest = self.manifest(meta).await?;
        let range = manifest
            .section(index)
            .ok_or_else(|| RemoteLogError::NotFound {
                what: format!("{} index of {}", index.name(), segment_name(meta)),
            })?;
        let key = self.layout.indexes_key(&meta.id, meta.start_offset);
        self.get_range(&key, range).await
    }

    async fn delete_log_segment(&self, meta: &RemoteLogSegmentMetadata) -> Result<()> {
        self.delete_tolerant(&self.layout.log_key(&meta.id, meta.start_offset))
            .await?;
        self.delete_tolerant(&self.layout.indexes_key(&meta.id, meta.start_offset))
            .await?;
        Ok(())
    }

    async fn delete_partition(&self, tp: &TopicIdPartition) -> Result<usize> {
        let dir = self.layout.partition_dir(tp);
        let keys: Vec<Path> = match self.store.list(Some(&dir)).try_collect::<Vec<_>>().await {
            Ok(metas) => metas.into_iter().map(|m| m.location).collect(),
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(RemoteLogError::store("list", &dir, e)),
        };
        let keys: Vec<Path> = keys
            .into_iter()
            .filter(|k| !Layout::is_delete_marker(k))
            .collect();
        let mut deleted = 0;
        let stream = futures::stream::iter(keys.into_iter().map(Ok)).boxed();
        let mut results = self.store.delete_stream(stream);
        while let Some(r) = results.next().await {
            match r {
                Ok(_) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(RemoteLogError::store("delete", &dir, e)),
            }
        }
        Ok(deleted)
    }

    async fn list_partitions(&self) -> Result<Vec<TopicIdPartition>> {
        let root = self.layout.root();
        let mut out = Vec::new();
        for topic_dir in self.list_dirs(root.as_ref()).await? {
            for dir in self.list_dirs(Some(&topic_dir)).await? {
                if let Some(tp) = self.layout.parse_partition_dir(&dir) {
                    out.push(tp);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn put_delete_marker(&self, tp: &TopicIdPartition) -> Result<()> {
        let key = self.layout.delete_marker_key(tp);
        let body = Bytes::from(format!("{} {} {}\n", tp.topic, tp.topic_id, tp.partition));
        self.store
            .put(&key, body.into())
            .await
            .map_err(|e| RemoteLogError::store("put", &key, e))?;
        Ok(())
    }

    async fn list_delete_markers(&self) -> Result<Vec<TopicIdPartition>> {
        let mut out = Vec::new();
        for tp in self.list_partitions().await? {
            let key = self.layout.delete_marker_key(&tp);
            match self.store.head(&key).await {
                Ok(_) => out.push(tp),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(RemoteLogError::store("head", &key, e)),
            }
        }
        Ok(out)
    }

    async fn remove_delete_marker(&self, tp: &TopicIdPartition) -> Result<()> {
        self.delete_tolerant(&self.layout.delete_marker_key(tp))
            .await
            .map(|_| ())
    }
}
