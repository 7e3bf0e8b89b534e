//! Stage one: the attribute's arguments, parsed into a plain struct, with every error on the offending token.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, LitInt, LitStr, Path};

/// Which macro is expanding: they share one parser and differ in what is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Macro {
    Guard,
    HaltstateGuard,
    AhaltstateGuard,
    OpenaiGuard,
}

impl Macro {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Macro::Guard => "guard",
            Macro::HaltstateGuard => "haltstate_guard",
            Macro::AhaltstateGuard => "ahaltstate_guard",
            Macro::OpenaiGuard => "openai_guard",
        }
    }
}

const KEYS: &str = "action, agent_id, client, idempotency_key, once, params(..), skip(..), resource, risk, fail, on_approval, crate";

/// One `params(name = expr)` entry.
pub(crate) struct Param {
    pub(crate) name: Ident,
    pub(crate) value: Expr,
    pub(crate) secret: bool,
}

/// The parsed arguments.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) action: Option<LitStr>,
    pub(crate) agent_id: Option<LitStr>,
    pub(crate) client: Option<Expr>,
    pub(crate) key: Option<Expr>,
    pub(crate) params: Option<Vec<Param>>,
    /// Arguments left out of a derived key.
    pub(crate) skip: Option<Vec<Ident>>,
    /// A derived key names one operation forever, not one until it ends.
    pub(crate) once: Option<Span>,
    pub(crate) resource: Option<Expr>,
    pub(crate) risk: Option<LitStr>,
    pub(crate) fail_open: Option<(bool, Span)>,
    pub(crate) wait_timeout_s: Option<LitInt>,
    pub(crate) krate: Option<Path>,
}

fn once<T>(
    slot: &mut Option<T>,
    value: T,
    meta: &ParseNestedMeta<'_>,
    key: &str,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(meta.error(format!("`{key}` is given twice")));
    }
    *slot = Some(value);
    Ok(())
}

