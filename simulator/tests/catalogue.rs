//! Scenarios from the TigerBeetle catalogue (docs/scenario-catalogue.md) that
//! this replica's mechanisms cover, numbered as there.

use simulator::scenario::Scenario;

const R: usize = 3;

fn backup(s: &Scenario, k: u8) -> u8 {
    (s.primary().unwrap() + k) % R as u8
}

#[test]
fn c03_isolated_backup_send_only() {
    // B2 drops all incoming replica traffic: the others keep committing without it.
    let mut s = Scenario::new(31, 3, 2);
    s.commit_more(5, 5_000).unwrap();
    let b2 = backup(&s, 2);
    s.drop_messages(move |from, to, _| to == b2 as usize && from < R);
    let stuck = s.replica(b2).commit_min();
    s.commit_more(20, 10_000).unwrap();
    assert!(s.replica(b2).commit_min() <= stuck + 1);
    s.clear_drops();
    let target = s.commit_max();
    s.run_until(10_000, |s| s.replica(b2).commit_min() >= target)
        .unwrap();
}

#[test]
fn c04_isolated_backup_receive_only() {
    // B2 hears everything but none of its messages arrive: the cluster commits without it.
    let mut s = Scenario::new(32, 3, 2);
    s.commit_more(5, 5_000).unwrap();
    let b2 = backup(&s, 2);
    s.drop_messages(move |from, to, _| from == b2 as usize && to < R);
    s.commit_more(20, 10_000).unwrap();
    s.clear_drops();
    s.commit_more(5, 10_000).unwrap();
}

#[test]
fn c06_primary_send_only_abdicates() {
    // The primary can send but hears no replica: it must stop suppressing the view change.
    let mut s = Scenario::new(33, 3, 2);
    s.commit_more(5, 5_000).unwrap();
    let a0 = s.primary().unwrap();
    s.drop_messages(move |from, to, _| to == a0 as usize && from < R);
    s.run_until(10_000, |s| s.primary().is_some_and(|p| p != a0))
        .unwrap();
    s.commit_more(10, 10_000).unwrap();
}

#[test]
fn c07_primary_receive_only() {
    // The primary receives but cannot send: backups miss heartbeats and change view.
    let mut s = Scenario::new(34, 3, 2);
    s.commit_more(5, 5_000).unwrap();
    let a0 = s.primary().unwrap();
    s.drop_messages(move |from, to, _| from == a0 as usize && to < R);
    s.run_until(10_000, |s| s.primary().is_some_and(|p| p != a0))
        .unwrap();
    s.commit_more(10, 10_000).unwrap();
}

#[test]
fn c14_partitioned_replica_with_higher_view_cannot_lock_out_clients() {
    // In TigerBeetle the isolated backup bumps its view. Here a backup moves to a view change
    // only on a quorum of votes, so it cannot climb alone; either way, after healing clients
    // are served and the backup rejoins.
    let mut s = Scenario::new(35, 3, 3);
    s.commit_more(5, 5_000).unwrap();
    let b2 = backup(&s, 2);
    let others: Vec<u8> = (0..3).filter(|&r| r != b2).collect();
    s.partition(&[&[b2], &others]);
    s.run(5_000).unwrap();
    assert!(
        s.replica(b2).view() <= s.replica(others[0]).view(),
        "no unilateral climb"
    );
    s.heal();
    s.commit_more(20, 20_000).unwrap();
    s.run_until(20_000, |s| {
        let x = s.replica(b2);
        x.status() == consensus::Status::Normal && x.commit_min() + 5 >= s.commit_max()
    })
    .unwrap();
}

#[test]
fn c18_duel_of_the_primaries() {
    // An isolated old primary and a new primary both think they lead; after healing, the log
    // converges upward and nothing forks (the oracles check every step).
    let mut s = Scenario::new(36, 3, 4);
    s.commit_more(10, 5_000).unwrap();
    let a0 = s.primary().unwrap();
    let others: Vec<u8> = (0..3).filter(|&r| r != a0).collect();
    s.partition(&[&[a0], &others]);
    s.run_until(10_000, |s| s.primary().is_some_and(|p| p != a0))
        .unwrap();
    s.commit_more(10, 10_000).unwrap();
    s.heal();
    let view = s.replica(s.primary().unwrap()).view();
    s.run_until(10_000, |s| {
        s.replica(a0).view() >= view && !s.replica(a0).is_primary()
    })
    .unwrap();
    s.commit_more(10, 10_000).unwrap();
}

#[test]
fn c26_committed_op_corrupt_on_every_replica_stalls_but_stays_safe() {
    // Beyond the atlas: op 1 corrupt everywhere. Replaying needs it, so nobody gets past it,
    // but nothing is forked or invented.
    let mut s = Scenario::new(37, 3, 1);
    s.commit_more(5, 5_000).unwrap();
    s.stop_clients();
    for r in 0..3 {
        s.crash(r);
        assert!(s.corrupt_prepare(r, 1));
    }
    for r in 0..3 {
        s.restart(r);
    }
    s.run(5_000).unwrap();
    for r in 0..3 {
        assert_eq!(
            s.replica(r).commit_min(),
            0,
            "op 1 is unreadable everywhere"
        );
    }
}

#[test]
fn c39_crash_corrupt_committed_pipeline_op_repair_dont_nack() {
    // B1 restarts with its last, committed op corrupt; then the primary crashes. B1's
    // faulty copy must count as "may have acked", so the op survives the view change.
    let mut s = Scenario::new(38, 3, 2);
    s.commit_more(10, 5_000).unwrap();
    s.stop_clients();
    s.run(500).unwrap();
    let a0 = s.primary().unwrap();
    let b1 = backup(&s, 1);
    let last = s.replica(b1).commit_min();
    s.crash(b1);
    assert!(s.corrupt_prepare(b1, last));
    s.restart(b1);
    s.crash(a0);
    s.run_until(10_000, |s| s.primary().is_some()).unwrap();
    s.run(2_000).unwrap();
    // The op committed before stays committed (the agreement oracle would fail otherwise).
    assert!(s.commit_max() >= last);
}

#[test]
fn c44_broken_hash_chain_within_a_view_does_not_stall_commits() {
    // B2 misses one prepare; later prepares jump its head. Repair by hash chain fills the
    // gap and commits continue on B2.
    let mut s = Scenario::new(39, 3, 2);
    s.commit_more(5, 5_000).unwrap();
    let b2 = backup(&s, 2);
    let mut dropped = false;
    s.drop_messages(move |_, to, m| {
        if !dropped && to == b2 as usize && m.header.command.name() == "prepare" {
            dropped = true;
            return true;
        }
        false
    });
    s.commit_more(20, 10_000).unwrap();
    let target = s.commit_max();
    s.run_until(10_000, |s| s.replica(b2).commit_min() >= target)
        .unwrap();
}
