//! Scenarios from the TigerBeetle catalogue (docs/scenario-catalogue.md) about
//! the journal ring, checkpoints, WAL repair and state transfer, numbered as there and adapted
//! to this replica: the ring has 32 slots, so a checkpoint is taken at every multiple of 16
//! executed ops (the checkpoint is its own trigger), and no op above checkpoint + 31 is ever
//! written. A replica state-syncs when a peer's checkpoint is beyond its ring, when the commit
//! point (plus a pipeline) is beyond its ring, or when repair makes no progress for a while.

use consensus::wire::{Command, Message};
use consensus::Status;
use simulator::scenario::Scenario;

/// Ring slots: a checkpoint every 16 ops, the ring wraps every 32.
const SLOTS: u64 = 32;
/// Ops between checkpoints (the n-th checkpoint is at op n * INTERVAL).
const INTERVAL: u64 = SLOTS / 2;
/// The replica's pipeline depth (Config::pipeline_max).
const PIPELINE: u64 = 8;

/// A fault-free cluster with the small ring and a disk whose writes complete within
/// `latency` ticks.
fn scenario(seed: u64, replicas: u8, clients: u8, latency: u64) -> Scenario {
    Scenario::configured(seed, replicas, clients, |o| {
        o.journal_slot_count = SLOTS;
        o.write_latency_max_ticks = latency;
    })
}

fn up(s: &Scenario) -> Vec<u8> {
    s.sim.cluster.up().map(|(r, _)| r).collect()
}

/// Every replica that is up is normal, has executed the cluster's commit and holds the same
/// checkpoint.
fn converged(s: &Scenario) -> bool {
    let commit = s.commit_max();
    let mut replicas = s.sim.cluster.up().map(|(_, x)| x);
    let Some(first) = replicas.next() else {
        return false;
    };
    let checkpoint = first.checkpoint_op();
    std::iter::once(first).chain(replicas).all(|x| {
        x.status() == Status::Normal
            && x.commit_min() == commit
            && x.commit_max() == commit
            && x.checkpoint_op() == checkpoint
    })
}

/// No client has a request in flight.
fn clients_idle(s: &Scenario) -> bool {
    s.sim.clients.iter().all(|c| c.in_flight.is_none())
}

/// Stops the clients and runs until their requests are answered and the replicas that are up
/// agree on everything.
fn quiesce(s: &mut Scenario, max: u64) {
    s.stop_clients();
    s.run_until(max, |s| clients_idle(s) && converged(s))
        .unwrap();
    // Nothing more is in flight: the state stays put.
    let commit = s.commit_max();
    s.run(300).unwrap();
    assert_eq!(s.commit_max(), commit);
    assert!(converged(s), "{}", s.describe());
}

fn prepare_op(m: &Message) -> Option<u64> {
    match m.header.command {
        Command::Prepare(p) => Some(p.op),
        _ => None,
    }
}

fn prepare_ok_op(m: &Message) -> Option<u64> {
    match m.header.command {
        Command::PrepareOk(p) => Some(p.op),
        _ => None,
    }
}

// ----- #1 -----

/// A solo replica commits through two checkpoints with no faults.
fn smoke(seed: u64, latency: u64) {
    let mut s = scenario(seed, 1, 2, latency);
    s.run_until(20_000, |s| s.replica(0).commit_min() >= 2 * INTERVAL)
        .unwrap();
    quiesce(&mut s, 5_000);
    let x = s.replica(0);
    let commit = x.commit_min();
    assert!((2 * INTERVAL..3 * INTERVAL).contains(&commit), "{commit}");
    assert_eq!(x.status(), Status::Normal);
    assert_eq!(x.checkpoint_op(), 2 * INTERVAL);
    assert_eq!(x.stats().checkpoints, 2);
    assert_eq!(x.stats().state_syncs, 0);
    assert_eq!(x.storage_faults_found(), 0);
}

#[test]
fn c01_smoke_solo_replica_commits_through_two_checkpoints() {
    smoke(101, 0);
}

#[test]
fn c01_smoke_solo_replica_with_slow_disk() {
    smoke(102, 5);
}

