//! Usage, applied: the decision of an action whose policies read `context.usage` is made here, in the
//! transaction, from the agent's usage as stored; an allowed claim charges it; an error gives it back.

use std::borrow::Cow;
use std::fmt::Write;

use haltstate_types::ActionRequest;
use serde_json::Value;

use crate::error::Result;
use crate::ops::judgement::Judgement;
use crate::policy::{Usage, UsageWindow};
use crate::policy_decision::PolicyDecision;
use crate::state_rows::{Charge, KeyRecord};
use crate::store::tx::Tx;
use crate::store::usage::SPANS;

/// Policy's decision: as judged on the caller's thread, or now, from the usage stored (without the charge
/// `own`, the key's earlier claim, which this guard would replace). Answers the usage it read, if it did.
pub(crate) fn decide<'j>(
    tx: &mut dyn Tx,
    tenant: &str,
    action: &ActionRequest,
    judgement: &'j Judgement,
    own: Option<&Charge>,
) -> Result<(Cow<'j, PolicyDecision>, Option<Usage>)> {
    match judgement {
        Judgement::Decided(policy) => Ok((Cow::Borrowed(policy), None)),
        Judgement::WithUsage(engine) => {
            let mut usage = tx.usage(tenant, &action.agent_id, &action.action)?;
            if let Some(own) = own {
                without(&mut usage, own, tx);
            }
            let now = tx.now();
            // Usage sums count integers: a fractional param would be compared by policy yet never summed.
            if let Some(name) = fractional_param(action) {
                let reason = format!(
                    "usage limits count integer params only: send {name:?} as an integer in minor units"
                );
                return Ok((Cow::Owned(PolicyDecision::deny(reason)), Some(usage)));
            }
            let decided = engine.decide_with_usage(tenant, action, now, Some(&usage));
            Ok((Cow::Owned(decided), Some(usage)))
        }
    }
}

