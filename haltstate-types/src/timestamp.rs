//! How the authority writes time: integer microseconds in SQLite, fixed-width RFC 3339 in evidence.
//!
//! The evidence format is fixed width (`2026-01-05T09:00:00.000000Z`) so that timestamps sort as strings and the
//! canonical bytes of a record never depend on how many fractional digits a moment happened to have.

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

const RFC3339_MICROS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Microseconds since the Unix epoch.
pub fn to_micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// The moment `micros` microseconds after the Unix epoch (clamped to the representable range).
pub fn from_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Fixed-width RFC 3339 in UTC with microseconds.
pub fn format_rfc3339(t: OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.format(RFC3339_MICROS)
        .unwrap_or_else(|_| utc.to_string())
}

/// Parses an ISO-8601 timestamp as clients send them: RFC 3339 with an offset, or (as Python's `isoformat()` of a
/// naive datetime gives) without one, read as UTC. `None` when it is neither.
///
/// ```
/// use haltstate_types::timestamp::parse_iso8601;
///
/// let with_offset = parse_iso8601("2026-01-05T01:37:12.123456+01:00").unwrap();
/// assert_eq!(parse_iso8601("2026-01-05T00:37:12.123456"), Some(with_offset));
/// assert_eq!(parse_iso8601("yesterday"), None);
/// ```
pub fn parse_iso8601(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .ok()
        .or_else(|| {
            time::PrimitiveDateTime::parse(text, &Iso8601::DEFAULT)
                .ok()
                .map(|t| t.assume_offset(time::UtcOffset::UTC))
        })
}

/// Serde adapter: `OffsetDateTime` as fixed-width RFC 3339 on output, any RFC 3339 on input.
pub mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    /// Serializes as fixed-width RFC 3339 UTC.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_rfc3339(*t))
    }

    /// Parses any RFC 3339 timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map_err(serde::de::Error::custom)
    }

    /// The same for `Option<OffsetDateTime>`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;

        /// Serializes `Some` as fixed-width RFC 3339 UTC and `None` as null.
        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::format_rfc3339(*t)),
                None => s.serialize_none(),
            }
        }

        /// Parses an optional RFC 3339 timestamp.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| {
                    OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                        .map_err(serde::de::Error::custom)
                })
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn rfc3339_is_fixed_width_utc() {
        assert_eq!(
            format_rfc3339(datetime!(2026-01-05 09:00 UTC)),
            "2026-01-05T09:00:00.000000Z"
        );
        assert_eq!(
            format_rfc3339(datetime!(2026-01-05 10:00 +01:00)),
            "2026-01-05T09:00:00.000000Z"
        );
    }

    #[test]
    fn micros_round_trip() {
        let t = datetime!(2026-01-05 09:00:01.123456 UTC);
        assert_eq!(from_micros(to_micros(t)), t);
    }
}