// ----- #15 -----

/// Acks for the checkpoint op and beyond are lost while the primary prepares a full pipeline
/// past it: nothing commits past checkpoint - 1 and no checkpoint is taken. Once acks flow,
/// everything prepared commits and every replica takes the checkpoint.
fn prepare_beyond_checkpoint(seed: u64, latency: u64) {
    // Eight clients: enough requests to fill the pipeline.
    let mut s = scenario(seed, 3, 8, latency);
    let checkpoint = INTERVAL;
    // No op at or beyond the checkpoint op is ever acknowledged.
    s.drop_messages(move |_, _, m| prepare_ok_op(m).is_some_and(|op| op >= checkpoint));
    let a0 = s.primary().unwrap();
    // The primary prepares past the checkpoint op, up to a full pipeline above its commit.
    s.run_until(20_000, |s| s.replica(a0).op() >= checkpoint - 1 + PIPELINE)
        .unwrap();
    s.run(200).unwrap();
    assert_eq!(s.commit_max(), checkpoint - 1);
    let x = s.replica(a0);
    assert_eq!(x.op(), checkpoint - 1 + PIPELINE, "{}", x.describe());
    assert_eq!(x.pipeline_len() as u64, PIPELINE);
    for r in 0..3 {
        let x = s.replica(r);
        assert_eq!(x.commit_min(), checkpoint - 1, "r{r}: {}", x.describe());
        assert_eq!(
            x.checkpoint_op(),
            0,
            "no checkpoint without its op committed"
        );
        assert_eq!(x.stats().checkpoints, 0);
    }
    // Acks flow again: everything prepared commits and the checkpoint is taken everywhere.
    s.clear_drops();
    let prepared = s.replica(a0).op();
    s.run_until(5_000, |s| s.commit_max() >= prepared).unwrap();
    quiesce(&mut s, 10_000);
    for r in 0..3 {
        let x = s.replica(r);
        assert!(x.commit_min() >= prepared);
        assert_eq!(x.checkpoint_op(), checkpoint, "r{r}: {}", x.describe());
        assert_eq!(x.stats().checkpoints, 1);
    }
}

#[test]
fn c15_prepare_beyond_checkpoint_trigger() {
    prepare_beyond_checkpoint(151, 0);
}

#[test]
fn c15_prepare_beyond_checkpoint_trigger_slow_disk() {
    prepare_beyond_checkpoint(152, 5);
}

// ----- #24 -----

/// B1 (the primary of the next view) is isolated early while A0 and B2 pass `checkpoints`
/// checkpoints; then A0 is isolated and B1 rejoins. The cluster must go on and B1 catches
/// up. (TigerBeetle's B1 forfeits; here B1 may lead once it has repaired, or synced during
/// the view change, before choosing the log; a stalled view change moves on to B2's view.)
fn lagging_new_primary(seed: u64, latency: u64, checkpoints: u64) -> (Scenario, u8) {
    let mut s = scenario(seed, 3, 3, latency);
    s.commit_more(2, 5_000).unwrap();
    let a0 = s.primary().unwrap();
    let b1 = (a0 + 1) % 3;
    let b2 = (a0 + 2) % 3;
    s.partition(&[&[b1], &[a0, b2]]);
    let lag = s.replica(b1).commit_min();
    let target = checkpoints * INTERVAL;
    s.run_until(40_000, |s| {
        s.replica(a0).checkpoint_op() >= target && s.replica(b2).checkpoint_op() >= target
    })
    .unwrap();
    assert!(s.replica(b1).commit_min() <= lag + 1);
    assert_eq!(s.replica(b1).checkpoint_op(), 0);
    s.partition(&[&[a0], &[b1, b2]]);
    let commit = s.commit_max();
    s.run_until(30_000, |s| {
        s.primary().is_some_and(|p| p != a0) && s.commit_max() >= commit + 10
    })
    .unwrap();
    s.catch_up(b1, 30_000).unwrap();
    let x = s.replica(b1);
    assert!(x.checkpoint_op() >= target, "{}", x.describe());
    s.heal();
    s.commit_more(10, 20_000).unwrap();
    quiesce(&mut s, 30_000);
    (s, b1)
}

