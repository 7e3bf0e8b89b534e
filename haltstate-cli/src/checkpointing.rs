//! Signing the chains while serving: every interval (and once more at shutdown) each tenant's new chain head is
//! signed, stored, appended to the checkpoint file and, when configured, posted to a witness URL.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use haltstate_authority::{Authority, SigningKey, checkpoint_file};
use haltstate_types::proof::SignedCheckpoint;

/// Where checkpoints go besides the database.
#[derive(Debug)]
pub(crate) struct Sinks {
    pub(crate) file: PathBuf,
    pub(crate) url: Option<String>,
    /// Whether the witness may be on a loopback, link-local or private address.
    pub(crate) allow_private: bool,
}

pub(crate) async fn run(
    authority: Authority,
    key: SigningKey,
    sinks: Sinks,
    every: Duration,
    stop: CancellationToken,
) {
    let key = std::sync::Arc::new(key);
    // Never following a redirect, and (unless allowed) never posting to a non-public address.
    let client = match haltstate_server::outbound::client(
        sinks.allow_private,
        Duration::from_secs(10),
    ) {
        Ok(client) => Some(client),
        Err(error) => {
            tracing::error!(%error, "no HTTP client for the checkpoint witness; checkpoints go to the file only");
            None
        }
    };
    loop {
        let stopping = tokio::select! {
            () = stop.cancelled() => true,
            () = tokio::time::sleep(every) => false,
        };
        let signed = {
            let (authority, key) = (authority.clone(), key.clone());
            // Reads and a commit per tenant: off the runtime's workers.
            tokio::task::spawn_blocking(move || authority.checkpoint(&key)).await
        };
        match signed {
            Ok(Ok(signed)) if !signed.is_empty() => {
                if let Err(error) = checkpoint_file::append(&sinks.file, &signed) {
                    tracing::error!(%error, "checkpoints could not be written outside the database");
                }
                // The URL was checked once, when `serve` started (it refuses a non-public one); names are checked
                // as the client resolves them.
                if let (Some(url), Some(client)) = (&sinks.url, &client) {
                    post(client, url, &signed).await;
                }
                tracing::info!(count = signed.len(), "chain heads signed");
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "signing the chain heads failed; will retry"),
            Err(error) => tracing::error!(%error, "the checkpoint task failed"),
        }
        if stopping {
            return;
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, signed: &[SignedCheckpoint]) {
    for checkpoint in signed {
        let sent = client
            .post(url)
            .timeout(Duration::from_secs(10))
            .json(checkpoint)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {}
            // The URL may carry a token: log the status, not the address.
            Ok(response) => {
                tracing::warn!(status = %response.status(), "the checkpoint witness refused a checkpoint")
            }
            Err(error) => {
                tracing::warn!(error = %error.without_url(), "the checkpoint witness could not be reached")
            }
        }
    }
}
