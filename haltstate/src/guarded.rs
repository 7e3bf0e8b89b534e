//! What the guard macros ask of a guarded fn, named here so a compile error names something you can read: a return
//! type that can carry a refusal ([`GuardedReturn`]: `Result<_, E>` with `E: From<GuardError>`), and, for a key the
//! guard derives, arguments it can digest ([`KeyArg`]: anything `serde::Serialize`). Both are implemented for you;
//! nothing here needs implementing.
//!
//! ```
//! use haltstate::GuardError;
//! use haltstate::guarded::{GuardedReturn, KeyArg};
//!
//! fn can_be_guarded<R: GuardedReturn>() {}
//! can_be_guarded::<Result<u32, GuardError>>();
//! let digestible: &dyn KeyArg = &("eu", 3);
//! # let _ = digestible;
//! ```

use crate::error::GuardError;
use haltstate_types::Outcome;

/// The return type of a guarded fn: `Result<T, E>` where `E: From<GuardError>`, so a denial or a pending approval
/// comes back as `Err`.
#[diagnostic::on_unimplemented(
    message = "a guarded fn must return `Result<_, E>` where `E: From<haltstate::GuardError>`; `{Self}` is not such a type",
    label = "this return type cannot carry a denial or a pending approval",
    note = "return `Result<_, haltstate::GuardError>`, or let your error type carry it: a variant `#[error(transparent)] Guard(#[from] haltstate::GuardError)` (thiserror), or `impl From<haltstate::GuardError> for YourError`"
)]
pub trait GuardedReturn: Sized {
    /// The value returned when the body does not run.
    fn from_guard_error(error: GuardError) -> Self;
    /// How the body ended, and an error text safe to report (the error's type, never its message).
    fn outcome(&self) -> (Outcome, Option<String>);
}

// Not recommended in errors: a `Result` whose error type lacks `From<GuardError>` is then reported with the note
// above, not as rustc's bare "`E: From<GuardError>` is not satisfied".
#[diagnostic::do_not_recommend]
impl<T, E: From<GuardError>> GuardedReturn for Result<T, E> {
    fn from_guard_error(error: GuardError) -> Self {
        Err(E::from(error))
    }

    fn outcome(&self) -> (Outcome, Option<String>) {
        match self {
            Ok(_) => (Outcome::Success, None),
            // The message may quote arguments; the type name never does.
            Err(_) => (
                Outcome::Error,
                Some(format!("returned Err({})", std::any::type_name::<E>())),
            ),
        }
    }
}

/// How a guarded fn's return type is handled: the one place the macros require [`GuardedReturn`], so a wrong
/// return type is one error, at the return type.
#[derive(Debug)]
pub struct ReturnKit<R> {
    /// The value returned when the body does not run.
    pub refuse: fn(GuardError) -> R,
    /// How the body ended.
    pub outcome: fn(&R) -> (Outcome, Option<String>),
}

/// The kit of a guarded fn returning `R`.
pub fn checked_return<R: GuardedReturn>() -> ReturnKit<R> {
    ReturnKit {
        refuse: R::from_guard_error,
        outcome: R::outcome,
    }
}

/// A value that can be part of a derived idempotency key: anything `serde::Serialize`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of a derived idempotency key",
    label = "this argument's value is digested into the key the guard derives",
    note = "a derived key digests every argument through `serde::Serialize`: leave this argument out with `skip(<its name>)`, or give the guard an `idempotency_key = |..| ...`; for a type of yours, `#[derive(serde::Serialize)]` (serde's `derive` feature); for a type parameter, bound it by `serde::Serialize`"
)]
pub trait KeyArg {
    /// The value's canonical JSON, the bytes digested.
    fn canonical(&self) -> Result<Vec<u8>, String>;
}

// Not recommended in errors: an argument that is not `Serialize` (a type parameter too) is reported with the note
// above, at the argument.
#[diagnostic::do_not_recommend]
impl<T: serde::Serialize + ?Sized> KeyArg for T {
    fn canonical(&self) -> Result<Vec<u8>, String> {
        serde_jcs::to_vec(self).map_err(|e| e.to_string())
    }
}
