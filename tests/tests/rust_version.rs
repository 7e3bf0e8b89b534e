//! The workspace's `rust-version` is true: no resolved dependency declares a newer one. (It said 1.85 while
//! cedar-policy needed 1.89, so a user on 1.85 got a build failure deep in a dependency instead of cargo's clear
//! "requires rustc 1.89".)

#![allow(clippy::unwrap_used)]

use serde_json::Value;

/// `1.89` and `1.89.0` are the same version.
fn version(text: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = text.split('.').map(|part| part.parse().unwrap()).collect();
    parts.resize(3, 0);
    parts
}

#[test]
fn the_declared_rust_version_covers_every_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    let mut declared = Vec::new();
    let mut needed: Option<(Vec<u64>, String)> = None;
    for package in metadata["packages"].as_array().unwrap() {
        let Some(rust_version) = package["rust_version"].as_str() else {
            continue;
        };
        let id = package["id"].as_str().unwrap();
        let name = format!("{} {}", package["name"], package["version"]);
        if members.contains(&id) {
            declared.push((version(rust_version), name));
        } else if needed
            .as_ref()
            .is_none_or(|(most, _)| version(rust_version) > *most)
        {
            needed = Some((
                version(rust_version),
                format!("{name} needs {rust_version}"),
            ));
        }
    }
    let (needed, by) = needed.unwrap();
    assert!(declared.len() >= 6, "{declared:?}");
    for (rust_version, member) in declared {
        assert!(
            rust_version >= needed,
            "{member} declares rust-version {rust_version:?}, but {by}"
        );
    }
}
