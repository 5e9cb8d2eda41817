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
