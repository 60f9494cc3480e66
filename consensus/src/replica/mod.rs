//! The VSR replica: a sans-I/O state machine. Messages, ticks and storage completions go in;
//! sends and replies come out through `outbox`. It persists through a `Storage` it owns and
//! executes committed ops on a `StateMachine`.
//!
//! Writes are asynchronous: an action leaves the outbox only once every write submitted before
//! it is durable (`on_storage_done`). So a prepare_ok never precedes its prepare's write, and
//! no message of a new view precedes the superblock that records the view (V1, V2), while the
//! replica itself goes on working against its cache.
//!
//! Files: `normal.rs` (requests, prepares, acks, commits), `execute.rs` (executing committed
//! ops, replies), `view_change.rs` (SVC/DVC/SV, log selection), `repair.rs` (hash-chain
//! repair of headers and prepares), `open.rs` (starting from storage), `checkpointing.rs`
//! (taking and installing checkpoints), `sync.rs` (state transfer from a peer's checkpoint).

#[cfg(test)]
mod backup_tests;
mod checkpointing;
mod config;
mod execute;
mod log_selection;
#[cfg(test)]
mod log_selection_model;
mod normal;
mod open;
pub use open::{root_prepare, OpenError};
mod repair;
mod sync;
#[cfg(test)]
mod test_support;
mod view_change;

pub use config::{Config, Timeouts, REPLICAS_MAX};
pub use sync::SYNC_CHUNK_SIZE_MAX;

use crate::checkpoint::Checkpoint;
use crate::client_table::ClientTable;
use crate::journal::Journal;
use crate::pipeline::Pipeline;
use crate::prng::Prng;
use crate::state_machine::StateMachine;
use crate::storage::{Disk, Storage};
use crate::superblock::SuperBlock;
use crate::timeout::Timeout;
use crate::wire::{Command, DecodeContext, Header, Message};
use std::collections::BTreeMap;

/// The replica's status (VR Revisited §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Normal,
    ViewChange,
    Recovering,
}

/// Who a message came from, as the host knows it (the connection), not as the header claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    Replica(u8),
    Client(u128),
}

/// What the replica asks its host to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send to another replica.
    Send { to: u8, message: Message },
    /// Send to a client (a reply or an eviction).
    Reply { client: u128, message: Message },
}

/// Counters a host can read (never used for decisions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub messages_dropped: u64,
    pub messages_rejected_sender: u64,
    /// Messages of another consensus group (namespace), dropped unread.
    pub messages_dropped_namespace: u64,
    pub requests_dropped: u64,
    pub prepares_resent: u64,
    pub headers_repaired: u64,
    pub prepares_repaired: u64,
    pub ops_truncated: u64,
    pub view_changes: u64,
    /// Peer logs that contradicted an op this replica executed (refused; a safety failure
    /// somewhere, which the simulator reports).
    pub forks_detected: u64,
    /// Committed requests skipped because they repeated or skipped a request number.
    pub requests_skipped: u64,
    /// Checkpoints taken (every checkpoint_interval executed ops).
    pub checkpoints: u64,
    /// Checkpoints installed from a peer (state transfers completed).
    pub state_syncs: u64,
    /// Received checkpoints that failed verification or could not be restored.
    pub state_syncs_rejected: u64,
}

/// What the new primary learned from one do_view_change (its own included).
#[derive(Debug, Clone)]
struct DvcRecord {
    log_view: u32,
    op: u64,
    commit_min: u64,
    /// Headers carried, newest first, with whether the sender holds each prepare.
    headers: Vec<(Header, bool)>,
    /// `DoViewChange::view_head`, `None` when unknown.
    view_head: Option<u64>,
    /// Ops above commit_min the sender may have acknowledged without knowing their header
    /// (`DoViewChange::unknown_ops`), ascending: never counted as its nacks.
    unknown: Vec<u64>,
}

