//! Every shape the macros must accept compiles (and passes `deny(warnings)`).
#![deny(warnings)]

use std::fmt::Display;
use std::sync::{Arc, LazyLock};

use ::haltstate::{GuardError, HaltStateClient, ahaltstate_guard, guard, haltstate_guard, openai_guard};

static CLIENT: LazyLock<HaltStateClient> = LazyLock::new(|| HaltStateClient::builder().tenant("t").api_key("k").base_url("http://127.0.0.1:9").build().unwrap());

/// A user module named like the crate must not confuse the expansion.
#[allow(dead_code)]
mod haltstate {}

pub struct Order {
    pub id: u64,
    pub amount: u32,
}

#[derive(Debug)]
pub enum RefundError {
    Guard(GuardError),
}

impl From<GuardError> for RefundError {
    fn from(error: GuardError) -> Self {
        RefundError::Guard(error)
    }
}

/// Docs and other attributes survive.
#[must_use = "check it"]
#[guard(action = "refund.create", idempotency_key = |order| format!("refund:{}", order.id), params(amount = order.amount))]
pub fn refund(order: &Order) -> Result<u32, RefundError> {
    #![allow(clippy::needless_return)]
    return Ok(order.amount);
}

#[haltstate_guard(client = CLIENT, action = "thing.touch", agent_id = "a", idempotency_key = |id| format!("t:{id}"))]
pub fn generic<'a, T: Display + ?Sized, U>(id: u32, label: &'a T, extra: impl Into<U>) -> Result<String, GuardError>
where
    U: Default,
{
    let _unused: U = extra.into();
    Ok(format!("{id}{label}"))
}

#[haltstate_guard(client = CLIENT, action = "thing.touch", agent_id = "a", idempotency_key = |id| format!("m:{id}"))]
pub fn mut_params(mut id: u32) -> Result<u32, GuardError> {
    id += 1;
    Ok(id)
}

#[haltstate_guard(client = CLIENT, action = "io.write", agent_id = "a", idempotency_key = |path| path.to_owned())]
pub fn io_alias(path: &str) -> std::io::Result<usize> {
    Ok(path.len())
}

#[haltstate_guard(client = CLIENT, action = "io.write", agent_id = "a", idempotency_key = |path| path.to_owned())]
pub fn boxed_error(path: &str) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    Ok(path.len())
}

pub type MyResult<T> = Result<T, RefundError>;

#[haltstate_guard(client = CLIENT, action = "io.write", agent_id = "a", idempotency_key = |n| n.to_string())]
pub fn alias(n: u32) -> MyResult<u32> {
    Ok(n)
}

#[haltstate_guard(client = CLIENT, action = "x.y", agent_id = "a", idempotency_key = "fixed")]
/// # Safety
/// None needed; the attribute must keep `unsafe`.
pub unsafe fn unsafe_fn() -> Result<(), GuardError> {
    Ok(())
}

#[ahaltstate_guard(client = CLIENT, action = "x.y", agent_id = "a", idempotency_key = "fixed")]
/// # Safety
/// None needed.
pub async unsafe fn async_unsafe_fn() -> Result<(), GuardError> {
    Ok(())
}

pub struct Service {
    client: Arc<HaltStateClient>,
    total: u32,
}

impl Service {
    #[haltstate_guard(client = self.client, action = "x.y", agent_id = "a", idempotency_key = format!("s:{}", self.total))]
    pub fn add(&mut self, n: u32) -> Result<&mut u32, GuardError> {
        self.total += n;
        Ok(&mut self.total)
    }

    #[haltstate_guard(client = self.client, action = "x.y", agent_id = "a", idempotency_key = "consume")]
    pub fn consume(self) -> Result<Self, GuardError> {
        Ok(Self { client: self.client, total: self.total })
    }

    #[ahaltstate_guard(client = self.client, action = "x.y", agent_id = "a", idempotency_key = format!("a:{n}"))]
    pub async fn add_async(&mut self, n: u32) -> Result<u32, GuardError> {
        use std::ops::Add;
        self.total = self.total.add(n);
        Ok(self.total)
    }
}

pub trait Native {
    fn go(&self, n: u32) -> impl std::future::Future<Output = Result<u32, GuardError>> + Send;
}

impl Native for Service {
    #[ahaltstate_guard(client = self.client, action = "x.y", agent_id = "a", idempotency_key = format!("n:{n}"), fail = "closed", risk = "money")]
    async fn go(&self, n: u32) -> Result<u32, GuardError> {
        Ok(n)
    }
}

#[openai_guard(client = CLIENT, agent_id = "gpt", on_approval = wait(timeout_s = 60))]
pub async fn ask(model: &str, prompt: &str) -> Result<String, GuardError> {
    Ok(format!("{model}{prompt}"))
}

mod renamed {
    pub use ::haltstate as hs;
}

#[haltstate_guard(crate = renamed::hs, client = CLIENT, action = "x.y", agent_id = "a", idempotency_key = "renamed",
    params(card = secret(String::from("4111"))), resource = "r:1")]
pub fn with_crate_path() -> Result<(), GuardError> {
    Ok(())
}

fn assert_send<T: Send>(_: T) {}

fn main() {
    let service = Service { client: Arc::new(CLIENT.clone()), total: 0 };
    let mut service = service;
    assert_send(service.add_async(1));
    assert_send(ask("m", "p"));
    assert_send(service.go(1));
}
