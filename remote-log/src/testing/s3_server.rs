//! [`S3TestServer`]: spawns the `s3s-fs` binary (env `S3S_FS_BIN`, else `s3s-fs` on PATH, else the
//! workspace's `.tools/bin/s3s-fs`) on 127.0.0.1 with a free port and a fresh directory; the bucket
//! is a sub-directory. Panics (never skips) when the binary is missing.

use std::net::{TcpListener, TcpStream};
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, RetryConfig};

/// Access key the server accepts.
pub const ACCESS_KEY: &str = "AKIDEXAMPLE";
/// Secret key the server accepts.
pub const SECRET_KEY: &str = "SECRETEXAMPLE";
const BUCKET: &str = "shale-test";
const READY_DEADLINE: Duration = Duration::from_secs(15);

/// A running `s3s-fs` server (killed and its directory removed on drop).
#[derive(Debug)]
pub struct S3TestServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn find_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("S3S_FS_BIN") {
        return PathBuf::from(p);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let cand = dir.join("s3s-fs");
            if cand.is_file() {
                return cand;
            }
        }
    }
    let tools = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/s3s-fs");
    if tools.is_file() {
        return tools;
    }
    panic!(
        "s3s-fs not found (set S3S_FS_BIN or put s3s-fs on PATH): run ./scripts/test.sh, which \
         installs it (cargo install s3s-fs@0.14.1 --features binary --locked --root .tools)"
    );
}

fn unique_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "shale-s3s-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}

impl S3TestServer {
    /// Starts a server with an empty bucket and waits until it accepts connections.
    pub fn start() -> Self {
        let bin = find_binary();
        let dir = unique_dir();
        std::fs::create_dir_all(dir.join(BUCKET)).expect("create s3s-fs root and bucket dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("pick a free port")
            .port();
        let mut s = S3TestServer {
            bin,
            dir,
            port,
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + READY_DEADLINE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("s3s-fs exited early with {status} (port {})", self.port);
            }
            assert!(
                Instant::now() < deadline,
                "s3s-fs not ready on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server (objects stay on disk).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same directory and port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        BUCKET
    }

    /// The server's root directory (bucket = sub-directory).
    pub fn dir(&self) -> &FsPath {
        &self.dir
    }

    /// `rsm.config.*` properties (prefix stripped) pointing at this server.
    pub fn config_props(&self) -> Vec<(String, String)> {
        [
            ("storage.backend", "s3".to_string()),
            ("s3.bucket", BUCKET.to_string()),
            ("s3.endpoint", self.endpoint()),
            ("s3.access.key.id", ACCESS_KEY.to_string()),
            ("s3.secret.access.key", SECRET_KEY.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// An S3 client for the bucket, with few, quick retries (outage tests fail fast).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        let retry = RetryConfig {
            max_retries: 1,
            retry_timeout: Duration::from_secs(2),
            ..RetryConfig::default()
        };
        let s3 = AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(true)
            .with_retry(retry)
            .build()
            .expect("build S3 client for s3s-fs");
        Arc::new(s3)
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
