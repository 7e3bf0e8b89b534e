//! The HTTP contract's bodies and paths: one declaration, read and written by the server, the client and the CLI.

mod approvals;
mod error_body;
mod lenient;
mod operator;
pub mod paths;
mod replies;
mod requests;

pub use approvals::{ApprovalDecision, ApprovalReply, DecisionEvent, SinceReply, StreamEvent};
pub use error_body::ErrorBody;
pub use lenient::Lenient;
pub use operator::{
    ApprovalsReply, DecideBody, EvidenceReply, KeyCreated, KeysReply, KillBody, KillReply,
    NewKeyBody, RevokedReply, TenantHeadReply,
};
pub use replies::{CheckReply, GuardReply, GuardReportReply, HeartbeatReply, RecordedReply};
pub use requests::{ActionBody, CheckBody, CheckReportBody, GuardBody, GuardReportBody};
