//! `haltstate`: serve the authority over HTTP, and operate it from the command line.
//!
//! `args` is the command line's shape, `commands` runs every command but `serve` (on the database file, or
//! through a server's operator API with `remote`), and `main` runs the server.

/// The server allocates on every request (headers, bodies, statements): mimalloc spends less CPU there than the
/// system allocator did (BENCHMARKS.md, issue 25).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod checkpointing;
mod commands;
mod config_file;
mod error;
mod evidence_commands;
mod mcp;
mod open;
mod output;
mod policy_cases;
mod policy_commands;
mod private_file;
mod remote;
mod secrets_key;
mod webhooks;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use args::{Cli, Command, LogFormat, ServeArgs};
use clap::{CommandFactory, FromArgMatches};
use haltstate_authority::Authority;
use haltstate_server::{AppState, serve};

/// The command line, with `serve`'s variables and `--config` file applied (see [`config_file`]).
fn parse() -> Result<Cli, String> {
    let command = config_file::with_variables(Cli::command());
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // First without serve's required flags (the file may give them); any error, or --help, is left to the
    // strict parse below, which says it properly.
    let mut matches = match config_file::relaxed(&command).try_get_matches_from(&argv) {
        Ok(matches) => matches,
        Err(_) => command.clone().get_matches_from(&argv),
    };
    let mut from_file = Default::default();
    if let Some(("serve", serve_matches)) = matches.subcommand()
        && let Some(file) = serve_matches.get_one::<std::path::PathBuf>("config")
    {
        let serve = command.find_subcommand("serve").ok_or("no serve command")?;
        let (flags, set) =
            config_file::file_flags(serve, serve_matches, file).map_err(|e| e.to_string())?;
        // The file's settings as flags right after `serve` (no other flag precedes it).
        let mut argv = argv.clone();
        // The subcommand's own position: after the program's name, which could itself be `serve`.
        let at = argv
            .iter()
            .skip(1)
            .position(|a| a == "serve")
            .ok_or("no serve")?
            + 2;
        argv.splice(at..at, flags);
        matches = command.clone().get_matches_from(argv);
        from_file = set;
    } else {
        matches = command.clone().get_matches_from(&argv);
    }
    if let Some(("serve", serve_matches)) = matches.subcommand()
        && serve_matches.get_flag("print_config")
    {
        let serve = command.find_subcommand("serve").ok_or("no serve command")?;
        output::text(&config_file::print(serve, serve_matches, &from_file))
            .map_err(|e| format!("cannot write the output: {e}"))?;
        std::process::exit(0);
    }
    Cli::from_arg_matches(&matches).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("haltstate: {error}");
            return ExitCode::from(2);
        }
    };
    let json = matches!(&cli.command, Command::Serve(args) if args.log_format == LogFormat::Json);
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "haltstate=info,warn".into()),
        )
        .with_writer(std::io::stderr);
    if json {
        logs.json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    match cli.command {
        Command::Serve(args) => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("haltstate: cannot start the runtime: {error}");
                    return ExitCode::from(1);
                }
            };
            match runtime.block_on(run_server(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("haltstate: {error}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Audit(options) => haltstate_audit::cli::run(&options),
        other => commands::run(other),
    }
}

async fn run_server(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let ServeArgs {
        config: _,
        print_config: _,
        log_format: _,
        db,
        policy,
        shadow,
        listen,
        checkpoint_pages,
        postgres_writers,
        metrics_listen,
        no_console,
        approval_attempts,
        max_pending_approvals_per_agent,
        max_pending_approvals_per_tenant,
        secrets_key,
        secrets_key_previous,
        refund_usage_on_error,
        start_check_records,
        webhooks,
        signing,
        limits,
    } = args;
    let limits = limits.limits();
    // A witness on a non-public address is refused at start, not at the first interval.
    for url in &signing.checkpoint_url {
        haltstate_server::outbound::check_url(url, webhooks.allow_private_targets)?;
    }
    let mut builder = Authority::builder(db.clone())
        .policy_file(&policy)
        .log_origin_prefix(&signing.log_origin_prefix)
        .checkpoint_pages(checkpoint_pages)
        .approval_attempts(approval_attempts)
        .max_pending_approvals_per_agent(max_pending_approvals_per_agent as usize)
        .max_pending_approvals_per_tenant(max_pending_approvals_per_tenant as usize)
        .refund_usage_on_error(refund_usage_on_error)
        .secrets_keys(secrets_key::keyring(
            secrets_key.as_deref(),
            &secrets_key_previous.into_iter().collect::<Vec<_>>(),
        )?);
    if let Some(shadow) = &shadow {
        builder = builder.shadow_policy_file(shadow);
    }
    if let Some(writers) = postgres_writers.and_then(|n| std::num::NonZeroUsize::new(n as usize)) {
        builder = builder.postgres_writers(writers);
    }
    let authority = builder.open()?;
    // Cheaply, at start: the rows each tenant's newest evidence of the last day fixes must agree with it, or
    // nothing is served.
    {
        let authority = authority.clone();
        let since = authority.now() - time::Duration::days(1);
        let started = std::time::Instant::now();
        let rows = tokio::task::spawn_blocking(move || {
            authority.verify_recent_state(since, start_check_records)
        })
        .await??;
        tracing::info!(
            rows,
            per_tenant = start_check_records,
            took_ms = started.elapsed().as_millis() as u64,
            "state rows agree with the newest evidence"
        );
    }
    // Webhook secrets at rest: sealed with the current key (those stored before it, or under the previous one,
    // resealed now), or said to be in clear.
    {
        let authority = authority.clone();
        if authority.seals_webhook_secrets() {
            let resealed =
                tokio::task::spawn_blocking(move || authority.reseal_webhook_secrets()).await??;
            if resealed > 0 {
                tracing::info!(
                    resealed,
                    "webhook secrets sealed with the current secrets key"
                );
            }
        } else if tokio::task::spawn_blocking(move || authority.any_webhooks()).await?? {
            tracing::warn!(
                "no --secrets-key: webhook secrets stored in clear can be read (and used to sign deliveries as \
                 this server) by whoever reads the database, and sealed ones cannot be opened"
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let metrics_server = match metrics_listen {
        Some(address) => {
            let metrics = haltstate_server::Metrics::install()?;
            let metrics_listener = tokio::net::TcpListener::bind(address).await?;
            tracing::info!(address = %metrics_listener.local_addr()?, "metrics");
            let authority = authority.clone();
            Some(tokio::spawn(async move {
                let forever = std::future::pending::<()>();
                if let Err(error) = haltstate_server::serve_metrics(
                    metrics_listener,
                    authority,
                    metrics,
                    limits,
                    forever,
                )
                .await
                {
                    tracing::error!(%error, "the metrics listener failed");
                }
            }))
        }
        None => None,
    };
    tracing::info!(address = %listener.local_addr()?, db = %db, policy = %policy.display(), "serving");
    // The handlers are installed before anyone can learn the address: a SIGTERM or SIGHUP sent as soon as the
    // line below is read must find them (their default action kills the process).
    let shutdown = shutdown_signal()?;
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    // Machine-readable for scripts and tests that start the server on port 0.
    output::line(format_args!(
        "listening on http://{}",
        listener.local_addr()?
    ))?;

    let stop_sender = tokio_util::sync::CancellationToken::new();
    let sender = {
        let public_url = webhooks
            .public_url
            .clone()
            .unwrap_or(format!("http://{}", listener.local_addr()?));
        let mut settings = haltstate_server::webhooks::WebhookSettings::new(public_url);
        settings.retry = haltstate_authority::webhooks::RetryPolicy {
            base: webhooks.webhook_retry_base,
            cap: webhooks.webhook_retry_max,
            max_attempts: webhooks.webhook_attempts,
        };
        settings.timeout = webhooks.webhook_timeout;
        settings.allow_private = webhooks.allow_private_targets;
        let sender = haltstate_server::webhooks::WebhookSender::new(authority.clone(), settings)?;
        tokio::spawn(sender.run(stop_sender.clone()))
    };
    let stop_checkpoints = tokio_util::sync::CancellationToken::new();
    let mut signing_public = None;
    let checkpoints = match &signing.signing_key {
        Some(path) => {
            let key = haltstate_authority::SigningKey::from_file(path)?;
            signing_public = Some(key.public());
            tracing::info!(key_id = %key.key_id(), public_key = %key.public_text(), "evidence signed");
            Some(tokio::spawn(checkpointing::run(
                authority.clone(),
                key,
                checkpointing::Sinks {
                    file: signing
                        .checkpoint_file
                        .clone()
                        .ok_or("--signing-key needs --checkpoint-file: checkpoints are kept outside the database too")?,
                    witnesses: signing.checkpoint_url.clone(),
                    allow_private: webhooks.allow_private_targets,
                },
                signing.checkpoint_every,
                stop_checkpoints.clone(),
            )))
        }
        None => {
            tracing::warn!(
                "evidence is unsigned: without --signing-key, whoever can write the database can rewrite its ledger undetected"
            );
            None
        }
    };
    let sweeper = {
        let authority = authority.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                let tenants = match authority.tenants_with_overdue_approvals() {
                    Ok(tenants) => tenants,
                    Err(error) => {
                        tracing::warn!(%error, "finding expired approvals failed");
                        continue;
                    }
                };
                for tenant in tenants {
                    if let Err(error) = authority.sweep_expired(&tenant).await {
                        tracing::warn!(%error, %tenant, "sweeping expired approvals failed");
                    }
                }
            }
        })
    };
    #[cfg(unix)]
    {
        let authority = authority.clone();
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match authority.reload_policies() {
                    Ok(count) => tracing::info!(count, "policies reloaded"),
                    Err(error) => {
                        tracing::error!(%error, "policy reload failed; keeping the old set")
                    }
                }
            }
        });
    }
    serve(
        listener,
        {
            let mut state = AppState::with_limits(authority.clone(), limits);
            state.console = !no_console;
            state.signing_public = signing_public;
            state.allow_private_targets = webhooks.allow_private_targets;
            state
        },
        shutdown,
    )
    .await?;
    sweeper.abort();
    // A round of deliveries under way finishes (each attempt is bounded by its timeout) and is recorded.
    stop_sender.cancel();
    let _ = sender.await;
    // The last heads are signed before the process goes.
    stop_checkpoints.cancel();
    if let Some(checkpoints) = checkpoints {
        let _ = checkpoints.await;
    }
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    let stats = authority.writer_stats();
    // Group commit at work: how many operations each transaction carried over this process's life.
    tracing::info!(
        transactions = stats.transactions,
        operations = stats.operations,
        per_transaction = format_args!(
            "{:.1}",
            stats.operations as f64 / stats.transactions.max(1) as f64
        ),
        "writer"
    );
    // The last handle flushes the writer's queue before the process exits.
    drop(authority);
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM; both handlers are installed when this is called, not when first polled.
pub(crate) fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    #[cfg(unix)]
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}
