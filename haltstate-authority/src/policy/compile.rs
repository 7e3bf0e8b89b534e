//! Loading a policy file: parse, check the annotations Cedar does not check, re-key by `@id`, and slice the
//! set per action so a decision only evaluates the policies that can apply.

use std::collections::{HashMap, HashSet};

use cedar_policy::{ActionConstraint, Effect, Policy, PolicyId, PolicySet};
use miette::Diagnostic;

use super::context::EntityTypes;
use super::diagnostic::{PolicyDiagnostic, PolicyError};
use super::reads::ContextReads;
use super::usage::UsageReads;

/// The annotation keys we read. Cedar accepts any key, so a typo such as `@aproval` would load silently and
/// turn an approval gate into a plain permit: every other key fails the load.
const KNOWN_ANNOTATIONS: &[&str] = &["id", "reason", "approval", "mode"];
/// The most approvers one approval may ask for.
const MAX_APPROVERS: u32 = 10;

/// What we read from a policy's annotations, once, at load.
#[derive(Debug, Clone)]
pub(crate) struct PolicyMeta {
    pub(crate) id: String,
    pub(crate) reason: Option<String>,
    pub(crate) approval_required: bool,
    /// How many different operators must approve (1 for `@approval("required")`).
    pub(crate) approvals: u32,
    /// Position in the file: among several satisfied policies, the first in the file decides.
    pub(crate) order: usize,
}

/// The policies that can apply to one action.
#[derive(Debug, Clone)]
pub(crate) struct Slice {
    pub(crate) set: PolicySet,
    /// The context attributes its policies read.
    pub(crate) reads: ContextReads,
    /// The usage windows its policies read and the params they sum (`context.usage.<w>.sum.<param>`).
    pub(crate) usage: UsageReads,
}

/// A loaded, validated policy set.
#[derive(Debug)]
pub struct CompiledPolicies {
    pub(crate) types: EntityTypes,
    pub(crate) by_action: HashMap<String, Slice>,
    /// The policies with no action constraint: all that can apply to an action no policy names.
    pub(crate) unconstrained: Slice,
    pub(crate) meta: HashMap<PolicyId, PolicyMeta>,
    pub(crate) source_name: String,
    pub(crate) policy_count: usize,
    /// SHA-256 of the source, hex: what approvals and evidence cite as the set they were decided under.
    pub(crate) version: String,
    /// What analysis found that does not stop the load.
    pub(crate) warnings: Vec<super::analysis::PolicyWarning>,
    /// With policies annotated `@mode("shadow")`: the set as it would be with them live, decided beside this
    /// one and recorded, never enforced.
    pub(crate) shadow: Option<std::sync::Arc<CompiledPolicies>>,
}

