//! The HaltState runtime client; arrives with the client issue.
