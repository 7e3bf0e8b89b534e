//! Hostile cases of issue 21: the governed must not be able to disable the governor. An agent key (or no key at
//! all) that tries to hold every connection, stream or session, or to slip a number past a limit.

use super::*;

/// Sends `head` and part of a body, then stalls: the server must close the connection on its own.
async fn stalled(s: &Server, head: &str) -> (String, bool) {
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    until_closed(&mut conn, Duration::from_secs(10)).await
}

#[tokio::test]
async fn a_slow_body_is_cut_off_on_every_route_not_only_the_apis_json() {
    let s = start_with(short_limits()).await;
    let form = "Content-Type: application/x-www-form-urlencoded";
    for (what, head) in [
        (
            "sign-in form",
            format!(
                "POST /ui/login HTTP/1.1\r\nHost: x\r\n{form}\r\nContent-Length: 100\r\n\r\ntenant=a"
            ),
        ),
        (
            "sign-out form",
            format!(
                "POST /ui/logout HTTP/1.1\r\nHost: x\r\n{form}\r\nContent-Length: 100\r\n\r\ncsrf="
            ),
        ),
        (
            "kill switch form",
            format!(
                "POST /ui/kill HTTP/1.1\r\nHost: x\r\n{form}\r\nContent-Length: 100\r\n\r\nstate="
            ),
        ),
        (
            "chunked sign-in",
            format!(
                "POST /ui/login HTTP/1.1\r\nHost: x\r\n{form}\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nten"
            ),
        ),
        (
            "a body on a route that reads none",
            "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nx".to_owned(),
        ),
    ] {
        let (_, closed) = stalled(&s, &head).await;
        assert!(closed, "{what}: a stalled body held its connection");
    }
    s.alive().await;
}

/// A connection from `source` (another loopback address) that has started a request head and stalls.
async fn held_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut conn = socket.connect(to).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    conn
}