/// What policy decided from, for the evidence: canonical (RFC 8785) JSON of the params, resource, risk and
/// (when read) usage. A replay decides the record again from it.
///
/// Only the params and the usage sums (keys the caller names) go through the canonicalizer: the rest has fixed
/// keys, written here in their sorted order, strings, and integers. Building the whole document as a `Value` and
/// canonicalizing it was 8% of a usage-reading action's CPU (a test compares both forms on arbitrary input).
pub(crate) fn context(action: &ActionRequest, usage: Option<&Usage>) -> Option<String> {
    let mut out = String::with_capacity(160);
    out.push_str(r#"{"params":"#);
    out.push_str(&serde_jcs::to_string(&action.params).ok()?);
    out.push_str(r#","resource":"#);
    out.push_str(&serde_json::to_string(&action.resource).ok()?);
    out.push_str(r#","risk":"#);
    out.push_str(&serde_json::to_string(&action.risk).ok()?);
    if let Some(usage) = usage {
        out.push_str(r#","usage":{"day":"#);
        window(&mut out, &usage.day)?;
        out.push_str(r#","hour":"#);
        window(&mut out, &usage.hour)?;
        out.push_str(r#","minute":"#);
        window(&mut out, &usage.minute)?;
        out.push('}');
    }
    out.push('}');
    Some(out)
}

/// One window of [`context`]: `{"count", "sum", "tokens"}`, canonical.
fn window(out: &mut String, window: &UsageWindow) -> Option<()> {
    out.push_str(r#"{"count":"#);
    count(out, window.count)?;
    out.push_str(r#","sum":"#);
    out.push_str(&serde_jcs::to_string(&window.sums).ok()?);
    out.push_str(r#","tokens":"#);
    count(out, window.tokens)?;
    out.push('}');
    Some(())
}

/// A count in canonical form: its digits up to 2^53; above, RFC 8785 writes the nearest double.
fn count(out: &mut String, n: u64) -> Option<()> {
    const EXACT: u64 = 1 << 53;
    if n <= EXACT {
        write!(out, "{n}").ok()
    } else {
        out.push_str(&serde_jcs::to_string(&n).ok()?);
        Some(())
    }
}

/// Takes `charge` out of the windows that still hold it.
fn without(usage: &mut Usage, charge: &Charge, tx: &dyn Tx) {
    let now = tx.now();
    for span in &SPANS {
        if span.bucket(charge.at) >= span.first(now)
            && let Some(window) = usage.window_mut(span.window)
        {
            window.add(&charge.figures, -1);
        }
    }
}

/// The first top-level param holding a number that is not an integer.
fn fractional_param(action: &ActionRequest) -> Option<&str> {
    action.params.iter().find_map(|(name, value)| match value {
        Value::Number(n) if n.as_i64().is_none() => Some(name.as_str()),
        _ => None,
    })
}

/// What one allowed `action` adds: a count of one and the value of each integer param.
fn figures(action: &ActionRequest) -> UsageWindow {
    UsageWindow {
        count: 1,
        tokens: 0,
        sums: action
            .params
            .iter()
            .filter_map(|(name, value)| match value {
                Value::Number(n) => n.as_i64().map(|n| (name.clone(), n)),
                _ => None,
            })
            .collect(),
    }
}

/// Charges a claim the guard granted, unless the key's earlier claim is still charged.
pub(crate) fn charge_claim(
    tx: &mut dyn Tx,
    tenant: &str,
    action: &ActionRequest,
    record: &mut KeyRecord,
) -> Result<()> {
    if record.charged.is_some() {
        return Ok(());
    }
    let charge = Charge {
        at: tx.now(),
        figures: figures(action),
    };
    tx.charge_usage(tenant, &action.agent_id, &action.action, &charge, 1)?;
    record.charged = Some(charge);
    Ok(())
}

/// Gives a failed or aborted claim's charge back.
pub(crate) fn give_back(tx: &mut dyn Tx, tenant: &str, record: &mut KeyRecord) -> Result<()> {
    if let Some(charge) = record.charged.take() {
        tx.charge_usage(tenant, &record.agent_id, &record.action, &charge, -1)?;
    }
    Ok(())
}

/// Adds the tokens an LLM call's outcome reported to its claim's charge.
pub(crate) fn add_tokens(
    tx: &mut dyn Tx,
    tenant: &str,
    record: &mut KeyRecord,
    tokens: u64,
) -> Result<()> {
    let Some(charge) = record.charged.as_mut() else {
        return Ok(());
    };
    let added = Charge {
        at: charge.at,
        figures: UsageWindow {
            tokens,
            ..UsageWindow::default()
        },
    };
    tx.charge_usage(tenant, &record.agent_id, &record.action, &added, 1)?;
    charge.figures.tokens = charge.figures.tokens.saturating_add(tokens);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The context as the canonicalizer makes it from the whole document: what [`context`] must equal.
    fn reference(action: &ActionRequest, usage: Option<&Usage>) -> Option<String> {
        let window = |w: &UsageWindow| serde_json::json!({"count": w.count, "tokens": w.tokens, "sum": w.sums});
        let mut context = serde_json::json!({
            "params": action.params,
            "resource": action.resource,
            "risk": action.risk,
        });
        if let (Some(usage), Some(fields)) = (usage, context.as_object_mut()) {
            fields.insert(
                "usage".into(),
                serde_json::json!({
                    "minute": window(&usage.minute),
                    "hour": window(&usage.hour),
                    "day": window(&usage.day),
                }),
            );
        }
        serde_jcs::to_string(&context).ok()
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(any::<String>(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn usage_window() -> impl Strategy<Value = UsageWindow> {
        (
            any::<u64>(),
            any::<u64>(),
            prop::collection::btree_map(any::<String>(), any::<i64>(), 0..4),
        )
            .prop_map(|(count, tokens, sums)| UsageWindow {
                count,
                tokens,
                sums,
            })
    }

    proptest! {
        #[test]
        fn the_context_is_the_canonical_form_of_the_whole_document(
            params in prop::collection::vec((any::<String>(), value()), 0..5),
            resource in proptest::option::of(any::<String>()),
            risk in proptest::option::of(any::<String>()),
            usage in proptest::option::of((usage_window(), usage_window(), usage_window())),
        ) {
            let mut action = ActionRequest::new("agent", "act");
            action.params = params.into_iter().collect();
            action.resource = resource;
            action.risk = risk;
            let usage = usage.map(|(minute, hour, day)| Usage { minute, hour, day });
            let made = context(&action, usage.as_ref());
            prop_assert!(made.is_some());
            prop_assert_eq!(made, reference(&action, usage.as_ref()));
        }
    }
}
