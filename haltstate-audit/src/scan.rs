//! The scan of one source file: its functions, the calls they make and the sinks among them, with whether a
//! permit is held at each (a guard attribute on the function; `client.guard(..)` answered `Ok` earlier in an
//! enclosing block, or in the `Ok` arm of a `match` or `if let` on it).

use proc_macro2::LineColumn;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Expr, Item, Pat, Stmt};

use crate::catalogue::{self, CratesUsed, SinkKind};
use crate::config::Config;
use crate::facts::{Call, Facts, Function, Sink};
use crate::imports::Imports;

/// The guard macros' attribute names (their last path segment).
const GUARD_ATTRIBUTES: [&str; 4] = [
    "guard",
    "haltstate_guard",
    "ahaltstate_guard",
    "openai_guard",
];
/// The client's calls that answer a permit.
const GUARD_CALLS: [&str; 3] = ["guard", "guard_blocking", "guard_waiting"];

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

fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        path.is_ident("test")
            || path.segments.last().is_some_and(|s| s.ident == "test")
            || (path.is_ident("cfg")
                && attr
                    .parse_args::<syn::Meta>()
                    .is_ok_and(|meta| meta.path().is_ident("test")))
    })
}

fn segments(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) => Some(text.value()),
        Expr::Reference(reference) => string_literal(&reference.expr),
        Expr::Paren(inner) => string_literal(&inner.expr),
        _ => None,
    }
}

/// Whether `expr` asks for a permit (`client.guard(..)`, `guard_blocking(..)`).
fn asks_permit(expr: &Expr) -> bool {
    struct Finder(bool);
    impl Visit<'_> for Finder {
        fn visit_expr_method_call(&mut self, call: &syn::ExprMethodCall) {
            if GUARD_CALLS.contains(&call.method.to_string().as_str()) {
                self.0 = true;
            }
            visit::visit_expr_method_call(self, call);
        }
        fn visit_expr_call(&mut self, call: &syn::ExprCall) {
            if let Expr::Path(path) = &*call.func
                && path
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| GUARD_CALLS.contains(&s.ident.to_string().as_str()))
            {
                self.0 = true;
            }
            visit::visit_expr_call(self, call);
        }
    }
    let mut finder = Finder(false);
    finder.visit_expr(expr);
    finder.0
}

/// Whether `expr` goes on only when it succeeded (`?`, `.unwrap()`, `.expect(..)`).
fn only_on_success(expr: &Expr) -> bool {
    struct Finder(bool);
    impl Visit<'_> for Finder {
        fn visit_expr_try(&mut self, _: &syn::ExprTry) {
            self.0 = true;
        }
        fn visit_expr_method_call(&mut self, call: &syn::ExprMethodCall) {
            if matches!(call.method.to_string().as_str(), "unwrap" | "expect") {
                self.0 = true;
            }
            visit::visit_expr_method_call(self, call);
        }
    }
    let mut finder = Finder(false);
    finder.visit_expr(expr);
    finder.0
}

/// Whether `pat` only matches a success (`Ok(permit)`).
fn matches_ok(pat: &Pat) -> bool {
    match pat {
        Pat::TupleStruct(tuple) => tuple.path.segments.last().is_some_and(|s| s.ident == "Ok"),
        Pat::Ident(ident) => ident
            .subpat
            .as_ref()
            .is_some_and(|(_, sub)| matches_ok(sub)),
        _ => false,
    }
}

