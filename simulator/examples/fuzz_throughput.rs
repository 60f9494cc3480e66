//! Executions per second of a fuzz entry point on stable, without libFuzzer: runs TARGET over
//! the checked-in corpus and regressions, then over seeded random inputs, and prints the rate.
//! `cargo run --release -p simulator --example fuzz_throughput -- view_change 200 [LEN_MAX]`
//! (a quick way to see where a target's time goes, e.g. under `perf record`). libFuzzer's own
//! builds are several times slower (coverage counters, debug assertions).
//!
//! `DEPTH=1` prints each input's depth (ticks included). `SETUP_COST=1` first times building
//! a scripted cluster: microseconds with a small ring, against milliseconds for a run, which
//! is why the targets build a fresh cluster per input rather than clone a formatted one.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simulator::fuzz::Depth;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target = args.get(1).map(String::as_str).unwrap_or("view_change");
    let count: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let len_max: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(512);
    let run: fn(&[u8]) -> Depth = match target {
        "header_decode" => |d| {
            simulator::fuzz::header_decode(d);
            Depth::default()
        },
        "replica_messages" => simulator::fuzz::replica_messages,
        "view_change" => simulator::fuzz::view_change,
        "scenario" => simulator::fuzz::scenario,
        other => panic!("unknown target {other}"),
    };
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz"));
    let mut inputs = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.extension().is_none()) {
            inputs.push(std::fs::read(&path).unwrap());
        }
    }
    let fixed = inputs.len();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..count {
        let mut bytes = vec![0; rng.next_u32() as usize % (len_max + 1)];
        rng.fill_bytes(&mut bytes);
        inputs.push(bytes);
    }
    if std::env::var_os("SETUP_COST").is_some() {
        for (replicas, slots) in [(3u8, 32u64), (5, 1024), (6, 1024)] {
            let t = Instant::now();
            for seed in 0..200 {
                let s = simulator::scenario::Scenario::configured(seed, replicas, 2, |o| {
                    o.journal_slot_count = slots
                });
                std::hint::black_box(&s);
            }
            println!(
                "setup {replicas} replicas {slots} slots: {:.1} us",
                t.elapsed().as_secs_f64() * 1e6 / 200.0
            );
        }
    }
    let verbose = std::env::var_os("DEPTH").is_some();
    let started = Instant::now();
    let mut slowest = (0.0, 0);
    for (i, data) in inputs.iter().enumerate() {
        let t = Instant::now();
        let depth = run(data);
        if verbose {
            println!("#{i} {} bytes: {depth:?}", data.len());
        }
        let s = t.elapsed().as_secs_f64();
        if s > slowest.0 {
            slowest = (s, i);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{target}: {} inputs ({fixed} checked in) in {elapsed:.2}s: {:.1} exec/s; slowest #{} {:.1} ms",
        inputs.len(),
        inputs.len() as f64 / elapsed,
        slowest.1,
        slowest.0 * 1000.0
    );
}
