//! `vopr shrink` on a real failure: the solo replica of seed 39 on a disk that does not persist
//! in submission order (`seeds/known/`): a crash loses its prepare write while the header
//! write after it lands, and it refuses to open. By hand, the failure needs one of the
//! schedule's 140 events: that crash.

mod common;

#[test]
fn a_real_failure_shrinks_to_no_more_than_twice_the_hand_minimised_schedule() {
    let dir = std::env::temp_dir().join(format!("vopr-shrink-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("min.schedule.jsonl");
    let input = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../seeds/known/0039-unordered-crash-loss-solo-refuses.schedule.jsonl"
    );
    let o = common::vopr(&["shrink", input, "--out", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("shrunk in"), "{stdout}");
    let text = std::fs::read_to_string(&out).unwrap();
    let events = text.lines().count() - 1;
    assert!(events <= 2, "{events} events:\n{text}");
    assert!(text.contains("\"kind\":\"crash\""), "{text}");
    // The minimal schedule fails as the original did.
    let o = common::vopr(&["replay", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("seed 39: liveness"), "{stdout}");
    // A passing input is refused with one line and exit 2.
    let o = common::vopr(&[
        "shrink",
        "--budget-runs",
        "5",
        "--out",
        out.to_str().unwrap(),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../seeds/schedules/0111-stale-eviction-liveness.schedule.jsonl"
        ),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("passes"));
    std::fs::remove_dir_all(&dir).ok();
}
