//! `haltstate mcp proxy --stdio` as a desktop client runs it: the real `haltstate` process, the real
//! `@modelcontextprotocol/server-filesystem` (pinned, on Node 22, from the npm registry) as its upstream, and the
//! official Rust MCP client (rmcp) as the agent's client, over the proxy's stdin and stdout. The operator approves
//! and stops the agent with the real CLI, on the same database.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use haltstate_authority::{Authority, EvidenceKind, EvidenceQuery, EvidenceRecord, Outcome};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

const HALTSTATE: &str = env!("CARGO_BIN_EXE_haltstate");

/// The variables of the test's own environment that would choose another authority for the proxy.
const FOREIGN: [&str; 3] = ["HALTSTATE_DB", "HALTSTATE_POLICY", "HALTSTATE_TENANT_ID"];

/// An upstream's command line as `--upstream-cmd` takes it (each word quoted).
fn upstream_line(words: &[String]) -> String {
    words
        .iter()
        .map(|word| format!("'{word}'"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `mcp proxy --stdio` for the server `name`, acting as `agent`, on the embedded authority at `db` and `policy`.
fn proxy_args(name: &str, agent: &str, db: &Path, policy: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> =
        ["mcp", "proxy", "--stdio", "--name", name, "--agent", agent]
            .into_iter()
            .map(Into::into)
            .collect();
    args.extend(["--db".into(), db.into(), "--policy".into(), policy.into()]);
    args
}

/// The `haltstate` process with `args`, in an environment that chooses no authority of its own.
fn haltstate_process(args: &[std::ffi::OsString]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(HALTSTATE);
    command.args(args);
    for name in FOREIGN {
        command.env_remove(name);
    }
    command
}

/// A `tools/call` of `tool` with `arguments` (a JSON object).
fn tool_call(tool: &str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(arguments) = arguments else {
        panic!("arguments are an object: {arguments}")
    };
    CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)
}

/// The authority the proxy kept its evidence in.
fn opened(db: &Path) -> Authority {
    Authority::builder(db).open().unwrap()
}

/// Every record of `action` in `tenant`'s evidence, oldest first.
fn records(authority: &Authority, tenant: &str, action: &str) -> Vec<EvidenceRecord> {
    authority
        .evidence(
            tenant,
            &EvidenceQuery {
                action: Some(action.into()),
                ..EvidenceQuery::default()
            },
        )
        .unwrap()
}

/// Reads anywhere, writes under `public/` freely, other writes after a human's approval, never moves.
fn policy(root: &Path) -> String {
    let public = root.join("public");
    format!(
        r#"
@id("fs.read") permit(principal, action in [Action::"mcp.fs.read_text_file", Action::"mcp.fs.list_directory"], resource);
@id("fs.write.public") @reason("writes under public/ are routine")
permit(principal, action == Action::"mcp.fs.write_file", resource)
when {{ context.params.path like "{public}/*" }};
@id("fs.write.other") @reason("other writes need a human") @approval("required")
permit(principal, action == Action::"mcp.fs.write_file", resource)
when {{ !(context.params.path like "{public}/*") }};
@id("fs.no-moves") @reason("agents never move files")
forbid(principal, action == Action::"mcp.fs.move_file", resource);
@id("fs.shadow.no-public-writes") @mode("shadow")
forbid(principal, action == Action::"mcp.fs.write_file", resource)
when {{ context.params.path like "{public}/*" }};
"#,
        public = public.display()
    )
}

/// The filesystem server's world in `dir`: `files/` (with `public/` and `motd.txt` holding `motd`), the policy
/// above in `mcp.cedar`, and the database path: (root, policy file, db).
fn files_world(dir: &Path, motd: &str) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir.join("files/public")).unwrap();
    // The server resolves symlinks in its allowed directory; so must the paths the agent sends.
    let root = dir.join("files").canonicalize().unwrap();
    std::fs::write(root.join("motd.txt"), motd).unwrap();
    let policy_file = dir.join("mcp.cedar");
    std::fs::write(&policy_file, policy(&root)).unwrap();
    (root, policy_file, dir.join("hs.db"))
}

