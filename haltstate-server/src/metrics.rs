//! Prometheus metrics: what the server records, and the text a scrape gets.
//!
//! The `metrics` facade records (a no-op until a recorder is installed); [`Metrics::install`] installs the
//! Prometheus recorder once per process. Label values are bounded: an action no policy names is `other`, and
//! decisions are the answer's few statuses. Gauges of stored state (pending approvals, kill switches) are read
//! from the authority at scrape time, so every instance on a shared database reports the same truth.

mod drained;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use drained::Drained;

use haltstate_authority::Authority;
use haltstate_types::{KillScope, KillState};

/// Buckets for latencies, in seconds: 100 µs to 10 s.
const LATENCY: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];
/// Buckets for how long approvals wait, in seconds: a second to a day.
const WAIT: &[f64] = &[1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0];
/// Buckets for operations per transaction.
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Every family the server exports: its name, type and HELP text. Each is described at install, so every scrape
/// carries its HELP and TYPE (promtool requires them), and a family with no series yet is still announced.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "haltstate_decisions_total",
        "counter",
        "Decisions answered, by tenant, action (`other` when no policy names it) and decision.",
    ),
    (
        "haltstate_guard_duration_seconds",
        "histogram",
        "Time from a guard request to its answer, in seconds.",
    ),
    (
        "haltstate_approval_wait_seconds",
        "histogram",
        "How long decided approvals waited for their decision (made through the API or the console), in seconds, \
         by tenant.",
    ),
    (
        "haltstate_commit_batch_size",
        "histogram",
        "Operations per committed database transaction.",
    ),
    (
        "haltstate_commit_duration_seconds",
        "histogram",
        "Time to run and commit one database transaction, in seconds.",
    ),
    (
        "haltstate_webhook_deliveries_total",
        "counter",
        "Webhook delivery attempts, by outcome (delivered, retry, failed, lost_lease, unrecorded).",
    ),
    (
        "haltstate_approvals_pending",
        "gauge",
        "Approvals waiting for a decision now, by tenant (0 for a tenant with none).",
    ),
    (
        "haltstate_ready",
        "gauge",
        "1 when the database answers (what /readyz says), 0 when it does not.",
    ),
    (
        "haltstate_approval_oldest_pending_seconds",
        "gauge",
        "How long the tenant's longest-waiting pending approval has waited, in seconds (0 when none waits).",
    ),
    (
        "haltstate_kill_switch_state",
        "gauge",
        "A tenant's own kill switch: 0 run, 1 pause, 2 kill.",
    ),
    (
        "haltstate_agents_stopped",
        "gauge",
        "Agents stopped by their own switch, by tenant and state (pause, kill).",
    ),
];

/// The webhook outcomes, each counted from 0.
const WEBHOOK_OUTCOMES: &[&str] = &["delivered", "retry", "failed", "lost_lease", "unrecorded"];