/// A VSR replica over storage `S` executing state machine `M`.
pub struct Replica<S: Storage, M: StateMachine> {
    config: Config,
    ctx: DecodeContext,
    storage: Disk<S>,
    journal: Journal,
    state_machine: M,
    client_table: ClientTable,
    pipeline: Pipeline,
    prng: Prng,
    superblock: SuperBlock,
    /// The newest durable checkpoint, kept to serve state transfers (None: the root).
    checkpoint: Option<Checkpoint>,
    /// The checkpoint before it, still served to a state transfer that began on it (a
    /// transfer in small chunks may outlast a checkpoint interval).
    checkpoint_previous: Option<Checkpoint>,
    /// Set when the checkpoint at this op could not be read at open: the replica stays
    /// recovering until a peer's checkpoint at or above it is installed.
    sync_required: Option<u64>,
    /// A state transfer in progress.
    sync: Option<sync::SyncProgress>,
    /// Newest checkpoint op each peer advertised.
    peer_checkpoint: [u64; REPLICAS_MAX as usize],
    /// Newest checkpoint op each peer advertised in a message of the view it was in then.
    peer_checkpoint_view: [(u32, u64); REPLICAS_MAX as usize],
    /// A start_view came whose head this replica's ring cannot hold: it must sync first.
    sv_beyond_ring: bool,
    /// Repair rounds in a row that executed nothing while behind, and commit_min at the last.
    repair_stalled: u32,
    repair_commit_min: u64,

    status: Status,
    view: u32,
    log_view: u32,
    /// Headers this backup learned in its current log_view from that view's primary (its
    /// prepares, its start_view, or repairs linking into the chain proven from the head),
    /// by op above commit_min: that view's log, so committed ops among them may execute
    /// even while a gap above keeps the head's chain from reaching them.
    view_log: BTreeMap<u64, u128>,
    /// Head of the log.
    op: u64,
    /// Highest op executed.
    commit_min: u64,
    /// Highest op known committed.
    commit_max: u64,
    /// Checksum of the prepare at commit_max when known from the primary (for repair).
    commit_max_checksum: Option<u128>,
    ticks: u64,
    /// Timestamp of the newest prepare (N8: strictly increasing).
    timestamp_last: u64,

    /// Backup: newest heartbeat timestamp seen in this view (N9).
    heartbeat_timestamp: u64,
    /// Backup: highest op acknowledged in this view.
    acked_through: u64,
    /// View-change votes: the view voted for and a bitset of voters.
    svc_view: u32,
    svc_from: u64,
    /// Per replica, the tick its vote was recorded: in normal status a vote counts only for
    /// one timeout episode, so stale votes cannot combine with a later, unrelated one.
    svc_tick: [u64; REPLICAS_MAX as usize],
    /// When this replica last sent its own start_view_change (its vote must reach the others
    /// while theirs are fresh: votes in normal status expire).
    svc_sent_tick: u64,
    /// This replica wants a view change (its heartbeat timed out).
    svc_wanted: bool,
    /// New primary: do_view_change records by sender, for `view`.
    dvc_from: BTreeMap<u8, DvcRecord>,
    /// New primary: the log is chosen; repairing before start_view.
    dvc_log_set: bool,
    /// Per replica, the tick it was last heard from in this view.
    heard_tick: [u64; REPLICAS_MAX as usize],
    /// Per replica, the newest of this replica's ping timestamps (its own ticks) that a pong
    /// of this view echoed since it last became primary: the peer was in this view after
    /// that tick. Unlike `heard_tick`, a delayed or replayed old message cannot refresh it.
    pong_echo: [u64; REPLICAS_MAX as usize],
    /// Tick of the last request_start_view sent, to rate-limit them.
    rsv_tick: Option<u64>,

    timeout_prepare: Timeout,
    timeout_commit_message: Timeout,
    timeout_normal_heartbeat: Timeout,
    timeout_view_change_status: Timeout,
    timeout_view_change_message: Timeout,
    timeout_ping: Timeout,
    timeout_repair: Timeout,

