//! Times the linearizability checker, with its search steps and the most memory it held, over
//! every reference history and over generated ones:
//!
//! ```text
//! cargo run --release --example bench_histories [DIR]
//! cargo run --release --example bench_histories -- --write-generated DIR
//! cargo run --release --example bench_histories -- --jobs N [DIR]
//! ```
//!
//! DIR defaults to the reference histories (tests/data/histories). The generated histories are
//! linearizable by construction (`simulator::history::generate`), but for those named `_stale`:
//! the same with one stale read per key (`generate::with_stale_read`, refuted without a
//! search), and `_lost`: one read per key that misses an append (`generate::with_lost_append`,
//! which a search refutes, or, once the search has gone on long, `Model::refute_late` when an
//! operation between the lost append's base and the read gives it away), to time refutations. `--write-generated DIR` writes them as files instead (to time another build of
//! the checker on the same input). `--jobs N` checks keys on N threads (`check_kv_jobs`). Performance
//! is never timed in tests: this is the place.

use std::time::{Duration, Instant};

use simulator::checker::linearizability::{check_kv_jobs, Budget};
use simulator::history::{generate, parse_history, Operation};

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
    if let [flag, dir] = args.as_slice() {
        if flag == "--write-generated" {
            write_generated(dir);
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
        format!("gen_{}ops_{}k_{}c{lie}", self.ops, self.keys, self.clients)
    }

    /// The same history every time (a fixed seed per spec; one with a lie lies in the history
    /// its linearizable spec makes).
    fn generate(&self) -> Vec<Operation> {
        let seed = ((self.ops * 131 + self.keys) * 131 + self.clients) as u64;
        let history = generate::linearizable(self.ops, self.keys, self.clients, seed);
        match self.lie {
            Lie::None => history,
            Lie::Stale => generate::with_stale_read(history),
            Lie::Lost => generate::with_lost_append(history),
        }
    }
}