/// The process's Prometheus recorder.
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
    /// Tenants whose pending gauge was set: one with nothing pending any more is set back to 0, not left stale.
    pending_tenants: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Metrics {
    /// Installs the recorder (once per process; later calls share it).
    ///
    /// # Errors
    /// When another recorder was installed in this process first.
    pub fn install() -> Result<Metrics, String> {
        static INSTALLED: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
        INSTALLED
            .get_or_init(|| {
                let builder = PrometheusBuilder::new()
                    .set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            "haltstate_guard_duration_seconds".into(),
                        ),
                        LATENCY,
                    )
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            metrics_exporter_prometheus::Matcher::Full(
                                "haltstate_commit_duration_seconds".into(),
                            ),
                            LATENCY,
                        )
                    })
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            metrics_exporter_prometheus::Matcher::Full(
                                "haltstate_approval_wait_seconds".into(),
                            ),
                            WAIT,
                        )
                    })
                    .and_then(|b| {
                        b.set_buckets_for_metric(
                            metrics_exporter_prometheus::Matcher::Full(
                                "haltstate_commit_batch_size".into(),
                            ),
                            BATCH,
                        )
                    })
                    .map_err(|e| e.to_string())?;
                let recorder = Drained::new(builder.build_recorder());
                let handle = recorder.handle();
                metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
                describe();
                Ok(handle)
            })
            .clone()
            .map(|handle| Metrics {
                handle,
                pending_tenants: std::sync::Arc::default(),
            })
    }

    /// The scrape: stored-state gauges refreshed from `authority`, then everything in the text format.
    pub fn render(&self, authority: &Authority) -> String {
        // What `/readyz` answers, for an alert: 1 when storage answers.
        metrics::gauge!("haltstate_ready").set(if authority.ready().is_ok() { 1.0 } else { 0.0 });
        let tenants = match authority.known_tenants() {
            Ok(tenants) => tenants,
            Err(error) => {
                tracing::warn!(%error, "metrics: cannot list the tenants");
                Vec::new()
            }
        };
        {
            let mut reported = self
                .pending_tenants
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            for tenant in &tenants {
                if reported.insert(tenant.clone()) {
                    known_tenant(tenant);
                    metrics::gauge!("haltstate_approvals_pending", "tenant" => tenant.clone())
                        .set(0.0);
                    metrics::gauge!("haltstate_approval_oldest_pending_seconds", "tenant" => tenant.clone())
                        .set(0.0);
                }
            }
        }
        match authority.pending_approval_counts() {
            Ok(counts) => {
                let mut reported = self
                    .pending_tenants
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                for tenant in reported.iter() {
                    if !counts.iter().any(|c| &c.tenant == tenant) {
                        metrics::gauge!("haltstate_approvals_pending", "tenant" => tenant.clone())
                            .set(0.0);
                        metrics::gauge!("haltstate_approval_oldest_pending_seconds", "tenant" => tenant.clone())
                            .set(0.0);
                    }
                }
                let now = authority.now();
                for pending in counts {
                    reported.insert(pending.tenant.clone());
                    let age = (now - pending.oldest).as_seconds_f64().max(0.0);
                    metrics::gauge!("haltstate_approval_oldest_pending_seconds", "tenant" => pending.tenant.clone())
                        .set(age);
                    metrics::gauge!("haltstate_approvals_pending", "tenant" => pending.tenant)
                        .set(pending.count as f64);
                }
            }
            Err(error) => tracing::warn!(%error, "metrics: cannot count pending approvals"),
        }
        match authority.kill_switches() {
            // Agent names are never label values: whoever may flip a switch could otherwise make a series per
            // made-up agent. The tenant's own switch, and how many agents are stopped, per state.
            Ok(switches) => {
                let mut stopped: std::collections::BTreeMap<String, [usize; 2]> = tenants
                    .iter()
                    .map(|tenant| (tenant.clone(), [0, 0]))
                    .collect();
                // A tenant whose own switch was never set runs: 0, not absent.
                let mut running: std::collections::BTreeSet<&String> = tenants.iter().collect();
                for (scope, state) in switches {
                    match scope {
                        KillScope::Tenant(tenant) => {
                            running.remove(&tenant);
                            stopped.entry(tenant.clone()).or_default();
                            metrics::gauge!("haltstate_kill_switch_state", "tenant" => tenant)
                                .set(kill_level(state));
                        }
                        KillScope::Agent { tenant, .. } => {
                            let counts = stopped.entry(tenant).or_default();
                            match state {
                                KillState::Run => {}
                                KillState::Pause => counts[0] += 1,
                                KillState::Kill => counts[1] += 1,
                            }
                        }
                    }
                }
                for tenant in running {
                    metrics::gauge!("haltstate_kill_switch_state", "tenant" => tenant.clone())
                        .set(0.0);
                }
                for (tenant, [paused, killed]) in stopped {
                    metrics::gauge!("haltstate_agents_stopped", "tenant" => tenant.clone(), "state" => "pause")
                        .set(paused as f64);
                    metrics::gauge!("haltstate_agents_stopped", "tenant" => tenant, "state" => "kill")
                        .set(killed as f64);
                }
            }
            Err(error) => tracing::warn!(%error, "metrics: cannot read the kill switches"),
        }
        announce_missing(self.handle.render())
    }
}

