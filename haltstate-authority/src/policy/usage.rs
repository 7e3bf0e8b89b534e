//! Usage in the policy context: `context.usage.<window>.<figure>`, the allowed actions of the same tenant, agent
//! and action over a rolling window, counted by the authority in the transaction that decides.
//!
//! Windows: `minute`, `hour`, `day`. Figures: `count` (allowed actions), `tokens` (LLM tokens reported by their
//! outcomes) and `sum.<param>` (the sum of an integer param). Any other name is a load error: Cedar would read a
//! misspelt `context.usage.day.cuont` as an error at every decision, and a misspelt window in a `forbid` would
//! deny everything (fail closed, but not what was meant).

use std::collections::{BTreeMap, BTreeSet};

use cedar_policy::{Policy, RestrictedExpression};
use serde_json::Value;

/// The windows, as policies name them.
pub const WINDOWS: [&str; 3] = ["minute", "hour", "day"];
const FIGURES: [&str; 3] = ["count", "tokens", "sum"];

/// One window's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageWindow {
    /// Allowed actions.
    pub count: u64,
    /// LLM tokens their outcomes reported.
    pub tokens: u64,
    /// Per integer param, the sum over the allowed actions.
    pub sums: BTreeMap<String, i64>,
}

impl UsageWindow {
    /// Adds (or, with `sign` -1, takes back) one action's figures.
    pub(crate) fn add(&mut self, other: &UsageWindow, sign: i64) {
        self.count = apply(self.count, other.count, sign);
        self.tokens = apply(self.tokens, other.tokens, sign);
        for (name, value) in &other.sums {
            let delta = value.saturating_mul(sign);
            // A window sums every bucket of its span into the same few names: look up before allocating one.
            match self.sums.get_mut(name) {
                Some(sum) => *sum = sum.saturating_add(delta),
                None => {
                    self.sums.insert(name.clone(), delta);
                }
            }
        }
    }
}

fn apply(value: u64, delta: u64, sign: i64) -> u64 {
    if sign < 0 {
        value.saturating_sub(delta)
    } else {
        value.saturating_add(delta)
    }
}

/// What one tenant's agent did with one action over each window, as a decision sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// The last minute.
    pub minute: UsageWindow,
    /// The last hour.
    pub hour: UsageWindow,
    /// The last day.
    pub day: UsageWindow,
}

impl Usage {
    /// The window named `name`.
    pub(crate) fn window_mut(&mut self, name: &str) -> Option<&mut UsageWindow> {
        match name {
            "minute" => Some(&mut self.minute),
            "hour" => Some(&mut self.hour),
            "day" => Some(&mut self.day),
            _ => None,
        }
    }

    /// The Cedar record `{minute: {count, tokens, sum: {..}}, hour: .., day: ..}`, with every param in `sums`
    /// present (0 when nothing was summed), so a policy reading one never fails on a missing attribute.
    pub(crate) fn expression(
        &self,
        sums: &BTreeSet<String>,
    ) -> Result<RestrictedExpression, String> {
        let window = |w: &UsageWindow| {
            let mut fields: BTreeMap<String, i64> =
                sums.iter().map(|name| (name.clone(), 0)).collect();
            fields.extend(w.sums.iter().map(|(k, v)| (k.clone(), *v)));
            let sum = RestrictedExpression::new_record(
                fields
                    .into_iter()
                    .map(|(k, v)| (k, RestrictedExpression::new_long(v))),
            )
            .map_err(|e| e.to_string())?;
            RestrictedExpression::new_record([
                ("count".to_owned(), long(w.count)),
                ("tokens".to_owned(), long(w.tokens)),
                ("sum".to_owned(), sum),
            ])
            .map_err(|e| e.to_string())
        };
        RestrictedExpression::new_record([
            ("minute".to_owned(), window(&self.minute)?),
            ("hour".to_owned(), window(&self.hour)?),
            ("day".to_owned(), window(&self.day)?),
        ])
        .map_err(|e| e.to_string())
    }
}

