//! Creating a replica: formatting fresh storage, and opening (recovering) from storage.

use super::*;
use crate::wire::{Operation, Prepare};

/// Why storage could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// No valid superblock: this storage was never formatted, or lost every copy. Such a
    /// replica must not rejoin as a fresh one (R8).
    NoSuperblock,
    /// The superblock belongs to another cluster or replica.
    WrongIdentity,
    /// A solo replica's checkpoint is unreadable: there is no peer to fetch it from.
    CheckpointLost,
    /// A solo replica's journal has a slot it cannot read at all, or a prepare whose header
    /// says it was written but which no longer reads back, so an op it may have committed
    /// (and answered) is lost: there is no peer to learn it from.
    JournalCorrupt,
}

/// The root prepare (op 0) of `cluster`: the anchor of every log's hash chain.
pub fn root_prepare(cluster: u128) -> Message {
    let prepare = Prepare {
        parent: 0,
        client: 0,
        request_checksum: 0,
        op: 0,
        commit: 0,
        timestamp: 0,
        session: 0,
        request: 0,
        operation: Operation::Root,
    };
    Message::new(
        Header::new(cluster, 0, 0, Command::Prepare(prepare)),
        bytes::Bytes::new(),
    )
}

/// The superblock sequence `format` leaves: storage never opened since.
const FORMATTED_SEQUENCE: u64 = 1;

impl<S: Storage, M: StateMachine> Replica<S, M> {
    /// Writes a fresh superblock (view 0) and the root prepare to empty storage.
    pub fn format(config: &Config, storage: &mut S) {
        config.validate();
        let mut superblock = SuperBlock {
            sequence: 0,
            cluster: config.cluster,
            view: 0,
            log_view: 0,
            commit_max: 0,
            replica: config.replica,
            replica_count: config.replica_count,
            checkpoint_op: 0,
            checkpoint_checksum: 0,
            checkpoint_size: 0,
            checkpoint_area: 0,
            view_head: None,
            namespace: config.namespace,
        };
        superblock.write(storage);
    }

    /// Opens a replica from formatted storage: newest superblock, journal scan, replay of the
    /// committed ops it can prove, then the status its durable view state allows.
    pub fn open(config: Config, storage: S, state_machine: M) -> Result<Self, OpenError> {
        config.validate();
        let superblock =
            SuperBlock::read(&storage, config.owner()).ok_or(OpenError::NoSuperblock)?;
        if superblock.replica_count != config.replica_count {
            return Err(OpenError::WrongIdentity);
        }
        let mut replica = Replica::new_from_parts(config, storage, state_machine, superblock);
        // Header records found stale beside their op's prepare are written again.
        replica.journal.rewrite_stale_records(&mut replica.storage);
        if !superblock.copies_agree(&replica.storage) {
            // A crash tore the last superblock write on some copies, or a copy went bad: the
            // newest state may live on fewer copies than the fault model counts on, and a
            // later fault on them would bring back an older view this replica may have shown.
            // Every copy gets the newest again (its messages wait for it, like any write).
            replica.superblock.write(&mut replica.storage);
        }
        if !replica.load_checkpoint() {
            if config.replica_count == 1 {
                return Err(OpenError::CheckpointLost);
            }
            replica.sync_required = Some(superblock.checkpoint_op);
        }
        if config.replica_count == 1 && replica.solo_journal_lost_an_op() {
            // Opening would hang at the lost op forever, silently.
            return Err(OpenError::JournalCorrupt);
        }
        replica.recover();
        replica.check_invariants();
        Ok(replica)
    }

    /// A solo replica commits every op it writes durably, so any op of its journal that is
    /// unknown or whose prepare does not read back may have been committed and answered.
    fn solo_journal_lost_an_op(&self) -> bool {
        let checkpoint = self.journal.checkpoint_op();
        self.journal.has_unknown_above(checkpoint)
            || (checkpoint + 1..=self.journal.op_max())
                .any(|op| self.journal.header(op).is_some() && !self.journal.is_present(op))
    }

