//! Faults aimed at protocol moments fire, are counted, and a correct replica survives them.

use std::process::Command;

fn vopr_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_vopr"))
        .args(args)
        .arg("--json")
        .output()
        .expect("vopr runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    serde_json::from_str(line).expect("JSON")
}

#[test]
fn each_aimed_fault_fires_and_is_counted() {
    let kinds = [
        ("aim.crash_after_prepare_ok=0.05", "crash_after_prepare_ok"),
        (
            "aim.crash_after_superblock_write=0.5",
            "crash_after_superblock_write",
        ),
        ("aim.pause_probability=0.002", "pause"),
        ("aim.isolate_after_commit=0.01", "isolate_after_commit"),
        (
            "aim.crash_pending_writes_factor=50",
            "crash_with_writes_in_flight",
        ),
    ];
    for (set, kind) in kinds {
        let summary = vopr_json(&[
            "--seed",
            "4",
            "--set",
            "crash_probability=0.0005",
            "--set",
            "write_latency_max_ticks=5",
            "--set",
            set,
        ]);
        let fired = summary["aimed_faults"][kind].as_u64().unwrap_or(0);
        assert!(fired > 0, "{kind} never fired: {}", summary["aimed_faults"]);
        assert_eq!(summary["outcome"], "pass", "{kind}: {summary}");
    }
}

#[test]
fn view_change_moments_are_aimed_at() {
    // Seeds with view changes: crash right after do_view_change / start_view, isolate the new
    // primary, and drop start_view to some backups.
    let mut fired = std::collections::BTreeMap::new();
    for seed in ["1", "2", "5"] {
        let summary = vopr_json(&[
            "--seed",
            seed,
            "--set",
            "aim.crash_after_do_view_change=0.3",
            "--set",
            "aim.crash_after_start_view=0.3",
            "--set",
            "aim.isolate_after_start_view=0.3",
            "--set",
            "aim.start_view_drop=0.3",
            "--set",
            "aim.restart_on_view_change=0.9",
        ]);
        assert_eq!(summary["outcome"], "pass", "seed {seed}: {summary}");
        for (kind, n) in summary["aimed_faults"].as_object().unwrap() {
            *fired.entry(kind.clone()).or_insert(0) += n.as_u64().unwrap();
        }
    }
    for kind in [
        "crash_after_do_view_change",
        "crash_after_start_view",
        "isolate_after_start_view",
        "start_view_dropped",
        "restart_on_view_change",
    ] {
        assert!(fired[kind] > 0, "{kind}: {fired:?}");
    }
}

#[test]
fn aimed_faults_replay_from_their_schedule() {
    use simulator::options::Options;
    use simulator::run::{run, RunConfig};
    let seed = 2;
    let mut o = Options::from_seed(seed);
    o.ticks_safety = 8_000;
    o.crash_probability = 0.0005;
    o.aim.crash_after_do_view_change = 0.3;
    o.aim.crash_after_start_view = 0.3;
    o.aim.isolate_after_start_view = 0.3;
    o.aim.start_view_drop = 0.3;
    o.aim.restart_on_view_change = 0.9;
    o.aim.pause_probability = 0.002;
    let original = run(seed, o.clone(), RunConfig::default());
    let kinds = original.aimed_faults.values().filter(|&&n| n > 0).count();
    assert!(kinds >= 4, "{:?}", original.aimed_faults);
    let config = RunConfig {
        replay: Some(original.schedule.clone()),
        ..RunConfig::default()
    };
    let replay = run(seed, o, config);
    assert_eq!(replay.trace_hash, original.trace_hash);
    assert_eq!(replay.aimed_faults, original.aimed_faults);
}