/// Describes every family and starts the ones without a tenant label at zero, so that the first scrape shows them.
fn describe() {
    for &(name, kind, help) in FAMILIES {
        match kind {
            "counter" => metrics::describe_counter!(name, help),
            "gauge" => metrics::describe_gauge!(name, help),
            _ => metrics::describe_histogram!(name, help),
        }
    }
    for outcome in WEBHOOK_OUTCOMES {
        metrics::counter!("haltstate_webhook_deliveries_total", "outcome" => *outcome).increment(0);
    }
    for name in [
        "haltstate_guard_duration_seconds",
        "haltstate_commit_batch_size",
        "haltstate_commit_duration_seconds",
    ] {
        // Registered, not recorded: the histogram shows with zero observations.
        let _ = metrics::histogram!(name);
    }
}

/// Starts `tenant`'s series at zero: a dashboard shows 0, not "no data", for a tenant that had nothing yet.
fn known_tenant(tenant: &str) {
    for decision in ["allowed", "denied", "pending"] {
        metrics::counter!(
            "haltstate_decisions_total",
            "tenant" => tenant.to_owned(),
            "action" => "other",
            "decision" => decision
        )
        .increment(0);
    }
    let _ = metrics::histogram!("haltstate_approval_wait_seconds", "tenant" => tenant.to_owned());
}

/// `scrape` with HELP and TYPE lines for each family it has no series of (the exporter writes only families
/// with series).
fn announce_missing(mut scrape: String) -> String {
    for &(name, kind, help) in FAMILIES {
        if !scrape.contains(&format!("# TYPE {name} ")) {
            scrape.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        }
    }
    scrape
}

/// RUN 0, PAUSE 1, KILL 2: a gauge an alert can compare.
fn kill_level(state: KillState) -> f64 {
    match state {
        KillState::Run => 0.0,
        KillState::Pause => 1.0,
        KillState::Kill => 2.0,
    }
}

/// An action as a label value: its name when a policy names it, `other` otherwise.
pub(crate) fn action_label(authority: &Authority, action: &str) -> String {
    if authority.policies().current().names_action(action) {
        action.to_owned()
    } else {
        "other".to_owned()
    }
}

/// Records a decision the authority answered.
pub(crate) fn decision(tenant: &str, action: String, decision: &'static str) {
    metrics::counter!(
        "haltstate_decisions_total",
        "tenant" => tenant.to_owned(),
        "action" => action,
        "decision" => decision
    )
    .increment(1);
}

/// Records how long a guard took to answer.
pub(crate) fn guard_duration(elapsed: Duration) {
    metrics::histogram!("haltstate_guard_duration_seconds").record(elapsed.as_secs_f64());
}

/// Records how long `approval` waited, once it is decided (a quorum approval still waiting for its next approver
/// is not).
pub(crate) fn approval_decided(approval: &haltstate_types::Approval) {
    if let Some(decided) = approval.decided_at {
        let waited = (decided - approval.created_at).max(time::Duration::ZERO);
        let waited = Duration::try_from(waited).unwrap_or_default();
        metrics::histogram!("haltstate_approval_wait_seconds", "tenant" => approval.tenant.clone())
            .record(waited.as_secs_f64());
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The resident set of this process, in KiB.
    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/self/status")
    }

    /// Nobody may scrape for a day: what the histograms keep between scrapes must not grow with the requests
    /// (the exporter keeps every sample until it is drained). Three samples per guarded action, as the server
    /// records them; a million actions would keep 24 MB of samples undrained.
    #[test]
    fn histogram_samples_do_not_pile_up_between_scrapes() {
        let _metrics = Metrics::install().expect("install the recorder");
        let before = resident_kib();
        for _ in 0..1_000_000 {
            guard_duration(Duration::from_micros(300));
            metrics::histogram!("haltstate_commit_batch_size").record(8.0);
            metrics::histogram!("haltstate_commit_duration_seconds").record(0.0002);
        }
        let grown = resident_kib().saturating_sub(before);
        // Undrained, it grows by ~48 MB; drained, by under 4 MB with the other tests running beside it.
        assert!(
            grown < 16 * 1024,
            "the process grew by {grown} KiB without a scrape"
        );
    }
}
