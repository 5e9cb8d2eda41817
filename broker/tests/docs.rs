//! docs/configuration.md is generated from the configuration tables; this test keeps it true.
//! Regenerate with `SHALE_WRITE_DOCS=1 cargo test -p shale-broker --test docs`.

#[test]
fn configuration_reference_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
    let expected = shale_broker::config::configuration_markdown();
    if std::env::var_os("SHALE_WRITE_DOCS").is_some() {
        std::fs::write(path, &expected).expect("write docs/configuration.md");
    }
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/configuration.md is stale: run SHALE_WRITE_DOCS=1 cargo test -p shale-broker --test docs"
    );
}

/// The controller quorum's table in docs/compatibility.md lists the wire adapter's versions.
#[test]
fn compatibility_lists_the_quorum_rpc_versions() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/compatibility.md");
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    for key in shale_broker::kraft::wire::QUORUM_APIS {
        let (min, max) = shale_broker::kraft::wire::supported_versions(key).unwrap();
        let row = format!("| {key:?} | {} | {min}–{max} |\n", key as i16);
        assert!(doc.contains(&row), "docs/compatibility.md lacks {row}");
    }
}

/// The API table of docs/compatibility.md lists exactly what ApiVersions advertises.
#[test]
fn compatibility_table_matches_api_versions() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/compatibility.md");
    let doc = std::fs::read_to_string(path).unwrap_or_default();
    let mut expected = Vec::new();
    for (key, min, max) in shale_broker::api::supported_versions() {
        let name = format!(
            "{:?}",
            kafka_protocol::messages::ApiKey::try_from(key).unwrap()
        );
        expected.push(format!("| {name} | {key} | {min}–{max} |"));
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|row| !doc.contains(row.as_str()))
        .collect();
    let rows = doc
        .lines()
        .filter(|l| l.starts_with("| ") && l.matches('|').count() >= 5 && l.contains('–'))
        .count();
    assert!(
        missing.is_empty() && rows == expected.len(),
        "docs/compatibility.md API table is stale; expected rows:\n{}",
        expected.join("\n")
    );
}
