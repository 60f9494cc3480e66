//! The reference node: this crate's VSR replica, one per group, behind a namespace router.
//! Generic over the state machine its groups run (`KvNode` runs the key-value store).

use super::{
    DiskLayout, GroupConfig, GroupView, Node, NodeKind, OpenError, Opened, ReferenceMachine,
};
use crate::cluster::catch;
use crate::storage::FaultyStorage;
use consensus::node::Router;
use consensus::replica::{OpenError as ReplicaOpenError, Stats};
use consensus::storage::Zone;
use consensus::superblock::SuperBlock;
use consensus::wire::{self, DecodeContext, Header, Message};
use consensus::{Action, KvMachine, Peer, Replica, StateMachine, Status};
use std::any::Any;
use std::marker::PhantomData;

/// A node of this crate's replicas running state machine `M`.
pub struct VsrNode<M: StateMachine> {
    router: Router,
    /// Per group: its replica, or None while it is down (it refused to open); then its disk
    /// waits in `disks`.
    groups: Vec<Option<Replica<FaultyStorage, M>>>,
    disks: Vec<Option<FaultyStorage>>,
}

/// The reference node with the key-value state machine.
pub type KvNode = VsrNode<KvMachine>;

/// Makes `VsrNode<M>`s; `new_machine` makes each group's (empty) state machine.
pub struct VsrKind<M: StateMachine> {
    new_machine: fn() -> M,
    _machine: PhantomData<M>,
}

impl<M: StateMachine> VsrKind<M> {
    pub fn new(new_machine: fn() -> M) -> VsrKind<M> {
        VsrKind {
            new_machine,
            _machine: PhantomData,
        }
    }
}

/// The default kind: key-value groups.
pub fn kv_kind() -> VsrKind<KvMachine> {
    VsrKind::new(KvMachine::new)
}

impl<M: StateMachine + 'static> NodeKind for VsrKind<M> {
    fn format(&self, group: &GroupConfig, disk: &mut FaultyStorage) {
        Replica::<FaultyStorage, M>::format(&group.config, disk);
        disk.flush();
    }

    fn open(&self, groups: &[GroupConfig], disks: Vec<FaultyStorage>) -> Opened {
        assert_eq!(groups.len(), disks.len());
        let namespaces = groups.iter().map(|g| g.config.namespace).collect();
        let mut node = VsrNode {
            router: Router::new(namespaces),
            groups: Vec::new(),
            disks: Vec::new(),
        };
        let mut errors = Vec::new();
        for (group, disk) in groups.iter().zip(disks) {
            match open_group(group, disk, self.new_machine) {
                Ok(replica) => {
                    node.groups.push(Some(replica));
                    node.disks.push(None);
                    errors.push(None);
                }
                Err(failed) => {
                    let (error, disk) = *failed;
                    node.groups.push(None);
                    node.disks.push(Some(disk));
                    errors.push(Some(error));
                }
            }
        }
        Opened {
            node: Box::new(node),
            errors,
        }
    }

    fn reference_machine(&self) -> Box<dyn ReferenceMachine> {
        Box::new((self.new_machine)())
    }

    fn root_checksum(&self, cluster: u128) -> u128 {
        consensus::replica::root_prepare(cluster).header.checksum
    }

    fn layout(&self) -> DiskLayout {
        DiskLayout {
            superblock_copies: consensus::superblock::SUPERBLOCK_COPIES,
            checkpoint_copies: consensus::checkpoint::CHECKPOINT_COPIES,
        }
    }
}

/// A group's replica, or why it did not open and its disk region back (boxed: a region is
/// large next to a replica handle).
type OpenResult<M> = Result<Replica<FaultyStorage, M>, Box<(OpenError, FaultyStorage)>>;

