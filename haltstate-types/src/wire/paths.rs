//! Where each endpoint lives: the wire contract's prefixes and suffixes, and the operator API's.

/// The canonical prefix of the wire contract.
pub const CANONICAL: &str = "/api/haltstate/sentinel";
/// The legacy prefix every official SDK call is written against.
pub const LEGACY: &str = "/api/sentinel";
/// A base path some SDKs put in front of both (`https://haltstate.ai/ops`).
pub const OPS_BASE: &str = "/ops";
/// The operator API's prefix.
pub const OPERATOR: &str = "/api/haltstate/v1";

/// E1: `POST`.
pub const CHECK: &str = "action/check";
/// E2: `POST`.
pub const GUARD: &str = "action/guard";
/// E3: `POST`.
pub const GUARD_REPORT: &str = "action/guard/report";
/// Our extension: `POST` evidence of an action run fail-open.
pub const GUARD_UNVERIFIED: &str = "action/guard/unverified";
/// E4: `POST`.
pub const REPORT: &str = "action/report";
/// E5: `GET approval/{id}`.
pub const APPROVAL: &str = "approval";
/// E6: `GET`.
pub const APPROVALS_SINCE: &str = "approvals/since";
/// E7: `GET` (SSE).
pub const APPROVALS_STREAM: &str = "approvals/stream";
/// E8: `GET`.
pub const HEARTBEAT: &str = "heartbeat";
