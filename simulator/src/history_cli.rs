//! `vopr check-history FILE [--json]`: linearizability of a recorded history (format in
//! `history.rs`).
//! Exit 0 linearizable, 1 not linearizable, 4 unknown, 2 unreadable or malformed input.

use crate::checker::linearizability::{check_kv, Budget, Verdict};
use crate::history::parse_history;
use std::path::Path;
use std::time::{Duration, Instant};

/// Search steps and wall-clock limit of a check from the command line.
const STEPS_MAX: u64 = 200_000_000;
const TIME_MAX: Duration = Duration::from_secs(60);

pub fn check_history_file(path: &Path, json: bool) -> i32 {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("vopr: cannot read history {}: {e}", path.display());
            return 2;
        }
    };
    let ops = match parse_history(&text) {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!(
                "vopr: {}:{}: {} (the history format is described in simulator/src/history.rs)",
                path.display(),
                e.line,
                e.message
            );
            return 2;
        }
    };
    if ops.is_empty() {
        // Nothing to decide: calling it linearizable would pass a truncated or wrong file.
        eprintln!(
            "vopr: {}: the history holds no operation; check the file (one JSON object per line)",
            path.display()
        );
        return 2;
    }
    let budget = Budget::steps(STEPS_MAX).with_deadline(Instant::now() + TIME_MAX);
    let result = check_kv(&ops, budget);
    // Through `write_stdout`: a closed pipe (`| head -1`) ends vopr quietly.
    if json {
        crate::cli::write_stdout(format_args!("{}\n", result.to_json()));
    } else {
        crate::cli::write_stdout(format_args!("{result}"));
    }
    match result.verdict {
        Verdict::Linearizable => 0,
        Verdict::NotLinearizable => 1,
        Verdict::Unknown => 4,
    }
}
