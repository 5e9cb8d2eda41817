//! Running out of descriptors, in a process of its own (this file holds one test: it lowers
//! `RLIMIT_NOFILE` for the whole test process). With the budget derived from the limit, new
//! partitions are refused before the process runs out; with a budget set too high, the
//! process does run out, which is reported as such, leaves no half-made partition behind, and
//! every log dir still loads.
mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use shale_common::{ManualClock, TopicPartition};
use shale_local_log::{LogConfig, LogError, LogManager, LogManagerOptions};
use uuid::Uuid;

fn manager(dir: &Path, clock: &Arc<ManualClock>, budget: Option<usize>) -> LogManager {
    let configs = |_: &str| Some((Uuid::from_u128(1), LogConfig::default()));
    LogManager::open(
        LogManagerOptions {
            log_dirs: vec![dir.to_path_buf()],
            default_config: LogConfig::default(),
            open_files_max: budget,
        },
        clock.clone(),
        &configs,
    )
    .unwrap()
}

fn tp_of(p: i32) -> TopicPartition {
    TopicPartition::new("fd", p)
}

fn create(m: &LogManager, p: i32) -> shale_local_log::Result<()> {
    let log = m.get_or_create(&tp_of(p), Uuid::from_u128(1), LogConfig::default())?;
    log.append(batch(1, T0, 10), client())?;
    Ok(())
}

#[test]
fn out_of_descriptors_is_refused_early_or_reported_as_such_and_never_breaks_loading() {
    let d = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let saved = getrlimit(Resource::Nofile);
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let limit = open_now + 64;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(limit),
            maximum: saved.maximum,
        },
    )
    .unwrap();

    // 1. The default budget follows the lowered limit: creation is refused before EMFILE.
    let m = manager(d.path(), &clock, None);
    assert_eq!(m.open_files().budget() as u64, limit * 75 / 100);
    let mut p = 0;
    let refused = loop {
        match m.reserve(1) {
            Ok(_r) => create(&m, p).expect("within the budget creation succeeds"),
            Err(e) => break e,
        }
        p += 1;
    };
    assert!(matches!(refused, LogError::FileBudget { .. }), "{refused}");
    assert_eq!(p as usize, m.open_files().capacity());
    m.shutdown().unwrap();
    drop(m);

    // 2. A budget above the limit: the process runs out, and says so.
    let m = manager(d.path(), &clock, Some(10_000));
    let failed = loop {
        if let Err(e) = create(&m, p) {
            break e;
        }
        p += 1;
        assert!(p < 1000, "never ran out of descriptors");
    };
    assert!(matches!(failed, LogError::OutOfFiles { .. }), "{failed}");
    assert!(
        failed.to_string().contains("out of file descriptors"),
        "{failed}"
    );
    assert!(
        !d.path().join(tp_of(p).to_string()).exists(),
        "the failed creation left a directory"
    );
    let created = p;
    m.shutdown().unwrap();
    drop(m);

    // 3. With the limit back, everything loads (twice: the first load must not damage anything).
    setrlimit(Resource::Nofile, saved).unwrap();
    for _ in 0..2 {
        let m = manager(d.path(), &clock, None);
        assert_eq!(m.all_logs().len(), created as usize);
        for q in 0..created {
            let log = m.get(&tp_of(q)).unwrap();
            assert_eq!(log.log_end_offset(), 1, "partition {q}");
            assert_eq!(all_batches(&log).len(), 1);
        }
        m.shutdown().unwrap();
    }
}
