//! Oracles. `oracle` checks every tick (commit monotonicity, agreement, replies against a
//! reference model); `linearizability` checks the client history at the end, trusting nothing
//! but what clients saw.

pub mod linearizability;
pub mod model;
pub mod oracle;

use serde::Serialize;

/// A hash map for lookups only, with a fixed (unkeyed) hasher (`rustc_hash`'s Fx): its
/// contents, and so every lookup, are the same in every run. Nothing iterates one in an order
/// that can reach a result: its few walks only collect keys' lengths into a `BTreeSet`, and a
/// map that must be walked in order is a `BTreeMap`. The checker runs after the run, so
/// nothing here can change a run's trace either. Faster than a B-tree of byte strings, whose
/// every comparison is a `memcmp`, and than std's SipHash.
pub(crate) type LookupMap<K, V> = std::collections::HashMap<K, V, rustc_hash::FxBuildHasher>;

/// A broken invariant: what, where, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: &'static str,
    pub tick: u64,
    pub replica: Option<u8>,
    pub message: String,
}
