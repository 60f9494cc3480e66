//! Sweeps as a fleet runs them: the summary at the end of `vopr --seeds`, the `liveness`
//! object of the JSON, and `vopr merge` of the shards' outputs.

use serde_json::Value;
use std::process::{Command, Output};

fn vopr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vopr"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("vopr runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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
