//! The bounded journal ring, checkpoints and state transfer, through the scenario API.

use consensus::storage::{Storage, Zone};
use consensus::Status;
use simulator::scenario::Scenario;

/// Ring slots in these tests: a checkpoint every 16 ops, so the ring wraps every 32.
const SLOTS: u64 = 32;

fn scenario(seed: u64, replicas: u8) -> Scenario {
    Scenario::configured(seed, replicas, 3, |o| o.journal_slot_count = SLOTS)
}

#[test]
fn the_journal_stays_within_its_ring_and_checkpoints_every_half_ring() {
    let mut s = scenario(31, 3);
    s.commit_more(10 * SLOTS, 60_000).unwrap();
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
    s.commit_more(4 * SLOTS, 40_000).unwrap();
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
    s.catch_up(backup, 20_000).unwrap();
    s.commit_more(SLOTS, 20_000).unwrap();
}

#[test]
fn replica_left_behind_after_the_ring_wrapped_catches_up_by_state_transfer() {
    let mut s = scenario(33, 3);
    s.commit_more(10, 10_000).unwrap();
    let backup = (s.primary().unwrap() + 1) % 3;
    s.crash(backup);
    let behind = s.commit_max();
    // The other two wrap their rings several times: what the backup needs next is gone.
    s.commit_more(6 * SLOTS, 60_000).unwrap();
    s.restart(backup);
    assert!(s.replica(backup).commit_min() <= behind);
    s.catch_up(backup, 30_000).unwrap();
    let replica = s.replica(backup);
    assert!(replica.stats().state_syncs >= 1, "{}", replica.describe());
    s.commit_more(SLOTS, 20_000).unwrap();
    s.catch_up(backup, 20_000).unwrap();
}

#[test]
fn replica_that_lost_every_checkpoint_copy_recovers_by_state_transfer() {
    let mut s = scenario(34, 3);
    s.commit_more(3 * SLOTS, 40_000).unwrap();
    let backup = (s.primary().unwrap() + 2) % 3;
    s.crash(backup);
    assert_eq!(s.corrupt_checkpoints(backup), 4, "both areas were written");
    s.restart(backup);
    // It cannot execute anything without its checkpoint, and says so.
    assert_eq!(s.replica(backup).status(), Status::Recovering);
    s.catch_up(backup, 30_000).unwrap();
    let replica = s.replica(backup);
    assert!(replica.stats().state_syncs >= 1);
    assert_ne!(replica.status(), Status::Recovering);
    s.commit_more(SLOTS, 20_000).unwrap();
    s.catch_up(backup, 20_000).unwrap();
}

#[test]
fn a_corrupt_checkpoint_copy_is_survived_by_its_twin() {
    let mut s = scenario(35, 3);
    s.commit_more(2 * SLOTS, 40_000).unwrap();
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
    s.catch_up(backup, 20_000).unwrap();
}

#[test]
fn a_transfer_survives_its_source_checkpointing_again_mid_transfer() {
    // Checkpoints travel in 64-byte chunks, so a transfer spans dozens of messages. The chunks
    // stop reaching the receiver after its first few, until its sources have checkpointed
    // again: the transfer must still finish (the source keeps serving the checkpoint it
    // began, or the receiver starts over on the new one). Before, the receiver ignored every
    // chunk of the newer checkpoint, stayed pinned to its source, and never caught up.
    let mut s = Scenario::configured(36, 3, 3, |o| {
        o.journal_slot_count = SLOTS;
        o.sync_chunk_size = 64;
    });
    s.commit_more(10, 10_000).unwrap();
    let backup = (s.primary().unwrap() + 1) % 3;
    let others: Vec<u8> = (0..3).filter(|&r| r != backup).collect();
    s.crash(backup);
    s.commit_more(6 * SLOTS, 60_000).unwrap();
    let chunks = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let counted = chunks.clone();
    let to_backup = backup as usize;
    s.drop_messages(move |_, to, m| {
        let chunk = to == to_backup && m.header.command.name() == "sync_checkpoint";
        counted.set(counted.get() + chunk as u32);
        chunk && counted.get() > 3
    });
    s.restart(backup);
    let syncs_before = s.replica(backup).stats().state_syncs;
    s.run_until(10_000, |_| chunks.get() > 3).unwrap();
    let checkpoints: Vec<u64> = others
        .iter()
        .map(|&r| s.replica(r).checkpoint_op())
        .collect();
    s.run_until(20_000, |s| {
        others
            .iter()
            .zip(&checkpoints)
            .all(|(&r, &before)| s.replica(r).checkpoint_op() > before)
    })
    .unwrap();
    s.clear_drops();
    s.catch_up(backup, 30_000).unwrap();
    let replica = s.replica(backup);
    assert!(
        replica.stats().state_syncs > syncs_before,
        "{}",
        replica.describe()
    );
}

#[test]
fn a_replica_never_claims_a_view_log_its_ring_cannot_hold() {
    // B lags (its ring ends at op 63) and hears nothing of its peers' checkpoints. P's view
    // ends with ops beyond B's ring; A leads the next view, whose log B's ring cannot hold.
    // B must not join that view with the part its ring holds: its record (the new log_view,
    // a shorter op) would outrank the older records that hold the rest, some of it
    // committed, in a later view change (seed 400918 lost op 128 that way). It syncs first.
    let mut s = Scenario::configured(37, 3, 3, |o| o.journal_slot_count = SLOTS);
    s.commit_more(5, 10_000).unwrap();
    let p = s.primary().unwrap();
    let (a, b) = ((p + 1) % 3, (p + 2) % 3);
    s.catch_up(b, 10_000).unwrap();
    let ring_end = s.replica(b).checkpoint_op() + SLOTS - 1;
    let bu = b as usize;
    s.drop_messages(move |from, to, _| from == bu || to == bu);
    s.run_until(40_000, |s| s.replica(p).op() > ring_end + 2)
        .unwrap();
    // B hears the view change, but no ping, pong or commit that would tell it of its peers'
    // checkpoints (it would then sync before the start_view arrives).
    s.drop_messages(move |_, to, m| {
        to == bu && matches!(m.header.command.name(), "ping" | "pong" | "commit")
    });
    let view = s.replica(p).view();
    s.crash(p);
    s.run_until(20_000, |s| {
        let x = s.replica(a);
        x.status() == consensus::Status::Normal && x.view() > view
    })
    .unwrap();
    let head = s.replica(a).op();
    assert!(head > ring_end);
    for _ in 0..2_000 {
        s.run(1).unwrap();
        let x = s.replica(b);
        assert!(
            !(x.status() == consensus::Status::Normal && x.log_view() > view && x.op() < head),
            "B joined the view holding only up to op {} of {head}: {}",
            x.op(),
            x.describe()
        );
    }
    // Told of the checkpoints again, B syncs, installs the view's log whole, and catches up.
    s.clear_drops();
    s.restart(p);
    s.catch_up(b, 30_000).unwrap();
}
