//! Policy analysis at load: warnings (the set still loads) about policies that cannot do what they look like
//! they do.
//!
//! What is found: a permit that an unconditional `forbid` (no `when`/`unless`, any principal and resource)
//! always overrides, and a `forbid` about an action no permit allows (it changes nothing: everything on that
//! action is denied already). An `@approval` on a `forbid` is an error, not a warning (`compile.rs`).
//!
//! Where this cannot help: conditions are not reasoned about. A forbid whose condition always holds
//! (`when { context.hour >= 0 }`), or permits whose conditions can never be satisfied together, need a solver
//! over Cedar's semantics (Cedar's symbolic compiler, `cedar-policy-symcc`, with a schema); this looks at
//! scopes and the presence of conditions only.

use std::collections::BTreeSet;
use std::fmt;

use cedar_policy::{ActionConstraint, Effect, Policy, PrincipalConstraint, ResourceConstraint};

use super::context::EntityTypes;
use super::diagnostic::PolicyDiagnostic;

/// A warning about a policy that loads but does not do what it seems to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWarning(pub PolicyDiagnostic);

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        writeln!(
            f,
            "{}:{}:{}: warning: {}",
            d.file, d.line, d.column, d.message
        )?;
        writeln!(f, "   | {}", d.source_line)?;
        write!(f, "   | {}^", " ".repeat(d.column.saturating_sub(1)))?;
        if let Some(help) = &d.help {
            write!(f, "\n   = help: {help}")?;
        }
        Ok(())
    }
}

/// One live policy as analysis sees it.
pub(crate) struct Analyzed {
    pub(crate) policy: Policy,
    pub(crate) id: String,
    /// Its byte offset in the source.
    pub(crate) start: usize,
}

/// The actions a policy's scope covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Any,
    Actions(BTreeSet<String>),
}

impl Scope {
    fn of(policy: &Policy, types: &EntityTypes) -> Scope {
        let ours = |uid: &cedar_policy::EntityUid| {
            (uid.type_name() == &types.action).then(|| uid.id().unescaped().to_owned())
        };
        match policy.action_constraint() {
            ActionConstraint::Any => Scope::Any,
            ActionConstraint::Eq(uid) => Scope::Actions(ours(&uid).into_iter().collect()),
            ActionConstraint::In(uids) => Scope::Actions(uids.iter().filter_map(ours).collect()),
        }
    }

    fn covers(&self, action: &str) -> bool {
        match self {
            Scope::Any => true,
            Scope::Actions(actions) => actions.contains(action),
        }
    }

    fn within(&self, other: &Scope) -> bool {
        match (self, other) {
            (_, Scope::Any) => true,
            (Scope::Any, Scope::Actions(_)) => false,
            (Scope::Actions(mine), Scope::Actions(theirs)) => mine.is_subset(theirs),
        }
    }
}

/// No condition and any principal and resource: it applies to every request on its actions.
fn unconditional(policy: &Policy) -> bool {
    matches!(policy.principal_constraint(), PrincipalConstraint::Any)
        && matches!(policy.resource_constraint(), ResourceConstraint::Any)
        && without_conditions(policy)
}

/// The warnings about `policies` (the live ones, in file order).
pub(crate) fn warnings(
    file: &str,
    source: &str,
    types: &EntityTypes,
    policies: &[Analyzed],
) -> Vec<PolicyWarning> {
    let scoped: Vec<(&Analyzed, Scope)> = policies
        .iter()
        .map(|p| (p, Scope::of(&p.policy, types)))
        .collect();
    let permits: Vec<&(&Analyzed, Scope)> = scoped
        .iter()
        .filter(|(p, _)| p.policy.effect() == Effect::Permit)
        .collect();
    let mut warnings = Vec::new();
    let mut warn = |at: &Analyzed, message: String, help: &str| {
        warnings.push(PolicyWarning(PolicyDiagnostic::at(
            file,
            source,
            at.start,
            message,
            Some(help.to_owned()),
        )));
    };
    for (forbid, forbid_scope) in scoped
        .iter()
        .filter(|(p, _)| p.policy.effect() == Effect::Forbid)
    {
        if unconditional(&forbid.policy) {
            for (permit, permit_scope) in &permits {
                if permit_scope.within(forbid_scope) {
                    warn(
                        permit,
                        format!(
                            "permit `{}` can never allow: forbid `{}` always applies to its actions",
                            permit.id, forbid.id
                        ),
                        "give the forbid a condition, or remove the permit",
                    );
                }
            }
        }
        let unpermitted: Vec<&String> = match forbid_scope {
            Scope::Actions(actions) => actions
                .iter()
                .filter(|action| !permits.iter().any(|(_, scope)| scope.covers(action)))
                .collect(),
            Scope::Any => Vec::new(),
        };
        for action in unpermitted {
            warn(
                forbid,
                format!(
                    "forbid `{}` is about `{action}`, which no permit allows: it changes nothing",
                    forbid.id
                ),
                "everything on an action no permit names is denied already; check the action's name",
            );
        }
    }
    warnings
}

/// Whether `policies` (the ones that can apply to one action) could ever allow it for `agent`: some permit's
/// principal scope admits the agent, and no forbid applies unconditionally to the agent (any resource, no
/// condition). Conditions are not reasoned about, so a "yes" is only "maybe"; a "no" is certain.
pub(crate) fn can_allow(
    policies: &cedar_policy::PolicySet,
    types: &EntityTypes,
    agent: &str,
) -> bool {
    let agent = types.agent_uid(agent);
    let admits = |policy: &Policy| match policy.principal_constraint() {
        PrincipalConstraint::Any => true,
        PrincipalConstraint::Eq(uid) => uid == agent,
        // Group membership and types are the entities' business: maybe.
        _ => true,
    };
    let permitted = policies
        .policies()
        .any(|p| p.effect() == Effect::Permit && admits(p));
    let always_forbidden = policies.policies().any(|p| {
        p.effect() == Effect::Forbid
            && match p.principal_constraint() {
                PrincipalConstraint::Any => true,
                PrincipalConstraint::Eq(uid) => uid == agent,
                _ => false,
            }
            && matches!(p.resource_constraint(), ResourceConstraint::Any)
            && without_conditions(p)
    });
    permitted && !always_forbidden
}

/// A policy with no `when` or `unless`.
fn without_conditions(policy: &Policy) -> bool {
    policy
        .to_json()
        .ok()
        .and_then(|est| est.get("conditions")?.as_array().map(Vec::is_empty))
        .unwrap_or(false)
}