/// Whether a statement leaves a permit held for the statements after it in its block.
fn holds_permit(stmt: &Stmt) -> bool {
    let Stmt::Local(local) = stmt else {
        return false;
    };
    let Some(init) = &local.init else {
        return false;
    };
    asks_permit(&init.expr) && (matches_ok(&local.pat) || only_on_success(&init.expr))
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

impl<'ast> Visit<'ast> for Scanner<'_, '_> {
    fn visit_item(&mut self, item: &'ast Item) {
        let attrs: &[syn::Attribute] = match item {
            Item::Fn(f) => &f.attrs,
            Item::Mod(m) => &m.attrs,
            Item::Impl(i) => &i.attrs,
            _ => &[],
        };
        if is_test(attrs) {
            return;
        }
        visit::visit_item(self, item);
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        // A `use` inside a function counts for the rest of the module too (a close enough scope).
        if let Some(imports) = self.imports.last_mut() {
            imports.add(&item.tree);
        }
        if matches!(item.vis, syn::Visibility::Public(_)) {
            self.reexport(&item.tree, &mut Vec::new());
        }
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        let mut module = self.module.clone();
        module.push(item.ident.to_string());
        let public_path = self.public_path && matches!(item.vis, syn::Visibility::Public(_));
        match &item.content {
            None => {
                let path_attr = item.attrs.iter().find_map(|attr| match &attr.meta {
                    syn::Meta::NameValue(nv) if nv.path.is_ident("path") => {
                        string_literal(&nv.value)
                    }
                    _ => None,
                });
                self.mods.push(ModDecl {
                    module,
                    path_attr,
                    public_path,
                });
            }
            Some((_, items)) => {
                let saved = std::mem::replace(&mut self.module, module);
                let saved_public = std::mem::replace(&mut self.public_path, public_path);
                self.imports.push(Imports::default());
                self.note_crates_of(items);
                for item in items {
                    self.visit_item(item);
                }
                self.imports.pop();
                self.public_path = saved_public;
                self.module = saved;
            }
        }
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        let owner = match &*item.self_ty {
            syn::Type::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
            _ => None,
        }
        .unwrap_or_else(|| "_".to_owned());
        let saved = self.owner.replace((owner, item.trait_.is_some()));
        for item in &item.items {
            if let syn::ImplItem::Fn(f) = item {
                if is_test(&f.attrs) {
                    continue;
                }
                let id = self.enter_function(&f.attrs, &f.vis, &f.sig, true);
                self.function_body(id, &f.sig, &f.block);
            }
        }
        self.owner = saved;
    }

    fn visit_item_trait(&mut self, item: &'ast syn::ItemTrait) {
        let saved = self.owner.replace((item.ident.to_string(), true));
        for item in &item.items {
            if let syn::TraitItem::Fn(f) = item
                && let Some(block) = &f.default
            {
                let id = self.enter_function(&f.attrs, &syn::Visibility::Inherited, &f.sig, true);
                self.function_body(id, &f.sig, block);
            }
        }
        self.owner = saved;
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if is_test(&item.attrs) {
            return;
        }
        // A function inside another is its own function (its callers are followed like any other's).
        let saved_owner = self.owner.take();
        let id = self.enter_function(&item.attrs, &item.vis, &item.sig, false);
        self.function_body(id, &item.sig, &item.block);
        self.owner = saved_owner;
    }

    fn visit_block(&mut self, block: &'ast syn::Block) {
        let depth = self.cover.len();
        for stmt in &block.stmts {
            self.visit_stmt(stmt);
            if holds_permit(stmt) {
                self.cover.push(true);
            }
        }
        self.cover.truncate(depth);
    }

    fn visit_expr_match(&mut self, expr: &'ast syn::ExprMatch) {
        self.visit_expr(&expr.expr);
        let permit = asks_permit(&expr.expr);
        for arm in &expr.arms {
            let held = self.covered() || (permit && matches_ok(&arm.pat));
            self.cover.push(held);
            self.visit_arm(arm);
            self.cover.pop();
        }
    }

    fn visit_expr_if(&mut self, expr: &'ast syn::ExprIf) {
        self.visit_expr(&expr.cond);
        let held = match &*expr.cond {
            Expr::Let(binding) => asks_permit(&binding.expr) && matches_ok(&binding.pat),
            _ => false,
        };
        self.cover.push(self.covered() || held);
        self.visit_block(&expr.then_branch);
        self.cover.pop();
        if let Some((_, otherwise)) = &expr.else_branch {
            self.visit_expr(otherwise);
        }
    }

    fn visit_expr_closure(&mut self, expr: &'ast syn::ExprClosure) {
        self.closures += 1;
        visit::visit_expr_closure(self, expr);
        self.closures -= 1;
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        match &*call.func {
            Expr::Path(path) => self.check_path_call(call, &path.path),
            other => self.visit_expr(other),
        }
        for arg in &call.args {
            self.visit_expr(arg);
        }
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        self.check_method(call);
        self.add_call(
            call.method.to_string(),
            None,
            true,
            call.method.span().start(),
        );
        visit::visit_expr_method_call(self, call);
    }

    fn visit_expr_path(&mut self, expr: &'ast syn::ExprPath) {
        // A name in value position may be a function handed on (`map(handler)`): its callers are not all seen.
        if let Some(last) = expr.path.segments.last() {
            let name = last.ident.to_string();
            if expr.path.segments.len() > 1 || !self.locals.contains(&name) {
                self.facts.values.insert(name);
            }
        }
    }

    fn visit_pat_ident(&mut self, pat: &'ast syn::PatIdent) {
        self.locals.insert(pat.ident.to_string());
        visit::visit_pat_ident(self, pat);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.check_macro(mac);
        // A macro's arguments are usually expressions (`format!`, `vec!`, `tokio::join!`): read what parses.
        if let Ok(args) = mac
            .parse_body_with(syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated)
        {
            for arg in &args {
                self.visit_expr(arg);
            }
        }
    }
}
