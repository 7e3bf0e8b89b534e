//! `#[ahaltstate_guard]` on an async fn: LLM calls allowed on approved models only. The prompt never leaves the
//! process; only the model is sent to policy.

use haltstate::{GuardError, HaltStateClient, ahaltstate_guard};
use haltstate_examples::Setup;

#[derive(Debug, thiserror::Error)]
enum LlmError {
    #[error(transparent)]
    Guard(#[from] GuardError),
}

async fn fake_model(model: &str, prompt: &str) -> String {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    format!("[{model}] you said {} characters", prompt.len())
}

#[ahaltstate_guard(client = client, action = "chat.complete", agent_id = "llm",
    idempotency_key = |conversation, turn| format!("chat:{conversation}:{turn}"), params(model = model))]
async fn call_llm(
    client: &HaltStateClient,
    conversation: &str,
    turn: u32,
    model: &str,
    prompt: &str,
) -> Result<String, LlmError> {
    Ok(fake_model(model, prompt).await)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let setup = Setup::from_env()?;
    let client = setup.client("llm")?;
    println!(
        "{}",
        call_llm(
            &client,
            "c-1",
            1,
            "gpt-4o-mini",
            "summarise the refund policy"
        )
        .await?
    );
    match call_llm(&client, "c-1", 2, "unvetted-model", "hello").await {
        Err(LlmError::Guard(GuardError::ActionDenied { reason, .. })) => {
            println!("unvetted-model: denied ({reason})")
        }
        other => return Err(format!("expected a denial, got {other:?}").into()),
    }
    Ok(())
}
