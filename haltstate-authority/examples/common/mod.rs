//! What the profiling loops share: an authority that permits everything, the action they guard, the guarded
//! action itself and the threads that repeat it, how the durability is chosen on the command line, and the batch
//! size they print.

use std::sync::Arc;

use haltstate_authority::{
    ActionRequest, Authority, Durability, GuardRequest, Outcome, OutcomeReport, Result,
};

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

/// Permits every action within a daily budget of its `amount` param: each guard reads and charges usage.
#[allow(dead_code, reason = "the loops that read no usage do not use it")]
pub const DAILY_BUDGET: &str = r#"@id("budget") permit(principal, action, resource)
    when { context.usage.day.sum.amount + context.params.amount <= 1000000000000 };"#;

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

/// The tenant every loop acts for.
pub const TENANT: &str = "acme";

/// One guarded action of [`TENANT`]: guard, then report success under its claim.
#[allow(
    dead_code,
    reason = "the async and writer loops call the authority their own way"
)]
pub fn act(authority: &Authority, key: &str, amount: u64) -> std::result::Result<(), String> {
    let answer = authority
        .guard(TENANT, GuardRequest::new(refund(amount), key))
        .wait()
        .map_err(|e| e.to_string())?;
    let token = answer.claim.ok_or("no claim")?.token;
    authority
        .report(
            TENANT,
            OutcomeReport::new(key, Outcome::Success).claim_token(token),
        )
        .wait()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// `callers` threads, each acting `per_caller` times under keys of its own (`k{caller}-{i}`); waits for them all.
#[allow(dead_code, reason = "only the threaded loops run callers")]
pub fn run_callers(
    authority: &Arc<Authority>,
    callers: u64,
    per_caller: u64,
) -> std::result::Result<(), String> {
    let workers: Vec<_> = (0..callers)
        .map(|c| {
            let authority = authority.clone();
            std::thread::spawn(move || -> std::result::Result<(), String> {
                for i in 0..per_caller {
                    act(&authority, &format!("k{c}-{i}"), i)?;
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| "a caller panicked")??;
    }
    Ok(())
}
