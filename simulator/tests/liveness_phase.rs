//! The liveness phase: once healed, the cluster must serve new requests (each client issues
//! `LIVENESS_REQUESTS` more and they must complete), and with disk faults a quorum of clean
//! replicas must manage alone when there is one.

use simulator::options::Options;
use simulator::run::{run, Outcome, RunConfig};
use simulator::schedule::Fault;
use simulator::simulation::LIVENESS_REQUESTS;

#[test]
fn the_healed_cluster_serves_new_requests() {
    for seed in [3, 8, 13] {
        let mut o = Options::from_seed(seed);
        o.ticks_safety = 5_000;
        // Room for every session: no eviction may excuse a request.
        o.clients_max = 64;
        let clients = o.client_count as usize;
        let config = RunConfig {
            keep_history: true,
            ..RunConfig::default()
        };
        let summary = run(seed, o, config);
        assert_eq!(summary.outcome, Outcome::Pass, "seed {seed}");
        let history = summary.history_jsonl.expect("kept");
        let healed_at = 5_000;
        let new_and_done = history
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|op| op["call"].as_u64().unwrap() > healed_at && !op["return"].is_null())
            .count();
        assert!(
            new_and_done >= clients * LIVENESS_REQUESTS as usize,
            "seed {seed}: {new_and_done} operations called after healing completed, {clients} clients"
        );
    }
}

#[test]
fn with_disk_faults_a_clean_quorum_converges_alone() {
    let (mut quorum_cores, mut full_cores) = (0, 0);
    for seed in 1..=16 {
        let mut o = Options::from_seed(seed);
        o.replica_count = 5;
        o.ticks_safety = 6_000;
        o.storage_fault_probability = 0.0005;
        let summary = run(seed, o, RunConfig::default());
        assert_eq!(summary.outcome, Outcome::Pass, "seed {seed}");
        if summary.storage_faults == 0 {
            continue;
        }
        let core = summary
            .schedule
            .iter()
            .find_map(|e| match &e.fault {
                Fault::Liveness { core } => Some(core.len()),
                _ => None,
            })
            .expect("a liveness event");
        if core == 3 {
            quorum_cores += 1;
        } else {
            full_cores += 1;
        }
    }
    assert!(quorum_cores > 0, "never a quorum core ({full_cores} full)");
}