    fn new_from_parts(config: Config, storage: S, state_machine: M, sb: SuperBlock) -> Self {
        let ctx = DecodeContext {
            cluster: config.cluster,
            replica_count: config.replica_count,
        };
        let t = config.timeouts;
        // The journal's window starts at the superblock's checkpoint. Its header comes from the
        // checkpoint (load_checkpoint); until then a stand-in at the same op, which links to
        // nothing, so nothing is proven by it.
        let anchor = if sb.checkpoint_op == 0 {
            root_prepare(config.cluster).header
        } else {
            let mut stand_in = root_prepare(config.cluster).header;
            if let Command::Prepare(p) = &mut stand_in.command {
                p.op = sb.checkpoint_op;
            }
            stand_in.seal(&[]);
            stand_in
        };
        let journal = Journal::recover(
            &storage,
            &ctx,
            config.journal_slot_count,
            anchor,
            config.namespace,
        );
        let storage = crate::storage::Disk {
            inner: storage,
            submitted: 0,
        };
        Replica {
            ctx,
            storage,
            journal,
            state_machine,
            client_table: ClientTable::new(config.clients_max),
            pipeline: Pipeline::new(config.pipeline_max, config.request_queue_max),
            prng: Prng::new(config.seed),
            superblock: sb,
            checkpoint: None,
            checkpoint_previous: None,
            sync_required: None,
            sync: None,
            peer_checkpoint: [0; REPLICAS_MAX as usize],
            peer_checkpoint_view: [(0, 0); REPLICAS_MAX as usize],
            sv_beyond_ring: false,
            repair_stalled: 0,
            repair_commit_min: 0,
            status: Status::Recovering,
            view: sb.view,
            log_view: sb.log_view,
            view_log: BTreeMap::new(),
            op: 0,
            commit_min: 0,
            commit_max: 0,
            commit_max_checksum: None,
            ticks: 0,
            timestamp_last: 0,
            heartbeat_timestamp: 0,
            acked_through: 0,
            svc_view: 0,
            svc_from: 0,
            svc_tick: [0; REPLICAS_MAX as usize],
            svc_sent_tick: 0,
            svc_wanted: false,
            dvc_from: BTreeMap::new(),
            dvc_log_set: false,
            heard_tick: [0; REPLICAS_MAX as usize],
            pong_echo: [0; REPLICAS_MAX as usize],
            rsv_tick: None,
            timeout_prepare: Timeout::new("prepare", t.prepare),
            timeout_commit_message: Timeout::new("commit_message", t.commit_message),
            timeout_normal_heartbeat: Timeout::new("normal_heartbeat", t.normal_heartbeat),
            timeout_view_change_status: Timeout::new("view_change_status", t.view_change_status),
            timeout_view_change_message: Timeout::new("view_change_message", t.view_change_message),
            timeout_ping: Timeout::new("ping", t.ping),
            timeout_repair: Timeout::new("repair", t.repair),
            outbox: std::collections::VecDeque::new(),
            view_barrier: 0,
            checkpoint_pending: None,
            checkpoint_durable: sb.checkpoint_op,
            outbox_ready: Vec::new(),
            writes_done: 0,
            stats: Stats::default(),
            config,
        }
    }

    /// Replays the log from the checkpoint, then takes the status the durable view state
    /// allows. A replica that lost its checkpoint stays recovering until a state transfer.
    fn recover(&mut self) {
        self.commit_min = self.journal.checkpoint_op();
        self.restore_view_head();
        self.distrust_above_view_head();
        self.op = self.journal.op_max();
        self.commit_max = self.superblock.commit_max.max(self.commit_min);
        self.timestamp_last = self.head_timestamp();
        self.timeout_ping.start(&mut self.prng);
        self.timeout_repair.start(&mut self.prng);
        if self.sync_required.is_none() {
            self.resume_after_recovery();
        }
    }

    /// Puts back the head of the log the last view change installed, if its journal entry was
    /// lost (a header-only entry has a single copy). Without it, older entries below a gap
    /// the view change left would pass for the view's log, and be executed.
    fn restore_view_head(&mut self) {
        let Some(head) = self.superblock.view_head else {
            return;
        };
        let op = head.prepare().op;
        let in_window = op > self.journal.checkpoint_op() && op <= self.journal.window_max();
        if in_window && self.journal.checksum(op) != Some(head.checksum) {
            self.journal.write_header(&mut self.storage, &head);
        }
    }

