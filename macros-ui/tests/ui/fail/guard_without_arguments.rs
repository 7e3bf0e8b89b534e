#![allow(unused_imports, unused_variables, dead_code)]
use haltstate::{guard, haltstate_guard, ahaltstate_guard, openai_guard, GuardError, HaltStateClient};
use std::sync::LazyLock;
static CLIENT: LazyLock<HaltStateClient> = LazyLock::new(|| HaltStateClient::builder().tenant("t").api_key("k").base_url("http://127.0.0.1:9").build().unwrap());
struct Order { id: u64, amount: u32 }

#[guard]
fn refund(order: &Order) -> Result<(), GuardError> { let _ = (order.id, order.amount, &*CLIENT); Ok(()) }
#[allow(unused_imports)] use haltstate_guard as _a; #[allow(unused_imports)] use ahaltstate_guard as _b; #[allow(unused_imports)] use openai_guard as _c;
fn main() {}
