//! The bounded journal ring, checkpoints and state transfer, through the scenario API.

use consensus::storage::{Storage, Zone};
use consensus::Status;
use simulator::options::Options;
use simulator::scenario::Scenario;

/// Ring slots in these tests: a checkpoint every 16 ops, so the ring wraps every 32.
const SLOTS: u64 = 32;

fn scenario(seed: u64, replicas: u8) -> Scenario {
    let mut s = Scenario::new(seed, replicas, 3);
    s.sim.options.journal_slot_count = SLOTS;
    // Rebuild with the small ring (options are read when the cluster is formatted).
    let options: Options = s.sim.options.clone();
    Scenario::with_options(seed, options)
}

fn commit_more(s: &mut Scenario, ops: u64, max: u64) {
    let target = s.commit_max() + ops;
    s.run_until(max, |s| s.commit_max() >= target).unwrap();
}

fn catch_up(s: &mut Scenario, r: u8, max: u64) {
    let target = s.commit_max();
    s.run_until(max, |s| {
        s.sim
            .cluster
            .replica(r)
            .is_some_and(|x| x.commit_min() >= target)
    })
    .unwrap();
}

#[test]
fn the_journal_stays_within_its_ring_and_checkpoints_every_half_ring() {
    let mut s = scenario(31, 3);
    commit_more(&mut s, 10 * SLOTS, 60_000);
    for r in 0..3 {
        let replica = s.replica(r);
        let storage = replica.storage();
        for zone in [Zone::WalHeaders, Zone::WalPrepares] {
            let slots = storage.indices(zone);
            assert!(slots.iter().all(|&slot| slot < SLOTS), "{zone:?} {slots:?}");
        }
        assert!(replica.stats().checkpoints >= 15, "{}", replica.describe());
        let checkpoint = replica.checkpoint_op();
        assert!(checkpoint.is_multiple_of(SLOTS / 2));
        assert!(
            replica.commit_min() >= checkpoint && replica.commit_min() < checkpoint + SLOTS / 2
        );
    }
}

#[test]
fn restart_replays_from_the_checkpoint_after_the_ring_wrapped() {
    let mut s = scenario(32, 3);
    commit_more(&mut s, 4 * SLOTS, 40_000);
    let backup = (s.primary().unwrap() + 1) % 3;
    let checkpoint = s.replica(backup).checkpoint_op();
    assert!(checkpoint >= 2 * SLOTS);
    s.crash(backup);
    s.restart(backup);
    let replica = s.replica(backup);
    // The ops below the checkpoint are gone from the ring: the state came from the checkpoint.
    assert_eq!(replica.checkpoint_op(), checkpoint);
    assert!(replica.commit_min() >= checkpoint);
    assert_eq!(replica.stats().state_syncs, 0);
    catch_up(&mut s, backup, 20_000);
    commit_more(&mut s, SLOTS, 20_000);
}

#[test]
fn replica_left_behind_after_the_ring_wrapped_catches_up_by_state_transfer() {
    let mut s = scenario(33, 3);
    commit_more(&mut s, 10, 10_000);
    let backup = (s.primary().unwrap() + 1) % 3;
    s.crash(backup);
    let behind = s.commit_max();
    // The other two wrap their rings several times: what the backup needs next is gone.
    commit_more(&mut s, 6 * SLOTS, 60_000);
    s.restart(backup);
    assert!(s.replica(backup).commit_min() <= behind);
    catch_up(&mut s, backup, 30_000);
    let replica = s.replica(backup);
    assert!(replica.stats().state_syncs >= 1, "{}", replica.describe());
    commit_more(&mut s, SLOTS, 20_000);
    catch_up(&mut s, backup, 20_000);
}

#[test]
fn replica_that_lost_every_checkpoint_copy_recovers_by_state_transfer() {
    let mut s = scenario(34, 3);
    commit_more(&mut s, 3 * SLOTS, 40_000);
    let backup = (s.primary().unwrap() + 2) % 3;
    s.crash(backup);
    assert_eq!(s.corrupt_checkpoints(backup), 4, "both areas were written");
    s.restart(backup);
    // It cannot execute anything without its checkpoint, and says so.
    assert_eq!(s.replica(backup).status(), Status::Recovering);
    catch_up(&mut s, backup, 30_000);
    let replica = s.replica(backup);
    assert!(replica.stats().state_syncs >= 1);
    assert_ne!(replica.status(), Status::Recovering);
    commit_more(&mut s, SLOTS, 20_000);
    catch_up(&mut s, backup, 20_000);
}

#[test]
fn a_corrupt_checkpoint_copy_is_survived_by_its_twin() {
    let mut s = scenario(35, 3);
    commit_more(&mut s, 2 * SLOTS, 40_000);
    let backup = (s.primary().unwrap() + 1) % 3;
    s.crash(backup);
    // One copy of each area (the current checkpoint is in one of them).
    for index in [0, 2] {
        assert!(s
            .sim
            .cluster
            .storage_mut(backup)
            .corrupt(Zone::Checkpoint, index));
    }
    s.restart(backup);
    let replica = s.replica(backup);
    assert_ne!(replica.status(), Status::Recovering);
    assert!(replica.checkpoint_op() >= SLOTS);
    catch_up(&mut s, backup, 20_000);
}