/// What the server answers a `GET /api/sentinel/heartbeat` from `source`, on a fresh connection.
async fn heartbeat_from(s: &Server, source: &str) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut conn = socket.connect(s.addr).await.unwrap();
    let request = format!(
        "GET /api/sentinel/heartbeat HTTP/1.1\r\nHost: x\r\nX-Tenant-Id: {TENANT}\r\nX-API-Key: {}\r\nConnection: close\r\n\r\n",
        s.keys.bot
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    until_closed(&mut conn, Duration::from_secs(10)).await.0
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let s = start_with(ServeLimits {
        max_connections: 8,
        max_connections_per_address: 3,
        ..ServeLimits::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(held_from("127.0.0.2", s.addr).await);
    }
    let refused = heartbeat_from(&s, "127.0.0.2").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("too_many_connections"), "{refused}");
    // Everyone else is served.
    let served = heartbeat_from(&s, "127.0.0.3").await;
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    s.alive().await;
    drop(held);
    eventually_async(
        "the address served again",
        Duration::from_secs(5),
        || async {
            heartbeat_from(&s, "127.0.0.2")
                .await
                .starts_with("HTTP/1.1 200")
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn one_key_cannot_hold_every_connection_with_streams() {
    let s = start_with(ServeLimits {
        max_streams_per_key: 2,
        ..ServeLimits::default()
    })
    .await;
    let open = |key: String| {
        let (http, base) = (s.http.clone(), s.base.clone());
        async move {
            http.get(format!("{base}/api/sentinel/approvals/stream"))
                .header("X-Tenant-Id", TENANT)
                .header("X-API-Key", key)
                .send()
                .await
                .unwrap()
        }
    };
    let first = open(s.keys.bot.clone()).await;
    let second = open(s.keys.bot.clone()).await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let third = open(s.keys.bot.clone()).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key("retry-after"));
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["code"], "too_many_streams", "{body}");
    // Another key is not affected.
    assert_eq!(open(s.keys.fleet.clone()).await.status(), StatusCode::OK);
    s.alive().await;
    // A stream whose client left frees its place.
    drop(first);
    eventually_async("a place freed", Duration::from_secs(5), || async {
        (open(s.keys.bot.clone()).await.status() == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test]
async fn numbers_that_would_mean_two_things_are_refused_at_the_edge() {
    let s = start().await;
    let bot = || with(&s.keys.bot);
    for (what, amount) in [
        ("an integer written as a fraction", "10000.0"),
        ("an integer written as an exponent", "1e4"),
        ("an integer beyond 2^53", "9007199254740993"),
        ("a fraction Cedar cannot hold", "0.123456789"),
    ] {
        let raw = format!(
            r#"{{"action": "refund.create", "idempotency_key": "n-{what}", "params": {{"amount_cents": {amount}}}}}"#
        );
        let answer = s.post(GUARD, bot().raw(raw.as_bytes())).await;
        s.expect(
            what,
            &answer,
            StatusCode::BAD_REQUEST,
            Some("invalid_request"),
        )
        .await;
        let raw = format!(r#"{{"action": "refund.create", "params": {{"account": {amount}}}}}"#);
        let answer = s.post(CHECK, bot().raw(raw.as_bytes())).await;
        s.expect(
            what,
            &answer,
            StatusCode::BAD_REQUEST,
            Some("invalid_request"),
        )
        .await;
    }
    // The largest exact integer is taken as it is, and an account number travels as a string.
    let exact = Server::guard_body(None, 9_007_199_254_740_991, "n-exact");
    let answer = s.post(CHECK, bot().json(exact)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

/// Signs in to the console as `key` of `tenant`; answers the session cookie (`name=value`).
async fn console_session(s: &Server, tenant: &str, key: &str) -> Option<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client
        .get(format!("{}/ui/login", s.base))
        .send()
        .await
        .unwrap();
    let login_cookie = form.headers()["set-cookie"].to_str().unwrap();
    let login_cookie = login_cookie.split(';').next().unwrap().to_owned();
    let html = form.text().await.unwrap();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    let csrf = html[at..at + 64].to_owned();
    let response = client
        .post(format!("{}/ui/login", s.base))
        .header("cookie", login_cookie)
        .form(&[("tenant", tenant), ("key", key), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|header| header.starts_with("haltstate_session="))
        .map(|header| header.split(';').next().unwrap().to_owned())
}

async fn signed_in(s: &Server, cookie: &str) -> bool {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/ui/inbox", s.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        == StatusCode::OK
}

#[tokio::test]
async fn one_tenants_sign_ins_never_end_another_tenants_sessions() {
    let s = start_with(ServeLimits {
        max_sessions_per_tenant: 3,
        ..ServeLimits::default()
    })
    .await;
    let theirs = console_session(&s, "globex", &s.keys.globex_operator)
        .await
        .unwrap();
    let first = console_session(&s, TENANT, &s.keys.alice).await.unwrap();
    for _ in 0..6 {
        console_session(&s, TENANT, &s.keys.alice).await.unwrap();
    }
    assert!(
        signed_in(&s, &theirs).await,
        "another tenant's session was ended"
    );
    assert!(
        !signed_in(&s, &first).await,
        "the tenant's own oldest session outlived its cap"
    );
}

#[tokio::test]
async fn the_metrics_listener_closes_idle_connections_and_holds_only_a_few() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::builder(dir.path().join("metrics.db"))
        .open()
        .unwrap();
    let metrics = haltstate_server::Metrics::install().unwrap();
    tokio::spawn(haltstate_server::serve_metrics(
        listener,
        authority,
        metrics,
        ServeLimits {
            header_timeout: Duration::from_millis(800),
            ..ServeLimits::default()
        },
        std::future::pending(),
    ));
    // Connections that never send a full head are closed.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
    assert!(until_closed(&mut slow, Duration::from_secs(10)).await.1);
    // Idle connections from one address hold at most its share; the next is refused, not served.
    let mut idle = Vec::new();
    for _ in 0..haltstate_server::METRICS_CONNECTIONS / 2 {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 64];
        let n = conn.read(&mut buffer).await.unwrap();
        assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
        idle.push(conn);
    }
    let mut next = TcpStream::connect(addr).await.unwrap();
    next.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (said, _) = until_closed(&mut next, Duration::from_secs(10)).await;
    assert!(said.starts_with("HTTP/1.1 503"), "{said}");
}

/// Hostile (issue 21): idempotency keys are scoped per agent. A key acting as other agents takes the key `bot`
/// will use (`refund:order-42`, easily guessed); `bot` still runs its own operation under it, and each reports its
/// own claim.
#[tokio::test]
async fn one_agent_cannot_take_the_idempotency_key_another_will_use() {
    let s = start().await;
    let key = "refund:order-42";
    let squat = s
        .post(
            GUARD,
            with(&s.keys.fleet).json(Server::guard_body(Some("billing-x"), 1, key)),
        )
        .await;
    s.expect("the squatter's guard", &squat, StatusCode::OK, None)
        .await;
    assert_eq!(squat.body["status"], "allowed");
    let own = s
        .post(
            GUARD,
            with(&s.keys.bot).json(Server::guard_body(None, 1, key)),
        )
        .await;
    s.expect("the agent's own guard", &own, StatusCode::OK, None)
        .await;
    assert_eq!(own.body["status"], "allowed", "{}", own.body);
    // `bot` reports as the official SDKs do (no token, no agent): its own record, the one its key holds.
    let reported = s
        .post(
            GUARD_REPORT,
            with(&s.keys.bot).json(json!({"idempotency_key": key, "outcome": "success"})),
        )
        .await;
    s.expect("the agent's report", &reported, StatusCode::OK, None)
        .await;
    assert_eq!(reported.body["state"], "completed");
    // The squatter's claim is untouched, and still its own to report.
    let theirs = s
        .post(
            GUARD_REPORT,
            with(&s.keys.fleet).json(json!({
                "idempotency_key": key, "agent_id": "billing-x", "outcome": "error",
                "claim_token": squat.body["claim_token"],
            })),
        )
        .await;
    s.expect("the squatter's report", &theirs, StatusCode::OK, None)
        .await;
    assert_eq!(theirs.body["state"], "failed");
    // Naming an agent the key may not act as is refused, as everywhere.
    let named = s
        .post(
            GUARD_REPORT,
            with(&s.keys.fleet)
                .json(json!({"idempotency_key": key, "agent_id": "bot", "outcome": "success"})),
        )
        .await;
    s.expect(
        "a report naming another agent",
        &named,
        StatusCode::FORBIDDEN,
        Some("agent_mismatch"),
    )
    .await;
    let again = s
        .post(
            GUARD,
            with(&s.keys.bot).json(Server::guard_body(None, 1, key)),
        )
        .await;
    assert_eq!(again.body["status"], "completed", "{}", again.body);
}

/// Hostile (issue 21): one agent's flood of requests does not hide another's. The inbox says who waits, fewest
/// first, and every waiting approval is on it (the authority keeps no more waiting than it shows).
#[tokio::test]
async fn the_inbox_shows_who_is_waiting_so_a_flood_hides_nobody() {
    let s = start().await;
    for i in 0..3 {
        let answer = s
            .post(
                GUARD,
                with(&s.keys.bot).json(Server::guard_body(None, 90_000, &format!("flood:{i}"))),
            )
            .await;
        assert_eq!(answer.body["status"], "pending", "{}", answer.body);
    }
    let real = s
        .post(
            GUARD,
            with(&s.keys.fleet).json(Server::guard_body(Some("billing-a"), 90_000, "real:1")),
        )
        .await;
    let real_id = real.body["approval_id"].as_str().unwrap().to_owned();
    let cookie = console_session(&s, TENANT, &s.keys.alice).await.unwrap();
    let inbox = reqwest::Client::new()
        .get(format!("{}/ui/inbox", s.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        inbox.contains("4 waiting, the soonest to expire first: billing-a 1 · bot 3"),
        "{inbox}"
    );
    assert!(inbox.contains(&format!("approval-{real_id}")), "{inbox}");
}
