#![allow(unused_imports, unused_variables, dead_code)]
use haltstate::{guard, haltstate_guard, ahaltstate_guard, openai_guard, GuardError, HaltStateClient};
use std::sync::LazyLock;
static CLIENT: LazyLock<HaltStateClient> = LazyLock::new(|| HaltStateClient::builder().tenant("t").api_key("k").base_url("http://127.0.0.1:9").build().unwrap());

#[haltstate_guard(client = CLIENT, action = "refund.create", agent_id = "billing-agent", once,
    idempotency_key = |order_id| format!("refund:{order_id}"))]
fn refund(order_id: u32) -> Result<u32, GuardError> { Ok(order_id) }
fn main() {}
