//! Where the upstream's progress notifications go. The proxy's requests upstream carry tokens of its own (rmcp
//! numbers every outbound request), so each forwarded call that asked for progress routes its upstream token back
//! to the client that asked, under that client's own token: clients sharing one upstream (sessions over HTTP)
//! never see each other's progress, and a client that asked for none gets none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rmcp::ClientHandler;
use rmcp::Peer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{NotificationContext, RoleClient, RoleServer};

/// The routes of the calls in flight: upstream token -> (the client, its token).
type Table = HashMap<ProgressToken, (Peer<RoleServer>, ProgressToken)>;

/// The progress routes of the calls in flight, shared by the proxy's upstream client ([`Relay`]) and its
/// forwarding handler ([`Forward`](crate::Forward)).
#[derive(Debug, Clone, Default)]
pub struct ProgressRoutes {
    table: Arc<Mutex<Table>>,
}

impl ProgressRoutes {
    /// Routes progress on `upstream` to `client` under `token` until the returned route drops.
    pub(crate) fn route(
        &self,
        upstream: ProgressToken,
        client: Peer<RoleServer>,
        token: ProgressToken,
    ) -> Route {
        self.lock().insert(upstream.clone(), (client, token));
        Route {
            routes: self.clone(),
            upstream,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table holds no invariant a panic could break halfway.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls in flight that asked for progress.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no call in flight asked for progress.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One call's route, removed when the call ends (answered, failed or cancelled).
#[derive(Debug)]
pub(crate) struct Route {
    routes: ProgressRoutes,
    upstream: ProgressToken,
}

impl Drop for Route {
    fn drop(&mut self) {
        self.routes.lock().remove(&self.upstream);
    }
}

/// The proxy's client of the upstream server: relays the upstream's progress to the client whose call it is.
#[derive(Debug, Clone, Default)]
pub struct Relay {
    routes: ProgressRoutes,
}

impl Relay {
    /// A relay along `routes`.
    pub fn new(routes: ProgressRoutes) -> Self {
        Self { routes }
    }
}

impl ClientHandler for Relay {
    async fn on_progress(
        &self,
        mut params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let Some((client, token)) = self.routes.lock().get(&params.progress_token).cloned() else {
            // A call that asked for no progress, or one already over.
            return;
        };
        params.progress_token = token;
        if let Err(error) = client.notify_progress(params).await {
            tracing::debug!(%error, "progress could not be relayed to the client");
        }
    }
}