#[test]
fn c24_new_primary_lagging_behind_checkpoint_repairs() {
    // One checkpoint ahead: everything B1 needs is still in the others' rings.
    let (s, b1) = lagging_new_primary(241, 0, 1);
    let x = s.replica(b1);
    assert_eq!(x.stats().state_syncs, 0, "{}", x.describe());
    assert!(x.stats().prepares_repaired >= 1);
}

#[test]
fn c24_new_primary_lagging_two_checkpoints_behind_syncs() {
    // Two checkpoints ahead: the others' checkpoint is beyond B1's ring, so only a state
    // transfer brings it up.
    let (s, b1) = lagging_new_primary(242, 5, 2);
    let x = s.replica(b1);
    assert!(x.stats().state_syncs >= 1, "{}", x.describe());
}

// ----- #28 -----

/// After the first checkpoint, every prepare of R0 from its checkpoint to its head reads back
/// corrupt; R0 restarts, repairs them (no state sync) and is normal again; then R1 stops and
/// R0 and R2 alone go on committing.
fn corrupt_checkpoint_to_head(seed: u64, latency: u64) {
    let mut s = scenario(seed, 3, 3, latency);
    s.run_until(20_000, |s| s.commit_max() >= INTERVAL + 6)
        .unwrap();
    quiesce(&mut s, 10_000);
    // R0 is the primary: its restart also forces a view change.
    let r0 = s.primary().unwrap();
    let checkpoint = s.replica(r0).checkpoint_op();
    let head = s.replica(r0).op();
    assert_eq!(checkpoint, INTERVAL);
    assert!(head > checkpoint + 5);
    s.crash(r0);
    for op in checkpoint..=head {
        assert!(s.corrupt_prepare(r0, op), "op {op}");
    }
    s.restart(r0);
    let x = s.replica(r0);
    assert!(
        x.storage_faults_found() >= head - checkpoint,
        "{}",
        x.describe()
    );
    assert!(x.commit_min() < head, "it cannot replay past the faults");
    // The next requests: R0 repairs and is normal with the cluster.
    s.resume_clients();
    s.run_until(20_000, |s| {
        let x = s.replica(r0);
        x.status() == Status::Normal && x.commit_min() >= head + 3
    })
    .unwrap();
    let x = s.replica(r0);
    assert_eq!(x.stats().state_syncs, 0, "repaired, not synced");
    assert!(x.stats().prepares_repaired >= head - checkpoint);
    for op in checkpoint + 1..=head {
        assert!(
            x.prepare(op).is_some(),
            "op {op} repaired: {}",
            x.describe()
        );
    }
    // R1 stops: R0 and R2 alone must go on, which needs R0's repaired log.
    let r1 = (r0 + 1) % 3;
    s.crash(r1);
    s.commit_more(20, 20_000).unwrap();
    s.restart(r1);
    quiesce(&mut s, 20_000);
}

#[test]
fn c28_corrupt_checkpoint_to_head_repairs_and_keeps_committing() {
    corrupt_checkpoint_to_head(281, 0);
}

#[test]
fn c28_corrupt_checkpoint_to_head_slow_disk() {
    corrupt_checkpoint_to_head(282, 5);
}

// ----- #38 -----

