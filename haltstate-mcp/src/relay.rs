//! Where the upstream's notifications go: progress on a call to the client that made it, a resource's updates to
//! the clients subscribed to it. The proxy's requests upstream carry progress tokens of its own (rmcp numbers
//! every outbound request), so each forwarded call that asked for progress routes its upstream token back to the
//! client that asked, under that client's own token: clients sharing one upstream (sessions over HTTP) never see
//! each other's progress or updates, and a client that asked for none gets none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rmcp::ClientHandler;
use rmcp::Peer;
use rmcp::model::{ProgressNotificationParam, ProgressToken, ResourceUpdatedNotificationParam};
use rmcp::service::{NotificationContext, RoleClient, RoleServer};

/// The routes of the calls in flight: upstream token -> (the client, its token).
type Table = HashMap<ProgressToken, (Peer<RoleServer>, ProgressToken)>;

/// Each resource's subscribers, by session (the one client of stdio has none: "").
type Subscribers = HashMap<String, HashMap<String, Peer<RoleServer>>>;

/// Where the upstream's notifications go, shared by the proxy's upstream client ([`Relay`]) and its forwarding
/// handler ([`Forward`](crate::Forward)).
#[derive(Debug, Clone, Default)]
pub struct Routes {
    table: Arc<Mutex<Table>>,
    subscribers: Arc<Mutex<Subscribers>>,
    /// Held while a call that wants progress is sent and routed, and by the relay while it looks a token up: the
    /// upstream may report progress before the sender learns its token, and that progress must wait for the
    /// route rather than be dropped.
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Routes {
    /// The gate a sender holds from sending a call to routing it.
    pub(crate) async fn hold(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.gate.lock().await
    }

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

    fn subscribers(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        // Nor this one.
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The client of `session` hears of `uri`'s updates (once, however often it subscribes).
    pub(crate) fn subscribe(&self, uri: &str, session: &str, client: &Peer<RoleServer>) {
        let mut subscribers = self.subscribers();
        let clients = subscribers.entry(uri.to_owned()).or_default();
        // A client gone (its session closed) no longer hears anything.
        clients.retain(|_, c| !c.is_transport_closed());
        clients.insert(session.to_owned(), client.clone());
    }

    /// The client of `session` no longer hears of `uri`'s updates; answers whether nobody does now (then the
    /// upstream may be unsubscribed).
    pub(crate) fn unsubscribe(&self, uri: &str, session: &str) -> bool {
        let mut subscribers = self.subscribers();
        let Some(clients) = subscribers.get_mut(uri) else {
            return true;
        };
        clients.remove(session);
        clients.retain(|_, c| !c.is_transport_closed());
        let nobody = clients.is_empty();
        if nobody {
            subscribers.remove(uri);
        }
        nobody
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
    routes: Routes,
    upstream: ProgressToken,
}

/// How long a route outlives its call. rmcp hands each notification to a task of its own, so the upstream's last
/// progress, sent before its answer, may be relayed only after the answer reached the caller; dropped at once, the
/// route would lose it.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for Route {
    fn drop(&mut self) {
        let (routes, upstream) = (self.routes.clone(), self.upstream.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(LINGER).await;
                    routes.lock().remove(&upstream);
                });
            }
            Err(_) => {
                routes.lock().remove(&upstream);
            }
        }
    }
}

/// The proxy's client of the upstream server: relays the upstream's progress to the client whose call it is.
#[derive(Debug, Clone, Default)]
pub struct Relay {
    routes: Routes,
}

impl Relay {
    /// A relay along `routes`.
    pub fn new(routes: Routes) -> Self {
        Self { routes }
    }
}

impl ClientHandler for Relay {
    async fn on_progress(
        &self,
        mut params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let found = {
            let _routed = self.routes.hold().await;
            self.routes.lock().get(&params.progress_token).cloned()
        };
        let Some((client, token)) = found else {
            // A call that asked for no progress, or one already over.
            return;
        };
        params.progress_token = token;
        if let Err(error) = client.notify_progress(params).await {
            tracing::debug!(%error, "progress could not be relayed to the client");
        }
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let clients: Vec<Peer<RoleServer>> = self
            .routes
            .subscribers()
            .get(&params.uri)
            .map(|clients| clients.values().cloned().collect())
            .unwrap_or_default();
        for client in clients {
            if let Err(error) = client.notify_resource_updated(params.clone()).await {
                tracing::debug!(%error, "a resource update could not be relayed to a client");
            }
        }
    }
}
