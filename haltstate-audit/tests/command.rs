//! The command as CI runs it: the real `cargo-haltstate-audit` binary (also started the way cargo starts a
//! subcommand), its formats and its exit status.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-haltstate-audit"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_table_ends_with_the_summary_and_fail_on_sets_the_exit_status() {
    let shop = fixture("shop");
    let plain = audit(&[&shop]);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let table = text(&plain.stdout);
    assert!(table.starts_with("PLACE"), "{table}");
    assert!(
        table
            .trim_end()
            .ends_with("25 sinks: 10 covered, 11 uncovered, 3 unknown, 1 allowed"),
        "{table}"
    );
    // As cargo runs it: `cargo haltstate-audit PATH` is `cargo-haltstate-audit haltstate-audit PATH`.
    let as_cargo = audit(&["haltstate-audit", &shop, "--fail-on", "uncovered"]);
    assert_eq!(
        as_cargo.status.code(),
        Some(1),
        "{}",
        text(&as_cargo.stderr)
    );
    assert!(text(&as_cargo.stderr).contains("11 uncovered"));
    let unknown = audit(&[&fixture("ledger"), "--fail-on", "unknown"]);
    assert_eq!(unknown.status.code(), Some(1));
    let never = audit(&[&fixture("ledger"), "--fail-on", "never"]);
    assert_eq!(never.status.code(), Some(0));
}

#[test]
fn json_and_sarif_carry_every_finding() {
    let shop = fixture("shop");
    let json: serde_json::Value =
        serde_json::from_slice(&audit(&[&shop, "--format", "json"]).stdout).unwrap();
    assert_eq!(json["summary"]["sinks"], 25);
    assert_eq!(json["summary"]["uncovered"], 11);
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 25);
    let first = &findings[0];
    for field in [
        "file", "line", "column", "kind", "sink", "function", "status", "why",
    ] {
        assert!(!first[field].is_null(), "{field}: {first}");
    }

    let sarif: serde_json::Value =
        serde_json::from_slice(&audit(&[&shop, "--format", "sarif"]).stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "haltstate-audit");
    let results = run["results"].as_array().unwrap();
    // Covered sinks are not results; uncovered are errors, unknown warnings, allowed suppressed in source.
    assert_eq!(results.len(), 25 - 10);
    let level = |l: &str| results.iter().filter(|r| r["level"] == l).count();
    assert_eq!(level("error"), 11 + 1);
    assert_eq!(level("warning"), 3);
    let suppressed: Vec<_> = results
        .iter()
        .filter(|r| r["suppressions"].is_array())
        .collect();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(
        suppressed[0]["suppressions"][0]["justification"],
        "allowed: a scratch file only this process reads"
    );
    let location = &results[0]["locations"][0]["physicalLocation"];
    assert!(
        location["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("src/")
    );
    assert!(location["region"]["startLine"].as_u64().unwrap() >= 1);
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for result in results {
        assert!(rules.contains(&result["ruleId"].as_str().unwrap()));
    }
}

#[test]
fn a_path_without_a_workspace_is_an_error_not_an_empty_report() {
    let empty = tempfile::tempdir().unwrap();
    let output = audit(&[&empty.path().display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("cannot read the workspace"),
        "{}",
        text(&output.stderr)
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_configuration_with_an_unknown_key_is_refused_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"x\"\nversion = \"0.0.0\"\nedition = \"2024\"\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(
        dir.path().join("haltstate-audit.toml"),
        "[[sink]]\npath = \"crate::a\"\nkindd = \"x\"\n",
    )
    .unwrap();
    let output = audit(&[&dir.path().display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    let error = text(&output.stderr);
    assert!(
        error.contains("haltstate-audit.toml") && error.contains("kindd"),
        "{error}"
    );
}
