//! Who acts: identity names, and the set of agents an agent key may act as.
//!
//! Every identity (an agent, an operator) is a **canonical name**: ASCII letters, digits and `. _ - @ :`,
//! starting with a letter or digit, at most [`MAX_NAME_LEN`](crate::limits::MAX_NAME_LEN) bytes, compared
//! case-insensitively (stored and shown in lowercase). Anything else (a space, a control, format or zero-width
//! character, a homoglyph from another script) is refused rather than normalised, so `"bo\u{200b}t"` can never
//! pass for `bot`, and `"Bot"` always is `bot`.
//!
//! An agent key acts as the agents of its [`AgentSet`], fixed when the key is created: exact names, prefixes
//! (`billing-*`) or every agent of the tenant (`*`).
//!
//! ```
//! use haltstate_types::{AgentSet, canonical_name};
//!
//! assert_eq!(canonical_name("agent_id", "Billing-Agent")?, "billing-agent");
//! assert!(canonical_name("agent_id", "bo\u{200b}t").is_err());
//!
//! let set = AgentSet::parse(["billing-*", "exporter"])?;
//! assert!(set.contains("billing-eu"));
//! assert!(!set.contains("billing"));
//! assert_eq!(set.default_agent(), Some("exporter"));
//! # Ok::<(), haltstate_types::RequestError>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{RequestError, Result};
use crate::limits::MAX_NAME_LEN;

/// The characters an identity name may hold besides ASCII letters and digits.
pub const NAME_PUNCTUATION: &str = "._-@:";

/// The placeholder the official SDKs send when the caller names no agent: it means the key's own agent.
pub const PLACEHOLDER_AGENT: &str = "default";

/// The canonical (lowercase) form of an identity name, or why `value` is not one.
pub fn canonical_name(field: &str, value: &str) -> Result<String> {
    let refuse = |why: &str| {
        Err(RequestError::Invalid(format!(
            "{field} {}: {why}",
            shown(value)
        )))
    };
    if value.is_empty() {
        return Err(RequestError::Invalid(format!("{field} must not be empty")));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(RequestError::Invalid(format!(
            "{field} must be at most {MAX_NAME_LEN} bytes"
        )));
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return refuse("a name starts with a letter or digit");
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !NAME_PUNCTUATION.contains(*c))
    {
        return refuse(&format!(
            "{} is not allowed; names hold ASCII letters, digits and {NAME_PUNCTUATION}",
            describe(bad)
        ));
    }
    Ok(value.to_ascii_lowercase())
}

/// A refused value as the error shows it: escaped, and cut, so an error never carries a control character or a
/// kilobyte of input.
fn shown(value: &str) -> String {
    let cut: String = value.chars().take(40).collect();
    let more = if cut.len() < value.len() { "…" } else { "" };
    format!("{:?}{more}", cut)
}

fn describe(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("{c:?}")
    } else {
        format!("U+{:04X}", u32::from(c))
    }
}

/// One entry of an agent set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AgentPattern {
    /// This agent.
    Exact(String),
    /// Every agent whose name starts with this (written `prefix*`).
    Prefix(String),
    /// Every agent of the tenant (written `*`).
    Any,
}

impl AgentPattern {
    /// Parses `name`, `prefix*` or `*`.
    pub fn parse(text: &str) -> Result<Self> {
        if text == "*" {
            return Ok(AgentPattern::Any);
        }
        match text.strip_suffix('*') {
            Some(prefix) => canonical_name("agent prefix", prefix).map(AgentPattern::Prefix),
            None => canonical_name("agent", text).map(AgentPattern::Exact),
        }
    }

    /// Whether the canonical `agent` matches.
    pub fn matches(&self, agent: &str) -> bool {
        match self {
            AgentPattern::Exact(name) => name == agent,
            AgentPattern::Prefix(prefix) => agent.starts_with(prefix.as_str()),
            AgentPattern::Any => true,
        }
    }
}

impl fmt::Display for AgentPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentPattern::Exact(name) => f.write_str(name),
            AgentPattern::Prefix(prefix) => write!(f, "{prefix}*"),
            AgentPattern::Any => f.write_str("*"),
        }
    }
}

/// The agents an agent key may act as, fixed when the key is created.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentSet(Vec<AgentPattern>);

/// At most this many patterns in one set.
pub const MAX_AGENT_PATTERNS: usize = 32;

impl AgentSet {
    /// The set of one agent.
    pub fn one(agent: &str) -> Result<Self> {
        Ok(Self(vec![AgentPattern::Exact(canonical_name(
            "agent", agent,
        )?)]))
    }

