//! Stage two: what a guarded fn becomes.
//!
//! ```text
//! fn f(args) -> R {                         // the user's own signature tokens, re-emitted
//!     #![inner attrs]
//!     let client = ...;                      // evaluated once
//!     let action = Action::new(..).key(<key from the args, by name>).param(..);
//!     let permit = match guard(client, action) { Ok(p) => p, Err(e) => return R::from_guard_error(e) };
//!     let out = call_once(move || { <fake return edge>; { <body> } });   // or `async move { .. }.await`
//!     finish(permit, &out);                  // exactly once; a panic or a dropped future reports via Drop
//!     out
//! }
//! ```
//! Generated locals are `mixed_site` identifiers: the body can neither name nor shadow them.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    AttrStyle, Expr, GenericArgument, ItemFn, PathArguments, ReturnType, Stmt, Type, TypeParamBound,
};

use crate::attr::{Args, Macro};
use crate::key;

fn local(name: &str) -> syn::Ident {
    syn::Ident::new(name, Span::mixed_site())
}

/// `Pin<Box<dyn Future<Output = R> + ..>>` -> `R`: what `#[async_trait]` turned an `async fn` into.
fn boxed_future_output(ty: &Type) -> Option<&Type> {
    let Type::Path(pin) = ty else { return None };
    let pin = pin.path.segments.last()?;
    if pin.ident != "Pin" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &pin.arguments else {
        return None;
    };
    let Some(GenericArgument::Type(Type::Path(boxed))) = args.args.first() else {
        return None;
    };
    let boxed = boxed.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &boxed.arguments else {
        return None;
    };
    let Some(GenericArgument::Type(Type::TraitObject(object))) = args.args.first() else {
        return None;
    };
    object.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(trait_bound) = bound else {
            return None;
        };
        let future = trait_bound.path.segments.last()?;
        if future.ident != "Future" {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &future.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
            _ => None,
        })
    })
}

/// `Box::pin(async move { .. })` as the tail of a desugared `#[async_trait]` method: its async block.
fn boxed_async_tail(item: &mut ItemFn) -> Option<&mut syn::ExprAsync> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = item.block.stmts.last_mut() else {
        return None;
    };
    let Expr::Path(func) = call.func.as_ref() else {
        return None;
    };
    if func.path.segments.last().is_none_or(|s| s.ident != "pin") || call.args.len() != 1 {
        return None;
    }
    match call.args.first_mut() {
        Some(Expr::Async(block)) => Some(block),
        _ => None,
    }
}