impl CompiledPolicies {
    /// A set with no policies: every decision is DENY (fail closed).
    pub fn empty() -> Self {
        Self {
            types: EntityTypes::new(),
            by_action: HashMap::new(),
            unconstrained: Slice {
                set: PolicySet::new(),
                reads: ContextReads::NONE,
                usage: UsageReads::default(),
            },
            meta: HashMap::new(),
            source_name: "<empty>".to_owned(),
            policy_count: 0,
            version: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"")),
            shadow: None,
            warnings: Vec::new(),
        }
    }

    /// Parses and validates Cedar `source`; `source_name` is the file name used in diagnostics.
    pub fn compile(source_name: &str, source: &str) -> Result<Self, PolicyError> {
        let parsed: PolicySet = source
            .parse()
            .map_err(|errors: cedar_policy::ParseErrors| {
                PolicyError::Invalid(
                    errors
                        .iter()
                        .map(|e| parse_diagnostic(source_name, source, e))
                        .collect(),
                )
            })?;

        let mut diagnostics = Vec::new();
        if parsed.templates().next().is_some() {
            diagnostics.push(PolicyDiagnostic::at(
                source_name,
                source,
                source.find('?').unwrap_or(0),
                "policy templates (`?principal`, `?resource`) are not supported".into(),
                Some("write the entity out: `principal == Agent::\"billing-agent\"`".into()),
            ));
        }

        // Cedar names policies policy0, policy1, ... in file order; keep that order.
        let mut policies: Vec<(usize, &Policy)> = parsed
            .policies()
            .map(|p| (file_position(p.id()), p))
            .collect();
        policies.sort_by_key(|(position, _)| *position);

        let types = EntityTypes::new();
        let mut meta = HashMap::new();
        let mut seen_ids: HashSet<String> = HashSet::new();
        // Every policy, rekeyed, and whether it is a shadow policy.
        let mut entries: Vec<(Policy, bool)> = Vec::new();
        let mut analyzed: Vec<super::analysis::Analyzed> = Vec::new();
        let mut search_from = 0;

        for (order, policy) in policies {
            let text = policy.to_string();
            let start = source[search_from..]
                .find(&text)
                .map_or(search_from, |i| search_from + i);
            search_from = start + text.len().min(source.len() - start);
            let at = |needle: &str| start + text.find(needle).unwrap_or(0);
            let mut fail = |offset: usize, message: String, help: Option<&str>| {
                diagnostics.push(PolicyDiagnostic::at(
                    source_name,
                    source,
                    offset,
                    message,
                    help.map(str::to_owned),
                ));
            };

            for (key, _) in policy.annotations() {
                if !KNOWN_ANNOTATIONS.contains(&key) {
                    fail(
                        at(&format!("@{key}")),
                        format!("unknown annotation `@{key}`"),
                        Some(
                            "the annotations are `@id(\"...\")`, `@reason(\"...\")` and `@approval(\"required\")`",
                        ),
                    );
                }
            }
            // Agents act under canonical (lowercase) names, so a literal that is not one can never match: a
            // `forbid` on `Agent::"Bot"` would silently forbid nothing.
            for (offset, name) in agent_literals(&text) {
                if haltstate_types::canonical_name("agent", &name)
                    .ok()
                    .as_deref()
                    != Some(name.as_str())
                {
                    let hint = haltstate_types::canonical_name("agent", &name)
                        .map(|canonical| format!("write `Agent::\"{canonical}\"`"))
                        .unwrap_or_else(|_| {
                            "agent names hold ASCII letters, digits and `._-@:`".to_owned()
                        });
                    fail(
                        start + offset,
                        format!(
                            "`Agent::{name:?}` can never match: agents act under canonical (lowercase) names"
                        ),
                        Some(&hint),
                    );
                }
            }
            let id = match policy.annotation("id") {
                Some(id) if !id.trim().is_empty() => id.to_owned(),
                Some(_) => {
                    fail(at("@id"), "`@id` must not be empty".into(), None);
                    continue;
                }
                None => {
                    fail(
                        start,
                        "policy has no `@id`".into(),
                        Some(
                            "name every policy, e.g. `@id(\"refunds.small\")`, so decisions can cite it",
                        ),
                    );
                    continue;
                }
            };
            if !seen_ids.insert(id.clone()) {
                fail(
                    at("@id"),
                    format!("duplicate policy id {id:?}"),
                    Some("every `@id` must be unique"),
                );
                continue;
            }
            let approvals = match policy.annotation("approval") {
                None => 0,
                Some(_) if policy.effect() != Effect::Permit => {
                    fail(
                        at("@approval"),
                        "`@approval` only applies to `permit` policies".into(),
                        Some("a `forbid` always denies; remove the annotation"),
                    );
                    0
                }
                Some("required") => 1,
                Some(count) => match count.parse::<u32>() {
                    Ok(n @ 1..=MAX_APPROVERS) => n,
                    _ => {
                        fail(
                            at("@approval"),
                            format!("`@approval({count:?})` is not understood"),
                            Some(
                                "write `@approval(\"required\")` for one approver, or `@approval(\"2\")` (up to 10) for that many different operators",
                            ),
                        );
                        0
                    }
                },
            };
            let approval_required = approvals > 0;

            if let Err(bad) = super::usage::reads_of(policy) {
                fail(
                    at(&bad.needle),
                    bad.message,
                    Some(
                        "for example `context.usage.day.count`, `context.usage.hour.sum.amount_cents`",
                    ),
                );
            }

            let policy_id = PolicyId::new(&id);
            let rekeyed = policy.new_id(policy_id.clone());
            meta.insert(
                policy_id,
                PolicyMeta {
                    id: id.clone(),
                    reason: policy.annotation("reason").map(str::to_owned),
                    approval_required,
                    approvals,
                    order,
                },
            );
            let shadow = match policy.annotation("mode") {
                None => false,
                Some("shadow") => true,
                Some(other) => {
                    fail(
                        at("@mode"),
                        format!("`@mode({other:?})` is not understood"),
                        Some(
                            "the only mode is `@mode(\"shadow\")`: evaluated and recorded, never enforced",
                        ),
                    );
                    false
                }
            };
            if !shadow {
                analyzed.push(super::analysis::Analyzed {
                    policy: policy.clone(),
                    id: id.clone(),
                    start,
                });
            }
            entries.push((rekeyed, shadow));
        }

        if !diagnostics.is_empty() {
            return Err(PolicyError::Invalid(diagnostics));
        }

        let build = |policies: Vec<Policy>| -> Result<Slice, PolicyError> {
            let mut set = PolicySet::new();
            let mut reads = ContextReads::NONE;
            let mut usage = UsageReads::default();
            for policy in policies {
                reads = reads.union(ContextReads::of_policy(&policy));
                // A policy with a bad usage name failed the load above: here it cannot, and reading every window
                // would be the safe answer if it did.
                usage.extend(
                    super::usage::reads_of(&policy).unwrap_or_else(|_| UsageReads::every_window()),
                );
                set.add(policy).map_err(|e| {
                    PolicyError::Invalid(vec![PolicyDiagnostic::at(
                        source_name,
                        source,
                        0,
                        e.to_string(),
                        None,
                    )])
                })?;
            }
            Ok(Slice { set, reads, usage })
        };
        let sliced =
            |policies: Vec<Policy>| -> Result<(HashMap<String, Slice>, Slice), PolicyError> {
                let (by_action, unconstrained) = by_action_of(&types, policies);
                let mut slices = HashMap::with_capacity(by_action.len());
                for (action, mut policies) in by_action {
                    policies.extend(unconstrained.iter().cloned());
                    slices.insert(action, build(policies)?);
                }
                Ok((slices, build(unconstrained)?))
            };
        let version = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(source.as_bytes()));
        let shadow = if entries.iter().any(|(_, shadow)| *shadow) {
            let (by_action, unconstrained) =
                sliced(entries.iter().map(|(policy, _)| policy.clone()).collect())?;
            Some(std::sync::Arc::new(Self {
                types: types.clone(),
                by_action,
                unconstrained,
                policy_count: meta.len(),
                meta: meta.clone(),
                source_name: source_name.to_owned(),
                version: format!("{version}+shadow"),
                shadow: None,
                warnings: Vec::new(),
            }))
        } else {
            None
        };
        let live: Vec<Policy> = entries
            .into_iter()
            .filter(|(_, shadow)| !shadow)
            .map(|(policy, _)| policy)
            .collect();
        let live_count = live.len();
        let (by_action, unconstrained) = sliced(live)?;
        let warnings = super::analysis::warnings(source_name, source, &types, &analyzed);
        Ok(Self {
            warnings,
            types,
            by_action,
            unconstrained,
            policy_count: live_count,
            meta,
            source_name: source_name.to_owned(),
            version,
            shadow,
        })
    }

    /// What analysis found that does not stop the load: permits an unconditional forbid always overrides,
    /// forbids about actions no permit allows.
    pub fn warnings(&self) -> &[super::analysis::PolicyWarning] {
        &self.warnings
    }

    /// The set as it would be with its `@mode("shadow")` policies live, if it has any.
    pub fn shadow(&self) -> Option<&CompiledPolicies> {
        self.shadow.as_deref()
    }

    /// Whether a policy names `action` in its scope (`action == Action::"..."` or `in [...]`): what metrics
    /// may use as a label value, so that callers cannot grow the label set with made-up actions.
    pub fn names_action(&self, action: &str) -> bool {
        self.by_action.contains_key(action)
    }

    /// Whether any policy could ever allow `agent` to do `action` (perhaps after an approval): false when no
    /// permit's scope admits the agent, or a forbid applies to it unconditionally. Conditions are not reasoned
    /// about, so true means only "maybe"; false is certain. What a gateway may use to hide tools an agent can
    /// never use.
    ///
    /// ```
    /// use haltstate_authority::CompiledPolicies;
    ///
    /// let set = CompiledPolicies::compile("p.cedar", r#"
    ///     @id("read") permit(principal, action == Action::"files.read", resource);
    ///     @id("ops") permit(principal == Agent::"ops", action == Action::"files.delete", resource);
    ///     @id("never") forbid(principal, action == Action::"files.chmod", resource);
    ///     @id("chmod") permit(principal, action == Action::"files.chmod", resource) when { context.params.mode == "644" };
    /// "#)?;
    /// assert!(set.can_allow("files.read", "bot"));
    /// assert!(!set.can_allow("files.delete", "bot"));
    /// assert!(set.can_allow("files.delete", "ops"));
    /// assert!(!set.can_allow("files.chmod", "bot"));
    /// assert!(!set.can_allow("files.move", "bot"));
    /// # Ok::<(), haltstate_authority::PolicyError>(())
    /// ```
    pub fn can_allow(&self, action: &str, agent: &str) -> bool {
        super::analysis::can_allow(&self.slice(action).set, &self.types, agent)
    }

    /// Whether deciding `action` reads `context.usage`: then the decision is made inside the transaction that
    /// counts, so that concurrent decisions see each other's usage.
    pub fn reads_usage(&self, action: &str) -> bool {
        self.slice(action).reads.reads(super::reads::Attr::Usage)
    }

    /// The policies that can apply to `action`.
    pub(crate) fn slice(&self, action: &str) -> &Slice {
        self.by_action.get(action).unwrap_or(&self.unconstrained)
    }

    /// The set's version: the SHA-256 of its source, hex.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// How many policies the set holds.
    pub fn len(&self) -> usize {
        self.policy_count
    }

    /// Whether the set is empty (every decision is DENY).
    pub fn is_empty(&self) -> bool {
        self.policy_count == 0
    }

    /// The file (or source name) the set was loaded from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }
}

