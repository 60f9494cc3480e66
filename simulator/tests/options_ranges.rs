//! Option ranges: what `vopr` accepts is what a correct replica survives.

mod common;
use common::vopr;

#[test]
fn a_disk_slower_than_the_view_change_timeouts_is_refused_in_one_line() {
    let out = vopr(&["--seed", "1", "--set", "write_latency_max_ticks=1000"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("write_latency_max_ticks must be at most 100"),
        "{err}"
    );
}

#[test]
fn the_slowest_disk_accepted_still_passes() {
    // At the bound, every view change still completes (heartbeats do not wait behind slow
    // writes, and the timeouts outlast a superblock write).
    for seed in ["1", "3", "5"] {
        let out = vopr(&["--seed", seed, "--set", "write_latency_max_ticks=100"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "seed {seed}: {text}");
    }
}