/// B2 is down (holding checkpoint `from`) while the others take the next checkpoint and start
/// reusing the ring, but not beyond what B2 can still fetch: the commit point (plus a
/// pipeline) stays within B2's ring and every op it needs is still in the others' rings.
fn backup_fast_forward_one_checkpoint(seed: u64, latency: u64, from: u64) {
    let mut s = scenario(seed, 3, 3, latency);
    let b2 = (s.primary().unwrap() + 2) % 3;
    if from == 0 {
        s.commit_more(3, 5_000).unwrap();
    } else {
        s.run_until(20_000, |s| s.replica(b2).checkpoint_op() == from)
            .unwrap();
    }
    assert_eq!(s.replica(b2).checkpoint_op(), from);
    let head = s.replica(b2).op();
    assert!(head < from + PIPELINE);
    s.crash(b2);
    let next = from + INTERVAL;
    s.run_until(20_000, |s| s.commit_max() >= next + 2).unwrap();
    quiesce(&mut s, 10_000);
    let commit = s.commit_max();
    // B2's ring ends at from + SLOTS - 1.
    assert!(commit + PIPELINE < from + SLOTS, "{commit}");
    for r in up(&s) {
        assert_eq!(s.replica(r).checkpoint_op(), next);
    }
    s.restart(b2);
    s.catch_up(b2, 20_000).unwrap();
    let x = s.replica(b2);
    assert_eq!(
        x.stats().state_syncs,
        0,
        "WAL repair alone: {}",
        x.describe()
    );
    assert_eq!(x.checkpoint_op(), next);
    assert_eq!(x.commit_min(), commit);
    for op in head + 1..=commit {
        assert!(
            x.prepare(op).is_some(),
            "op {op} repaired: {}",
            x.describe()
        );
    }
    s.resume_clients();
    s.commit_more(10, 10_000).unwrap();
    quiesce(&mut s, 10_000);
}

#[test]
fn c38_backup_fast_forwards_first_checkpoint_by_wal_repair() {
    backup_fast_forward_one_checkpoint(380, 0, 0);
}

#[test]
fn c38_backup_fast_forwards_one_checkpoint_by_wal_repair() {
    backup_fast_forward_one_checkpoint(381, 0, INTERVAL);
}

#[test]
fn c38_backup_fast_forwards_one_checkpoint_slow_disk() {
    backup_fast_forward_one_checkpoint(382, 5, INTERVAL);
}

// ----- #42 / #43 -----

/// B2 is absent (R=3) or there is none (R=2). A0 takes checkpoint `n`; B1 crashes short of it
/// with corrupt slots (its newest executed op, and the slot the next ops wrap into); A0
/// prepares on alone. B1 restarts, repairs from A0, and both commit the same ops.
fn backup_crash_before_checkpoint(seed: u64, replicas: u8, n: u64, latency: u64) {
    let mut s = scenario(seed, replicas, 8, latency);
    s.commit_more(2, 5_000).unwrap();
    let a0 = s.primary().unwrap();
    let b1 = (a0 + 1) % replicas;
    if replicas == 3 {
        s.crash((a0 + 2) % 3);
    }
    let checkpoint = n * INTERVAL;
    s.run_until(20_000, |s| s.replica(a0).commit_min() >= checkpoint)
        .unwrap();
    assert_eq!(s.replica(a0).checkpoint_op(), checkpoint);
    let x = s.replica(b1);
    let executed = x.commit_min();
    assert!(executed < checkpoint, "{}", x.describe());
    assert_eq!(x.checkpoint_op(), checkpoint - INTERVAL);
    s.crash(b1);
    assert!(s.corrupt_prepare(b1, executed));
    // The slot the ops after the checkpoint wrap into (it holds an op below B1's checkpoint
    // when n >= 2).
    assert!(s.corrupt_prepare(b1, checkpoint + 1) || n < 2);
    // A0 prepares on without B1 (not long enough to abdicate): half a pipeline at least (a
    // client whose request timed out may be trying B1 meanwhile).
    s.run_until(200, |s| s.replica(a0).pipeline_len() as u64 >= PIPELINE / 2)
        .unwrap();
    let prepared = s.replica(a0).op();
    assert_eq!(s.commit_max(), s.replica(a0).commit_min());
    s.restart(b1);
    let x = s.replica(b1);
    assert!(x.storage_faults_found() >= 1, "{}", x.describe());
    assert!(x.commit_min() < executed, "it cannot replay op {executed}");
    s.run_until(20_000, |s| {
        s.replica(a0).commit_min() >= prepared && s.replica(b1).commit_min() >= prepared
    })
    .unwrap();
    s.stop_clients();
    s.run_until(10_000, |s| {
        s.replica(b1).commit_min() == s.commit_max() && s.replica(a0).commit_min() == s.commit_max()
    })
    .unwrap();
    let x = s.replica(b1);
    assert_eq!(x.stats().state_syncs, 0, "no state sync needed");
    // Repaired from A0 (the slot is not reused before op executed + 32).
    assert!(x.prepare(executed).is_some(), "{}", x.describe());
    assert_eq!(x.checkpoint_op(), s.replica(a0).checkpoint_op());
    assert!(x.checkpoint_op() >= checkpoint);
    if replicas == 3 {
        s.restart((a0 + 2) % 3);
    }
    quiesce(&mut s, 20_000);
}