fn long(n: u64) -> RestrictedExpression {
    RestrictedExpression::new_long(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A `context.usage...` path a policy names that is not one: the text to point at and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadUsageName {
    pub(crate) needle: String,
    pub(crate) message: String,
}

/// The params a policy sums (`context.usage.<w>.sum.<param>`), or the first usage name it gets wrong.
pub(crate) fn sums_of(policy: &Policy) -> Result<BTreeSet<String>, BadUsageName> {
    let mut sums = BTreeSet::new();
    let Ok(est) = policy.to_json() else {
        return Ok(sums);
    };
    let mut paths = Vec::new();
    collect(&est, &mut paths);
    for path in paths {
        let Some(rest) = path.strip_prefix(&["usage".to_owned()][..]) else {
            continue;
        };
        let Some(window) = rest.first() else {
            continue;
        };
        if !WINDOWS.contains(&window.as_str()) {
            return Err(BadUsageName {
                needle: format!("usage.{window}"),
                message: format!(
                    "`context.usage.{window}` is not a usage window; the windows are minute, hour and day"
                ),
            });
        }
        let Some(figure) = rest.get(1) else {
            continue;
        };
        if !FIGURES.contains(&figure.as_str()) {
            return Err(BadUsageName {
                needle: format!("{window}.{figure}"),
                message: format!(
                    "`context.usage.{window}.{figure}` is not a usage figure; the figures are count, tokens and sum.<param>"
                ),
            });
        }
        if figure == "sum"
            && let Some(param) = rest.get(2)
        {
            sums.insert(param.clone());
        }
    }
    Ok(sums)
}

/// Every attribute path under `context` the policy's JSON form reads or tests (`context.a.b` -> `[a, b]`).
fn collect(value: &Value, paths: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(object) => {
            for operator in [".", "has"] {
                if let Some(path) = object.get(operator).and_then(path_of) {
                    paths.push(path);
                }
            }
            for v in object.values() {
                collect(v, paths);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, paths)),
        _ => {}
    }
}

/// The path of one access `{"left": .., "attr": ..}` when its left side is `context` or another access of it.
fn path_of(access: &Value) -> Option<Vec<String>> {
    let access = access.as_object()?;
    let (left, attr) = (access.get("left")?, access.get("attr")?);
    let mut path = if left.get("Var").and_then(Value::as_str) == Some("context") {
        Vec::new()
    } else {
        path_of(left.get(".")?)?
    };
    match attr {
        Value::String(name) => path.push(name.clone()),
        // `context has a.b.c` names its path as a list.
        Value::Array(names) => {
            path.extend(names.iter().filter_map(|n| n.as_str().map(str::to_owned)))
        }
        _ => return None,
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(when: &str) -> Result<BTreeSet<String>, BadUsageName> {
        let source = format!("permit(principal, action, resource) when {{ {when} }};");
        let policy: Policy = source.parse().unwrap_or_else(|e| panic!("{source}: {e}"));
        sums_of(&policy)
    }

    #[test]
    fn summed_params_are_found_and_other_figures_pass() {
        assert_eq!(
            sums(
                "context.usage.day.sum.amount_cents + context.params.amount_cents <= 50000 && context.usage.hour.count < 20"
            ),
            Ok(["amount_cents".to_owned()].into())
        );
        assert_eq!(sums("context.usage.minute.tokens < 5"), Ok(BTreeSet::new()));
        assert_eq!(
            sums("context.usage.day has sum.rows"),
            Ok(["rows".to_owned()].into())
        );
    }

    #[test]
    fn a_misspelt_window_or_figure_is_named() {
        assert_eq!(
            sums("context.usage.week.count < 3").unwrap_err().needle,
            "usage.week"
        );
        assert_eq!(
            sums("context.usage.day.cuont < 3").unwrap_err().needle,
            "day.cuont"
        );
    }
}
