//! Tests of rsm.config.* parsing, validation and store building.

use super::*;

fn parse(kv: &[(&str, &str)]) -> Result<RemoteStorageConfig> {
    RemoteStorageConfig::from_props(kv.iter().copied(), Some(std::path::Path::new("/tmp/r")))
}

fn err_key(kv: &[(&str, &str)]) -> String {
    match parse(kv).unwrap_err() {
        RemoteLogError::Config { key, .. } => key,
        e => panic!("not a config error: {e}"),
    }
}

#[test]
fn defaults() {
    let c = parse(&[]).unwrap();
    assert_eq!(c.backend, Backend::File);
    assert_eq!(c.file_root.as_deref(), Some(std::path::Path::new("/tmp/r")));
    assert_eq!(c.block_size, 1 << 20);
    assert_eq!(c.cache_size, 256 << 20);
    assert_eq!(c.readahead_blocks, 32);
    assert_eq!(c.multipart_threshold, 8 << 20);
    assert_eq!(c.s3.region, "us-east-1");
    assert!(c.s3.path_style);
    assert!(!c.s3.allow_http);
}

#[test]
fn s3_keys() {
    let c = parse(&[
        ("storage.backend", "s3"),
        ("s3.bucket", "b"),
        ("s3.endpoint", "http://127.0.0.1:9000"),
        ("s3.access.key.id", "id"),
        ("s3.secret.access.key", "secret"),
        ("s3.path.style", "false"),
        ("prefix", "/a/b/"),
        ("block.size.bytes", "262144"),
    ])
    .unwrap();
    assert_eq!(c.backend, Backend::S3);
    assert!(c.s3.allow_http, "http endpoint implies allow_http");
    assert!(!c.s3.path_style);
    assert_eq!(c.prefix, "a/b");
    assert_eq!(c.block_size, 262_144);
    build_object_store(&c, shale_common::SystemClock::new()).unwrap();
}

#[test]
fn errors_name_the_key() {
    assert_eq!(err_key(&[("storage.backend", "gcs")]), "storage.backend");
    assert_eq!(err_key(&[("storage.backend", "s3")]), "s3.bucket");
    assert_eq!(err_key(&[("block.size.bytes", "12")]), "block.size.bytes");
    assert_eq!(err_key(&[("block.size.bytes", "x")]), "block.size.bytes");
    assert_eq!(err_key(&[("cache.size.bytes", "4096")]), "cache.size.bytes");
    assert_eq!(err_key(&[("s3.path.style", "yes")]), "s3.path.style");
    assert_eq!(
        err_key(&[("multipart.part.size.bytes", "1024")]),
        "multipart.part.size.bytes"
    );
    assert_eq!(err_key(&[("bogus", "1")]), "bogus");
    assert_eq!(
        err_key(&[("s3.access.key.id", "a")]),
        "s3.secret.access.key"
    );
    let no_root = RemoteStorageConfig::from_props([("storage.backend", "file")], None);
    assert!(matches!(no_root, Err(RemoteLogError::Config { key, .. }) if key == "file.root"));
    let https = [
        ("storage.backend", "s3"),
        ("s3.bucket", "b"),
        ("s3.endpoint", "http://x"),
        ("s3.allow.http", "false"),
    ];
    assert_eq!(err_key(&https), "s3.allow.http");
}

#[tokio::test]
async fn builds_file_and_memory_stores() {
    let dir = crate::testing::TempDir::new("cfg");
    let root = dir.path().join("nested/remote");
    let c = RemoteStorageConfig::from_props([("file.root", root.to_str().unwrap())], None).unwrap();
    let store = build_object_store(&c, shale_common::SystemClock::new()).unwrap();
    let p = object_store::path::Path::from("x/y");
    store
        .put(&p, bytes::Bytes::from_static(b"1").into())
        .await
        .unwrap();
    assert!(root.join("x/y").is_file());
    let m = RemoteStorageConfig::from_props([("storage.backend", "memory")], None).unwrap();
    build_object_store(&m, shale_common::SystemClock::new()).unwrap();
}
