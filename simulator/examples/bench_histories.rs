//! Times the linearizability checker, with its search steps and the most memory it held, over
//! every reference history, over generated ones, and over what a range of seeds records:
//!
//! ```text
//! cargo run --release --example bench_histories [DIR]
//! cargo run --release --example bench_histories -- --write-generated DIR
//! cargo run --release --example bench_histories -- --jobs N [DIR]
//! cargo run --release --example bench_histories -- --seeds A..B
//! cargo run --release --example bench_histories -- --adversarial
//! ```
//!
//! DIR defaults to the reference histories (tests/data/histories). The generated histories are
//! linearizable by construction (`simulator::history::generate`), but for those named
//! `_stale`: the same with one stale read per key (`generate::with_stale_read`, refuted
//! without a search), and `_lost`: one read per key that misses an append
//! (`generate::with_lost_append`, which a search refutes, or, once the search has gone on
//! long, `Model::refute_late` when an operation between the lost append's base and the read
//! gives it away), to time refutations. `--write-generated DIR` writes them as files instead
//! (to time another build of the checker on the same input). `--jobs N` checks keys on N
//! threads (`check_kv_jobs`).
//!
//! Without DIR, the generated histories are followed by adversarial ones (`bench_adversarial`,
//! alone with `--adversarial`): 200 seeds each of two shapes with colliding values and cas ops
//! that guess, summarized by how the times spread.
//!
//! `--seeds A..B` runs each seed of the range as `vopr --seed N` does (its swarm options),
//! then times the end-of-run check of its history, with the end-of-run budget, apart from
//! the run: per seed the operations, verdict, steps, the check's and the run's milliseconds,
//! and the most memory the check held; then the totals, the seeds whose check took longest
//! next to their run, and how many answered `unknown`.
//!
//! Performance is never timed in tests: this is the place.

use std::time::{Duration, Instant};

use simulator::checker::linearizability::{check_kv, check_kv_jobs, Budget, Verdict};
use simulator::end_of_run::linearizability_budget;
use simulator::history::generate::{self, Shape};
use simulator::history::{parse_history, Operation};
use simulator::options::Options;
use simulator::run::{run, RunConfig};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let jobs = match args.iter().position(|arg| arg == "--jobs") {
        Some(at) if at + 1 < args.len() => {
            let jobs = args[at + 1]
                .parse()
                .unwrap_or_else(|_| fail("--jobs N".to_string()));
            args.drain(at..at + 2);
            jobs
        }
        _ => 1,
    };
    if args == ["--adversarial"] {
        bench_adversarial(jobs);
        return;
    }
    if let [flag, value] = args.as_slice() {
        if flag == "--write-generated" {
            write_generated(value);
            return;
        }
        if flag == "--seeds" {
            bench_seeds(value);
            return;
        }
    }
    let default_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/histories");
    let dir = args.first().map_or(default_dir, String::as_str);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(format!("cannot read {dir}: {e}")))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    let mut totals = Totals {
        jobs,
        ..Totals::default()
    };
    println!(
        "{:<28} {:>6} {:>16} {:>11} {:>10} {:>12}",
        "history", "ops", "verdict", "steps", "ms", "peak bytes"
    );
    for path in &files {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| fail(format!("cannot read {}: {e}", path.display())));
        let ops = parse_history(&text)
            .unwrap_or_else(|e| fail(format!("{}:{}: {}", path.display(), e.line, e.message)));
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        totals.add(&name, &ops);
    }
    if !files.is_empty() {
        totals.print(&format!("{} histories in {dir}", files.len()));
    }
    if args.is_empty() {
        let mut generated = Totals {
            jobs,
            ..Totals::default()
        };
        for spec in SPECS {
            generated.add(&spec.name(), &spec.generate());
        }
        generated.print(&format!("{} generated histories", SPECS.len()));
        bench_adversarial(jobs);
    }
}

/// Seeds of each adversarial shape.
const ADVERSARIAL_SEEDS: u64 = 200;

/// The hardest small histories we know for this checker: 300 operations on one key by 10
/// clients, values drawn from 5 or 50 (appends build values with many readings), 20% pending,
/// cas ops guessing their expected value (`Shape::guessing_cas`). Linearizable by
/// construction. Prints how the times spread and the slowest five, not a line per history.
fn bench_adversarial(jobs: usize) {
    for values in [5, 50] {
        let shape = Shape {
            values: Some(values),
            pending_in_100: 20,
            guessing_cas: true,
        };
        let mut runs: Vec<(Duration, u64, u64, Verdict)> = Vec::new();
        for seed in 0..ADVERSARIAL_SEEDS {
            let ops = generate::shaped(300, 1, 10, seed, shape);
            let start = Instant::now();
            let result = check_kv_jobs(&ops, Budget::default(), jobs);
            runs.push((start.elapsed(), result.steps(), seed, result.verdict));
        }
        let total: Duration = runs.iter().map(|run| run.0).sum();
        let steps: u64 = runs.iter().map(|run| run.1).sum();
        let within = |ms: u64| {
            runs.iter()
                .filter(|run| run.0 <= Duration::from_millis(ms))
                .count()
        };
        let count = |verdict| runs.iter().filter(|run| run.3 == verdict).count();
        let (wrong, unknown) = (count(Verdict::NotLinearizable), count(Verdict::Unknown));
        let (within_10, within_100) = (within(10), within(100));
        runs.sort_by_key(|run| std::cmp::Reverse(run.0));
        let slowest: Vec<String> = runs[..5]
            .iter()
            .map(|(took, steps, seed, _)| {
                format!(
                    "seed {seed} {:.1} ms {steps} steps",
                    took.as_secs_f64() * 1e3
                )
            })
            .collect();
        println!(
            "adversarial v{values}: {ADVERSARIAL_SEEDS} histories, total {:.1} ms, {steps} steps; \
             within 10 ms {}, within 100 ms {}; not linearizable (wrong) {wrong}, unknown {unknown}; slowest: {}",
            total.as_secs_f64() * 1e3,
            within_10,
            within_100,
            slowest.join(", ")
        );
    }
}

