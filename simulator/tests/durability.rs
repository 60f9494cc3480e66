//! Disk faults through the scenario API, in the style of TigerBeetle's replica tests.

use simulator::scenario::Scenario;

#[test]
fn corrupt_prepare_on_one_replica_is_repaired_after_restart() {
    let mut s = Scenario::new(21, 3, 2);
    s.commit_more(30, 10_000).unwrap();
    let backup = (s.primary().unwrap() + 1) % 3;
    s.crash(backup);
    for op in [3, 10, 20] {
        assert!(s.corrupt_prepare(backup, op));
    }
    s.restart(backup);
    assert!(s.replica(backup).storage_faults_found() >= 3);
    // Replaying past ops 3, 10 and 20 needs their prepares back from a peer.
    s.catch_up(backup, 10_000).unwrap();
    s.commit_more(10, 10_000).unwrap();
}

#[test]
fn all_copies_of_a_header_corrupt_but_one() {
    // Op 7's header record and prepare are unreadable on two of three replicas (beyond the
    // atlas); all restart. The intact copy repairs the others by hash chain.
    let mut s = Scenario::new(22, 3, 2);
    s.commit_more(20, 10_000).unwrap();
    s.stop_clients();
    s.run(500).unwrap();
    let intact = s.primary().unwrap();
    for r in (0..3).filter(|&r| r != intact) {
        s.crash(r);
        assert!(s.corrupt_header(r, 7));
        assert!(s.corrupt_prepare(r, 7));
        s.restart(r);
    }
    for r in 0..3 {
        s.catch_up(r, 20_000).unwrap();
    }
}

#[test]
fn torn_superblock_copies_recover_from_the_newest_intact_copy() {
    let mut s = Scenario::new(23, 3, 2);
    s.commit_more(10, 10_000).unwrap();
    let r = (s.primary().unwrap() + 2) % 3;
    s.crash(r);
    for copy in 0..3 {
        assert!(s.corrupt_superblock(r, copy));
    }
    s.restart(r);
    s.catch_up(r, 10_000).unwrap();
    s.commit_more(10, 10_000).unwrap();
}

#[test]
fn crash_between_a_prepares_write_and_its_prepare_ok() {
    // A backup journals prepares and is crashed in the same tick, before its acks leave: the
    // writes are torn. It must come back without claiming those prepares, and the cluster
    // must not lose or fork anything.
    let mut s = Scenario::new(24, 3, 4);
    s.commit_more(10, 10_000).unwrap();
    let backup = (s.primary().unwrap() + 1) % 3;
    let mut torn = 0;
    for _ in 0..200 {
        s.run(1).unwrap();
        if s.sim.cluster.storage(backup).recent_writes() > 0 {
            torn = s.crash_tearing(backup);
            break;
        }
    }
    assert!(torn > 0, "the backup wrote something in its last tick");
    s.restart(backup);
    s.commit_more(20, 10_000).unwrap();
    s.catch_up(backup, 10_000).unwrap();
}

#[test]
fn latent_faults_everywhere_within_the_atlas_stay_safe() {
    let mut o = simulator::options::Options::from_seed(25).without_faults();
    o.replica_count = 5;
    o.client_count = 3;
    o.request_probability = 0.2;
    o.storage_fault_probability = 0.01;
    o.crash_probability = 0.0005;
    o.restart_delay_mean_ticks = 200;
    let mut s = Scenario::with_options(25, o);
    s.sim.faults_enabled = true;
    s.run(20_000).unwrap();
    assert!(
        s.sim.counters.storage_faults > 50,
        "{}",
        s.sim.counters.storage_faults
    );
    assert!(s.commit_max() > 100);
}

#[test]
fn faults_beyond_the_atlas_never_end_in_correctness() {
    use simulator::run::{run, Outcome, RunConfig};
    let mut faults = 0;
    for seed in 0..12 {
        let mut o = simulator::options::Options::from_seed(seed);
        o.ticks_safety = 6_000;
        o.ticks_liveness_max = 6_000;
        o.storage_faults_beyond_atlas = true;
        o.storage_fault_probability = 0.003;
        let summary = run(seed, o, RunConfig::default());
        assert_ne!(
            summary.outcome,
            Outcome::Correctness,
            "seed {seed}: {:?}",
            summary.violation
        );
        faults += summary.storage_faults;
    }
    assert!(faults > 100, "faults were injected: {faults}");
}

