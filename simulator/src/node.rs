//! The node interface: the only way the simulator talks to a node.
//!
//! A node hosts one replica of each of several consensus groups (a metadata group and
//! partition groups, as in Apache Iggy). It shares one network endpoint, one tick and one
//! disk among them; each group keeps its own region of that disk (journal ring, superblock
//! copies, checkpoint areas), here one `FaultyStorage` per group.
//!
//! The simulator feeds a node messages, ticks and storage completions, takes its actions,
//! and reads each group's state through `GroupView` for the oracles. Nothing else: a user
//! with their own VSR implementation (or their own state machine) implements `Node` and
//! `NodeKind`, passes the kind to `Simulation::with_kind`, and gets the fault injection,
//! every oracle and `vopr`'s reports. `vsr::VsrNode` (this crate's replica) is the
//! reference implementation.
//!
//! Contract, for an implementation:
//! - Deterministic: the same inputs give the same actions (no clock, no ambient randomness,
//!   no iteration order of a `HashMap` leaking into behaviour).
//! - `on_message` routes by the header's namespace: a message for no hosted group is dropped
//!   and counted in `messages_dropped_namespace`, never acted on.
//! - A group stores only through its own disk region, and a crash keeps exactly what the
//!   regions made durable (`into_disks`).
//! - A panic inside the node is a failed assertion of the implementation: the simulator
//!   reports it as `replica_assertion`.

pub mod vsr;

use crate::storage::FaultyStorage;
use bytes::Bytes;
use consensus::replica::Stats;
use consensus::wire::{Header, Message};
use consensus::{Action, Config, Peer, Status};
use std::any::Any;

/// One group's replica, as the oracles see it (read-only).
pub trait GroupView {
    fn status(&self) -> Status;
    fn view(&self) -> u32;
    fn log_view(&self) -> u32;
    fn op(&self) -> u64;
    fn commit_min(&self) -> u64;
    fn commit_max(&self) -> u64;
    fn is_primary(&self) -> bool;
    /// The newest durable checkpoint's op (0: none) and its checksum.
    fn checkpoint_op(&self) -> u64;
    fn checkpoint_checksum(&self) -> u128;
    /// The header of `op` in the log, if held.
    fn header(&self, op: u64) -> Option<Header>;
    /// The prepare of a committed `op`, if still readable (the oracle applies its body to the
    /// reference state machine).
    fn prepare(&self, op: u64) -> Option<Message>;
    /// A digest of the state machine and the client table (replies included): replicas that
    /// executed the same ops must digest alike.
    fn state_digest(&self) -> u128;
    fn stats(&self) -> Stats;
    /// Writes submitted to the disk so far (a new one may be a superblock write to aim at).
    fn writes_submitted(&self) -> u64;
    /// One line for reports.
    fn describe(&self) -> String;
    /// Whether it may take part in choosing a log at a view change: false when it may have
    /// lost state it acknowledged (protocol-aware recovery). Beyond the fault atlas, a core
    /// with fewer than a quorum that may is not expected to converge. The default: always.
    fn offers_log(&self) -> bool {
        true
    }
    /// The highest op it may have acknowledged: its op, or above where it lost whole slots
    /// of ops it may have acked (their headers unknown). The default: its op.
    fn acked_max(&self) -> u64 {
        self.op()
    }
    /// Whether it may have acknowledged `op` but cannot read its prepare back (so it can
    /// neither supply nor nack it). The default: never.
    fn holds_unreadable(&self, _op: u64) -> bool {
        false
    }
    /// What the world reads after every step, in one call.
    fn glance(&self) -> Glance {
        Glance {
            view: self.view(),
            status: self.status(),
            commit_min: self.commit_min(),
            primary: self.is_primary(),
            writes_submitted: self.writes_submitted(),
            forks_detected: self.stats().forks_detected,
        }
    }
}

/// A group's state as the world reads it after every step (`GroupView::glance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glance {
    pub view: u32,
    pub status: Status,
    pub commit_min: u64,
    pub primary: bool,
    pub writes_submitted: u64,
    pub forks_detected: u64,
}

