//! Times as an approver reads them: "4 min ago", "in 23 h", with the exact UTC time on hover (and in the
//! `datetime` attribute for tools), never raw RFC 3339 with microseconds.

use maud::{Markup, Render, html};
use time::OffsetDateTime;

use haltstate_types::timestamp::format_rfc3339;

/// A time relative to `now`, exact on hover.
pub(crate) struct When {
    pub(crate) at: OffsetDateTime,
    pub(crate) now: OffsetDateTime,
}

/// A time to the second in UTC: `2026-12-02 18:14:20 UTC`.
pub(crate) fn exact(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A span in the largest unit that keeps it readable: `45 s`, `4 min`, `23 h`, `3 d`.
pub(crate) fn span(seconds: i64) -> String {
    let seconds = seconds.unsigned_abs();
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3_600 => format!("{} min", seconds / 60),
        3_600..172_800 => format!("{} h", seconds / 3_600),
        _ => format!("{} d", seconds / 86_400),
    }
}

impl When {
    /// The relative text alone.
    pub(crate) fn text(&self) -> String {
        let seconds = (self.at - self.now).whole_seconds();
        if seconds > 0 {
            format!("in {}", span(seconds))
        } else if seconds > -1 {
            "now".to_owned()
        } else {
            format!("{} ago", span(seconds))
        }
    }
}

impl Render for When {
    fn render(&self) -> Markup {
        html! { time datetime=(format_rfc3339(self.at)) title=(exact(self.at)) { (self.text()) } }
    }
}

/// An exact time (for tables of records), machine-readable in `datetime`.
pub(crate) struct Exact(pub(crate) OffsetDateTime);

impl Render for Exact {
    fn render(&self) -> Markup {
        html! { time datetime=(format_rfc3339(self.0)) { (exact(self.0)) } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn relative_times_read_as_people_say_them() {
        let now = OffsetDateTime::from_unix_timestamp(1_796_000_000).unwrap();
        let when = |offset: Duration| {
            When {
                at: now + offset,
                now,
            }
            .text()
        };
        assert_eq!(when(Duration::minutes(-4)), "4 min ago");
        assert_eq!(when(Duration::hours(23) + Duration::minutes(59)), "in 23 h");
        assert_eq!(when(Duration::seconds(-30)), "30 s ago");
        assert_eq!(when(Duration::days(3)), "in 3 d");
        assert_eq!(when(Duration::ZERO), "now");
        assert_eq!(exact(now), "2026-11-30 00:53:20 UTC");
    }
}