    /// Actions waiting for the writes they depend on (a count of submitted writes) to be
    /// durable, in the order they were emitted.
    outbox: std::collections::VecDeque<(u64, Action)>,
    /// Writes submitted up to the superblock that records the current view and log_view:
    /// all that heartbeats depend on (V1, V2).
    view_barrier: u64,
    /// The newest checkpoint whose superblock is submitted but not yet durable (barrier, op),
    /// and the newest durable one: only a durable checkpoint is advertised to peers.
    checkpoint_pending: Option<(u64, u64)>,
    checkpoint_durable: u64,
    outbox_ready: Vec<Action>,
    /// Writes the host reported durable (a prefix of those submitted, in order).
    writes_done: u64,
    stats: Stats,
}

impl<S: Storage, M: StateMachine> Replica<S, M> {
    // ----- Host surface -----

    /// Handles one message from `from`. Drops (and counts) anything the sender may not say.
    pub fn on_message(&mut self, from: Peer, message: Message) {
        if message.header.namespace != self.config.namespace {
            // Another consensus group's message, misrouted: never acted on.
            self.stats.messages_dropped_namespace += 1;
            return;
        }
        if !self.sender_allowed(from, &message) {
            self.stats.messages_rejected_sender += 1;
            return;
        }
        if let Peer::Replica(r) = from {
            if message.header.view == self.view {
                self.heard_tick[r as usize] = self.ticks;
            }
        }
        match message.header.command {
            Command::Ping(p) => self.on_ping(from, message.header.view, p),
            Command::Pong(p) => self.on_pong(from, &message, p),
            Command::Request(_) => self.on_request(message),
            Command::Prepare(_) => self.on_prepare(message),
            Command::PrepareOk(_) => self.on_prepare_ok(&message),
            Command::Commit(_) => self.on_commit(&message),
            Command::StartViewChange => self.on_start_view_change(&message),
            Command::DoViewChange(_) => self.on_do_view_change(&message),
            Command::StartView(_) => self.on_start_view(&message),
            Command::RequestStartView(_) => self.on_request_start_view(&message),
            Command::RequestHeaders(_) => self.on_request_headers(&message),
            Command::Headers => self.on_headers(&message),
            Command::RequestPrepare(_) => self.on_request_prepare(&message),
            Command::RequestSyncCheckpoint(_) => self.on_request_sync_checkpoint(&message),
            Command::SyncCheckpoint(_) => self.on_sync_checkpoint(&message),
            Command::Reply(_) | Command::Eviction(_) => self.stats.messages_dropped += 1,
        }
        self.check_invariants();
    }

    /// Advances time by one tick.
    pub fn on_tick(&mut self) {
        self.ticks += 1;
        self.tick_timeouts();
        self.check_invariants();
    }

    /// The host reports that the first `writes` writes this replica submitted (since it
    /// opened) are durable. Releases the actions that waited for them.
    pub fn on_storage_done(&mut self, writes: u64) {
        assert!(
            writes <= self.storage.submitted,
            "storage reported {writes} writes done of {} submitted",
            self.storage.submitted
        );
        if writes <= self.writes_done {
            return;
        }
        self.writes_done = writes;
        if let Some((barrier, op)) = self.checkpoint_pending {
            if barrier <= writes {
                self.checkpoint_durable = op;
                self.checkpoint_pending = None;
            }
        }
        self.primary_self_ack();
        self.check_invariants();
    }

    /// Writes submitted since this replica opened its storage (hosts that complete writes
    /// synchronously pass this straight to `on_storage_done`).
    pub fn writes_submitted(&self) -> u64 {
        self.storage.submitted
    }

    /// Writes the host reported durable.
    pub fn writes_done(&self) -> u64 {
        self.writes_done
    }

