//! Replays the fuzz targets' kept inputs on stable, in CI: the seeds in `fuzz/corpus/<target>/` and every finding
//! kept in `fuzz/regressions/<target>/` (request decoding and policy loading; SSE parsing replays in the client's
//! tests). Each input must give a typed answer, never a panic.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut found = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_file() {
                found.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

#[test]
fn request_decoding_inputs_never_panic() {
    let kept = inputs("request_decoding");
    assert!(
        !kept.is_empty(),
        "the seeds are missing from fuzz/corpus/request_decoding"
    );
    for (path, bytes) in kept {
        let decoded =
            std::panic::catch_unwind(|| haltstate_server::fuzzing::request_bodies(&bytes));
        assert!(decoded.is_ok(), "{} panicked", path.display());
    }
}

#[test]
fn policy_loading_inputs_never_panic_and_point_inside_the_text() {
    let kept = inputs("policy_loading");
    assert!(
        !kept.is_empty(),
        "the seeds are missing from fuzz/corpus/policy_loading"
    );
    for (path, bytes) in kept {
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        let loaded = std::panic::catch_unwind(|| {
            haltstate_authority::PolicyEngine::from_source("fuzz.cedar", &text).err()
        });
        let error = loaded.unwrap_or_else(|_| panic!("{} panicked", path.display()));
        if let Some(error) = error {
            let lines = text.split('\n').count();
            for d in error.diagnostics() {
                assert!(
                    (1..=lines).contains(&d.line) && d.column >= 1,
                    "{}: {d}",
                    path.display()
                );
            }
        }
    }
}
