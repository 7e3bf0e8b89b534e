//! The routes, grouped by audience.

pub mod operator;
pub mod sentinel;
pub mod stream;
pub mod tlog;
