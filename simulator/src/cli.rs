//! Parsing of the command line's values (seed ranges, shards, overrides) and the report a
//! person reads. Kept in the library so tests can reach it.

use crate::run::{LivenessState, Outcome, Summary};
use std::fmt::Write;

/// `A..B` (B excluded) or `A..=B` (B included), as in Rust. An empty range is an error.
pub fn parse_seed_range(text: &str) -> Result<std::ops::Range<u64>, String> {
    let bad =
        || format!("bad seed range '{text}': expected A..B or A..=B with A < B (e.g. 1..200)");
    let (a, b, inclusive) = if let Some((a, b)) = text.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = text.split_once("..") {
        (a, b, false)
    } else {
        return Err(bad());
    };
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    let end = if inclusive {
        b.checked_add(1).ok_or_else(bad)?
    } else {
        b
    };
    if a >= end {
        return Err(format!(
            "seed range '{text}' is empty: the start must be below the end"
        ));
    }
    Ok(a..end)
}

/// `I/N`: this machine runs the seeds whose position in the range is I modulo N.
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("bad shard '{text}': expected I/N with 0 <= I < N (e.g. 3/64)");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let i: u64 = i.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// The seeds of `range` that shard `(i, n)` runs (those at positions i, i + n, i + 2n, ...),
/// lazily: a range of 2^64 seeds costs nothing until its seeds run.
pub fn shard_seeds(
    range: std::ops::Range<u64>,
    shard: (u64, u64),
) -> impl Iterator<Item = u64> + Send {
    let end = range.end;
    let first = range.start.checked_add(shard.0).filter(|&s| s < end);
    std::iter::successors(first, move |&s| s.checked_add(shard.1).filter(|&s| s < end))
}

/// How many seeds `shard_seeds(range, shard)` yields.
pub fn shard_len(range: std::ops::Range<u64>, shard: (u64, u64)) -> u64 {
    let len = range.end.saturating_sub(range.start);
    if len <= shard.0 {
        0
    } else {
        (len - shard.0 - 1) / shard.1 + 1
    }
}

