//! README.md promises that stay true: the table reference matches the specs, and the two
//! commands CI relies on are there.

const README: &str = include_str!("../README.md");
const START: &str = "<!-- tables:start -->\n";
const END: &str = "<!-- tables:end -->";

#[test]
fn table_reference_matches_the_specs() {
    let start = README
        .find(START)
        .expect("README has the tables:start marker")
        + START.len();
    let end = README.find(END).expect("README has the tables:end marker");
    let expected = netsql::tables::reference_markdown();
    if std::env::var_os("NETSQL_UPDATE_README").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let updated = format!("{}{expected}{}", &README[..start], &README[end..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert!(
        README[start..end] == expected,
        "README's table reference is stale: run NETSQL_UPDATE_README=1 cargo test --release --test readme"
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