/// Opens one group from its region; on failure the region is handed back.
fn open_group<M: StateMachine>(
    group: &GroupConfig,
    disk: FaultyStorage,
    new: fn() -> M,
) -> OpenResult<M> {
    if SuperBlock::read(&disk, group.config.owner()).is_none() {
        // Every superblock copy is gone (only beyond the fault atlas): this group must not
        // rejoin as a fresh one (R8), so it stays down.
        return Err(Box::new((OpenError::Unopenable, disk)));
    }
    let reopen = disk.clone();
    let config = group.config;
    match catch(|| Replica::open(config, disk, new())) {
        Err(message) => Err(Box::new((OpenError::Panicked(message), reopen))),
        Ok(Ok(replica)) => Ok(replica),
        // A solo replica lost every copy of its checkpoint, or of a journal entry (beyond
        // the atlas only): no peer can give it back, so it stays down.
        Ok(Err(ReplicaOpenError::CheckpointLost | ReplicaOpenError::JournalCorrupt)) => {
            Err(Box::new((OpenError::Unopenable, reopen)))
        }
        Ok(Err(e)) => {
            let message = format!(
                "replica {} of group {} could not open: {e:?}",
                config.replica, group.group
            );
            Err(Box::new((OpenError::Panicked(message), reopen)))
        }
    }
}

impl<M: StateMachine> VsrNode<M> {
    /// Group `group`'s replica, if up (for tests and scripted scenarios).
    pub fn replica(&self, group: usize) -> Option<&Replica<FaultyStorage, M>> {
        self.groups[group].as_ref()
    }

    pub fn replica_mut(&mut self, group: usize) -> Option<&mut Replica<FaultyStorage, M>> {
        self.groups[group].as_mut()
    }

    pub fn router(&self) -> &Router {
        &self.router
    }
}

