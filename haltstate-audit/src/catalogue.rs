//! The built-in catalogue of side-effect sinks: which calls, once their paths are resolved through `use`, change
//! something outside the process. Functions are matched by their full path; methods (whose receiver's type a
//! parser cannot know) by their name, in files that use the crate they belong to.

/// What a sink does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// An HTTP request that writes (POST, PUT, PATCH, DELETE).
    Http,
    /// SQL that writes.
    Sql,
    /// A file written, created, renamed or removed.
    File,
    /// A process started.
    Process,
    /// An email sent.
    Email,
    /// A model called (LLM APIs bill per call and act on its answer).
    Llm,
    /// A payment API changed.
    Payment,
    /// A function the project declared a sink (`haltstate-audit.toml`).
    Project,
}

impl SinkKind {
    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Http => "http",
            SinkKind::Sql => "sql",
            SinkKind::File => "file",
            SinkKind::Process => "process",
            SinkKind::Email => "email",
            SinkKind::Llm => "llm",
            SinkKind::Payment => "payment",
            SinkKind::Project => "project",
        }
    }
}

/// Functions that write files, in `std::fs` and `tokio::fs`.
const FS_WRITES: [&str; 11] = [
    "write",
    "remove_file",
    "remove_dir",
    "remove_dir_all",
    "rename",
    "create_dir",
    "create_dir_all",
    "copy",
    "hard_link",
    "set_permissions",
    "File::create",
];

/// The sink a call to the function at `path` (full, resolved) is, if any.
pub(crate) fn path_sink(path: &[String]) -> Option<SinkKind> {
    let joined = path.join("::");
    for root in ["std::fs::", "tokio::fs::", "async_std::fs::"] {
        if let Some(rest) = joined.strip_prefix(root)
            && FS_WRITES.contains(&rest)
        {
            return Some(SinkKind::File);
        }
    }
    if matches!(
        joined.as_str(),
        "std::process::Command::new"
            | "tokio::process::Command::new"
            | "std::process::Command::spawn"
    ) {
        return Some(SinkKind::Process);
    }
    if matches!(
        joined.as_str(),
        "diesel::insert_into" | "diesel::update" | "diesel::delete" | "diesel::replace_into"
    ) {
        return Some(SinkKind::Sql);
    }
    if joined.starts_with("stripe::")
        && let Some(verb) = path.last()
        && matches!(
            verb.as_str(),
            "create" | "update" | "delete" | "cancel" | "capture" | "confirm" | "pay" | "refund"
        )
    {
        return Some(SinkKind::Payment);
    }
    None
}

/// Crates whose methods the catalogue knows, by the kind of sink their writing methods are.
pub(crate) fn method_sink(
    method: &str,
    crates: &CratesUsed,
    sql_text: Option<&str>,
) -> Option<SinkKind> {
    if crates.http && matches!(method, "post" | "put" | "patch" | "delete") {
        return Some(SinkKind::Http);
    }
    if crates.sql
        && matches!(
            method,
            "execute"
                | "execute_batch"
                | "batch_execute"
                | "query"
                | "query_one"
                | "query_opt"
                | "query_row"
                | "execute_many"
                | "fetch_all"
                | "fetch_one"
                | "fetch_optional"
        )
    {
        // Text a reader can see decides; unseen text counts for the methods made for writing.
        return match sql_text {
            Some(text) => writes_sql(text).then_some(SinkKind::Sql),
            None => matches!(
                method,
                "execute" | "execute_batch" | "batch_execute" | "execute_many"
            )
            .then_some(SinkKind::Sql),
        };
    }
    if crates.email && matches!(method, "send" | "send_raw") {
        return Some(SinkKind::Email);
    }
    if crates.llm && matches!(method, "create" | "create_stream") {
        return Some(SinkKind::Llm);
    }
    None
}

/// Whether SQL text writes: it holds INSERT, UPDATE, DELETE, MERGE, UPSERT, DROP, TRUNCATE, ALTER or CREATE as a
/// word.
pub(crate) fn writes_sql(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphabetic()).any(|word| {
        matches!(
            word.to_ascii_uppercase().as_str(),
            "INSERT"
                | "UPDATE"
                | "DELETE"
                | "MERGE"
                | "UPSERT"
                | "DROP"
                | "TRUNCATE"
                | "ALTER"
                | "CREATE"
        )
    })
}

/// Which catalogued crates a file uses (named in a `use` or a path).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CratesUsed {
    pub(crate) http: bool,
    pub(crate) sql: bool,
    pub(crate) email: bool,
    pub(crate) llm: bool,
}

impl CratesUsed {
    /// Notes a crate name seen in the file.
    pub(crate) fn note(&mut self, name: &str) {
        match name {
            "reqwest" | "hyper" | "ureq" | "surf" | "isahc" | "awc" => self.http = true,
            "sqlx" | "diesel" | "rusqlite" | "tokio_postgres" | "postgres" | "sea_orm" => {
                self.sql = true
            }
            "lettre" => self.email = true,
            "async_openai" | "openai_api_rs" => self.llm = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_writes_are_words_not_substrings() {
        assert!(writes_sql("insert into refunds values (?1)"));
        assert!(writes_sql("UPDATE t SET a = 1"));
        assert!(!writes_sql("SELECT created_at, updated FROM t"));
        assert!(!writes_sql("select * from deleted_items"));
    }

    #[test]
    fn paths_are_matched_whole() {
        let path = |p: &str| p.split("::").map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(path_sink(&path("std::fs::write")), Some(SinkKind::File));
        assert_eq!(
            path_sink(&path("tokio::fs::File::create")),
            Some(SinkKind::File)
        );
        assert_eq!(path_sink(&path("std::fs::read_to_string")), None);
        assert_eq!(path_sink(&path("my::fs::write")), None);
        assert_eq!(
            path_sink(&path("stripe::Refund::create")),
            Some(SinkKind::Payment)
        );
        assert_eq!(path_sink(&path("stripe::Refund::retrieve")), None);
    }
}