#[test]
fn a_backup_that_lost_every_copy_of_an_acked_op_does_not_nack_it() {
    // The primary commits op x with the ack of one backup only (the other is cut off), then
    // crashes. The acking backup restarts with both the header record and the prepare of x
    // unreadable (beyond the atlas). With the cut-off backup it is a quorum, but it must not
    // offer a log that lacks x: a view change without x would lose a committed op.
    let mut s = Scenario::new(41, 3, 1);
    s.commit_more(5, 10_000).unwrap();
    let primary = s.primary().unwrap();
    let (acker, cut_off) = ((primary + 1) % 3, (primary + 2) % 3);
    s.partition(&[&[primary, acker], &[cut_off]]);
    s.commit_more(1, 10_000).unwrap();
    s.stop_clients();
    s.run(100).unwrap();
    let x = s.commit_max();
    assert!(
        s.replica(cut_off).op() < x,
        "the cut-off backup never saw op {x}"
    );
    let view = s.replica(primary).view();
    s.crash(primary);
    s.crash(acker);
    assert!(s.corrupt_header(acker, x) && s.corrupt_prepare(acker, x));
    s.heal();
    s.restart(acker);
    assert!(s.replica(acker).storage_faults_found() >= 1);
    s.run(4_000).unwrap();
    // No view could start without the old primary: the acker held back its log.
    for r in [acker, cut_off] {
        let replica = s.replica(r);
        assert!(
            replica.status() != consensus::Status::Normal || replica.view() == view,
            "{}",
            replica.describe()
        );
    }
    s.restart(primary);
    s.resume_clients();
    s.commit_more(5, 20_000).unwrap();
    for r in 0..3 {
        s.catch_up(r, 20_000).unwrap();
    }
}

#[test]
fn a_solo_replica_with_a_faulty_prepare_refuses_to_open() {
    // A solo replica commits (and answers) every op it writes durably. If one prepare no
    // longer reads back, the op is lost with no peer to learn it from: opening would hang
    // at it forever. It must refuse to open (and so stay down), as for a lost checkpoint.
    let mut s = Scenario::new(71, 1, 2);
    s.commit_more(12, 5_000).unwrap();
    let op = s.replica(0).commit_min() - 3;
    s.crash(0);
    assert!(s.corrupt_prepare(0, op));
    s.restart(0);
    assert!(
        s.sim.cluster.replica(0).is_none(),
        "opened with op {op} lost: {}",
        s.describe()
    );
    assert_eq!(s.sim.counters.unopenable, 1);
}

#[test]
fn a_fresh_primary_with_an_unknown_slot_does_not_resume_as_primary() {
    // The primary of view 0 commits its first ops, crashes, and finds every slot it wrote
    // unreadable in both zones: its view, op and commit all look freshly formatted. Resuming
    // as primary of view 0 would prepare new ops over committed ones, in the same view.
    let mut s = Scenario::new(72, 3, 2);
    s.run_until(5_000, |s| s.commit_max() >= 2).unwrap();
    let p = s.primary().unwrap();
    assert_eq!((p, s.replica(p).view()), (0, 0), "view 0's primary");
    let op = s.replica(p).op();
    s.crash(p);
    for k in 1..=op {
        assert!(s.corrupt_header(p, k) && s.corrupt_prepare(p, k));
    }
    s.restart(p);
    assert_ne!(
        s.replica(p).status(),
        consensus::Status::Normal,
        "resumed as primary over {op} unknown ops"
    );
    s.commit_more(10, 20_000).unwrap();
}

#[test]
fn a_torn_superblock_write_is_rewritten_to_every_copy_at_open() {
    // A crash tears the last superblock write on two copies of four: the newest view lives on
    // two copies only. Later latent faults on those two (within the fault model: copies - 1
    // may be faulty) would bring back the older view, unless the replica rewrote every copy
    // when it opened. (Seed 403969 restarted a replica below a view it had shown.)
    use consensus::storage::Zone;
    let mut s = Scenario::new(73, 3, 2);
    s.commit_more(5, 5_000).unwrap();
    let p = s.primary().unwrap();
    let b = (p + 1) % 3;
    let view = s.replica(b).view();
    s.crash(p);
    s.run_until(5_000, |s| s.replica(b).view() > view).unwrap();
    let storage = s.sim.cluster.storage_mut(b);
    assert_eq!(
        storage.newest_pending().map(|(zone, _)| zone),
        Some(Zone::Superblock)
    );
    assert_eq!(storage.tear(2), 2, "copies 2 and 3 keep the older view");
    s.crash(b);
    s.restart(b);
    let shown = s.replica(b).view();
    assert!(shown > view);
    // Cut off, it finishes no view change (which would write the superblock anyway).
    let others: Vec<u8> = (0..3).filter(|&r| r != b).collect();
    s.partition(&[&[b], &others]);
    s.run(10).unwrap();
    s.crash(b);
    assert!(s.corrupt_superblock(b, 0) && s.corrupt_superblock(b, 1));
    s.restart(b);
    assert!(
        s.replica(b).view() >= shown,
        "back to view {} after view {shown}",
        s.replica(b).view()
    );
}
