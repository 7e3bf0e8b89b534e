//! The README's getting-started section, built as a new user would: a fresh cargo project outside the workspace
//! made from the README's own lines (its `cargo add` lines, its `policies.cedar`, its `src/main.rs`), run three
//! times on an embedded authority with a human's approval between the first and second run, then 16 identical
//! calls at once from a test appended to that `main.rs`.
//!
//! The only liberties taken: `cargo add haltstate` points at this checkout (the crate is not on a registry from
//! here), and every other `cargo add` pins the version this workspace locks, offline, so the build needs no
//! network. Builds go to `target/first-hour/` and are reused.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use haltstate::authority::{Authority, EvidenceKind, EvidenceQuery};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The fenced block that follows `<!-- first-hour:{name} -->` in the README.
fn block(readme: &str, name: &str) -> String {
    let marker = format!("<!-- first-hour:{name} -->");
    let after = readme
        .split_once(&marker)
        .unwrap_or_else(|| panic!("the README has no {marker}"))
        .1;
    let fence = after.find("```").expect("a fenced block after the marker");
    let body = &after[fence + 3..];
    let body = &body[body.find('\n').expect("a fence line") + 1..];
    body[..body.find("\n```").expect("the block's closing fence") + 1].to_owned()
}

/// The version of `name` this workspace's lock file holds (the newest, if several).
fn locked_version(lock: &str, name: &str) -> String {
    let mut versions: Vec<Vec<u64>> = lock
        .split("[[package]]")
        .filter(|package| package.contains(&format!("\nname = \"{name}\"\n")))
        .filter_map(|package| {
            let line = package.lines().find(|l| l.starts_with("version = "))?;
            let version = line.trim_start_matches("version = ").trim_matches('"');
            version.split('.').map(|n| n.parse().ok()).collect()
        })
        .collect();
    versions.sort();
    let newest = versions
        .pop()
        .unwrap_or_else(|| panic!("{name} is not in the workspace's Cargo.lock"));
    newest
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn cargo(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", workspace().join("target/first-hour"))
        // A build of its own, kept small: no debug info, no incremental cache (CI's target/ is bounded).
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .env("CARGO_PROFILE_TEST_DEBUG", "0")
        .env("CARGO_INCREMENTAL", "0")
        // The project is not a member of this workspace, and must not inherit the test's own flags.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_MANIFEST_DIR");
    command
}

fn succeed(what: &str, output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The project's lines after `cargo add`: each README line, with haltstate from this checkout and every other
/// crate at the version the workspace locks.
fn add_dependencies(project: &Path, setup: &str, lock: &str) {
    let haltstate = workspace().join("haltstate");
    for line in setup.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line.strip_prefix("cargo add ") else {
            assert!(
                line.is_empty(),
                "a setup line that is not `cargo add`: {line}"
            );
            continue;
        };
        let mut words: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
        let name = words.remove(0);
        let mut args = vec!["add".to_owned()];
        if name == "haltstate" {
            args.extend([name, "--path".to_owned(), haltstate.display().to_string()]);
        } else {
            let version = locked_version(lock, &name);
            args.push(format!("{name}@{version}"));
        }
        args.extend(words);
        args.push("--offline".to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        succeed(line, cargo(project, &args).output().unwrap());
    }
}

/// 16 identical calls at once: the first holds its body until the other 15 have answered, so all of them meet it
/// running. Appended to the README's `main.rs`, where the README's `CLIENT` is.
const SIXTEEN_AT_ONCE: &str = r#"
#[cfg(test)]
mod first_hour_checks {
    use super::*;
    use std::sync::{Arc, Barrier, Condvar, Mutex};
    use std::time::Duration;

    #[derive(Default)]
    struct Gate {
        answered: Mutex<usize>,
        all: Condvar,
    }

    #[haltstate_guard(client = CLIENT, action = "data.export", agent_id = "exporter", params(count = count),
        skip(gate))]
    fn held_export(count: u32, gate: &Gate) -> Result<u32, AppError> {
        let answered = gate.answered.lock().unwrap();
        let (answered, waited) = gate
            .all
            .wait_timeout_while(answered, Duration::from_secs(120), |n| *n < 15)
            .unwrap();
        drop(answered);
        assert!(!waited.timed_out(), "the other 15 calls never answered");
        Ok(count)
    }

    #[test]
    fn sixteen_identical_calls_at_once_run_once_and_the_rest_are_in_progress() {
        let gate = Arc::new(Gate::default());
        let barrier = Arc::new(Barrier::new(16));
        let calls: Vec<_> = (0..16)
            .map(|_| {
                let (gate, barrier) = (gate.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let answer = held_export(500, &gate);
                    if answer.is_err() {
                        *gate.answered.lock().unwrap() += 1;
                        gate.all.notify_all();
                    }
                    answer
                })
            })
            .collect();
        let answers: Vec<_> = calls.into_iter().map(|c| c.join().unwrap()).collect();
        assert_eq!(answers.iter().filter(|a| matches!(a, Ok(500))).count(), 1, "{answers:?}");
        assert!(
            answers.iter().all(|a| matches!(a, Ok(500) | Err(AppError::Guard(GuardError::InProgress { .. })))),
            "{answers:?}"
        );
        // Once it completed, the same call is the next operation.
        assert_eq!(held_export(500, &Gate { answered: Mutex::new(15), all: Condvar::new() }).unwrap(), 500);
    }
}
"#;

