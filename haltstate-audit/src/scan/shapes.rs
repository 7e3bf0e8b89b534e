//! The shapes of code the scan recognises: a test, a string literal, a call that asks for a permit, a statement
//! that leaves one held.

use syn::visit::{self, Visit};
use syn::{Expr, Pat, Stmt};

/// The client's calls that answer a permit.
const GUARD_CALLS: [&str; 3] = ["guard", "guard_blocking", "guard_waiting"];

pub(super) fn is_test(attrs: &[syn::Attribute]) -> bool {
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

pub(super) fn segments(path: &syn::Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

pub(super) fn string_literal(expr: &Expr) -> Option<String> {
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
pub(super) fn asks_permit(expr: &Expr) -> bool {
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
pub(super) fn only_on_success(expr: &Expr) -> bool {
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
pub(super) fn matches_ok(pat: &Pat) -> bool {
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
pub(super) fn holds_permit(stmt: &Stmt) -> bool {
    let Stmt::Local(local) = stmt else {
        return false;
    };
    let Some(init) = &local.init else {
        return false;
    };
    asks_permit(&init.expr) && (matches_ok(&local.pat) || only_on_success(&init.expr))
}
