//! Sweeps as a fleet runs them: the summary at the end of `vopr --seeds`, the `liveness`
//! object of the JSON, and `vopr merge` of the shards' outputs.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{vopr, vopr_env};

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
    // Every group's core replicas, group by group.
    let groups = v["groups"].as_u64().unwrap() as usize;
    assert_eq!(replicas.len(), core.len() * groups);
    for (i, (r, &index)) in replicas.iter().zip(core.iter().cycle()).enumerate() {
        assert_eq!(r["replica"], index);
        assert_eq!(
            r["group"].as_u64().unwrap_or(0),
            (i / core.len()) as u64,
            "{r}"
        );
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
    let headline = format!("did not converge (cluster commit {})", l["cluster_commit"]);
    assert!(report[0].ends_with(&headline), "{}", report[0]);
    assert!(!report[0].contains("r0:"), "{}", report[0]);
    let groups = v["groups"].as_u64().unwrap() as usize;
    for (i, &index) in core.iter().cycle().take(core.len() * groups).enumerate() {
        let name = match i / core.len() {
            0 => format!("  r{index}: "),
            g => format!("  r{index} group {g}: "),
        };
        assert!(report[1 + i].starts_with(&name), "{}", report[1 + i]);
    }
    let lines = core.len() * groups;
    let n = waiting.len();
    let heading = format!(
        "  waiting: {n} client request{}",
        if n == 1 { "" } else { "s" }
    );
    assert_eq!(report[1 + lines], heading);
    for i in 0..n {
        assert!(
            report[2 + lines + i].starts_with("    client "),
            "{report:?}"
        );
    }
}

