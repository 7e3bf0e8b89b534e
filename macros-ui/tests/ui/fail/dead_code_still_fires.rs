#![deny(dead_code)]
#![allow(unused_imports)]
use haltstate::{guard, haltstate_guard, ahaltstate_guard, openai_guard, GuardError, HaltStateClient};
use std::sync::LazyLock;
static CLIENT: LazyLock<HaltStateClient> = LazyLock::new(|| HaltStateClient::builder().tenant("t").api_key("k").base_url("http://127.0.0.1:9").build().unwrap());
struct Order { id: u64, amount: u32 }

#[guard(action = "refund.create", idempotency_key = |order| format!("r:{}", order.id))]
fn never_called(order: &Order) -> Result<u32, GuardError> { Ok(order.amount) }
fn main() { let _ = &*CLIENT; let order = Order { id: 1, amount: 2 }; let _ = (order.id, order.amount); }