fn string_literal(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<LitStr> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` must be a string literal, e.g. {key} = \"...\""),
        )),
    }
}

/// `refund.create`, `llm.ask`, `data:export`: letters, digits and `._-:/`, starting with a letter, digit or `_`.
pub(crate) fn valid_action(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'))
}

impl Args {
    pub(crate) fn parse_meta(&mut self, meta: ParseNestedMeta<'_>) -> syn::Result<()> {
        let Some(key) = meta.path.get_ident().map(Ident::to_string) else {
            return Err(meta.error(format!("unknown argument; expected one of: {KEYS}")));
        };
        match key.as_str() {
            "once" => {
                if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                    return Err(meta.error("`once` takes no value: write `once`"));
                }
                once(&mut self.once, meta.path.span(), &meta, "once")
            }
            "action" => {
                let lit = string_literal(&meta, "action")?;
                if !valid_action(&lit.value()) {
                    return Err(syn::Error::new(
                        lit.span(),
                        "an action is a dotted name of letters, digits and `._-:/`, e.g. \"refund.create\"",
                    ));
                }
                once(&mut self.action, lit, &meta, "action")
            }
            "agent_id" => {
                let lit = string_literal(&meta, "agent_id")?;
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new(lit.span(), "`agent_id` must not be empty"));
                }
                once(&mut self.agent_id, lit, &meta, "agent_id")
            }
            "client" => {
                let expr: Expr = meta.value()?.parse()?;
                once(&mut self.client, expr, &meta, "client")
            }
            "idempotency_key" => {
                let expr: Expr = meta.value()?.parse()?;
                once(&mut self.key, expr, &meta, "idempotency_key")
            }
            "resource" => {
                let expr: Expr = meta.value()?.parse()?;
                once(&mut self.resource, expr, &meta, "resource")
            }
            "risk" => {
                let lit = string_literal(&meta, "risk")?;
                once(&mut self.risk, lit, &meta, "risk")
            }
            "fail" => {
                let lit = string_literal(&meta, "fail")?;
                let open = match lit.value().as_str() {
                    "open" => true,
                    "closed" => false,
                    _ => {
                        return Err(syn::Error::new(
                            lit.span(),
                            "`fail` is \"open\" or \"closed\"",
                        ));
                    }
                };
                once(&mut self.fail_open, (open, lit.span()), &meta, "fail")
            }
            "on_approval" => {
                let expr: Expr = meta.value()?.parse()?;
                let timeout = parse_wait(&expr)?;
                once(&mut self.wait_timeout_s, timeout, &meta, "on_approval")
            }
            "crate" => {
                let value = meta.value()?;
                let path: Path = if value.peek(LitStr) {
                    value.parse::<LitStr>()?.parse()?
                } else {
                    value.parse()?
                };
                once(&mut self.krate, path, &meta, "crate")
            }
            "params" => {
                let mut params = Vec::new();
                meta.parse_nested_meta(|inner| {
                    let name = inner
                        .path
                        .get_ident()
                        .cloned()
                        .ok_or_else(|| inner.error("a param is `name = expression`"))?;
                    if params.iter().any(|p: &Param| p.name == name) {
                        return Err(inner.error(format!("param `{name}` is given twice")));
                    }
                    let value: Expr = inner.value()?.parse()?;
                    let (value, secret) = unwrap_secret(value);
                    params.push(Param {
                        name,
                        value,
                        secret,
                    });
                    Ok(())
                })?;
                once(&mut self.params, params, &meta, "params")
            }
            "skip" => {
                let mut skipped: Vec<Ident> = Vec::new();
                meta.parse_nested_meta(|inner| {
                    let name =
                        inner.path.get_ident().cloned().ok_or_else(|| {
                            inner.error("`skip` lists parameter names: skip(a, b)")
                        })?;
                    if skipped.contains(&name) {
                        return Err(inner.error(format!("`{name}` is skipped twice")));
                    }
                    skipped.push(name);
                    Ok(())
                })?;
                once(&mut self.skip, skipped, &meta, "skip")
            }
            _ => Err(syn::Error::new(
                meta.path.span(),
                format!("unknown argument `{key}`; expected one of: {KEYS}"),
            )),
        }
    }

    /// Checks what each macro requires; errors point at the attribute.
    pub(crate) fn require(&self, which: Macro) -> syn::Result<()> {
        let missing = |what: &str| {
            Err(syn::Error::new(
                Span::call_site(),
                format!("#[{}] needs `{what}`", which.name()),
            ))
        };
        match which {
            Macro::Guard => {
                if self.action.is_none() {
                    return missing("action = \"...\"");
                }
            }
            Macro::HaltstateGuard | Macro::AhaltstateGuard => {
                if self.client.is_none() {
                    return missing("client = ...");
                }
                if self.action.is_none() {
                    return missing("action = \"...\"");
                }
                if self.agent_id.is_none() {
                    return missing("agent_id = \"...\"");
                }
            }
            Macro::OpenaiGuard => {
                if self.client.is_none() {
                    return missing("client = ...");
                }
                if self.agent_id.is_none() {
                    return missing("agent_id = \"...\"");
                }
            }
        }
        Ok(())
    }
}

/// `secret(expr)` marks a param as secret.
fn unwrap_secret(value: Expr) -> (Expr, bool) {
    if let Expr::Call(call) = &value
        && let Expr::Path(path) = call.func.as_ref()
        && path.path.is_ident("secret")
        && call.args.len() == 1
        && let Some(inner) = call.args.first()
    {
        return (inner.clone(), true);
    }
    (value, false)
}

/// `wait(timeout_s = N)`.
fn parse_wait(expr: &Expr) -> syn::Result<LitInt> {
    let error = || syn::Error::new_spanned(expr, "expected `on_approval = wait(timeout_s = N)`");
    let Expr::Call(call) = expr else {
        return Err(error());
    };
    let Expr::Path(func) = call.func.as_ref() else {
        return Err(error());
    };
    if !func.path.is_ident("wait") || call.args.len() != 1 {
        return Err(error());
    }
    let Some(Expr::Assign(assign)) = call.args.first() else {
        return Err(error());
    };
    let Expr::Path(name) = assign.left.as_ref() else {
        return Err(error());
    };
    if !name.path.is_ident("timeout_s") {
        return Err(error());
    }
    match assign.right.as_ref() {
        Expr::Lit(ExprLit {
            lit: Lit::Int(n), ..
        }) => Ok(n.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            "`timeout_s` is a whole number of seconds",
        )),
    }
}
