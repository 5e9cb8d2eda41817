//! `shale-fuzz`: the command line of the decoder fuzzer (see the crate docs and docs/testing.md).
//!
//! * `shale-fuzz --iterations 1000000 --seed 1`: the long job over every target (or those named
//!   with `--target`, a name or a prefix such as `request`), one child process per target.
//! * `shale-fuzz --target T --seed S --iteration I`: rebuilds and runs one input (and writes it to
//!   `--artifacts`); `--input FILE` runs a file's bytes instead.
//! * `--list` prints the targets.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use shale_fuzz::runner::{self, input_for, peak_rss_kib, run_one, write_artifact};
use shale_fuzz::supervisor::{run_target, JobConfig, TargetSummary};
use shale_fuzz::{make_target, target_names, RunConfig};

#[derive(Debug, Parser)]
#[command(
    name = "shale-fuzz",
    about = "Randomised decoding of Shale's wire and file formats"
)]
struct Args {
    /// Inputs per target.
    #[arg(long, default_value_t = 100_000)]
    iterations: u64,
    /// Run seed; with the target name and the iteration it fixes every input.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Targets to run: exact names or prefixes (repeatable); all when absent.
    #[arg(long)]
    target: Vec<String>,
    /// Rebuild and run this one input only.
    #[arg(long)]
    iteration: Option<u64>,
    /// Run this file's bytes as the input.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Where failing inputs are written.
    #[arg(long, default_value = "fuzz-artifacts")]
    artifacts: PathBuf,
    /// Bound on a target's peak resident memory.
    #[arg(long, default_value_t = 256)]
    max_rss_mib: u64,
    /// Address-space limit of a target's process (a huge reservation fails under it).
    #[arg(long, default_value_t = 2048)]
    max_vm_mib: u64,
    /// An input slower than this is a finding.
    #[arg(long, default_value_t = 1000)]
    slow_ms: u64,
    /// An input still running after this ends the run.
    #[arg(long, default_value_t = 20_000)]
    hang_ms: u64,
    /// List the targets and exit.
    #[arg(long)]
    list: bool,
    #[arg(long, hide = true)]
    child: bool,
    #[arg(long, hide = true, default_value_t = 0)]
    start: u64,
    #[arg(long, hide = true, default_value_t = 4096)]
    progress_every: u64,
}

fn selected(patterns: &[String]) -> Vec<String> {
    target_names()
        .into_iter()
        .filter(|n| {
            patterns.is_empty()
                || patterns
                    .iter()
                    .any(|p| n == p || n.starts_with(&format!("{p}.")) || n.starts_with(p.as_str()))
        })
        .collect()
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        target_names().iter().for_each(|n| println!("{n}"));
        return ExitCode::SUCCESS;
    }
    if args.child {
        return child(&args);
    }
    if args.iteration.is_some() || args.input.is_some() {
        return replay(&args);
    }
    job(&args)
}

