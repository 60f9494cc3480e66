//! Every disk zone gets its faults (issue 12 §3): the swarm's draws reach stale sectors,
//! faults at the uncommitted head, misdirected and lost superblock and checkpoint writes, and
//! torn sectors of garbage, sectors that read back as nothing, within the atlas, and the
//! replicas survive them.

use simulator::options::Options;
use simulator::run::{run, Outcome, RunConfig};
use simulator::schedule::{DiskFault, Fault, Zone};

#[test]
fn the_swarm_reaches_every_disk_zone_and_the_cluster_survives() {
    let mut stale = 0;
    let mut across = 0;
    let mut copies_lost_or_misdirected = 0;
    let mut garbage = 0;
    let mut journal = 0;
    let mut unreadable = 0;
    for seed in 1..=12 {
        let mut o = Options::from_seed(seed);
        o.replica_count = 3;
        o.ticks_safety = 12_000;
        o.storage_fault_probability = 0.01;
        o.torn_write_probability = 0.9;
        o.crash_probability = o.crash_probability.max(0.0005);
        let summary = run(seed, o, RunConfig::default());
        assert_eq!(
            summary.outcome,
            Outcome::Pass,
            "seed {seed}: {:?}",
            summary.violation
        );
        for event in &summary.schedule {
            match &event.fault {
                Fault::Storage { fault, .. } => match fault {
                    DiskFault::Stale { .. } => stale += 1,
                    DiskFault::Latent {
                        zone: Zone::WalHeaders | Zone::WalPrepares,
                        ..
                    } => journal += 1,
                    DiskFault::MisdirectToGroup { .. } => across += 1,
                    DiskFault::Misdirect { .. } | DiskFault::Lost => {}
                    DiskFault::Unreadable {
                        zone: Zone::WalHeaders | Zone::WalPrepares,
                        ..
                    } => unreadable += 1,
                    DiskFault::Latent { .. } | DiskFault::Unreadable { .. } => {}
                },
                Fault::Crash { garbage: true, .. } => garbage += 1,
                _ => {}
            }
            if let Fault::Storage {
                fault: DiskFault::Misdirect { .. } | DiskFault::Lost,
                ..
            } = &event.fault
            {
                copies_lost_or_misdirected += 1;
            }
        }
    }
    assert!(stale > 0, "no stale sector");
    // Seeds with several groups: a write lands in another group's region of the node's disk.
    assert!(across > 0, "no write misdirected across groups");
    assert!(journal > 0, "no journal fault");
    // A journal sector that reads back as nothing, though written (recovery must still see
    // the slot as written: `Journal::recover`).
    assert!(unreadable > 0, "no unreadable journal sector");
    assert!(garbage > 0, "no torn sector of garbage");
    assert!(
        copies_lost_or_misdirected > 0,
        "no lost or misdirected write"
    );
}

#[test]
fn a_solo_replica_beyond_the_atlas_refuses_to_open_and_that_is_the_answer() {
    let mut refused = 0;
    for seed in 1..=8 {
        let mut o = Options::from_seed(seed);
        o.replica_count = 1;
        o.ticks_safety = 6_000;
        o.storage_faults_beyond_atlas = true;
        o.storage_fault_probability = 0.003;
        let summary = run(seed, o, RunConfig::default());
        assert_eq!(
            summary.outcome,
            Outcome::Pass,
            "seed {seed}: {:?}",
            summary.liveness
        );
        refused += (summary.refused_to_open > 0) as u32;
    }
    assert!(refused > 0, "no solo replica ever had to refuse");
    // Within the atlas, a solo's disk takes no journal fault (it has no peer), so it never
    // has to refuse, and the swarm keeps half the solo seeds that way.
    let solo: Vec<Options> = (0..400)
        .map(Options::from_seed)
        .filter(|o| o.replica_count == 1)
        .collect();
    let beyond = solo
        .iter()
        .filter(|o| o.storage_faults_beyond_atlas)
        .count();
    assert!(
        beyond > 0 && beyond < solo.len(),
        "{beyond} of {}",
        solo.len()
    );
}
