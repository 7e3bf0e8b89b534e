//! The HTTP contract's bodies and paths: one declaration, read and written by the server, the client and the CLI.

mod error_body;
mod lenient;
mod operator;
pub mod paths;
mod sentinel;

pub use error_body::ErrorBody;
pub use lenient::Lenient;
pub use operator::{
    ApprovalsReply, DecideBody, EvidenceReply, KeyCreated, KeysReply, KillBody, KillReply,
    NewKeyBody, RevokedReply, TenantHeadReply,
};
pub use sentinel::{
    ActionBody, ApprovalDecision, ApprovalReply, CheckBody, CheckReply, CheckReportBody,
    DecisionEvent, GuardBody, GuardReply, GuardReportBody, GuardReportReply, HeartbeatReply,
    RecordedReply, SinceReply, StreamEvent,
};
