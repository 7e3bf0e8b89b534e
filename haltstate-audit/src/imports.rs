//! What the names in one module mean: its `use` declarations, renames and groups included, so that `fs::write`,
//! `w` (from `use std::fs::write as w`) and `std::fs::write` are the same call.

use std::collections::HashMap;

use syn::UseTree;

/// A module's imported names, each to the full path it stands for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Imports {
    names: HashMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
}

impl Imports {
    /// Adds the names a `use` tree brings in.
    pub(crate) fn add(&mut self, tree: &UseTree) {
        self.walk(tree, &mut Vec::new());
    }

    fn walk(&mut self, tree: &UseTree, prefix: &mut Vec<String>) {
        match tree {
            UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.walk(&path.tree, prefix);
                prefix.pop();
            }
            UseTree::Name(name) => {
                let name = name.ident.to_string();
                if name == "self" {
                    if let Some(last) = prefix.last() {
                        self.names.insert(last.clone(), prefix.clone());
                    }
                } else {
                    let mut full = prefix.clone();
                    full.push(name.clone());
                    self.names.insert(name, full);
                }
            }
            UseTree::Rename(rename) => {
                let mut full = prefix.clone();
                let ident = rename.ident.to_string();
                if ident != "self" {
                    full.push(ident);
                }
                self.names.insert(rename.rename.to_string(), full);
            }
            UseTree::Glob(_) => self.globs.push(prefix.clone()),
            UseTree::Group(group) => {
                for item in &group.items {
                    self.walk(item, prefix);
                }
            }
        }
    }

    /// The full path `segments` stands for: its first segment replaced by what it was imported as. A name from no
    /// `use` stays as written (a crate name, a prelude item, or a local item).
    pub(crate) fn resolve(&self, segments: &[String]) -> Vec<String> {
        let Some((first, rest)) = segments.split_first() else {
            return Vec::new();
        };
        match self.names.get(first) {
            Some(full) => full.iter().chain(rest).cloned().collect(),
            None => segments.to_vec(),
        }
    }

    /// Every path a glob import could make `segments` (for matching catalogue paths through `use std::fs::*`).
    pub(crate) fn through_globs(&self, segments: &[String]) -> Vec<Vec<String>> {
        self.globs
            .iter()
            .map(|glob| glob.iter().chain(segments).cloned().collect())
            .collect()
    }

    /// The first segments of every imported path (the crates the module uses by name).
    pub(crate) fn roots(&self) -> impl Iterator<Item = &str> {
        self.names
            .values()
            .chain(&self.globs)
            .filter_map(|path| path.first().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imports(source: &str) -> Imports {
        let file: syn::File = syn::parse_str(source).unwrap();
        let mut imports = Imports::default();
        for item in &file.items {
            if let syn::Item::Use(item) = item {
                imports.add(&item.tree);
            }
        }
        imports
    }

    fn path(p: &str) -> Vec<String> {
        p.split("::").map(str::to_owned).collect()
    }

    #[test]
    fn renames_groups_and_self_resolve_to_the_full_path() {
        let found = imports(
            "use std::fs::{self, write as put}; use tokio::process::Command as Cmd; use reqwest::{Client};",
        );
        assert_eq!(
            found.resolve(&path("fs::remove_file")),
            path("std::fs::remove_file")
        );
        assert_eq!(found.resolve(&path("put")), path("std::fs::write"));
        assert_eq!(
            found.resolve(&path("Cmd::new")),
            path("tokio::process::Command::new")
        );
        assert_eq!(
            found.resolve(&path("Client::new")),
            path("reqwest::Client::new")
        );
        assert_eq!(found.resolve(&path("other::thing")), path("other::thing"));
        let globbed = imports("use std::fs::*;");
        assert_eq!(
            globbed.through_globs(&path("write")),
            vec![path("std::fs::write")]
        );
    }
}
