//! One background thread, shared by every log of the process, that unlinks files nothing reads
//! again (`.deleted` leftovers found while loading). Unlinking a large file drops its cached
//! pages, which takes tens of milliseconds; doing it here keeps that off the start-up path
//! without a thread per partition. The thread starts on first use and then waits for work; if
//! it cannot be started the files are unlinked by the caller. A crash first just leaves the
//! files for the next start.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};
use std::sync::OnceLock;

use parking_lot::Mutex;

static QUEUE: OnceLock<Option<Mutex<Sender<Vec<PathBuf>>>>> = OnceLock::new();

fn delete_all(paths: &[PathBuf]) {
    for p in paths {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "could not delete a leftover file");
            }
        }
    }
}

fn start() -> Option<Mutex<Sender<Vec<PathBuf>>>> {
    let (tx, rx) = channel::<Vec<PathBuf>>();
    let spawned = std::thread::Builder::new()
        .name("shale-deleter".into())
        .spawn(move || {
            while let Ok(paths) = rx.recv() {
                delete_all(&paths);
            }
        });
    match spawned {
        Ok(_) => Some(Mutex::new(tx)),
        Err(e) => {
            tracing::warn!(error = %e, "no background deleter; leftovers are deleted inline");
            None
        }
    }
}

/// Queues `paths` for unlinking in the background (inline if the thread could not start).
pub(crate) fn delete_later(paths: Vec<PathBuf>) {
    if paths.is_empty() {
        return;
    }
    let sent = match QUEUE.get_or_init(start) {
        Some(tx) => tx.lock().send(paths).map_err(|e| e.0),
        None => Err(paths),
    };
    if let Err(paths) = sent {
        delete_all(&paths);
    }
}
