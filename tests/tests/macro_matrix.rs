//! Every macro on every shape: a sync fn, an async fn, a `&mut self` method, an `#[async_trait]` method and a
//! generic fn. For each: the body runs once on allow, its outcome is recorded exactly once, a replay answers
//! `AlreadyCompleted` without running it, and a denial never runs it.

#![allow(clippy::unwrap_used)]

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use haltstate::authority::Authority;
use haltstate::{GuardError, HaltStateClient};

static AUTHORITY: LazyLock<(Authority, tempfile::TempDir)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let policy = r#"@id("matrix") permit(principal, action == Action::"matrix.run", resource)
                    when { context.params has allow && context.params.allow };"#;
    (
        Authority::builder(dir.path().join("m.db"))
            .policy_source("m.cedar", policy)
            .open()
            .unwrap(),
        dir,
    )
});

static CLIENT: LazyLock<HaltStateClient> = LazyLock::new(|| {
    HaltStateClient::builder()
        .authority(AUTHORITY.0.clone())
        .tenant("acme")
        .build()
        .unwrap()
});

fn outcomes(key: &str) -> usize {
    haltstate_testkit::outcomes(&AUTHORITY.0, "acme", key).len()
}

/// Checks one shape: `call(key, allow)` runs the guarded body and returns its result; `runs` counts bodies.
async fn check<F, Fut>(shape: &str, runs: &AtomicUsize, call: F)
where
    F: Fn(String, bool) -> Fut,
    Fut: std::future::Future<Output = Result<u32, GuardError>>,
{
    let key = format!("{shape}:allowed");
    let before = runs.load(Ordering::SeqCst);
    assert!(
        call(key.clone(), true).await.is_ok(),
        "{shape}: allowed call failed"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst) - before,
        1,
        "{shape}: the body runs once"
    );
    assert_eq!(
        outcomes(&key),
        1,
        "{shape}: the outcome is recorded exactly once"
    );
    let replay = call(key.clone(), true).await.unwrap_err();
    assert!(
        matches!(replay, GuardError::AlreadyCompleted { .. }),
        "{shape}: {replay}"
    );
    let denied = call(format!("{shape}:denied"), false).await.unwrap_err();
    assert!(
        matches!(denied, GuardError::ActionDenied { .. }),
        "{shape}: {denied}"
    );
    assert_eq!(
        runs.load(Ordering::SeqCst) - before,
        1,
        "{shape}: no replay or denial ran the body"
    );
}

macro_rules! matrix {
    ($module:ident, $attr:ident) => {
        mod $module {
            use super::*;
            use haltstate::$attr;

            pub static RUNS: AtomicUsize = AtomicUsize::new(0);

            #[$attr(client = CLIENT, action = "matrix.run", agent_id = "matrix", idempotency_key = |key| key.to_owned(), params(allow = allow))]
            pub fn sync_fn(key: &str, allow: bool) -> Result<u32, GuardError> {
                RUNS.fetch_add(1, Ordering::SeqCst);
                Ok(1)
            }

            #[$attr(client = CLIENT, action = "matrix.run", agent_id = "matrix", idempotency_key = |key| key.to_owned(), params(allow = allow))]
            pub async fn async_fn(key: &str, allow: bool) -> Result<u32, GuardError> {
                tokio::task::yield_now().await;
                RUNS.fetch_add(1, Ordering::SeqCst);
                Ok(2)
            }

            pub struct Holder {
                pub count: u32,
            }

            impl Holder {
                #[$attr(client = CLIENT, action = "matrix.run", agent_id = "matrix", idempotency_key = |key| key.to_owned(), params(allow = allow))]
                pub fn mut_method(&mut self, key: &str, allow: bool) -> Result<&mut u32, GuardError> {
                    RUNS.fetch_add(1, Ordering::SeqCst);
                    self.count += 1;
                    Ok(&mut self.count)
                }
            }

            #[async_trait::async_trait]
            pub trait Runner {
                async fn run(&self, key: &str, allow: bool) -> Result<u32, GuardError>;
            }

            #[async_trait::async_trait]
            impl Runner for Holder {
                #[$attr(client = CLIENT, action = "matrix.run", agent_id = "matrix", idempotency_key = |key| key.to_owned(), params(allow = allow))]
                async fn run(&self, key: &str, allow: bool) -> Result<u32, GuardError> {
                    RUNS.fetch_add(1, Ordering::SeqCst);
                    Ok(self.count)
                }
            }

            #[$attr(client = CLIENT, action = "matrix.run", agent_id = "matrix", idempotency_key = |key| key.to_owned(), params(allow = allow))]
            pub fn generic_fn<T: Into<u32> + Send>(key: &str, allow: bool, value: T) -> Result<u32, GuardError> {
                RUNS.fetch_add(1, Ordering::SeqCst);
                Ok(value.into())
            }

            #[tokio::test]
            async fn every_shape() {
                let name = stringify!($module);
                check(&format!("{name}:sync"), &RUNS, |k, a| async move { sync_fn(&k, a) }).await;
                check(&format!("{name}:async"), &RUNS, |k, a| async move { async_fn(&k, a).await }).await;
                check(&format!("{name}:mut"), &RUNS, |k, a| async move {
                    let mut holder = Holder { count: 0 };
                    holder.mut_method(&k, a).map(|count| *count)
                })
                .await;
                check(&format!("{name}:async_trait"), &RUNS, |k, a| async move { Holder { count: 5 }.run(&k, a).await }).await;
                check(&format!("{name}:generic"), &RUNS, |k, a| async move { generic_fn(&k, a, 7u8) }).await;
            }
        }
    };
}

matrix!(guard_macro, guard);
matrix!(haltstate_guard_macro, haltstate_guard);
matrix!(ahaltstate_guard_macro, ahaltstate_guard);
matrix!(openai_guard_macro, openai_guard);
