//! Where an authority keeps its state: a SQLite file or a PostgreSQL database.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where an authority keeps its state.
///
/// Parsed from what an operator writes (`--db`, `HALTSTATE_DB`): a `postgres://` or `postgresql://` URL names a
/// PostgreSQL database, anything else a SQLite file. Printing one never shows a password.
///
/// ```
/// use haltstate_authority::Database;
///
/// let pg = Database::parse("postgres://app:s3cret@db.internal:5432/haltstate");
/// assert_eq!(pg.to_string(), "postgres://app:***@db.internal:5432/haltstate");
/// assert!(!format!("{pg:?}").contains("s3cret"));
/// assert!(matches!(Database::parse("/var/lib/haltstate.db"), Database::Sqlite(_)));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database (needs the `postgres` cargo feature).
    Postgres(PostgresUrl),
}

impl Database {
    /// Reads what an operator wrote: a PostgreSQL URL, or a file path.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Database::Postgres(PostgresUrl(text.to_owned()))
        } else {
            Database::Sqlite(PathBuf::from(text))
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => fmt::Display::fmt(url, f),
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres(url) => f.debug_tuple("Postgres").field(url).finish(),
        }
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Self {
        Database::Sqlite(path)
    }
}

impl From<&PathBuf> for Database {
    fn from(path: &PathBuf) -> Self {
        Database::Sqlite(path.clone())
    }
}

impl From<&Path> for Database {
    fn from(path: &Path) -> Self {
        Database::Sqlite(path.to_owned())
    }
}

impl From<&str> for Database {
    fn from(text: &str) -> Self {
        Database::parse(text)
    }
}

impl From<String> for Database {
    fn from(text: String) -> Self {
        Database::parse(&text)
    }
}

/// A PostgreSQL connection URL. Its password shows in neither `Display` nor `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The URL as written, password included: for the driver only.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password (in the user part or a `password=` parameter) replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
            return "***".to_owned();
        };
        let rest = &url[scheme_end..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rfind('@') {
            Some(at) => {
                let (user_info, host) = authority.split_at(at);
                match user_info.find(':') {
                    Some(colon) => format!("{}:***{host}", &user_info[..colon]),
                    None => authority.to_owned(),
                }
            }
            None => authority.to_owned(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let query: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                            format!("{name}=***")
                        }
                        _ => pair.to_owned(),
                    })
                    .collect();
                format!("{path}?{}", query.join("&"))
            }
            None => tail.to_owned(),
        };
        format!("{}{authority}{tail}", &url[..scheme_end])
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (written, shown) in [
            ("postgres://u:pw@h:5/d", "postgres://u:***@h:5/d"),
            ("postgresql://u@h/d", "postgresql://u@h/d"),
            ("postgres://u:p%40w@h", "postgres://u:***@h"),
            (
                "postgres://h/d?user=u&password=pw&sslmode=require",
                "postgres://h/d?user=u&password=***&sslmode=require",
            ),
            ("postgres://u:a:b@h/d", "postgres://u:***@h/d"),
        ] {
            let db = Database::parse(written);
            assert_eq!(db.to_string(), shown);
            assert!(!format!("{db:?}").contains("pw"), "{db:?}");
        }
    }
}
