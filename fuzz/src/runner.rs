//! Runs one target over a range of iterations in this process and reports what went wrong: a
//! panic (caught per input, with its message), a property a target checks (e.g. a round trip),
//! or an input slower than the slow limit. An input still running after the hang limit makes a
//! watchdog thread write it out and exit the process (it cannot be interrupted safely).

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use crate::mutate::mutate;
use crate::rng::FuzzRng;
use crate::targets::Target;

/// Exit status of a process whose watchdog found a hang.
pub const HANG_EXIT_CODE: i32 = 3;

/// What one input did to the decoder under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Decoded (or appended, or loaded) successfully.
    Accepted,
    /// Refused with an error, as it should be for garbage.
    Rejected,
}

/// How a run is done.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub seed: u64,
    pub start: u64,
    pub iterations: u64,
    /// An input slower than this is a finding.
    pub slow: Duration,
    /// An input still running after this ends the process (see the module docs).
    pub hang: Duration,
    /// Where findings are written (`None`: not written).
    pub artifacts: Option<PathBuf>,
}

impl RunConfig {
    /// `iterations` inputs from iteration 0 of `seed`, 1 s slow limit, 20 s hang limit.
    pub fn new(seed: u64, iterations: u64) -> Self {
        RunConfig {
            seed,
            start: 0,
            iterations,
            slow: Duration::from_secs(1),
            hang: Duration::from_secs(20),
            artifacts: None,
        }
    }
}

/// The kind of a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindingKind {
    Panic,
    /// A property the target checks failed (e.g. decode(encode(x)) != x).
    Property,
    Slow,
    Hang,
    /// The process died (abort, failed allocation under the address-space limit, stack overflow).
    Crash,
    /// Peak resident memory above the bound.
    Memory,
}

/// One failing input.
#[derive(Clone, Debug)]
pub struct Finding {
    pub target: String,
    pub iteration: u64,
    pub kind: FindingKind,
    pub message: String,
    /// Where the input was written, if it was.
    pub file: Option<PathBuf>,
}

/// The result of a run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub target: String,
    pub inputs: u64,
    pub accepted: u64,
    pub wall: Duration,
    pub slowest: Duration,
    pub slowest_iteration: u64,
    pub findings: Vec<Finding>,
}

thread_local! {
    static CAPTURE: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that, on a thread inside [`catch`], records the message instead
/// of printing it; other threads keep the previous hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let captured = CAPTURE.with(|c| {
                let mut c = c.borrow_mut();
                match c.as_mut() {
                    Some(slot) => {
                        *slot = Some(info.to_string());
                        true
                    }
                    None => false,
                }
            });
            if !captured {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into `Err(message)`.
fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    CAPTURE.with(|c| *c.borrow_mut() = Some(None));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    let msg = CAPTURE.with(|c| c.borrow_mut().take().flatten());
    r.map_err(|_| msg.unwrap_or_else(|| "panic".into()))
}

/// The input of `iteration`, exactly as a run builds it.
pub fn input_for(target: &dyn Target, seed: u64, iteration: u64) -> Vec<u8> {
    let mut out = Vec::new();
    build_input(target, seed, iteration, &mut out);
    out
}

fn build_input(target: &dyn Target, seed: u64, iteration: u64, out: &mut Vec<u8>) {
    let mut rng = FuzzRng::for_input(seed, target.name(), iteration);
    let seeds = target.seeds();
    let primary = mutate(&mut rng, seeds, out);
    target.fixup(out, &seeds[primary], &mut rng);
}

/// Runs one input; `Err` is a panic or a failed property, as a finding kind and message.
pub fn run_one(target: &mut dyn Target, input: &[u8]) -> Result<Outcome, (FindingKind, String)> {
    match catch(|| target.run(input)) {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(msg)) => Err((FindingKind::Property, msg)),
        Err(msg) => Err((FindingKind::Panic, msg)),
    }
}

/// Writes `input` as `<dir>/<target>-seed<S>-iter<I>.bin` and returns the path.
pub fn write_artifact(
    dir: &Path,
    target: &str,
    seed: u64,
    iteration: u64,
    input: &[u8],
) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let path = dir.join(format!("{target}-seed{seed}-iter{iteration}.bin"));
    std::fs::write(&path, input).ok()?;
    Some(path)
}

