//! The fuzz targets' entry points on stable: over the checked-in corpus, the minimized
//! regressions, and seeded random inputs (with a check that they reach deep code).

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simulator::fuzz;
use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz"));
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

fn random_inputs(seed: u64, count: usize, len_max: usize) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let len = (rng.next_u32() as usize) % (len_max + 1);
            let mut bytes = vec![0; len];
            rng.fill_bytes(&mut bytes);
            bytes
        })
        .collect()
}

#[test]
fn header_decode_corpus_and_random() {
    let corpus = inputs("header_decode");
    assert!(!corpus.is_empty(), "the corpus is checked in");
    for (_, data) in &corpus {
        fuzz::header_decode(data);
    }
    for data in random_inputs(1, 5_000, 600) {
        fuzz::header_decode(&data);
    }
}

#[test]
fn header_decode_accepts_real_messages() {
    use consensus::wire::*;
    let m = Message::new(
        Header::new(simulator::cluster::CLUSTER, 3, 1, Command::StartViewChange),
        bytes::Bytes::new(),
    );
    fuzz::header_decode(&m.encode());
}

#[test]
fn replica_messages_corpus_and_random() {
    for (_, data) in inputs("replica_messages") {
        fuzz::replica_messages(&data);
    }
    let mut deepest = fuzz::Depth::default();
    for data in random_inputs(2, 2_000, 4_096) {
        let d = fuzz::replica_messages(&data);
        deepest.view_max = deepest.view_max.max(d.view_max);
        deepest.commit_max = deepest.commit_max.max(d.commit_max);
    }
    // Random bytes must get past decoding into view changes and commits.
    assert!(deepest.view_max > 0, "{deepest:?}");
    assert!(deepest.commit_max > 0, "{deepest:?}");
}

/// Whether an input was kept in fuzz/regressions: those found before the targets ran short
/// reproduce their bug only unbounded, so they are replayed both ways.
fn is_regression(path: &std::path::Path) -> bool {
    path.components().any(|c| c.as_os_str() == "regressions")
}

#[test]
fn view_change_corpus_and_random() {
    for (path, data) in inputs("view_change") {
        fuzz::view_change(&data);
        if is_regression(&path) {
            fuzz::view_change_with(&data, fuzz::Budget::Unbounded);
        }
    }
    let (mut view_max, mut two_groups, mut misrouted) = (0, 0, 0);
    for data in random_inputs(3, 40, 256) {
        let depth = fuzz::view_change(&data);
        view_max = view_max.max(depth.view_max);
        two_groups += (depth.groups == 2) as u32;
        misrouted += depth.misrouted;
    }
    assert!(
        view_max > 0,
        "the fuzzer's schedules must cause view changes"
    );
    // A quarter of the inputs run two groups per node, and messages of wrong groups reach
    // nodes.
    assert!(two_groups > 0 && misrouted > 0, "{two_groups} {misrouted}");
}

#[test]
fn scenario_corpus_and_random() {
    for (path, data) in inputs("scenario") {
        fuzz::scenario(&data);
        if is_regression(&path) {
            fuzz::scenario_with(&data, fuzz::Budget::Unbounded);
        }
    }
    for data in random_inputs(4, 20, 128) {
        fuzz::scenario(&data);
    }
}
