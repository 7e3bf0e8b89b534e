//! What the profiling loops share: an authority that permits everything, the action they guard, how the
//! durability is chosen on the command line, and the batch size they print.

use haltstate_authority::{ActionRequest, Authority, Durability, Result};

/// `full` or `normal`; anything else (or nothing) is `default`.
pub fn durability(arg: Option<&str>, default: Durability) -> Durability {
    match arg {
        Some("full") => Durability::Full,
        Some("normal") => Durability::Normal,
        _ => default,
    }
}

/// An authority on a fresh file in `dir` whose one policy permits every action.
pub fn open(dir: &tempfile::TempDir, durability: Durability) -> Result<Authority> {
    Authority::builder(dir.path().join("p.db"))
        .policy_source(
            "p.cedar",
            r#"@id("all") permit(principal, action, resource);"#,
        )
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
