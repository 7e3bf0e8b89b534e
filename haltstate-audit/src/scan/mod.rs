//! The scan of one source file: its functions, the calls they make and the sinks among them, with whether a
//! permit is held at each (a guard attribute on the function; `client.guard(..)` answered `Ok` earlier in an
//! enclosing block, or in the `Ok` arm of a `match` or `if let` on it).

use proc_macro2::LineColumn;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Expr, Item};

use crate::catalogue::{self, CratesUsed, SinkKind};
use crate::config::Config;
use crate::facts::{Call, Facts, Function, Sink};
use crate::imports::Imports;

mod shapes;
mod walk;

use shapes::{segments, string_literal};

/// The guard macros' attribute names (their last path segment).
const GUARD_ATTRIBUTES: [&str; 4] = [
    "guard",
    "haltstate_guard",
    "ahaltstate_guard",
    "openai_guard",
];

/// Where the file sits in its crate and what the crate is.
pub(crate) struct Place<'a> {
    pub(crate) file: usize,
    pub(crate) source: &'a str,
    /// The module path of the file (`["billing", "refunds"]`; empty for the crate root).
    pub(crate) module: Vec<String>,
    /// A library: its `pub` items can be called from outside.
    pub(crate) library: bool,
    /// Every module from the crate root to this file is `pub` (its `pub` items are reachable from outside).
    pub(crate) public_path: bool,
    pub(crate) config: &'a Config,
}

/// An out-of-line module the file declares (`mod x;`), for the crate walker to read next.
#[derive(Debug, Clone)]
pub(crate) struct ModDecl {
    /// Its module path.
    pub(crate) module: Vec<String>,
    /// Its `#[path = "..."]`, if any.
    pub(crate) path_attr: Option<String>,
    /// It and every module above it are `pub`.
    pub(crate) public_path: bool,
}

/// Scans `file` into `facts`; answers the modules it declares out of line.
pub(crate) fn scan(place: &Place<'_>, file: &syn::File, facts: &mut Facts) -> Vec<ModDecl> {
    let mut scanner = Scanner {
        place,
        facts,
        lines: place.source.lines().collect(),
        module: place.module.clone(),
        imports: vec![Imports::default()],
        crates: CratesUsed::default(),
        owner: None,
        functions: Vec::new(),
        cover: Vec::new(),
        closures: 0,
        mods: Vec::new(),
        public_path: place.public_path,
        locals: std::collections::HashSet::new(),
    };
    scanner.note_crates_of(&file.items);
    // Crates named in paths without a `use` (`reqwest::Client::new()`) count too, wherever they appear.
    struct Roots<'c>(&'c mut CratesUsed);
    impl Visit<'_> for Roots<'_> {
        fn visit_path(&mut self, path: &syn::Path) {
            if let Some(first) = path.segments.first() {
                self.0.note(&first.ident.to_string());
            }
            visit::visit_path(self, path);
        }
    }
    Roots(&mut scanner.crates).visit_file(file);
    for item in &file.items {
        scanner.visit_item(item);
    }
    scanner.mods
}

struct Scanner<'p, 'f> {
    place: &'p Place<'p>,
    facts: &'f mut Facts,
    lines: Vec<&'p str>,
    module: Vec<String>,
    /// One per module scope (inline modules push).
    imports: Vec<Imports>,
    crates: CratesUsed,
    /// The type of the `impl` being scanned, and whether it implements a trait.
    owner: Option<(String, bool)>,
    /// The functions being scanned, innermost last.
    functions: Vec<usize>,
    /// Whether a permit is held, per enclosing scope.
    cover: Vec<bool>,
    closures: usize,
    mods: Vec<ModDecl>,
    /// The module being scanned and every one above it are `pub`.
    public_path: bool,
    /// Names bound in the function being scanned (parameters, `let`, closure parameters, arms): a path naming one
    /// is a variable, not a function handed on.
    locals: std::collections::HashSet<String>,
}

impl Scanner<'_, '_> {
    fn covered(&self) -> bool {
        self.cover.last().copied().unwrap_or(false)
    }

    fn here(&self, at: LineColumn) -> (usize, usize) {
        (at.line, at.column + 1)
    }

    /// The reason of a `// haltstate: allow(reason)` on `line` or the line above.
    fn allowed(&self, line: usize) -> Option<String> {
        [line, line.saturating_sub(1)]
            .into_iter()
            .filter(|l| *l >= 1)
            .filter_map(|l| self.lines.get(l - 1))
            .find_map(|text| {
                let start = text.find("haltstate: allow(")? + "haltstate: allow(".len();
                let end = text.rfind(')')?;
                (end >= start).then(|| text[start..end].trim().to_owned())
            })
    }

