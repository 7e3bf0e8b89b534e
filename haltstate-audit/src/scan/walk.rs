//! The walk over a file's syntax: items, functions, blocks and the calls in them, each handed to the
//! [`Scanner`] with whether a permit is held there.

use syn::visit::{self, Visit};
use syn::{Expr, Item};

use super::shapes::{asks_permit, holds_permit, is_test, matches_ok, string_literal};
use super::{ModDecl, Scanner};
use crate::imports::Imports;

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
