#![allow(unused_imports, unused_variables, dead_code)]
use haltstate::{guard, haltstate_guard, ahaltstate_guard, openai_guard, GuardError, HaltStateClient};
use std::sync::LazyLock;
static CLIENT: LazyLock<HaltStateClient> = LazyLock::new(|| HaltStateClient::builder().tenant("t").api_key("k").base_url("http://127.0.0.1:9").build().unwrap());
struct Order { id: u64, amount: u32 }

#[guard(action = "refund.create", idempotency_key = |order| format!("r:{}", order.id))]
fn refund(order: &Order) -> Result<u32, GuardError> { let n: u32 = "7".parse::<u32>()?; Ok(n + order.amount) }
fn main() {}
