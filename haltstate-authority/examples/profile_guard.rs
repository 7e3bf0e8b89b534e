//! A loop for profilers: guard + report from N callers (threads), 20,000 actions each by default.
//!
//! `cargo build --release -p haltstate-authority --example profile_guard &&
//!  perf record -g target/release/examples/profile_guard [callers] [actions per caller] [full|normal]
//!  [usage [history]|params]`
//!
//! `usage`: a policy that reads and charges the agent's usage (a daily budget) instead of one that permits all.
//! `usage history`: the same, with the agent's windows full beforehand (a bucket in each of the last 59 seconds,
//! 59 minutes and 23 hours), as after a day of steady use.
//! `params`: the budget policy's check of the action's param alone: the plain call to hold `usage` against.
//!
//! `PROFILE_POSTGRES=1` runs it on a PostgreSQL server the test kit starts (build with `--features postgres`).
mod common;

use std::sync::Arc;

use haltstate_authority::Durability;

/// Permits every action whose `amount` param is in range: what the usage policy checks, without the usage.
const AMOUNT_LIMIT: &str = r#"@id("limit") permit(principal, action, resource)
    when { context.params.amount <= 1000000000000 };"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let callers: u64 = args.next().map_or(Ok(1), |a| a.parse())?;
    let per_caller: u64 = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let durability = common::durability(args.next().as_deref(), Durability::Normal);
    let policies = match args.next().as_deref() {
        None => common::PERMIT_ALL,
        Some("usage") => common::DAILY_BUDGET,
        Some("params") => AMOUNT_LIMIT,
        Some(other) => {
            return Err(
                format!("unknown policy {other:?}: the choices are `usage` and `params`").into(),
            );
        }
    };
    let history = match args.next().as_deref() {
        None => false,
        Some("history") => true,
        Some(other) => {
            return Err(format!("unknown option {other:?}: the one choice is `history`").into());
        }
    };
    let dir = tempfile::tempdir()?;
    let postgres = std::env::var_os("PROFILE_POSTGRES")
        .is_some()
        .then(haltstate_testkit::postgres::PgServer::start);
    let location = match &postgres {
        Some(server) => server.create_database(),
        None => dir.path().join("p.db").display().to_string(),
    };
    if history {
        drop(common::open_at(&location, durability, policies)?);
        seed_history(&location)?;
    }
    let authority = Arc::new(common::open_at(&location, durability, policies)?);
    let started = std::time::Instant::now();
    common::run_callers(&authority, callers, per_caller)?;
    let actions = callers * per_caller;
    println!(
        "{callers} callers, {durability:?}: {:.1} µs per guard+report (amortised), {:.1} operations per transaction",
        started.elapsed().as_micros() as f64 / actions as f64,
        common::operations_per_transaction(&authority)
    );
    Ok(())
}

/// One stored bucket per second, minute and hour of the agent's windows before now, each one action of amount 1.
fn seed_history(location: &str) -> Result<(), Box<dyn std::error::Error>> {
    const INSERT: &str = "INSERT INTO usage_buckets (tenant, agent_id, action, span, start_us, count, tokens, sums) \
         VALUES ('acme', 'agent', 'refund.create', $1, $2, 1, 0, '{\"amount\":1}')";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros() as i64;
    let buckets = [
        ("s", 1_000_000i64, 59),
        ("m", 60_000_000, 59),
        ("h", 3_600_000_000, 23),
    ]
    .into_iter()
    .flat_map(|(span, length, count)| {
        (1..=count).map(move |back| (span, (now / length - back) * length))
    });
    if location.starts_with("postgres") {
        let mut client = postgres::Client::connect(location, postgres::NoTls)?;
        let mut tx = client.transaction()?;
        for (span, start) in buckets {
            tx.execute(INSERT, &[&span, &start])?;
        }
        tx.commit()?;
    } else {
        let conn = rusqlite::Connection::open(location)?;
        let tx = conn.unchecked_transaction()?;
        for (span, start) in buckets {
            tx.execute(INSERT, rusqlite::params![span, start])?;
        }
        tx.commit()?;
    }
    Ok(())
}
