//! What the fuzz targets share: the protocol features a simulation input reached
//! (`simulator::fuzz::features`: views, commits, repairs, checkpoints, state transfers,
//! crashes, disk faults, versions of one op), handed to libFuzzer as extra counters.
//!
//! Not a value profile: `-use_value_profile=1` feeds on the trace-compares hooks, which the
//! simulation targets are built without (ci/fuzz-smoke.sh); these counters are its
//! protocol-level counterpart, and work with or without it.

use simulator::fuzz::{features, Depth};

/// libFuzzer (on Linux) finds this section by its `__start_`/`__stop_` symbols and reads its
/// bytes like its own inline edge counters: a counter that becomes non-zero is a new feature,
/// so an input reaching a new bucket of some protocol measure is kept even when it runs no new
/// code. libFuzzer clears the section before each input.
#[used]
#[link_section = "__libfuzzer_extra_counters"]
static mut COUNTERS: [u8; features::FEATURE_COUNT] = [0; features::FEATURE_COUNT];

/// Sets the counters of `depth`'s features.
pub fn feed(depth: &Depth) {
    let counters = std::ptr::addr_of_mut!(COUNTERS).cast::<u8>();
    for index in features::indices(depth) {
        assert!(index < features::FEATURE_COUNT);
        // SAFETY: in bounds (checked); libFuzzer runs one input at a time, on this thread,
        // and reads the counters only after the input returns.
        unsafe { counters.add(index).write(1) };
    }
}