    /// Takes what the replica asked the host to do whose writes are durable (in the order
    /// emitted; an action that waits for fewer writes may overtake one that waits for more).
    pub fn drain_outbox(&mut self) -> std::vec::Drain<'_, Action> {
        let done = self.writes_done;
        if self.outbox.iter().all(|(barrier, _)| *barrier <= done) {
            // The common case: nothing waits (no allocation).
            self.outbox_ready
                .extend(self.outbox.drain(..).map(|(_, action)| action));
        } else {
            let mut waiting = std::collections::VecDeque::with_capacity(self.outbox.len());
            for (barrier, action) in self.outbox.drain(..) {
                if barrier <= done {
                    self.outbox_ready.push(action);
                } else {
                    waiting.push_back((barrier, action));
                }
            }
            self.outbox = waiting;
        }
        self.outbox_ready.drain(..)
    }

    /// The storage, for hosts that inspect it.
    pub fn storage(&self) -> &S {
        &self.storage.inner
    }

    /// The storage, for hosts that simulate disk faults underneath a running replica (the
    /// replica verifies every read, so it notices when it next reads).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage.inner
    }

    /// Gives the storage back (the host keeps it across a crash).
    pub fn into_storage(self) -> S {
        self.storage.inner
    }

    // ----- Read-only view for hosts and checkers -----

    pub fn status(&self) -> Status {
        self.status
    }
    pub fn view(&self) -> u32 {
        self.view
    }
    pub fn log_view(&self) -> u32 {
        self.log_view
    }
    pub fn op(&self) -> u64 {
        self.op
    }
    pub fn commit_min(&self) -> u64 {
        self.commit_min
    }
    pub fn commit_max(&self) -> u64 {
        self.commit_max
    }
    pub fn replica(&self) -> u8 {
        self.config.replica
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn stats(&self) -> Stats {
        self.stats
    }
    pub fn is_primary(&self) -> bool {
        self.config.primary_index(self.view) == self.config.replica
    }
    /// The header of `op` in this replica's log (for executed ops: the committed prepare).
    pub fn header(&self, op: u64) -> Option<&Header> {
        self.journal.header(op)
    }
    /// The prepare of `op`, read back from storage and verified.
    pub fn prepare(&self, op: u64) -> Option<Message> {
        self.journal.peek_prepare(&self.storage, &self.ctx, op)
    }
    /// Journal entries this replica found faulty (at recovery or on a read).
    pub fn storage_faults_found(&self) -> u64 {
        self.journal.faults_found()
    }
    pub fn state_machine(&self) -> &M {
        &self.state_machine
    }
    /// The state machine, to change behind the replica's back: for harnesses that plant a
    /// state divergence to prove their oracles see it. Never call it in a real host.
    #[doc(hidden)]
    pub fn state_machine_mut_for_tests(&mut self) -> &mut M {
        &mut self.state_machine
    }

    pub fn client_table(&self) -> &ClientTable {
        &self.client_table
    }
    pub fn pipeline_len(&self) -> usize {
        self.pipeline.prepares.len()
    }
    pub fn request_queue_len(&self) -> usize {
        self.pipeline.requests.len()
    }

    /// A one-line account of the replica's log and progress, for failure reports.
    pub fn describe(&self) -> String {
        let missing: Vec<u64> = (self.commit_min + 1..=self.op)
            .filter(|&op| !self.journal.is_present(op))
            .take(8)
            .collect();
        format!(
            "{:?} view {} log_view {} op {} commit {}/{} chain_floor {} ackable {:?} acked {} \
             missing {:?} unknown {:?} pipeline {} queue {} svc {}@{:#b}",
            self.status,
            self.view,
            self.log_view,
            self.op,
            self.commit_min,
            self.commit_max,
            self.chain_floor(),
            self.ackable_through(),
            self.acked_through,
            missing,
            self.journal.unknown_ops().take(8).collect::<Vec<_>>(),
            self.pipeline.prepares.len(),
            self.pipeline.requests.len(),
            self.svc_view,
            self.svc_from
        )
    }

    // ----- Shared helpers -----

    fn sender_allowed(&self, from: Peer, message: &Message) -> bool {
        let command = &message.header.command;
        match from {
            Peer::Client(id) => matches!(command, Command::Request(r) if r.client == id),
            Peer::Replica(r) => {
                if r >= self.config.replica_count || r == self.config.replica {
                    return false;
                }
                if command.is_from_client() || command.is_to_client() {
                    return false;
                }
                // A prepare may be relayed by any replica during repair: its checksum and the
                // hash chain authenticate it, not the sender.
                matches!(command, Command::Prepare(_)) || message.header.replica == r
            }
        }
    }

    fn quorum(&self) -> u32 {
        self.config.quorum()
    }

    fn primary_index(&self, view: u32) -> u8 {
        self.config.primary_index(view)
    }

    fn header_for(&self, command: Command) -> Header {
        Header::new(self.config.cluster, self.view, self.config.replica, command)
            .in_namespace(self.config.namespace)
    }

    /// Queues an action behind every write submitted so far.
    fn emit(&mut self, action: Action) {
        self.outbox.push_back((self.storage.submitted, action));
    }

    /// Queues a message that depends only on the superblock of the current view (a
    /// heartbeat: ping, pong, commit; a state-transfer request or chunk, whose checkpoint is
    /// committed state whether or not it is durable here yet), so it never waits behind
    /// prepares or checkpoints on a slow disk.
    fn send_after_view(&mut self, to: u8, command: Command, body: bytes::Bytes) {
        assert_ne!(to, self.config.replica);
        let message = Message::new(self.header_for(command), body);
        self.outbox
            .push_back((self.view_barrier, Action::Send { to, message }));
    }

    fn send_heartbeat(&mut self, to: u8, command: Command) {
        self.send_after_view(to, command, bytes::Bytes::new());
    }

    fn broadcast_heartbeat(&mut self, command: Command) {
        for r in self.other_replicas().collect::<Vec<_>>() {
            self.send_heartbeat(r, command);
        }
    }

    fn send(&mut self, to: u8, command: Command, body: bytes::Bytes) {
        assert_ne!(to, self.config.replica);
        let message = Message::new(self.header_for(command), body);
        self.emit(Action::Send { to, message });
    }

    /// The checkpoint op to advertise (0 while this replica has lost its own).
    fn advertised_checkpoint(&self) -> u64 {
        if self.sync_required.is_some() {
            0
        } else {
            self.checkpoint_durable
        }
    }

    fn send_message(&mut self, to: u8, message: Message) {
        assert_ne!(to, self.config.replica);
        self.emit(Action::Send { to, message });
    }

    fn other_replicas(&self) -> impl Iterator<Item = u8> {
        let me = self.config.replica;
        (0..self.config.replica_count).filter(move |&r| r != me)
    }

    /// Persists view, log_view and commit before the replica acts on them (V1, V2).
    fn persist_view_state(&mut self) {
        let view_changed =
            (self.superblock.view, self.superblock.log_view) != (self.view, self.log_view);
        self.superblock.view = self.view;
        self.superblock.log_view = self.log_view;
        self.superblock.commit_max = self.commit_max;
        self.superblock.write(&mut self.storage);
        if view_changed {
            self.view_barrier = self.storage.submitted;
        }
    }

    /// The replica's own invariants, checked after every input, in every build.
    fn check_invariants(&self) {
        assert!(
            self.commit_min <= self.commit_max,
            "commit_min > commit_max"
        );
        assert!(self.commit_min <= self.op, "commit_min > op");
        assert!(self.log_view <= self.view, "log_view > view");
        assert!(self.superblock.view <= self.view);
        if self.status == Status::Normal {
            assert_eq!(
                self.log_view, self.view,
                "normal status with log_view != view"
            );
            assert!(self.commit_max <= self.op || !self.is_primary());
        }
        if self.is_primary() && self.status == Status::Normal {
            assert!(self.op <= self.commit_max + self.config.pipeline_max as u64);
        }
        assert!(self.pipeline.prepares.len() <= self.config.pipeline_max);
        assert!(
            self.op <= self.journal.window_max(),
            "op beyond the journal ring"
        );
        if self.sync_required.is_none() {
            assert!(
                self.journal.header(self.commit_min).is_some(),
                "the executed op's header is known"
            );
            assert_eq!(self.superblock.checkpoint_op, self.journal.checkpoint_op());
            assert!(self.journal.checkpoint_op() <= self.commit_min);
            assert!(
                self.commit_min < self.journal.checkpoint_op() + self.config.checkpoint_interval(),
                "an interval executed without a checkpoint"
            );
        }
    }
}
