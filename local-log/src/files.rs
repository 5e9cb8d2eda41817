//! The open-files budget of the local log (`shale.log.open.files.max`): every descriptor the
//! crate keeps for a segment is counted here, and the count stays within the budget instead of
//! growing with the number of segments.
//!
//! - Each segment has a [`FileSlot`] for its `.log` file. The active segment of every log (and a
//!   segment the cleaner is writing) is *pinned*: its file stays open. Every other slot is in an
//!   LRU: its file is opened on the first read and closed again when the budget needs room,
//!   least recently used first; the next read reopens it.
//! - Index files are never held open (see `index_file.rs`): they are read into memory and written
//!   back with a short-lived descriptor that is counted here too.
//! - Hits cost a read lock on the slot and, for unpinned slots, one stamp from a shared counter;
//!   only opens look at the LRU list. Eviction scans the list and closes the oldest 1/32nd (at
//!   least one) at once, so the scan is paid once per many opens.
//! - Pinned files are what a new partition costs for good: [`OpenFiles::reserve`] refuses
//!   partitions whose active segments would not fit in the budget minus a headroom kept for
//!   reads of old segments and index write-backs.
//! - A file still in use by a reader when it is evicted closes when that read ends, so the count
//!   can pass the budget by the reads in flight (and the one file the background flusher of
//!   rolled segments, `flusher.rs`, may have open). An `EMFILE`/`ENFILE` from the OS (sockets took
//!   the rest) evicts and retries once before it is reported.
//!
//! The default budget is [`DEFAULT_BUDGET_PERCENT`] of the soft `RLIMIT_NOFILE`, read with
//! `rustix` (a safe wrapper: `unsafe` is forbidden here), leaving the rest for sockets,
//! checkpoints, snapshots and the metadata log.

use std::collections::HashSet;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};

use crate::error::{LogError, Result};

/// Share (percent) of the soft `RLIMIT_NOFILE` the default budget takes.
pub const DEFAULT_BUDGET_PERCENT: u64 = 75;
/// Budget of a log opened on its own with `Log::open` (not through a `LogManager`).
pub const STANDALONE_BUDGET: usize = 64;
/// What an unlimited `RLIMIT_NOFILE` counts as.
const UNLIMITED: u64 = 1 << 20;

/// The soft `RLIMIT_NOFILE` of this process (`None` = unlimited).
pub fn process_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The default budget: [`DEFAULT_BUDGET_PERCENT`] of the soft `RLIMIT_NOFILE` (at least 16).
pub fn default_budget() -> usize {
    let limit = process_file_limit().unwrap_or(UNLIMITED).min(UNLIMITED);
    (limit * DEFAULT_BUDGET_PERCENT / 100).max(16) as usize
}

/// Whether `e` is the process (`EMFILE`) or system (`ENFILE`) running out of descriptors.
pub fn is_out_of_files(e: &io::Error) -> bool {
    use rustix::io::Errno;
    let raw = e.raw_os_error();
    raw == Some(Errno::MFILE.raw_os_error()) || raw == Some(Errno::NFILE.raw_os_error())
}

/// Descriptors kept free of pinned files: reads of old segments and index write-backs.
fn headroom(budget: usize) -> usize {
    if budget <= 1 {
        0
    } else {
        (budget / 16).clamp(1, 1024)
    }
}

/// A slot the LRU can close.
trait Evict: Send + Sync {
    fn last_used(&self) -> u64;
    fn try_evict(&self) -> Outcome;
}

enum Outcome {
    /// The file was dropped (closed once no reader holds it).
    Evicted,
    /// Pinned, or nothing open: the slot leaves the list.
    Unlisted,
    /// Someone holds the slot's lock: try again later.
    Busy,
}

struct Shared {
    budget: usize,
    open: AtomicUsize,
    peak: AtomicUsize,
    pinned: AtomicUsize,
    reserved: Mutex<usize>,
    tick: AtomicU64,
    lru: Mutex<Vec<Weak<dyn Evict>>>,
    opened: AtomicU64,
    evicted: AtomicU64,
}

/// The shared budget of open files (cheap to clone; all clones count together).
#[derive(Clone)]
pub struct OpenFiles {
    shared: Arc<Shared>,
}

impl fmt::Debug for OpenFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenFiles")
            .field("budget", &self.budget())
            .field("open", &self.open())
            .field("pinned", &self.pinned())
            .finish()
    }
}