fn fail(message: String) -> ! {
    eprintln!("bench_histories: {message}");
    std::process::exit(2);
}

#[derive(Default)]
struct Totals {
    jobs: usize,
    time: Duration,
    steps: u64,
    worst: (Duration, String),
    peak: (u64, String),
}

impl Totals {
    /// Checks one history with the default budget and prints its line.
    fn add(&mut self, name: &str, ops: &[Operation]) {
        let start = Instant::now();
        let result = check_kv_jobs(ops, Budget::default(), self.jobs);
        let took = start.elapsed();
        let exhausted = result.budget_exhausted.map_or(String::new(), |limit| {
            format!(" ({} budget)", limit.as_str())
        });
        println!(
            "{name:<28} {:>6} {:>16} {:>11} {:>10.3} {:>12}{exhausted}",
            ops.len(),
            result.verdict.as_str(),
            result.steps(),
            took.as_secs_f64() * 1e3,
            result.memory_peak_bytes,
        );
        self.time += took;
        self.steps += result.steps();
        if took > self.worst.0 {
            self.worst = (took, name.to_string());
        }
        if result.memory_peak_bytes > self.peak.0 {
            self.peak = (result.memory_peak_bytes, name.to_string());
        }
    }

    fn print(&self, what: &str) {
        println!(
            "{what}: total {:.3} ms, {} steps; slowest {:.3} ms ({}); peak {} bytes ({})\n",
            self.time.as_secs_f64() * 1e3,
            self.steps,
            self.worst.0.as_secs_f64() * 1e3,
            self.worst.1,
            self.peak.0,
            self.peak.1
        );
    }
}

/// A generated history: `ops` operations over `keys` keys by `clients` clients, with a lie per
/// key or none.
struct Spec {
    ops: usize,
    keys: usize,
    clients: usize,
    lie: Lie,
    shape: Shape,
}

#[derive(Clone, Copy, PartialEq)]
enum Lie {
    None,
    Stale,
    Lost,
}

const fn spec(ops: usize, keys: usize, clients: usize) -> Spec {
    Spec {
        ops,
        keys,
        clients,
        lie: Lie::None,
        shape: Shape {
            values: None,
            pending_in_100: 0,
            guessing_cas: false,
        },
    }
}

/// Values drawn from `values` (colliding; `0` for unique ones) and `pending` operations in a
/// hundred with no reply (`generate::shaped`).
const fn shaped(ops: usize, keys: usize, clients: usize, values: u64, pending: u64) -> Spec {
    Spec {
        shape: Shape {
            values: if values == 0 { None } else { Some(values) },
            pending_in_100: pending,
            guessing_cas: false,
        },
        ..spec(ops, keys, clients)
    }
}

const fn stale(ops: usize, keys: usize, clients: usize) -> Spec {
    Spec {
        lie: Lie::Stale,
        ..spec(ops, keys, clients)
    }
}

const fn lost(ops: usize, keys: usize, clients: usize) -> Spec {
    Spec {
        lie: Lie::Lost,
        ..spec(ops, keys, clients)
    }
}

const SPECS: &[Spec] = &[
    spec(300, 1, 10),
    spec(1_000, 1, 2),
    spec(1_000, 1, 4),
    spec(1_000, 1, 8),
    spec(1_000, 1, 16),
    spec(1_000, 4, 16),
    spec(1_000, 16, 16),
    spec(10_000, 1, 2),
    spec(10_000, 1, 4),
    spec(10_000, 1, 8),
    spec(10_000, 1, 16),
    spec(10_000, 4, 4),
    spec(10_000, 4, 16),
    spec(10_000, 16, 16),
    spec(100_000, 1, 10),
    spec(100_000, 1, 16),
    spec(100_000, 4, 16),
    spec(100_000, 16, 16),
    // Sixteen clients a key on four keys: searches long enough for --jobs to matter.
    spec(40_000, 4, 64),
    // Colliding values (appends then build values with several readings) and pending
    // operations, as in Jepsen's and Porcupine's histories.
    shaped(300, 1, 10, 0, 20),
    shaped(300, 1, 10, 5, 0),
    shaped(300, 1, 10, 5, 20),
    shaped(300, 1, 10, 50, 20),
    shaped(1_000, 1, 10, 50, 5),
    shaped(1_000, 4, 16, 50, 5),
    shaped(10_000, 1, 4, 50, 5),
    shaped(10_000, 4, 16, 50, 5),
    shaped(10_000, 16, 16, 5, 5),
    shaped(100_000, 16, 16, 0, 5),
    stale(1_000, 1, 16),
    stale(10_000, 1, 4),
    stale(10_000, 1, 16),
    stale(10_000, 16, 16),
    stale(100_000, 1, 10),
    stale(100_000, 1, 16),
    stale(100_000, 16, 16),
    lost(1_000, 1, 16),
    lost(10_000, 1, 4),
    lost(10_000, 1, 16),
    lost(10_000, 16, 16),
    lost(100_000, 1, 10),
    lost(100_000, 1, 16),
    lost(100_000, 16, 16),
];

