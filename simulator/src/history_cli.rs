//! `vopr check-history FILE [--json] [--memory-mb N] [--jobs N] [--timeline OUT.html]`:
//! linearizability of a recorded history (format in `history.rs`), with `--jobs` threads
//! checking independent keys at once.
//! Exit 0 linearizable, 1 not linearizable, 4 unknown (a budget of steps, time or memory ran
//! out), 2 unreadable or malformed input.

use crate::checker::linearizability::{check_kv_jobs, Budget, Verdict};
use crate::history::parse_history;
use std::path::Path;
use std::time::{Duration, Instant};

/// Search steps and wall-clock limit of a check from the command line.
const STEPS_MAX: u64 = 200_000_000;
const TIME_MAX: Duration = Duration::from_secs(60);

/// The memory budget when `--memory-mb` is not given and the machine's memory cannot be read.
const MEMORY_FALLBACK_MB: u64 = 1024;

/// `memory_mb`: the memory the search may hold, in MiB (`default_memory_mb()` when `None`);
/// `jobs`: threads (`check_operations_jobs`);
/// `timeline`: where to draw the history and the check's evidence (`crate::timeline`).
pub fn check_history_file(
    path: &Path,
    json: bool,
    memory_mb: Option<u64>,
    jobs: usize,
    timeline: Option<&Path>,
) -> i32 {
    // Created before the check runs, so a bad path fails at once.
    let timeline = match timeline.map(|out| (out, std::fs::File::create(out))) {
        None => None,
        Some((out, Ok(file))) => Some((out, file)),
        Some((out, Err(e))) => {
            eprintln!(
                "vopr: cannot create the --timeline file {}: {e}; pick a writable path",
                out.display()
            );
            return 2;
        }
    };
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
    let memory_mb = memory_mb.unwrap_or_else(default_memory_mb);
    let budget = Budget::steps(STEPS_MAX)
        .with_memory(memory_mb.saturating_mul(1 << 20))
        .with_deadline(Instant::now() + TIME_MAX);
    let result = check_kv_jobs(&ops, budget, jobs);
    // Through `write_stdout`: a closed pipe (`| head -1`) ends vopr quietly.
    if json {
        crate::cli::write_stdout(format_args!("{}\n", result.to_json()));
    } else {
        crate::cli::write_stdout(format_args!("{result}"));
    }
    if let Some((out, file)) = timeline {
        let html = crate::timeline::history::render(&path.display().to_string(), &ops, &result);
        if let Err(e) = crate::timeline::write_to(out, file, &html) {
            eprintln!("vopr: {e}");
            return 2;
        }
    }
    match result.verdict {
        Verdict::Linearizable => 0,
        Verdict::NotLinearizable => 1,
        Verdict::Unknown => 4,
    }
}

/// A quarter of the memory this process may use: the machine's (`MemTotal` in /proc/meminfo)
/// or, when lower, its cgroup's limit (`memory.max`), so that the check answers `unknown`
/// well before the kernel would kill it. 1024 MiB when neither can be read.
pub fn default_memory_mb() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total_kib(&text))
        .map(|kib| kib / 1024);
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(|bytes| bytes >> 20);
    let available = match (total, cgroup) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(4 * MEMORY_FALLBACK_MB),
    };
    (available / 4).max(1)
}

/// The `MemTotal:   24684544 kB` line of /proc/meminfo, in KiB.
fn mem_total_kib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total() {
        let meminfo = "MemFree:  10 kB\nMemTotal:       24684544 kB\nSwap: 0 kB\n";
        assert_eq!(mem_total_kib(meminfo), Some(24_684_544));
        assert_eq!(mem_total_kib("MemTotal: lots\n"), None);
        assert_eq!(mem_total_kib(""), None);
        assert!(default_memory_mb() >= 1);
    }
}
