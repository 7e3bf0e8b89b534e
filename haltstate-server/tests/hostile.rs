//! The hostile-client suite: a real server on loopback, driven the way an attacker or a broken client would.
//!
//! Every case asserts the status, the error `code`, and that the server still answers afterwards. The table
//! holds the stateless requests; the scenarios below it hold the ones that need state (a killed agent, a claim
//! held by someone else, an approval to steal, a slow connection). `scripts/test` runs them all; RELIABILITY.md
//! counts them.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use haltstate_authority::{
    AgentSet, Authority, EvidenceKind, EvidenceQuery, KeySpec, KillScope, KillState, ProofStatus,
    Role,
};
use haltstate_server::ServeLimits;
use haltstate_testkit::{LoopbackServer, eventually_async, policies};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TENANT: &str = "acme";

/// Exports for one agent only, beside the test kit's refunds.
const EXPORTS: &str = r#"
@id("export.exporter") permit(principal == Agent::"exporter", action == Action::"data.export", resource);
"#;

/// The keys of the suite's tenant, and one tenant next door.
struct Keys {
    /// Agent `bot`.
    bot: String,
    /// Agent key `fleet`, acting as `billing-*`.
    fleet: String,
    /// Agent key `proxy`, acting as `ops` (the name of an operator: the self-approval case).
    proxy: String,
    /// Operator `alice`.
    alice: String,
    /// Operator `ops`.
    ops: String,
    /// Admin `root`: mints, rotates and revokes keys.
    root: String,
    /// Admin `root` of tenant `globex`.
    globex_admin: String,
    /// Agent `g` of tenant `globex`.
    globex_agent: String,
    /// Operator `mallory` of tenant `globex`.
    globex_operator: String,
}

struct Server {
    base: String,
    addr: SocketAddr,
    authority: Authority,
    keys: Keys,
    http: reqwest::Client,
    _server: LoopbackServer,
}

/// What a request sends: its credentials, extra headers and body.
#[derive(Clone, Default)]
struct Send {
    tenant: Option<&'static str>,
    key: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
}

fn with(key: &str) -> Send {
    Send {
        tenant: Some(TENANT),
        key: Some(key.to_owned()),
        ..Send::default()
    }
}

impl Send {
    fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }

    fn raw(mut self, body: &[u8]) -> Self {
        self.body = Some(body.to_vec());
        self
    }

    fn tenant(mut self, tenant: &'static str) -> Self {
        self.tenant = Some(tenant);
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

struct Answer {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
}

async fn start() -> Server {
    start_with(ServeLimits::default()).await
}

async fn start_with(limits: ServeLimits) -> Server {
    let server = LoopbackServer::scratch(&policies::refunds_and(EXPORTS), limits);
    let authority = server.authority().clone();
    let key = |tenant: &str, spec: KeySpec| {
        authority
            .create_key_with(tenant, spec)
            .wait()
            .unwrap()
            .secret
    };
    let keys = Keys {
        bot: key(TENANT, KeySpec::new("bot", Role::Agent)),
        fleet: key(
            TENANT,
            KeySpec::new("fleet", Role::Agent).agents(AgentSet::parse(["billing-*"]).unwrap()),
        ),
        proxy: key(
            TENANT,
            KeySpec::new("proxy", Role::Agent).agents(AgentSet::parse(["ops"]).unwrap()),
        ),
        alice: key(TENANT, KeySpec::new("alice", Role::Operator)),
        ops: key(TENANT, KeySpec::new("ops", Role::Operator)),
        root: key(TENANT, KeySpec::new("root", Role::Admin)),
        globex_admin: key("globex", KeySpec::new("root", Role::Admin)),
        globex_agent: key("globex", KeySpec::new("g", Role::Agent)),
        globex_operator: key("globex", KeySpec::new("mallory", Role::Operator)),
    };
    Server {
        base: server.base_url(),
        addr: server.addr(),
        authority,
        keys,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        _server: server,
    }
}

impl Server {
    async fn call(&self, method: Method, path: &str, send: Send) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(tenant) = send.tenant {
            request = request.header("X-Tenant-Id", tenant);
        }
        if let Some(key) = &send.key {
            request = request.header("X-API-Key", key);
        }
        for (name, value) in &send.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = send.body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let body = response.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            body,
            retry_after,
        }
    }

    async fn post(&self, path: &str, send: Send) -> Answer {
        self.call(Method::POST, path, send).await
    }

    async fn get(&self, path: &str, send: Send) -> Answer {
        self.call(Method::GET, path, send).await
    }

    /// `/healthz` answers.
    async fn healthy(&self) {
        let health = self.get("/healthz", Send::default()).await;
        assert_eq!(
            (health.status, health.body["status"].as_str()),
            (StatusCode::OK, Some("ok"))
        );
    }

    /// The server answers `/healthz` and a real check.
    async fn alive(&self) {
        self.healthy().await;
        let check = self
            .post(
                "/api/sentinel/action/check",
                with(&self.keys.bot)
                    .json(json!({"action": "refund.create", "params": {"amount_cents": 1}})),
            )
            .await;
        assert_eq!(check.status, StatusCode::OK, "{}", check.body);
    }

    /// One case: the status, the error code (for errors), and the server still answering.
    async fn expect(&self, case: &str, answer: &Answer, status: StatusCode, code: Option<&str>) {
        assert_eq!(answer.status, status, "{case}: {}", answer.body);
        if let Some(code) = code {
            assert_eq!(answer.body["code"], code, "{case}: {}", answer.body);
            assert!(answer.body["detail"].is_string(), "{case}: {}", answer.body);
        }
        self.alive().await;
    }

    fn guard_body(agent: Option<&str>, cents: i64, key: &str) -> Value {
        let mut body = json!({"action": "refund.create", "params": {"amount_cents": cents}, "idempotency_key": key});
        if let Some(agent) = agent {
            body["agent_id"] = json!(agent);
        }
        body
    }
}

const CHECK: &str = "/api/sentinel/action/check";
const GUARD: &str = "/api/sentinel/action/guard";
const GUARD_REPORT: &str = "/api/sentinel/action/guard/report";
const REPORT: &str = "/api/sentinel/action/report";
const OPS: &str = "/api/haltstate/v1";

