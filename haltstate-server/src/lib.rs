//! The self-hosted HaltState authority over HTTP; arrives with the server issue.
