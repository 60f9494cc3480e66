//! The fuzz targets' short runs (simulator::fuzz budget): an input always runs the same, a run
//! stops early only once the world is at rest, and a failure planted before the end is still
//! caught on the way there.

use consensus::storage::{Storage, Zone};
use consensus::superblock::SUPERBLOCK_COPIES;
use simulator::fuzz::{self, budget, quiescent, run_to_quiescence};
use simulator::scenario::Scenario;
use std::path::PathBuf;

fn checked_in(target: &str) -> Vec<Vec<u8>> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz"));
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.extension().is_none()) {
            out.push(std::fs::read(&path).unwrap());
        }
    }
    assert!(!out.is_empty(), "{target} has checked-in inputs");
    out
}

#[test]
fn an_input_runs_the_same_every_time() {
    // libFuzzer keeps an input for the features it reached: a run that depended on anything
    // but the input (state left by the previous input, say) would mislead it.
    for data in checked_in("view_change") {
        let first = fuzz::view_change(&data);
        let second = fuzz::view_change(&data);
        assert_eq!(first, second);
        assert_ne!(first.trace_hash, 0);
    }
    for data in checked_in("scenario") {
        assert_eq!(fuzz::scenario(&data), fuzz::scenario(&data));
    }
}

#[test]
fn view_change_inputs_stay_short() {
    // The budget is what makes the target fast: the events' ticks, then the settling.
    let long = vec![0x5a; 4_096];
    let depth = fuzz::view_change(&long);
    let most = budget::VIEW_CHANGE_EVENT_TICKS + budget::VIEW_CHANGE_SETTLE_TICKS_MAX;
    assert!(depth.ticks <= most, "{depth:?}");
}

#[test]
fn a_run_stops_early_only_at_rest() {
    let mut s = Scenario::new(7, 3, 2);
    s.commit_more(10, 5_000).unwrap();
    let primary = s.primary().unwrap();
    s.crash(primary);
    s.run(50).unwrap();
    s.restart(primary);
    s.stop_clients();
    let ran = run_to_quiescence(&mut s, 5_000).unwrap();
    assert!(ran < 5_000, "a healed cluster comes to rest");
    assert!(quiescent(&s), "{}", s.describe());
    let commit = s.commit_max();
    for r in 0..3 {
        let x = s.replica(r);
        assert_eq!(
            (x.commit_min(), x.writes_done()),
            (commit, x.writes_submitted())
        );
    }
}

#[test]
fn a_failure_planted_before_rest_is_caught() {
    // A disk that forgets the superblock of a view change: the backup comes back in view 0
    // after it showed view 1. The view-durability check at its restart must still fire when
    // the run then stops at rest.
    let mut s = Scenario::new(3, 3, 2);
    s.commit_more(5, 5_000).unwrap();
    let primary = s.primary().unwrap();
    let backup = (primary + 1) % 3;
    let stale: Vec<_> = (0..SUPERBLOCK_COPIES)
        .map(|copy| {
            s.sim
                .cluster
                .storage(backup)
                .durable_read(Zone::Superblock, copy)
        })
        .collect();
    s.crash(primary);
    // The new view under way on both survivors (its start_view sent: the backup has shown it).
    s.run_until(5_000, |s| s.primary().is_some_and(|p| p != primary))
        .unwrap();
    s.commit_more(2, 5_000).unwrap();
    s.crash(backup);
    let storage = s.sim.cluster.storage_mut(backup);
    for (copy, bytes) in stale.into_iter().enumerate() {
        storage.write(Zone::Superblock, copy as u64, bytes.unwrap());
    }
    storage.flush();
    s.restart(backup);
    s.restart(primary);
    s.stop_clients();
    let error = run_to_quiescence(&mut s, 5_000).unwrap_err();
    assert!(error.contains("view_durability"), "{error}");
}
