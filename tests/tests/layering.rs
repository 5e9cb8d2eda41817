//! Dependencies point downward only. This test reads each workspace crate's manifest and fails on
//! any `shale-*` dependency the layering table below does not allow.

use std::collections::BTreeMap;

/// crate directory -> the workspace crates it may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("common", &[]),
    ("protocol", &["shale-common"]),
    ("local-log", &["shale-common", "shale-protocol"]),
    ("rlmm", &["shale-common", "shale-protocol"]),
    (
        "remote-log",
        &["shale-common", "shale-protocol", "shale-rlmm"],
    ),
    (
        "raft",
        &["shale-common", "shale-protocol", "shale-local-log"],
    ),
    (
        "broker",
        &[
            "shale-common",
            "shale-protocol",
            "shale-local-log",
            "shale-rlmm",
            "shale-remote-log",
            "shale-raft",
        ],
    ),
];

fn shale_deps(manifest: &str) -> Vec<String> {
    let mut section = String::new();
    let mut deps = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
        } else if section == "[dependencies]" && line.starts_with("shale-") {
            let name: String = line
                .chars()
                .take_while(|c| *c != ' ' && *c != '.' && *c != '=')
                .collect();
            deps.push(name);
        }
    }
    deps
}

#[test]
fn workspace_crates_depend_only_downward() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut violations = BTreeMap::new();
    for (dir, allowed) in ALLOWED {
        let manifest = std::fs::read_to_string(format!("{root}/{dir}/Cargo.toml")).expect(dir);
        let bad: Vec<String> = shale_deps(&manifest)
            .into_iter()
            .filter(|d| !allowed.contains(&d.as_str()))
            .collect();
        if !bad.is_empty() {
            violations.insert(*dir, bad);
        }
    }
    assert!(
        violations.is_empty(),
        "forbidden dependency edges: {violations:?}"
    );
}

#[test]
fn the_manifest_reader_sees_dependencies() {
    let deps = shale_deps("[package]\nname = \"x\"\n[dependencies]\nshale-raft.workspace = true\nbytes = \"1\"\n[dev-dependencies]\nshale-broker.workspace = true\n");
    assert_eq!(deps, vec!["shale-raft".to_string()]);
}
