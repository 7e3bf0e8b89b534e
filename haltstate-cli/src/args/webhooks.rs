//! `haltstate webhooks ...`'s shape.

use clap::{Subcommand, ValueEnum};

use haltstate_authority::Database;

use super::database;

/// `haltstate webhooks ...`. Deliveries are made by `haltstate serve`; these commands work on the database.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Add a webhook and print its signing secret (`whsec_...`), alone, on stdout. It is shown only this once.
    ///
    /// Example: haltstate webhooks add --db haltstate.db --tenant acme --url https://hooks.example.com/hs --as alice
    ///
    /// Example: haltstate webhooks add --db haltstate.db --tenant acme --url https://hooks.slack.com/services/... --format slack --events approval.requested --as alice
    Add {
        /// The database: a SQLite file or a PostgreSQL URL.
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
        db: Database,
        /// The tenant whose events it receives.
        #[arg(long)]
        tenant: String,
        /// Where to post (https:// or http://).
        #[arg(long)]
        url: String,
        /// Only these events, comma-separated: approval.requested, approval.decided, approval.expired,
        /// kill_switch.changed (default: all).
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// The body: a Standard Webhooks body, or a Slack message.
        #[arg(long, value_enum, default_value = "standard")]
        format: FormatArg,
        /// Who adds it.
        #[arg(long = "as")]
        actor: String,
        /// Accept a loopback, link-local or private address (`serve` also needs --allow-private-targets to post
        /// to it).
        #[arg(long)]
        allow_private_target: bool,
    },
    /// List the tenant's webhooks (never their secrets).
    ///
    /// Example: haltstate webhooks list --db haltstate.db --tenant acme
    List {
        /// The database.
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
        db: Database,
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Remove a webhook; what it has not received yet is failed, not sent.
    ///
    /// Example: haltstate webhooks remove wh_0123 --db haltstate.db --tenant acme
    Remove {
        /// The webhook id (`wh_...`).
        id: String,
        /// The database.
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
        db: Database,
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// The latest deliveries, newest first: event, attempts, state, last status or error.
    ///
    /// Example: haltstate webhooks deliveries --db haltstate.db --tenant acme
    Deliveries {
        /// The database.
        #[arg(long, env = "HALTSTATE_DB", hide_env_values = true, value_parser = database)]
        db: Database,
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// A webhook's body.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// `{"type", "timestamp", "data"}`, as the Standard Webhooks specification describes.
    Standard,
    /// `{"text"}` for a Slack incoming webhook.
    Slack,
}
