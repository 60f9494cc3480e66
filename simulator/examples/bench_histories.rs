//! Times the linearizability checker, with its search steps and the most memory it held, over
//! every reference history and over generated ones:
//!
//! ```text
//! cargo run --release --example bench_histories [DIR]
//! cargo run --release --example bench_histories -- --write-generated DIR
//! ```
//!
//! DIR defaults to the reference histories (tests/data/histories). The generated histories are
//! linearizable by construction: clients issue operations on a few keys, each taking effect at a
//! random moment between its call and its return, and outputs are what a register gives in
//! that order. `--write-generated DIR` writes them as files instead (to time another build of
//! the checker on the same input). Performance is never timed in tests: this is the place.

use std::time::{Duration, Instant};

use simulator::checker::linearizability::{check_kv, Budget};
use simulator::history::{parse_history, Op, Operation, Output};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    let mut totals = Totals::default();
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
        let mut generated = Totals::default();
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
    time: Duration,
    steps: u64,
    worst: (Duration, String),
    peak: (u64, String),
}

impl Totals {
    /// Checks one history with the default budget and prints its line.
    fn add(&mut self, name: &str, ops: &[Operation]) {
        let start = Instant::now();
        let result = check_kv(ops, Budget::default());
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

/// A generated history: `ops` operations over `keys` keys by `clients` clients.
struct Spec {
    ops: usize,
    keys: usize,
    clients: usize,
}

const fn spec(ops: usize, keys: usize, clients: usize) -> Spec {
    Spec { ops, keys, clients }
}

const SPECS: &[Spec] = &[
    spec(1_000, 1, 2),
    spec(1_000, 1, 4),
    spec(1_000, 1, 8),
    spec(1_000, 1, 16),
    spec(1_000, 4, 16),
    spec(10_000, 1, 2),
    spec(10_000, 1, 4),
    spec(10_000, 1, 8),
    spec(10_000, 1, 16),
    spec(10_000, 4, 4),
    spec(10_000, 4, 16),
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
        format!("gen_{}ops_{}k_{}c", self.ops, self.keys, self.clients)
    }

    /// The same history every time (a fixed seed per spec).
    fn generate(&self) -> Vec<Operation> {
        let mut rng = SplitMix(((self.ops * 131 + self.keys) * 131 + self.clients) as u64);
        // Each client's next free tick; every operation takes 1..=40 ticks, starts 0..=4
        // ticks after the client's previous one returned, and takes effect at a random tick
        // of its own span.
        let mut free = vec![0u64; self.clients];
        let mut drafts = Vec::with_capacity(self.ops);
        for index in 0..self.ops {
            let client = rng.below(self.clients as u64) as usize;
            let call = free[client] + rng.below(5);
            let ret = call + 1 + rng.below(40);
            let effect = call + rng.below(ret - call + 1);
            free[client] = ret + 1;
            let key = format!("k{}", rng.below(self.keys as u64));
            let value = format!("{client}.{index}");
            let op = match rng.below(10) {
                0..=3 => Op::Get,
                4..=5 => Op::Put { value },
                6..=7 => Op::Append { value },
                _ => Op::Cas {
                    expected: String::new(),
                    value,
                },
            };
            drafts.push((effect, index, client, key, op, call, ret));
        }
        // Outputs in the order the operations took effect.
        drafts.sort_by_key(|draft| (draft.0, draft.1));
        let mut values = std::collections::BTreeMap::<String, String>::new();
        let mut ops = Vec::with_capacity(self.ops);
        for (_, index, client, key, mut op, call, ret) in drafts {
            let current = values.get(&key).cloned();
            let output = match &mut op {
                Op::Get => Output::Value(current),
                Op::Put { value } => {
                    values.insert(key.clone(), value.clone());
                    Output::Empty
                }
                Op::Append { value } => {
                    values.insert(key.clone(), current.unwrap_or_default() + value);
                    Output::Empty
                }
                Op::Cas { expected, value } => {
                    // Half the time it expects the current value (and swaps).
                    let swaps = index % 2 == 0 && current.is_some();
                    *expected = match (&current, swaps) {
                        (Some(current), true) => current.clone(),
                        _ => format!("never.{index}"),
                    };
                    if swaps {
                        values.insert(key.clone(), value.clone());
                    }
                    Output::Swapped(swaps)
                }
            };
            ops.push((
                index,
                Operation {
                    client: client as u64,
                    key,
                    op,
                    output,
                    call,
                    ret: Some(ret),
                },
            ));
        }
        ops.sort_by_key(|(index, _)| *index);
        ops.into_iter().map(|(_, op)| op).collect()
    }
}

/// SplitMix64: enough randomness for shapes of histories, and no dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
