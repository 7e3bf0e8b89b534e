#![allow(unused_imports, unused_variables, dead_code)]
use haltstate::{guard, haltstate_guard, ahaltstate_guard, openai_guard, GuardError, HaltStateClient};
use std::sync::LazyLock;
static CLIENT: LazyLock<HaltStateClient> = LazyLock::new(|| HaltStateClient::builder().tenant("t").api_key("k").base_url("http://127.0.0.1:9").build().unwrap());
struct Order { id: u64, amount: u32 }

#[openai_guard(client = CLIENT)]
async fn ask(prompt: &str) -> Result<String, GuardError> { Ok(prompt.to_owned()) }
fn main() {}
