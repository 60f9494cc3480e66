//! Scripted unit tests of one backup replica, driven through its handlers with state set
//! by hand: execution waits for a proven chain, repair takes only a vouched head, a state
//! transfer ignores a checkpoint older than it needs, lets go of a silent peer, and moves the
//! replica up to the view its checkpoint came from.

use super::test_support::{formatted, prepare, TestReplica, CLUSTER};
use super::*;

/// Replica 1 of 3, a backup in normal status in view 0, freshly formatted.
fn backup() -> TestReplica {
    let replica = formatted(1);
    assert!(replica.status == Status::Normal && !replica.is_primary());
    replica
}

/// Execution needs the log proven by hash chain from the head (N4): a head whose parent
/// is not the prepare this replica holds below it (say a stale prepare came back at that
/// op from an older view) proves nothing below, so nothing is executed, not even the ops
/// that do chain to what was executed. A chain check that looked at ops alone would
/// execute the stale prepare: here the paired assertion in `execute` trips on it.
#[test]
fn execution_waits_for_a_log_proven_from_the_head() {
    let mut replica = backup();
    let root = replica.journal.checksum(0).expect("the root");
    let one = prepare(0, 1, root);
    let stale_two = prepare(0, 2, one.header.checksum);
    // The head links to another op 2 than the one held here.
    let three = prepare(0, 3, stale_two.header.checksum ^ 1);
    for message in [&one, &stale_two, &three] {
        replica.journal.write_prepare(&mut replica.storage, message);
    }
    replica.op = 3;
    replica.commit_max = 3;
    replica.commit_journal();
    assert_eq!(replica.chain_floor(), 3, "{}", replica.describe());
    assert_eq!(replica.commit_min, 0, "{}", replica.describe());
    // Once op 3 links to the op 2 held here, the chain is proven to the root and
    // every op executes.
    let three = prepare(0, 3, stale_two.header.checksum);
    replica.journal.write_prepare(&mut replica.storage, &three);
    assert!(replica.chain_floor() <= replica.commit_min);
    replica.commit_journal();
    assert_eq!(replica.commit_min, 3, "{}", replica.describe());
}

/// A Headers message of view 0 from replica 0 carrying `headers`.
fn headers_message(headers: &[Header]) -> Message {
    Message::new(
        Header::new(CLUSTER, 0, 0, Command::Headers),
        crate::wire::encode_header_list(headers),
    )
}

/// A backup that learned commit_max from its primary's commit message, with the
/// checksum of the op there, takes a new head above its log only if it is that very
/// header: any other header at commit_max (stale, or from another view's log) would
/// become its head, and execution trusts the chain below a head.
#[test]
fn repair_takes_a_new_head_only_if_it_is_the_header_the_primary_vouched_for() {
    let mut replica = backup();
    let root = replica.journal.checksum(0).expect("the root");
    let one = prepare(0, 1, root);
    let vouched = prepare(0, 2, one.header.checksum);
    let other = prepare(0, 2, one.header.checksum ^ 1);
    replica.journal.write_prepare(&mut replica.storage, &one);
    replica.op = 1;
    replica.commit_max = 2;
    replica.commit_max_checksum = Some(vouched.header.checksum);
    replica.on_headers(&headers_message(&[other.header]));
    assert_eq!(replica.op, 1, "{}", replica.describe());
    assert_eq!(replica.journal.checksum(2), None);
    replica.on_headers(&headers_message(&[vouched.header]));
    assert_eq!(replica.op, 2, "{}", replica.describe());
    assert_eq!(replica.journal.checksum(2), Some(vouched.header.checksum));
}

/// A replica that needs a checkpoint at `op_min` or newer ignores a chunk of an older one
/// (a delayed or replayed answer): it neither starts a transfer of it (which, while the
/// replica lost its own checkpoint, would install a checkpoint older than the one it
/// lost) nor takes the peer for one that holds what it needs.
#[test]
fn a_state_transfer_ignores_a_checkpoint_older_than_it_needs() {
    use crate::wire::SyncCheckpoint;
    let mut replica = backup();
    replica.sync_required = Some(40);
    let chunk = |op: u64| {
        let c = SyncCheckpoint {
            checkpoint_checksum: 99,
            checkpoint_op: op,
            size: 200,
            offset: 0,
        };
        Message::new(
            Header::new(CLUSTER, 0, 0, Command::SyncCheckpoint(c)),
            bytes::Bytes::from(vec![0u8; 100]),
        )
    };
    replica.on_sync_checkpoint(&chunk(20));
    assert!(replica.sync.is_none(), "{}", replica.describe());
    assert_eq!(replica.peer_checkpoint[0], 0);
    // One at the op needed starts a transfer.
    replica.on_sync_checkpoint(&chunk(40));
    assert!(replica.sync.is_some(), "{}", replica.describe());
    assert_eq!(replica.peer_checkpoint[0], 40);
}

/// A transfer pinned to the peer serving its checkpoint lets go of that peer once it stops
/// answering (it crashed, or is cut off for good), so the next round asks another: pinned
/// forever, a replica that needs a checkpoint would never get one.
#[test]
fn a_state_transfer_lets_go_of_a_peer_that_stopped_answering() {
    use crate::wire::SyncCheckpoint;
    let mut replica = backup();
    replica.sync_required = Some(40);
    let c = SyncCheckpoint {
        checkpoint_checksum: 99,
        checkpoint_op: 40,
        size: 200,
        offset: 0,
    };
    let first_chunk = Message::new(
        Header::new(CLUSTER, 0, 0, Command::SyncCheckpoint(c)),
        bytes::Bytes::from(vec![0u8; 100]),
    );
    replica.on_sync_checkpoint(&first_chunk);
    assert!(replica.sync.is_some(), "{}", replica.describe());
    for _ in 0..1_000 {
        replica.sync_tick();
    }
    assert!(
        replica.sync.is_none(),
        "still pinned: {}",
        replica.describe()
    );
}

/// A checkpoint installed by state transfer may hold ops committed in a view as late as the
/// one it was received in: a replica of an older view moves up to that view (a view change),
/// or it would go on taking the older view's start_views and prepares, which may predate the
/// checkpoint it now holds.
#[test]
fn a_checkpoint_received_in_a_newer_view_moves_the_replica_to_that_view() {
    let mut replica = backup();
    let root = replica.journal.checksum(0).expect("the root");
    let one = prepare(0, 1, root);
    let checkpoint = crate::checkpoint::Checkpoint::new(
        &one.header,
        &replica.state_machine.snapshot(),
        &replica.client_table.snapshot(),
    );
    assert!(replica.install_synced_checkpoint(checkpoint, 3));
    assert_eq!(replica.commit_min, 1, "{}", replica.describe());
    assert_eq!(replica.view, 3, "{}", replica.describe());
    assert_eq!(replica.status, Status::ViewChange);
}