impl OpenFiles {
    /// A budget of `budget` descriptors (at least 1).
    pub fn new(budget: usize) -> OpenFiles {
        OpenFiles {
            shared: Arc::new(Shared {
                budget: budget.max(1),
                open: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                pinned: AtomicUsize::new(0),
                reserved: Mutex::new(0),
                tick: AtomicU64::new(0),
                lru: Mutex::new(Vec::new()),
                opened: AtomicU64::new(0),
                evicted: AtomicU64::new(0),
            }),
        }
    }

    /// The budget.
    pub fn budget(&self) -> usize {
        self.shared.budget
    }

    /// Descriptors open right now.
    pub fn open(&self) -> usize {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Most descriptors open at once so far.
    pub fn peak(&self) -> usize {
        self.shared.peak.load(Ordering::Acquire)
    }

    /// Pinned files (active segments, segments being written by the cleaner).
    pub fn pinned(&self) -> usize {
        self.shared.pinned.load(Ordering::Acquire)
    }

    /// How many pinned files the budget allows: the budget minus the headroom.
    pub fn capacity(&self) -> usize {
        self.shared.budget - headroom(self.shared.budget)
    }

    /// Files opened since start (first opens and reopens after eviction).
    pub fn opened_total(&self) -> u64 {
        self.shared.opened.load(Ordering::Relaxed)
    }

    /// Files closed by the LRU since start.
    pub fn evicted_total(&self) -> u64 {
        self.shared.evicted.load(Ordering::Relaxed)
    }

    /// Holds room for `n` more pinned files (the active segments of `n` new partitions) until
    /// the returned guard is dropped; refused when they would not fit in [`Self::capacity`].
    pub fn reserve(&self, n: usize) -> Result<FileReservation> {
        let mut reserved = self.shared.reserved.lock();
        let used = self.pinned() + *reserved;
        if used + n > self.capacity() {
            return Err(LogError::FileBudget {
                requested: n,
                in_use: used,
                capacity: self.capacity(),
                budget: self.budget(),
            });
        }
        *reserved += n;
        Ok(FileReservation {
            shared: self.shared.clone(),
            n,
        })
    }

    /// Fails unless `n` pinned files fit in the budget now (start-up check).
    pub(crate) fn check_room(&self, n: usize) -> Result<()> {
        self.reserve(n).map(drop)
    }

    /// Opens `path` as a counted descriptor, closing least recently used files first when the
    /// budget is reached (and once more on `EMFILE`/`ENFILE`).
    pub(crate) fn open_file(&self, path: &Path, opts: &OpenOptions) -> io::Result<PooledFile> {
        if self.open() >= self.shared.budget {
            self.evict_lru();
        }
        let file = match opts.open(path) {
            Ok(f) => f,
            Err(e) if is_out_of_files(&e) => {
                tracing::warn!(path = %path.display(), open = self.open(), budget = self.budget(),
                    "out of file descriptors; closing least recently used segment files");
                if self.evict_lru() == 0 {
                    return Err(e);
                }
                opts.open(path)?
            }
            Err(e) => return Err(e),
        };
        let now = self.shared.open.fetch_add(1, Ordering::AcqRel) + 1;
        self.shared.peak.fetch_max(now, Ordering::AcqRel);
        self.shared.opened.fetch_add(1, Ordering::Relaxed);
        Ok(PooledFile {
            file,
            shared: self.shared.clone(),
        })
    }

    /// Closes the least recently used 1/32nd (at least one) of the listed files; returns how
    /// many were closed.
    fn evict_lru(&self) -> usize {
        let mut lru = self.shared.lru.lock();
        let mut live: Vec<(u64, Arc<dyn Evict>)> = Vec::with_capacity(lru.len());
        lru.retain(|w| match w.upgrade() {
            Some(s) => {
                live.push((s.last_used(), s));
                true
            }
            None => false,
        });
        if live.is_empty() {
            return 0;
        }
        let k = (live.len() / 32).max(1);
        if k < live.len() {
            live.select_nth_unstable_by_key(k - 1, |e| e.0);
        }
        let addr = |p: *const dyn Evict| p.cast::<()>() as usize;
        let mut gone: HashSet<usize> = HashSet::new();
        let mut evicted = 0;
        for (_, slot) in &live[..k] {
            match slot.try_evict() {
                Outcome::Evicted => {
                    evicted += 1;
                    gone.insert(addr(Arc::as_ptr(slot)));
                }
                Outcome::Unlisted => {
                    gone.insert(addr(Arc::as_ptr(slot)));
                }
                Outcome::Busy => {}
            }
        }
        lru.retain(|w| !gone.contains(&addr(w.as_ptr())));
        self.shared
            .evicted
            .fetch_add(evicted as u64, Ordering::Relaxed);
        evicted
    }
}

/// Room held for pinned files by [`OpenFiles::reserve`]; released on drop.
#[derive(Debug)]
pub struct FileReservation {
    shared: Arc<Shared>,
    n: usize,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("budget", &self.budget)
            .finish()
    }
}

