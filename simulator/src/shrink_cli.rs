//! `vopr shrink INPUT`: the command around `crate::shrink` (reading the input, running the
//! candidates, the progress bar, the minimal schedule written out, the size report).

use crate::options::Options;
use crate::run::{self, RunConfig, Summary};
use crate::schedule::Schedule;
use crate::shrink::{self, Budget, Candidate, Failure};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `vopr shrink` was asked.
pub struct Request {
    /// A schedule file, a seed file, or a seed number.
    pub input: String,
    pub budget_runs: u64,
    pub budget_s: Option<u64>,
    /// Where the minimal schedule goes (default: next to the artifacts).
    pub out: Option<PathBuf>,
    pub artifacts: PathBuf,
}

/// Runs `vopr shrink`; returns the exit code (0 shrunk, 2 usage: the input does not fail).
pub fn main(request: &Request) -> Result<i32, String> {
    let start = read_input(&request.input)?;
    let first = run_candidate(&start, false);
    let Some(target) = Failure::of(&first) else {
        return Err(format!(
            "{} passes: there is no failure to shrink (give a failing seed or schedule)",
            request.input
        ));
    };
    // The first run drew nothing if it replayed; if it drew its faults, its schedule is them.
    let start = Candidate {
        events: first.schedule.clone(),
        ..start
    };
    let out = request.out.clone().unwrap_or_else(|| {
        request
            .artifacts
            .join(format!("seed-{}.min.schedule.jsonl", start.seed))
    });
    crate::cli::write_stdout(format_args!(
        "shrinking seed {}: {} with {} events (budget {} runs{})\n",
        start.seed,
        target.describe(),
        start.events.len(),
        request.budget_runs,
        request
            .budget_s
            .map(|s| format!(", {s} s"))
            .unwrap_or_default()
    ));
    let bar = progress_bar(request.budget_runs);
    let linearizability = target.invariant.as_deref() == Some("linearizability");
    let mut test = |c: &Candidate| Failure::of(&run_candidate(c, linearizability));
    let budget = Budget {
        runs: request.budget_runs,
        deadline: request
            .budget_s
            .map(|s| Instant::now() + Duration::from_secs(s)),
    };
    let mut progress = |runs: u64, c: &Candidate| {
        if let Some(b) = &bar {
            b.set_position(runs);
            b.set_message(format!("{} events", c.events.len()));
        }
    };
    let shrunk = shrink::shrink(
        start.clone(),
        target.clone(),
        &mut test,
        budget,
        &mut progress,
    );
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let last = run_candidate(&shrunk.best, linearizability);
    let mut schedule = Schedule::new(
        shrunk.best.seed,
        shrunk.best.options.clone(),
        shrunk.best.events.clone(),
    );
    schedule.header.found = Some(format!(
        "shrunk by vopr shrink from {} ({} events): {}",
        request.input,
        start.events.len(),
        crate::cli::found(&last)
    ));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create {}: {e}; pick a writable --out",
                dir.display()
            )
        })?;
    }
    std::fs::write(&out, schedule.to_jsonl())
        .map_err(|e| format!("cannot write {}: {e}; pick a writable --out", out.display()))?;
    crate::cli::write_stdout(format_args!(
        "{}",
        report(&start, &first, &shrunk, &last, &out)
    ));
    Ok(0)
}

/// The input as a candidate: a schedule file as it is; a seed (a number or a seed file) with
/// no events yet (its first run draws them).
fn read_input(input: &str) -> Result<Candidate, String> {
    if let Ok(seed) = input.parse::<u64>() {
        return Ok(Candidate {
            seed,
            options: Options::from_seed(seed),
            events: Vec::new(),
        });
    }
    let path = Path::new(input);
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {input}: {e}; give a seed, a seed file or a schedule"))?;
    let kept = crate::seeds::parse_any(path, &text)?;
    let options = kept.options()?;
    Ok(Candidate {
        seed: kept.seed,
        options,
        events: kept.schedule.map(|s| s.events).unwrap_or_default(),
    })
}

/// Runs a candidate: its events replayed (none drawn), or drawn from the seed when it has no
/// events at all (the first run of a seed).
fn run_candidate(c: &Candidate, linearizability: bool) -> Summary {
    let replay = (!c.events.is_empty()).then(|| c.events.clone());
    let config = RunConfig {
        skip_linearizability: !linearizability,
        replay,
        ..RunConfig::default()
    };
    let options = c.options.clone();
    run::guard(c.seed, &options, || {
        run::run(c.seed, options.clone(), config)
    })
}

fn report(
    start: &Candidate,
    first: &Summary,
    shrunk: &shrink::Shrunk,
    last: &Summary,
    out: &Path,
) -> String {
    let row = |name: &str, before: u64, after: u64| {
        let ratio = if before == 0 {
            String::new()
        } else {
            format!("  ({:.1}%)", 100.0 * after as f64 / before as f64)
        };
        format!("  {name:<9} {before:>9} -> {after:<9}{ratio}\n")
    };
    let b = &shrunk.best;
    let mut text = format!(
        "shrunk in {} runs{}: {}\n",
        shrunk.runs,
        if shrunk.deadline_hit {
            " (stopped by --budget-s: another machine may shrink further)"
        } else if shrunk.budget_spent {
            " (run budget spent: more runs may shrink further)"
        } else {
            ""
        },
        Failure::of(last)
            .map(|f| f.describe())
            .unwrap_or_else(|| "pass (a flaky shrink: report it)".to_string())
    );
    text.push_str(&row(
        "events",
        start.events.len() as u64,
        b.events.len() as u64,
    ));
    text.push_str(&row("ticks", first.ticks, last.ticks));
    text.push_str(&row(
        "replicas",
        start.options.replica_count as u64,
        b.options.replica_count as u64,
    ));
    text.push_str(&row(
        "clients",
        start.options.client_count as u64,
        b.options.client_count as u64,
    ));
    text.push_str(&row("packets", first.packets_sent, last.packets_sent));
    text.push_str(&format!(
        "minimal schedule: {} (vopr replay {}; keep it in seeds/schedules/ with \"expect\":\"pass\" once fixed)\n",
        out.display(),
        out.display()
    ));
    text
}

fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs {elapsed} {msg}")
            .expect("template"),
    );
    Some(bar)
}
