//! The routes, grouped by audience.

pub mod sentinel;
pub mod stream;
