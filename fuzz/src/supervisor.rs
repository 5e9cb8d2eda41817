//! The long job: every target in a child process of its own (this binary with `--child`), so that
//! what cannot be caught in-process is found too — an abort from a failed allocation (the child
//! runs under an address-space limit, so reserving gigabytes for a length prefix fails at once),
//! a stack overflow, a hang — and the peak resident memory is measured per target.
//!
//! A child reports `progress <iteration>` every few thousand inputs, its findings, and a final
//! `done` line. A child that dies without one is bisected: the last window is re-run reporting
//! every iteration, which names the input that kills it, and the job goes on after it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::runner::{input_for, write_artifact, Finding, FindingKind};
use crate::targets::make_target;

/// How the job runs.
#[derive(Clone, Debug)]
pub struct JobConfig {
    pub seed: u64,
    pub iterations: u64,
    pub artifacts: PathBuf,
    pub max_rss_mib: u64,
    pub max_vm_mib: u64,
    pub slow: Duration,
    pub hang: Duration,
}

/// What the job found for one target.
#[derive(Clone, Debug, Default)]
pub struct TargetSummary {
    pub target: String,
    pub inputs: u64,
    pub accepted: u64,
    pub wall: Duration,
    pub slowest: Duration,
    pub slowest_iteration: u64,
    pub peak_rss_kib: u64,
    pub findings: Vec<Finding>,
}

/// Progress between inputs of a child.
const PROGRESS_EVERY: u64 = 4096;
/// A target stops after this many crashes (each one costs a bisection).
const MAX_CRASHES: usize = 5;

#[derive(Debug, Default)]
struct ChildRun {
    last_progress: Option<u64>,
    done: bool,
    hang: Option<u64>,
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn num(line: &str, key: &str) -> u64 {
    field(line, key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn run_child(
    cfg: &JobConfig,
    target: &str,
    start: u64,
    count: u64,
    every: u64,
    sum: &mut TargetSummary,
) -> std::io::Result<ChildRun> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["--child", "--target", target])
        .args(["--seed", &cfg.seed.to_string()])
        .args(["--start", &start.to_string()])
        .args(["--iterations", &count.to_string()])
        .args(["--progress-every", &every.to_string()])
        .args(["--max-vm-mib", &cfg.max_vm_mib.to_string()])
        .args(["--slow-ms", &cfg.slow.as_millis().to_string()])
        .args(["--hang-ms", &cfg.hang.as_millis().to_string()])
        .arg("--artifacts")
        .arg(&cfg.artifacts)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut run = ChildRun::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            if let Some(i) = line.strip_prefix("progress ") {
                run.last_progress = i.trim().parse().ok();
            } else if line.starts_with("finding ") {
                sum.findings.push(parse_finding(target, &line));
            } else if line.starts_with("hang ") {
                run.hang = Some(num(&line, "iteration"));
                let mut f = parse_finding(target, &line);
                f.kind = FindingKind::Hang;
                sum.findings.push(f);
            } else if line.starts_with("done ") {
                run.done = true;
                sum.inputs += num(&line, "inputs");
                sum.accepted += num(&line, "accepted");
                sum.wall += Duration::from_millis(num(&line, "wall_ms"));
                let slowest = Duration::from_micros(num(&line, "slowest_us"));
                if slowest > sum.slowest {
                    sum.slowest = slowest;
                    sum.slowest_iteration = num(&line, "slowest_iteration");
                }
                sum.peak_rss_kib = sum.peak_rss_kib.max(num(&line, "peak_rss_kib"));
            }
        }
    }
    child.wait()?;
    Ok(run)
}

fn parse_finding(target: &str, line: &str) -> Finding {
    let kind = match field(line, "kind") {
        Some("panic") => FindingKind::Panic,
        Some("property") => FindingKind::Property,
        Some("slow") => FindingKind::Slow,
        _ => FindingKind::Hang,
    };
    Finding {
        target: target.to_string(),
        iteration: num(line, "iteration"),
        kind,
        message: line
            .split_once(" message=")
            .map(|(_, m)| m.to_string())
            .unwrap_or_default(),
        file: field(line, "file")
            .filter(|f| !f.is_empty())
            .map(PathBuf::from),
    }
}

/// Runs `cfg.iterations` inputs of `target` in children; see the module docs.
pub fn run_target(cfg: &JobConfig, target: &str) -> std::io::Result<TargetSummary> {
    let mut sum = TargetSummary {
        target: target.to_string(),
        ..TargetSummary::default()
    };
    let mut start = 0;
    let mut crashes = 0;
    while start < cfg.iterations {
        let count = cfg.iterations - start;
        let run = run_child(cfg, target, start, count, PROGRESS_EVERY, &mut sum)?;
        if run.done {
            break;
        }
        if let Some(i) = run.hang {
            start = i + 1;
            continue;
        }
        // Died: find the input in the last window.
        let window = run.last_progress.unwrap_or(start);
        let span = PROGRESS_EVERY.min(cfg.iterations - window);
        let mut scratch = TargetSummary::default();
        let bisect = run_child(cfg, target, window, span, 1, &mut scratch)?;
        sum.findings.append(&mut scratch.findings);
        let (iteration, message) = match (bisect.done, bisect.last_progress) {
            (false, Some(i)) => (
                i,
                "the process died (abort, failed allocation or stack overflow)",
            ),
            _ => (
                window,
                "the process died, but not again when re-run from this window",
            ),
        };
        let file = make_target(target).and_then(|t| {
            let input = input_for(t.as_ref(), cfg.seed, iteration);
            write_artifact(&cfg.artifacts, target, cfg.seed, iteration, &input)
        });
        sum.findings.push(Finding {
            target: target.to_string(),
            iteration,
            kind: FindingKind::Crash,
            message: message.to_string(),
            file,
        });
        sum.inputs += iteration + 1 - start;
        crashes += 1;
        if crashes >= MAX_CRASHES {
            break;
        }
        start = if bisect.done {
            window + span
        } else {
            iteration + 1
        };
    }
    if sum.peak_rss_kib > cfg.max_rss_mib * 1024 {
        sum.findings.push(Finding {
            target: target.to_string(),
            iteration: 0,
            kind: FindingKind::Memory,
            message: format!(
                "peak RSS {} KiB is above the {} MiB bound",
                sum.peak_rss_kib, cfg.max_rss_mib
            ),
            file: None,
        });
    }
    Ok(sum)
}
