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

    /// The Cedar record `{minute: {count, tokens, sum: {..}}, hour: .., day: ..}` with the windows `reads` names,
    /// and in each every param it sums present (0 when nothing was summed), so a policy reading one never fails on
    /// a missing attribute. A window no policy of the slice names cannot change its answer; Cedar turns each one
    /// built into values, a third of a usage-reading decision's context.
    pub(crate) fn expression(&self, reads: &UsageReads) -> Result<RestrictedExpression, String> {
        let window = |w: &UsageWindow| {
            let mut fields: BTreeMap<String, i64> =
                reads.sums.iter().map(|name| (name.clone(), 0)).collect();
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
        let mut windows = Vec::with_capacity(WINDOWS.len());
        for (name, figures) in WINDOWS
            .into_iter()
            .zip([&self.minute, &self.hour, &self.day])
        {
            if reads.window(name) {
                windows.push((name.to_owned(), window(figures)?));
            }
        }
        RestrictedExpression::new_record(windows).map_err(|e| e.to_string())
    }
}

/// What a slice's policies read of `context.usage`: its windows, and the params they sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UsageReads {
    /// By [`WINDOWS`]' order.
    windows: [bool; 3],
    sums: BTreeSet<String>,
}

impl UsageReads {
    /// Every window, no sums: what a policy reads whose structure cannot be inspected.
    pub(crate) fn every_window() -> Self {
        Self {
            windows: [true; 3],
            sums: BTreeSet::new(),
        }
    }

    /// Whether the window `name` is read.
    pub(crate) fn window(&self, name: &str) -> bool {
        WINDOWS
            .iter()
            .position(|w| *w == name)
            .is_some_and(|i| self.windows[i])
    }

    /// What either reads.
    pub(crate) fn extend(&mut self, other: UsageReads) {
        for (mine, theirs) in self.windows.iter_mut().zip(other.windows) {
            *mine |= theirs;
        }
        self.sums.extend(other.sums);
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

/// What a policy reads of `context.usage` (every window when its structure cannot be inspected, or when it uses
/// the usage record as a whole), or the first usage name it gets wrong.
pub(crate) fn reads_of(policy: &Policy) -> Result<UsageReads, BadUsageName> {
    let Ok(est) = policy.to_json() else {
        return Ok(UsageReads::every_window());
    };
    let mut reads = UsageReads::default();
    let mut paths = Vec::new();
    collect(&est, &mut paths);
    for path in paths {
        if path.is_empty() {
            // The context compared or passed whole: so is its usage record.
            reads.windows = [true; 3];
            continue;
        }
        let Some(rest) = path.strip_prefix(&["usage".to_owned()][..]) else {
            continue;
        };
        let Some(window) = rest.first() else {
            // `context.usage` compared or passed whole, or tested with `has`: it must be all there.
            reads.windows = [true; 3];
            continue;
        };
        let Some(index) = WINDOWS.iter().position(|w| w == window) else {
            return Err(BadUsageName {
                needle: format!("usage.{window}"),
                message: format!(
                    "`context.usage.{window}` is not a usage window; the windows are minute, hour and day"
                ),
            });
        };
        reads.windows[index] = true;
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
            reads.sums.insert(param.clone());
        }
    }
    Ok(reads)
}

/// Every attribute path under `context` the policy's JSON form reads or tests (`context.a.b` -> `[a, b]`), each
/// whole: `context.a.b` does not also count as a use of `context.a` (a use of `context.a` alone needs all of it);
/// `context` used any other way is the empty path.
fn collect(value: &Value, paths: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(object) => {
            // Reached here, `context` is not under an access: it is used whole (the empty path).
            if object.len() == 1 && object.get("Var").and_then(Value::as_str) == Some("context") {
                paths.push(Vec::new());
                return;
            }
            for (operator, v) in object {
                match (operator.as_str(), path_of(v)) {
                    // An access chain holds nothing but `context` and names: nothing more to find inside.
                    ("." | "has", Some(path)) => paths.push(path),
                    _ => collect(v, paths),
                }
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

    fn reads(when: &str) -> Result<UsageReads, BadUsageName> {
        let source = format!("permit(principal, action, resource) when {{ {when} }};");
        let policy: Policy = source.parse().unwrap_or_else(|e| panic!("{source}: {e}"));
        reads_of(&policy)
    }

    fn sums(when: &str) -> Result<BTreeSet<String>, BadUsageName> {
        reads(when).map(|reads| reads.sums)
    }

    fn windows(when: &str) -> [bool; 3] {
        reads(when).map_or_else(|e| panic!("{when}: {}", e.message), |r| r.windows)
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
    fn only_the_windows_named_are_read_and_the_record_used_whole_reads_all() {
        assert_eq!(windows("context.usage.day.count < 3"), [false, false, true]);
        assert_eq!(
            windows("context.usage.minute.count < 3 && context.usage.day has sum.rows"),
            [true, false, true]
        );
        assert_eq!(windows("context.usage has hour"), [false, true, false]);
        assert_eq!(windows("context.params.amount < 3"), [false; 3]);
        assert_eq!(windows("context has usage"), [true; 3]);
        assert_eq!(windows("context.usage == {}"), [true; 3]);
        assert_eq!(
            windows("context.usage.day.count < 3 && [context.usage].isEmpty()"),
            [true; 3]
        );
        assert_eq!(windows("context == {}"), [true; 3]);
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
