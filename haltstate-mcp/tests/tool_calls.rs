//! The guard layer between a real rmcp client and a real rmcp server (in process, over a duplex pipe), against a
//! real embedded authority: allowed calls run and leave evidence, a call that needs a human waits and runs once
//! after the approval, denials and the kill switch answer tool results the model can read, `once` tools run once.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use haltstate::HaltStateClient;
use haltstate_authority::{
    Authority, EvidenceKind, EvidenceQuery, EvidenceRecord, KillScope, KillState, Outcome as Ended,
};
use haltstate_mcp::{GuardConfig, Guarded};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleClient, RunningService};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Map, Value, json};

const POLICY: &str = r#"
@id("read") permit(principal, action == Action::"mcp.files.read_file", resource);
@id("write.public") @reason("writes under /data/public are routine")
permit(principal, action == Action::"mcp.files.write_file", resource)
when { context.params.path like "/data/public/*" };
@id("write.other") @reason("other writes need a human") @approval("required")
permit(principal, action == Action::"mcp.files.write_file", resource)
when { !(context.params.path like "/data/public/*") };
@id("init") permit(principal, action == Action::"mcp.files.init_repo", resource);
@id("explode") permit(principal, action == Action::"mcp.files.explode", resource)
unless { context has risk && context.risk == "destructive" };
@id("no.deletes") @reason("agents never delete files")
forbid(principal, action == Action::"mcp.files.delete_file", resource);
@id("reads.tighter") @mode("shadow")
forbid(principal, action == Action::"mcp.files.read_file", resource)
when { context.params.path like "/etc/*" };
"#;

/// An MCP server whose tools record what they did.
#[derive(Clone, Default)]
struct Files {
    done: Arc<Mutex<Vec<String>>>,
}

impl ServerHandler for Files {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = Arc::new(Map::new());
        Ok(ListToolsResult::with_all_items(
            [
                "read_file",
                "write_file",
                "delete_file",
                "init_repo",
                "explode",
            ]
            .into_iter()
            .map(|name| {
                let tool = Tool::new(name, "a file tool", schema.clone());
                // `read_file` says it only reads; the others say nothing (MCP's default: destructive).
                if name == "read_file" {
                    tool.annotate(rmcp::model::ToolAnnotations::new().read_only(true))
                } else {
                    tool
                }
            })
            .collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        self.done
            .lock()
            .unwrap()
            .push(format!("{} {arguments}", request.name));
        let result = if request.name == "explode" {
            CallToolResult::error(vec![ContentBlock::text("the disk is full")])
        } else {
            CallToolResult::success(vec![ContentBlock::text(format!("{} done", request.name))])
        };
        Ok(result.into())
    }
}

struct World {
    authority: Authority,
    files: Files,
    client: RunningService<RoleClient, ()>,
    _dir: tempfile::TempDir,
}

/// A guarded `Files` server on an embedded authority, configured by `config`, served on one end of a pipe: the
/// authority, the server's record of what ran, and the client's end.
fn serve_guarded(
    dir: &tempfile::TempDir,
    config: impl FnOnce(GuardConfig) -> GuardConfig,
) -> (Authority, Files, tokio::io::DuplexStream) {
    let authority = Authority::builder(dir.path().join("hs.db"))
        .policy_source("mcp.cedar", POLICY)
        .open()
        .unwrap();
    let haltstate = HaltStateClient::builder()
        .authority(authority.clone())
        .tenant("acme")
        .build()
        .unwrap();
    let files = Files::default();
    let guarded = Guarded::new(
        files.clone(),
        haltstate,
        config(
            GuardConfig::new("files")
                .unwrap()
                .agent("desktop-agent")
                .resource_arg("write_file", "path")
                .approval_url("https://authority.example/ui/approvals/{id}"),
        ),
    );
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        if let Ok(server) = guarded.serve(server_io).await {
            let _ = server.waiting().await;
        }
    });
    (authority, files, client_io)
}

async fn world(config: impl FnOnce(GuardConfig) -> GuardConfig) -> World {
    let dir = tempfile::tempdir().unwrap();
    let (authority, files, client_io) = serve_guarded(&dir, config);
    let client = ().serve(client_io).await.unwrap();
    World {
        authority,
        files,
        client,
        _dir: dir,
    }
}

impl World {
    async fn call(&self, tool: &str, arguments: Value) -> CallToolResult {
        let Value::Object(arguments) = arguments else {
            panic!("arguments are an object")
        };
        self.client
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
            .await
            .unwrap()
    }

    fn done(&self) -> Vec<String> {
        self.files.done.lock().unwrap().clone()
    }