    /// Above the head of the log the last view change installed (`superblock.view_head`, made
    /// durable with log_view), the log holds only prepares of log_view itself: the installed
    /// log ends at that head, and a replica takes new prepares only from its own view's
    /// primary. A recovered entry there of an older view is not of the log: it is an older
    /// write read back (a stale sector, where a crash lost the record of the newer prepare:
    /// seed 33927, which executed such a prepare of view 0 over the op view 4 committed). Its
    /// op is unknown rather than missing: the replica may have acked the view's prepare there.
    fn distrust_above_view_head(&mut self) {
        let Some(head) = self.superblock.view_head else {
            return;
        };
        let stale: Vec<u64> = (head.prepare().op + 1..=self.journal.op_max())
            .filter(|&op| {
                self.journal
                    .header(op)
                    .is_some_and(|h| h.view < self.log_view)
            })
            .collect();
        for op in stale {
            self.journal.distrust(op);
        }
    }

    /// The status a recovered replica resumes in (also after a state transfer that ended a
    /// recovery).
    pub(super) fn resume_after_recovery(&mut self) {
        if self.config.replica_count == 1 {
            // A solo replica's log is committed as soon as it is written; it bumps its view on
            // every restart so a rewritten op never shares a view with the old one (R4).
            self.commit_max = self.op;
            self.view += 1;
            self.log_view = self.view;
            self.persist_view_state();
            self.commit_journal();
            self.transition_to_normal_primary();
        } else if self.is_primary()
            && self.view == 0
            && self.op == 0
            && self.commit_max == 0
            && self.superblock.sequence == FORMATTED_SEQUENCE
            && !self.journal.has_unknown_above(0)
        {
            // A freshly formatted cluster: nothing was ever prepared, so nothing can be lost.
            // Not if a slot is unknown: an op may have been prepared (and acked) there, and
            // a primary that resumed would overwrite it. Only at the first open after
            // formatting, which the superblock records: a primary that restarts resumes with
            // its heartbeat clock back at zero, so backups that heard it before would take its
            // heartbeats for replays and depose it (a view change in a healthy cluster).
            self.superblock.write(&mut self.storage);
            self.transition_to_normal_primary();
        } else if self.log_view == self.view && self.is_primary() {
            // A restarted primary lost its pipeline; it must not resume as primary (R7).
            self.commit_journal();
            self.transition_to_view_change(self.view + 1);
        } else if self.log_view == self.view {
            self.commit_journal();
            self.transition_to_normal_backup(self.view);
        } else {
            self.commit_journal();
            self.enter_view_change_status();
        }
    }