    /// Parses patterns (`name`, `prefix*`, `*`); duplicates are dropped, an empty set is refused.
    pub fn parse<I, S>(patterns: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = Vec::new();
        for text in patterns {
            let pattern = AgentPattern::parse(text.as_ref().trim())?;
            if !set.contains(&pattern) {
                set.push(pattern);
            }
        }
        if set.is_empty() {
            return Err(RequestError::Invalid(
                "an agent key needs at least one agent".into(),
            ));
        }
        if set.len() > MAX_AGENT_PATTERNS {
            return Err(RequestError::Invalid(format!(
                "an agent key may name at most {MAX_AGENT_PATTERNS} agents or prefixes"
            )));
        }
        Ok(Self(set))
    }

    /// The patterns, in the order given.
    pub fn patterns(&self) -> &[AgentPattern] {
        &self.0
    }

    /// Whether the canonical `agent` is in the set.
    pub fn contains(&self, agent: &str) -> bool {
        self.0.iter().any(|pattern| pattern.matches(agent))
    }

    /// The agent a request that names none acts as: the first exact name of the set.
    pub fn default_agent(&self) -> Option<&str> {
        self.0.iter().find_map(|pattern| match pattern {
            AgentPattern::Exact(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The agent a request acts as: `claimed` when it is in the set; the set's default agent when the request
    /// names none (or the official SDKs' placeholder `default`, unless the set holds an agent of that name).
    pub fn act_as(&self, claimed: Option<&str>) -> Result<String> {
        let claimed = claimed.filter(|c| !c.is_empty());
        let placeholder =
            claimed.is_some_and(|c| c.eq_ignore_ascii_case(PLACEHOLDER_AGENT) && !self.contains(c));
        match claimed {
            Some(name) if !placeholder => {
                let agent = canonical_name("agent_id", name)?;
                if self.contains(&agent) {
                    Ok(agent)
                } else {
                    Err(RequestError::AgentMismatch {
                        agent,
                        allowed: self.to_string(),
                    })
                }
            }
            _ => {
                self.default_agent()
                    .map(str::to_owned)
                    .ok_or_else(|| RequestError::AgentMismatch {
                        agent: PLACEHOLDER_AGENT.to_owned(),
                        allowed: self.to_string(),
                    })
            }
        }
    }

    /// The patterns as text, for storage and display.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for AgentSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_strings().join(","))
    }
}

impl Serialize for AgentSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_strings().serialize(s)
    }
}

impl<'de> Deserialize<'de> for AgentSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let patterns = Vec::<String>::deserialize(d)?;
        if patterns.is_empty() {
            // An operator key's set.
            return Ok(AgentSet::default());
        }
        AgentSet::parse(patterns).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercased_and_everything_outside_the_set_is_refused() {
        assert_eq!(canonical_name("n", "Bot").unwrap(), "bot");
        assert_eq!(
            canonical_name("n", "alice@example.com").unwrap(),
            "alice@example.com"
        );
        for bad in [
            "",
            "bo\u{200b}t",
            "b\u{202e}ot",
            "bot\n",
            "bot ",
            " bot",
            "-bot",
            "bøt",
            "bot*",
            "a/b",
            "ᏴOT",
        ] {
            assert!(canonical_name("n", bad).is_err(), "{bad:?} was accepted");
        }
        assert!(canonical_name("n", &"a".repeat(MAX_NAME_LEN + 1)).is_err());
        let error = canonical_name("agent_id", "bo\u{200b}t")
            .unwrap_err()
            .to_string();
        assert!(error.contains("U+200B"), "{error}");
    }

    #[test]
    fn sets_match_exact_names_prefixes_and_any() {
        let set = AgentSet::parse(["Billing-*", "exporter"]).unwrap();
        assert!(set.contains("billing-eu") && set.contains("billing-") && set.contains("exporter"));
        assert!(!set.contains("billing") && !set.contains("exporter-2"));
        assert_eq!(set.to_string(), "billing-*,exporter");
        assert!(AgentSet::parse(["*"]).unwrap().contains("anyone"));
        assert!(AgentSet::parse(Vec::<String>::new()).is_err());
        assert!(AgentSet::parse(["bo\u{200b}t*"]).is_err());
    }

    #[test]
    fn act_as_resolves_the_placeholder_and_refuses_outsiders() {
        let set = AgentSet::one("bot").unwrap();
        assert_eq!(set.act_as(None).unwrap(), "bot");
        assert_eq!(set.act_as(Some("default")).unwrap(), "bot");
        assert_eq!(set.act_as(Some("BOT")).unwrap(), "bot");
        for other in ["bot-2", "exporter"] {
            assert!(matches!(
                set.act_as(Some(other)),
                Err(RequestError::AgentMismatch { .. })
            ));
        }
        assert!(matches!(
            set.act_as(Some("bo\u{200b}t")),
            Err(RequestError::Invalid(_))
        ));
        let prefixes = AgentSet::parse(["billing-*"]).unwrap();
        assert!(matches!(
            prefixes.act_as(None),
            Err(RequestError::AgentMismatch { .. })
        ));
        // A key that really is for an agent called `default` keeps it.
        let literal = AgentSet::parse(["default", "x"]).unwrap();
        assert_eq!(literal.act_as(Some("default")).unwrap(), "default");
    }
}