    /// The evidence of `action`, in order.
    fn records(&self, action: &str) -> Vec<EvidenceRecord> {
        let query = EvidenceQuery {
            action: Some(action.into()),
            ..EvidenceQuery::default()
        };
        self.authority.evidence("acme", &query).unwrap()
    }

    /// The first record of `kind` of `action`.
    fn first(&self, action: &str, kind: EvidenceKind) -> EvidenceRecord {
        self.records(action)
            .into_iter()
            .find(|r| r.kind == kind)
            .unwrap_or_else(|| panic!("no {kind:?} record of {action}"))
    }

    /// (kind, status) of the evidence of `action`, in order.
    fn evidence(&self, action: &str) -> Vec<(EvidenceKind, String)> {
        self.records(action)
            .into_iter()
            .map(|r| (r.kind, r.status.unwrap_or_default()))
            .collect()
    }
}

fn decision(result: &CallToolResult) -> &Value {
    &result.structured_content.as_ref().unwrap()["haltstate"]
}

#[tokio::test]
async fn an_allowed_call_runs_and_leaves_its_evidence() {
    let w = world(|c| c).await;
    let result = w.call("read_file", json!({"path": "/etc/motd"})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(w.done(), vec![r#"read_file {"path":"/etc/motd"}"#]);
    assert_eq!(
        w.evidence("mcp.files.read_file"),
        vec![
            (EvidenceKind::Guard, "allowed".into()),
            (EvidenceKind::Outcome, "completed".into())
        ]
    );
    // The same call again is the next operation: it runs again.
    w.call("read_file", json!({"path": "/etc/motd"})).await;
    assert_eq!(w.done().len(), 2);
}

#[tokio::test]
async fn a_write_that_needs_a_human_waits_then_runs_exactly_once() {
    let w = world(|c| c).await;
    let write = json!({"path": "/etc/hosts", "content": "127.0.0.1 db"});
    let first = w.call("write_file", write.clone()).await;
    assert_eq!(first.is_error, Some(true));
    let pending = decision(&first);
    assert_eq!(pending["status"], "pending", "{pending}");
    assert_eq!(pending["retry"], "same_arguments");
    let approval = pending["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(
        pending["approval_url"],
        format!("https://authority.example/ui/approvals/{approval}")
    );
    let expires = w
        .authority
        .approval("acme", &approval)
        .unwrap()
        .expires_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(pending["expires_at"], expires.as_str());
    assert!(w.done().is_empty(), "nothing ran before the approval");
    // The identical retry finds the same approval; nothing new is asked.
    let again = w.call("write_file", write.clone()).await;
    assert_eq!(decision(&again)["approval_id"], approval.as_str());

    w.authority
        .approve("acme", &approval, "alice", None)
        .await
        .unwrap();
    let approved = w.call("write_file", write.clone()).await;
    assert_ne!(approved.is_error, Some(true), "{approved:?}");
    assert_eq!(w.done().len(), 1, "the approved write ran once");
    // The approval's request names the resource the call acts on.
    let asked = w.authority.approval("acme", &approval).unwrap();
    assert_eq!(asked.resource.as_deref(), Some("/etc/hosts"));
}

#[tokio::test]
async fn a_denied_call_and_a_stopped_agent_answer_results_the_model_can_read() {
    let w = world(|c| c).await;
    let denied = w.call("delete_file", json!({"path": "/data/x"})).await;
    assert_eq!(denied.is_error, Some(true));
    assert_eq!(decision(&denied)["status"], "denied");
    assert_eq!(decision(&denied)["policy_id"], "no.deletes");
    let ContentBlock::Text(sentence) = &denied.content[0] else {
        panic!("a sentence for the model")
    };
    assert!(
        sentence.text.contains("agents never delete files"),
        "{sentence:?}"
    );

    w.authority
        .set_kill_switch(
            KillScope::Agent {
                tenant: "acme".into(),
                agent_id: "desktop-agent".into(),
            },
            KillState::Kill,
            "oncall",
        )
        .await
        .unwrap();
    let stopped = w.call("read_file", json!({"path": "/etc/motd"})).await;
    assert_eq!(decision(&stopped)["status"], "kill_switch");
    assert!(w.done().is_empty(), "{:?}", w.done());
}

#[tokio::test]
async fn a_once_tool_runs_once_and_an_upstream_error_is_recorded_as_failed() {
    let w = world(|c| c.once("init_repo")).await;
    w.call("init_repo", json!({"name": "notes"})).await;
    let repeat = w.call("init_repo", json!({"name": "notes"})).await;
    assert_eq!(decision(&repeat)["status"], "completed");
    assert_eq!(w.done().len(), 1);

    let exploded = w.call("explode", json!({})).await;
    assert_eq!(exploded.is_error, Some(true));
    assert!(
        exploded.structured_content.is_none(),
        "the tool's own error passes through"
    );
    let outcome = w.first("mcp.files.explode", EvidenceKind::Outcome);
    assert_eq!(outcome.outcome, Some(Ended::Error));
}

#[tokio::test]
async fn long_texts_reach_policy_as_their_length_and_digest_only() {
    let w = world(|c| c.long_string(30)).await;
    let content = "a secret paragraph that is much longer than thirty characters";
    let written = w
        .call(
            "write_file",
            json!({"path": "/data/public/notes.txt", "content": content}),
        )
        .await;
    assert_ne!(written.is_error, Some(true), "{written:?}");
    let guard = w.first("mcp.files.write_file", EvidenceKind::Guard);
    let context = guard.context.unwrap();
    assert!(!context.contains("secret paragraph"), "{context}");
    assert!(
        context.contains(&format!(r#""length":{}"#, content.len())),
        "{context}"
    );
    assert_eq!(guard.redacted_fields, vec!["content".to_owned()]);
}

#[tokio::test]
async fn approval_wait_holds_the_call_until_a_human_approves_then_runs_it() {
    let w = world(|c| c.approval_wait(std::time::Duration::from_secs(60))).await;
    let peer = w.client.peer().clone();
    let call = tokio::spawn(async move {
        let Value::Object(arguments) = json!({"path": "/etc/fstab", "content": "x"}) else {
            unreachable!()
        };
        peer.call_tool(CallToolRequestParams::new("write_file").with_arguments(arguments))
            .await
            .unwrap()
    });
    let authority = w.authority.clone();
    let approval = haltstate_testkit::eventually_async(
        "an approval asked for the held call",
        std::time::Duration::from_secs(10),
        || {
            let authority = authority.clone();
            async move {
                authority
                    .approvals(
                        "acme",
                        Some(haltstate_authority::ApprovalStatus::Pending),
                        10,
                    )
                    .ok()
                    .and_then(|pending| pending.into_iter().next())
            }
        },
    )
    .await;
    assert!(w.done().is_empty(), "nothing ran before the approval");
    w.authority
        .approve("acme", &approval.id, "alice", None)
        .await
        .unwrap();
    let result = call.await.unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(w.done().len(), 1);
}

#[tokio::test]
async fn a_key_the_client_names_in_meta_wins_and_runs_once() {
    use rmcp::model::RequestMetaObject;
    let w = world(|c| c).await;
    let call = || {
        let Value::Object(arguments) = json!({"path": "/etc/motd"}) else {
            unreachable!()
        };
        let mut params = CallToolRequestParams::new("read_file").with_arguments(arguments);
        let mut meta = RequestMetaObject::new();
        meta.0
            .0
            .insert("ai.haltstate/idempotency_key".into(), json!("read:motd:1"));
        params.meta = Some(meta);
        params
    };
    let first = w.client.call_tool(call()).await.unwrap();
    assert_ne!(first.is_error, Some(true), "{first:?}");
    let again = w.client.call_tool(call()).await.unwrap();
    assert_eq!(
        decision(&again)["status"],
        "completed",
        "a named key is once"
    );
    let keys: Vec<_> = w
        .records("mcp.files.read_file")
        .into_iter()
        .filter_map(|r| r.idempotency_key)
        .collect();
    assert!(keys.iter().all(|k| k == "read:motd:1"), "{keys:?}");
    assert_eq!(w.done().len(), 1);
}

#[tokio::test]
async fn a_shadow_policy_is_recorded_beside_the_decision_and_never_enforced() {
    let w = world(|c| c).await;
    let read = w
        .call("read_file", json!({"path": "/etc/shadow-test"}))
        .await;
    assert_ne!(
        read.is_error,
        Some(true),
        "the shadow forbid is not enforced: {read:?}"
    );
    assert_eq!(w.done().len(), 1);
    let guard = w.first("mcp.files.read_file", EvidenceKind::Guard);
    assert_eq!(guard.decision, Some(haltstate_authority::Decision::Allow));
    assert_eq!(
        guard.shadow_decision,
        Some(haltstate_authority::Decision::Deny)
    );
    assert_eq!(guard.shadow_policy_id.as_deref(), Some("reads.tighter"));
}

#[tokio::test]
async fn trusted_annotations_are_the_calls_risk_and_untrusted_ones_are_not() {
    let trusting = world(|c| c.trust_annotations(true)).await;
    trusting.client.list_all_tools().await.unwrap();
    trusting
        .call("read_file", json!({"path": "/etc/motd"}))
        .await;
    let risky = trusting.call("explode", json!({})).await;
    assert_eq!(decision(&risky)["status"], "denied", "{risky:?}");
    let risks: Vec<_> = trusting
        .authority
        .evidence("acme", &EvidenceQuery::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == EvidenceKind::Guard)
        .map(|r| {
            let context: Value =
                serde_json::from_str(r.context.as_deref().unwrap_or("{}")).unwrap();
            (r.action.unwrap_or_default(), context["risk"].clone())
        })
        .collect();
    assert!(
        risks.contains(&("mcp.files.read_file".into(), json!("read_only"))),
        "{risks:?}"
    );
    assert!(
        risks.contains(&("mcp.files.explode".into(), json!("destructive"))),
        "{risks:?}"
    );
    // Without trust, the same hints send no risk: the untrusting guard lets `explode` run (and fail upstream).
    let untrusting = world(|c| c).await;
    untrusting.client.list_all_tools().await.unwrap();
    let ran = untrusting.call("explode", json!({})).await;
    assert!(ran.structured_content.is_none(), "{ran:?}");
    assert_eq!(untrusting.done().len(), 1);
}

/// A client of 2026-07-28 that can send its user to a URL gets `input_required` for a call that needs a human:
/// a URL elicitation of the approval's page and a sealed state. Retried with the state once approved, the call
/// runs once; a forged state, or one replayed for other arguments, is refused and nothing runs.
#[tokio::test]
async fn a_modern_client_is_sent_to_the_approval_page_and_its_retry_runs_once() {
    use rmcp::model::{
        ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitationCapability,
        Implementation, InputRequest, ProtocolVersion, UrlElicitationCapability,
    };
    use rmcp::service::{ClientLifecycleMode, ClientServiceExt};

    let dir = tempfile::tempdir().unwrap();
    let (authority, files, client_io) =
        serve_guarded(&dir, |c| c.request_state_key([7u8; 32]).unwrap());
    let mut capabilities = ClientCapabilities::default();
    capabilities.elicitation =
        Some(ElicitationCapability::new().with_url(UrlElicitationCapability::new()));
    let client = ClientConfig::new(capabilities, Implementation::new("agent", "1"))
        .serve_with_lifecycle(
            client_io,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let write = |path: &str| {
        let Value::Object(arguments) = json!({"path": path, "content": "127.0.0.1 db"}) else {
            unreachable!()
        };
        CallToolRequestParams::new("write_file").with_arguments(arguments)
    };

    let CallToolResponse::InputRequired(asked) =
        client.call_tool_once(write("/etc/hosts")).await.unwrap()
    else {
        panic!("a pending approval is input_required for this client")
    };
    let inputs = asked.input_requests.clone().unwrap();
    let Some(InputRequest::Elicitation(elicit)) = inputs.get("haltstate_approval") else {
        panic!("one URL elicitation: {inputs:?}")
    };
    let ElicitRequestParams::UrlElicitationParams {
        url,
        elicitation_id,
        ..
    } = &elicit.params
    else {
        panic!("a URL elicitation, never a form: {:?}", elicit.params)
    };
    assert_eq!(
        url,
        &format!("https://authority.example/ui/approvals/{elicitation_id}")
    );
    let state = asked.request_state.clone().unwrap();
    assert!(files.done.lock().unwrap().is_empty());

    let retry = |params: CallToolRequestParams, state: &str| {
        let mut params = params;
        params.request_state = Some(state.to_owned());
        params.input_responses = Some(
            [("haltstate_approval".to_owned(), json!({"action": "accept"}))]
                .into_iter()
                .collect(),
        );
        params
    };
    // Forged, or replayed for other arguments: refused as a protocol fault, nothing runs.
    let forged = format!("{state}x");
    assert!(
        client
            .call_tool_once(retry(write("/etc/hosts"), &forged))
            .await
            .is_err()
    );
    assert!(
        client
            .call_tool_once(retry(write("/etc/passwd"), &state))
            .await
            .is_err()
    );
    // Still undecided: asked again.
    assert!(matches!(
        client
            .call_tool_once(retry(write("/etc/hosts"), &state))
            .await
            .unwrap(),
        CallToolResponse::InputRequired(_)
    ));

    authority
        .approve("acme", elicitation_id, "alice", None)
        .await
        .unwrap();
    let CallToolResponse::Complete(done) = client
        .call_tool_once(retry(write("/etc/hosts"), &state))
        .await
        .unwrap()
    else {
        panic!("approved: the call runs")
    };
    assert_ne!(done.is_error, Some(true), "{done:?}");
    assert_eq!(files.done.lock().unwrap().len(), 1, "ran exactly once");
    assert!(
        files.done.lock().unwrap()[0].contains("/etc/hosts"),
        "the upstream saw the call, not our state"
    );
}
