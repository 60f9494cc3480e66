//! Sweeps as a fleet runs them: the summary at the end of `vopr --seeds`, the `liveness`
//! object of the JSON, and `vopr merge` of the shards' outputs.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vopr(args: &[&str]) -> Output {
    vopr_env(args, &[])
}

fn vopr_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vopr"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .envs(env.iter().copied())
        .output()
        .expect("vopr runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Asserts exit 2 and one line on stderr starting with "vopr: "; returns the line.
fn usage_error(args: &[&str], o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("vopr: "), "{args:?}: {err}");
    err
}

/// A fresh temporary folder for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vopr-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Short seeds whose liveness phase is too short for some of them: a mix of pass and liveness.
const MIXED: &[&str] = &["--ticks", "3000", "--set", "ticks_liveness_max=400"];
/// Seed 4 of a sweep becomes a harness bug.
const PANIC_4: (&str, &str) = ("VOPR_TEST_HARNESS_PANIC_SEED", "4");

fn sum(seeds: &[Value], field: &str) -> u64 {
    seeds.iter().map(|v| v[field].as_u64().unwrap()).sum()
}

fn count(seeds: &[Value], outcome: &str) -> u64 {
    seeds.iter().filter(|v| v["outcome"] == outcome).count() as u64
}

#[test]
fn a_sweep_ends_with_a_summary_that_adds_up_its_seeds() {
    let args = [&["--seeds", "1..13", "--json"], MIXED].concat();
    let o = vopr_env(&args, &[PANIC_4]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    // stdout: one seed object per line, nothing else.
    let seeds = lines(&stdout(&o));
    assert_eq!(seeds.len(), 12);
    assert!(seeds
        .iter()
        .all(|v| v["seed"].is_u64() && v["outcome"].is_string()));
    // stderr: the summary object last (after the harness bug's own line).
    let err = stderr(&o);
    let summary: Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    assert_eq!(summary["seeds_run"], 12);
    assert_eq!(summary["seeds"], "1..13");
    for outcome in ["correctness", "liveness", "harness_bug"] {
        assert_eq!(
            summary[outcome],
            count(&seeds, outcome),
            "{outcome}: {summary}"
        );
    }
    assert_eq!(summary["harness_bug"], 1);
    let liveness = count(&seeds, "liveness");
    assert!(liveness > 0 && liveness < 11, "a mix: {liveness}");
    assert_eq!(summary["passed"], count(&seeds, "pass"));
    assert_eq!(summary["failed"], 12 - count(&seeds, "pass"));
    let unknown = seeds.iter().filter(|v| v["linearizability"] == "unknown");
    assert_eq!(summary["linearizability_unknown"], unknown.count() as u64);
    for (total, field) in [
        ("crashes", "crashes"),
        ("partitions", "partitions"),
        ("storage_faults", "storage_faults"),
        ("packets_dropped", "packets_dropped"),
        ("packets_duplicated", "packets_duplicated"),
    ] {
        assert_eq!(summary["faults"][total], sum(&seeds, field), "{field}");
    }
    let kinds = seeds[0]["aimed_faults"].as_object().unwrap();
    assert!(!kinds.is_empty());
    for kind in kinds.keys() {
        // (A harness bug's seed has none.)
        let total: u64 = seeds
            .iter()
            .map(|v| v["aimed_faults"][kind].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(summary["faults"]["aimed"][kind], total, "{kind}");
    }
    assert!(summary["seeds_per_s"].as_f64().unwrap() > 0.0);
    // Every failing seed is listed with the command that replays it.
    let listed = summary["failures_listed"].as_array().unwrap();
    let failing: Vec<u64> = seeds
        .iter()
        .filter(|v| v["outcome"] != "pass")
        .map(|v| v["seed"].as_u64().unwrap())
        .collect();
    let mut listed_seeds: Vec<u64> = listed.iter().map(|f| f["seed"].as_u64().unwrap()).collect();
    listed_seeds.sort_unstable();
    assert_eq!(listed_seeds, failing);
    for f in listed {
        let seed = f["seed"].as_u64().unwrap();
        let line = seeds.iter().find(|v| v["seed"] == seed).unwrap();
        assert_eq!(f["replay"], line["replay"]);
        let replay = f["replay"].as_str().unwrap();
        assert!(
            replay.ends_with(&format!(
                "--seed {seed} --set ticks_liveness_max=400 --set ticks_safety=3000"
            )),
            "{replay}"
        );
    }

    // The same sweep for a person: the summary on stdout, after the seeds.
    let human = vopr_env(&[&["--seeds", "1..13"], MIXED].concat(), &[PANIC_4]);
    assert_eq!(human.status.code(), Some(5));
    let out = stdout(&human);
    let tail = &out[out.rfind("\n12 seeds: ").expect("the summary") + 1..];
    let first = format!(
        "12 seeds: {} pass, 0 correctness, {liveness} liveness, 1 harness_bug",
        count(&seeds, "pass")
    );
    assert!(tail.starts_with(&first), "{tail}");
    assert!(
        tail.contains(&format!("\n  liveness: {liveness} seeds\n")),
        "{tail}"
    );
    for seed in &failing {
        let replay = format!("seed {seed}: cargo run --release --bin vopr -- --seed {seed} --set");
        assert!(tail.contains(&replay), "{seed}: {tail}");
    }
    assert!(
        tail.contains("\n  harness_bug: 1 seed\n    seed 4: "),
        "{tail}"
    );
    assert!(tail.contains(" unknown"), "{tail}");
    assert!(
        tail.contains(&format!("crashes={}", sum(&seeds, "crashes"))),
        "{tail}"
    );
    assert!(tail.contains("\n  aimed faults: "), "{tail}");
    assert!(tail.contains(" seeds/s"), "{tail}");
}

#[test]
fn the_summary_goes_to_a_file_when_asked() {
    let dir = temp_dir("summary-file");
    let file = dir.join("summary.json");
    let args = [&["--seeds", "1..4", "--json", "--summary", s(&file)], MIXED].concat();
    let o = vopr(&args);
    assert!(
        matches!(o.status.code(), Some(0) | Some(3)),
        "{}",
        stderr(&o)
    );
    assert_eq!(lines(&stdout(&o)).len(), 3);
    assert!(stderr(&o).trim().is_empty(), "{}", stderr(&o));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(summary["seeds_run"], 3);
    // Without --json the text goes to stdout and the object to the file.
    std::fs::remove_file(&file).unwrap();
    let o = vopr(&[&["--seeds", "1..4", "--summary", s(&file)], MIXED].concat());
    assert!(stdout(&o).contains("\n3 seeds: "), "{}", stdout(&o));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(summary["seeds_run"], 3);
    // A path that cannot be written fails before anything runs; --summary needs --seeds.
    for args in [
        vec!["--seeds", "1..4", "--summary", "/nonexistent/folder/s.json"],
        vec!["--seed", "1", "--summary", s(&file)],
        vec!["--summary", s(&file), "merge", "x.jsonl"],
    ] {
        let o = vopr(&args);
        usage_error(&args, &o);
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_liveness_failure_reports_the_core_and_the_waiting_requests() {
    let args = [
        "--seed",
        "2",
        "--ticks",
        "3000",
        "--set",
        "ticks_liveness_max=5",
    ];
    let o = vopr(&[&args[..], &["--json"]].concat());
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["outcome"], "liveness");
    assert!(v["violation"].is_null());
    let l = &v["liveness"];
    let core: Vec<u64> = l["core"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    assert!(!core.is_empty(), "{l}");
    assert_eq!(l["cluster_commit"], v["ops_committed"], "{l}");
    let replicas = l["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), core.len());
    for (r, &index) in replicas.iter().zip(&core) {
        assert_eq!(r["replica"], index);
        assert_eq!(r["up"], true, "{r}");
        // The numbers are the replica's own, as its one-line account gives them.
        let detail = r["detail"].as_str().unwrap();
        let expected = format!(
            "view {} log_view {} op {} commit {}/{} ",
            r["view"], r["log_view"], r["op"], r["commit_min"], r["commit_max"]
        );
        assert!(detail.contains(&expected), "{expected} in {detail}");
        let status = r["status"].as_str().unwrap();
        assert!(
            ["normal", "view_change", "recovering"].contains(&status),
            "{r}"
        );
    }
    let waiting = l["waiting"].as_array().unwrap();
    assert!(!waiting.is_empty(), "{l}");
    for w in waiting {
        for field in [
            "client",
            "session",
            "request",
            "since_tick",
            "attempts",
            "target",
        ] {
            assert!(w[field].is_u64(), "{field} in {w}");
        }
    }
    // A passing seed has none.
    let pass = vopr(&["--seed", "2", "--ticks", "3000", "--json"]);
    let p: Value = serde_json::from_str(&stdout(&pass)).unwrap();
    assert_eq!(p["outcome"], "pass");
    assert!(p["liveness"].is_null(), "{p}");

    // For a person: the headline, then one replica per line, then one request per line.
    let text = stdout(&vopr(&args));
    let at = text.find("\nLIVENESS: ").expect("the liveness report");
    let report: Vec<&str> = text[at + 1..].lines().collect();
    assert!(
        report[0].ends_with("did not converge (cluster commit 7)"),
        "{}",
        report[0]
    );
    assert!(!report[0].contains("r0:"), "{}", report[0]);
    for (i, &index) in core.iter().enumerate() {
        assert!(
            report[1 + i].starts_with(&format!("  r{index}: ")),
            "{}",
            report[1 + i]
        );
    }
    let n = waiting.len();
    let heading = format!(
        "  waiting: {n} client request{}",
        if n == 1 { "" } else { "s" }
    );
    assert_eq!(report[1 + core.len()], heading);
    for i in 0..n {
        assert!(
            report[2 + core.len() + i].starts_with("    client "),
            "{report:?}"
        );
    }
}