impl<M: StateMachine + 'static> Node for VsrNode<M> {
    fn group_count(&self) -> usize {
        self.groups.len()
    }

    fn group(&self, group: usize) -> Option<&dyn GroupView> {
        self.groups[group].as_ref().map(|r| r as &dyn GroupView)
    }

    fn on_tick(&mut self, group: usize) {
        if let Some(replica) = self.groups[group].as_mut() {
            replica.on_tick();
        }
    }

    fn on_message(&mut self, from: Peer, message: Message) -> Option<usize> {
        let group = self.router.route(&message.header)?;
        let replica = self.groups[group].as_mut()?;
        replica.on_message(from, message);
        Some(group)
    }

    fn advance_disk(&mut self, group: usize, tick: u64) -> bool {
        let Some(replica) = self.groups[group].as_mut() else {
            return false;
        };
        let done = replica.storage_mut().advance(tick);
        done > replica.writes_done()
    }

    fn on_storage_done(&mut self, group: usize) {
        if let Some(replica) = self.groups[group].as_mut() {
            let done = replica.storage().writes_completed();
            replica.on_storage_done(done);
        }
    }

    fn drain_actions(&mut self, group: usize, out: &mut Vec<Action>) {
        if let Some(replica) = self.groups[group].as_mut() {
            out.extend(replica.drain_outbox());
        }
    }

    fn disk(&self, group: usize) -> &FaultyStorage {
        match self.groups[group].as_ref() {
            Some(replica) => replica.storage(),
            None => self.disks[group]
                .as_ref()
                .expect("a down group keeps its disk"),
        }
    }

    fn disk_mut(&mut self, group: usize) -> &mut FaultyStorage {
        match self.groups[group].as_mut() {
            Some(replica) => replica.storage_mut(),
            None => self.disks[group]
                .as_mut()
                .expect("a down group keeps its disk"),
        }
    }

    fn messages_dropped_namespace(&self) -> u64 {
        let replicas: u64 = self
            .groups
            .iter()
            .flatten()
            .map(|r| r.stats().messages_dropped_namespace)
            .sum();
        self.router.messages_dropped_namespace + replicas
    }

    fn into_disks(self: Box<Self>) -> Vec<FaultyStorage> {
        let node = *self;
        node.groups
            .into_iter()
            .zip(node.disks)
            .map(|(replica, disk)| match replica {
                Some(replica) => replica.into_storage(),
                None => disk.expect("a down group keeps its disk"),
            })
            .collect()
    }

    fn durable_view(&self, group: usize) -> Option<(u32, u32)> {
        let owner = self.groups[group].as_ref()?.config().owner();
        let durable = SuperBlock::read(&self.disk(group).durable(), owner);
        Some(durable.map_or((0, 0), |sb| (sb.view, sb.log_view)))
    }

    fn durable_prepare(&self, group: usize, op: u64, checksum: u128) -> Option<Result<(), String>> {
        let replica = self.groups[group].as_ref()?;
        let slot = op % replica.config().journal_slot_count;
        let disk = replica.storage();
        // At or below the checkpoint the slot may hold a later op of the ring; a slot the
        // world tampered with proves nothing either way. An ack released late, after the
        // replica replaced that prepare (a later view's log), was true when its write
        // completed: only an ack of what the replica still holds is checked.
        let still_held = replica.header(op).map(|h| h.checksum) == Some(checksum);
        if op <= replica.checkpoint_op() || disk.is_tampered(Zone::WalPrepares, slot) || !still_held
        {
            return None;
        }
        let durable = disk.durable_read(Zone::WalPrepares, slot);
        // The header's checksum leads the encoded prepare: comparing it is enough on a slot
        // the world did not tamper with (what is there, the replica wrote), and far cheaper
        // than decoding every acked prepare.
        let leads = |bytes: &bytes::Bytes| bytes.get(..16) == Some(&checksum.to_le_bytes()[..]);
        if durable.as_ref().is_some_and(leads) {
            return Some(Ok(()));
        }
        let config = replica.config();
        let ctx = DecodeContext {
            cluster: config.cluster,
            replica_count: config.replica_count,
        };
        let held = durable
            .and_then(|bytes| wire::decode(&bytes, &ctx).ok())
            .map_or("nothing".to_string(), |m| {
                format!("op {} ({:032x})", m.header.prepare().op, m.header.checksum)
            });
        Some(Err(held))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl<M: StateMachine> GroupView for Replica<FaultyStorage, M> {
    fn status(&self) -> Status {
        Replica::status(self)
    }
    fn view(&self) -> u32 {
        Replica::view(self)
    }
    fn log_view(&self) -> u32 {
        Replica::log_view(self)
    }
    fn op(&self) -> u64 {
        Replica::op(self)
    }
    fn commit_min(&self) -> u64 {
        Replica::commit_min(self)
    }
    fn commit_max(&self) -> u64 {
        Replica::commit_max(self)
    }
    fn is_primary(&self) -> bool {
        Replica::is_primary(self)
    }
    fn checkpoint_op(&self) -> u64 {
        Replica::checkpoint_op(self)
    }
    fn checkpoint_checksum(&self) -> u128 {
        Replica::checkpoint_checksum(self)
    }
    fn header(&self, op: u64) -> Option<Header> {
        Replica::header(self, op).copied()
    }
    fn prepare(&self, op: u64) -> Option<Message> {
        Replica::prepare(self, op)
    }
    fn state_digest(&self) -> u128 {
        self.state_machine().digest() ^ self.client_table().digest().rotate_left(1)
    }
    fn stats(&self) -> Stats {
        Replica::stats(self)
    }
    fn writes_submitted(&self) -> u64 {
        Replica::writes_submitted(self)
    }
    fn describe(&self) -> String {
        Replica::describe(self)
    }
    fn offers_log(&self) -> bool {
        Replica::may_offer_log(self)
    }
    fn holds_unreadable(&self, op: u64) -> bool {
        Replica::holds_unreadable(self, op)
    }
    fn acked_max(&self) -> u64 {
        Replica::acked_max(self)
    }
}
