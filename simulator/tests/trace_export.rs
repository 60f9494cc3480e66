//! The exported trace is complete and self-describing (issue 13 §1): a header line naming
//! what it is of, every fault and every dropped packet with its reason, 64-bit values as
//! strings, and `--trace-filter` keeping only what was asked (the hash covers everything).

mod common;

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_trace_names_its_run_and_holds_every_fault_and_drop() {
    let dir = std::env::temp_dir().join(format!("vopr-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let all = dir.join("all.jsonl");
    let args = [
        "--seed",
        "7",
        "--ticks",
        "3000",
        "--set",
        "network.packet_loss_probability=0.1",
        "--set",
        "crash_probability=0.001",
        "--json",
    ];
    let o = common::vopr(&[&args[..], &["--trace", all.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let events = lines(&all);
    assert_eq!(events[0]["seed"], 7, "the header names the seed");
    assert!(events[0]["options"]["network"].is_object());
    assert!(events[0]["version"].is_string());
    let kind = |e: &serde_json::Value| e["event"].as_str().unwrap_or("").to_string();
    let drops = events.iter().filter(|e| kind(e) == "drop").count() as u64;
    assert_eq!(drops, summary["packets_dropped"].as_u64().unwrap());
    assert!(events
        .iter()
        .any(|e| kind(e) == "drop" && e["reason"] == "loss"));
    let crashes = events
        .iter()
        .filter(|e| kind(e) == "fault" && e["kind"] == "crash")
        .count() as u64;
    assert_eq!(crashes, summary["crashes"].as_u64().unwrap());
    assert!(events
        .iter()
        .filter(|e| kind(e) == "deliver")
        .all(|e| e["checksum"].is_string()));

    // Filtered: the same run (same hash), fewer lines, only what was asked.
    let some = dir.join("some.jsonl");
    let o = common::vopr(
        &[
            &args[..],
            &[
                "--trace",
                some.to_str().unwrap(),
                "--trace-filter",
                "replica=1,kind=deliver,command=prepare,ticks=100..2000",
            ],
        ]
        .concat(),
    );
    let filtered: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(filtered["trace_hash"], summary["trace_hash"]);
    let kept = lines(&some);
    assert!(kept.len() > 1 && kept.len() < events.len());
    for e in &kept[1..] {
        assert_eq!(e["event"], "deliver");
        assert_eq!(e["command"], "prepare");
        assert!(e["from"] == 1 || e["to"] == 1, "{e}");
        let tick = e["tick"].as_u64().unwrap();
        assert!((100..2000).contains(&tick));
    }
    let o = common::vopr(&[&args[..], &["--trace", "x", "--trace-filter", "bogus=1"]].concat());
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}
