//! The audit against fixture crates whose every sink carries the answer it must get (`// expect: <status>` on its
//! line), and against this repository's examples. Precision and recall of "uncovered" are printed and must be 1.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use haltstate_audit::{Report, Status, audit};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `(file, line) -> status` from the fixture's `expect:` comments.
fn expected(root: &Path) -> BTreeMap<(PathBuf, usize), Status> {
    let mut expected = BTreeMap::new();
    let mut pending = vec![root.join("src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (index, line) in text.lines().enumerate() {
                let Some((_, status)) = line.split_once("// expect: ") else {
                    continue;
                };
                let status = match status.trim() {
                    "covered" => Status::Covered,
                    "uncovered" => Status::Uncovered,
                    "unknown" => Status::Unknown,
                    "allowed" => Status::Allowed,
                    other => panic!("{}:{}: expect {other:?}", path.display(), index + 1),
                };
                let relative = path.strip_prefix(root).unwrap().to_owned();
                expected.insert((relative, index + 1), status);
            }
        }
    }
    expected
}

fn found(report: &Report) -> BTreeMap<(PathBuf, usize), Status> {
    report
        .findings
        .iter()
        .map(|f| ((f.file.clone(), f.line), f.status))
        .collect()
}

/// Checks one fixture: every expected sink found with its status, nothing else found; answers (true positives,
/// false positives, false negatives) of "uncovered".
fn check(name: &str) -> (usize, usize, usize) {
    let root = fixture(name);
    let report = audit(&root).unwrap();
    let expected = expected(&root);
    let found = found(&report);
    let (mut tp, mut fp, mut fun) = (0, 0, 0);
    let keys: std::collections::BTreeSet<_> = expected.keys().chain(found.keys()).collect();
    for key in keys {
        let is = found.get(key) == Some(&Status::Uncovered);
        let should = expected.get(key) == Some(&Status::Uncovered);
        match (is, should) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fun += 1,
            (false, false) => {}
        }
    }
    assert_eq!(found, expected, "{name}:\n{}", report.table());
    (tp, fp, fun)
}

#[test]
fn every_sink_shape_in_the_fixtures_gets_its_expected_status() {
    let mut totals = (0, 0, 0);
    for name in ["shop", "ledger"] {
        let (tp, fp, fun) = check(name);
        totals = (totals.0 + tp, totals.1 + fp, totals.2 + fun);
    }
    let (tp, fp, fun) = totals;
    let precision = tp as f64 / (tp + fp) as f64;
    let recall = tp as f64 / (tp + fun) as f64;
    println!(
        "uncovered sinks: precision {precision:.2}, recall {recall:.2} ({tp} true, {fp} false, {fun} missed)"
    );
    assert!(tp >= 10, "the fixtures hold too few uncovered sinks: {tp}");
    assert_eq!((fp, fun), (0, 0));
}

#[test]
fn the_summary_counts_each_status() {
    let report = audit(&fixture("shop")).unwrap();
    // The fixture's `// expect:` comments: 10 covered, 11 uncovered, 3 unknown, 1 allowed.
    assert_eq!(
        report.summary(),
        "25 sinks: 10 covered, 11 uncovered, 3 unknown, 1 allowed"
    );
    let allowed = report
        .findings
        .iter()
        .find(|f| f.status == Status::Allowed)
        .unwrap();
    assert_eq!(
        allowed.why,
        "allowed: a scratch file only this process reads"
    );
}

#[test]
fn the_examples_of_this_repository_have_their_guarded_paths_covered() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let report = audit(&examples).unwrap();
    let openai = report
        .findings
        .iter()
        .find(|f| f.file.ends_with("openai.rs"))
        .unwrap_or_else(|| panic!("the OpenAI example's call is a sink:\n{}", report.table()));
    assert_eq!(openai.status, Status::Covered, "{}", report.table());
    assert!(
        openai.why.starts_with("guard attribute on"),
        "{}",
        openai.why
    );
    // No sink of an example stands uncovered.
    assert_eq!(report.count(Status::Uncovered), 0, "{}", report.table());
}
