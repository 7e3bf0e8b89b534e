//! What the profiling loops share: an authority that permits everything, the action they guard, how the
//! durability is chosen on the command line, and the batch size they print.

use haltstate_authority::{ActionRequest, Authority, Durability, Result};

/// `full` or `normal`; anything else (or nothing) is `default`.
#[allow(dead_code, reason = "wal_pages runs without a sync")]
pub fn durability(arg: Option<&str>, default: Durability) -> Durability {
    match arg {
        Some("full") => Durability::Full,
        Some("normal") => Durability::Normal,
        _ => default,
    }
}

/// The policy that permits every action.
pub const PERMIT_ALL: &str = r#"@id("all") permit(principal, action, resource);"#;

/// An authority on a fresh file in `dir` whose one policy permits every action.
#[allow(dead_code, reason = "profile_guard chooses its policy with open_with")]
pub fn open(dir: &tempfile::TempDir, durability: Durability) -> Result<Authority> {
    open_with(dir, durability, PERMIT_ALL)
}

/// An authority on a fresh file in `dir` deciding by `policies`.
#[allow(dead_code, reason = "profile_guard chooses its database with open_at")]
pub fn open_with(
    dir: &tempfile::TempDir,
    durability: Durability,
    policies: &str,
) -> Result<Authority> {
    Authority::builder(dir.path().join("p.db"))
        .policy_source("p.cedar", policies)
        .durability(durability)
        .open()
}

/// An authority on the database at `location` (a SQLite path or a `postgres://` URL) deciding by `policies`.
#[allow(dead_code, reason = "only profile_guard chooses its database")]
pub fn open_at(location: &str, durability: Durability, policies: &str) -> Result<Authority> {
    Authority::builder(haltstate_authority::Database::parse(location))
        .policy_source("p.cedar", policies)
        .durability(durability)
        .open()
}

/// The action every loop guards; the amount differs per call, as real refunds' do.
pub fn refund(amount: u64) -> ActionRequest {
    ActionRequest::new("agent", "refund.create").param("amount", serde_json::json!(amount))
}

/// How many operations the writer has put in each transaction so far.
pub fn operations_per_transaction(authority: &Authority) -> f64 {
    let stats = authority.writer_stats();
    stats.operations as f64 / stats.transactions.max(1) as f64
}