#[test]
fn c42_backup_crashes_before_checkpoint_primary_prepares_on() {
    backup_crash_before_checkpoint(421, 3, 1, 0);
}

#[test]
fn c42_backup_crashes_before_second_checkpoint_slow_disk() {
    backup_crash_before_checkpoint(422, 3, 2, 5);
}

#[test]
fn c43_two_replicas_primary_checkpoints_backup_lags() {
    backup_crash_before_checkpoint(431, 2, 2, 0);
}

#[test]
fn c43_two_replicas_slow_disk() {
    backup_crash_before_checkpoint(432, 2, 1, 5);
}

// ----- #45 -----

/// R2 is isolated while the others pass two checkpoints (their checkpoint is beyond R2's
/// ring), with clients running on or idle when it returns: R2 state-syncs, everyone
/// converges, and the whole cluster takes the next checkpoint.
fn partition_lag_sync(seed: u64, latency: u64, idle: bool) {
    let mut s = scenario(seed, 3, 3, latency);
    s.commit_more(3, 5_000).unwrap();
    let r2 = (s.primary().unwrap() + 2) % 3;
    let others: Vec<u8> = (0..3).filter(|&r| r != r2).collect();
    s.partition(&[&[r2], &others]);
    let lag = s.replica(r2).commit_min();
    s.run_until(40_000, |s| {
        others
            .iter()
            .all(|&r| s.replica(r).checkpoint_op() >= 2 * INTERVAL)
    })
    .unwrap();
    assert!(s.replica(r2).commit_min() <= lag + 1);
    if idle {
        s.stop_clients();
        s.run(500).unwrap();
    }
    s.heal();
    s.catch_up(r2, 20_000).unwrap();
    let x = s.replica(r2);
    assert!(x.stats().state_syncs >= 1, "{}", x.describe());
    assert!(x.checkpoint_op() >= 2 * INTERVAL);
    if idle {
        s.run_until(10_000, converged).unwrap();
    } else {
        quiesce(&mut s, 20_000);
    }
    // The whole cluster goes on through the next checkpoint.
    let next = (s.replica(r2).checkpoint_op() / INTERVAL + 1) * INTERVAL;
    s.resume_clients();
    s.run_until(30_000, |s| {
        (0..3).all(|r| s.replica(r).checkpoint_op() >= next)
    })
    .unwrap();
    quiesce(&mut s, 20_000);
}

#[test]
fn c45_partition_lag_sync_clients_running() {
    partition_lag_sync(451, 0, false);
}

#[test]
fn c45_partition_lag_sync_from_idle() {
    partition_lag_sync(452, 0, true);
}

#[test]
fn c45_partition_lag_sync_from_idle_slow_disk() {
    partition_lag_sync(453, 5, true);
}

// ----- #46 -----

/// In TigerBeetle R=4 with two replicas down still commits (flexible quorums). Here quorums
/// are majorities, so two lagging replicas need five: three ahead and idle, two syncing.
fn two_lagging_sync(seed: u64, latency: u64) {
    let mut s = scenario(seed, 5, 4, latency);
    s.commit_more(3, 5_000).unwrap();
    let a0 = s.primary().unwrap();
    let lagging = [(a0 + 3) % 5, (a0 + 4) % 5];
    for r in lagging {
        s.crash(r);
    }
    s.run_until(40_000, |s| {
        up(s)
            .iter()
            .all(|&r| s.replica(r).checkpoint_op() >= 2 * INTERVAL)
    })
    .unwrap();
    quiesce(&mut s, 10_000);
    for r in lagging {
        s.restart(r);
    }
    s.run_until(30_000, converged).unwrap();
    for r in lagging {
        let x = s.replica(r);
        assert!(x.stats().state_syncs >= 1, "r{r}: {}", x.describe());
    }
    let checkpoint = s.replica(a0).checkpoint_op();
    assert!(checkpoint >= 2 * INTERVAL);
    for r in 0..5 {
        assert_eq!(s.replica(r).checkpoint_op(), checkpoint);
    }
}

