//! Usage buckets as both backends keep them: per (tenant, agent, action), one row per second, minute and hour in
//! which actions were allowed, with their count, tokens and param sums. A window's usage is the sum of its
//! buckets; the bucket holding the window's start counts whole, so a limit may hold up to one bucket (a second,
//! a minute, an hour) longer than exact, never shorter.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use haltstate_types::timestamp::to_micros;

use crate::error::{AuthorityError, Result};
use crate::policy::{Usage, UsageWindow};

/// A bucket size: its name in storage, its length, and the window it serves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub(crate) name: &'static str,
    pub(crate) length: Duration,
    pub(crate) window: &'static str,
    pub(crate) covers: Duration,
}

pub(crate) const SPANS: [Span; 3] = [
    Span {
        name: "s",
        length: Duration::from_secs(1),
        window: "minute",
        covers: Duration::from_secs(60),
    },
    Span {
        name: "m",
        length: Duration::from_secs(60),
        window: "hour",
        covers: Duration::from_secs(60 * 60),
    },
    Span {
        name: "h",
        length: Duration::from_secs(60 * 60),
        window: "day",
        covers: Duration::from_secs(24 * 60 * 60),
    },
];

impl Span {
    /// The start (µs) of the bucket holding `at`.
    pub(crate) fn bucket(&self, at: OffsetDateTime) -> i64 {
        let length = i64::try_from(self.length.as_micros()).unwrap_or(i64::MAX);
        to_micros(at).div_euclid(length) * length
    }

    /// The first bucket (µs) the window at `now` reads: the one holding the window's start.
    pub(crate) fn first(&self, now: OffsetDateTime) -> i64 {
        self.bucket(now - self.covers)
    }

    pub(crate) fn named(name: &str) -> Result<&'static Span> {
        SPANS
            .iter()
            .find(|span| span.name == name)
            .ok_or_else(|| AuthorityError::Corrupt(format!("unknown usage bucket span {name:?}")))
    }
}

/// A bucket's stored figures.
pub(crate) fn decode(count: i64, tokens: i64, sums: &str) -> Result<UsageWindow> {
    let sums: BTreeMap<String, i64> = serde_json::from_str(sums)
        .map_err(|e| AuthorityError::Corrupt(format!("usage sums do not decode: {e}")))?;
    Ok(UsageWindow {
        count: u64::try_from(count).unwrap_or(0),
        tokens: u64::try_from(tokens).unwrap_or(0),
        sums,
    })
}

pub(crate) fn encode_sums(window: &UsageWindow) -> String {
    serde_json::to_string(&window.sums).unwrap_or_else(|_| "{}".into())
}

/// Adds one bucket row to the usage it belongs to.
pub(crate) fn add_bucket(usage: &mut Usage, span: &str, figures: &UsageWindow) -> Result<()> {
    let span = Span::named(span)?;
    if let Some(window) = usage.window_mut(span.window) {
        window.add(figures, 1);
    }
    Ok(())
}

/// A charge as stored on its key: `{"count", "tokens", "sums"}`.
pub(crate) fn encode_charge(figures: &UsageWindow) -> String {
    serde_json::json!({"count": figures.count, "tokens": figures.tokens, "sums": figures.sums})
        .to_string()
}

pub(crate) fn decode_charge(text: &str) -> Result<UsageWindow> {
    #[derive(serde::Deserialize)]
    struct Stored {
        count: u64,
        tokens: u64,
        sums: BTreeMap<String, i64>,
    }
    let stored: Stored = serde_json::from_str(text).map_err(|e| {
        AuthorityError::Corrupt(format!("a key's usage charge does not decode: {e}"))
    })?;
    Ok(UsageWindow {
        count: stored.count,
        tokens: stored.tokens,
        sums: stored.sums,
    })
}

/// A key's stored charge (both columns, or neither).
pub(crate) fn charge_of(
    at: Option<i64>,
    figures: Option<String>,
) -> Result<Option<crate::state_rows::Charge>> {
    match (at, figures) {
        (Some(at), Some(figures)) => Ok(Some(crate::state_rows::Charge {
            at: haltstate_types::timestamp::from_micros(at),
            figures: decode_charge(&figures)?,
        })),
        (None, None) => Ok(None),
        _ => Err(AuthorityError::Corrupt(
            "a key's usage charge is half stored".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_on_their_boundary_and_a_window_reads_the_one_holding_its_start() {
        let at = OffsetDateTime::UNIX_EPOCH + Duration::from_millis(3_725_500); // 01:02:05.5
        assert_eq!(SPANS[0].bucket(at), 3_725_000_000);
        assert_eq!(SPANS[1].bucket(at), 3_720_000_000);
        assert_eq!(SPANS[2].bucket(at), 3_600_000_000);
        assert_eq!(SPANS[0].first(at), 3_665_000_000);
        assert_eq!(SPANS[1].first(at), 120_000_000);
    }
}
