//! The vopr binary end to end: determinism, the JSON contract, exit codes, errors.

use std::io::{BufRead, Read};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{vopr, vopr_env};

/// vopr, killed (and the test failed) if it has not exited within `limit`.
fn vopr_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vopr"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vopr runs");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).ok();
            bytes
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!("{args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Asserts a usage error: exit 2 and one line on stderr, starting with "vopr: ".
fn assert_usage_error(args: &[&str], o: &Output) {
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("vopr: "), "{args:?}: {err}");
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SHORT: &[&str] = &["--ticks", "3000"];

#[test]
fn same_seed_same_trace_hash() {
    let args = [&["--seed", "7", "--json"], SHORT].concat();
    let (a, b) = (vopr(&args), vopr(&args));
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    let line = |o: &Output| {
        let v: serde_json::Value = serde_json::from_str(stdout(o).lines().last().unwrap()).unwrap();
        v["trace_hash"].as_str().unwrap().to_string()
    };
    assert_eq!(line(&a), line(&b));
    let other = vopr(&[&["--seed", "8", "--json"], SHORT].concat());
    assert_ne!(line(&a), line(&other), "different seeds, different runs");
}

#[test]
fn jobs_do_not_change_results() {
    let one = vopr(&[&["--seeds", "1..7", "--jobs", "1", "--json"], SHORT].concat());
    let two = vopr(&[&["--seeds", "1..7", "--jobs", "2", "--json"], SHORT].concat());
    let strip = |o: &Output| -> Vec<(u64, String, String)> {
        stdout(o)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["seed"].as_u64().unwrap(),
                    v["outcome"].as_str().unwrap().to_string(),
                    v["trace_hash"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (a, b) = (strip(&one), strip(&two));
    assert_eq!(a.len(), 6);
    assert_eq!(a, b);
    assert!(a.windows(2).all(|w| w[0].0 < w[1].0), "seed order");
}

#[test]
fn json_has_every_contract_field() {
    let o = vopr(&[&["--seed", "3", "--json"], SHORT].concat());
    let v: serde_json::Value = serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    for field in [
        "seed",
        "outcome",
        "ticks",
        "replicas",
        "clients",
        "requests_committed",
        "ops_committed",
        "view_max",
        "crashes",
        "restarts",
        "partitions",
        "packets_sent",
        "packets_dropped",
        "packets_duplicated",
        "storage_faults",
        "repairs",
        "checkpoints",
        "state_syncs",
        "violation",
        "trace_hash",
        "ticks_per_s",
        "version",
    ] {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    assert!(v["ops_committed"].as_u64().unwrap() > 0);
}

#[test]
fn a_small_ring_checkpoints_and_a_slow_faulty_disk_is_repaired() {
    let o = vopr(&[
        "--seed",
        "5",
        "--json",
        "--ticks",
        "20000",
        "--set",
        "journal_slot_count=32",
        "--set",
        "write_latency_max_ticks=8",
        "--set",
        "storage_fault_probability=0.002",
        "--set",
        "crash_probability=0.0002",
        "--set",
        "network.packet_loss_probability=0.01",
        "--set",
        "network.partition_probability=0",
        "--set",
        "request_probability=0.3",
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    assert_eq!(v["outcome"], "pass", "{v}");
    let ops = v["ops_committed"].as_u64().unwrap();
    assert!(ops > 64, "{v}");
    // Every replica checkpoints every 16 ops.
    assert!(v["checkpoints"].as_u64().unwrap() >= ops / 16, "{v}");
    assert!(v["storage_faults"].as_u64().unwrap() > 0, "{v}");
    assert!(v["repairs"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["options"]["journal_slot_count"], 32);
}

#[test]
fn first_line_names_seed_and_version() {
    let o = vopr(&[&["--seed", "5"], SHORT].concat());
    let first = stdout(&o).lines().next().unwrap().to_string();
    assert!(
        first.starts_with("vopr ") && first.ends_with("seed 5"),
        "{first}"
    );
    let random = vopr(SHORT);
    assert!(stdout(&random).lines().next().unwrap().contains(" seed "));
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    for args in [
        vec!["--bogus"],
        vec!["--seeds", "5..5"],
        vec!["--seeds", "x..y"],
        vec!["--seed", "abc"],
        vec!["--seeds", "1..3", "--shard", "3/3"],
        vec!["--seed", "1", "--set", "nope=1"],
        vec!["--seed", "1", "--set", "crash_probability=2"],
        vec!["--seed", "1", "--replicas", "9"],
        vec!["check-history", "/nonexistent/history.jsonl"],
        vec!["check-history", "x.jsonl", "--memory-mb", "0"],
        vec!["check-history", "x.jsonl", "--memory-mb", "lots"],
    ] {
        let o = vopr(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("vopr: "), "{err}");
    }
}

#[test]
fn overrides_reach_the_options() {
    let o = vopr(
        &[
            &[
                "--seed",
                "9",
                "--json",
                "--replicas",
                "3",
                "--set",
                "network.packet_loss_probability=0",
            ],
            SHORT,
        ]
        .concat(),
    );
    let v: serde_json::Value = serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    assert_eq!(v["replicas"], 3);
    assert_eq!(v["options"]["network"]["packet_loss_probability"], 0.0);
}

#[test]
fn check_history_jobs_give_the_same_report() {
    // Eight keys, two of them with a lie at the end that only a search refutes (two concurrent
    // puts read in both orders): the same verdict, failing key and report on threads as on
    // one. And a stale read on every key, which needs no search.
    let mut history = simulator::history::generate::linearizable(3_000, 8, 8, 5);
    let end = history.iter().filter_map(|op| op.ret).max().unwrap() + 10;
    for (key, client) in [("k5", 90), ("k2", 91)] {
        use simulator::history::{Op, Operation, Output};
        let op = |op: Op, output: Output, call: u64| Operation {
            client,
            key: key.to_string(),
            op,
            output,
            call,
            ret: Some(call + 1),
        };
        let value = |text: &str| text.to_string();
        // Two concurrent puts read in both orders.
        let put = |text: &str| Op::Put { value: value(text) };
        let read = |text: &str| Output::Value(Some(value(text)));
        history.push(Operation {
            ret: Some(end + 5),
            ..op(put("x"), Output::Empty, end)
        });
        history.push(Operation {
            ret: Some(end + 5),
            ..op(put("z"), Output::Empty, end)
        });
        history.push(op(Op::Get, read("x"), end + 6));
        history.push(op(Op::Get, read("z"), end + 8));
        history.push(op(Op::Get, read("x"), end + 10));
    }
    let stale = simulator::history::generate::with_stale_read(history.clone());
    let path = std::env::temp_dir().join(format!("vopr-jobs-{}.jsonl", std::process::id()));
    let stale_path = std::env::temp_dir().join(format!("vopr-stale-{}.jsonl", std::process::id()));
    let lines = |ops: &[simulator::history::Operation]| -> String {
        ops.iter()
            .map(|op| format!("{}\n", op.to_json_line()))
            .collect()
    };
    std::fs::write(&stale_path, lines(&stale)).unwrap();
    let stale_file = stale_path.to_str().unwrap();
    let stale_one = vopr(&["check-history", stale_file]);
    let stale_two = vopr(&["check-history", stale_file, "--jobs", "2"]);
    std::fs::remove_file(&stale_path).ok();
    assert_eq!(stale_one.status.code(), Some(1));
    assert_eq!(stdout(&stale_one), stdout(&stale_two));
    assert!(stdout(&stale_one).contains("no order of its operations can explain this"));
    let text = lines(&history);
    std::fs::write(&path, text).unwrap();
    let file = path.to_str().unwrap();
    let one = vopr(&["check-history", file]);
    let three = vopr(&["check-history", file, "--jobs", "3"]);
    let one_json = vopr(&["check-history", file, "--json", "--jobs", "1"]);
    let three_json = vopr(&["check-history", file, "--json", "--jobs", "3"]);
    std::fs::remove_file(&path).ok();
    assert_eq!(one.status.code(), Some(1), "{}", stdout(&one));
    assert_eq!(three.status.code(), Some(1));
    assert_eq!(stdout(&one), stdout(&three));
    let mut one_json: serde_json::Value = serde_json::from_str(stdout(&one_json).trim()).unwrap();
    let mut three_json: serde_json::Value =
        serde_json::from_str(stdout(&three_json).trim()).unwrap();
    // The one thing threads may change: the peak is the sum of the keys' own.
    one_json["memory_peak_bytes"].take();
    three_json["memory_peak_bytes"].take();
    assert_eq!(one_json, three_json);
    assert_eq!(one_json["verdict"], "not linearizable");
    assert_eq!(one_json["anomaly"], serde_json::Value::Null);
    assert!(one_json["steps"].as_u64().unwrap() > 3_000);
    let bad_jobs = vopr(&["check-history", file, "--jobs", "0"]);
    assert_eq!(bad_jobs.status.code(), Some(2));
}

#[test]
fn check_history_verdicts_and_exit_codes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/histories");
    let ok = vopr(&["check-history", &format!("{dir}/kv_c01-ok.jsonl")]);
    assert_eq!(ok.status.code(), Some(0));
    assert!(stdout(&ok).starts_with("linearizable"));
    let bad = vopr(&[
        "check-history",
        &format!("{dir}/kv_c01-bad.jsonl"),
        "--json",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(stdout(&bad).trim()).unwrap();
    assert_eq!(v["verdict"], "not linearizable");
    // A budget the search outgrows: unknown (exit 4), never a verdict nor an OOM kill. The
    // history (10,000 ops on one key, 16 clients) needs more than 1 MB to decide.
    let hard = std::env::temp_dir().join(format!("vopr-hard-{}.jsonl", std::process::id()));
    let text: String = simulator::history::generate::linearizable(10_000, 1, 16, 17_161_147)
        .iter()
        .map(|op| format!("{}\n", op.to_json_line()))
        .collect();
    std::fs::write(&hard, text).unwrap();
    let starved = vopr(&["check-history", hard.to_str().unwrap(), "--memory-mb", "1"]);
    std::fs::remove_file(&hard).ok();
    assert_eq!(starved.status.code(), Some(4), "{}", stdout(&starved));
    assert!(
        stdout(&starved).starts_with("unknown\n"),
        "{}",
        stdout(&starved)
    );
    assert!(stdout(&starved).contains("memory budget ran out"));
    let roomy = vopr(&[
        "check-history",
        &format!("{dir}/kv_c50-ok.jsonl"),
        "--memory-mb",
        "64",
    ]);
    assert_eq!(roomy.status.code(), Some(0), "{}", stdout(&roomy));
    let tmp = std::env::temp_dir().join(format!("vopr-malformed-{}.jsonl", std::process::id()));
    std::fs::write(&tmp, "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"output\":null,\"call\":1,\"return\":2}\n{\"client\":1}\n").unwrap();
    let malformed = vopr(&["check-history", tmp.to_str().unwrap()]);
    assert_eq!(malformed.status.code(), Some(2));
    assert!(stderr(&malformed).contains(":2:"), "{}", stderr(&malformed));
    std::fs::remove_file(tmp).ok();
}

#[test]
fn a_run_writes_its_history_and_the_checker_accepts_it() {
    let path = std::env::temp_dir().join(format!("vopr-history-{}.jsonl", std::process::id()));
    let o = vopr(&[&["--seed", "4", "--history", path.to_str().unwrap()], SHORT].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let check = vopr(&["check-history", path.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    assert!(std::fs::read_to_string(&path).unwrap().lines().count() > 10);
    std::fs::remove_file(path).ok();
}

#[test]
fn replay_runs_seed_files_and_reports_differences() {
    let dir = std::env::temp_dir().join(format!("vopr-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.seed"),
        "# found: nothing\nseed = 3\nset ticks_safety = 2000\nexpect = pass\n",
    )
    .unwrap();
    let pass = vopr(&["replay", dir.to_str().unwrap()]);
    assert_eq!(pass.status.code(), Some(0), "{}", stdout(&pass));
    std::fs::write(
        dir.join("b.seed"),
        "seed = 3\nset ticks_safety = 2000\nexpect = liveness\n",
    )
    .unwrap();
    let diff = vopr(&["replay", dir.to_str().unwrap()]);
    assert_eq!(diff.status.code(), Some(1));
    assert!(stdout(&diff).contains("DIFFERENT"));
    std::fs::write(dir.join("c.seed"), "seed = nope\n").unwrap();
    let bad = vopr(&["replay", dir.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn tick_options_have_upper_bounds() {
    // Each of these overflowed a tick sum: exit 101 with nothing on stderr.
    for key in [
        "request_timeout_ticks",
        "ticks_liveness_max",
        "restart_delay_mean_ticks",
        "crash_stability_ticks",
        "network.one_way_delay_min_ticks",
        "network.one_way_delay_mean_ticks",
        "network.path_clog_duration_mean_ticks",
        "network.partition_stability_ticks",
        "network.unpartition_stability_ticks",
    ] {
        let set = format!("{key}=18446744073709551615");
        let args = ["--seed", "1", "--ticks", "3000", "--set", &set];
        let o = vopr(&args);
        assert_usage_error(&args, &o);
        assert!(stderr(&o).contains(key), "{}", stderr(&o));
    }
    let args = ["--seed", "1", "--ticks", "18446744073709551615"];
    assert_usage_error(&args, &vopr(&args));
}

#[test]
fn a_harness_panic_is_printed_and_fails_only_its_seed() {
    let inject = [("VOPR_TEST_HARNESS_PANIC_SEED", "6")];
    let one = vopr_env(&[&["--seed", "6"], SHORT].concat(), &inject);
    assert_eq!(one.status.code(), Some(5), "{}", stderr(&one));
    let err = stderr(&one);
    assert!(err.starts_with("vopr: harness bug"), "{err}");
    assert!(err.contains("vopr.rs:"), "the location: {err}");
    assert!(
        err.contains("injected by VOPR_TEST_HARNESS_PANIC_SEED"),
        "{err}"
    );
    assert!(stdout(&one).contains("HARNESS BUG"), "{}", stdout(&one));

    let args = [&["--seeds", "5..8", "--jobs", "1", "--json"], SHORT].concat();
    let sweep = vopr_env(&args, &inject);
    assert_eq!(sweep.status.code(), Some(5), "{}", stderr(&sweep));
    assert!(stderr(&sweep).contains("harness bug"), "{}", stderr(&sweep));
    let outcomes: Vec<(u64, String)> = stdout(&sweep)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["seed"].as_u64().unwrap(), v["outcome"].to_string())
        })
        .collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert_eq!(outcomes[1], (6, "\"harness_bug\"".to_string()));
    assert!(outcomes[0].0 == 5 && outcomes[2].0 == 7, "{outcomes:?}");
    assert!(!outcomes[0].1.contains("harness") && !outcomes[2].1.contains("harness"));
}

#[test]
fn json_stdout_is_json_only() {
    let o = vopr(&[&["--seed", "42", "--json"], SHORT].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {}", stdout(&o)));
    assert_eq!(v["seed"], 42);
    assert!(stderr(&o).contains("seed 42"), "the header goes to stderr");
}

#[test]
fn jobs_are_capped_at_the_seeds_and_zero_is_refused() {
    // u64::MAX jobs tried to create that many threads.
    let args = [
        &["--seeds", "1..3", "--jobs", "18446744073709551615"],
        SHORT,
    ]
    .concat();
    let o = vopr_within(&args, Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 seeds: 2 pass"), "{}", stdout(&o));
    for args in [
        vec!["--seeds", "1..3", "--jobs", "0"],
        vec!["--jobs", "0", "replay", "seeds/"],
        vec!["--seeds", "1..3", "--jobs", "-1"],
    ] {
        assert_usage_error(&args, &vopr(&args));
    }
}

/// The first line vopr prints on stdout, or a failure if none comes within `limit`.
fn first_line_within(args: &[&str], limit: Duration) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vopr"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("vopr runs");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        std::io::BufReader::new(out).read_line(&mut line).ok();
        tx.send(line).ok();
    });
    let line = rx.recv_timeout(limit);
    child.kill().ok();
    child.wait().ok();
    line.unwrap_or_else(|_| panic!("{args:?}: no line within {limit:?}"))
}

#[test]
fn huge_ranges_start_at_once() {
    // Both built every seed's options (or walked every position) before running the first.
    for (range, shard, first) in [
        ("0..1000000000", "3/64", 3),
        ("0..18446744073709551615", "3/64", 3),
        ("0..=18446744073709551614", "63/64", 63),
    ] {
        let args = [
            "--seeds", range, "--shard", shard, "--json", "--ticks", "1000",
        ];
        let line = first_line_within(&args, Duration::from_secs(30));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["seed"], first, "{line}");
    }
}

#[test]
fn one_seed_flags_are_refused_where_they_would_be_ignored() {
    let file = std::env::temp_dir().join(format!("vopr-ignored-{}.jsonl", std::process::id()));
    let file = file.to_str().unwrap();
    for args in [
        vec!["--seeds", "1..3", "--trace", file],
        vec!["--seeds", "1..3", "--history", file],
        vec!["--seed", "1", "--shard", "1/2"],
        vec!["--shard", "1/2", "--ticks", "3000"],
        vec!["--trace", file, "replay", "seeds/"],
        vec!["--no-linearizability", "replay", "seeds/"],
        vec!["--seed", "1", "check-history", file],
    ] {
        assert_usage_error(&args, &vopr(&args));
    }
    assert!(!std::path::Path::new(file).exists(), "nothing was written");
    // --no-linearizability holds for every seed of a sweep.
    let args = [
        &["--seeds", "1..3", "--json", "--no-linearizability"],
        SHORT,
    ]
    .concat();
    let o = vopr(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for line in stdout(&o).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["linearizability"], "skipped", "{line}");
    }
}

#[test]
fn an_unwritable_history_fails_before_the_run() {
    let args = [
        "--seed",
        "1",
        "--history",
        "/nonexistent/folder/h.jsonl",
        "--ticks",
        "3000",
    ];
    let o = vopr(&args);
    assert_usage_error(&args, &o);
    assert!(
        stderr(&o).contains("/nonexistent/folder/h.jsonl"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty(), "nothing ran: {}", stdout(&o));
}

#[test]
fn replay_of_no_seed_files_fails_and_folders_are_searched_recursively() {
    let dir = std::env::temp_dir().join(format!("vopr-replay-tree-{}", std::process::id()));
    let nested = dir.join("a").join("b");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a seed").unwrap();
    let args = ["replay", dir.to_str().unwrap()];
    let empty = vopr(&args);
    assert_usage_error(&args, &empty);
    assert!(
        stderr(&empty).contains("no seed files"),
        "{}",
        stderr(&empty)
    );
    std::fs::write(
        nested.join("deep.seed"),
        "seed = 3\nset ticks_safety = 2000\nexpect = pass\n",
    )
    .unwrap();
    let found = vopr(&args);
    assert_eq!(found.status.code(), Some(0), "{}", stderr(&found));
    assert!(stdout(&found).contains("deep.seed"), "{}", stdout(&found));
    assert!(
        stdout(&found).contains("replayed 1 seed files"),
        "{}",
        stdout(&found)
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn nothing_to_check_and_bogus_log_levels_are_refused() {
    for args in [
        vec!["--seed", "1", "--ticks", "0"],
        vec!["--seed", "1", "--set", "ticks_safety=0"],
        vec!["--seed", "1", "--log", "bogus"],
        vec!["--seeds", "1..3", "--ticks", "0"],
    ] {
        assert_usage_error(&args, &vopr(&args));
    }
    let o = vopr(&[&["--seed", "1", "--log", "warn"], SHORT].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn lite_runs_count_no_crashes() {
    // Seed 1 draws 6 replicas: the liveness phase stops the 2 outside its core of 4, which
    // were counted as crashes.
    let o = vopr(&[&["--seed", "1", "--lite", "--json"], SHORT].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["replicas"], 6, "{v}");
    assert_eq!(v["crashes"], 0, "{v}");
    assert_eq!(v["stopped_outside_core"], 2, "{v}");
}

#[test]
fn a_closed_stdout_pipe_ends_vopr_quietly() {
    // As in 'vopr --seeds 1..50 | head -1': the reader goes after the first line.
    for extra in [&[][..], &["--json"][..]] {
        // More output than a pipe holds, so vopr is still writing when the reader goes.
        let args = [&["--seeds", "1..5000"], SHORT, extra].concat();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vopr"))
            .args(&args)
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vopr runs");
        let mut first = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut first).unwrap();
        assert!(
            first.starts_with("seed 1 ") || first.starts_with("{"),
            "{first}"
        );
        drop(out);
        let o = child.wait_with_output().unwrap();
        let code = o.status.code();
        assert!(matches!(code, Some(0) | Some(141)), "{args:?}: {code:?}");
        assert!(o.stderr.is_empty(), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn version_carries_the_git_commit() {
    let o = vopr(&[&["--seed", "3", "--json"], SHORT].concat());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let version = v["version"].as_str().unwrap();
    // As build.rs decides: the short HEAD of this repository's own checkout, else "unknown".
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let ours = git(&["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        std::fs::canonicalize(top).ok() == std::fs::canonicalize(manifest.parent().unwrap()).ok()
    });
    let commit = match ours {
        true => git(&["rev-parse", "--short", "HEAD"]).unwrap(),
        false => "unknown".to_string(),
    };
    assert_eq!(version, format!("{}+{commit}", env!("CARGO_PKG_VERSION")));
    let flag = vopr(&["--version"]);
    assert!(stdout(&flag).contains(version), "{}", stdout(&flag));
}

#[test]
fn an_empty_history_is_refused_not_called_linearizable() {
    let dir = std::env::temp_dir().join(format!("vopr-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("empty.jsonl");
    std::fs::write(&path, "\n\n").unwrap();
    let out = vopr(&["check-history", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("no operation"), "{err}");
}

#[test]
fn a_trace_that_cannot_be_written_fails_the_run() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let out = vopr(&["--seed", "1", "--lite", "--trace", "/dev/full"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot write the trace"), "{err}");
}

#[test]
fn log_lines_name_their_seed_and_carry_no_colour_off_a_terminal() {
    let out = vopr(&["--seeds", "1..3", "--jobs", "2", "--log", "info"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("status")).collect();
    assert!(!lines.is_empty(), "{err}");
    assert!(lines.iter().all(|l| l.contains("seed=")), "{lines:?}");
    assert!(
        !err.contains('\u{1b}'),
        "colour codes in a log that is not a terminal"
    );
}

#[test]
fn clap_tips_survive_and_jobs_goes_after_a_subcommand() {
    let out = vopr(&["--sed", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--seed"), "the tip is lost: {err}");
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../seeds/0002-inherited-pipeline-never-reacked.seed"
    );
    let out = vopr(&["replay", dir, "--jobs", "2"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
