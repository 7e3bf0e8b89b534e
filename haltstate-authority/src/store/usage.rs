//! Usage buckets as both backends keep them: per (tenant, agent, action), one row per second, minute and hour in
//! which actions were allowed, with their count, tokens and param sums. A window's usage is the sum of its
//! buckets; the bucket holding the window's start counts whole, so a limit may hold up to one bucket (a second,
//! a minute, an hour) longer than exact, never shorter.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use haltstate_types::timestamp::to_micros;

use super::row::Row;
use crate::error::{AuthorityError, Result};
use crate::policy::UsageWindow;

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
}

/// One bucket as [`Buckets::write`] stores it: span name, start, and the figures' [`columns`].
pub(crate) type BucketRow = (&'static str, i64, (i64, i64, String));

/// A scope's changed buckets as [`Buckets::write`] stores them.
pub(crate) fn rows(buckets: &[(&Span, i64, UsageWindow)]) -> Result<Vec<BucketRow>> {
    buckets
        .iter()
        .map(|(span, start, figures)| Ok((span.name, *start, columns(figures)?)))
        .collect()
}

/// The stored buckets of one agent's action, as a backend reads and writes them inside its transaction. Which
/// buckets a window reads, which a charge touches and when old ones go are [`super::usage_batch`]'s rules.
pub(crate) trait Buckets {
    /// The stored buckets of each span starting at or after its bound (one per span of [`SPANS`], in order): span
    /// name, start and figures.
    fn read(&mut self, bounds: [i64; 3]) -> Result<Vec<(String, i64, UsageWindow)>>;
    /// Stores buckets' figures, replacing what they held.
    fn write(&mut self, buckets: &[(&Span, i64, UsageWindow)]) -> Result<()>;
    /// Deletes the span's buckets that start before `first`.
    fn prune(&mut self, span: &Span, first: i64) -> Result<()>;
}

/// A bucket's figures from its `count, tokens, sums` columns, starting at `column`. A negative count is
/// corrupt, not zero: reading it as zero would let an agent past its limit.
pub(crate) fn figures(row: &impl Row, column: usize) -> Result<UsageWindow> {
    let figure = |column: usize, what: &str| {
        let value = row.int(column)?;
        u64::try_from(value)
            .map_err(|_| AuthorityError::Corrupt(format!("a usage bucket's {what} is {value}")))
    };
    let sums: BTreeMap<String, i64> = serde_json::from_str(&row.text(column + 2)?)
        .map_err(|e| AuthorityError::Corrupt(format!("usage sums do not decode: {e}")))?;
    Ok(UsageWindow {
        count: figure(column, "count")?,
        tokens: figure(column + 1, "token count")?,
        sums,
    })
}

/// A bucket's figures as its columns store them: count and tokens (saturated: counting more than happened
/// fails closed), and the sums as JSON.
pub(crate) fn columns(figures: &UsageWindow) -> Result<(i64, i64, String)> {
    let sums = serde_json::to_string(&figures.sums)
        .map_err(|e| AuthorityError::Corrupt(format!("usage sums do not encode: {e}")))?;
    Ok((
        i64::try_from(figures.count).unwrap_or(i64::MAX),
        i64::try_from(figures.tokens).unwrap_or(i64::MAX),
        sums,
    ))
}

/// A charge as stored on its key: `{"count", "tokens", "sums"}`, as the `Value` it was once built as wrote it.
/// Serialized from the figures in place: building a `Value` copied every name.
pub(crate) fn encode_charge(figures: &UsageWindow) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Stored<'a> {
        count: u64,
        tokens: u64,
        sums: &'a BTreeMap<String, i64>,
    }
    serde_json::to_string(&Stored {
        count: figures.count,
        tokens: figures.tokens,
        sums: &figures.sums,
    })
    .map_err(|e| AuthorityError::Corrupt(format!("a usage charge does not encode: {e}")))
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

    #[test]
    fn a_charge_and_a_bucket_encode_as_their_json_values_did_and_decode_back() {
        let figures = UsageWindow {
            count: 3,
            tokens: u64::MAX,
            sums: BTreeMap::from([("z\"é".to_owned(), -7), ("amount".to_owned(), i64::MAX)]),
        };
        let charge = encode_charge(&figures).unwrap();
        let as_value =
            serde_json::json!({"count": 3, "tokens": u64::MAX, "sums": figures.sums}).to_string();
        assert_eq!(charge, as_value);
        assert_eq!(decode_charge(&charge).unwrap(), figures);
        let (count, tokens, sums) = columns(&figures).unwrap();
        assert_eq!((count, tokens), (3, i64::MAX));
        assert_eq!(sums, serde_json::json!(figures.sums).to_string());
    }
}