#[test]
fn c46_five_replicas_two_lagging_both_sync() {
    two_lagging_sync(461, 0);
}

#[test]
fn c46_five_replicas_two_lagging_both_sync_slow_disk() {
    two_lagging_sync(462, 5);
}

// ----- #47 -----

/// B2 is down while A0 and B1 pass two checkpoints; A0 is cut off as B2 returns, so the
/// view change needs B2, which needs a state transfer. While start_view is lost no view
/// forms and nothing commits; then B2 syncs, the view forms without A0 and commits go on.
fn view_change_with_lagging_replica(seed: u64, latency: u64) {
    let mut s = scenario(seed, 3, 3, latency);
    s.commit_more(3, 5_000).unwrap();
    let a0 = s.primary().unwrap();
    let b1 = (a0 + 1) % 3;
    let b2 = (a0 + 2) % 3;
    s.crash(b2);
    s.run_until(40_000, |s| {
        s.replica(a0).checkpoint_op() >= 2 * INTERVAL
            && s.replica(b1).checkpoint_op() >= 2 * INTERVAL
    })
    .unwrap();
    // A0 is cut off just as B2, which needs a state transfer, comes back: the view change
    // needs B2. While start_view messages are lost nothing commits.
    s.partition(&[&[a0], &[b1, b2]]);
    s.drop_command("start_view");
    s.restart(b2);
    let commit = s.commit_max();
    s.run(3_000).unwrap();
    assert_eq!(s.commit_max(), commit, "{}", s.describe());
    // Whichever leads, the other never hears its start_view.
    let (x1, x2) = (s.replica(b1), s.replica(b2));
    assert!(
        x1.status() != Status::Normal || x2.status() != Status::Normal || x1.view() != x2.view(),
        "{}",
        s.describe()
    );
    // start_view passes: B1 and B2 (synced, during the view change or now) form the view.
    s.clear_drops();
    s.run_until(20_000, |s| {
        s.primary().is_some_and(|p| p != a0) && s.commit_max() >= commit + 10
    })
    .unwrap();
    s.catch_up(b2, 20_000).unwrap();
    let x = s.replica(b2);
    assert!(x.stats().state_syncs >= 1, "{}", x.describe());
    s.heal();
    s.commit_more(10, 20_000).unwrap();
    quiesce(&mut s, 20_000);
}

#[test]
fn c47_view_change_with_lagging_replica_that_must_sync() {
    view_change_with_lagging_replica(471, 0);
}

#[test]
fn c47_view_change_with_lagging_replica_slow_disk() {
    view_change_with_lagging_replica(472, 5);
}

// ----- #48 -----

/// B2 is only slightly behind (everything it needs is within its ring), but the prepare of
/// the others' checkpoint op is corrupt on both of them: B2 must state-sync rather than wait
/// for a prepare nobody can send.
fn slightly_lagging_replica(seed: u64, latency: u64) {
    let mut s = scenario(seed, 3, 3, latency);
    s.commit_more(3, 5_000).unwrap();
    let b2 = (s.primary().unwrap() + 2) % 3;
    s.crash(b2);
    let others: Vec<u8> = (0..3).filter(|&r| r != b2).collect();
    // The others pass the first checkpoint but stay well within B2's ring: B2 could catch
    // up by repair alone.
    s.run_until(20_000, |s| s.commit_max() >= INTERVAL + 2)
        .unwrap();
    quiesce(&mut s, 10_000);
    let commit = s.commit_max();
    assert!(commit + PIPELINE < SLOTS - 1, "{commit}");
    // ... except that the checkpoint op's prepare is corrupt on both healthy replicas (they
    // never need it again: it is at their checkpoint).
    for &r in &others {
        assert_eq!(s.replica(r).checkpoint_op(), INTERVAL);
        assert!(s.corrupt_prepare(r, INTERVAL));
    }
    s.restart(b2);
    s.catch_up(b2, 20_000).unwrap();
    let x = s.replica(b2);
    assert!(x.stats().state_syncs >= 1, "{}", x.describe());
    assert_eq!(x.checkpoint_op(), INTERVAL);
    s.resume_clients();
    s.commit_more(2 * INTERVAL, 30_000).unwrap();
    quiesce(&mut s, 20_000);
}

