//! One PostgreSQL connection with its prepared statements, and how driver errors become authority errors.
//!
//! The driver is `postgres`, the blocking face of `tokio-postgres` (the ecosystem's PostgreSQL client, with
//! pipelining, binary parameters and LISTEN/NOTIFY). Blocking, because the authority's storage seam is blocking:
//! the writer runs batches on its own thread and SQLite shares the seam. The blocking client runs its own small
//! runtime and must never be called from inside a tokio runtime, so every connection here lives on a thread the
//! authority owns (the writer thread, the readers, the listener), never on a caller's.

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, Row, Statement};

use crate::database::PostgresUrl;
use crate::error::{AuthorityError, Result, StorageError};

/// Parameters of a query.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A connection and the statements prepared on it.
pub(crate) struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

/// Connects, over TLS as the URL's `sslmode` says ([`super::tls`]); an unreachable server, or one whose
/// certificate is refused, is [`AuthorityError::Unavailable`] naming the URL without its password.
pub(crate) fn connect(url: &PostgresUrl) -> Result<Conn> {
    let (config, tls) = super::tls::parse(url.expose())?;
    let client = config.connect(tls.connector()?).map_err(|e| {
        let error = AuthorityError::from(e);
        match error {
            AuthorityError::Unavailable(why) => {
                AuthorityError::Unavailable(format!("cannot connect to {url}: {why}"))
            }
            AuthorityError::Storage(why) => {
                AuthorityError::storage(format!("cannot connect to {url}: {why}"))
            }
            other => other,
        }
    })?;
    Ok(Conn {
        client,
        statements: HashMap::new(),
    })
}

impl Conn {
    /// Whether the connection is gone (the next use would fail): reconnect instead.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    pub(crate) fn query(&mut self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.client.query(&statement, params)?)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Option<Row>> {
        let statement = self.statement(sql)?;
        Ok(self.client.query_opt(&statement, params)?)
    }

    pub(crate) fn execute(&mut self, sql: &'static str, params: Params<'_>) -> Result<u64> {
        let statement = self.statement(sql)?;
        Ok(self.client.execute(&statement, params)?)
    }

    /// A query whose text is built at run time (not kept prepared).
    pub(crate) fn query_dynamic(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        Ok(self.client.query(sql, params)?)
    }

    /// Statements without parameters, in one round trip.
    pub(crate) fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.client.batch_execute(sql)?)
    }

    pub(crate) fn client(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// SQLSTATE classes that mean "the database is not there now", not "the request was wrong".
fn unavailable(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources
        || matches!(code, "57P01" | "57P02" | "57P03") // shutdown, crash, starting up
}

impl From<postgres::Error> for AuthorityError {
    fn from(error: postgres::Error) -> Self {
        match error.as_db_error() {
            Some(db) if unavailable(db.code().code()) => {
                AuthorityError::Unavailable(db.message().to_owned())
            }
            Some(db) => {
                let message = format!("{} ({})", db.message(), db.code().code());
                AuthorityError::Storage(StorageError::new(message, Some(Box::new(error))))
            }
            // No answer from the server: a refused, reset or closed connection.
            None if error.is_closed()
                || std::error::Error::source(&error)
                    .is_some_and(|source| source.is::<std::io::Error>()) =>
            {
                AuthorityError::Unavailable(with_causes(&error))
            }
            None => {
                AuthorityError::Storage(StorageError::new(error.to_string(), Some(Box::new(error))))
            }
        }
    }
}

/// A stored count as the `u64` the authority uses; a negative one is corrupt.
pub(crate) fn unsigned(value: i64, what: &str) -> Result<u64> {
    u64::try_from(value)
        .map_err(|_| AuthorityError::Corrupt(format!("{what} is negative: {value}")))
}

/// A `u64` as PostgreSQL's BIGINT.
pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The error and its causes, one after the other ("error connecting to server: Connection refused").
fn with_causes(error: &postgres::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