fn replay(args: &Args) -> ExitCode {
    let [name] = args.target.as_slice() else {
        eprintln!("--iteration and --input need exactly one --target");
        return ExitCode::FAILURE;
    };
    let Some(mut target) = make_target(name) else {
        eprintln!("unknown target {name} (see --list)");
        return ExitCode::FAILURE;
    };
    let input = match (&args.input, args.iteration) {
        (Some(file), _) => match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        },
        (None, Some(i)) => {
            let input = input_for(target.as_ref(), args.seed, i);
            if let Some(f) = write_artifact(&args.artifacts, name, args.seed, i, &input) {
                println!("input written to {}", f.display());
            }
            input
        }
        (None, None) => unreachable!("checked by the caller"),
    };
    println!("{} bytes", input.len());
    match run_one(target.as_mut(), &input) {
        Ok(outcome) => {
            println!("{outcome:?}");
            ExitCode::SUCCESS
        }
        Err((kind, message)) => {
            println!("{kind:?}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn child(args: &Args) -> ExitCode {
    let limit = args.max_vm_mib.saturating_mul(1 << 20);
    let rlimit = rustix::process::Rlimit {
        current: Some(limit),
        maximum: None,
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::As, rlimit) {
        eprintln!("cannot limit the address space: {e}");
    }
    let [name] = args.target.as_slice() else {
        return ExitCode::FAILURE;
    };
    let Some(mut target) = make_target(name) else {
        return ExitCode::FAILURE;
    };
    let cfg = RunConfig {
        seed: args.seed,
        start: args.start,
        iterations: args.iterations,
        slow: Duration::from_millis(args.slow_ms),
        hang: Duration::from_millis(args.hang_ms),
        artifacts: Some(args.artifacts.clone()),
    };
    use std::io::Write;
    let report = runner::run(target.as_mut(), &cfg, args.progress_every, &mut |i| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "progress {i}");
        let _ = out.flush();
    });
    for f in &report.findings {
        let file = f.file.as_ref().map(|p| p.display().to_string());
        println!(
            "finding kind={} iteration={} file={} message={}",
            format!("{:?}", f.kind).to_lowercase(),
            f.iteration,
            file.unwrap_or_default(),
            f.message.replace('\n', " | ")
        );
    }
    println!(
        "done inputs={} accepted={} wall_ms={} slowest_us={} slowest_iteration={} peak_rss_kib={}",
        report.inputs,
        report.accepted,
        report.wall.as_millis(),
        report.slowest.as_micros(),
        report.slowest_iteration,
        peak_rss_kib().unwrap_or(0)
    );
    ExitCode::SUCCESS
}

fn job(args: &Args) -> ExitCode {
    let cfg = JobConfig {
        seed: args.seed,
        iterations: args.iterations,
        artifacts: args.artifacts.clone(),
        max_rss_mib: args.max_rss_mib,
        max_vm_mib: args.max_vm_mib,
        slow: Duration::from_millis(args.slow_ms),
        hang: Duration::from_millis(args.hang_ms),
    };
    let names = selected(&args.target);
    if names.is_empty() {
        eprintln!("no target matches {:?} (see --list)", args.target);
        return ExitCode::FAILURE;
    }
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>11} {:>9} {:>8}",
        "target", "inputs", "accepted", "wall_s", "slowest_ms", "rss_mib", "findings"
    );
    let mut all: Vec<TargetSummary> = Vec::new();
    for name in &names {
        let sum = match run_target(&cfg, name) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{name}: cannot run: {e}");
                return ExitCode::FAILURE;
            }
        };
        print_row(&sum);
        all.push(sum);
    }
    let total = TargetSummary {
        target: format!("total ({} targets)", all.len()),
        inputs: all.iter().map(|s| s.inputs).sum(),
        accepted: all.iter().map(|s| s.accepted).sum(),
        wall: all.iter().map(|s| s.wall).sum(),
        slowest: all.iter().map(|s| s.slowest).max().unwrap_or_default(),
        peak_rss_kib: all.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0),
        findings: all.iter().flat_map(|s| s.findings.clone()).collect(),
        ..TargetSummary::default()
    };
    print_row(&total);
    for f in &total.findings {
        let file = f.file.as_ref().map(|p| p.display().to_string());
        println!(
            "FINDING {} {:?} iteration {} ({}): {}\n  replay: shale-fuzz --target {} --seed {} --iteration {}",
            f.target,
            f.kind,
            f.iteration,
            file.unwrap_or_else(|| "not written".into()),
            f.message,
            f.target,
            cfg.seed,
            f.iteration
        );
    }
    if total.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_row(s: &TargetSummary) {
    let pct = if s.inputs == 0 {
        0.0
    } else {
        100.0 * s.accepted as f64 / s.inputs as f64
    };
    println!(
        "{:<34} {:>9} {:>8.1}% {:>9.1} {:>11.2} {:>9.1} {:>8}",
        s.target,
        s.inputs,
        pct,
        s.wall.as_secs_f64(),
        s.slowest.as_secs_f64() * 1000.0,
        s.peak_rss_kib as f64 / 1024.0,
        s.findings.len()
    );
}
