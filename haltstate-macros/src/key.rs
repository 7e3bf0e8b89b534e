//! The idempotency key: a closure whose parameters bind to the fn's parameters by name, or a plain expression.
//!
//! By name, never by position: reordering or adding parameters of the same type must never silently change
//! which argument the key comes from (that would mean duplicate refunds). The closure is inlined as
//! `{ let order: &Order = &order; <body> }`, reusing the user's tokens so type errors land on their code.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, Ident, Pat, Signature};

/// The names a key closure may bind: every parameter bound by an identifier pattern, at any depth.
pub(crate) fn param_names(sig: &Signature) -> Vec<Ident> {
    fn collect(pat: &Pat, out: &mut Vec<Ident>) {
        match pat {
            Pat::Ident(p) => out.push(p.ident.clone()),
            Pat::Type(p) => collect(&p.pat, out),
            Pat::Reference(p) => collect(&p.pat, out),
            Pat::Tuple(p) => p.elems.iter().for_each(|e| collect(e, out)),
            Pat::TupleStruct(p) => p.elems.iter().for_each(|e| collect(e, out)),
            Pat::Struct(p) => p.fields.iter().for_each(|f| collect(&f.pat, out)),
            _ => {}
        }
    }
    let mut names = Vec::new();
    for input in &sig.inputs {
        if let FnArg::Typed(typed) = input {
            collect(&typed.pat, &mut names);
        }
    }
    names
}

/// Tokens that evaluate the key to a `String`.
pub(crate) fn key_tokens(expr: &Expr, sig: &Signature) -> syn::Result<TokenStream> {
    let Expr::Closure(closure) = expr else {
        return Ok(
            quote_spanned!(expr.span()=> ::std::convert::Into::<::std::string::String>::into(#expr)),
        );
    };
    if let Some(token) = &closure.capture {
        return Err(syn::Error::new(
            token.span,
            "a key closure cannot be `move`: it only borrows the arguments",
        ));
    }
    if let Some(token) = &closure.asyncness {
        return Err(syn::Error::new(
            token.span,
            "a key closure cannot be `async`: the key is computed before the call",
        ));
    }
    let names = param_names(sig);
    let available = || {
        names
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut bindings = Vec::new();
    for input in &closure.inputs {
        let (ident, ty) = match input {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => (&p.ident, None),
            Pat::Type(typed) => match typed.pat.as_ref() {
                Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                    (&p.ident, Some(&typed.ty))
                }
                other => return Err(pattern_error(other)),
            },
            other => return Err(pattern_error(other)),
        };
        if ident == "self" {
            return Err(syn::Error::new(
                ident.span(),
                "a key closure cannot take `self`; write the key as an expression instead: \
                 idempotency_key = format!(\"...\", self.id)",
            ));
        }
        if !names.iter().any(|name| name == ident) {
            let message = if names.is_empty() {
                format!("no parameter named `{ident}`: this fn takes no named parameters")
            } else {
                format!("no parameter named `{ident}`; available: {}", available())
            };
            return Err(syn::Error::new(ident.span(), message));
        }
        bindings.push(match ty {
            Some(ty) => quote_spanned!(ty.span()=> let #ident: #ty = &#ident;),
            None => quote!(let #ident = &#ident;),
        });
    }
    let body = &closure.body;
    let into =
        quote_spanned!(body.span()=> ::std::convert::Into::<::std::string::String>::into(#body));
    Ok(quote!({ #(#bindings)* #into }))
}

/// Statements adding every argument's value (receivers and `skipped` names excluded) to `digest`, each spanned
/// at its parameter so a type that cannot be digested is reported there.
pub(crate) fn digested_args(
    sig: &Signature,
    skipped: &[Ident],
    digest: &Ident,
    p: &TokenStream,
) -> syn::Result<TokenStream> {
    let names = param_names(sig);
    for name in skipped {
        if !names.contains(name) {
            return Err(syn::Error::new(
                name.span(),
                format!("no parameter named `{name}` to skip"),
            ));
        }
    }
    let mut adds = TokenStream::new();
    for name in names.iter().filter(|name| !skipped.contains(name)) {
        let text = name.to_string();
        adds.extend(quote_spanned!(name.span()=> #p::ArgDigest::add(&mut #digest, #text, &#name);));
    }
    Ok(adds)
}

fn pattern_error(pat: &Pat) -> syn::Error {
    let hint = if matches!(pat, Pat::Wild(_)) {
        "`_` binds nothing; name the parameter the key comes from"
    } else {
        "a key closure parameter is the name of one of the fn's parameters, e.g. |order| ..."
    };
    syn::Error::new_spanned(pat, hint)
}
