//! Times the linearizability checker over every reference history:
//! `cargo run --release --example bench_histories [DIR]`.

use std::time::{Duration, Instant};

use simulator::checker::linearizability::{check_kv, Budget};
use simulator::history::parse_history;

fn main() {
    let default_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/histories");
    let dir = std::env::args().nth(1).unwrap_or(default_dir.to_string());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("history folder")
        .map(|entry| entry.expect("folder entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    let mut total = Duration::ZERO;
    let mut worst = (Duration::ZERO, String::new());
    for path in &files {
        let text = std::fs::read_to_string(path).expect("history file");
        let ops = parse_history(&text).expect("history parses");
        let start = Instant::now();
        let result = check_kv(&ops, Budget::default());
        let took = start.elapsed();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        println!(
            "{name:<20} {:>5} ops {:>16} {:>10} steps {:>9.3} ms",
            ops.len(),
            result.verdict.as_str(),
            result.steps(),
            took.as_secs_f64() * 1e3
        );
        total += took;
        if took > worst.0 {
            worst = (took, name);
        }
    }
    println!(
        "{} histories: total {:.3} ms, worst {:.3} ms ({})",
        files.len(),
        total.as_secs_f64() * 1e3,
        worst.0.as_secs_f64() * 1e3,
        worst.1
    );
}