    fn note_crates_of(&mut self, items: &[Item]) {
        for item in items {
            if let Item::Use(item) = item
                && let Some(imports) = self.imports.last_mut()
            {
                imports.add(&item.tree);
            }
        }
        let roots: Vec<String> = self
            .imports
            .last()
            .map(|imports| imports.roots().map(str::to_owned).collect())
            .unwrap_or_default();
        for root in roots {
            self.crates.note(&root);
        }
    }

    /// The full path of a path call, with `crate`, `self` and `super` made module paths.
    fn resolve(&self, path: &syn::Path) -> Vec<String> {
        let written = segments(path);
        let imports = self.imports.last().cloned().unwrap_or_default();
        let mut full = imports.resolve(&written);
        match full.first().map(String::as_str) {
            Some("crate") => {
                full.remove(0);
                full.insert(0, "crate".to_owned());
            }
            Some("self") => {
                full.remove(0);
                let mut module = vec!["crate".to_owned()];
                module.extend(self.module.iter().cloned());
                full = module.into_iter().chain(full).collect();
            }
            Some("super") => {
                let mut module = vec!["crate".to_owned()];
                module.extend(self.module.iter().cloned());
                while full.first().is_some_and(|s| s == "super") {
                    full.remove(0);
                    module.pop();
                }
                full = module.into_iter().chain(full).collect();
            }
            _ => {}
        }
        full
    }

    fn add_sink(&mut self, kind: SinkKind, what: String, at: LineColumn) {
        let (line, column) = self.here(at);
        let allowed = self.allowed(line);
        self.facts.sinks.push(Sink {
            within: self.functions.last().copied(),
            kind,
            what,
            covered: self.covered(),
            in_closure: self.closures > 0,
            allowed,
            file: self.place.file,
            line,
            column,
        });
    }

    fn add_call(&mut self, name: String, qualifier: Option<String>, method: bool, at: LineColumn) {
        let Some(caller) = self.functions.last().copied() else {
            return;
        };
        self.facts.calls.push(Call {
            caller,
            name,
            qualifier,
            method,
            covered: self.covered(),
            file: self.place.file,
            line: at.line,
        });
    }

    /// The project sink a resolved path call is, if any: its path ends with the configured one.
    fn project_sink(&self, resolved: &[String]) -> Option<String> {
        let relative: Vec<&str> = resolved
            .iter()
            .map(String::as_str)
            .filter(|s| *s != "crate")
            .collect();
        self.place.config.sinks.iter().find_map(|sink| {
            let wanted = sink.segments();
            let local: Vec<&str> = self
                .module
                .iter()
                .map(String::as_str)
                .chain(relative.iter().copied())
                .collect();
            (relative.ends_with(&wanted) || (relative.len() == 1 && local.ends_with(&wanted)))
                .then(|| sink.path.clone())
        })
    }