#[test]
fn the_readme_builds_a_new_project_that_asks_twice_exports_twice_and_refunds_once() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let lock = std::fs::read_to_string(workspace().join("Cargo.lock")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    succeed(
        "cargo new",
        cargo(
            dir.path(),
            &[
                "new",
                "--bin",
                "--vcs",
                "none",
                "--offline",
                "first-hour-app",
            ],
        )
        .output()
        .unwrap(),
    );
    let project = dir.path().join("first-hour-app");
    // The workspace's lock: the versions this checkout is tested with.
    std::fs::write(project.join("Cargo.lock"), &lock).unwrap();
    add_dependencies(&project, &block(&readme, "setup"), &lock);
    std::fs::write(
        project.join("policies.cedar"),
        block(&readme, "policies.cedar"),
    )
    .unwrap();
    let main = block(&readme, "main.rs");
    std::fs::write(
        project.join("src/main.rs"),
        format!("{main}{SIXTEEN_AT_ONCE}"),
    )
    .unwrap();
    succeed(
        "cargo build",
        cargo(&project, &["build", "--offline"]).output().unwrap(),
    );

    let binary = workspace().join("target/first-hour/debug/first-hour-app");
    let run = || {
        succeed(
            "the README's main",
            Command::new(&binary)
                .current_dir(&project)
                .env("HALTSTATE_POLICY", "policies.cedar")
                .env_remove("HALTSTATE_DB")
                .env_remove("HALTSTATE_BASE_URL")
                .env_remove("HALTSTATE_API_KEY")
                .output()
                .unwrap(),
        )
    };
    let first = run();
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("llm: (the model's answer"))
            .count(),
        2,
        "the same prompt asked twice gets two answers:\n{first}"
    );
    assert_eq!(
        lines.iter().filter(|l| **l == "export: 10 records").count(),
        2,
        "{first}"
    );
    let approval = lines
        .iter()
        .find_map(|l| l.strip_prefix("refund: waiting for approval "))
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("the refund waits for a human:\n{first}"))
        .to_owned();

    // A human approves, as `haltstate approvals approve` would: through the same database.
    {
        let authority = Authority::builder(project.join("haltstate.db"))
            .policy_file(project.join("policies.cedar"))
            .open()
            .unwrap();
        authority
            .approve("default", &approval, "alice", None)
            .wait()
            .unwrap();
    }
    let second = run();
    assert!(
        second.contains("refund: issued re_1042"),
        "the approved refund runs on the retry:\n{second}"
    );
    let third = run();
    assert!(third.contains("refund: already issued"), "{third}");
    assert_eq!(third.matches("llm: ").count(), 2, "{third}");

    // The evidence: one refund outcome, six LLM calls as six operations under one key, six exports.
    let authority = Authority::builder(project.join("haltstate.db"))
        .policy_file(project.join("policies.cedar"))
        .open()
        .unwrap();
    let outcomes = |action: &str| {
        let query = EvidenceQuery {
            action: Some(action.into()),
            limit: Some(1000),
            ..EvidenceQuery::default()
        };
        authority
            .evidence("default", &query)
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == EvidenceKind::Outcome)
            .collect::<Vec<_>>()
    };
    assert_eq!(outcomes("refund.create").len(), 1);
    let llm = outcomes("chat.complete");
    let keys: std::collections::BTreeSet<_> =
        llm.iter().map(|r| r.idempotency_key.clone()).collect();
    let generations: Vec<_> = llm.iter().map(|r| r.generation).collect();
    assert_eq!(keys.len(), 1, "one prompt, one key");
    assert_eq!(generations, (1..=6).map(Some).collect::<Vec<_>>());
    assert_eq!(outcomes("data.export").len(), 6);
    drop(authority);

    let checks = succeed(
        "cargo test in the new project",
        cargo(&project, &["test", "--offline"])
            .env("HALTSTATE_POLICY", project.join("policies.cedar"))
            .env("HALTSTATE_DB", project.join("checks.db"))
            .env_remove("HALTSTATE_BASE_URL")
            .env_remove("HALTSTATE_API_KEY")
            .output()
            .unwrap(),
    );
    assert!(
        checks.contains(
            "sixteen_identical_calls_at_once_run_once_and_the_rest_are_in_progress ... ok"
        ),
        "{checks}"
    );
}
