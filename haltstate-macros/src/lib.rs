//! The attribute macros (`#[guard]` and friends); arrives with the macros issue.
