//! Replays the SSE-parsing fuzz target's kept inputs (seeds and findings) on stable, in CI.

#![allow(clippy::unwrap_used)]

use std::path::Path;

#[test]
fn sse_parsing_inputs_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for dir in [
        root.join("corpus/sse_parsing"),
        root.join("regressions/sse_parsing"),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
        {
            let text = String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned();
            for line in text.split('\n') {
                let parsed =
                    std::panic::catch_unwind(|| haltstate::__private::parse_sse_line(line));
                assert!(
                    parsed.is_ok(),
                    "{} panicked on {line:?}",
                    entry.path().display()
                );
            }
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "the seeds are missing from fuzz/corpus/sse_parsing"
    );
}