/// What the watchdog needs to see of the running loop.
#[derive(Debug)]
struct Watch {
    /// Nanoseconds since `epoch` at which the current input started; 0 = between inputs.
    started_ns: AtomicU64,
    iteration: AtomicU64,
    input: Mutex<Vec<u8>>,
    done: AtomicBool,
}

fn spawn_watchdog(
    watch: Arc<Watch>,
    epoch: Instant,
    cfg: &RunConfig,
    target: String,
) -> std::thread::JoinHandle<()> {
    let hang = cfg.hang;
    let (seed, dir) = (cfg.seed, cfg.artifacts.clone());
    std::thread::spawn(move || {
        let tick = (hang / 20).clamp(Duration::from_millis(10), Duration::from_millis(500));
        while !watch.done.load(Ordering::Acquire) {
            std::thread::park_timeout(tick);
            let started = watch.started_ns.load(Ordering::Acquire);
            let now = epoch.elapsed().as_nanos() as u64;
            if started == 0 || now.saturating_sub(started) < hang.as_nanos() as u64 {
                continue;
            }
            let iteration = watch.iteration.load(Ordering::Acquire);
            let input = watch.input.lock().map(|i| i.clone()).unwrap_or_default();
            let file = dir
                .as_deref()
                .and_then(|d| write_artifact(d, &target, seed, iteration, &input));
            println!(
                "hang target={target} iteration={iteration} limit_ms={} file={}",
                hang.as_millis(),
                file.map(|f| f.display().to_string()).unwrap_or_default()
            );
            std::process::exit(HANG_EXIT_CODE);
        }
    })
}

/// Runs `cfg.iterations` inputs of `target`; `progress(next_iteration)` is called every
/// `progress_every` inputs (0 = never).
pub fn run(
    target: &mut dyn Target,
    cfg: &RunConfig,
    progress_every: u64,
    progress: &mut dyn FnMut(u64),
) -> Report {
    let name = target.name().to_string();
    let epoch = Instant::now();
    let watch = Arc::new(Watch {
        started_ns: AtomicU64::new(0),
        iteration: AtomicU64::new(cfg.start),
        input: Mutex::new(Vec::new()),
        done: AtomicBool::new(false),
    });
    let dog = spawn_watchdog(watch.clone(), epoch, cfg, name.clone());
    let mut report = Report {
        target: name.clone(),
        ..Report::default()
    };
    let mut input = Vec::new();
    for iteration in cfg.start..cfg.start.saturating_add(cfg.iterations) {
        if (iteration - cfg.start).checked_rem(progress_every) == Some(0) {
            progress(iteration);
        }
        build_input(target, cfg.seed, iteration, &mut input);
        if let Ok(mut shared) = watch.input.lock() {
            shared.clone_from(&input);
        }
        watch.iteration.store(iteration, Ordering::Release);
        let t0 = Instant::now();
        let start_ns = (t0 - epoch).as_nanos().max(1) as u64;
        watch.started_ns.store(start_ns, Ordering::Release);
        let result = run_one(target, &input);
        let took = t0.elapsed();
        watch.started_ns.store(0, Ordering::Release);
        report.inputs += 1;
        if took > report.slowest {
            report.slowest = took;
            report.slowest_iteration = iteration;
        }
        let problem = match result {
            Ok(Outcome::Accepted) => {
                report.accepted += 1;
                None
            }
            Ok(Outcome::Rejected) => None,
            Err(p) => Some(p),
        };
        let problem = problem
            .or_else(|| (took > cfg.slow).then(|| (FindingKind::Slow, format!("took {took:?}"))));
        if let Some((kind, message)) = problem {
            let file = cfg
                .artifacts
                .as_deref()
                .and_then(|d| write_artifact(d, &name, cfg.seed, iteration, &input));
            report.findings.push(Finding {
                target: name.clone(),
                iteration,
                kind,
                message,
                file,
            });
        }
    }
    watch.done.store(true, Ordering::Release);
    dog.thread().unpark();
    let _ = dog.join();
    report.wall = epoch.elapsed();
    report
}

/// Peak resident set size of this process in KiB (`VmHWM`), where /proc offers it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