/// Runs `args` as `n` shard processes, each writing its JSON lines to dir/shard-I.jsonl.
fn run_shards(dir: &Path, args: &[&str], n: u64, env: &[(&str, &str)]) -> Vec<PathBuf> {
    let children: Vec<_> = (0..n)
        .map(|i| {
            let path = dir.join(format!("shard-{i}.jsonl"));
            let shard = format!("{i}/{n}");
            let child = Command::new(env!("CARGO_BIN_EXE_vopr"))
                .args(args)
                .args(["--shard", &shard, "--json"])
                .envs(env.iter().copied())
                .stdout(std::fs::File::create(&path).unwrap())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("vopr runs");
            (path, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(path, mut child)| {
            let status = child.wait().unwrap();
            assert!(
                matches!(status.code(), Some(0 | 1 | 3 | 5)),
                "{path:?}: {status}"
            );
            path
        })
        .collect()
}

#[test]
fn merged_shards_match_a_single_run_of_the_range() {
    let dir = temp_dir("merge");
    let args = [&["--seeds", "1..25"], MIXED].concat();
    let single = vopr_env(&[&args[..], &["--json"]].concat(), &[PANIC_4]);
    assert_eq!(single.status.code(), Some(5), "{}", stderr(&single));
    let single_seeds = lines(&stdout(&single));
    let single_summary: Value =
        serde_json::from_str(stderr(&single).lines().last().unwrap()).unwrap();

    let shards = run_shards(&dir, &args, 3, &[PANIC_4]);
    let failures = dir.join("failures");
    let summary_file = dir.join("summary.json");
    let mut merge_args = vec!["merge", "--json", "--summary", s(&summary_file)];
    merge_args.extend(["--failures", s(&failures)]);
    merge_args.extend(shards.iter().map(|p| s(p)));
    let merged = vopr(&merge_args);
    assert_eq!(
        merged.status.code(),
        Some(1),
        "any failing seed: {}",
        stderr(&merged)
    );
    let summary: Value = serde_json::from_str(&stdout(&merged)).unwrap();
    let from_file: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_file).unwrap()).unwrap();
    assert_eq!(summary, from_file);
    for field in [
        "seeds_run",
        "passed",
        "failed",
        "correctness",
        "liveness",
        "harness_bug",
        "failed_by_invariant",
        "linearizability",
        "linearizability_unknown",
        "faults",
        "failures_listed",
        "failures_not_listed",
        "seeds",
        "version",
    ] {
        assert_eq!(summary[field], single_summary[field], "{field}");
    }
    assert_eq!(summary["files"], 3);
    assert_eq!(summary["seeds_run"], 24);
    assert!(summary["liveness"].as_u64().unwrap() > 0);
    // Per seed: the shards ran exactly the single run's seeds, with its outcomes and traces.
    let key = |v: &Value| {
        (
            v["seed"].as_u64().unwrap(),
            v["outcome"].to_string(),
            v["trace_hash"].to_string(),
        )
    };
    let mut sharded: Vec<_> = shards
        .iter()
        .flat_map(|p| lines(&std::fs::read_to_string(p).unwrap()))
        .map(|v| key(&v))
        .collect();
    sharded.sort();
    let expected: Vec<_> = single_seeds.iter().map(key).collect();
    assert_eq!(sharded, expected);
    // The failing seeds' lines, in seed order, and a seed file for each that replays its failure.
    let failing: Vec<_> = single_seeds
        .iter()
        .filter(|v| v["outcome"] != "pass")
        .map(key)
        .collect();
    let written = lines(&std::fs::read_to_string(failures.join("failures.jsonl")).unwrap());
    assert_eq!(written.iter().map(key).collect::<Vec<_>>(), failing);
    let liveness_seed =
        written.iter().find(|v| v["outcome"] == "liveness").unwrap()["seed"].clone();
    let seed_file = failures.join(format!("seed-{liveness_seed}.seed"));
    let text = std::fs::read_to_string(&seed_file).unwrap();
    assert!(text.starts_with("# found: liveness: core ["), "{text}");
    assert!(text.contains("\nset ticks_liveness_max = 400\n"), "{text}");
    let replay = vopr(&["replay", s(&seed_file)]);
    assert!(
        stdout(&replay).contains(": liveness (expected pass)"),
        "{}",
        stdout(&replay)
    );
    assert!(failures.join("seed-4.seed").exists());

    // The text summary of the merge is the single run's, but for the speed line.
    let text = vopr(
        &[
            &["merge"][..],
            &shards.iter().map(|p| s(p)).collect::<Vec<_>>(),
        ]
        .concat(),
    );
    assert_eq!(text.status.code(), Some(1));
    let human = vopr_env(&args, &[PANIC_4]);
    let single_text = stdout(&human);
    let single_tail = &single_text[single_text.rfind("\n24 seeds: ").unwrap() + 1..];
    let strip_speed = |t: &str| -> Vec<String> {
        t.lines()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, l)| l.to_string())
            .collect()
    };
    assert_eq!(strip_speed(&stdout(&text)), strip_speed(single_tail));
    assert!(stdout(&text)
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("  merged 3 files of seeds 1..25: "));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn merge_lists_correctness_failures_by_invariant_and_passes_a_clean_sweep() {
    let dir = temp_dir("merge-invariants");
    let shards = run_shards(
        &dir,
        &["--seeds", "1..9", "--ticks", "1000", "--lite"],
        2,
        &[],
    );
    let names: Vec<&str> = shards.iter().map(|p| s(p)).collect();
    let clean = vopr(&[&["merge"][..], &names].concat());
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    assert!(stdout(&clean).starts_with("8 seeds: 8 pass, 0 correctness, 0 liveness\n"));
    // Two seeds rewritten as correctness failures (a merge trusts its lines).
    let text = std::fs::read_to_string(&shards[1]).unwrap();
    let mut rewritten = Vec::new();
    for mut v in lines(&text) {
        if v["seed"] == 2 || v["seed"] == 6 {
            v["outcome"] = "correctness".into();
            v["violation"] = serde_json::json!({
                "invariant": "agreement", "tick": 5, "replica": 1, "message": "op 3 differs\nmore"
            });
        }
        rewritten.push(v.to_string());
    }
    std::fs::write(&shards[1], rewritten.join("\n") + "\n").unwrap();
    let failures = dir.join("failures");
    let o = vopr(&[&["merge", "--failures", s(&failures)][..], &names].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("8 seeds: 6 pass, 2 correctness, 0 liveness\n"),
        "{out}"
    );
    let group =
        "  failed by invariant:\n    agreement: 2 seeds\n      seed 2: cargo run --release \
                 --bin vopr -- --seed 2 --lite --set ticks_safety=1000\n      seed 6: ";
    assert!(out.contains(group), "{out}");
    let seed_file = std::fs::read_to_string(failures.join("seed-2.seed")).unwrap();
    assert!(
        seed_file.starts_with("# found: agreement: op 3 differs\nseed = 2\n"),
        "{seed_file}"
    );
    assert!(
        seed_file.contains("\nset crash_probability = 0.0\n"),
        "--lite kept: {seed_file}"
    );
    assert!(
        seed_file.contains("\nset ticks_safety = 1000\n"),
        "{seed_file}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn merge_refuses_missing_duplicated_mixed_and_unreadable_input() {
    let dir = temp_dir("merge-errors");
    let sweep = ["--seeds", "1..9", "--ticks", "1000", "--lite"];
    let shards = run_shards(&dir, &sweep, 3, &[]);
    let [a, b, c] = [s(&shards[0]), s(&shards[1]), s(&shards[2])];
    let copy = dir.join("copy-of-1.jsonl");
    std::fs::copy(b, &copy).unwrap();
    let garbage = dir.join("garbage.jsonl");
    std::fs::write(&garbage, "seed 1 pass ticks=1000\n").unwrap();
    let truncated = dir.join("truncated.jsonl");
    let whole = std::fs::read_to_string(a).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() - 40]).unwrap();
    let other = dir.join("other-sweep.jsonl");
    let o = vopr(&["--seeds", "3..5", "--ticks", "1000", "--lite", "--json"]);
    std::fs::write(&other, o.stdout).unwrap();
    let older = dir.join("older.jsonl");
    std::fs::write(
        &older,
        std::fs::read_to_string(c)
            .unwrap()
            .replace("\"version\":\"", "\"version\":\"0.0.0-"),
    )
    .unwrap();
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let missing = dir.join("nonexistent.jsonl");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["merge", a, b], "no output at all from shard 2/3"),
        (
            vec!["merge", "--seeds", "1..12", a, b, c],
            "3 of the 11 seeds of 1..12 are missing (first: 9, 10, 11)",
        ),
        (
            vec!["merge", "--seeds", "1..5", a, b, c],
            "is outside the seeds 1..5",
        ),
        (vec!["merge", a, b, c, s(&copy)], "seed 2 is in both"),
        (vec!["merge", a, b, c, b], "is given twice"),
        (
            vec!["merge", a, s(&garbage)],
            "garbage.jsonl:1: not a seed line of 'vopr --json'",
        ),
        (
            vec!["merge", s(&truncated), b, c],
            "truncated.jsonl:3: not a seed line",
        ),
        (
            vec!["merge", a, b, c, s(&other)],
            "of the sweep '--seeds 3..5 --shard I/1",
        ),
        (
            vec!["merge", a, b, s(&older)],
            "merge the outputs of one build",
        ),
        (vec!["merge", s(&empty)], "no seed lines in"),
        (vec!["merge", a, s(&missing)], "cannot read"),
        (vec!["merge", s(&dir)], "is a folder"),
        (vec!["merge"], "merge needs the JSON-lines files"),
        (
            vec!["merge", "--seeds", "5..1", a],
            "seed range '5..1' is empty",
        ),
        (
            vec!["--seeds", "1..9", "merge", a, b, c],
            "put it after: 'vopr merge --seeds",
        ),
        (vec!["--json", "merge", a, b, c], "put it after"),
    ];
    for (args, expected) in cases {
        let o = vopr(&args);
        let err = usage_error(&args, &o);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
    }
    // A merge that fails leaves no summary file behind.
    let summary = dir.join("summary.json");
    let args = ["merge", "--summary", s(&summary), a, b];
    usage_error(&args, &vopr(&args));
    assert!(!summary.exists());
    // Complete: exit 0, whichever order the files come in, --seeds given or inferred.
    for args in [
        vec!["merge", c, a, b],
        vec!["merge", "--seeds", "1..=8", b, c, a],
    ] {
        let o = vopr(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).starts_with("8 seeds: 8 pass"), "{}", stdout(&o));
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_ci_fleet_definitions_shard_and_merge_as_a_single_run() {
    // ci/fleet/check.py parses the Kubernetes and GitHub Actions definitions, checks that their
    // shard counts, ranges and names agree, runs their shard and merge steps here, and compares
    // the merged summaries with a single run.
    let python = Command::new("python3").args(["-c", "import yaml"]).output();
    if !python.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: ci/fleet/check.py needs python3 with PyYAML");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let o = Command::new("python3")
        .arg(root.join("ci/fleet/check.py"))
        .arg(env!("CARGO_BIN_EXE_vopr"))
        .env_remove("VOPR_TEST_HARNESS_PANIC_SEED")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}