/// A node: several groups behind one endpoint. Every method that names `group` takes an index
/// below `group_count()`.
pub trait Node {
    fn group_count(&self) -> usize;
    /// Group `group`'s replica; None when it is down on an up node (it refused to open).
    fn group(&self, group: usize) -> Option<&dyn GroupView>;
    fn on_tick(&mut self, group: usize);
    /// Routes a message by its namespace. Returns the group that took it, or None when no
    /// hosted group (or no group that is up) has that namespace: then it is dropped.
    fn on_message(&mut self, from: Peer, message: Message) -> Option<usize>;
    /// Group `group`'s disk completes the writes due by `tick` (the disk only: no replica code
    /// runs). Returns whether any completed that the group has not been told of.
    fn advance_disk(&mut self, group: usize, tick: u64) -> bool;
    /// Group `group` is told of the writes its disk completed (a step of the group; called
    /// after `advance_disk` returned true).
    fn on_storage_done(&mut self, group: usize);
    /// Moves group `group`'s pending actions into `out`.
    fn drain_actions(&mut self, group: usize, out: &mut Vec<Action>);
    fn disk(&self, group: usize) -> &FaultyStorage;
    fn disk_mut(&mut self, group: usize) -> &mut FaultyStorage;
    /// Messages dropped because their namespace named no hosted group.
    fn messages_dropped_namespace(&self) -> u64;
    /// The node crashes: its memory is gone, every group's disk region stays.
    fn into_disks(self: Box<Self>) -> Vec<FaultyStorage>;
    /// What group `group`'s disk durably holds of its view state (view, log_view), for the
    /// durability oracle; None if the implementation does not say (the check is skipped).
    fn durable_view(&self, group: usize) -> Option<(u32, u32)>;
    /// Whether the prepare of `op` with `checksum` is durable in group `group`'s journal,
    /// for the durability oracle: Some(Err(what is there)) if not; None if the
    /// implementation cannot tell (a slot reused or tampered with, or no such probe).
    fn durable_prepare(&self, group: usize, op: u64, checksum: u128) -> Option<Result<(), String>>;
    /// For tests and scripted scenarios that know the concrete type.
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// What a group of a node is configured with.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// The replica's configuration (namespace, replica index, limits, jitter seed).
    pub config: Config,
    /// The group's index on the node (0: the metadata group).
    pub group: usize,
}

/// Why a node's group did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Recovery failed an assertion: a bug.
    Panicked(String),
    /// The region lost what recovery needs and no peer can give back (beyond the fault atlas
    /// only): the group stays down. The right answer, not a failure.
    Unopenable,
}

/// How to make nodes of one implementation: format fresh disks, open a node from its disks,
/// and the state machine its groups run (the reply oracle's reference model).
pub trait NodeKind {
    /// Writes a fresh, empty group onto `disk`.
    fn format(&self, group: &GroupConfig, disk: &mut FaultyStorage);
    /// Opens a node's groups from their disk regions (one per entry of `groups`, in order).
    /// A group that does not open is down; its disk is kept for a later try.
    fn open(&self, groups: &[GroupConfig], disks: Vec<FaultyStorage>) -> Opened;
    /// A fresh instance of the state machine the groups run: the oracle applies every
    /// committed op to it, in commit order, and compares the replies.
    fn reference_machine(&self) -> Box<dyn ReferenceMachine>;
    /// The checksum of op 0, the root the first committed op chains to (the agreement
    /// oracle's canonical chain starts there).
    fn root_checksum(&self, cluster: u128) -> u128;
    /// Where a group's region keeps its redundant copies (the fault atlas keeps one of each
    /// intact, and the world aims faults at them).
    fn layout(&self) -> DiskLayout;
}

/// The redundant copies of a group's disk region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLayout {
    /// Copies of the superblock (`Zone::Superblock` locations 0..copies).
    pub superblock_copies: u64,
    /// Copies of each of the two checkpoint areas (`Zone::Checkpoint` locations
    /// area * copies + copy).
    pub checkpoint_copies: u64,
}

/// The result of opening a node.
pub struct Opened {
    pub node: Box<dyn Node>,
    /// Per group: None if it opened, else why not.
    pub errors: Vec<Option<OpenError>>,
}

/// A state machine the oracle drives as the reference model.
pub trait ReferenceMachine {
    fn execute(&mut self, op: u64, timestamp: u64, input: &[u8]) -> Bytes;
}

impl<M: consensus::StateMachine> ReferenceMachine for M {
    fn execute(&mut self, op: u64, timestamp: u64, input: &[u8]) -> Bytes {
        consensus::StateMachine::execute(self, op, timestamp, input)
    }
}
