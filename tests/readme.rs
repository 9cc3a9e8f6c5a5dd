//! README.md and docs/ promises that stay true: the table reference (docs/tables.md)
//! matches the specs, and README gives the test command CI runs.

const README: &str = include_str!("../README.md");
const TABLES: &str = include_str!("../docs/tables.md");
const START: &str = "<!-- tables:start -->\n";
const END: &str = "<!-- tables:end -->";

#[test]
fn table_reference_matches_the_specs() {
    let start = TABLES
        .find(START)
        .expect("docs/tables.md has the tables:start marker")
        + START.len();
    let end = TABLES
        .find(END)
        .expect("docs/tables.md has the tables:end marker");
    let expected = netsql::tables::reference_markdown();
    if std::env::var_os("NETSQL_UPDATE_README").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tables.md");
        let updated = format!("{}{expected}{}", &TABLES[..start], &TABLES[end..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert!(
        TABLES[start..end] == expected,
        "docs/tables.md is stale: run NETSQL_UPDATE_README=1 cargo test --release --test readme"
    );
}

#[test]
fn ci_runs_the_readme_test_command() {
    let ci = include_str!("../.ci/run");
    let command = README
        .lines()
        .find(|l| l.starts_with("cargo test"))
        .expect("README gives a cargo test command");
    assert!(
        ci.lines().any(|l| l.trim() == command),
        ".ci/run must run `{command}`"
    );
    assert!(ci.contains("NETSQL_REQUIRE_NETNS=1"));
}