/// `KEY=VALUE` of `--set`.
pub fn parse_override(text: &str) -> Result<(String, String), String> {
    let (k, v) = text.split_once('=').ok_or_else(|| {
        format!("bad --set '{text}': expected KEY=VALUE (e.g. crash_probability=0.001)")
    })?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// The one-screen report of a run.
pub fn report(summary: &Summary, replay: &str) -> String {
    let mut out = String::new();
    let s = summary;
    let _ = writeln!(
        out,
        "seed {}: {}  ticks={} replicas={} clients={} ops_committed={} requests_committed={} view_max={} crashes={} stopped_outside_core={} restarts={} partitions={}",
        s.seed,
        s.outcome.name(),
        s.ticks,
        s.replicas,
        s.clients,
        s.ops_committed,
        s.requests_committed,
        s.view_max,
        s.crashes,
        s.stopped_outside_core,
        s.restarts,
        s.partitions
    );
    let _ = writeln!(
        out,
        "  packets sent={} dropped={} duplicated={} repairs={} checkpoints={} state_syncs={} \
         evictions={} history={} ops ({})",
        s.packets_sent,
        s.packets_dropped,
        s.packets_duplicated,
        s.repairs,
        s.checkpoints,
        s.state_syncs,
        s.evictions,
        s.history_ops,
        s.linearizability
    );
    let aimed: Vec<String> = s
        .aimed_faults
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(kind, n)| format!("{kind}={n}"))
        .collect();
    if !aimed.is_empty() {
        let _ = writeln!(out, "  aimed faults: {}", aimed.join(" "));
    }
    for g in &s.per_group {
        let _ = writeln!(
            out,
            "  group {} (namespace {}): ops_committed={} requests_committed={} view_max={} view_changes={} repairs={} state_syncs={}",
            g.group, g.namespace, g.ops_committed, g.requests_committed, g.view_max, g.view_changes, g.repairs, g.state_syncs
        );
    }
    if s.messages_dropped_namespace > 0 {
        let _ = writeln!(
            out,
            "  messages dropped for another group: {}",
            s.messages_dropped_namespace
        );
    }
    let _ = writeln!(
        out,
        "  trace_hash={} ticks/s={:.0} requests/s={:.0}",
        s.trace_hash, s.ticks_per_s, s.requests_per_s
    );
    if s.outcome == Outcome::Pass {
        return out;
    }
    if let (Outcome::HarnessBug, Some(v)) = (s.outcome, &s.violation) {
        let _ = writeln!(
            out,
            "\nHARNESS BUG (a panic in the simulator itself, not a replica failure):\n  {}",
            v.message
        );
        let _ = writeln!(out, "\nreplay: {replay}");
        return out;
    }
    if let Some(v) = &s.violation {
        let replica = v.replica.map_or("-".to_string(), |r| r.to_string());
        let _ = writeln!(
            out,
            "\nVIOLATION {} at tick {} (replica {}):\n  {}",
            v.invariant, v.tick, replica, v.message
        );
    }
    if let Some(liveness) = &s.liveness {
        out.push_str(&liveness_report(liveness));
    }
    if s.outcome == Outcome::Undecided {
        // Nothing failed: the last events say nothing about why the history is hard.
        let _ = writeln!(
            out,
            "\nUNDECIDED: the end-of-run linearizability check ran out of budget; check the \
             history with a larger one: --history FILE, then 'vopr check-history FILE'"
        );
        let _ = writeln!(out, "\nreplay: {replay}");
        return out;
    }
    if !s.replicas_at_violation.is_empty() {
        let _ = writeln!(out, "\nreplicas at the violation:");
        for state in &s.replicas_at_violation {
            let _ = writeln!(out, "  {state}");
        }
    }
    if !s.violation_events.is_empty() {
        let r = s.violation.as_ref().and_then(|v| v.replica).unwrap_or(0);
        let _ = writeln!(
            out,
            "\nlast {} events involving replica {r}:",
            s.violation_events.len()
        );
        for event in &s.violation_events {
            let _ = writeln!(
                out,
                "  {}",
                serde_json::to_string(event).expect("serialize")
            );
        }
    }
    let _ = writeln!(out, "\nlast {} events:", s.recent_events.len());
    for event in &s.recent_events {
        let _ = writeln!(
            out,
            "  {}",
            serde_json::to_string(event).expect("serialize")
        );
    }
    let _ = writeln!(out, "\nreplay: {replay}");
    out
}

/// The liveness part of a failure report: the headline, then one line per core replica and
/// one per waiting request.
pub fn liveness_report(liveness: &LivenessState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nLIVENESS: {}", liveness.headline());
    for r in &liveness.replicas {
        let detail = r.detail.as_deref().unwrap_or(&r.status);
        match r.group {
            0 => writeln!(out, "  r{}: {detail}", r.replica),
            g => writeln!(out, "  r{} group {g}: {detail}", r.replica),
        }
        .expect("a String takes writes");
    }
    let _ = writeln!(
        out,
        "  waiting: {} client request{}",
        liveness.waiting.len(),
        if liveness.waiting.len() == 1 { "" } else { "s" }
    );
    for w in &liveness.waiting {
        let _ = writeln!(
            out,
            "    client {} session {} request {} since tick {} (attempts {}, target r{})",
            w.client, w.session, w.request, w.since_tick, w.attempts, w.target
        );
    }
    out
}

/// What a failure found, in one line (the `# found:` line of its seed file).
pub fn found(summary: &Summary) -> String {
    if let Some(v) = &summary.violation {
        return format!(
            "{}: {}",
            v.invariant,
            v.message.lines().next().unwrap_or("")
        );
    }
    match &summary.liveness {
        Some(l) => format!("liveness: {}", l.headline()),
        None => summary.outcome.name().to_string(),
    }
}

