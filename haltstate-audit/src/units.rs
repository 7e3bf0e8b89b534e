//! A crate target read as the compiler would: its root file, then every out-of-line module it declares, found
//! where `mod name;` puts it (`name.rs` or `name/mod.rs`, or its `#[path]`).

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::AuditError;
use crate::facts::Facts;
use crate::scan::{Place, scan};

/// A target to audit: its root source file, and whether it is a library (its `pub` items are called from outside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The crate and target's name, for the report (`billing (lib)`).
    pub name: String,
    /// `src/lib.rs`, `src/main.rs`, `examples/x.rs`.
    pub root: PathBuf,
    /// A library.
    pub library: bool,
}

/// Where the module `name`, declared in `declaring`, lives.
fn module_file(
    declaring: &Path,
    name: &str,
    path_attr: Option<&str>,
    root: bool,
) -> Option<PathBuf> {
    let parent = declaring.parent()?;
    if let Some(path) = path_attr {
        return Some(parent.join(path));
    }
    let owns_directory = root || declaring.file_name().is_some_and(|f| f == "mod.rs");
    let directory = if owns_directory {
        parent.to_owned()
    } else {
        parent.join(declaring.file_stem()?)
    };
    [
        directory.join(format!("{name}.rs")),
        directory.join(name).join("mod.rs"),
    ]
    .into_iter()
    .find(|candidate| candidate.is_file())
}

pub(crate) fn parse(path: &Path, source: &str) -> Result<syn::File, AuditError> {
    syn::parse_file(source).map_err(|error| {
        let at = error.span().start();
        AuditError::Parse {
            path: path.to_owned(),
            line: at.line,
            column: at.column + 1,
            message: error.to_string(),
        }
    })
}

/// Reads `target` and every module it declares into facts.
pub(crate) fn read(target: &Target, config: &Config) -> Result<Facts, AuditError> {
    let mut facts = Facts::default();
    let mut pending = vec![(target.root.clone(), Vec::<String>::new(), true, true)];
    while let Some((path, module, root, public_path)) = pending.pop() {
        if facts.files.contains(&path) {
            continue;
        }
        let source = std::fs::read_to_string(&path).map_err(|source| AuditError::Read {
            path: path.clone(),
            source,
        })?;
        let file = parse(&path, &source)?;
        facts.files.push(path.clone());
        facts.lines += source.lines().count();
        let place = Place {
            file: facts.files.len() - 1,
            source: &source,
            module,
            library: target.library,
            public_path,
            config,
        };
        for declared in scan(&place, &file, &mut facts) {
            let Some(name) = declared.module.last() else {
                continue;
            };
            // A module the compiler would not find is not compiled either (a `cfg`'d platform module).
            if let Some(file) = module_file(&path, name, declared.path_attr.as_deref(), root) {
                pending.push((file, declared.module, false, declared.public_path));
            }
        }
    }
    Ok(facts)
}
