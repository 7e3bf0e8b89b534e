//! Which context attributes a policy reads, so that a decision builds only those.
//!
//! Turning our context into Cedar's is a third of a decision (Cedar evaluates every attribute into a value), and a
//! typical slice reads two or three of the five. An attribute no policy of the slice mentions cannot change its
//! answer, so it is left out. Any use of `context` other than reading or testing a named attribute (comparing the
//! whole record, say) makes the slice read everything.

use cedar_policy::Policy;
use serde_json::Value;

/// One attribute of the context record we build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attr {
    Tenant,
    Params,
    Risk,
    Hour,
    Weekday,
    Usage,
}

impl Attr {
    const ALL: [Attr; 6] = [
        Attr::Tenant,
        Attr::Params,
        Attr::Risk,
        Attr::Hour,
        Attr::Weekday,
        Attr::Usage,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Attr::Tenant => "tenant",
            Attr::Params => "params",
            Attr::Risk => "risk",
            Attr::Hour => "hour",
            Attr::Weekday => "weekday",
            Attr::Usage => "usage",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of context attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContextReads(u8);

impl ContextReads {
    /// Every attribute: what a policy that uses `context` as a whole needs.
    pub(crate) const ALL: Self = Self(0b11_1111);
    /// No attribute.
    pub(crate) const NONE: Self = Self(0);

    /// Whether `attr` is read.
    pub(crate) fn reads(self, attr: Attr) -> bool {
        self.0 & attr.bit() != 0
    }

    /// Both sets.
    pub(crate) fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// What `policy` reads; everything when its structure cannot be inspected.
    pub(crate) fn of_policy(policy: &Policy) -> Self {
        policy.to_json().map_or(Self::ALL, |est| walk(&est))
    }

    fn named(attr: &Value) -> Self {
        // `context has a.b` names its path as a list; the first element is the context's attribute.
        let name = match attr {
            Value::Array(path) => path.first().and_then(Value::as_str),
            other => other.as_str(),
        };
        Attr::ALL
            .into_iter()
            .find(|a| Some(a.name()) == name)
            .map_or(Self::NONE, |a| Self(a.bit()))
    }
}

fn is_context(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| o.len() == 1 && o.get("Var").and_then(Value::as_str) == Some("context"))
}

/// Walks a policy's JSON form (Cedar's EST): `{".": {"left": .., "attr": ..}}` reads an attribute,
/// `{"has": {"left": .., "attr": ..}}` tests one, `{"Var": "context"}` anywhere else is the whole record.
fn walk(value: &Value) -> ContextReads {
    match value {
        Value::Object(object) => {
            if is_context(value) {
                return ContextReads::ALL;
            }
            for operator in [".", "has"] {
                let access = object.get(operator).and_then(Value::as_object);
                if let Some((left, attr)) =
                    access.and_then(|a| Some((a.get("left")?, a.get("attr")?)))
                    && is_context(left)
                {
                    return ContextReads::named(attr);
                }
            }
            object
                .values()
                .fold(ContextReads::NONE, |reads, v| reads.union(walk(v)))
        }
        Value::Array(items) => items
            .iter()
            .fold(ContextReads::NONE, |reads, v| reads.union(walk(v))),
        _ => ContextReads::NONE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(when: &str) -> ContextReads {
        let source = format!("permit(principal, action, resource) when {{ {when} }};");
        let policy: Policy = source.parse().unwrap_or_else(|e| panic!("{source}: {e}"));
        ContextReads::of_policy(&policy)
    }

    fn only(attrs: &[Attr]) -> ContextReads {
        attrs
            .iter()
            .fold(ContextReads::NONE, |r, a| r.union(ContextReads(a.bit())))
    }

    #[test]
    fn named_reads_and_tests_are_found_at_any_depth() {
        assert_eq!(reads("true"), ContextReads::NONE);
        assert_eq!(reads("context.hour < 4"), only(&[Attr::Hour]));
        assert_eq!(
            reads(
                "context.params has amount && context.params.amount <= 100 && context.risk == \"money\""
            ),
            only(&[Attr::Params, Attr::Risk])
        );
        assert_eq!(reads("context has weekday"), only(&[Attr::Weekday]));
        assert_eq!(reads("context has params.amount"), only(&[Attr::Params]));
        assert_eq!(
            reads("context[\"tenant\"] == \"acme\""),
            only(&[Attr::Tenant])
        );
        assert_eq!(
            reads("if context.hour > 3 then [context.weekday].contains(1) else false"),
            only(&[Attr::Hour, Attr::Weekday])
        );
        // An attribute we never build reads nothing (Cedar's own error on it still denies).
        assert_eq!(reads("context.nope == 1"), ContextReads::NONE);
    }

    #[test]
    fn the_whole_record_used_any_other_way_reads_everything() {
        assert_eq!(reads("context == {}"), ContextReads::ALL);
        assert_eq!(reads("[context].isEmpty()"), ContextReads::ALL);
        assert_eq!(
            reads("context.hour < 4 || context != {}"),
            ContextReads::ALL
        );
    }

    #[test]
    fn a_string_that_looks_like_context_is_not_a_read() {
        assert_eq!(reads("principal == Agent::\"context\""), ContextReads::NONE);
        assert_eq!(reads("resource has context"), ContextReads::NONE);
    }
}
