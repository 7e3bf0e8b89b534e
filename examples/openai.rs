//! `#[openai_guard]` around a real `async-openai` client, against an OpenAI-compatible endpoint this example
//! serves on loopback (there is no network here). Policy sees the model and the argument names, never the
//! prompt; the evidence records the model and the token counts the response reports.

use std::sync::LazyLock;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
    CreateChatCompletionResponse,
};
use axum::Json;
use axum::routing::post;
use haltstate::{GuardError, HaltStateClient, openai_guard};
use haltstate_examples::Setup;
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
enum AskError {
    #[error(transparent)]
    Guard(#[from] GuardError),
    #[error(transparent)]
    OpenAi(#[from] OpenAIError),
}

static SETUP: LazyLock<Setup> =
    LazyLock::new(|| Setup::from_env().unwrap_or_else(|e| panic!("set-up failed: {e}")));
static CLIENT: LazyLock<HaltStateClient> = LazyLock::new(|| {
    SETUP
        .client("gpt")
        .unwrap_or_else(|e| panic!("client failed: {e}"))
});
static OPENAI_BASE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Action `llm.ask`: allowed on the approved models only.
#[openai_guard(client = CLIENT, agent_id = "gpt")]
async fn ask(model: &str, prompt: &str) -> Result<CreateChatCompletionResponse, AskError> {
    let base = OPENAI_BASE.get().cloned().unwrap_or_default();
    let openai = Client::with_config(
        OpenAIConfig::new()
            .with_api_base(base)
            .with_api_key("sk-loopback"),
    );
    let request = CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content(prompt)
            .build()?
            .into()])
        .build()?;
    Ok(openai.chat().create(request).await?)
}

/// A minimal OpenAI-compatible chat completion endpoint.
async fn completions(Json(request): Json<Value>) -> Json<Value> {
    let model = request["model"].as_str().unwrap_or("unknown").to_owned();
    let prompt = request["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let prompt_tokens = prompt.split_whitespace().count() as u64;
    Json(json!({
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": 1_767_600_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": format!("You asked {prompt_tokens} words.") },
            "finish_reason": "stop"
        }],
        "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": 4, "total_tokens": prompt_tokens + 4 }
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    OPENAI_BASE.get_or_init(|| {
        format!(
            "http://{}/v1",
            listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        )
    });
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().route("/v1/chat/completions", post(completions)),
        )
        .await
    });

    let answer = ask("gpt-4o-mini", "what is our refund policy for damaged goods").await?;
    let text = answer
        .choices
        .first()
        .and_then(|c| c.message.content.clone())
        .unwrap_or_default();
    println!("gpt-4o-mini answered: {text}");

    match ask("unvetted-model", "hello").await {
        Err(AskError::Guard(GuardError::ActionDenied { reason, .. })) => {
            println!("unvetted-model: denied ({reason})")
        }
        other => return Err(format!("expected a denial, got {other:?}").into()),
    }

    if let Setup::Embedded { authority, .. } = &*SETUP {
        let query = haltstate::authority::EvidenceQuery {
            action: Some("llm.ask".into()),
            ..Default::default()
        };
        for record in authority.evidence("acme", &query)? {
            if let Some(usage) = &record.usage {
                println!(
                    "evidence #{}: {} model={} prompt_tokens={} completion_tokens={} total={}",
                    record.seq,
                    record.outcome.map_or("-", |o| o.as_str()),
                    usage.model,
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    usage.total_tokens
                );
            }
        }
    }
    Ok(())
}
