#![allow(unused_imports, unused_variables, dead_code)]
use haltstate::{guard, haltstate_guard, ahaltstate_guard, openai_guard, GuardError, HaltStateClient};
use std::sync::LazyLock;
static CLIENT: LazyLock<HaltStateClient> = LazyLock::new(|| HaltStateClient::builder().tenant("t").api_key("k").base_url("http://127.0.0.1:9").build().unwrap());

/// A generic argument that is not `Serialize`: the error is at the argument, and says what to do.
#[haltstate_guard(client = CLIENT, action = "data.export", agent_id = "exporter")]
fn export<T: std::fmt::Debug>(items: &[T], count: u32) -> Result<u32, GuardError> { Ok(count) }
fn main() {}
