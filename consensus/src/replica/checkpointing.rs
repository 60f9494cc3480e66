//! Taking checkpoints (every `checkpoint_interval` executed ops) and installing one (at open,
//! or from a peer by state transfer). A checkpoint moves the journal's window forward: the
//! slots of ops at or below it may be reused.

use super::*;
use crate::checkpoint::Checkpoint;

impl<S: Storage, M: StateMachine> Replica<S, M> {
    /// Called after each execution: at a multiple of the interval, checkpoints the state.
    pub(super) fn maybe_checkpoint(&mut self) {
        let op = self.commit_min;
        if !op.is_multiple_of(self.config.checkpoint_interval()) || op <= self.checkpoint_op() {
            return;
        }
        let header = *self.journal.header(op).expect("executed op header");
        let checkpoint = Checkpoint::new(
            &header,
            &self.state_machine.snapshot(),
            &self.client_table.snapshot(),
        );
        self.persist_checkpoint(checkpoint, header);
        self.stats.checkpoints += 1;
    }

    /// Writes `checkpoint` to the area the superblock does not point at, then the superblock,
    /// so the previous checkpoint stays intact until the new one is durable.
    fn persist_checkpoint(&mut self, checkpoint: Checkpoint, header: Header) {
        let op = header.prepare().op;
        assert!(op <= self.commit_min && op <= self.commit_max);
        let area = 1 - self.superblock.checkpoint_area;
        checkpoint.write(&mut self.storage, area);
        self.superblock.checkpoint_op = op;
        self.superblock.checkpoint_checksum = checkpoint.checksum;
        self.superblock.checkpoint_size = checkpoint.blob.len() as u64;
        self.superblock.checkpoint_area = area;
        self.persist_view_state();
        self.checkpoint_pending = Some((self.storage.submitted, op));
        self.journal.set_checkpoint(header);
        self.checkpoint_previous = self.checkpoint.replace(checkpoint);
    }

    /// Loads the superblock's checkpoint into the state machine and client table (at open).
    /// False if no copy of it reads back intact: the replica must then get one by state
    /// transfer before it can execute anything.
    pub(super) fn load_checkpoint(&mut self) -> bool {
        let sb = self.superblock;
        if sb.checkpoint_op == 0 {
            return true;
        }
        let Some(checkpoint) =
            Checkpoint::read(&self.storage, sb.checkpoint_area, sb.checkpoint_checksum)
        else {
            return false;
        };
        let header = match checkpoint.parts(&self.ctx) {
            Some(parts) if parts.header.prepare().op == sb.checkpoint_op => parts.header,
            _ => return false,
        };
        if !self.restore_checkpoint(&checkpoint) {
            return false;
        }
        self.journal.set_checkpoint(header);
        self.checkpoint = Some(checkpoint);
        true
    }

    /// Restores the state machine and client table from `checkpoint`, all or nothing.
    fn restore_checkpoint(&mut self, checkpoint: &Checkpoint) -> bool {
        let Some(parts) = checkpoint.parts(&self.ctx) else {
            return false;
        };
        let mut client_table = self.client_table.clone();
        if !client_table.restore(parts.client_table, &self.ctx) {
            return false;
        }
        if !self.state_machine.restore(parts.state) {
            return false;
        }
        self.client_table = client_table;
        true
    }

    /// Installs a checkpoint received from a peer in `view`: newer than anything executed
    /// here, and committed (a replica checkpoints only ops it executed). The journal above it
    /// is kept as far as it chains to the checkpoint's header; the rest is from a log the
    /// cluster abandoned (the checkpoint's op may have been committed in a later view than
    /// this replica's log_view), never committed, and is truncated.
    ///
    /// The op may have been committed in a view as late as `view`, so the replica moves up to
    /// that view: start_views of earlier views may predate what it now holds.
    pub(super) fn install_synced_checkpoint(&mut self, checkpoint: Checkpoint, view: u32) -> bool {
        let Some(header) = checkpoint.parts(&self.ctx).map(|p| p.header) else {
            return false;
        };
        let op = header.prepare().op;
        if op <= self.commit_min && self.sync_required.is_none() {
            return false;
        }
        if !self.restore_checkpoint(&checkpoint) {
            return false;
        }
        self.commit_min = op;
        self.commit_max = self.commit_max.max(op);
        self.journal.forget_through(op);
        self.journal.set_checkpoint(header);
        let mut chained = op;
        while chained < self.op
            && self.journal.header(chained + 1).is_some_and(|h| {
                h.prepare().parent == self.journal.checksum(chained).expect("chained")
            })
        {
            chained += 1;
        }
        self.stats.ops_truncated += self.op.saturating_sub(chained);
        self.journal.truncate_after(&mut self.storage, chained);
        self.op = chained;
        self.view_log.clear();
        if self
            .superblock
            .view_head
            .is_some_and(|h| h.prepare().op > chained || h.prepare().op <= op)
        {
            // Truncated with the abandoned log, or covered by the checkpoint.
            self.superblock.view_head = None;
        }
        let recovering = self.sync_required.is_some();
        if recovering && view > self.view {
            self.view = view;
        }
        self.persist_checkpoint(checkpoint, header);
        self.timestamp_last = self.timestamp_last.max(self.head_timestamp());
        self.stats.state_syncs += 1;
        self.sv_beyond_ring = false;
        self.sync = None;
        self.repair_stalled = 0;
        if self.sync_required.take().is_some() {
            self.resume_after_recovery();
        } else if view > self.view {
            self.transition_to_view_change(view);
        } else {
            self.commit_journal();
            self.backup_send_prepare_oks(None);
            self.primary_try_start_view();
        }
        true
    }

    /// The op of this replica's newest durable checkpoint.
    pub fn checkpoint_op(&self) -> u64 {
        self.superblock.checkpoint_op
    }

    /// The checksum of this replica's newest checkpoint (0 for the root).
    pub fn checkpoint_checksum(&self) -> u128 {
        self.superblock.checkpoint_checksum
    }
}
