//! The Cedar request built from our safe context.
//!
//! Values are built as `RestrictedExpression`s directly instead of going through Cedar's JSON form, because
//! that form gives meaning to `__entity` and `__extn` keys: a caller could otherwise smuggle an entity
//! reference into `context.params`.

use cedar_policy::{Context, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::reads::{Attr, ContextReads};
use super::usage::{Usage, UsageReads};
use haltstate_types::ActionRequest;

/// Entity type names, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct EntityTypes {
    pub(crate) agent: EntityTypeName,
    pub(crate) action: EntityTypeName,
    pub(crate) resource: EntityTypeName,
}

impl EntityTypes {
    pub(crate) fn new() -> Self {
        // These literals are valid Cedar type names; a failure here is a bug caught by every test.
        #[allow(clippy::expect_used)]
        let parse = |name: &str| {
            name.parse::<EntityTypeName>()
                .expect("static entity type name")
        };
        Self {
            agent: parse("Agent"),
            action: parse("Action"),
            resource: parse("Resource"),
        }
    }

    pub(crate) fn action_uid(&self, action: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.action.clone(), EntityId::new(action))
    }

    pub(crate) fn agent_uid(&self, agent: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.agent.clone(), EntityId::new(agent))
    }

    pub(crate) fn resource_uid(&self, resource: Option<&str>) -> EntityUid {
        EntityUid::from_type_name_and_id(
            self.resource.clone(),
            EntityId::new(resource.unwrap_or("none")),
        )
    }
}

/// The context record `{tenant, params, risk, hour, weekday, usage}`, with only the attributes in `reads`. Usage
/// is present only when given: a policy reading it without usage loaded fails to evaluate, which denies.
pub(crate) fn build_context(
    tenant: &str,
    request: &ActionRequest,
    now: OffsetDateTime,
    reads: ContextReads,
    usage: Option<(&Usage, &UsageReads)>,
) -> Result<Context, String> {
    let utc = now.to_offset(time::UtcOffset::UTC);
    // Params are converted whether or not a policy reads them: one that Cedar cannot hold exactly is refused the
    // same way for every policy set.
    let params = record(&request.params)?;
    let mut pairs = Vec::with_capacity(6);
    let mut add = |attr: Attr, value: RestrictedExpression| {
        pairs.push((attr.name().to_owned(), value));
    };
    if reads.reads(Attr::Tenant) {
        add(
            Attr::Tenant,
            RestrictedExpression::new_string(tenant.to_owned()),
        );
    }
    if reads.reads(Attr::Params) {
        add(Attr::Params, params);
    }
    if reads.reads(Attr::Risk) {
        let risk = request.risk.clone().unwrap_or_default();
        add(Attr::Risk, RestrictedExpression::new_string(risk));
    }
    if reads.reads(Attr::Hour) {
        add(
            Attr::Hour,
            RestrictedExpression::new_long(i64::from(utc.hour())),
        );
    }
    if reads.reads(Attr::Weekday) {
        let weekday = utc.weekday().number_days_from_monday();
        add(
            Attr::Weekday,
            RestrictedExpression::new_long(i64::from(weekday)),
        );
    }
    if let (true, Some((usage, windows))) = (reads.reads(Attr::Usage), usage) {
        add(Attr::Usage, usage.expression(windows)?);
    }
    Context::from_pairs(pairs).map_err(|e| e.to_string())
}

fn record(map: &Map<String, Value>) -> Result<RestrictedExpression, String> {
    let mut fields = Vec::with_capacity(map.len());
    for (key, value) in map {
        // Cedar has no null: a null field is absent, so policies test it with `has`.
        if value.is_null() {
            continue;
        }
        fields.push((key.clone(), expression(key, value)?));
    }
    RestrictedExpression::new_record(fields).map_err(|e| e.to_string())
}

fn expression(key: &str, value: &Value) -> Result<RestrictedExpression, String> {
    Ok(match value {
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Number(n) => number(key, n)?,
        Value::Array(items) => RestrictedExpression::new_set(
            items
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| expression(key, v))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Value::Object(map) => record(map)?,
        Value::Null => return Err(format!("param {key:?} holds a null inside a list")),
    })
}

/// Integers (and integral floats) are Cedar `Long`s; other numbers become `decimal` when Cedar can hold them
/// exactly (at most 4 fractional digits), and are refused otherwise: amounts should arrive normalized.
fn number(key: &str, n: &serde_json::Number) -> Result<RestrictedExpression, String> {
    if let Some(i) = n.as_i64() {
        return Ok(RestrictedExpression::new_long(i));
    }
    let f = n
        .as_f64()
        .ok_or_else(|| format!("param {key:?} is out of range"))?;
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        return Ok(RestrictedExpression::new_long(f as i64));
    }
    let text = n.to_string();
    let fraction_digits = text.split_once('.').map_or(0, |(_, frac)| frac.len());
    if text.contains(['e', 'E']) || fraction_digits > 4 {
        return Err(format!(
            "param {key:?} = {text} cannot be represented exactly; send amounts as integers in minor units"
        ));
    }
    Ok(RestrictedExpression::new_decimal(text))
}
