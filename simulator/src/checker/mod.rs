//! Oracles. `oracle` checks every tick (commit monotonicity, agreement, replies against a
//! reference model); `linearizability` checks the client history at the end, trusting nothing
//! but what clients saw.

pub mod linearizability;
pub mod model;
pub mod oracle;

use serde::Serialize;

/// A broken invariant: what, where, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: &'static str,
    pub tick: u64,
    pub replica: Option<u8>,
    pub message: String,
}