#[test]
fn c48_slightly_lagging_replica_syncs_past_irreparable_prepare() {
    slightly_lagging_replica(481, 0);
}

#[test]
fn c48_slightly_lagging_replica_slow_disk() {
    slightly_lagging_replica(482, 5);
}

// ----- #50 -----

/// R=5 (a quorum of three can truncate what two replicas hold). A0 prepares ops across a
/// checkpoint op that only B1 receives and nobody acknowledges; the other three change view
/// without them, truncate those ops and commit a different history past that checkpoint.
///
/// Plain lag: the others go on past two more checkpoints, beyond B1's ring (and the ops B1
/// needs are overwritten in theirs), so B1 must state-sync; it survives a restart and
/// converges. (B1 learns the new commit point only in the new view, so its start_view
/// replaces the abandoned suffix before any sync.)
///
/// `lost_checkpoint`: the others stop short of the next checkpoint, and B1 restarts with
/// every checkpoint copy unreadable, so it must sync while still holding the abandoned ops:
/// the synced checkpoint (committed in the newer view) does not connect to them and they
/// are truncated.
fn checkpoint_from_newer_view(seed: u64, latency: u64, lost_checkpoint: bool) {
    let mut s = scenario(seed, 5, 8, latency);
    let a0 = s.primary().unwrap();
    // Not the primary of the next view.
    let b1 = (a0 + 4) % 5;
    let rest: Vec<u8> = (0..5).filter(|&r| r != a0 && r != b1).collect();
    let crossed = if lost_checkpoint { 2 } else { 1 } * INTERVAL;
    let base = crossed - 4;
    s.drop_messages(move |_, to, m| {
        prepare_ok_op(m).is_some_and(|op| op > base)
            || prepare_op(m).is_some_and(|op| op > base && to != b1 as usize)
    });
    s.run_until(20_000, |s| {
        s.replica(a0).op() >= base + PIPELINE && s.replica(b1).op() >= base + PIPELINE
    })
    .unwrap();
    assert_eq!(s.commit_max(), base);
    assert_eq!(s.replica(b1).checkpoint_op(), crossed - INTERVAL);
    let old = *s.replica(b1).header(crossed + 1).unwrap();
    // The other three change view without A0 and B1 and commit past the checkpoint op.
    s.partition(&[&[a0, b1], &rest]);
    s.clear_drops();
    s.run_until(40_000, |s| {
        rest.iter()
            .all(|&r| s.replica(r).checkpoint_op() == crossed)
            && s.commit_max() >= crossed + 2
    })
    .unwrap();
    let new = *s.replica(rest[0]).header(crossed + 1).unwrap();
    assert_ne!(old.checksum, new.checksum, "a different history");
    // Plain lag: far enough that the ops B1 needs are overwritten in every other ring.
    let target = if lost_checkpoint {
        crossed
    } else {
        crossed + 2 * INTERVAL
    };
    s.run_until(40_000, |s| {
        rest.iter().all(|&r| s.replica(r).checkpoint_op() == target) && s.commit_max() >= target + 2
    })
    .unwrap();
    s.stop_clients();
    s.run_until(10_000, |s| {
        clients_idle(s)
            && rest
                .iter()
                .all(|&r| s.replica(r).commit_min() == s.commit_max())
    })
    .unwrap();
    let commit = s.commit_max();
    assert!(commit < target + INTERVAL, "{commit}");
    assert!(s.replica(rest[0]).view() > s.replica(b1).log_view());
    assert_eq!(s.replica(b1).checkpoint_op(), crossed - INTERVAL);
    if lost_checkpoint {
        s.crash(b1);
        assert!(s.corrupt_checkpoints(b1) >= 2);
    }
    // B1 rejoins (A0 stays away).
    s.partition(&[&[a0], &[b1, rest[0], rest[1], rest[2]]]);
    if lost_checkpoint {
        s.restart(b1);
        assert_eq!(s.replica(b1).status(), Status::Recovering);
        assert_eq!(
            s.replica(b1).op(),
            base + PIPELINE,
            "the abandoned ops are there"
        );
    }
    s.catch_up(b1, 20_000).unwrap();
    let x = s.replica(b1);
    assert!(x.stats().state_syncs >= 1, "{}", x.describe());
    if lost_checkpoint {
        // Ops crossed + 1 ..= base + PIPELINE did not chain to the synced checkpoint.
        assert_eq!(x.stats().ops_truncated, base + PIPELINE - crossed);
        assert_eq!(x.header(crossed + 1).unwrap().checksum, new.checksum);
    }
    assert_eq!(x.checkpoint_op(), target);
    let head = s.replica(rest[0]).header(commit).unwrap().checksum;
    assert_eq!(x.header(commit).unwrap().checksum, head);
    // It survives a restart.
    s.crash(b1);
    s.restart(b1);
    let x = s.replica(b1);
    assert_eq!(x.checkpoint_op(), target);
    assert_ne!(x.status(), Status::Recovering);
    s.catch_up(b1, 20_000).unwrap();
    s.heal();
    s.resume_clients();
    s.commit_more(INTERVAL, 30_000).unwrap();
    quiesce(&mut s, 30_000);
}