struct Proxy {
    client: RunningService<RoleClient, ()>,
    db: PathBuf,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

async fn proxy() -> Proxy {
    proxy_with(&[]).await
}

async fn proxy_with(extra: &[&str]) -> Proxy {
    haltstate_testkit::mcp::install();
    let dir = tempfile::tempdir().unwrap();
    let (root, policy_file, db) = files_world(dir.path(), "hello from the upstream");
    let upstream = upstream_line(&haltstate_testkit::mcp::filesystem_server(&root));
    let mut command = haltstate_process(&proxy_args("fs", "desktop-agent", &db, &policy_file));
    command
        .args(["--upstream-cmd", &upstream, "--resource", "write_file=path"])
        .args(extra);
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    Proxy {
        client,
        db,
        root,
        _dir: dir,
    }
}

impl Proxy {
    async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        self.client
            .call_tool(tool_call(tool, arguments))
            .await
            .unwrap()
    }

    fn cli(&self, args: &[&str]) -> String {
        let output = Command::new(HALTSTATE)
            .args(args)
            .arg("--db")
            .arg(&self.db)
            .args(["--tenant", "default", "--as", "alice"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

fn decision(result: &CallToolResult) -> Value {
    result
        .structured_content
        .as_ref()
        .map(|content| content["haltstate"].clone())
        .unwrap_or(Value::Null)
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(text) => Some(text.text.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guarded_filesystem_server_reads_waits_for_a_human_writes_once_and_denies_moves() {
    let p = proxy().await;
    let tools = p.client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "write_file"), "{tools:?}");

    let motd = p.root.join("motd.txt").display().to_string();
    let read = p.call("read_text_file", json!({"path": motd})).await;
    assert_ne!(read.is_error, Some(true), "{read:?}");
    assert!(text(&read).contains("hello from the upstream"), "{read:?}");

    // A write outside public/: held for a human, nothing written.
    let hosts = p.root.join("hosts.txt");
    let write = json!({"path": hosts.display().to_string(), "content": "127.0.0.1 db\n"});
    let held = p.call("write_file", write.clone()).await;
    assert_eq!(held.is_error, Some(true));
    let pending = decision(&held);
    assert_eq!(pending["status"], "pending", "{held:?}");
    let approval = pending["approval_id"].as_str().unwrap().to_owned();
    assert!(!hosts.exists(), "written before the approval");
    let again = p.call("write_file", write.clone()).await;
    assert_eq!(
        decision(&again)["approval_id"],
        approval.as_str(),
        "the retry finds the same approval"
    );

    p.cli(&["approvals", "approve", &approval]);
    let approved = p.call("write_file", write.clone()).await;
    assert_ne!(approved.is_error, Some(true), "{approved:?}");
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), "127.0.0.1 db\n");

    // A move is denied by policy, with a sentence the model can read.
    let moved = p
        .call(
            "move_file",
            json!({"source": motd, "destination": p.root.join("public/motd.txt").display().to_string()}),
        )
        .await;
    assert_eq!(decision(&moved)["status"], "denied", "{moved:?}");
    assert!(
        text(&moved).contains("agents never move files"),
        "{moved:?}"
    );
    assert!(p.root.join("motd.txt").exists());

    // A candidate policy in shadow would refuse public writes: decided and recorded, not enforced.
    let note = p.root.join("public/note.txt");
    let shadowed = p
        .call(
            "write_file",
            json!({"path": note.display().to_string(), "content": "hi"}),
        )
        .await;
    assert_ne!(shadowed.is_error, Some(true), "{shadowed:?}");
    assert!(note.exists(), "the live policy allows it");
    let guard = records(&opened(&p.db), "default", "mcp.fs.write_file")
        .into_iter()
        .rfind(|r| r.kind == EvidenceKind::Guard)
        .unwrap();
    assert_eq!(
        guard.shadow_decision,
        Some(haltstate_authority::Decision::Deny)
    );
    assert_eq!(
        guard.shadow_policy_id.as_deref(),
        Some("fs.shadow.no-public-writes")
    );

    // The operator stops the agent mid-session: the next call is refused, nothing runs.
    p.cli(&["kill", "--agent", "desktop-agent"]);
    let stopped = p
        .call(
            "write_file",
            json!({"path": p.root.join("public/late.txt").display().to_string(), "content": "x"}),
        )
        .await;
    assert_eq!(decision(&stopped)["status"], "kill_switch", "{stopped:?}");
    assert!(!p.root.join("public/late.txt").exists());

    // The evidence: one completed write of hosts.txt, through the approval (then the public note).
    let writes: Vec<_> = records(&opened(&p.db), "default", "mcp.fs.write_file")
        .into_iter()
        .filter(|r| r.kind == EvidenceKind::Outcome)
        .collect();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes[0].outcome, Some(Outcome::Success));
    assert_eq!(writes[0].approval_id.as_deref(), Some(approval.as_str()));
    p.client.cancel().await.unwrap();
}

/// 64 identical calls of a destructive tool at once, through one proxy: with `--once`, the upstream writes once
/// and every other call answers in progress or completed.
#[tokio::test(flavor = "multi_thread")]
async fn sixty_four_identical_destructive_calls_at_once_write_once() {
    let p = proxy_with(&["--once", "write_file"]).await;
    let target = p.root.join("public/once.txt");
    let write = json!({"path": target.display().to_string(), "content": "exactly once\n"});
    let calls: Vec<_> = (0..64)
        .map(|_| {
            let (peer, write) = (p.client.peer().clone(), write.clone());
            tokio::spawn(async move {
                peer.call_tool(tool_call("write_file", write))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        let result = call.await.unwrap();
        statuses.push(match result.is_error {
            Some(true) => decision(&result)["status"]
                .as_str()
                .unwrap_or("error")
                .to_owned(),
            _ => "ran".to_owned(),
        });
    }
    assert_eq!(
        statuses.iter().filter(|s| *s == "ran").count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| matches!(s.as_str(), "ran" | "in_progress" | "completed")),
        "{statuses:?}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "exactly once\n");
    let outcomes = records(&opened(&p.db), "default", "mcp.fs.write_file")
        .into_iter()
        .filter(|r| r.kind == EvidenceKind::Outcome)
        .count();
    assert_eq!(outcomes, 1, "the upstream wrote once");
    p.client.cancel().await.unwrap();
}

/// The official Python MCP client as the agent, through the real proxy to the real filesystem server: the same
/// answers a Rust client gets, and the approved write lands once.
#[tokio::test(flavor = "multi_thread")]
async fn the_official_python_client_drives_the_proxy() {
    use std::io::{BufRead, BufReader, Write};
    haltstate_testkit::mcp::install();
    let python = haltstate_testkit::mcp::python_client();
    let p = proxy().await;
    // A second proxy on the same database and files, for the Python agent (the Rust one stays idle).
    let policy = p.db.with_file_name("mcp.cedar");
    let upstream = upstream_line(&haltstate_testkit::mcp::filesystem_server(&p.root));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents/mcp_agent.py");
    let mut agent = Command::new(&python);
    agent
        .arg(&script)
        .arg(HALTSTATE)
        .args(proxy_args("fs", "python-agent", &p.db, &policy))
        .args(["--upstream-cmd", &upstream]);
    for name in FOREIGN {
        agent.env_remove(name);
    }
    let mut agent = agent
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_agent = agent.stdin.take().unwrap();
    let mut from_agent = BufReader::new(agent.stdout.take().unwrap()).lines();
    let mut next = || -> Value {
        let line = from_agent
            .next()
            .expect("the agent said nothing more")
            .unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
    };
    let target = p.root.join("python.txt");
    let write = json!({"path": target.display().to_string(), "content": "from python\n"});
    writeln!(to_agent, "{write}").unwrap();

    let tools = next();
    assert!(
        tools["names"]
            .as_array()
            .unwrap()
            .contains(&json!("write_file")),
        "{tools}"
    );
    let held = next();
    assert_eq!(held["haltstate"]["status"], "pending", "{held}");
    assert!(!target.exists());
    let approval = held["haltstate"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    p.cli(&["approvals", "approve", &approval]);
    writeln!(to_agent, "approved").unwrap();
    let approved = next();
    assert_eq!(approved["is_error"], false, "{approved}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "from python\n");
    let moved = next();
    assert_eq!(moved["haltstate"]["status"], "denied", "{moved}");
    assert!(
        moved["text"]
            .as_str()
            .unwrap()
            .contains("agents never move files"),
        "{moved}"
    );
    drop(to_agent);
    let status = agent.wait().unwrap();
    assert!(status.success(), "the agent failed: {status}");
    p.client.cancel().await.unwrap();
}

/// The upstream's progress on a guarded call reaches the client through the proxy; a client cancelling a long call
/// cancels it upstream, and the evidence says cancelled. Upstream: `@modelcontextprotocol/server-everything`.
#[tokio::test(flavor = "multi_thread")]
async fn progress_passes_through_and_a_cancelled_call_is_recorded_cancelled() {
    use rmcp::model::{
        CallToolRequest, ClientRequest, ProgressNotificationParam, ProgressToken, ServerResult,
    };
    use rmcp::service::{NotificationContext, PeerRequestOptions};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct Watcher {
        progress: Arc<Mutex<Vec<(ProgressToken, f64)>>>,
    }
    impl rmcp::ClientHandler for Watcher {
        async fn on_progress(
            &self,
            params: ProgressNotificationParam,
            _: NotificationContext<RoleClient>,
        ) {
            self.progress
                .lock()
                .unwrap()
                .push((params.progress_token, params.progress));
        }
    }

    haltstate_testkit::mcp::install();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("mcp.cedar");
    std::fs::write(
        &policy,
        r#"@id("long") permit(principal, action == Action::"mcp.everything.trigger-long-running-operation", resource);"#,
    )
    .unwrap();
    let db = dir.path().join("hs.db");
    let upstream = upstream_line(&haltstate_testkit::mcp::everything_server());
    let mut command = haltstate_process(&proxy_args("everything", "desktop-agent", &db, &policy));
    command.args(["--upstream-cmd", &upstream]);
    let watcher = Watcher::default();
    let client = watcher
        .clone()
        .serve(TokioChildProcess::new(command).unwrap())
        .await
        .unwrap();
    let long = |duration: f64| {
        tool_call(
            "trigger-long-running-operation",
            json!({"duration": duration, "steps": 3}),
        )
    };

    // The client's own progress token (rmcp numbers each request) comes back on every notification, though the
    // proxy's request upstream carried a token of the proxy's.
    let handle = client
        .peer()
        .send_request_with_option(
            ClientRequest::CallToolRequest(CallToolRequest::new(long(0.3))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let done = handle.await_response().await.unwrap();
    assert!(
        matches!(&done, ServerResult::CallToolResult(r) if r.is_error != Some(true)),
        "{done:?}"
    );
    let progress = watcher.progress.clone();
    haltstate_testkit::eventually(
        "three progress notifications through the proxy",
        Duration::from_secs(10),
        || (progress.lock().unwrap().len() >= 3).then_some(()),
    );
    // rmcp relays each notification from a task of its own, so their order is not kept: the set is.
    let mut got = watcher.progress.lock().unwrap().clone();
    got.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert_eq!(
        got,
        vec![(token.clone(), 1.0), (token.clone(), 2.0), (token, 3.0)]
    );

    // A long call, cancelled by the client once the authority has granted it.
    let peer = client.peer().clone();
    let call = tokio::spawn(async move { peer.call_tool(long(60.0)).await });
    let authority = opened(&db);
    let records = |kind: EvidenceKind| {
        records(
            &authority,
            "default",
            "mcp.everything.trigger-long-running-operation",
        )
        .into_iter()
        .filter(move |r| r.kind == kind)
        .collect::<Vec<_>>()
    };
    haltstate_testkit::eventually("the long call granted", Duration::from_secs(10), || {
        (records(EvidenceKind::Guard).len() == 2).then_some(())
    });
    call.abort();
    let cancelled = haltstate_testkit::eventually(
        "the cancelled call's outcome",
        Duration::from_secs(10),
        || {
            records(EvidenceKind::Outcome)
                .into_iter()
                .find(|r| r.outcome == Some(Outcome::Cancelled))
        },
    );
    assert_eq!(cancelled.kind, EvidenceKind::Outcome);
    client.cancel().await.unwrap();
}

/// An upstream on streamable HTTP (`--upstream-url`): `@modelcontextprotocol/server-everything` on a loopback
/// port; an allowed tool runs, another is denied by policy.
#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_on_streamable_http_is_guarded_the_same() {
    haltstate_testkit::mcp::install();
    let (_server, url) = haltstate_testkit::mcp::everything_over_http();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("mcp.cedar");
    std::fs::write(
        &policy,
        r#"@id("echo") permit(principal, action == Action::"mcp.everything.echo", resource);"#,
    )
    .unwrap();
    let db = dir.path().join("hs.db");
    let mut command = haltstate_process(&proxy_args("everything", "desktop-agent", &db, &policy));
    command.args(["--upstream-url", &url]);
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    let echoed = client
        .call_tool(tool_call("echo", json!({"message": "through the proxy"})))
        .await
        .unwrap();
    assert_ne!(echoed.is_error, Some(true), "{echoed:?}");
    assert!(text(&echoed).contains("through the proxy"), "{echoed:?}");
    let summed = client
        .call_tool(tool_call("get-sum", json!({"a": 2, "b": 3})))
        .await
        .unwrap();
    assert_eq!(decision(&summed)["status"], "denied", "{summed:?}");
    client.cancel().await.unwrap();

    // The same upstream behind TLS: reached with the certificate checked against SSL_CERT_FILE's roots; with the
    // system's roots alone (a certificate nobody vouches for) the proxy refuses to start.
    let (ca, cert, key) = certificates(dir.path());
    let backend = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .parse()
        .unwrap();
    let front = tls_front(backend, &cert, &key).await;
    let https = format!("https://localhost:{}/mcp", front.port());
    let mut command = haltstate_process(&proxy_args("everything", "desktop-agent", &db, &policy));
    command
        .args(["--upstream-url", &https])
        .env("SSL_CERT_FILE", &ca);
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    let echoed = client
        .call_tool(tool_call("echo", json!({"message": "over tls"})))
        .await
        .unwrap();
    assert!(text(&echoed).contains("over tls"), "{echoed:?}");
    client.cancel().await.unwrap();
    let untrusted = Command::new(HALTSTATE)
        .args(proxy_args("everything", "desktop-agent", &db, &policy))
        .args(["--upstream-url", &https])
        .env_remove("SSL_CERT_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!untrusted.status.success(), "{untrusted:?}");
    assert!(
        String::from_utf8_lossy(&untrusted.stderr).contains("certificate"),
        "refused for its certificate: {untrusted:?}"
    );
}

/// A certificate authority and a certificate for `localhost` it signed (the openssl CLI): (ca.pem, leaf.pem,
/// leaf-key.pem).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    if let Err(why) = haltstate_testkit::apt::ensure("the TLS test", &["openssl"], || {
        haltstate_testkit::apt::runs("openssl")
    }) {
        panic!("{why}");
    }
    let openssl = |args: &[&str]| {
        let made = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e}"));
        assert!(made.status.success(), "openssl {args:?}: {made:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=test CA",
                "-keyout",
                "ca-key.pem",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "leaf-key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "leaf.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf-key.pem"),
    )
}

/// A TLS front for `backend` on a loopback port (rustls), serving `cert`: each connection decrypted and passed on.
async fn tls_front(backend: std::net::SocketAddr, cert: &Path, key: &Path) -> std::net::SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let (Ok(mut tls), Ok(mut plain)) = (
                    acceptor.accept(stream).await,
                    tokio::net::TcpStream::connect(backend).await,
                ) else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    address
}

/// `--server`: the proxy asks a real `haltstate serve` (the agent's key in HALTSTATE_API_KEY), not an embedded
/// authority. The tool runs when allowed; a key that is not the tenant's is refused and nothing runs.
#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_asks_an_authority_server_with_the_agents_key() {
    haltstate_testkit::mcp::install();
    let dir = tempfile::tempdir().unwrap();
    let (root, policy, db) = files_world(dir.path(), "served");
    let key = create_key(&db, "acme", "desktop-agent", "agent");
    let server = haltstate_testkit::ServeProcess::start(Path::new(HALTSTATE), &db, &policy, &[]);
    let upstream = upstream_line(&haltstate_testkit::mcp::filesystem_server(&root));
    let proxy = |api_key: &str| {
        let mut command = haltstate_process(&[]);
        command
            .args([
                "mcp",
                "proxy",
                "--stdio",
                "--name",
                "fs",
                "--agent",
                "desktop-agent",
            ])
            .args(["--server", server.base_url(), "--upstream-cmd", &upstream])
            .env("HALTSTATE_API_KEY", api_key)
            .env("HALTSTATE_TENANT_ID", "acme");
        command
    };
    let read = |path: &Path| {
        tool_call(
            "read_text_file",
            json!({"path": path.display().to_string()}),
        )
    };
    let client = ().serve(TokioChildProcess::new(proxy(&key)).unwrap()).await.unwrap();
    let served = client
        .call_tool(read(&root.join("motd.txt")))
        .await
        .unwrap();
    assert_ne!(served.is_error, Some(true), "{served:?}");
    assert!(text(&served).contains("served"), "{served:?}");
    client.cancel().await.unwrap();

    let stranger = ().serve(TokioChildProcess::new(proxy("hs_not_a_key")).unwrap()).await.unwrap();
    let refused = stranger
        .call_tool(read(&root.join("motd.txt")))
        .await
        .unwrap();
    assert_eq!(refused.is_error, Some(true), "{refused:?}");
    assert!(!text(&refused).contains("served"), "{refused:?}");
    let why = decision(&refused);
    assert!(
        why["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("authentication"),
        "{why}"
    );
    stranger.cancel().await.unwrap();

    let reads: Vec<_> = records(&opened(&db), "acme", "mcp.fs.read_text_file")
        .into_iter()
        .map(|r| (r.kind, r.agent_id.unwrap_or_default()))
        .collect();
    assert_eq!(
        reads,
        vec![
            (EvidenceKind::Guard, "desktop-agent".to_owned()),
            (EvidenceKind::Outcome, "desktop-agent".to_owned())
        ],
        "one read, by the key's agent; the stranger left nothing"
    );

    // Over HTTP the proxy holds no key: each caller's own key goes to the server with its calls.
    let mut listening = haltstate_process(&[]);
    listening
        .args(["mcp", "proxy", "--name", "fs", "--listen", "127.0.0.1:0"])
        .args(["--server", server.base_url(), "--upstream-cmd", &upstream])
        .env_remove("HALTSTATE_API_KEY")
        .env("HALTSTATE_TENANT_ID", "acme");
    let listening = Listening::start(listening).await;
    let client = listening.client(&key).await.unwrap();
    let served = client
        .call_tool(read(&root.join("motd.txt")))
        .await
        .unwrap();
    assert!(text(&served).contains("served"), "{served:?}");
    client.cancel().await.unwrap();
    assert!(listening.client("hs_not_a_key").await.is_err());
    let guards = records(&opened(&db), "acme", "mcp.fs.read_text_file")
        .into_iter()
        .filter(|r| r.kind == EvidenceKind::Guard)
        .count();
    assert_eq!(
        guards, 2,
        "the HTTP caller's read was guarded by the server"
    );
}

/// `haltstate keys create` for `name` in `tenant` on `db`: the key's secret.
fn create_key(db: &Path, tenant: &str, name: &str, role: &str) -> String {
    let created = Command::new(HALTSTATE)
        .args(["keys", "create", "--db"])
        .arg(db)
        .args(["--tenant", tenant, "--name", name, "--role", role])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    String::from_utf8_lossy(&created.stdout).trim().to_owned()
}

/// A proxy started with `--listen 127.0.0.1:0`: its URL (`http://127.0.0.1:port/mcp`) read from its first line.
struct Listening {
    /// Killed with the value.
    _child: tokio::process::Child,
    url: String,
}

impl Listening {
    async fn start(mut command: tokio::process::Command) -> Self {
        use tokio::io::AsyncBufReadExt;
        command
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the proxy did not start listening: {line:?}"))
            .to_owned();
        Self { _child: child, url }
    }

    /// An MCP client (rmcp, streamable HTTP) presenting `key` as a bearer token.
    async fn client(
        &self,
        key: &str,
    ) -> Result<RunningService<RoleClient, ()>, rmcp::service::ClientInitializeError> {
        use rmcp::transport::StreamableHttpClientTransport;
        use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
        let config =
            StreamableHttpClientTransportConfig::with_uri(self.url.clone()).auth_header(key);
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
    }
}

/// `--listen`: each request's agent key is who it acts as (X-API-Key or Bearer); no key, a wrong key and an
/// operator's key are refused before anything is called; a session opened by one agent is nobody else's; a
/// foreign `Host` or any `Origin` is refused; `--agent` without keys only on loopback.
#[tokio::test(flavor = "multi_thread")]
async fn over_http_each_agents_key_is_its_identity_and_nothing_else_gets_in() {
    haltstate_testkit::mcp::install();
    let dir = tempfile::tempdir().unwrap();
    let (root, policy, db) = files_world(dir.path(), "served");
    let alpha = create_key(&db, "default", "alpha", "agent");
    let beta = create_key(&db, "default", "beta", "agent");
    let operator = create_key(&db, "default", "olga", "operator");
    let upstream = upstream_line(&haltstate_testkit::mcp::filesystem_server(&root));
    let mut args = proxy_args("fs", "unused", &db, &policy);
    // Keys, not --agent, over HTTP on any address.
    args.retain(|a| a != "--stdio" && a != "--agent" && a != "unused");
    let mut command = haltstate_process(&args);
    command.args(["--listen", "127.0.0.1:0", "--upstream-cmd", &upstream]);
    let proxy = Listening::start(command).await;

    let read = || {
        tool_call(
            "read_text_file",
            json!({"path": root.join("motd.txt").display().to_string()}),
        )
    };
    for key in [&alpha, &beta] {
        let client = proxy.client(key).await.unwrap();
        let served = client.call_tool(read()).await.unwrap();
        assert!(text(&served).contains("served"), "{served:?}");
        client.cancel().await.unwrap();
    }
    // A client of the stateless 2026-07-28 revision (no session), with its key.
    {
        use rmcp::model::ProtocolVersion;
        use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
        use rmcp::transport::StreamableHttpClientTransport;
        use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
        let config =
            StreamableHttpClientTransportConfig::with_uri(proxy.url.clone()).auth_header(&alpha);
        let modern = ()
            .serve_with_lifecycle(
                StreamableHttpClientTransport::from_config(config),
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .unwrap();
        let served = modern.call_tool(read()).await.unwrap();
        assert!(text(&served).contains("served"), "{served:?}");
        modern.cancel().await.unwrap();
    }
    let agents: Vec<_> = records(&opened(&db), "default", "mcp.fs.read_text_file")
        .into_iter()
        .filter(|r| r.kind == EvidenceKind::Guard)
        .map(|r| r.agent_id.unwrap_or_default())
        .collect();
    assert_eq!(
        agents,
        ["alpha", "beta", "alpha"],
        "each call acts as its key's agent"
    );

    for refused in ["hs_not_a_key", operator.as_str(), ""] {
        assert!(
            proxy.client(refused).await.is_err(),
            "{refused:?} must not open a session"
        );
    }

    // The raw protocol: a session alpha opens answers alpha's key only.
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"}}});
    let post = |key: &str, body: &Value| {
        http.post(&proxy.url)
            .header("x-api-key", key)
            .header("accept", "application/json, text/event-stream")
            .json(body)
    };
    let opened_session = post(&alpha, &initialize).send().await.unwrap();
    assert!(opened_session.status().is_success(), "{opened_session:?}");
    let session = opened_session.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let as_beta = post(&beta, &list)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(as_beta.status(), 404, "another agent's session");
    let unauthenticated = http
        .post(&proxy.url)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(unauthenticated.headers()["www-authenticate"], "Bearer");
    let rebinding = post(&alpha, &initialize)
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebinding.status(), 403, "a foreign Host (DNS rebinding)");
    let browser = post(&alpha, &initialize)
        .header("origin", "https://attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), 403, "a page's Origin");
    drop(proxy);

    let mut args = proxy_args("fs", "alpha", &db, &policy);
    args.retain(|a| a != "--stdio");
    let mut exposed = haltstate_process(&args);
    let exposed = exposed
        .args(["--listen", "0.0.0.0:0", "--upstream-cmd", &upstream])
        .output()
        .await
        .unwrap();
    assert!(!exposed.status.success());
    assert!(
        String::from_utf8_lossy(&exposed.stderr).contains("loopback"),
        "{exposed:?}"
    );
}

/// `--hide-denied`: tools/list shows only the tools some policy may allow the agent (the filesystem server lists
/// a dozen); a hidden tool called anyway is still denied, not run.
#[tokio::test(flavor = "multi_thread")]
async fn hide_denied_lists_only_the_tools_policy_may_allow() {
    let p = proxy_with(&["--hide-denied"]).await;
    let mut names: Vec<String> = p
        .client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["list_directory", "read_text_file", "write_file"]);
    let motd = p.root.join("motd.txt").display().to_string();
    let moved = p
        .call(
            "move_file",
            json!({"source": motd, "destination": p.root.join("public/m.txt").display().to_string()}),
        )
        .await;
    assert_eq!(decision(&moved)["status"], "denied", "{moved:?}");
    assert!(p.root.join("motd.txt").exists());
    p.client.cancel().await.unwrap();
}

/// `@modelcontextprotocol/conformance` (the server suite) against `server-everything` directly, then through the
/// proxy (`--listen`, a policy allowing every tool): every check that passes against the server passes through
/// the proxy too.
#[tokio::test(flavor = "multi_thread")]
async fn the_conformance_suite_passes_through_the_proxy_wherever_it_passes_directly() {
    haltstate_testkit::mcp::install();
    let dir = tempfile::tempdir().unwrap();
    let (_direct, direct_url) = haltstate_testkit::mcp::everything_over_http();
    let direct = haltstate_testkit::mcp::conformance(&direct_url, &dir.path().join("direct"));

    let policy = dir.path().join("all.cedar");
    std::fs::write(
        &policy,
        r#"@id("all") permit(principal, action, resource);"#,
    )
    .unwrap();
    let mut args = proxy_args(
        "everything",
        "conformance",
        &dir.path().join("hs.db"),
        &policy,
    );
    args.retain(|a| a != "--stdio");
    let upstream = upstream_line(&haltstate_testkit::mcp::everything_server());
    let mut command = haltstate_process(&args);
    command.args(["--listen", "127.0.0.1:0", "--upstream-cmd", &upstream]);
    let proxy = Listening::start(command).await;
    let proxied = haltstate_testkit::mcp::conformance(&proxy.url, &dir.path().join("proxied"));

    let passed = |checks: &std::collections::BTreeMap<String, String>| {
        checks
            .iter()
            .filter(|(_, status)| *status == "SUCCESS")
            .map(|(check, _)| check.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let lost: Vec<_> = passed(&direct)
        .difference(&passed(&proxied))
        .cloned()
        .collect();
    assert!(
        lost.is_empty(),
        "checks passing directly but not through the proxy: {lost:?}"
    );
    assert!(passed(&direct).len() >= 10, "{direct:?}");
    // The proxy refuses a foreign Host, which the reference server itself does not.
    assert_eq!(
        proxied
            .get("server-dns-rebinding-protection/localhost-host-rebinding-rejected")
            .map(String::as_str),
        Some("SUCCESS")
    );
}

/// `@modelcontextprotocol/server-memory` through the proxy: reads allowed, creating entities `--once`, deleting
/// them denied; the graph holds what ran, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_memory_server_creates_once_and_never_deletes() {
    haltstate_testkit::mcp::install();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("memory.cedar");
    std::fs::write(
        &policy,
        r#"
@id("read") permit(principal, action in [Action::"mcp.memory.read_graph", Action::"mcp.memory.search_nodes"], resource);
@id("create") permit(principal, action == Action::"mcp.memory.create_entities", resource);
@id("no.deletes") @reason("memories are kept") forbid(principal, action == Action::"mcp.memory.delete_entities", resource);
"#,
    )
    .unwrap();
    let db = dir.path().join("hs.db");
    let upstream = upstream_line(&haltstate_testkit::mcp::memory_server());
    let mut command = haltstate_process(&proxy_args("memory", "desktop-agent", &db, &policy));
    command
        .args(["--upstream-cmd", &upstream, "--once", "create_entities"])
        .env("MEMORY_FILE_PATH", dir.path().join("memory.jsonl"));
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    let create = json!({"entities": [{"name": "haltstate", "entityType": "project", "observations": ["guards tool calls"]}]});
    let made = client
        .call_tool(tool_call("create_entities", create.clone()))
        .await
        .unwrap();
    assert_ne!(made.is_error, Some(true), "{made:?}");
    let again = client
        .call_tool(tool_call("create_entities", create))
        .await
        .unwrap();
    assert_eq!(decision(&again)["status"], "completed", "{again:?}");
    let deleted = client
        .call_tool(tool_call(
            "delete_entities",
            json!({"entityNames": ["haltstate"]}),
        ))
        .await
        .unwrap();
    assert_eq!(decision(&deleted)["status"], "denied", "{deleted:?}");
    let graph = client
        .call_tool(tool_call("read_graph", json!({})))
        .await
        .unwrap();
    assert_eq!(
        text(&graph).matches("guards tool calls").count(),
        1,
        "{graph:?}"
    );
    client.cancel().await.unwrap();
}