pub(crate) fn expand(which: Macro, args: &Args, mut item: ItemFn) -> syn::Result<TokenStream> {
    let sig = item.sig.clone();
    if let Some(token) = &sig.constness {
        return Err(syn::Error::new(
            token.span,
            format!("#[{}] cannot guard a `const fn`", which.name()),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        return Err(syn::Error::new_spanned(
            variadic,
            format!("#[{}] cannot guard a C-variadic fn", which.name()),
        ));
    }
    let ReturnType::Type(_, declared) = &sig.output else {
        return Err(syn::Error::new(
            sig.ident.span(),
            format!(
                "#[{}] needs the fn to return `Result<_, E>` where `E: From<haltstate::GuardError>`; \
                 this fn returns `()`, so a denial would have nowhere to go",
                which.name()
            ),
        ));
    };
    let is_async = sig.asyncness.is_some();
    // `#[async_trait]` has already turned `async fn -> R` into `fn -> Pin<Box<dyn Future<Output = R>>>`.
    let boxed = if is_async {
        None
    } else {
        boxed_future_output(declared).cloned()
    };
    let is_future = boxed.is_some() || matches!(declared.as_ref(), Type::ImplTrait(_));
    if is_future && (boxed.is_none() || boxed_async_tail(&mut item).is_none()) {
        return Err(syn::Error::new_spanned(
            declared,
            format!(
                "#[{}] cannot see inside this future; make it an `async fn` (or end it with `Box::pin(async move {{ .. }})`)",
                which.name()
            ),
        ));
    }
    let asynchronous = is_async || boxed.is_some();
    if args.wait_timeout_s.is_some() && !asynchronous {
        return Err(syn::Error::new(
            sig.ident.span(),
            "`on_approval = wait(..)` needs an async fn: a sync fn never blocks on a human",
        ));
    }
    let output: Type = boxed.clone().unwrap_or_else(|| declared.as_ref().clone());
    let krate: TokenStream = match &args.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::haltstate),
    };
    let p = quote!(#krate::__private);

    let (client, action, permit, out, error, key, kit) = (
        local("__hs_client"),
        local("__hs_action"),
        local("__hs_permit"),
        local("__hs_out"),
        local("__hs_error"),
        local("__hs_key"),
        local("__hs_kit"),
    );

    // The return type decides how a refusal comes back and how the body ended. It is checked once, spanned at the
    // return type, so a wrong one is one error there; every later use goes through the kit, unchecked.
    let check_return =
        quote_spanned!(output.span()=> let #kit = #krate::guarded::checked_return::<#output>(););
    let refuse = quote!((#kit.refuse));
    let ended = quote!((#kit.outcome)(&#out));

    let client_expr = match &args.client {
        Some(expr) => quote_spanned!(expr.span()=> #p::client_of(&(#expr))),
        None => quote!(#p::global_client()),
    };
    let action_name = match (&args.action, which) {
        (Some(lit), _) => lit.value(),
        (None, Macro::OpenaiGuard) => format!("llm.{}", sig.ident),
        (None, _) => String::new(),
    };
    let agent = match &args.agent_id {
        Some(lit) => quote!(::std::option::Option::Some(#lit)),
        None => quote!(::std::option::Option::None),
    };
    let key_value = match &args.key {
        Some(expr) => {
            let tokens = key::key_tokens(expr, &sig)?;
            quote!(::std::option::Option::Some(#tokens))
        }
        None => quote!(::std::option::Option::None),
    };

    let mut chain = TokenStream::new();
    let params: Vec<_> = args.params.iter().flatten().collect();
    for param in &params {
        let name = param.name.to_string();
        let value = &param.value;
        chain.extend(if param.secret {
            quote_spanned!(value.span()=> .param(#name, #p::secret(&(#value))))
        } else {
            quote_spanned!(value.span()=> .param(#name, &(#value)))
        });
    }
    if which == Macro::OpenaiGuard && args.params.is_none() {
        // The model and the argument names, never the prompt text.
        let names = key::param_names(&sig);
        if names.iter().any(|n| n == "model") {
            chain.extend(quote!(.param("model", &(model))));
        }
        let listed: Vec<String> = names.iter().map(ToString::to_string).collect();
        chain.extend(quote!(.param("arguments", [#(#listed),*])));
    }
    if let Some(resource) = &args.resource {
        chain.extend(quote_spanned!(resource.span()=> .resource(::std::string::ToString::to_string(&(#resource)))));
    }
    if let Some(risk) = &args.risk {
        chain.extend(quote!(.risk(#risk)));
    }
    if let Some((open, _)) = args.fail_open {
        let mode = if open { quote!(Open) } else { quote!(Closed) };
        chain.extend(quote!(.fail_mode(#p::FailMode::#mode)));
    }
    if let (Some(skipped), Some(_)) = (&args.skip, &args.key)
        && let Some(first) = skipped.first()
    {
        return Err(syn::Error::new(
            first.span(),
            "`skip` only applies to a derived key; this guard names its `idempotency_key`",
        ));
    }
    if let Some(span) = args.once {
        if args.key.is_some() {
            return Err(syn::Error::new(
                span,
                "`once` applies to a derived key; a named `idempotency_key` is already one operation forever",
            ));
        }
        if which == Macro::OpenaiGuard {
            return Err(syn::Error::new(
                span,
                "`once` needs a derived key; #[openai_guard] without `idempotency_key` gives every call its own key",
            ));
        }
    }
    // A derived key is the same arguments as one operation until it ends; `once` keeps it one operation forever.
    let lifetime = if args.once.is_some() {
        quote!(#krate::KeyLifetime::Once)
    } else {
        quote!(#krate::KeyLifetime::Operation)
    };
    let derive_key = if args.key.is_none() && which == Macro::OpenaiGuard {
        quote!(let #action = #action.key(#p::fresh_key(#action_name));)
    } else if args.key.is_none() {
        let digest = local("__hs_digest");
        let adds = key::digested_args(&sig, args.skip.as_deref().unwrap_or_default(), &digest, &p)?;
        quote! {
            let #action = {
                let mut #digest = #p::ArgDigest::new();
                #adds
                match #p::derived_key(&#action, &#client, #digest) {
                    ::std::result::Result::Ok(#key) => #action.key(#key).key_lifetime(#lifetime),
                    ::std::result::Result::Err(#error) => return #refuse(#error),
                }
            };
        }
    } else {
        TokenStream::new()
    };

    let pre = quote! {
        #check_return
        let #client = match #client_expr {
            ::std::result::Result::Ok(#client) => #client,
            ::std::result::Result::Err(#error) => return #refuse(#error),
        };
        let #action = #p::action(#action_name, #agent, #key_value) #chain;
        #derive_key
    };

    // `openai_guard` also records the model and token counts when the `Ok` value implements `Usage`.
    let (finish_async, finish_sync) = if which == Macro::OpenaiGuard {
        let usage = local("__hs_usage");
        let probe = quote! {
            let #usage = {
                #[allow(unused_imports)]
                use #p::{HasUsage as _, NoUsage as _};
                (&#p::UsageProbe(&#out)).usage_of()
            };
        };
        (
            quote!(#probe #p::finish_with_usage(#permit, #ended, #usage).await;),
            quote!(#probe #p::finish_blocking_with_usage(#permit, #ended, #usage);),
        )
    } else {
        (
            quote!(#p::finish(#permit, #ended).await;),
            quote!(#p::finish_blocking(#permit, #ended);),
        )
    };

    let fake_edge = quote_spanned! {output.span()=>
        #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::empty_loop, clippy::needless_return, clippy::let_unit_value)]
        if false {
            let __hs_never: #output = loop {};
            return __hs_never;
        }
    };

    // The guarded async block, the same for an `async fn` and for the future `#[async_trait]` returns.
    let guard_call = guard_call(args, &p, &client, &action);
    let async_guarded = |body: &TokenStream| {
        quote! {
            #pre
            let #permit = match #guard_call.await {
                ::std::result::Result::Ok(#permit) => #p::cancellable(#permit),
                ::std::result::Result::Err(#error) => return #refuse(#error),
            };
            #[allow(unused_braces)]
            let #out: #output = async move { #fake_edge #body }.await;
            #finish_async
            #out
        }
    };

    if let Some(tail) = boxed.as_ref().and_then(|_| boxed_async_tail(&mut item)) {
        // #[async_trait]: guard inside the boxed future, around the original async block.
        silence_rebindings(&mut tail.block);
        let body = tail.block.clone();
        let guarded = async_guarded(&body.to_token_stream());
        tail.block = syn::parse_quote!({ #guarded });
        return Ok(item.into_token_stream());
    }

    let (outer, inner): (Vec<_>, Vec<_>) = item
        .attrs
        .iter()
        .partition(|a| matches!(a.style, AttrStyle::Outer));
    let vis = &item.vis;
    let body = &item.block;
    let sig_tokens = &item.sig;
    let inner_tokens = quote!(#(#inner)*);
    let guarded = if is_async {
        async_guarded(&body.to_token_stream())
    } else {
        let call = quote_spanned!(body.span()=> #p::call_once(move || { #fake_edge #body }));
        quote! {
            #pre
            let #permit = match #p::guard_blocking(&#client, #action) {
                ::std::result::Result::Ok(#permit) => #permit,
                ::std::result::Result::Err(#error) => return #refuse(#error),
            };
            #[allow(unused_braces, clippy::redundant_closure_call)]
            let #out: #output = #call;
            #finish_sync
            #out
        }
    };
    // The original brace token keeps its span, so lints such as `dead_code` still point at the user's fn.
    let mut block = TokenStream::new();
    body.brace_token.surround(&mut block, |tokens| {
        tokens.extend(inner_tokens);
        tokens.extend(guarded);
    });
    Ok(quote!(#(#outer)* #vis #sig_tokens #block))
}

/// `#[async_trait]` moves each argument into its future with `let arg = arg;`. The guard reads the arguments
/// before those statements, so an argument used only in `params(..)` would make its re-binding look unused.
fn silence_rebindings(block: &mut syn::Block) {
    for statement in &mut block.stmts {
        let Stmt::Local(local) = statement else {
            continue;
        };
        let Some(init) = &local.init else { continue };
        let Expr::Path(value) = init.expr.as_ref() else {
            continue;
        };
        let rebinds = match &local.pat {
            syn::Pat::Ident(name) => {
                value.path.is_ident(&name.ident) || value.path.is_ident("self")
            }
            _ => false,
        };
        if rebinds {
            local
                .attrs
                .push(syn::parse_quote!(#[allow(unused_variables)]));
        }
    }
}

fn guard_call(
    args: &Args,
    p: &TokenStream,
    client: &syn::Ident,
    action: &syn::Ident,
) -> TokenStream {
    match &args.wait_timeout_s {
        Some(seconds) => quote!(#p::guard_waiting(&#client, #action, #seconds)),
        None => quote!(#p::guard(&#client, #action)),
    }
}