#[test]
fn c50_checkpoint_from_a_newer_view() {
    checkpoint_from_newer_view(501, 0, false);
}

#[test]
fn c50_checkpoint_from_a_newer_view_slow_disk() {
    checkpoint_from_newer_view(502, 5, false);
}

#[test]
fn c50_checkpoint_from_a_newer_view_truncates_abandoned_log() {
    checkpoint_from_newer_view(503, 0, true);
}

#[test]
fn c50_checkpoint_from_a_newer_view_truncates_abandoned_log_slow_disk() {
    checkpoint_from_newer_view(504, 5, true);
}

/// A new checkpoint is written beside the durable one, never over it: until the superblock
/// names the new one, the old one is what a restart opens from. A solo replica's crash loses
/// the superblock write of its second checkpoint; it must reopen from its first.
#[test]
fn a_new_checkpoint_never_overwrites_the_durable_one() {
    use consensus::storage::Zone;
    const COPIES: u64 = consensus::superblock::SUPERBLOCK_COPIES;
    let mut s = scenario(104, 1, 2, 3);
    s.run_until(40_000, |s| {
        // The second checkpoint was just taken: no copy of its superblock write is durable.
        let storage = s.sim.cluster.storage(0);
        let copies = (0..COPIES)
            .filter(|&copy| storage.is_pending_at(Zone::Superblock, copy))
            .count() as u64;
        s.replica(0).checkpoint_op() == 2 * INTERVAL && copies == COPIES
    })
    .unwrap();
    // The superblock's writes (the newest ones) are lost; the checkpoint's own writes land.
    assert_eq!(
        s.sim.cluster.storage_mut(0).tear(COPIES as usize),
        COPIES as usize
    );
    s.crash(0);
    s.restart(0);
    assert!(
        s.sim.cluster.is_up(0),
        "the replica refused to open: its durable checkpoint was overwritten"
    );
    // It opened from the first checkpoint and replayed its journal past the second (taken
    // again on the way).
    assert!(s.replica(0).commit_min() >= 2 * INTERVAL);
    let commit = s.commit_max();
    s.run_until(20_000, |s| s.replica(0).commit_min() > commit + INTERVAL)
        .unwrap();
}
