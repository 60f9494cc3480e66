//! Fault schedules as data: a run's schedule replays to the same run (same trace hash, same
//! schedule), and a schedule keeps its run when the swarm's fault policy changes.

use simulator::options::Options;
use simulator::run::{run, RunConfig, Summary};
use simulator::schedule::Schedule;

fn drawn(seed: u64, options: &Options) -> Summary {
    run(seed, options.clone(), RunConfig::default())
}

fn replayed(seed: u64, options: &Options, schedule: &Schedule) -> Summary {
    // Through the file format, as `vopr replay` reads it.
    let text = schedule.to_jsonl();
    let back = Schedule::parse(&text).expect("a schedule reads back");
    assert_eq!(back.events, schedule.events);
    let config = RunConfig {
        replay: Some(back.events),
        ..RunConfig::default()
    };
    run(seed, options.clone(), config)
}

fn first_difference(a: &Summary, b: &Summary) -> String {
    let at = a
        .schedule
        .iter()
        .zip(&b.schedule)
        .position(|(x, y)| x != y)
        .unwrap_or(a.schedule.len().min(b.schedule.len()));
    format!(
        "schedules differ at event {at} of {}/{}: {:?} vs {:?}",
        a.schedule.len(),
        b.schedule.len(),
        a.schedule.get(at),
        b.schedule.get(at)
    )
}

fn assert_replays(seed: u64, options: Options) {
    let original = drawn(seed, &options);
    assert!(original.fault_events > 0, "seed {seed} drew no fault");
    let schedule = Schedule::new(seed, options.clone(), original.schedule.clone());
    let replay = replayed(seed, &options, &schedule);
    assert_eq!(
        replay.schedule,
        original.schedule,
        "seed {seed}: {}",
        first_difference(&original, &replay)
    );
    assert_eq!(replay.replay_skipped, 0, "seed {seed}");
    assert_eq!(replay.trace_hash, original.trace_hash, "seed {seed}");
    assert_eq!(replay.outcome, original.outcome, "seed {seed}");
}

#[test]
fn a_schedule_replays_to_the_same_trace_hash() {
    for seed in [1, 2, 3, 42, 10006] {
        let mut options = Options::from_seed(seed);
        options.ticks_safety = options.ticks_safety.min(6_000);
        assert_replays(seed, options);
    }
}

#[test]
fn a_schedule_keeps_its_run_when_the_fault_policy_changes() {
    let seed = 42;
    let mut options = Options::from_seed(seed);
    options.ticks_safety = 8_000;
    options.storage_fault_probability = options.storage_fault_probability.max(0.002);
    options.crash_probability = options.crash_probability.max(0.0005);
    let original = drawn(seed, &options);
    let kinds: std::collections::BTreeSet<String> = original
        .schedule
        .iter()
        .map(|e| serde_json::to_value(e).unwrap()["kind"].to_string())
        .collect();
    for kind in ["\"crash\"", "\"storage\"", "\"liveness\""] {
        assert!(kinds.contains(kind), "no {kind} event in {kinds:?}");
    }
    // Another fault policy: nothing would be drawn now. The schedule still says what happens.
    let mut policy = options.clone();
    policy.crash_probability = 0.0;
    policy.storage_fault_probability = 0.0;
    policy.torn_write_probability = 0.0;
    policy.aim = simulator::aim::AimOptions::off();
    policy.network.partition_probability = 0.0;
    policy.network.path_clog_probability = 0.0;
    let schedule = Schedule::new(seed, policy.clone(), original.schedule.clone());
    let replay = replayed(seed, &policy, &schedule);
    assert_eq!(replay.trace_hash, original.trace_hash);
    assert_eq!(replay.crashes, original.crashes);
    assert_eq!(replay.storage_faults, original.storage_faults);
    // Drawn from the seed under that policy, the run is another one.
    assert_ne!(drawn(seed, &policy).trace_hash, original.trace_hash);
}

#[test]
fn an_edited_schedule_still_runs_and_says_what_it_passed_over() {
    let seed = 7;
    let mut options = Options::from_seed(seed);
    options.ticks_safety = 4_000;
    let original = drawn(seed, &options);
    // Half of the events removed (as a shrinker would): the run is another, but it runs, and
    // events whose moment never came are counted rather than executed elsewhere.
    let halved: Vec<_> = original.schedule.iter().step_by(2).cloned().collect();
    let schedule = Schedule::new(seed, options.clone(), halved);
    let replay = replayed(seed, &options, &schedule);
    assert!(replay.fault_events <= schedule.events.len());
    assert_eq!(
        replay.fault_events as u64 + replay.replay_skipped,
        schedule.events.len() as u64 + 1 - has_liveness(&schedule) as u64,
        "every event is executed or counted as passed over (the liveness event is re-recorded)"
    );
}

fn has_liveness(schedule: &Schedule) -> bool {
    schedule
        .events
        .iter()
        .any(|e| matches!(e.fault, simulator::schedule::Fault::Liveness { .. }))
}

mod common;

/// The hash a `vopr replay` line prints.
fn replay_hash(stdout: &str) -> String {
    let at = stdout.find("hash=").expect("a hash") + 5;
    stdout[at..at + 16].to_string()
}

#[test]
fn vopr_writes_a_schedule_and_replays_it() {
    let dir = std::env::temp_dir().join(format!("vopr-schedule-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("s.schedule.jsonl");
    let out = common::vopr(&[
        "--seed",
        "5",
        "--ticks",
        "3000",
        "--json",
        "--schedule-out",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text.lines().count() as u64,
        summary["fault_events"].as_u64().unwrap() + 1
    );
    // A folder holding it replays it (as seeds/ does), to the same run.
    let out = common::vopr(&["replay", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        replay_hash(&stdout),
        summary["trace_hash"].as_str().unwrap()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failing_run_writes_its_schedule_which_replays_the_failure() {
    let dir = std::env::temp_dir().join(format!("vopr-artifacts-{}", std::process::id()));
    // A liveness budget too short to converge: a failure every time.
    let out = common::vopr(&[
        "--seed",
        "3",
        "--ticks",
        "2000",
        "--set",
        "ticks_liveness_max=1",
        "--json",
        "--artifacts",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let artifact = dir.join("seed-3.schedule.jsonl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(artifact.to_str().unwrap()), "{stderr}");
    let out = common::vopr(&["replay", artifact.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("liveness (expected pass)"), "{stdout}");
    assert_eq!(
        replay_hash(&stdout),
        summary["trace_hash"].as_str().unwrap()
    );
    std::fs::remove_dir_all(&dir).ok();
}
