//! The targets of a workspace, from `cargo metadata` (no compiling, no dependencies resolved): every member's
//! libraries, binaries and examples. Tests, benches and build scripts are not production code and are not read.

use std::path::{Path, PathBuf};

use crate::error::AuditError;
use crate::units::Target;

/// The workspace at `path` (a directory holding `Cargo.toml`, or a manifest): its root and targets.
pub(crate) fn targets(path: &Path) -> Result<(PathBuf, Vec<Target>), AuditError> {
    let manifest = if path.is_dir() {
        path.join("Cargo.toml")
    } else {
        path.to_owned()
    };
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(&manifest)
        .no_deps()
        .exec()
        .map_err(|error| AuditError::Workspace {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
    // A member's manifest audits that package; the workspace's own manifest, every member.
    let canonical = |path: &Path| path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let manifest = canonical(&manifest);
    let whole = manifest == canonical(metadata.workspace_root.join("Cargo.toml").as_std_path());
    let own = metadata
        .workspace_packages()
        .into_iter()
        .find(|package| canonical(package.manifest_path.as_std_path()) == manifest);
    let packages: Vec<&cargo_metadata::Package> = match own {
        Some(package) if !whole => vec![package],
        _ => metadata.workspace_packages(),
    };
    let mut targets = Vec::new();
    for package in packages {
        for target in &package.targets {
            let library = target.is_lib()
                || target.is_cdylib()
                || target.is_staticlib()
                || target.is_rlib()
                || target.is_dylib();
            if !(library || target.is_bin() || target.is_example()) {
                continue;
            }
            let kind = if library {
                "lib"
            } else if target.is_bin() {
                "bin"
            } else {
                "example"
            };
            targets.push(Target {
                name: format!("{} ({kind} {})", package.name, target.name),
                root: target.src_path.clone().into_std_path_buf(),
                library,
            });
        }
    }
    let root = if whole {
        canonical(metadata.workspace_root.as_std_path())
    } else {
        manifest
            .parent()
            .map_or_else(|| path.to_owned(), Path::to_owned)
    };
    Ok((root, targets))
}