impl Drop for FileReservation {
    fn drop(&mut self) {
        *self.shared.reserved.lock() -= self.n;
    }
}

/// An open file counted against the budget until it is dropped.
pub(crate) struct PooledFile {
    file: File,
    shared: Arc<Shared>,
}

impl fmt::Debug for PooledFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.file.fmt(f)
    }
}

impl Deref for PooledFile {
    type Target = File;
    fn deref(&self) -> &File {
        &self.file
    }
}

impl Drop for PooledFile {
    fn drop(&mut self) {
        self.shared.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Something holding one open file (`T`), opened on demand and closed by the LRU unless pinned.
pub(crate) struct FileSlot<T> {
    files: OpenFiles,
    value: RwLock<Option<Arc<T>>>,
    last_used: AtomicU64,
    pinned: AtomicBool,
    listed: AtomicBool,
}

impl<T> fmt::Debug for FileSlot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSlot")
            .field("open", &self.value.read().is_some())
            .field("pinned", &self.pinned.load(Ordering::Relaxed))
            .finish()
    }
}

impl<T: Send + Sync + 'static> FileSlot<T> {
    /// An empty, unpinned slot.
    pub(crate) fn new(files: &OpenFiles) -> Arc<FileSlot<T>> {
        Arc::new(FileSlot {
            files: files.clone(),
            value: RwLock::new(None),
            last_used: AtomicU64::new(0),
            pinned: AtomicBool::new(false),
            listed: AtomicBool::new(false),
        })
    }

    /// The budget this slot counts against.
    pub(crate) fn files(&self) -> &OpenFiles {
        &self.files
    }

    fn touch(&self) {
        if !self.pinned.load(Ordering::Relaxed) {
            let t = self.files.shared.tick.fetch_add(1, Ordering::Relaxed);
            self.last_used.store(t, Ordering::Relaxed);
        }
    }

    /// Puts the slot on the LRU list (called with its write lock held, file open, unpinned).
    fn list(self: &Arc<Self>) {
        if !self.listed.swap(true, Ordering::AcqRel) {
            let weak: Weak<dyn Evict> = Arc::downgrade(self) as Weak<dyn Evict>;
            self.files.shared.lru.lock().push(weak);
        }
    }

    /// The open value, opening it with `open` if it is closed.
    pub(crate) fn get<E>(
        self: &Arc<Self>,
        open: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<Arc<T>, E> {
        if let Some(v) = self.value.read().as_ref() {
            self.touch();
            return Ok(v.clone());
        }
        let mut g = self.value.write();
        if let Some(v) = g.as_ref() {
            self.touch();
            return Ok(v.clone());
        }
        let v = Arc::new(open()?);
        *g = Some(v.clone());
        self.touch();
        if !self.pinned.load(Ordering::Acquire) {
            self.list();
        }
        Ok(v)
    }

    /// The value if it is open (no reopen, no LRU stamp).
    pub(crate) fn peek(&self) -> Option<Arc<T>> {
        self.value.read().clone()
    }

    /// Opens the value if needed and keeps it open until [`Self::unpin`].
    pub(crate) fn pin<E>(
        self: &Arc<Self>,
        open: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<Arc<T>, E> {
        let mut g = self.value.write();
        let v = match g.as_ref() {
            Some(v) => v.clone(),
            None => {
                let v = Arc::new(open()?);
                *g = Some(v.clone());
                v
            }
        };
        if !self.pinned.swap(true, Ordering::AcqRel) {
            self.files.shared.pinned.fetch_add(1, Ordering::AcqRel);
        }
        Ok(v)
    }

    /// Lets the LRU close the value again.
    pub(crate) fn unpin(self: &Arc<Self>) {
        let g = self.value.write();
        if self.pinned.swap(false, Ordering::AcqRel) {
            self.files.shared.pinned.fetch_sub(1, Ordering::AcqRel);
        }
        if g.is_some() {
            self.touch();
            self.list();
        }
    }

    /// Drops the value and any pin (the segment left its log).
    pub(crate) fn release(&self) {
        let mut g = self.value.write();
        if self.pinned.swap(false, Ordering::AcqRel) {
            self.files.shared.pinned.fetch_sub(1, Ordering::AcqRel);
        }
        *g = None;
    }

    /// Whether the value is pinned.
    #[cfg(test)]
    pub(crate) fn is_pinned(&self) -> bool {
        self.pinned.load(Ordering::Acquire)
    }
}

impl<T: Send + Sync + 'static> Evict for FileSlot<T> {
    fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    fn try_evict(&self) -> Outcome {
        let Some(mut g) = self.value.try_write() else {
            return Outcome::Busy;
        };
        self.listed.store(false, Ordering::Release);
        if self.pinned.load(Ordering::Acquire) || g.is_none() {
            return Outcome::Unlisted;
        }
        *g = None;
        Outcome::Evicted
    }
}

