//! What a call does when the authority cannot be consulted.

/// What a call does when the authority cannot be consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Do not run the action (the default: right for money, PII and production writes).
    #[default]
    Closed,
    /// Run it anyway, mark its evidence `unverified`, and keep that evidence for later delivery.
    Open,
}
