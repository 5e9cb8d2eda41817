//! The short fuzz run of CI: every target, a few thousand inputs each from seed 2 (the long job
//! of docs/testing.md uses seed 1), no finding allowed, and every target must accept some inputs
//! (a fuzzer that only feeds garbage to the first length check proves nothing). Counts are set so
//! that the whole file stays well under 30 s in a debug build. Also checks that the harness itself
//! reports what it must: a panic, a failed property and a slow input.

use std::time::Duration;

use shale_fuzz::runner::{input_for, peak_rss_kib, run};
use shale_fuzz::{make_target, target_names, FindingKind, Outcome, RunConfig, Target};

/// Inputs per target in this test (decompression-heavy targets are slower in a debug build).
fn smoke_iterations(name: &str) -> u64 {
    match name {
        "local_log.recovery" => 300,
        "record_batch" | "local_log.files" | "local_log.append" => 1500,
        n if n.starts_with("request.") => 1500,
        _ => 5000,
    }
}

#[test]
fn every_target_takes_its_smoke_inputs_without_a_finding() {
    let names = target_names();
    assert!(names.len() >= 39, "targets: {names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let mut target = make_target(name).unwrap_or_else(|| panic!("no target {name}"));
        assert!(!target.seeds().is_empty(), "{name} has no seeds");
        let mut cfg = RunConfig::new(2, smoke_iterations(name));
        cfg.slow = Duration::from_secs(5);
        let report = run(target.as_mut(), &cfg, 0, &mut |_| {});
        assert_eq!(report.inputs, cfg.iterations);
        if report.accepted == 0 {
            failures.push(format!("{name}: no input was accepted"));
        }
        for f in &report.findings {
            failures.push(format!(
                "{name} {:?} at iteration {} (replay: --target {name} --seed 2 --iteration {}): {}",
                f.kind, f.iteration, f.iteration, f.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    if let Some(kib) = peak_rss_kib() {
        assert!(kib < 256 * 1024, "peak RSS {kib} KiB");
    }
}

#[test]
fn every_api_version_the_broker_serves_has_seeds() {
    use shale_protocol::codec::Request;
    for key in Request::SERVED_API_KEYS {
        let range = Request::supported_versions(*key).unwrap();
        let seeds = shale_fuzz::targets::requests::seeds_for(*key);
        for v in range.min..=range.max {
            assert!(
                seeds
                    .iter()
                    .any(|s| s[..4] == [(*key as i16).to_be_bytes(), v.to_be_bytes()].concat()),
                "{key:?} v{v} has no seed"
            );
        }
    }
}

/// Panics on inputs starting with 0xff, fails its property on 0xfe, sleeps on 0xfd.
#[derive(Debug)]
struct Planted(Vec<Vec<u8>>);

impl Target for Planted {
    fn name(&self) -> &str {
        "planted"
    }
    fn seeds(&self) -> &[Vec<u8>] {
        &self.0
    }
    fn run(&mut self, input: &[u8]) -> Result<Outcome, String> {
        match input.first() {
            Some(0xff) => panic!("planted panic"),
            Some(0xfe) => Err("planted property".into()),
            Some(0xfd) => {
                std::thread::sleep(Duration::from_millis(30));
                Ok(Outcome::Accepted)
            }
            _ => Ok(Outcome::Rejected),
        }
    }
}

#[test]
fn the_harness_reports_panics_properties_and_slow_inputs_with_replayable_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Planted(vec![vec![0xff], vec![0xfe], vec![0xfd], vec![0x00, 0x01]]);
    let mut cfg = RunConfig::new(5, 400);
    cfg.slow = Duration::from_millis(20);
    cfg.artifacts = Some(dir.path().to_path_buf());
    let report = run(&mut t, &cfg, 0, &mut |_| {});
    for kind in [FindingKind::Panic, FindingKind::Property, FindingKind::Slow] {
        let f = report
            .findings
            .iter()
            .find(|f| f.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} finding in {:?}", report.findings));
        let file = f.file.as_ref().expect("written");
        assert_eq!(std::fs::read(file).unwrap(), input_for(&t, 5, f.iteration));
    }
    let panic = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Panic)
        .unwrap();
    assert!(panic.message.contains("planted panic"), "{}", panic.message);
}