fn write_generated(dir: &str) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| fail(format!("cannot create {dir}: {e}")));
    for spec in SPECS {
        let text: String = spec
            .generate()
            .iter()
            .map(|op| format!("{}\n", op.to_json_line()))
            .collect();
        let path = format!("{dir}/{}.jsonl", spec.name());
        std::fs::write(&path, text).unwrap_or_else(|e| fail(format!("cannot write {path}: {e}")));
    }
}

impl Spec {
    fn name(&self) -> String {
        let lie = match self.lie {
            Lie::None => "",
            Lie::Stale => "_stale",
            Lie::Lost => "_lost",
        };
        let values = self
            .shape
            .values
            .map_or(String::new(), |n| format!("_v{n}"));
        let pending = match self.shape.pending_in_100 {
            0 => String::new(),
            p => format!("_p{p}"),
        };
        format!(
            "gen_{}ops_{}k_{}c{values}{pending}{lie}",
            self.ops, self.keys, self.clients
        )
    }

    /// The same history every time (a fixed seed per spec; one with a lie lies in the history
    /// its linearizable spec makes).
    fn generate(&self) -> Vec<Operation> {
        let seed = ((self.ops * 131 + self.keys) * 131 + self.clients) as u64;
        let history = generate::shaped(self.ops, self.keys, self.clients, seed, self.shape);
        match self.lie {
            Lie::None => history,
            Lie::Stale => generate::with_stale_read(history),
            Lie::Lost => generate::with_lost_append(history),
        }
    }
}

/// `--seeds A..B`: the end-of-run checks of a range of seeds, timed apart from their runs.
fn bench_seeds(range: &str) {
    let (start, end) = range
        .split_once("..")
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        .filter(|(a, b)| a < b)
        .unwrap_or_else(|| fail(format!("--seeds A..B with A < B, not {range:?}")));
    println!(
        "{:>6} {:>6} {:>16} {:>11} {:>10} {:>10} {:>7} {:>12}",
        "seed", "ops", "verdict", "steps", "check ms", "run ms", "ratio", "peak bytes"
    );
    let (mut run_total, mut check_total) = (Duration::ZERO, Duration::ZERO);
    let mut ratios: Vec<(f64, u64)> = Vec::new();
    let mut unknown = 0;
    for seed in start..end {
        let config = RunConfig {
            keep_history: true,
            skip_linearizability: true,
            ..RunConfig::default()
        };
        let started = Instant::now();
        let summary = run(seed, Options::from_seed(seed), config);
        let ran = started.elapsed();
        let Some(history) = summary.history_jsonl else {
            fail(format!("seed {seed} kept no history"))
        };
        let ops = parse_history(&history)
            .unwrap_or_else(|e| fail(format!("seed {seed}: line {}: {}", e.line, e.message)));
        let started = Instant::now();
        let result = check_kv(&ops, linearizability_budget(ops.len()));
        let checked = started.elapsed();
        let ratio = checked.as_secs_f64() / ran.as_secs_f64().max(1e-9);
        println!(
            "{seed:>6} {:>6} {:>16} {:>11} {:>10.3} {:>10.3} {ratio:>7.3} {:>12}",
            ops.len(),
            result.verdict.as_str(),
            result.steps(),
            checked.as_secs_f64() * 1e3,
            ran.as_secs_f64() * 1e3,
            result.memory_peak_bytes,
        );
        run_total += ran;
        check_total += checked;
        ratios.push((ratio, seed));
        unknown += usize::from(result.verdict == Verdict::Unknown);
    }
    ratios.sort_by(|a, b| b.0.total_cmp(&a.0));
    let worst: Vec<String> = ratios
        .iter()
        .take(5)
        .map(|(ratio, seed)| format!("{seed} ({ratio:.2})"))
        .collect();
    println!(
        "seeds {range}: runs {:.3} s, checks {:.3} s ({:.1}% of the runs); {unknown} unknown; \
         largest check/run ratios: {}",
        run_total.as_secs_f64(),
        check_total.as_secs_f64(),
        100.0 * check_total.as_secs_f64() / run_total.as_secs_f64().max(1e-9),
        worst.join(", ")
    );
}
