//! The server over loopback: the wire contract, auth and the approvals stream. (Hostile inputs and limits are
//! in `hostile.rs`.)

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use haltstate_authority::{Authority, KillScope, KillState, Role};
use haltstate_server::ServeLimits;
use haltstate_testkit::{LoopbackServer, policies};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TENANT: &str = "acme";

struct Server {
    base: String,
    authority: Authority,
    agent_key: String,
    operator_key: String,
    http: reqwest::Client,
    _server: LoopbackServer,
}

async fn start() -> Server {
    let server = LoopbackServer::scratch(policies::REFUNDS, ServeLimits::default());
    let authority = server.authority().clone();
    let agent_key = authority
        .create_key(TENANT, "billing-agent", Role::Agent)
        .await
        .unwrap()
        .secret;
    let operator_key = authority
        .create_key(TENANT, "alice", Role::Operator)
        .await
        .unwrap()
        .secret;
    Server {
        base: server.base_url(),
        authority,
        agent_key,
        operator_key,
        http: reqwest::Client::new(),
        _server: server,
    }
}

impl Server {
    fn url(&self, prefix: &str, path: &str) -> String {
        format!("{}{prefix}/{path}", self.base)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.post_as(&self.agent_key, "/api/sentinel", path, body)
            .await
    }