/// The seed file to add to seeds/ for a failure (see seeds/README.md).
pub fn seed_file(summary: &Summary, overrides: &[(String, String)]) -> String {
    seed_file_text(&found(summary), summary.seed, overrides)
}

/// A seed file: what it found (one comment line), the seed, its overrides, `expect = pass`.
pub fn seed_file_text(found: &str, seed: u64, overrides: &[(String, String)]) -> String {
    let mut out = String::new();
    let found = found.replace(['\n', '\r'], " ");
    let _ = writeln!(out, "# found: {found}");
    let _ = writeln!(out, "seed = {seed}");
    for (k, v) in overrides {
        let _ = writeln!(out, "set {k} = {v}");
    }
    let _ = writeln!(out, "expect = pass");
    out
}

/// Writes to stdout. When its reader has gone (a closed pipe, as in `vopr ... | head -1`),
/// vopr exits at once and quietly with 141, as a process killed by SIGPIPE does: the rest of
/// the run was not seen by anyone, so it does not claim a pass.
pub fn write_stdout(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("vopr: cannot write to stdout: {e}");
        std::process::exit(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undecided_run_says_how_to_decide_it() {
        let options = crate::options::Options::from_seed(7);
        let mut summary = Summary::harness_bug(7, options, String::new());
        summary.outcome = Outcome::Undecided;
        summary.violation = None;
        summary.linearizability = crate::end_of_run::UNDECIDED;
        let text = report(&summary, "vopr --seed 7");
        assert!(text.starts_with("seed 7: undecided "), "{text}");
        assert!(text.contains("(unknown)"), "{text}");
        assert!(text.contains("\nUNDECIDED: "), "{text}");
        assert!(text.ends_with("\nreplay: vopr --seed 7\n"), "{text}");
        assert_eq!(Outcome::from_name("undecided"), Some(Outcome::Undecided));
        assert_eq!(Outcome::Undecided.exit_code(), 4);
    }

    #[test]
    fn ranges_read_as_in_rust() {
        assert_eq!(parse_seed_range("1..4"), Ok(1..4));
        assert_eq!(parse_seed_range("1..=4"), Ok(1..5));
        assert!(parse_seed_range("4..4").is_err());
        assert!(parse_seed_range("5..1").is_err());
        assert!(parse_seed_range("x..2").is_err());
        assert!(parse_seed_range("12").is_err());
    }

    #[test]
    fn shards_partition_the_range() {
        assert_eq!(parse_shard("3/64"), Ok((3, 64)));
        assert!(parse_shard("64/64").is_err());
        assert!(parse_shard("1/0").is_err());
        let all: Vec<u64> = (0..3).flat_map(|i| shard_seeds(10..20, (i, 3))).collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (10..20).collect::<Vec<_>>());
        for (range, n) in [(10..20, 3), (0..5, 7), (3..4, 1), (0..64, 64), (5..70, 8)] {
            for i in 0..n {
                let seeds: Vec<u64> = shard_seeds(range.clone(), (i, n)).collect();
                let expected: Vec<u64> = range
                    .clone()
                    .enumerate()
                    .filter(|(pos, _)| *pos as u64 % n == i)
                    .map(|(_, seed)| seed)
                    .collect();
                assert_eq!(seeds, expected, "{range:?} {i}/{n}");
                assert_eq!(shard_len(range.clone(), (i, n)), seeds.len() as u64);
            }
        }
        // The widest range: lazy at both ends, no overflow past u64::MAX.
        let wide = 0..u64::MAX;
        assert_eq!(shard_len(wide.clone(), (3, 64)), (u64::MAX - 4) / 64 + 1);
        let first: Vec<u64> = shard_seeds(wide.clone(), (3, 64)).take(2).collect();
        assert_eq!(first, [3, 67]);
        let top = u64::MAX - 2..u64::MAX;
        assert_eq!(shard_seeds(top, (1, 2)).collect::<Vec<_>>(), [u64::MAX - 1]);
    }
}