impl<T> Drop for FileSlot<T> {
    fn drop(&mut self) {
        if *self.pinned.get_mut() {
            self.files.shared.pinned.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_in(files: &OpenFiles, dir: &Path, name: &str) -> io::Result<PooledFile> {
        let mut o = OpenOptions::new();
        o.read(true).write(true).create(true).truncate(false);
        files.open_file(&dir.join(name), &o)
    }

    #[test]
    fn lru_closes_the_least_recently_used_and_keeps_pinned() {
        let d = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(3);
        let slots: Vec<Arc<FileSlot<PooledFile>>> = (0..4).map(|_| FileSlot::new(&files)).collect();
        let open = |i: usize| {
            let p = d.path().to_path_buf();
            let f = files.clone();
            move || open_in(&f, &p, &format!("{i}"))
        };
        slots[0].pin(open(0)).unwrap();
        slots[1].get(open(1)).unwrap();
        slots[2].get(open(2)).unwrap();
        assert_eq!(files.open(), 3);
        assert_eq!(files.pinned(), 1);
        // Slot 1 is the least recently used unpinned file: opening slot 3 closes it.
        slots[3].get(open(3)).unwrap();
        assert_eq!(files.open(), 3);
        assert!(slots[1].peek().is_none());
        assert!(slots[0].peek().is_some() && slots[0].is_pinned());
        // Touching 2 makes 3 the oldest; reopening 1 closes 3.
        slots[2].get(open(2)).unwrap();
        slots[1].get(open(1)).unwrap();
        assert!(slots[3].peek().is_none());
        assert!(slots[2].peek().is_some());
        assert_eq!(files.evicted_total(), 2);
        // Unpinned, 0 becomes evictable; released slots give their files back at once.
        slots[0].unpin();
        assert_eq!(files.pinned(), 0);
        slots[1].release();
        assert_eq!(files.open(), 2);
        drop(slots);
        assert_eq!(files.open(), 0);
    }

    #[test]
    fn a_file_in_use_closes_when_its_reader_is_done() {
        let d = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(1);
        let a: Arc<FileSlot<PooledFile>> = FileSlot::new(&files);
        let b: Arc<FileSlot<PooledFile>> = FileSlot::new(&files);
        let held = a.get(|| open_in(&files, d.path(), "a")).unwrap();
        b.get(|| open_in(&files, d.path(), "b")).unwrap();
        assert!(a.peek().is_none());
        assert_eq!(files.open(), 2, "the reader still holds a's file");
        drop(held);
        assert_eq!(files.open(), 1);
    }

    #[test]
    fn reservations_respect_capacity_and_pins() {
        let files = OpenFiles::new(32);
        assert_eq!(files.capacity(), 30);
        let r = files.reserve(20).unwrap();
        let e = files.reserve(11).unwrap_err();
        assert!(matches!(
            e,
            LogError::FileBudget {
                requested: 11,
                in_use: 20,
                capacity: 30,
                ..
            }
        ));
        drop(r);
        let d = tempfile::tempdir().unwrap();
        let s: Arc<FileSlot<PooledFile>> = FileSlot::new(&files);
        s.pin(|| open_in(&files, d.path(), "x")).unwrap();
        assert!(files.reserve(30).is_err());
        assert!(files.reserve(29).is_ok());
        drop(s);
        assert_eq!(files.pinned(), 0);
    }

    #[test]
    fn default_budget_follows_the_process_limit() {
        let limit = process_file_limit().unwrap_or(UNLIMITED).min(UNLIMITED);
        assert_eq!(
            default_budget() as u64,
            (limit * DEFAULT_BUDGET_PERCENT / 100).max(16)
        );
        assert!(is_out_of_files(&io::Error::from_raw_os_error(
            rustix::io::Errno::MFILE.raw_os_error()
        )));
        assert!(!is_out_of_files(&io::Error::from(io::ErrorKind::NotFound)));
    }
}