    /// Notes what a `pub use` tree makes reachable from outside: names, and whole modules for globs.
    fn reexport(&mut self, tree: &syn::UseTree, prefix: &mut Vec<String>) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.reexport(&path.tree, prefix);
                prefix.pop();
            }
            syn::UseTree::Name(name) => {
                self.facts.reexported.insert(name.ident.to_string());
            }
            syn::UseTree::Rename(rename) => {
                self.facts.reexported.insert(rename.ident.to_string());
            }
            syn::UseTree::Glob(_) => {
                let mut module: Vec<String> = Vec::new();
                for segment in prefix.iter() {
                    match segment.as_str() {
                        "crate" => module.clear(),
                        "self" => module = self.module.clone(),
                        "super" => {
                            if module.is_empty() {
                                module = self.module.clone();
                            }
                            module.pop();
                        }
                        other => module.push(other.to_owned()),
                    }
                }
                self.facts.reexported_modules.push(module);
            }
            syn::UseTree::Group(group) => {
                for item in &group.items {
                    self.reexport(item, prefix);
                }
            }
        }
    }

    fn enter_function(
        &mut self,
        attrs: &[syn::Attribute],
        vis: &syn::Visibility,
        sig: &syn::Signature,
        method: bool,
    ) -> usize {
        let name = sig.ident.to_string();
        let guarded = attrs.iter().any(|attr| {
            attr.path().segments.last().is_some_and(|s| {
                let s = s.ident.to_string();
                GUARD_ATTRIBUTES.contains(&s.as_str())
                    || self.place.config.guard_attributes.contains(&s)
            })
        });
        let mut qualified = vec!["crate".to_owned()];
        qualified.extend(self.module.iter().cloned());
        if let Some((owner, _)) = &self.owner {
            qualified.push(owner.clone());
        }
        qualified.push(name.clone());
        let trait_impl = self.owner.as_ref().is_some_and(|(_, t)| *t);
        let public = matches!(vis, syn::Visibility::Public(_)) && self.public_path;
        self.facts.functions.push(Function {
            name: name.clone(),
            qualified: qualified.join("::"),
            method,
            exported: self.place.library && public,
            public: self.place.library && matches!(vis, syn::Visibility::Public(_)),
            module: self.module.clone(),
            owner: self.owner.as_ref().map(|(owner, _)| owner.clone()),
            trait_impl,
            guarded,
            entry: !self.place.library && self.module.is_empty() && name == "main" && !method,
        });
        self.facts.functions.len() - 1
    }

    fn function_body(&mut self, id: usize, sig: &syn::Signature, block: &syn::Block) {
        let guarded = self.facts.functions[id].guarded;
        self.functions.push(id);
        let saved_locals = std::mem::take(&mut self.locals);
        for input in &sig.inputs {
            if let syn::FnArg::Typed(typed) = input {
                self.visit_pat(&typed.pat);
            }
        }
        let saved_cover = std::mem::replace(&mut self.cover, vec![guarded]);
        let saved_closures = std::mem::replace(&mut self.closures, 0);
        self.visit_block(block);
        self.closures = saved_closures;
        self.cover = saved_cover;
        self.locals = saved_locals;
        self.functions.pop();
    }

    fn check_method(&mut self, call: &syn::ExprMethodCall) {
        let method = call.method.to_string();
        let at = call.method.span().start();
        let text = call.args.first().and_then(string_literal);
        if let Some(kind) = catalogue::method_sink(&method, &self.crates, text.as_deref()) {
            self.add_sink(kind, format!(".{method}"), at);
            return;
        }
        // A request built with a writing method: `.request(Method::POST, ..)`, hyper's `.method("PUT")`.
        if self.crates.http && matches!(method.as_str(), "request" | "method") {
            let writes = call.args.first().is_some_and(|arg| {
                let text = match arg {
                    Expr::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
                    other => string_literal(other),
                };
                text.is_some_and(|t| {
                    matches!(
                        t.to_ascii_uppercase().as_str(),
                        "POST" | "PUT" | "PATCH" | "DELETE"
                    )
                })
            });
            if writes {
                self.add_sink(SinkKind::Http, format!(".{method}"), at);
            }
        }
    }

    fn check_path_call(&mut self, call: &syn::ExprCall, path: &syn::Path) {
        let at = path.span().start();
        let resolved = self.resolve(path);
        let mut candidates = vec![resolved.clone()];
        if let Some(imports) = self.imports.last() {
            candidates.extend(imports.through_globs(&segments(path)));
        }
        if let Some((kind, matched)) = candidates
            .iter()
            .find_map(|p| catalogue::path_sink(p).map(|kind| (kind, p.join("::"))))
        {
            self.add_sink(kind, matched, at);
        } else if let Some(sink) = self.project_sink(&resolved) {
            self.add_sink(SinkKind::Project, sink, at);
        } else if resolved.first().is_some_and(|s| s == "sqlx")
            && resolved.last().is_some_and(|s| s.starts_with("query"))
            && call
                .args
                .first()
                .and_then(string_literal)
                .is_some_and(|t| catalogue::writes_sql(&t))
        {
            self.add_sink(SinkKind::Sql, resolved.join("::"), at);
        }
        let name = resolved.last().cloned().unwrap_or_default();
        let qualifier = (resolved.len() >= 2).then(|| resolved[resolved.len() - 2].clone());
        self.add_call(name, qualifier, false, at);
    }

    fn check_macro(&mut self, mac: &syn::Macro) {
        let resolved = self.resolve(&mac.path);
        if resolved.first().is_some_and(|s| s == "sqlx")
            && resolved.last().is_some_and(|s| s.starts_with("query"))
        {
            let text = mac.tokens.to_string();
            if catalogue::writes_sql(&text) {
                self.add_sink(
                    SinkKind::Sql,
                    format!("{}!", resolved.join("::")),
                    mac.path.span().start(),
                );
            }
        }
    }
}