/// Every `Agent::"..."` literal in a policy's text, with its offset in that text.
fn agent_literals(text: &str) -> Vec<(usize, String)> {
    const OPEN: &str = "Agent::\"";
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(OPEN).map(|i| from + i) {
        let name_start = at + OPEN.len();
        let mut end = name_start;
        let bytes = text.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let mut end = end.min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        // `MyAgent::"x"` or `Ns::Agent::"x"` is another type.
        let other_type = text[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        if !other_type {
            found.push((at, text[name_start..end].to_owned()));
        }
        from = end;
    }
    found
}

fn file_position(id: &PolicyId) -> usize {
    let text: &str = id.as_ref();
    text.strip_prefix("policy")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

fn parse_diagnostic(
    file: &str,
    source: &str,
    error: &cedar_policy::ParseError,
) -> PolicyDiagnostic {
    let offset = error
        .labels()
        .and_then(|mut labels| labels.next())
        .map_or(0, |label| label.offset());
    let help = error.help().map(|h| h.to_string());
    PolicyDiagnostic::at(file, source, offset, error.to_string(), help)
}

/// The policies per action they name, and those that name none (which apply to every action).
fn by_action_of(
    types: &EntityTypes,
    policies: Vec<Policy>,
) -> (HashMap<String, Vec<Policy>>, Vec<Policy>) {
    let mut by_action: HashMap<String, Vec<Policy>> = HashMap::new();
    let mut unconstrained = Vec::new();
    for policy in policies {
        match policy.action_constraint() {
            ActionConstraint::Any => unconstrained.push(policy),
            ActionConstraint::Eq(uid) => {
                // Requests only ever carry `Action::"..."`; a policy on another type can never apply.
                if uid.type_name() == &types.action {
                    by_action
                        .entry(uid.id().unescaped().to_owned())
                        .or_default()
                        .push(policy);
                }
            }
            ActionConstraint::In(uids) => {
                // Without action-group entities, `action in [A, B]` holds exactly for A and B.
                for uid in uids.iter().filter(|uid| uid.type_name() == &types.action) {
                    by_action
                        .entry(uid.id().unescaped().to_owned())
                        .or_default()
                        .push(policy.clone());
                }
            }
        }
    }
    (by_action, unconstrained)
}