    /// Timestamp of the newest prepare in the log.
    pub(super) fn head_timestamp(&self) -> u64 {
        self.journal
            .header(self.op)
            .map(|h| h.prepare().timestamp)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{formatted, prepare, CLUSTER};
    use super::*;
    use crate::storage::{Storage, Zone};
    use crate::{KvMachine, MemoryStorage};

    /// Seed 33927's disk after the crash: the last view change (view 2) installed a log whose
    /// head is op 1, and op 2 reads back as a prepare of view 0 (a stale sector, with the
    /// record of the view-2 prepare written over it lost). The log of view 2 holds only view
    /// 2's prepares above op 1, so that entry is not of the log: op 2 is unknown, neither the
    /// head nor executed, whatever commit the replica learns.
    #[test]
    fn an_entry_of_an_older_view_above_the_view_head_is_distrusted_at_recovery() {
        let mut replica = formatted(1);
        let config = replica.config;
        let root = replica.journal.checksum(0).expect("the root");
        let one = prepare(0, 1, root);
        let stale_two = prepare(0, 2, one.header.checksum);
        replica.journal.write_prepare(&mut replica.storage, &one);
        replica
            .journal
            .write_prepare(&mut replica.storage, &stale_two);
        replica.superblock.view_head = Some(one.header);
        replica.view = 2;
        replica.log_view = 2;
        replica.persist_view_state();
        let storage = replica.into_storage();
        let mut reopened = Replica::open(config, storage, KvMachine::new()).expect("reopen");
        assert_eq!(reopened.op, 1, "{}", reopened.describe());
        assert_eq!(reopened.journal.unknown_ops().collect::<Vec<_>>(), vec![2]);
        reopened.commit_max = 2;
        reopened.commit_journal();
        assert!(reopened.commit_min <= 1, "{}", reopened.describe());
        // A prepare of the view itself above the head is the view's: kept.
        let two = prepare(2, 2, one.header.checksum);
        let mut storage = reopened.into_storage();
        let mut journal = Journal::recover(
            &storage,
            &DecodeContext {
                cluster: CLUSTER,
                replica_count: 3,
            },
            config.journal_slot_count,
            root_prepare(CLUSTER).header,
            0,
        );
        journal.write_prepare(&mut storage, &two);
        let reopened = Replica::open(config, storage, KvMachine::new()).expect("reopen");
        assert_eq!(reopened.op, 2, "{}", reopened.describe());
        assert_eq!(reopened.journal.checksum(2), Some(two.header.checksum));
        assert_eq!(reopened.journal.unknown_ops().count(), 0);
    }

    /// The superblock's view head wins over a different header the journal holds at its op
    /// (an older write read back), not only over an empty slot (R5).
    #[test]
    fn recovery_puts_back_the_view_head_over_a_different_entry() {
        let mut replica = formatted(1);
        let config = replica.config;
        let root = replica.journal.checksum(0).expect("the root");
        let old = prepare(0, 1, root);
        let head = prepare(2, 1, root);
        replica.journal.write_prepare(&mut replica.storage, &old);
        replica.superblock.view_head = Some(head.header);
        replica.view = 2;
        replica.log_view = 2;
        replica.persist_view_state();
        let reopened =
            Replica::open(config, replica.into_storage(), KvMachine::new()).expect("reopen");
        assert_eq!(reopened.journal.checksum(1), Some(head.header.checksum));
        assert_eq!(reopened.commit_min, 0, "{}", reopened.describe());
    }

    /// The commit point a replica knew survives its restart: it comes back from the
    /// superblock, and the recovered backup executes what it holds up to it.
    #[test]
    fn a_restarted_replica_keeps_the_commit_point_it_persisted() {
        let mut replica = formatted(1);
        let config = replica.config;
        let root = replica.journal.checksum(0).expect("the root");
        let one = prepare(0, 1, root);
        let two = prepare(0, 2, one.header.checksum);
        replica.journal.write_prepare(&mut replica.storage, &one);
        replica.journal.write_prepare(&mut replica.storage, &two);
        replica.commit_max = 2;
        replica.persist_view_state();
        let reopened =
            Replica::open(config, replica.into_storage(), KvMachine::new()).expect("reopen");
        assert_eq!(reopened.commit_max, 2, "{}", reopened.describe());
        assert_eq!(reopened.commit_min, 2, "{}", reopened.describe());
    }

    /// A freshly formatted primary resumes leading view 0 only if nothing can have been
    /// prepared: a slot whose both zones were written and read back as nothing usable is an
    /// op the backups may have acked, which a resumed primary would overwrite.
    #[test]
    fn a_formatted_primary_with_an_unknown_slot_does_not_resume() {
        let config = Config::new(CLUSTER, 3, 0);
        let mut storage = MemoryStorage::new();
        Replica::<MemoryStorage, KvMachine>::format(&config, &mut storage);
        let fresh = Replica::open(config, storage.clone(), KvMachine::new()).expect("open");
        assert!(fresh.status == Status::Normal && fresh.is_primary());
        storage.write(Zone::WalHeaders, 1, bytes::Bytes::from_static(b"torn"));
        storage.write(Zone::WalPrepares, 1, bytes::Bytes::from_static(b"torn"));
        let damaged = Replica::open(config, storage, KvMachine::new()).expect("open");
        assert_eq!(damaged.journal.unknown_ops().collect::<Vec<_>>(), vec![1]);
        assert!(
            !(damaged.status == Status::Normal && damaged.is_primary()),
            "{}",
            damaged.describe()
        );
    }
}
