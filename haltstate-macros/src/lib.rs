//! The attribute macros of [`haltstate`](https://docs.rs/haltstate): `#[guard]`, `#[haltstate_guard]`,
//! `#[ahaltstate_guard]` and `#[openai_guard]`. Depend on `haltstate`, which re-exports them; see its docs for
//! the runnable examples.
//!
//! A guarded fn asks the authority before its body runs and reports the outcome after. It must return
//! `Result<_, E>` where `E: From<haltstate::GuardError>`: a denial, a pending approval, a completed or
//! in-progress key and the kill switch come back as `Err(E::from(GuardError::..))`, and the body never runs.
//!
//! Arguments (which are required depends on the macro):
//! - `action = "refund.create"`: the action name (`openai_guard`: `llm.<fn name>` by default).
//! - `agent_id = "billing-agent"`: who acts (default: the client's agent id).
//! - `client = EXPR`: a `HaltStateClient`, a reference, `Arc` or `LazyLock` of one, or of a
//!   `Result<HaltStateClient, GuardError>` (default: `haltstate::global()`).
//! - `idempotency_key = |order| format!("refund:{}", order.id)`: a closure whose parameters bind to the fn's
//!   parameters **by name**, or any expression in the fn's scope (`format!("x:{}", self.id)`); such a key is one
//!   operation forever. `guard`, `haltstate_guard` and `ahaltstate_guard` without one derive a key from the
//!   action, the agent and every argument's value (`skip(name)` leaves one out): the same arguments are one
//!   operation until it ends (pending, running or approved: the same one; completed, failed or expired: the next
//!   identical call is a new operation). `once` keeps a derived key one operation forever. `openai_guard` without
//!   one uses a fresh key per call: LLM calls with different prompts are different operations, and the prompt
//!   never leaves the process; give a key to make a retry find the same approval.
//! - `params(amount_cents = order.amount, card = secret(order.card))`: the only values that leave the process;
//!   `secret(..)` sends a keyed digest.
//! - `resource = EXPR`, `risk = "money"`, `fail = "open" | "closed"`,
//!   `on_approval = wait(timeout_s = 600)` (async only), `crate = path`.

mod attr;
mod expand;
mod key;

use proc_macro::TokenStream;
use quote::ToTokens;

use attr::{Args, Macro};

fn run(which: Macro, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut parsed = Args::default();
    let parser = syn::meta::parser(|meta| parsed.parse_meta(meta));
    let arg_error = syn::parse::Parser::parse(parser, args)
        .err()
        .or_else(|| parsed.require(which).err());

    let item_tokens = proc_macro2::TokenStream::from(item.clone());
    let function = match syn::parse::<syn::ItemFn>(item) {
        Ok(function) => function,
        Err(_) => {
            // Not a fn (or a fn the parser rejects): say so when it is an item we understand, and otherwise
            // emit it unchanged so the compiler reports the user's syntax error at the user's token.
            let mut out = item_tokens.clone();
            if let Ok(other) = syn::parse2::<syn::Item>(item_tokens.clone()) {
                let message = format!(
                    "#[{}] only applies to functions; put it on each method that performs a side effect",
                    which.name()
                );
                out.extend(
                    syn::Error::new_spanned(other.into_token_stream(), message)
                        .into_compile_error(),
                );
            } else if let Ok(declaration) = syn::parse2::<syn::TraitItemFn>(item_tokens)
                && declaration.default.is_none()
            {
                let message = format!(
                    "#[{}] needs a body to guard; put it on the impl's method",
                    which.name()
                );
                out.extend(syn::Error::new_spanned(declaration.sig, message).into_compile_error());
            }
            return out.into();
        }
    };
    if let Some(error) = arg_error {
        // Keep the fn as written so the IDE and the rest of the crate still see it.
        let mut out = function.into_token_stream();
        out.extend(error.into_compile_error());
        return out.into();
    }
    match expand::expand(which, &parsed, function.clone()) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let mut out = function.into_token_stream();
            out.extend(error.into_compile_error());
            out.into()
        }
    }
}

/// Guards a fn with the global client (or `client = ..`): `#[guard(action = "..", idempotency_key = |arg| ..)]`.
#[proc_macro_attribute]
pub fn guard(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Macro::Guard, args, item)
}

/// Guards a fn with a named client: `#[haltstate_guard(client = CLIENT, action = "..", agent_id = "..")]`.
#[proc_macro_attribute]
pub fn haltstate_guard(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Macro::HaltstateGuard, args, item)
}

/// The same as `haltstate_guard`, by the name the other SDKs give the async variant.
#[proc_macro_attribute]
pub fn ahaltstate_guard(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Macro::AhaltstateGuard, args, item)
}

/// Guards an LLM call: action `llm.<fn name>`, params the model and the argument names (never the prompt).
#[proc_macro_attribute]
pub fn openai_guard(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Macro::OpenaiGuard, args, item)
}