/// One stateless request and what it must get.
struct Case {
    name: &'static str,
    method: Method,
    path: String,
    send: Send,
    status: StatusCode,
    code: &'static str,
}

#[tokio::test]
async fn stateless_hostile_requests_get_typed_errors_and_the_server_keeps_answering() {
    let s = start().await;
    let k = &s.keys;
    let bot = || with(&k.bot);
    let alice = || with(&k.alice);
    let root = || with(&k.root);
    let refund = |agent: &str| json!({"agent_id": agent, "action": "refund.create", "params": {"amount_cents": 1}});
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let huge = format!(
        r#"{{"action":"x.y","params":{{"blob":"{}"}}}}"#,
        "x".repeat(70 * 1024)
    );
    let case = |name, method: Method, path: &str, send: Send, status, code| Case {
        name,
        method,
        path: path.to_owned(),
        send,
        status,
        code,
    };
    use StatusCode as S;
    let table = vec![
        // Bodies.
        case("malformed json", Method::POST, CHECK, bot().raw(b"{not json"), S::BAD_REQUEST, "invalid_request"),
        case("empty body", Method::POST, CHECK, bot().raw(b""), S::BAD_REQUEST, "invalid_request"),
        case("array body", Method::POST, CHECK, bot().raw(b"[]"), S::BAD_REQUEST, "invalid_request"),
        case("action of the wrong type", Method::POST, CHECK, bot().json(json!({"action": 42})), S::BAD_REQUEST, "invalid_request"),
        case("params of the wrong type", Method::POST, CHECK, bot().json(json!({"action": "x.y", "params": "s"})), S::BAD_REQUEST, "invalid_request"),
        case("missing action", Method::POST, CHECK, bot().json(json!({"agent_id": "bot"})), S::BAD_REQUEST, "invalid_request"),
        case("invalid action name", Method::POST, CHECK, bot().json(json!({"action": "Refund Create"})), S::BAD_REQUEST, "invalid_request"),
        case("empty action", Method::POST, CHECK, bot().json(json!({"action": ""})), S::BAD_REQUEST, "invalid_request"),
        case("body over 64 KiB", Method::POST, CHECK, bot().raw(huge.as_bytes()), S::PAYLOAD_TOO_LARGE, "body_too_large"),
        case("nesting deeper than 32", Method::POST, CHECK, bot().raw(deep.as_bytes()), S::BAD_REQUEST, "invalid_request"),
        case("params over 16 KiB", Method::POST, CHECK, bot().json(json!({"action": "x.y", "params": {"blob": "x".repeat(20_000)}})), S::BAD_REQUEST, "invalid_request"),
        case("number out of range", Method::POST, GUARD, bot().raw(br#"{"action": "x.y", "idempotency_key": "k1", "params": {"a": 1e400}}"#), S::BAD_REQUEST, "invalid_request"),
        case("guard without a key", Method::POST, GUARD, bot().json(refund("bot")), S::BAD_REQUEST, "invalid_request"),
        case("guard with an empty key", Method::POST, GUARD, bot().json(Server::guard_body(None, 1, "")), S::BAD_REQUEST, "invalid_request"),
        case("guard with a 300-byte key", Method::POST, GUARD, bot().json(Server::guard_body(None, 1, &"k".repeat(300))), S::BAD_REQUEST, "invalid_request"),
        case("guard with a 300-byte claim token", Method::POST, GUARD, bot().json(json!({"action": "x.y", "idempotency_key": "k", "claim_token": "t".repeat(300)})), S::BAD_REQUEST, "invalid_request"),
        case("risk flag with a newline", Method::POST, CHECK, bot().json(json!({"action": "x.y", "risk": "money\n"})), S::BAD_REQUEST, "invalid_request"),
        case("resource with a control character", Method::POST, CHECK, bot().json(json!({"action": "x.y", "resource": "order\u{7}1"})), S::BAD_REQUEST, "invalid_request"),
        // Identity names (point 1): the key's agent, canonical, nothing else.
        case("agent id of 1,000 bytes", Method::POST, CHECK, bot().json(json!({"action": "x.y", "agent_id": "a".repeat(1000)})), S::BAD_REQUEST, "invalid_request"),
        case("agent id with a NUL", Method::POST, CHECK, bot().json(refund("b\u{0}ot")), S::BAD_REQUEST, "invalid_request"),
        case("agent id with a zero-width space", Method::POST, CHECK, bot().json(refund("bo\u{200b}t")), S::BAD_REQUEST, "invalid_request"),
        case("agent id with a right-to-left override", Method::POST, CHECK, bot().json(refund("bot\u{202e}")), S::BAD_REQUEST, "invalid_request"),
        case("agent id with a leading space", Method::POST, CHECK, bot().json(refund(" bot")), S::BAD_REQUEST, "invalid_request"),
        case("agent id in Cherokee letters", Method::POST, CHECK, bot().json(refund("ᏴOT")), S::BAD_REQUEST, "invalid_request"),
        case("another agent's name", Method::POST, CHECK, bot().json(refund("exporter")), S::FORBIDDEN, "agent_mismatch"),
        case("a name that extends the key's", Method::POST, GUARD, bot().json(Server::guard_body(Some("bot-2"), 1, "k-bot2")), S::FORBIDDEN, "agent_mismatch"),
        case("a prefix key naming outside its prefix", Method::POST, CHECK, with(&k.fleet).json(refund("billing")), S::FORBIDDEN, "agent_mismatch"),
        case("a prefix key naming no agent", Method::POST, CHECK, with(&k.fleet).json(json!({"action": "x.y"})), S::FORBIDDEN, "agent_mismatch"),
        case("heartbeat for another agent", Method::GET, "/api/sentinel/heartbeat?agent_id=exporter", bot(), S::FORBIDDEN, "agent_mismatch"),
        case("unverified evidence for another agent", Method::POST, "/api/sentinel/action/guard/unverified", bot().json(json!({"evidence_id": "e1", "agent_id": "exporter", "action": "x.y", "idempotency_key": "k", "outcome": "success", "occurred_at": "2026-01-01T00:00:00Z"})), S::FORBIDDEN, "agent_mismatch"),
        case("check report for another agent", Method::POST, REPORT, bot().json(json!({"agent_id": "exporter", "status": "success"})), S::FORBIDDEN, "agent_mismatch"),
        // Roles (point 2): operator keys request nothing; agent keys operate nothing.
        case("operator key on check", Method::POST, CHECK, alice().json(refund("alice")), S::FORBIDDEN, "wrong_role"),
        case("operator key on guard", Method::POST, GUARD, alice().json(Server::guard_body(Some("helper"), 1, "k-op")), S::FORBIDDEN, "wrong_role"),
        case("operator key on guard report", Method::POST, GUARD_REPORT, alice().json(json!({"idempotency_key": "k", "outcome": "error"})), S::FORBIDDEN, "wrong_role"),
        case("operator key on check report", Method::POST, REPORT, alice().json(json!({"status": "success"})), S::FORBIDDEN, "wrong_role"),
        case("operator key on heartbeat", Method::GET, "/api/sentinel/heartbeat", alice(), S::FORBIDDEN, "wrong_role"),
        case("operator key on the approvals stream", Method::GET, "/api/sentinel/approvals/stream", alice(), S::FORBIDDEN, "wrong_role"),
        case("operator key on approvals since", Method::GET, "/api/sentinel/approvals/since", alice(), S::FORBIDDEN, "wrong_role"),
        case("agent key approving", Method::POST, &format!("{OPS}/approvals/apr_x/approve"), bot().json(json!({})), S::FORBIDDEN, "wrong_role"),
        case("agent key on the kill switch", Method::POST, &format!("{OPS}/kill-switch"), bot().json(json!({"state": "RUN"})), S::FORBIDDEN, "wrong_role"),
        case("agent key creating a key", Method::POST, &format!("{OPS}/keys"), bot().json(json!({"name": "x", "role": "operator"})), S::FORBIDDEN, "wrong_role"),
        case("agent key listing keys", Method::GET, &format!("{OPS}/keys"), bot(), S::FORBIDDEN, "wrong_role"),
        case("agent key reading evidence", Method::GET, &format!("{OPS}/evidence"), bot(), S::FORBIDDEN, "wrong_role"),
        case("operator key in X-Admin-Token beside an agent key", Method::GET, &format!("{OPS}/approvals"), bot().header("X-Admin-Token", &k.alice), S::FORBIDDEN, "wrong_role"),
        // Operator bodies.
        case("kill switch acting as someone else", Method::POST, &format!("{OPS}/kill-switch"), alice().json(json!({"state": "KILL", "as": "mallory"})), S::FORBIDDEN, "identity_mismatch"),
        case("kill switch with an unknown state", Method::POST, &format!("{OPS}/kill-switch"), alice().json(json!({"state": "STOP"})), S::BAD_REQUEST, "invalid_request"),
        case("kill switch with an unknown field", Method::POST, &format!("{OPS}/kill-switch"), alice().json(json!({"state": "RUN", "actor": "x"})), S::BAD_REQUEST, "invalid_request"),
        case("approve with an unknown field", Method::POST, &format!("{OPS}/approvals/apr_x/approve"), alice().json(json!({"approver": "bob"})), S::BAD_REQUEST, "invalid_request"),
        case("approve an unknown approval", Method::POST, &format!("{OPS}/approvals/apr_nope/approve"), alice().json(json!({})), S::NOT_FOUND, "approval_not_found"),
        case("key with an invalid name", Method::POST, &format!("{OPS}/keys"), root().json(json!({"name": "a b", "role": "agent"})), S::BAD_REQUEST, "invalid_request"),
        case("duplicate key name", Method::POST, &format!("{OPS}/keys"), root().json(json!({"name": "bot", "role": "agent"})), S::CONFLICT, "duplicate_name"),
        case("duplicate key name in capitals", Method::POST, &format!("{OPS}/keys"), root().json(json!({"name": "ALICE", "role": "operator"})), S::CONFLICT, "duplicate_name"),
        case("operator key with agents", Method::POST, &format!("{OPS}/keys"), root().json(json!({"name": "op2", "role": "operator", "agents": ["x"]})), S::BAD_REQUEST, "invalid_request"),
        case("admin key with agents", Method::POST, &format!("{OPS}/keys"), root().json(json!({"name": "adm2", "role": "admin", "agents": ["x"]})), S::BAD_REQUEST, "invalid_request"),
        case("revoke an unknown key", Method::POST, &format!("{OPS}/keys/key_nope/revoke"), root(), S::NOT_FOUND, "key_not_found"),
        case("rotate an unknown key", Method::POST, &format!("{OPS}/keys/key_nope/rotate"), root(), S::NOT_FOUND, "key_not_found"),
        // Separation of duties (issue 21): operators decide, admins mint; neither does the other's work.
        case("operator key minting an operator key", Method::POST, &format!("{OPS}/keys"), alice().json(json!({"name": "bob-deputy", "role": "operator"})), S::FORBIDDEN, "wrong_role"),
        case("operator key minting an agent key", Method::POST, &format!("{OPS}/keys"), alice().json(json!({"name": "alice-bot", "role": "agent"})), S::FORBIDDEN, "wrong_role"),
        case("operator key revoking a key", Method::POST, &format!("{OPS}/keys/key_nope/revoke"), alice(), S::FORBIDDEN, "wrong_role"),
        case("operator key rotating a key", Method::POST, &format!("{OPS}/keys/key_nope/rotate"), alice(), S::FORBIDDEN, "wrong_role"),
        case("operator key listing keys", Method::GET, &format!("{OPS}/keys"), alice(), S::FORBIDDEN, "wrong_role"),
        case("admin key approving", Method::POST, &format!("{OPS}/approvals/apr_x/approve"), root().json(json!({})), S::FORBIDDEN, "wrong_role"),
        case("admin key on the kill switch", Method::POST, &format!("{OPS}/kill-switch"), root().json(json!({"state": "KILL"})), S::FORBIDDEN, "wrong_role"),
        case("admin key reading evidence", Method::GET, &format!("{OPS}/evidence"), root(), S::FORBIDDEN, "wrong_role"),
        case("admin key guarding", Method::POST, GUARD, root().json(Server::guard_body(Some("root"), 1, "k-admin")), S::FORBIDDEN, "wrong_role"),
        case("evidence with a bad timestamp", Method::GET, &format!("{OPS}/evidence?from=yesterday"), alice(), S::BAD_REQUEST, "invalid_request"),
        case("evidence with a zero limit", Method::GET, &format!("{OPS}/evidence?limit=0"), alice(), S::BAD_REQUEST, "invalid_request"),
        // Check reports (E4, point 6): validated like every other body.
        case("check report with a 60 KB action", Method::POST, REPORT, bot().json(json!({"status": "success", "action": "a".repeat(60_000)})), S::BAD_REQUEST, "invalid_request"),
        case("check report with a 60 KB request id", Method::POST, REPORT, bot().json(json!({"status": "success", "request_id": "r".repeat(60_000)})), S::BAD_REQUEST, "invalid_request"),
        case("check report with a control character in its policy id", Method::POST, REPORT, bot().json(json!({"status": "success", "policy_id": "p\u{1b}[31m"})), S::BAD_REQUEST, "invalid_request"),
        case("check report with an unknown status", Method::POST, REPORT, bot().json(json!({"status": "exploded"})), S::BAD_REQUEST, "invalid_request"),
        case("check report with an unknown decision", Method::POST, REPORT, bot().json(json!({"status": "success", "decision": "QUARANTINE"})), S::BAD_REQUEST, "invalid_request"),
        case("guard report with an unknown outcome", Method::POST, GUARD_REPORT, bot().json(json!({"idempotency_key": "k", "outcome": "meh"})), S::BAD_REQUEST, "invalid_request"),
        case("guard report of a key never guarded", Method::POST, GUARD_REPORT, bot().json(json!({"idempotency_key": "never", "outcome": "success"})), S::CONFLICT, "not_claimed"),
        case("guard report claiming proof it cannot have", Method::POST, GUARD_REPORT, bot().json(json!({"idempotency_key": "k", "outcome": "success", "proof_status": "signed"})), S::BAD_REQUEST, "invalid_request"),
        // Credentials.
        case("no credentials", Method::POST, CHECK, Send::default().json(refund("bot")), S::UNAUTHORIZED, "unauthenticated"),
        case("no key", Method::POST, CHECK, Send { tenant: Some(TENANT), ..Send::default() }.json(refund("bot")), S::UNAUTHORIZED, "unauthenticated"),
        case("wrong key", Method::POST, CHECK, with("hs_wrong").json(refund("bot")), S::UNAUTHORIZED, "unauthenticated"),
        case("unknown tenant", Method::POST, CHECK, bot().tenant("nobody").json(refund("bot")), S::UNAUTHORIZED, "unauthenticated"),
        case("another tenant's key", Method::POST, CHECK, with(&k.globex_agent).json(refund("g")), S::UNAUTHORIZED, "unauthenticated"),
        case("another tenant's operator", Method::GET, &format!("{OPS}/approvals"), with(&k.globex_operator), S::UNAUTHORIZED, "unauthenticated"),
        // Reads.
        case("unknown approval", Method::GET, "/api/sentinel/approval/apr_nope", bot(), S::NOT_FOUND, "approval_not_found"),
        case("path traversal as an approval id", Method::GET, "/api/sentinel/approval/..%2F..%2Fetc%2Fpasswd", bot(), S::NOT_FOUND, "approval_not_found"),
        case("bad since", Method::GET, "/api/sentinel/approvals/since?since=yesterday", bot(), S::BAD_REQUEST, "invalid_request"),
        case("bad limit", Method::GET, "/api/sentinel/approvals/since?limit=abc", bot(), S::BAD_REQUEST, "invalid_request"),
        case("bad last_seen", Method::GET, "/api/sentinel/approvals/stream?last_seen=soon", bot(), S::BAD_REQUEST, "invalid_request"),
        case("unknown route", Method::GET, "/api/sentinel/nope", bot(), S::NOT_FOUND, "not_found"),
        case("wrong method", Method::GET, CHECK, bot(), S::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ];
    assert!(table.len() >= 70, "{} cases", table.len());
    for case in table {
        let answer = s.call(case.method.clone(), &case.path, case.send).await;
        assert!(
            !answer.status.is_redirection(),
            "{}: never a 3xx",
            case.name
        );
        s.expect(case.name, &answer, case.status, Some(case.code))
            .await;
    }
}

// ---- Point 1: the kill switch and policy see the key's agent, whatever the body says --------------------------

#[tokio::test]
async fn a_killed_agent_cannot_guard_under_any_other_name() {
    let s = start().await;
    s.authority
        .set_kill_switch(
            KillScope::new(TENANT, Some("bot")),
            KillState::Kill,
            "alice",
        )
        .await
        .unwrap();
    for (case, agent) in [
        ("its own name", Some("bot")),
        ("its name in capitals", Some("Bot")),
        ("no agent at all", None),
        ("the SDK's placeholder", Some("default")),
    ] {
        let answer = s
            .post(
                GUARD,
                with(&s.keys.bot).json(Server::guard_body(agent, 1, &format!("kill:{case}"))),
            )
            .await;
        s.expect(case, &answer, StatusCode::OK, None).await;
        assert_eq!(answer.body["status"], "denied", "{case}");
        assert_eq!(answer.body["kill_switch"], "KILL", "{case}");
    }
    for (case, agent) in [
        ("another name", "bot-2"),
        ("a policy's principal", "exporter"),
    ] {
        let answer = s
            .post(
                GUARD,
                with(&s.keys.bot).json(Server::guard_body(Some(agent), 1, &format!("kill:{case}"))),
            )
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{case}");
        assert_eq!(answer.body["code"], "agent_mismatch", "{case}");
        s.healthy().await;
    }
    // Nothing was claimed under any name.
    for agent in ["bot", "bot-2"] {
        assert!(
            s.authority
                .idempotency_state(TENANT, agent, "kill:another name")
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn a_policy_naming_a_principal_is_satisfied_only_by_that_agents_key() {
    let s = start().await;
    let export = |agent: &str| json!({"agent_id": agent, "action": "data.export", "idempotency_key": "exp:1"});
    let answer = s
        .post(GUARD, with(&s.keys.bot).json(export("exporter")))
        .await;
    s.expect(
        "bot as exporter",
        &answer,
        StatusCode::FORBIDDEN,
        Some("agent_mismatch"),
    )
    .await;
    let exporter = s
        .authority
        .create_key(TENANT, "exporter", Role::Agent)
        .await
        .unwrap()
        .secret;
    let answer = s
        .post(GUARD, with(&exporter).json(export("exporter")))
        .await;
    s.expect("exporter as exporter", &answer, StatusCode::OK, None)
        .await;
    assert_eq!(answer.body["status"], "allowed");
    assert_eq!(answer.body["policy_id"], "export.exporter");
}

#[tokio::test]
async fn a_prefix_key_acts_as_each_agent_under_its_prefix_and_the_evidence_says_which() {
    let s = start().await;
    let answer = s
        .post(
            GUARD,
            with(&s.keys.fleet).json(Server::guard_body(Some("Billing-EU"), 1, "fleet:1")),
        )
        .await;
    s.expect("billing-eu", &answer, StatusCode::OK, None).await;
    assert_eq!(answer.body["status"], "allowed");
    let records = s
        .authority
        .evidence(
            TENANT,
            &EvidenceQuery {
                idempotency_key: Some("fleet:1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(records[0].agent_id.as_deref(), Some("billing-eu"));
}

// ---- Point 2: separation of duties ---------------------------------------------------------------------------

async fn pending_refund(s: &Server, key: &str, agent: &str, idempotency_key: &str) -> String {
    let answer = s
        .post(
            GUARD,
            with(key).json(Server::guard_body(Some(agent), 90_000, idempotency_key)),
        )
        .await;
    assert_eq!(answer.body["status"], "pending", "{}", answer.body);
    answer.body["approval_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_operator_approves_only_as_themselves_and_never_their_own_request() {
    let s = start().await;
    let id = pending_refund(&s, &s.keys.bot, "bot", "sod:1").await;
    let path = format!("{OPS}/approvals/{id}/approve");
    let approve = |key: &str, body: Value| s.post(&path, with(key).json(body));
    let answer = approve(&s.keys.alice, json!({"as": "bob"})).await;
    s.expect(
        "alice as bob",
        &answer,
        StatusCode::FORBIDDEN,
        Some("identity_mismatch"),
    )
    .await;
    let answer = approve(&s.keys.alice, json!({"as": "carol"})).await;
    s.expect(
        "alice as carol",
        &answer,
        StatusCode::FORBIDDEN,
        Some("identity_mismatch"),
    )
    .await;
    let answer = approve(&s.keys.alice, json!({"as": "Bot"})).await;
    s.expect(
        "alice as the agent",
        &answer,
        StatusCode::FORBIDDEN,
        Some("identity_mismatch"),
    )
    .await;
    assert_eq!(
        s.authority.approval(TENANT, &id).unwrap().status.as_str(),
        "pending"
    );
    let answer = approve(&s.keys.alice, json!({"as": "ALICE", "reason": "ok"})).await;
    s.expect("alice as herself", &answer, StatusCode::OK, None)
        .await;
    assert_eq!(answer.body["approver"], "alice");
    let answer = approve(&s.keys.ops, json!({})).await;
    s.expect(
        "deciding twice",
        &answer,
        StatusCode::CONFLICT,
        Some("approval_decided"),
    )
    .await;
    // The ledger names alice, through the API, and nobody else.
    let approvals: Vec<_> = s
        .authority
        .evidence(
            TENANT,
            &EvidenceQuery {
                idempotency_key: Some("sod:1".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == EvidenceKind::Approval)
        .collect();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].actor.as_deref(), Some("alice"));
    assert_eq!(approvals[0].via, Some(haltstate_authority::Via::Api));

    // An agent key acting as `ops` asks; the operator `ops` may not decide it.
    let own = pending_refund(&s, &s.keys.proxy, "ops", "sod:2").await;
    let answer = s
        .post(
            &format!("{OPS}/approvals/{own}/approve"),
            with(&s.keys.ops).json(json!({})),
        )
        .await;
    s.expect(
        "self-approval",
        &answer,
        StatusCode::FORBIDDEN,
        Some("self_approval"),
    )
    .await;
    let answer = s
        .post(
            &format!("{OPS}/approvals/{own}/reject"),
            with(&s.keys.ops).json(json!({})),
        )
        .await;
    s.expect(
        "self-rejection",
        &answer,
        StatusCode::FORBIDDEN,
        Some("self_approval"),
    )
    .await;
}

#[tokio::test]
async fn another_tenants_operator_cannot_decide_or_see_an_approval() {
    let s = start().await;
    let id = pending_refund(&s, &s.keys.bot, "bot", "iso:1").await;
    let mallory = with(&s.keys.globex_operator).tenant("globex");
    let answer = s
        .post(
            &format!("{OPS}/approvals/{id}/approve"),
            mallory.clone().json(json!({})),
        )
        .await;
    s.expect(
        "mallory approves acme's",
        &answer,
        StatusCode::NOT_FOUND,
        Some("approval_not_found"),
    )
    .await;
    let answer = s
        .get(&format!("{OPS}/approvals/{id}"), mallory.clone())
        .await;
    s.expect(
        "mallory reads acme's",
        &answer,
        StatusCode::NOT_FOUND,
        Some("approval_not_found"),
    )
    .await;
    let answer = s
        .get(
            &format!("/api/sentinel/approval/{id}"),
            with(&s.keys.globex_agent).tenant("globex"),
        )
        .await;
    s.expect(
        "globex's agent reads acme's",
        &answer,
        StatusCode::NOT_FOUND,
        Some("approval_not_found"),
    )
    .await;
    // Within the tenant, another agent's approval is not this key's either.
    let answer = s
        .get(&format!("/api/sentinel/approval/{id}"), with(&s.keys.fleet))
        .await;
    s.expect(
        "another agent's approval",
        &answer,
        StatusCode::NOT_FOUND,
        Some("approval_not_found"),
    )
    .await;
}

// ---- Point 3: a request id is one operation --------------------------------------------------------------------

#[tokio::test]
async fn a_request_id_cannot_carry_an_approval_to_another_operation() {
    let s = start().await;
    let check = |key: &str, agent: &str, cents: i64| {
        s.post(
            CHECK,
            with(key).json(json!({"agent_id": agent, "action": "refund.create", "params": {"amount_cents": cents}, "request_id": "R"})),
        )
    };
    let first = check(&s.keys.bot, "bot", 20_000).await;
    s.expect("first check", &first, StatusCode::OK, None).await;
    assert_eq!(first.body["decision"], "APPROVAL_REQUIRED");
    let id = first.body["approval_id"].as_str().unwrap().to_owned();
    s.authority
        .approve(TENANT, &id, "alice", None)
        .await
        .unwrap();
    let larger = check(&s.keys.bot, "bot", 450_000).await;
    s.expect(
        "same id, larger refund",
        &larger,
        StatusCode::CONFLICT,
        Some("request_id_conflict"),
    )
    .await;
    let elsewhere = check(&s.keys.fleet, "billing-x", 20_000).await;
    s.expect(
        "same id, another agent",
        &elsewhere,
        StatusCode::CONFLICT,
        Some("request_id_conflict"),
    )
    .await;
    let again = check(&s.keys.bot, "bot", 20_000).await;
    s.expect("same id, same operation", &again, StatusCode::OK, None)
        .await;
    assert_eq!(again.body["approval_id"], json!(id));
}

// ---- Point 4: a claim is reported by its holder ----------------------------------------------------------------

#[tokio::test]
async fn a_claim_is_released_only_with_its_token() {
    let s = start().await;
    let mut body = Server::guard_body(None, 1, "claim:1");
    body["claim_token"] = json!("T-holder");
    let granted = s.post(GUARD, with(&s.keys.bot).json(body)).await;
    s.expect("guard with a token", &granted, StatusCode::OK, None)
        .await;
    assert_eq!(granted.body["status"], "allowed");
    let report = |body: Value| s.post(GUARD_REPORT, with(&s.keys.bot).json(body));
    let answer = report(json!({"idempotency_key": "claim:1", "outcome": "error"})).await;
    s.expect(
        "tokenless report",
        &answer,
        StatusCode::CONFLICT,
        Some("claim_token_required"),
    )
    .await;
    let answer =
        report(json!({"idempotency_key": "claim:1", "outcome": "error", "claim_token": "T-other"}))
            .await;
    s.expect(
        "wrong token",
        &answer,
        StatusCode::CONFLICT,
        Some("stale_claim"),
    )
    .await;
    // The holder still holds it: a second guard is in progress, not allowed.
    let second = s
        .post(
            GUARD,
            with(&s.keys.bot).json(Server::guard_body(None, 1, "claim:1")),
        )
        .await;
    s.expect("second guard", &second, StatusCode::OK, None)
        .await;
    assert_eq!(second.body["status"], "in_progress");
    // The token the caller sent is a retry token only: the claim's token is the authority's, 256 random bits.
    let token = granted.body["claim_token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64, "{token}");
    assert_ne!(token, "T-holder");
    let answer = report(
        json!({"idempotency_key": "claim:1", "outcome": "success", "claim_token": "T-holder"}),
    )
    .await;
    s.expect(
        "the caller's own weak token",
        &answer,
        StatusCode::CONFLICT,
        Some("stale_claim"),
    )
    .await;
    // Hostile (issue 21): a key that may act only as other agents, holding the right token, is not the holder.
    let answer = s
        .post(
            GUARD_REPORT,
            with(&s.keys.fleet).json(
                json!({"idempotency_key": "claim:1", "outcome": "success", "claim_token": token}),
            ),
        )
        .await;
    s.expect(
        "the token from another key",
        &answer,
        StatusCode::CONFLICT,
        Some("stale_claim"),
    )
    .await;
    // A retried guard (same key, same retry token) gets the same claim back.
    let mut retried = Server::guard_body(None, 1, "claim:1");
    retried["claim_token"] = json!("T-holder");
    let retried = s.post(GUARD, with(&s.keys.bot).json(retried)).await;
    assert_eq!(
        retried.body["claim_token"],
        token.as_str(),
        "{}",
        retried.body
    );
    let answer =
        report(json!({"idempotency_key": "claim:1", "outcome": "success", "claim_token": token}))
            .await;
    s.expect("the holder reports", &answer, StatusCode::OK, None)
        .await;
    let answer =
        report(json!({"idempotency_key": "claim:1", "outcome": "success", "claim_token": token}))
            .await;
    s.expect("the holder reports again", &answer, StatusCode::OK, None)
        .await;
    assert_eq!(answer.body["duplicate"], true);
}

#[tokio::test]
async fn a_tokenless_claim_is_reported_tokenless_only_by_the_key_that_holds_it() {
    let s = start().await;
    // The official SDKs send no token on guard or report: the server's claim, bound to the asking key.
    let granted = s
        .post(
            GUARD,
            with(&s.keys.fleet).json(Server::guard_body(Some("billing-a"), 1, "sdk:1")),
        )
        .await;
    s.expect("tokenless guard", &granted, StatusCode::OK, None)
        .await;
    let answer = s
        .post(
            GUARD_REPORT,
            with(&s.keys.bot).json(json!({"idempotency_key": "sdk:1", "outcome": "error"})),
        )
        .await;
    s.expect(
        "another key's tokenless report",
        &answer,
        StatusCode::CONFLICT,
        Some("claim_token_required"),
    )
    .await;
    let answer = s
        .post(
            GUARD_REPORT,
            with(&s.keys.fleet).json(json!({"idempotency_key": "sdk:1", "outcome": "success"})),
        )
        .await;
    s.expect(
        "the holder's tokenless report",
        &answer,
        StatusCode::OK,
        None,
    )
    .await;
    assert_eq!(answer.body["state"], "completed");
}

#[tokio::test]
async fn concurrent_duplicate_guards_grant_one_claim() {
    let s = start().await;
    let guards = (0..16).map(|i| {
        let mut body = Server::guard_body(None, 1, "dup:1");
        body["claim_token"] = json!(format!("T{i}"));
        s.post(GUARD, with(&s.keys.bot).json(body))
    });
    let answers = futures_util::future::join_all(guards).await;
    let allowed = answers
        .iter()
        .filter(|a| a.body["status"] == "allowed")
        .count();
    let busy = answers
        .iter()
        .filter(|a| a.body["status"] == "in_progress")
        .count();
    assert_eq!((allowed, busy), (1, 15));
    s.alive().await;
}

// ---- Point 6: check reports, the ledger head, streams, rates ---------------------------------------------------

#[tokio::test]
async fn a_check_report_is_verified_only_for_a_decision_the_authority_made() {
    let s = start().await;
    let check = s
        .post(CHECK, with(&s.keys.bot).json(json!({"action": "refund.create", "params": {"amount_cents": 5}, "request_id": "chk-1"})))
        .await;
    assert_eq!(check.body["decision"], "ALLOW");
    let report = |request_id: &str, decision: &str| {
        s.post(
            REPORT,
            with(&s.keys.bot).json(json!({"request_id": request_id, "action": "refund.create", "status": "success", "decision": decision})),
        )
    };
    for (case, request_id, decision, proof) in [
        ("the decision made", "chk-1", "ALLOW", ProofStatus::Verified),
        (
            "a decision never made",
            "chk-1",
            "APPROVAL_REQUIRED",
            ProofStatus::Unverified,
        ),
        (
            "a check that never happened",
            "chk-nope",
            "ALLOW",
            ProofStatus::Unverified,
        ),
    ] {
        let answer = report(request_id, decision).await;
        s.expect(case, &answer, StatusCode::OK, None).await;
        let seq = answer.body["ledger_seq"].as_u64().unwrap();
        let record = s
            .authority
            .evidence(
                TENANT,
                &EvidenceQuery {
                    after_seq: Some(seq - 1),
                    limit: Some(1),
                    ..Default::default()
                },
            )
            .unwrap()
            .remove(0);
        assert_eq!(record.kind, EvidenceKind::CheckReport, "{case}");
        assert_eq!(record.proof_status, Some(proof), "{case}");
    }
}

#[tokio::test]
async fn the_ledger_head_shows_only_the_operators_tenant() {
    let s = start().await;
    pending_refund(&s, &s.keys.bot, "bot", "head:1").await;
    let acme_head = s.authority.tenant_head(TENANT).unwrap();
    // Another tenant writes after acme: its own chain moves, acme's does not.
    s.authority
        .guard(
            "globex",
            haltstate_authority::GuardRequest::new(
                haltstate_authority::ActionRequest::new("g", "x.y"),
                "g:1",
            ),
        )
        .await
        .unwrap();
    let answer = s
        .get(&format!("{OPS}/ledger/head"), with(&s.keys.alice))
        .await;
    s.expect("ledger head", &answer, StatusCode::OK, None).await;
    assert_eq!(answer.body["tenant"], TENANT);
    assert_eq!(answer.body["seq"], json!(acme_head.seq));
    assert_eq!(answer.body["hash"], json!(acme_head.hash));
    assert!(s.authority.tenant_head("globex").unwrap().seq > 0);
}

/// Reads SSE `data:` lines until the stream ends or `deadline`; answers the events and whether it ended.
async fn read_stream(mut response: reqwest::Response, deadline: Duration) -> (Vec<Value>, bool) {
    let mut events = Vec::new();
    let mut text = String::new();
    let until = tokio::time::Instant::now() + deadline;
    loop {
        match tokio::time::timeout_at(until, response.chunk()).await {
            Err(_) => return (events, false),
            Ok(Err(_)) | Ok(Ok(None)) => return (events, true),
            Ok(Ok(Some(chunk))) => {
                text.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = text.find('\n') {
                    let line: String = text.drain(..=end).collect();
                    if let Some(data) = line.trim_end().strip_prefix("data: ") {
                        events.push(serde_json::from_str(data).unwrap());
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn an_approvals_stream_ends_when_its_key_is_revoked() {
    let s = start().await;
    let doomed = s
        .authority
        .create_key(TENANT, "doomed", Role::Agent)
        .await
        .unwrap();
    let stream = s
        .http
        .get(format!("{}/api/sentinel/approvals/stream", s.base))
        .header("X-Tenant-Id", TENANT)
        .header("X-API-Key", &doomed.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let answer = s
        .post(
            &format!("{OPS}/keys/{}/revoke", doomed.id),
            with(&s.keys.root),
        )
        .await;
    s.expect("revoke", &answer, StatusCode::OK, None).await;
    assert_eq!(answer.body["revoked"], true);
    let (events, ended) = read_stream(stream, Duration::from_secs(5)).await;
    assert!(ended, "the stream outlived its key: {events:?}");
    assert_eq!(
        events.first().map(|e| e["type"].clone()),
        Some(json!("CONNECTED"))
    );
    assert_eq!(
        events
            .last()
            .map(|e| (e["type"].clone(), e["message"].clone())),
        Some((json!("ERROR"), json!("the key was revoked")))
    );
    let answer = s
        .post(CHECK, with(&doomed.secret).json(json!({"action": "x.y"})))
        .await;
    s.expect(
        "the revoked key",
        &answer,
        StatusCode::UNAUTHORIZED,
        Some("unauthenticated"),
    )
    .await;
}

#[tokio::test]
async fn an_address_that_keeps_failing_to_authenticate_gets_429_before_its_keys_are_looked_at() {
    let s = start_with(ServeLimits {
        auth_failures_per_minute: NonZeroU32::new(5).unwrap(),
        ..ServeLimits::default()
    })
    .await;
    let bad = || s.post(CHECK, with("hs_guess").json(json!({"action": "x.y"})));
    for i in 0..5 {
        assert_eq!(bad().await.status, StatusCode::UNAUTHORIZED, "failure {i}");
    }
    let limited = bad().await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.body["code"], "too_many_failures");
    assert!(limited.retry_after.is_some_and(|s| s >= 1), "Retry-After");
    // Even the right key from this address waits: guessing gets no answer about any key.
    let good = s
        .post(CHECK, with(&s.keys.bot).json(json!({"action": "x.y"})))
        .await;
    assert_eq!(good.status, StatusCode::TOO_MANY_REQUESTS);
    s.healthy().await;
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let s = start().await;
    let limited = s
        .authority
        .create_key_with(
            TENANT,
            KeySpec::new("slow", Role::Agent).rate_limit(NonZeroU32::new(2).unwrap()),
        )
        .await
        .unwrap()
        .secret;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..6 {
        let answer = s
            .post(CHECK, with(&limited).json(json!({"action": "x.y"})))
            .await;
        statuses.push(answer.status);
        last = Some(answer);
    }
    assert!(
        statuses[..2].iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let last = last.unwrap();
    s.expect(
        "over the rate",
        &last,
        StatusCode::TOO_MANY_REQUESTS,
        Some("rate_limited"),
    )
    .await;
    assert!(last.retry_after.is_some());
}

#[tokio::test]
async fn keys_are_listed_without_secrets_and_revoked_keys_stop_working() {
    let s = start().await;
    let created = s
        .post(
            &format!("{OPS}/keys"),
            with(&s.keys.root)
                .json(json!({"name": "Temp-Bot", "role": "agent", "agents": ["temp-*"]})),
        )
        .await;
    s.expect("create", &created, StatusCode::OK, None).await;
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let id = created.body["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["key"]["name"], "temp-bot");
    assert_eq!(created.body["key"]["agents"], json!(["temp-*"]));
    let listed = s.get(&format!("{OPS}/keys"), with(&s.keys.root)).await;
    s.expect("list", &listed, StatusCode::OK, None).await;
    assert!(!listed.body.to_string().contains(&secret));
    assert!(!listed.body.to_string().contains("hs_"));
    let answer = s
        .post(
            CHECK,
            with(&secret).json(json!({"agent_id": "temp-1", "action": "x.y"})),
        )
        .await;
    s.expect("the new key works", &answer, StatusCode::OK, None)
        .await;
    let answer = s
        .post(&format!("{OPS}/keys/{id}/revoke"), with(&s.keys.root))
        .await;
    s.expect("revoke", &answer, StatusCode::OK, None).await;
    let answer = s
        .post(
            CHECK,
            with(&secret).json(json!({"agent_id": "temp-1", "action": "x.y"})),
        )
        .await;
    s.expect(
        "the revoked key",
        &answer,
        StatusCode::UNAUTHORIZED,
        Some("unauthenticated"),
    )
    .await;
    let answer = s
        .post(
            &format!("{OPS}/keys/{id}/revoke"),
            with(&s.keys.globex_admin).tenant("globex"),
        )
        .await;
    s.expect(
        "another tenant revokes",
        &answer,
        StatusCode::NOT_FOUND,
        Some("key_not_found"),
    )
    .await;
    // Its name is never given to another key (issue 21: revoke `bob`, make a new `bob`, approve as both).
    let again = s
        .post(
            &format!("{OPS}/keys"),
            with(&s.keys.root).json(json!({"name": "temp-bot", "role": "agent"})),
        )
        .await;
    s.expect(
        "the name, reused",
        &again,
        StatusCode::CONFLICT,
        Some("duplicate_name"),
    )
    .await;
    // A leaked key gets a new secret instead, under its own name.
    let rotated = s
        .post(
            &format!("{OPS}/keys/{}/rotate", created_ops_id(&s).await),
            with(&s.keys.root),
        )
        .await;
    s.expect("rotate", &rotated, StatusCode::OK, None).await;
    let fresh = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(rotated.body["key"]["name"], "ops");
    let old = s.get(&format!("{OPS}/approvals"), with(&s.keys.ops)).await;
    s.expect(
        "the old secret",
        &old,
        StatusCode::UNAUTHORIZED,
        Some("unauthenticated"),
    )
    .await;
    let new = s.get(&format!("{OPS}/approvals"), with(&fresh)).await;
    s.expect("the new secret", &new, StatusCode::OK, None).await;
    // Every key change is in the ledger, with the admin who made it.
    let keys = s
        .authority
        .evidence(TENANT, &EvidenceQuery::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == EvidenceKind::Key)
        .map(|r| (r.status.unwrap(), r.actor.unwrap()))
        .collect::<Vec<_>>();
    for change in ["created", "revoked", "rotated"] {
        assert!(
            keys.contains(&(change.to_owned(), "root".to_owned())),
            "{change}: {keys:?}"
        );
    }
}

/// The id of operator `ops`.
async fn created_ops_id(s: &Server) -> String {
    s.authority
        .keys(TENANT, true)
        .unwrap()
        .into_iter()
        .find(|k| k.name == "ops")
        .unwrap()
        .id
}

// ---- Point 5: connections are bounded --------------------------------------------------------------------------

fn short_limits() -> ServeLimits {
    ServeLimits {
        header_timeout: Duration::from_millis(800),
        body_timeout: Duration::from_millis(800),
        idle_timeout: Duration::from_millis(800),
        ..ServeLimits::default()
    }
}

/// Reads until the server closes the connection (or `within` passes); answers what it sent and whether it closed.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(Ok(n)) => seen.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test]
async fn idle_connections_and_slow_headers_are_closed() {
    let s = start_with(short_limits()).await;
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    let (_, closed) = until_closed(&mut idle, Duration::from_secs(10)).await;
    assert!(closed, "an idle connection stayed open");
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (sent, closed) = until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(closed, "a half-sent head stayed open");
    assert!(!sent.contains("200"), "{sent}");
    s.alive().await;
}

#[tokio::test]
async fn a_kept_alive_connection_serves_requests_until_it_idles() {
    let s = start_with(short_limits()).await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    for _ in 0..3 {
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
    }
    let (_, closed) = until_closed(&mut conn, Duration::from_secs(10)).await;
    assert!(closed);
}

#[tokio::test]
async fn a_slow_body_is_answered_408_and_closed() {
    let s = start_with(short_limits()).await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST {CHECK} HTTP/1.1\r\nHost: x\r\nX-Tenant-Id: {TENANT}\r\nX-API-Key: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"action\"",
        s.keys.bot
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let (sent, closed) = until_closed(&mut conn, Duration::from_secs(10)).await;
    assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
    assert!(sent.contains("body_timeout"), "{sent}");
    assert!(closed);
    s.alive().await;
}

#[tokio::test]
async fn past_the_connection_limit_the_server_still_answers_healthz_and_refuses_the_rest() {
    let s = start_with(ServeLimits {
        max_connections: 4,
        ..ServeLimits::default()
    })
    .await;
    // Four connections hold every place (each has started a request, so none is idle).
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut conn = TcpStream::connect(s.addr).await.unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
        held.push(conn);
    }
    s.healthy().await;
    let refused = s
        .post(CHECK, with(&s.keys.bot).json(json!({"action": "x.y"})))
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.body["code"], "too_many_connections");
    assert_eq!(refused.retry_after, Some(1));
    drop(held);
    // The places come back as the held connections close.
    eventually_async(
        "the server taking requests again",
        Duration::from_secs(5),
        || async {
            (s.post(CHECK, with(&s.keys.bot).json(json!({"action": "x.y"})))
                .await
                .status
                == StatusCode::OK)
                .then_some(())
        },
    )
    .await;
}

#[path = "hostile/governor.rs"]
mod governor;