    async fn post_as(
        &self,
        key: &str,
        prefix: &str,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(prefix, path))
            .header("X-Tenant-Id", TENANT)
            .header("X-API-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url("/api/haltstate/sentinel", path))
            .header("X-Tenant-Id", TENANT)
            .header("X-API-Key", &self.agent_key)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn refund(cents: i64) -> Value {
    json!({ "agent_id": "billing-agent", "action": "refund.create", "params": { "amount_cents": cents } })
}

fn guard(cents: i64, key: &str) -> Value {
    let mut body = refund(cents);
    body["idempotency_key"] = json!(key);
    body
}

#[tokio::test]
async fn check_answers_each_decision_under_both_prefixes() {
    let s = start().await;
    for prefix in [
        "/api/sentinel",
        "/api/haltstate/sentinel",
        "/ops/api/sentinel",
    ] {
        let (status, allow) = s
            .post_as(&s.agent_key, prefix, "action/check", refund(100))
            .await;
        assert_eq!(status, StatusCode::OK, "{prefix}");
        assert_eq!(allow["decision"], "ALLOW");
        assert_eq!(allow["policy_id"], "refunds.small");
        assert!(allow["request_id"].is_string());
    }
    let (_, deny) = s.post("action/check", refund(900_000)).await;
    assert_eq!(
        (deny["decision"].as_str(), deny["reason"].as_str()),
        (Some("DENY"), Some("no policy permits this action"))
    );
    let (_, pending) = s.post("action/check", refund(90_000)).await;
    assert_eq!(pending["decision"], "APPROVAL_REQUIRED");
    let id = pending["approval_id"].as_str().unwrap();
    let (status, approval) = s.get(&format!("approval/{id}")).await;
    assert_eq!(
        (status, approval["status"].as_str()),
        (StatusCode::OK, Some("pending"))
    );
}

#[tokio::test]
async fn guard_pending_approved_runs_once_then_completed() {
    let s = start().await;
    let (_, pending) = s.post("action/guard", guard(90_000, "refund:1")).await;
    assert_eq!(pending["status"], "pending");
    let id = pending["approval_id"].as_str().unwrap().to_owned();
    let (_, again) = s.post("action/guard", guard(90_000, "refund:1")).await;
    assert_eq!(
        again["approval_id"],
        id.as_str(),
        "the same key finds the same approval"
    );

    s.authority
        .approve(TENANT, &id, "alice", Some("ok".into()))
        .await
        .unwrap();
    let (_, approved) = s.post("action/guard", guard(90_000, "refund:1")).await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approver"], "alice");
    assert!(approved["approved_at"].is_string());
    let report = json!({ "idempotency_key": "refund:1", "action": "refund.create", "agent_id": "billing-agent", "outcome": "success", "error": null });
    let (status, ack) = s.post("action/guard/report", report).await;
    assert_eq!(
        (status, ack["state"].as_str()),
        (StatusCode::OK, Some("completed"))
    );
    let (_, replay) = s.post("action/guard", guard(90_000, "refund:1")).await;
    assert_eq!(replay["status"], "completed");
}

#[tokio::test]
async fn allowed_guard_always_sends_the_approval_fields() {
    let s = start().await;
    let (_, allowed) = s.post("action/guard", guard(100, "refund:2")).await;
    assert_eq!(allowed["status"], "allowed");
    let fields = allowed.as_object().unwrap();
    for field in ["approval_id", "approved_at", "approver"] {
        assert!(
            fields.contains_key(field),
            "{field} missing: the 0.7.0 client would invent it"
        );
    }
    assert!(allowed["approval_id"].is_null());
    assert!(allowed["claim_token"].is_string());
}

#[tokio::test]
async fn rejected_approval_answers_denied_with_the_reason() {
    let s = start().await;
    let (_, pending) = s.post("action/guard", guard(90_000, "refund:3")).await;
    let id = pending["approval_id"].as_str().unwrap();
    s.authority
        .reject(TENANT, id, "alice", Some("fraud".into()))
        .await
        .unwrap();
    let (_, denied) = s.post("action/guard", guard(90_000, "refund:3")).await;
    assert_eq!(
        (denied["status"].as_str(), denied["reason"].as_str()),
        (Some("denied"), Some("fraud"))
    );
}

#[tokio::test]
async fn key_conflict_is_409_with_its_code() {
    let s = start().await;
    s.post("action/guard", guard(100, "refund:4")).await;
    let (status, body) = s.post("action/guard", guard(200, "refund:4")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "idempotency_conflict");
    assert!(body["detail"].as_str().unwrap().contains("refund:4"));
}

#[tokio::test]
async fn approvals_since_lists_decisions_after_the_cursor() {
    let s = start().await;
    let since = "2000-01-01T00:00:00.000000";
    let (_, pending) = s.post("action/guard", guard(90_000, "refund:5")).await;
    let (_, empty) = s
        .get(&format!("approvals/since?tenant_id={TENANT}&since={since}"))
        .await;
    assert_eq!(empty["decisions"], json!([]));
    s.authority
        .approve(
            TENANT,
            pending["approval_id"].as_str().unwrap(),
            "alice",
            None,
        )
        .await
        .unwrap();
    let (status, listed) = s
        .get(&format!(
            "approvals/since?tenant_id={TENANT}&since={since}&limit=10"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["decisions"][0]["request_id"], pending["approval_id"]);
    assert_eq!(listed["decisions"][0]["status"], "approved");
    let (status, _) = s.get("approvals/since?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn heartbeat_follows_the_kill_switch() {
    let s = start().await;
    let beat = || async {
        s.get("heartbeat?agent_id=billing-agent").await.1["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(beat().await, "OK");
    s.authority
        .set_kill_switch(
            KillScope::new(TENANT, Some("billing-agent")),
            KillState::Pause,
            "ops",
        )
        .await
        .unwrap();
    assert_eq!(beat().await, "PAUSE");
    s.authority
        .set_kill_switch(KillScope::Tenant(TENANT.into()), KillState::Kill, "ops")
        .await
        .unwrap();
    assert_eq!(beat().await, "KILL");
    let (_, denied) = s.post("action/guard", guard(100, "refund:6")).await;
    assert_eq!(denied["status"], "denied");
    assert!(denied["reason"].as_str().unwrap().contains("kill switch"));
}

#[tokio::test]
async fn approvals_stream_sends_connected_catch_up_then_live_decisions() {
    let s = start().await;
    let (_, first) = s.post("action/guard", guard(90_000, "refund:7")).await;
    let (_, second) = s.post("action/guard", guard(90_000, "refund:8")).await;
    s.authority
        .approve(
            TENANT,
            first["approval_id"].as_str().unwrap(),
            "alice",
            None,
        )
        .await
        .unwrap();

    let mut response = s
        .http
        .get(format!("{}/api/sentinel/approvals/stream?tenant_id={TENANT}&last_seen=2000-01-01T00:00:00%2B00:00", s.base))
        .header("X-Tenant-Id", TENANT)
        .header("X-API-Key", &s.agent_key)
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut events: Vec<Value> = Vec::new();
    let mut text = String::new();
    let mut approved_live = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < 3 && tokio::time::Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find('\n') {
            let line: String = text.drain(..=end).collect();
            if let Some(data) = line.trim_end().strip_prefix("data: ") {
                events.push(serde_json::from_str(data).unwrap());
            }
        }
        if events.len() == 2 && !approved_live {
            approved_live = true;
            s.authority
                .reject(
                    TENANT,
                    second["approval_id"].as_str().unwrap(),
                    "alice",
                    None,
                )
                .await
                .unwrap();
        }
    }
    assert_eq!(events[0]["type"], "CONNECTED");
    assert_eq!(
        (
            events[1]["request_id"].clone(),
            events[1]["catchup"].clone()
        ),
        (first["approval_id"].clone(), json!(true))
    );
    assert_eq!(events[2]["request_id"], second["approval_id"]);
    assert_eq!(
        (events[2]["status"].as_str(), events[2]["catchup"].as_bool()),
        (Some("rejected"), Some(false))
    );
}

#[tokio::test]
async fn bearer_auth_works_and_admin_token_grants_nothing() {
    let s = start().await;
    let url = s.url("/api/sentinel", "action/check");
    let bearer = s
        .http
        .post(&url)
        .header("X-Tenant-Id", TENANT)
        .bearer_auth(&s.agent_key)
        .json(&refund(1))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    let admin = s
        .http
        .post(&url)
        .header("X-Tenant-Id", TENANT)
        .header("X-Admin-Token", &s.operator_key)
        .json(&refund(1))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::UNAUTHORIZED);
}

impl Server {
    async fn operator(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/haltstate/v1/{path}", self.base))
            .header("X-Tenant-Id", TENANT)
            .header("X-API-Key", key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn operator_api_lists_approves_kills_and_queries_evidence() {
    use reqwest::Method;
    let s = start().await;
    let op = s.operator_key.clone();
    let (_, pending) = s.post("action/guard", guard(90_000, "refund:op")).await;
    let id = pending["approval_id"].as_str().unwrap();

    let (status, listed) = s
        .operator(Method::GET, "approvals?status=pending", &op, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["approvals"][0]["id"], id);
    let (_, shown) = s
        .operator(Method::GET, &format!("approvals/{id}"), &op, None)
        .await;
    assert_eq!(shown["idempotency_key"], "refund:op");
    let (status, approved) = s
        .operator(
            Method::POST,
            &format!("approvals/{id}/approve"),
            &op,
            Some(json!({"reason": "ok"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(
        (approved["status"].as_str(), approved["approver"].as_str()),
        (Some("approved"), Some("alice"))
    );
    let (status, again) = s
        .operator(
            Method::POST,
            &format!("approvals/{id}/reject"),
            &op,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (status, again["code"].as_str()),
        (StatusCode::CONFLICT, Some("approval_decided"))
    );

    let (_, killed) = s
        .operator(
            Method::POST,
            "kill-switch",
            &op,
            Some(json!({"state": "KILL", "agent_id": "billing-agent"})),
        )
        .await;
    assert_eq!(killed["state"], "KILL");
    let (_, read) = s
        .operator(Method::GET, "kill-switch?agent_id=billing-agent", &op, None)
        .await;
    assert_eq!(
        (read["state"].as_str(), read["scope"].as_str()),
        (Some("KILL"), Some("agent"))
    );
    let (status, _) = s
        .operator(
            Method::POST,
            "kill-switch",
            &op,
            Some(json!({"state": "MAYBE"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, evidence) = s
        .operator(Method::GET, "evidence?idempotency_key=refund:op", &op, None)
        .await;
    let kinds: Vec<&str> = evidence["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["guard", "approval"]);
    let (_, head) = s.operator(Method::GET, "ledger/head", &op, None).await;
    // The two keys made at the start (key records), the guard, the approval and the kill switch.
    assert_eq!(head["seq"], 5);
}

/// A monitor or witness reads the tenant's newest signed tree head and the proofs that a record is in a tree and
/// that a later tree extends an earlier one; they check with the formats' verifiers, and another tenant's operator
/// reads only its own log.
#[tokio::test]
async fn the_log_serves_its_signed_tree_head_and_proofs_to_monitors() {
    use base64::Engine;
    use haltstate_authority::proof::{verify_consistency, verify_inclusion, verify_tree_head};
    use reqwest::Method;
    let s = start().await;
    let op = s.operator_key.clone();
    let text = |path: &str| {
        let request = s
            .http
            .get(s.url("/api/haltstate/v1", path))
            .header("X-Tenant-Id", TENANT)
            .header("X-API-Key", &op);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let hashes = |body: &str| -> Vec<[u8; 32]> {
        body.lines()
            .map(|l| {
                base64::engine::general_purpose::STANDARD
                    .decode(l)
                    .unwrap()
                    .try_into()
                    .unwrap()
            })
            .collect()
    };
    let (status, _) = s
        .operator(Method::GET, "ledger/checkpoint", &op, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing signed yet");
    for i in 0..5 {
        let (_, answer) = s
            .post("action/guard", guard(100, &format!("mon:{i}")))
            .await;
        assert_eq!(answer["status"], "allowed", "{answer}");
    }
    let key = haltstate_authority::SigningKey::generate();
    s.authority.checkpoint(&key).unwrap();
    let (status, note) = text("ledger/checkpoint").await;
    assert_eq!(status, StatusCode::OK);
    let head = verify_tree_head(&note, &format!("haltstate/{TENANT}"), &key.public()).unwrap();
    // The two keys made at the start and five guards.
    assert_eq!(head.size, 7);
    let (status, proof) = text("ledger/inclusion?seq=4&size=7").await;
    assert_eq!(status, StatusCode::OK);
    let body = s.authority.record_body(TENANT, 4).unwrap();
    verify_inclusion(&hashes(&proof), &head, 3, &body).unwrap();
    let earlier = s.authority.tree_head_at(TENANT, 3).unwrap();
    let (status, proof) = text("ledger/consistency?old=3&new=7").await;
    assert_eq!(status, StatusCode::OK);
    verify_consistency(&hashes(&proof), &earlier, &head).unwrap();
    // Sizes the log does not hold, and bad numbers, are refused.
    for bad in [
        "ledger/consistency?old=3&new=70",
        "ledger/consistency?old=5&new=3",
        "ledger/consistency?old=x&new=3",
        "ledger/inclusion?seq=0&size=7",
        "ledger/inclusion?seq=8&size=7",
        "ledger/inclusion?seq=1",
    ] {
        let (status, _) = s.operator(Method::GET, bad, &op, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // Another tenant's operator: its own (empty) log, never this one's.
    let other = s
        .authority
        .create_key("globex", "bob", Role::Operator)
        .await
        .unwrap()
        .secret;
    let response = s
        .http
        .get(s.url("/api/haltstate/v1", "ledger/consistency?old=3&new=7"))
        .header("X-Tenant-Id", "globex")
        .header("X-API-Key", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn agent_keys_get_403_on_every_operator_endpoint() {
    use reqwest::Method;
    let s = start().await;
    let endpoints = [
        (Method::GET, "approvals"),
        (Method::GET, "approvals/apr_x"),
        (Method::POST, "approvals/apr_x/approve"),
        (Method::POST, "approvals/apr_x/reject"),
        (Method::GET, "kill-switch"),
        (Method::POST, "kill-switch"),
        (Method::GET, "evidence"),
        (Method::GET, "ledger/head"),
        (Method::GET, "ledger/checkpoint"),
        (Method::GET, "ledger/consistency?old=0&new=1"),
        (Method::GET, "ledger/inclusion?seq=1&size=1"),
        (Method::GET, "keys"),
        (Method::POST, "keys"),
        (Method::POST, "keys/key_x/revoke"),
    ];
    for (method, path) in endpoints {
        let (status, body) = s
            .operator(
                method.clone(),
                path,
                &s.agent_key,
                Some(json!({"state": "KILL"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_eq!(body["code"], "wrong_role");
    }
    assert_eq!(
        s.authority.kill_switch(TENANT, None).unwrap().state,
        KillState::Run
    );
}

#[tokio::test]
async fn operators_of_another_tenant_see_and_decide_nothing_here() {
    use reqwest::Method;
    let s = start().await;
    let (_, pending) = s.post("action/guard", guard(90_000, "refund:iso")).await;
    let id = pending["approval_id"].as_str().unwrap();
    let mallory = s
        .authority
        .create_key("globex", "mallory", Role::Operator)
        .await
        .unwrap()
        .secret;
    let as_globex = |method: Method, path: String, body: Option<Value>| {
        let request = s
            .http
            .request(method, format!("{}/api/haltstate/v1/{path}", s.base))
            .header("X-Tenant-Id", "globex")
            .header("X-API-Key", &mallory);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        as_globex(Method::GET, format!("approvals/{id}"), None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        as_globex(
            Method::POST,
            format!("approvals/{id}/approve"),
            Some(json!({}))
        )
        .await,
        StatusCode::NOT_FOUND
    );
    let (_, listed) = (
        StatusCode::OK,
        s.authority.approvals("globex", None, 10).unwrap(),
    );
    assert!(listed.is_empty());
    // Mallory's tenant header with our operator key fails authentication outright.
    let cross = s
        .http
        .get(format!("{}/api/haltstate/v1/approvals", s.base))
        .header("X-Tenant-Id", "globex")
        .header("X-API-Key", &s.operator_key)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.authority.approval(TENANT, id).unwrap().status,
        haltstate_authority::ApprovalStatus::Pending
    );
}

#[tokio::test]
async fn unverified_evidence_is_accepted_once_per_evidence_id() {
    let s = start().await;
    let evidence = json!({
        "evidence_id": "ev-42", "agent_id": "billing-agent", "action": "refund.create",
        "idempotency_key": "refund:42", "outcome": "success", "occurred_at": "2026-01-05T10:00:00Z"
    });
    let (status, first) = s.post("action/guard/unverified", evidence.clone()).await;
    assert_eq!(
        (status, first["duplicate"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let (_, second) = s.post("action/guard/unverified", evidence).await;
    assert_eq!(
        (second["duplicate"].as_bool(), second["ledger_seq"].clone()),
        (Some(true), first["ledger_seq"].clone())
    );
    let (status, bad) = s
        .post("action/guard/unverified", json!({"evidence_id": "x"}))
        .await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

/// Every endpoint, with tenant A's keys, aimed at tenant B: nothing of B's is read, decided or switched.
#[tokio::test]
async fn tenant_isolation_matrix_over_every_endpoint() {
    use reqwest::Method;
    let s = start().await;
    // Tenant B ("globex") has a pending approval, a decided one, and evidence.
    let big = |key: &str| {
        haltstate_authority::GuardRequest::new(
            haltstate_authority::ActionRequest::new("g", "refund.create")
                .param("amount_cents", json!(90_000)),
            key,
        )
    };
    let b_id = s
        .authority
        .guard("globex", big("b:1"))
        .await
        .unwrap()
        .approval_id
        .unwrap();
    let decided = s
        .authority
        .guard("globex", big("b:2"))
        .await
        .unwrap()
        .approval_id
        .unwrap();
    s.authority
        .approve("globex", &decided, "bob", None)
        .await
        .unwrap();
    let guard_b = json!({"agent_id": "g", "action": "refund.create", "params": {"amount_cents": 90_000}, "idempotency_key": "b:1"});

    for (role, key) in [
        ("agent", s.agent_key.clone()),
        ("operator", s.operator_key.clone()),
    ] {
        let send = |method: Method, path: String, body: Option<Value>, tenant: &'static str| {
            let mut request = s
                .http
                .request(method, format!("{}{path}", s.base))
                .header("X-Tenant-Id", tenant)
                .header("X-API-Key", &key);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move {
                let response = request.send().await.unwrap();
                let status = response.status();
                (
                    status,
                    response.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
        // A's key presented as tenant B: refused outright, on every endpoint.
        for (method, path) in [
            (Method::POST, "/api/sentinel/action/check"),
            (Method::POST, "/api/sentinel/action/guard"),
            (Method::POST, "/api/sentinel/action/guard/report"),
            (Method::POST, "/api/sentinel/action/report"),
            (Method::GET, "/api/sentinel/approvals/since"),
            (Method::GET, "/api/sentinel/approvals/stream"),
            (Method::GET, "/api/sentinel/heartbeat"),
            (Method::GET, "/api/haltstate/v1/approvals"),
            (Method::POST, "/api/haltstate/v1/kill-switch"),
            (Method::GET, "/api/haltstate/v1/evidence"),
            (Method::GET, "/api/haltstate/v1/ledger/head"),
        ] {
            let (status, _) = send(
                method.clone(),
                path.to_owned(),
                Some(guard_b.clone()),
                "globex",
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{role} key as globex: {method} {path}"
            );
        }
        let (status, _) = send(
            Method::GET,
            format!("/api/sentinel/approval/{b_id}"),
            None,
            "globex",
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{role}: approval/{{id}} as globex"
        );

        // A's key as A, naming B's resources: nothing found, nothing listed. (The wire contract's routes take
        // agent keys only: an operator key gets 403 there.)
        let (status, _) = send(
            Method::GET,
            format!("/api/sentinel/approval/{b_id}"),
            None,
            TENANT,
        )
        .await;
        let expected = match role {
            "agent" => StatusCode::NOT_FOUND,
            _ => StatusCode::FORBIDDEN,
        };
        assert_eq!(status, expected, "{role}: B's approval through E5");
        if role == "agent" {
            let (_, since) = send(
                Method::GET,
                "/api/sentinel/approvals/since?since=2000-01-01T00:00:00Z".into(),
                None,
                TENANT,
            )
            .await;
            assert_eq!(
                since["decisions"],
                json!([]),
                "{role}: B's decisions through E6"
            );
        }
        if role == "operator" {
            for verb in ["approve", "reject"] {
                let (status, _) = send(
                    Method::POST,
                    format!("/api/haltstate/v1/approvals/{b_id}/{verb}"),
                    Some(json!({})),
                    TENANT,
                )
                .await;
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "operator: {verb} B's approval"
                );
            }
            let (status, _) = send(
                Method::GET,
                format!("/api/haltstate/v1/approvals/{b_id}"),
                None,
                TENANT,
            )
            .await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            let (_, listed) = send(
                Method::GET,
                "/api/haltstate/v1/approvals".into(),
                None,
                TENANT,
            )
            .await;
            assert_eq!(listed["approvals"], json!([]));
            let (_, evidence) = send(
                Method::GET,
                "/api/haltstate/v1/evidence".into(),
                None,
                TENANT,
            )
            .await;
            assert!(
                evidence["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|r| r["tenant"] == TENANT)
            );
            // A kill from A's operator is A's alone.
            let (status, _) = send(
                Method::POST,
                "/api/haltstate/v1/kill-switch".into(),
                Some(json!({"state": "KILL"})),
                TENANT,
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                s.authority.kill_switch("globex", None).unwrap().state,
                KillState::Run
            );
            let (status, _) = send(
                Method::POST,
                "/api/haltstate/v1/kill-switch".into(),
                Some(json!({"state": "RUN"})),
                TENANT,
            )
            .await;
            assert_eq!(status, StatusCode::OK);
        } else {
            let (status, _) = send(
                Method::POST,
                format!("/api/haltstate/v1/approvals/{b_id}/approve"),
                Some(json!({})),
                TENANT,
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "an agent key never approves");
        }
    }
    assert_eq!(
        s.authority.approval("globex", &b_id).unwrap().status,
        haltstate_authority::ApprovalStatus::Pending
    );
}

/// A browser without a cookie jar: redirects are not followed, so each answer can be looked at.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The session cookie a sign-in set (`name=value`), and the whole `Set-Cookie` header.
async fn sign_in(s: &Server, tenant: &str, key: &str) -> (StatusCode, Option<(String, String)>) {
    let response = post_sign_in(s, tenant, key, &[]).await;
    // A refused sign-in sets a new form cookie, never a session.
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|header| header.starts_with("haltstate_session="))
        .map(|header| (header.split(';').next().unwrap().to_owned(), header));
    (response.status(), cookie)
}

/// Posts the sign-in form (with its cookie and token, and `extra` fields) as a browser would; the answer.
async fn post_sign_in(
    s: &Server,
    tenant: &str,
    key: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let (login_cookie, csrf) = login_form(s).await;
    let mut fields = vec![("tenant", tenant), ("key", key), ("csrf", csrf.as_str())];
    fields.extend_from_slice(extra);
    browser()
        .post(format!("{}/ui/login", s.base))
        .header("cookie", login_cookie)
        .form(&fields)
        .send()
        .await
        .unwrap()
}

/// The sign-in form's cookie (`name=value`) and CSRF token, as a browser gets them.
async fn login_form(s: &Server) -> (String, String) {
    let response = browser()
        .get(format!("{}/ui/login", s.base))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    (cookie, csrf_of(&response.text().await.unwrap()))
}

async fn page(cookie: &str, url: String) -> (StatusCode, String) {
    let response = browser()
        .get(url)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[start..start + 64].to_owned()
}

async fn decide_in_console(
    s: &Server,
    cookie: &str,
    id: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    post_form(
        cookie,
        format!("{}/ui/approvals/{id}/decide", s.base),
        fields,
    )
    .await
}

#[tokio::test]
async fn an_operator_approves_in_the_console_and_the_agents_retry_runs() {
    let s = start().await;
    let big = json!({"action": "refund.create", "params": {"amount_cents": 90_000, "note": "<script>alert(1)</script>"}, "idempotency_key": "ui:1"});
    let (_, pending) = s.post("action/guard", big.clone()).await;
    assert_eq!(pending["status"], "pending", "{pending}");
    let id = pending["approval_id"].as_str().unwrap().to_owned();

    // Not signed in: every page sends the browser to sign in.
    let response = browser()
        .get(format!("{}/ui/inbox", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/ui/login?next=%2Fui%2Finbox"
    );
    // A wrong key, and an agent's key, do not sign in; neither sets a cookie.
    assert_eq!(
        sign_in(&s, TENANT, "hs_wrong").await,
        (StatusCode::UNAUTHORIZED, None)
    );
    assert_eq!(
        sign_in(&s, TENANT, &s.agent_key).await,
        (StatusCode::UNAUTHORIZED, None)
    );
    let (status, cookie) = sign_in(&s, TENANT, &s.operator_key).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (cookie, header) = cookie.unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age="] {
        assert!(header.contains(attribute), "{header}");
    }
    assert!(
        !header.contains("Secure"),
        "plain HTTP: no Secure attribute"
    );
    assert!(
        !header.contains(&s.operator_key),
        "the key never reaches the browser"
    );

    // The inbox shows the approval, with the param as text.
    let (status, html) = page(&cookie, format!("{}/ui/inbox", s.base)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&id) && html.contains("refund.create") && html.contains("refunds.large"));
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        !html.contains("<script>alert"),
        "a param was rendered as markup"
    );
    let csrf = csrf_of(&html);

    // Without the session's CSRF token nothing changes.
    let (status, _) = decide_in_console(&s, &cookie, &id, &[("verdict", "approve")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = decide_in_console(
        &s,
        &cookie,
        &id,
        &[("verdict", "approve"), ("csrf", &"0".repeat(64))],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.authority.approval(TENANT, &id).unwrap().status,
        haltstate_authority::ApprovalStatus::Pending
    );

    // Approved as the signed-in operator, through the console.
    let (status, html) = decide_in_console(
        &s,
        &cookie,
        &id,
        &[
            ("verdict", "approve"),
            ("csrf", &csrf),
            ("reason", "checked the order"),
        ],
    )
    .await;
    // A redirect (reloading never posts again) to the inbox, whose message says who decided what.
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        html.contains("alice approved <strong>refund.create</strong> requested by"),
        "{html}"
    );
    assert!(html.contains("“checked the order”"), "{html}");
    let approval = s.authority.approval(TENANT, &id).unwrap();
    assert_eq!(approval.approver.as_deref(), Some("alice"));
    let evidence = s
        .authority
        .evidence(TENANT, &haltstate_authority::EvidenceQuery::default())
        .unwrap();
    assert!(
        evidence
            .iter()
            .any(|r| r.approval_id.as_deref() == Some(id.as_str())
                && r.via == Some(haltstate_authority::Via::Console)),
        "the decision is recorded via the console"
    );
    // The agent's retry with the same key runs.
    let (_, retry) = s.post("action/guard", big).await;
    assert_eq!(retry["status"], "approved", "{retry}");

    // A second decision (another tab, another operator) is shown what happened, not recorded.
    // A rejection needs a reason.
    let (status, html) =
        decide_in_console(&s, &cookie, &id, &[("verdict", "reject"), ("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("A rejection needs a reason"), "{html}");
    let (status, html) = decide_in_console(
        &s,
        &cookie,
        &id,
        &[("verdict", "reject"), ("csrf", &csrf), ("reason", "no")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(html.contains("was already approved by alice"), "{html}");
    assert_eq!(
        s.authority.approval(TENANT, &id).unwrap().status,
        haltstate_authority::ApprovalStatus::Approved
    );
}

#[tokio::test]
async fn the_console_is_tenant_scoped_and_sign_out_or_revocation_ends_the_session() {
    let s = start().await;
    // Another tenant's pending approval.
    let globex_id = s
        .authority
        .guard(
            "globex",
            haltstate_authority::GuardRequest::new(
                haltstate_authority::ActionRequest::new("g-agent", "refund.create")
                    .param("amount_cents", json!(90_000)),
                "g:2",
            ),
        )
        .await
        .unwrap()
        .approval_id
        .unwrap();
    let (_, cookie) = sign_in(&s, TENANT, &s.operator_key).await;
    let (cookie, _) = cookie.unwrap();
    let (_, html) = page(&cookie, format!("{}/ui/inbox", s.base)).await;
    assert!(
        !html.contains(&globex_id),
        "another tenant's approval is listed"
    );
    let csrf = csrf_of(&html);
    let (status, _) = decide_in_console(
        &s,
        &cookie,
        &globex_id,
        &[("verdict", "approve"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.authority.approval("globex", &globex_id).unwrap().status,
        haltstate_authority::ApprovalStatus::Pending
    );

    // Behind TLS (a proxy says so) the cookie is Secure.
    let (login_cookie, login_csrf) = login_form(&s).await;
    let response = browser()
        .post(format!("{}/ui/login", s.base))
        .header("x-forwarded-proto", "https")
        .header("cookie", &login_cookie)
        .form(&[
            ("tenant", TENANT),
            ("key", s.operator_key.as_str()),
            ("csrf", login_csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
    // The sign-in form itself needs its token: posted from elsewhere, it signs nobody in.
    let response = browser()
        .post(format!("{}/ui/login", s.base))
        .form(&[("tenant", TENANT), ("key", s.operator_key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("haltstate_session=")),
        "a sign-in without its form token started a session"
    );

    // Sign-out needs the CSRF token, then ends the session: the same cookie no longer works.
    let response = browser()
        .post(format!("{}/ui/logout", s.base))
        .header("cookie", &cookie)
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = browser()
        .post(format!("{}/ui/logout", s.base))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        page(&cookie, format!("{}/ui/inbox", s.base)).await.0,
        StatusCode::SEE_OTHER
    );

    // A session whose key is revoked ends at its next request.
    let (_, second) = sign_in(&s, TENANT, &s.operator_key).await;
    let (second, _) = second.unwrap();
    assert_eq!(
        page(&second, format!("{}/ui/inbox", s.base)).await.0,
        StatusCode::OK
    );
    let alice = s.authority.authenticate(TENANT, &s.operator_key).unwrap();
    s.authority.revoke_key(TENANT, &alice.key_id).await.unwrap();
    assert_eq!(
        page(&second, format!("{}/ui/inbox", s.base)).await.0,
        StatusCode::SEE_OTHER
    );
}

/// Reads an SSE body until `needle` arrives (or ten seconds pass).
async fn until_event(mut response: reqwest::Response, needle: &str) -> bool {
    let mut seen = String::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(needle) {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or(false)
}

#[tokio::test]
async fn the_inbox_hears_of_new_and_decided_approvals_without_a_reload() {
    let s = start().await;
    let (_, cookie) = sign_in(&s, TENANT, &s.operator_key).await;
    let (cookie, _) = cookie.unwrap();
    let (_, html) = page(&cookie, format!("{}/ui/inbox", s.base)).await;
    assert!(html.contains("<script src=\"/ui/console.js\">"));
    let (status, script) = page(&cookie, format!("{}/ui/console.js", s.base)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(script.contains("new EventSource(\"/ui/events\")"));

    // Not signed in: no stream.
    let anonymous = browser()
        .get(format!("{}/ui/events", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let events = || {
        browser()
            .get(format!("{}/ui/events", s.base))
            .header("cookie", &cookie)
            .send()
    };
    let stream = events().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let (_, pending) = s
        .post(
            "action/guard",
            json!({"action": "refund.create", "params": {"amount_cents": 90_000}, "idempotency_key": "live:1"}),
        )
        .await;
    assert!(
        until_event(stream, "event: changed").await,
        "a new approval was not announced"
    );
    let stream = events().await.unwrap();
    let id = pending["approval_id"].as_str().unwrap();
    s.authority.approve(TENANT, id, "bob", None).await.unwrap();
    assert!(
        until_event(stream, "event: changed").await,
        "a decision was not announced"
    );
}

/// Posts a console form; a `303 See Other` answer is followed as a browser would (the page it names is fetched
/// with the same cookie) and answered with its status, 303, and the page's text.
async fn post_form(cookie: &str, url: String, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let response = browser()
        .post(&url)
        .header("cookie", cookie)
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = response.status();
    if status == StatusCode::SEE_OTHER {
        let location = response.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(location.starts_with("/ui/"), "{location}");
        let origin = &url[..url.find("/ui/").unwrap()];
        let (_, html) = page(cookie, format!("{origin}{location}")).await;
        return (status, html);
    }
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn the_console_flips_the_kill_switch_after_a_confirmation_and_manages_keys() {
    let s = start().await;
    let (_, cookie) = sign_in(&s, TENANT, &s.operator_key).await;
    let (cookie, _) = cookie.unwrap();
    let (status, html) = page(&cookie, format!("{}/ui/kill", s.base)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<strong id=\"tenant-state\">RUN</strong>"),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let kill_url = format!("{}/ui/kill", s.base);
    let agent_state = || {
        s.authority
            .kill_switch(TENANT, Some("exporter"))
            .unwrap()
            .state
    };

    // Review first: nothing changes until confirmed.
    let (status, html) = post_form(
        &cookie,
        kill_url.clone(),
        &[
            ("csrf", &csrf),
            ("step", "review"),
            ("agent", "exporter"),
            ("state", "pause"),
            ("reason", "runaway exports"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Set <strong>agent exporter</strong> to <strong>PAUSE</strong>?"),
        "{html}"
    );
    assert_eq!(agent_state(), KillState::Run);
    // A confirmation without the token is refused.
    let (status, _) = post_form(
        &cookie,
        kill_url.clone(),
        &[
            ("step", "confirm"),
            ("agent", "exporter"),
            ("state", "pause"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(agent_state(), KillState::Run);
    let (status, html) = post_form(
        &cookie,
        kill_url,
        &[
            ("csrf", &csrf),
            ("step", "confirm"),
            ("agent", "exporter"),
            ("state", "pause"),
            ("reason", "runaway exports"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        html.contains("alice recorded: agent exporter set to PAUSE: runaway exports."),
        "{html}"
    );
    // The switch's history says who, when and why.
    let history = &html[html.find("id=\"kill-history\"").unwrap()..];
    assert!(
        history.contains("alice") && history.contains("runaway exports"),
        "{history}"
    );
    assert_eq!(agent_state(), KillState::Pause);
    let records = s
        .authority
        .evidence(TENANT, &haltstate_authority::EvidenceQuery::default())
        .unwrap();
    let change = records.last().unwrap();
    assert_eq!(change.actor.as_deref(), Some("alice"));
    assert_eq!(change.via, Some(haltstate_authority::Via::Console));

    // Keys: an operator sees them but cannot make one (issue 21: operators decide, admins mint).
    let fields = [
        ("csrf", csrf.as_str()),
        ("name", "reports-bot"),
        ("role", "agent"),
        ("agents", "reports-*"),
    ];
    let (status, html) = post_form(&cookie, format!("{}/ui/keys", s.base), &fields).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("revoked by admins"), "{html}");
    let (_, list) = page(&cookie, format!("{}/ui/keys", s.base)).await;
    assert!(
        !list.contains("action=\"/ui/keys\""),
        "an operator is offered the form"
    );
    // An admin signs in to the keys page only.
    let admin = s
        .authority
        .create_key(TENANT, "root", haltstate_authority::Role::Admin)
        .await
        .unwrap();
    let (_, admin_cookie) = sign_in(&s, TENANT, &admin.secret).await;
    let (cookie, _) = admin_cookie.unwrap();
    let (status, _) = page(&cookie, format!("{}/ui/inbox", s.base)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an admin reaches the inbox");
    let (status, html) = page(&cookie, format!("{}/ui/keys", s.base)).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&html);
    // A new key's secret is shown once and works; revoking it in the console ends it.
    let fields = [
        ("csrf", csrf.as_str()),
        ("name", "reports-bot"),
        ("role", "agent"),
        ("agents", "reports-*"),
    ];
    let (status, html) = post_form(&cookie, format!("{}/ui/keys", s.base), &fields).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let start = html.find("<code id=\"secret\">").unwrap() + "<code id=\"secret\">".len();
    let secret = &html[start..start + html[start..].find('<').unwrap()];
    let principal = s.authority.authenticate(TENANT, secret).unwrap();
    assert_eq!(principal.name, "reports-bot");
    let (_, list) = page(&cookie, format!("{}/ui/keys", s.base)).await;
    assert!(list.contains("reports-bot") && list.contains("reports-*"));
    assert!(!list.contains(secret), "a secret is listed");
    // Revoking asks first, and for a reason; nothing changes until confirmed.
    let revoke = format!("{}/ui/keys/{}/revoke", s.base, principal.key_id);
    let (status, html) = post_form(&cookie, revoke.clone(), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Revoke reports-bot?"), "{html}");
    assert!(s.authority.authenticate(TENANT, secret).is_ok());
    let (status, html) = post_form(
        &cookie,
        revoke,
        &[
            ("csrf", &csrf),
            ("step", "confirm"),
            ("reason", "leaked in a log"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(html.contains("revoked: leaked in a log by root."), "{html}");
    assert!(s.authority.authenticate(TENANT, secret).is_err());
}

/// A ledger longer than a history page reads (1,000 records): the console shows its newest records, and the
/// operator API answers the newest first when asked (both used to begin at the tenant's first record).
#[tokio::test]
async fn the_history_page_and_the_evidence_api_show_a_long_ledgers_newest_records() {
    use reqwest::Method;
    let s = start().await;
    for i in 0..1_100 {
        let request = haltstate_authority::GuardRequest::new(
            haltstate_authority::ActionRequest::new("bot", "refund.create")
                .param("amount_cents", json!(500)),
            format!("long:{i:04}"),
        );
        s.authority.guard(TENANT, request).await.unwrap();
    }
    let (_, cookie) = sign_in(&s, TENANT, &s.operator_key).await;
    let (cookie, _) = cookie.unwrap();
    let (status, html) = page(&cookie, format!("{}/ui/history", s.base)).await;
    assert_eq!(status, StatusCode::OK);
    // A page: the newest 200.
    for (key, shown) in [
        ("long:1099", true),
        ("long:0900", true),
        ("long:0899", false),
        ("long:0000", false),
    ] {
        assert_eq!(html.contains(key), shown, "{key}");
    }
    assert!(
        html.find("long:1099") < html.find("long:1098"),
        "newest first"
    );
    let (_, html) = page(
        &cookie,
        format!("{}/ui/history?action=refund.create", s.base),
    )
    .await;
    assert!(html.contains("long:1099") && !html.contains("long:0899"));

    let keys = |answer: &Value| -> Vec<String> {
        answer["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["idempotency_key"].as_str().unwrap_or("-").to_owned())
            .collect()
    };
    let op = s.operator_key.clone();
    let (status, newest) = s
        .operator(Method::GET, "evidence?newest_first=true&limit=2", &op, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&newest), ["long:1099", "long:1098"]);
    let (_, oldest) = s
        .operator(
            Method::GET,
            "evidence?action=refund.create&limit=2",
            &op,
            None,
        )
        .await;
    assert_eq!(keys(&oldest), ["long:0000", "long:0001"]);
    let (status, refused) = s
        .operator(Method::GET, "evidence?newest_first=yes", &op, None)
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

#[tokio::test]
async fn the_console_searches_history_shows_a_keys_timeline_with_hashes_and_verifies_the_chain() {
    let s = start().await;
    for (key, cents) in [("hist:small", 500), ("hist:big", 90_000)] {
        s.post(
            "action/guard",
            json!({"action": "refund.create", "params": {"amount_cents": cents}, "idempotency_key": key}),
        )
        .await;
    }
    s.authority
        .guard(
            "globex",
            haltstate_authority::GuardRequest::new(
                haltstate_authority::ActionRequest::new("g", "refund.create")
                    .param("amount_cents", json!(500)),
                "globex:secret-key",
            ),
        )
        .await
        .unwrap();
    let (_, cookie) = sign_in(&s, TENANT, &s.operator_key).await;
    let (cookie, _) = cookie.unwrap();

    let (status, html) = page(&cookie, format!("{}/ui/history", s.base)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("hist:small") && html.contains("hist:big"));
    assert!(
        !html.contains("globex:secret-key"),
        "another tenant's evidence is listed"
    );
    let (_, html) = page(&cookie, format!("{}/ui/history?decision=pending", s.base)).await;
    assert!(
        html.contains("hist:big") && !html.contains("hist:small"),
        "{html}"
    );
    let (status, _) = page(&cookie, format!("{}/ui/history?from=yesterday", s.base)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, html) = page(&cookie, format!("{}/ui/timeline?key=hist%3Abig", s.base)).await;
    assert_eq!(status, StatusCode::OK);
    let chained = s
        .authority
        .chained_evidence(
            TENANT,
            &haltstate_authority::EvidenceQuery {
                idempotency_key: Some("hist:big".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(!chained.is_empty());
    for record in &chained {
        assert!(
            html.contains(&record.hash) && html.contains(&record.prev_hash),
            "{html}"
        );
    }
    let (status, _) = page(
        &cookie,
        format!("{}/ui/timeline?key=globex%3Asecret-key", s.base),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, html) = page(&cookie, format!("{}/ui/ledger", s.base)).await;
    assert_eq!(status, StatusCode::OK);
    let head = s.authority.tenant_head(TENANT).unwrap();
    assert!(
        html.contains(&format!("Verified: {} records in acme", head.seq)),
        "{html}"
    );
    assert!(html.contains(&head.hash));
}

/// A key of lifetime `operation` over the wire: the same body runs again once its operation completed, the reply
/// names the generation, an unknown lifetime is refused, and the console's timeline shows each operation.
#[tokio::test]
async fn an_operation_key_over_the_wire_runs_again_and_the_timeline_shows_its_operations() {
    let s = start().await;
    let body = json!({"action": "refund.create", "params": {"amount_cents": 500},
        "idempotency_key": "nightly:refund", "key_lifetime": "operation"});
    for generation in 1..=2u64 {
        let (status, reply) = s.post("action/guard", body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["status"], "allowed", "{reply}");
        assert_eq!(reply["generation"], generation, "{reply}");
        let (status, ack) = s
            .post(
                "action/guard/report",
                json!({"idempotency_key": "nightly:refund", "outcome": "success",
                    "claim_token": reply["claim_token"]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{ack}");
    }
    // Without a lifetime (the official SDKs) the key is one operation forever.
    let once = json!({"action": "refund.create", "params": {"amount_cents": 500}, "idempotency_key": "once:refund"});
    let (_, first) = s.post("action/guard", once.clone()).await;
    s.post(
        "action/guard/report",
        json!({"idempotency_key": "once:refund", "outcome": "success", "claim_token": first["claim_token"]}),
    )
    .await;
    let (_, again) = s.post("action/guard", once).await;
    assert_eq!(again["status"], "completed", "{again}");

    let mut unknown = body.clone();
    unknown["key_lifetime"] = json!("forever-ish");
    let (status, refused) = s.post("action/guard", unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");

    let (_, cookie) = sign_in(&s, TENANT, &s.operator_key).await;
    let (cookie, _) = cookie.unwrap();
    let (status, html) = page(
        &cookie,
        format!("{}/ui/timeline?key=nightly%3Arefund", s.base),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("2 operations under this key"), "{html}");
    assert!(
        html.contains("/ui/proof/view?key=nightly%3Arefund&amp;generation=2"),
        "{html}"
    );
}

#[tokio::test]
async fn the_console_adds_a_webhook_shows_its_deliveries_and_links_to_an_approvals_page() {
    use haltstate_authority::webhooks::{AttemptResult, RetryPolicy};

    let s = start().await;
    let (_, cookie) = sign_in(&s, TENANT, &s.operator_key).await;
    let (cookie, _) = cookie.unwrap();
    let url = format!("{}/ui/webhooks", s.base);
    let (status, html) = page(&cookie, url.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No webhooks."), "{html}");
    let csrf = csrf_of(&html);
    let slack = "https://hooks.slack.com/services/T000/B000/SECRETPART";
    let fields = [
        ("url", slack),
        ("format", "slack"),
        ("approval_requested", "on"),
    ];

    // Without the session's token nothing is added.
    let (status, _) = post_form(&cookie, url.clone(), &fields).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(s.authority.webhooks(TENANT).unwrap().is_empty());
    let csrf = csrf.as_str();
    let with_token = [&[("csrf", csrf)][..], &fields[..]].concat();
    let (status, html) = post_form(&cookie, url.clone(), &with_token).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let start_at = html.find("<code id=\"secret\">").unwrap() + "<code id=\"secret\">".len();
    let secret = html[start_at..start_at + html[start_at..].find('<').unwrap()].to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let webhooks = s.authority.webhooks(TENANT).unwrap();
    assert_eq!(webhooks.len(), 1);
    assert_eq!(webhooks[0].created_by, "alice");
    assert_eq!(webhooks[0].events.len(), 1, "only the event ticked");
    // A bad URL is refused with its reason.
    let (status, html) = post_form(
        &cookie,
        url.clone(),
        &[
            ("csrf", csrf),
            ("url", "ftp://x"),
            ("format", "standard"),
            ("approval_requested", "on"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("must start with https://"), "{html}");

    // A pending approval queues a delivery; a failed attempt shows its answer.
    let (_, pending) = s
        .post(
            "action/guard",
            json!({"action": "refund.create", "params": {"amount_cents": 90_000}, "idempotency_key": "wh:1"}),
        )
        .await;
    let id = pending["approval_id"].as_str().unwrap().to_owned();
    let delivery = s
        .authority
        .claim_deliveries(TENANT, "test", Duration::from_secs(30), 10)
        .await
        .unwrap()
        .pop()
        .unwrap();
    s.authority
        .finish_delivery(
            &delivery,
            "test",
            AttemptResult::Failed {
                status: Some(500),
                error: "HTTP 500 Internal Server Error".into(),
            },
            RetryPolicy::default(),
        )
        .await
        .unwrap();
    let (_, html) = page(&cookie, url.clone()).await;
    assert!(html.contains("https://hooks.slack.com/…"), "{html}");
    assert!(
        !html.contains("SECRETPART") && !html.contains(&secret),
        "a credential is shown"
    );
    assert!(
        html.contains("approval.requested") && html.contains("HTTP 500"),
        "{html}"
    );
    assert!(html.contains("class=\"delivery-pending\""), "{html}");

    // The page a notification links to: the approval, with the decision forms while it is pending.
    let (status, html) = page(&cookie, format!("{}/ui/approvals/{id}", s.base)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<strong id=\"status\">pending</strong>"),
        "{html}"
    );
    assert!(
        html.contains(&format!("/ui/approvals/{id}/decide")),
        "{html}"
    );
    assert!(html.contains("/ui/timeline?key=wh%3A1"), "{html}");
    let (status, _) = page(&cookie, format!("{}/ui/approvals/apr_not_here", s.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Removal fails what was not received; removing it again is not found.
    let remove = format!("{}/ui/webhooks/{}/remove", s.base, webhooks[0].id);
    let (status, html) = post_form(&cookie, remove.clone(), &[("csrf", csrf)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("is removed"), "{html}");
    assert!(
        html.contains("webhook removed") && html.contains("class=\"delivery-failed\""),
        "{html}"
    );
    let (status, _) = post_form(&cookie, remove, &[("csrf", csrf)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_console_shows_where_the_shadow_set_disagreed() {
    let s = start().await;
    let (_, cookie) = sign_in(&s, TENANT, &s.operator_key).await;
    let (cookie, _) = cookie.unwrap();
    let (_, html) = page(&cookie, format!("{}/ui/shadow", s.base)).await;
    assert!(html.contains("No shadow policies are loaded"), "{html}");
    let dir = tempfile::tempdir().unwrap();
    let candidate = dir.path().join("candidate.cedar");
    std::fs::write(
        &candidate,
        format!(
            "{}\n@id(\"refunds.frozen\") forbid(principal, action == Action::\"refund.create\", resource) \
             when {{ context.params.amount_cents > 1000 }};",
            policies::REFUNDS
        ),
    )
    .unwrap();
    s.authority.policies().set_shadow_file(&candidate).unwrap();
    for (cents, key) in [(500, "sh:<b>1</b>"), (5_000, "sh:2")] {
        let (_, answer) = s
            .post(
                "action/guard",
                json!({"action": "refund.create", "params": {"amount_cents": cents}, "idempotency_key": key}),
            )
            .await;
        assert_eq!(answer["status"], "allowed", "{answer}");
    }
    let (status, html) = page(&cookie, format!("{}/ui/shadow", s.base)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("2 decisions compared, 1 disagreed."),
        "{html}"
    );
    assert!(
        html.contains("refunds.frozen") && html.contains("sh:2"),
        "{html}"
    );
    // The other tenant sees its own (none).
    let other_key = s
        .authority
        .create_key("globex", "bob", Role::Operator)
        .await
        .unwrap()
        .secret;
    let (_, other) = sign_in(&s, "globex", &other_key).await;
    let (other, _) = other.unwrap();
    let (_, html) = page(&other, format!("{}/ui/shadow", s.base)).await;
    assert!(
        html.contains("0 decisions compared, 0 disagreed."),
        "{html}"
    );
}

#[tokio::test]
async fn the_console_downloads_and_shows_a_keys_proof_pack() {
    let s = start().await;
    let (_, cookie) = sign_in(&s, TENANT, &s.operator_key).await;
    let (cookie, _) = cookie.unwrap();
    let (_, answer) = s
        .post(
            "action/guard",
            json!({"action": "refund.create", "params": {"amount_cents": 500}, "idempotency_key": "proof:1"}),
        )
        .await;
    assert_eq!(answer["status"], "allowed", "{answer}");
    let view = format!("{}/ui/proof/view?key=proof%3A1", s.base);
    let (status, html) = page(&cookie, view.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "no checkpoint yet");
    assert!(html.contains("No signed tree head covers"), "{html}");

    let key = haltstate_authority::SigningKey::generate();
    s.authority.checkpoint(&key).unwrap();
    let (status, html) = page(&cookie, view).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("Proof pack of <code>proof:1</code>"),
        "{html}"
    );
    // The signed tree head the record is proven in, as its C2SP text.
    assert!(
        html.contains(&format!("<pre id=\"tree-head\">haltstate/{TENANT}\n")),
        "{html}"
    );
    let response = browser()
        .get(format!("{}/ui/proof?key=proof%3A1", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let pack: haltstate_authority::proof::ProofPack = response.json().await.unwrap();
    let summary = haltstate_authority::proof::verify(&pack, &key.public()).unwrap();
    assert_eq!((summary.tenant.as_str(), summary.records), (TENANT, 1));

    // Another tenant's operator gets nothing of it.
    let other_key = s
        .authority
        .create_key("globex", "bob", Role::Operator)
        .await
        .unwrap()
        .secret;
    let (_, other) = sign_in(&s, "globex", &other_key).await;
    let (other, _) = other.unwrap();
    let (status, _) = page(&other, format!("{}/ui/proof/view?key=proof%3A1", s.base)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A notification's link opened signed out: the sign-in page, then back to the approval it named; never to
/// another origin or a page outside the console.
#[tokio::test]
async fn signing_in_from_a_link_returns_to_it_and_nowhere_else() {
    let s = start().await;
    let (_, pending) = s
        .post(
            "action/guard",
            json!({"action": "refund.create", "params": {"amount_cents": 90_000}, "idempotency_key": "link:1"}),
        )
        .await;
    let id = pending["approval_id"].as_str().unwrap().to_owned();
    let link = format!("/ui/approvals/{id}");
    let response = browser()
        .get(format!("{}{link}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to_login = response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(to_login, format!("/ui/login?next=%2Fui%2Fapprovals%2F{id}"));

    // The sign-in page carries the target; a sign-in with it lands there.
    let sign_in_with = |next: String| {
        let s = &s;
        async move {
            let response =
                post_sign_in(s, TENANT, &s.operator_key, &[("next", next.as_str())]).await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            response.headers()[reqwest::header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let html = browser()
        .get(format!("{}{to_login}", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("name=\"next\" value=\"{link}\"")),
        "{html}"
    );
    assert_eq!(sign_in_with(link.clone()).await, link);
    // Anything that is not a console page of this server lands on the inbox.
    for hostile in [
        "//evil.example/ui/",
        "https://evil.example/ui/inbox",
        "/ui/..//evil.example",
        "/\\evil.example",
        "/ui/login?next=/ui/kill",
        "/api/haltstate/v1/keys",
        "/ui/inbox\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
    ] {
        assert_eq!(
            sign_in_with(hostile.to_owned()).await,
            "/ui/inbox",
            "{hostile:?}"
        );
    }
    let page = browser()
        .get(format!("{}/ui/login?next=%2F%2Fevil.example", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("evil.example"), "{page}");
}

/// The message after a decision is read from storage: a link claiming "you approved" what you did not shows
/// nothing.
#[tokio::test]
async fn a_forged_decision_message_link_claims_nothing() {
    let s = start().await;
    let (_, pending) = s
        .post(
            "action/guard",
            json!({"action": "refund.create", "params": {"amount_cents": 90_000}, "idempotency_key": "msg:1"}),
        )
        .await;
    let id = pending["approval_id"].as_str().unwrap().to_owned();
    let (_, cookie) = sign_in(&s, TENANT, &s.operator_key).await;
    let (cookie, _) = cookie.unwrap();
    for result in ["counted", "already-yours", "recorded", "nonsense"] {
        let (status, html) = page(
            &cookie,
            format!("{}/ui/inbox?decided={id}&result={result}", s.base),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(!html.contains("class=\"notice\""), "{result}: {html}");
    }
}
