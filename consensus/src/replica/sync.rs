//! State transfer: a replica that has fallen behind the cluster's journal rings (the ops it
//! needs next may already be overwritten everywhere) fetches a peer's newest checkpoint in
//! chunks, verifies it whole, and installs it (see `checkpointing.rs`).
//!
//! Peers advertise their checkpoint op in pings, pongs and commit heartbeats. A checkpoint is
//! committed state (a replica checkpoints only ops it executed), so any peer's checkpoint newer
//! than what this replica executed is safe to install.

use super::*;
use crate::checkpoint::Checkpoint;
use crate::wire::{RequestSyncCheckpoint, SyncCheckpoint, CHECKPOINT_SIZE_MAX};

/// Largest chunk of a checkpoint per message (the replica's `sync_chunk_size` may be less).
pub const SYNC_CHUNK_SIZE_MAX: usize = 16 * 1024;
/// Requests a pinned peer may leave unanswered before the transfer starts over elsewhere.
const SYNC_SILENT_ROUNDS: u32 = 8;
/// Repair rounds without executing anything, while behind, before falling back to a state
/// transfer (repair alone cannot fetch ops that every peer has already overwritten).
const SYNC_STALL_ROUNDS: u32 = 16;

/// A checkpoint being received.
#[derive(Debug, Clone)]
pub(super) struct SyncProgress {
    op: u64,
    checksum: u128,
    size: u64,
    bytes: Vec<u8>,
    from: u8,
    /// Requests sent since the last chunk accepted.
    unanswered: u32,
}

impl<S: Storage, M: StateMachine> Replica<S, M> {
    /// The lowest checkpoint op worth fetching.
    fn sync_op_min(&self) -> u64 {
        match self.sync_required {
            Some(op) => op.max(1),
            None => self.commit_min + 1,
        }
    }

    /// Whether this replica should fetch a checkpoint now.
    fn sync_wanted(&self) -> bool {
        if self.sync_required.is_some() {
            return true;
        }
        if self.is_primary() && (self.status == Status::Normal || self.dvc_log_set) {
            return false;
        }
        if self.sv_beyond_ring {
            return true;
        }
        // A peer checkpointed beyond this replica's ring: the ops this replica needs next may
        // be overwritten on every peer that far ahead.
        let window_max = self.journal.window_max();
        let peer_beyond_ring = self
            .other_replicas()
            .any(|r| self.peer_checkpoint[r as usize] > window_max);
        if peer_beyond_ring {
            return true;
        }
        let behind = self.commit_max > self.commit_min;
        let head_beyond_ring = self.commit_max + self.config.pipeline_max as u64 > window_max;
        behind && (head_beyond_ring || self.repair_stalled >= SYNC_STALL_ROUNDS)
    }

    /// Runs with repair: counts stalled rounds and asks a peer for the next chunk.
    pub(super) fn sync_tick(&mut self) {
        if self.commit_max > self.commit_min && self.commit_min == self.repair_commit_min {
            self.repair_stalled = self.repair_stalled.saturating_add(1);
        } else {
            self.repair_stalled = 0;
        }
        self.repair_commit_min = self.commit_min;
        if !self.sync_wanted() {
            self.sync = None;
            return;
        }
        let op_min = self.sync_op_min();
        let peer = match &mut self.sync {
            Some(progress)
                if self.peer_checkpoint[progress.from as usize] >= progress.op
                    && progress.unanswered < SYNC_SILENT_ROUNDS =>
            {
                // Pinned to the peer that serves this checkpoint, while it answers.
                progress.unanswered += 1;
                Some(progress.from)
            }
            _ => {
                self.sync = None;
                self.sync_peer(op_min)
            }
        };
        if let Some(peer) = peer {
            self.request_sync_chunk(peer);
        }
    }

    /// A peer that advertised a checkpoint at or above `op_min`, at random.
    fn sync_peer(&mut self, op_min: u64) -> Option<u8> {
        let candidates: Vec<u8> = self
            .other_replicas()
            .filter(|&r| self.peer_checkpoint[r as usize] >= op_min)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[self.prng.below(candidates.len() as u64) as usize])
    }

    fn request_sync_chunk(&mut self, peer: u8) {
        let (offset, checksum) = self
            .sync
            .as_ref()
            .map_or((0, 0), |p| (p.bytes.len() as u64, p.checksum));
        let request = RequestSyncCheckpoint {
            checkpoint_op_min: self.sync_op_min(),
            offset,
            checkpoint_checksum: checksum,
        };
        self.send_after_view(
            peer,
            Command::RequestSyncCheckpoint(request),
            bytes::Bytes::new(),
        );
    }

    /// Records what a peer advertised of its checkpoint.
    pub(super) fn note_peer_checkpoint(&mut self, peer: u8, op: u64) {
        let known = &mut self.peer_checkpoint[peer as usize];
        *known = (*known).max(op);
    }

    /// A peer in this very view advertised its checkpoint (in a ping, pong or commit of this
    /// view). It executed that op, so the op is committed; and a replica of this view executes
    /// only ops of this view's log (its starting log, or what this view's primary committed;
    /// a state transfer from a newer view moves it out of this view first). So this view's
    /// primary may commit its pipeline up to that op without acks: backups that executed
    /// and checkpointed past the ops it still holds can no longer ack them (seed 406574).
    /// A deposed primary hears no peer of a newer view here, so it never commits this way.
    pub(super) fn note_peer_checkpoint_in_view(&mut self, peer: u8, view: u32, op: u64) {
        self.note_peer_checkpoint(peer, op);
        if view != self.view {
            return;
        }
        let known = &mut self.peer_checkpoint_view[peer as usize];
        if (view, op) > *known {
            *known = (view, op);
            if self.status == Status::Normal && self.is_primary() && op > self.commit_max {
                self.primary_commit_pipeline();
            }
        }
    }

    /// The newest checkpoint a peer advertised in this view (committed, see above).
    pub(super) fn peer_checkpoint_in_view(&self) -> u64 {
        self.other_replicas()
            .map(|r| self.peer_checkpoint_view[r as usize])
            .filter(|&(view, _)| view == self.view)
            .map(|(_, op)| op)
            .max()
            .unwrap_or(0)
    }

    // ----- Serving -----

    pub(super) fn on_request_sync_checkpoint(&mut self, message: &Message) {
        let Command::RequestSyncCheckpoint(r) = message.header.command else {
            unreachable!("dispatched on command");
        };
        if self.sync_required.is_some() {
            return;
        }
        // The checkpoint a transfer under way continues, while this replica still holds it
        // (its newest or the one before); else its newest, from the start.
        let wanted = [&self.checkpoint, &self.checkpoint_previous]
            .into_iter()
            .flatten()
            .find(|c| r.checkpoint_checksum != 0 && c.checksum == r.checkpoint_checksum);
        let (checkpoint, offset) = match wanted {
            Some(checkpoint) => (checkpoint, r.offset),
            None => match &self.checkpoint {
                Some(newest) => (newest, 0),
                None => return,
            },
        };
        let Some(op) = checkpoint.op(&self.ctx) else {
            return;
        };
        let size = checkpoint.blob.len() as u64;
        if op < r.checkpoint_op_min || offset >= size || size > CHECKPOINT_SIZE_MAX {
            return;
        }
        let end = (offset + self.config.sync_chunk_size as u64).min(size);
        let chunk = checkpoint.blob.slice(offset as usize..end as usize);
        let reply = SyncCheckpoint {
            checkpoint_checksum: checkpoint.checksum,
            checkpoint_op: op,
            size,
            offset,
        };
        self.send_after_view(
            message.header.replica,
            Command::SyncCheckpoint(reply),
            chunk,
        );
    }

    // ----- Receiving -----

    pub(super) fn on_sync_checkpoint(&mut self, message: &Message) {
        let Command::SyncCheckpoint(c) = message.header.command else {
            unreachable!("dispatched on command");
        };
        let from = message.header.replica;
        if !self.sync_wanted() || c.checkpoint_op < self.sync_op_min() {
            return;
        }
        self.note_peer_checkpoint(from, c.checkpoint_op);
        let same = self.sync.as_ref().is_some_and(|p| {
            (p.op, p.checksum, p.size) == (c.checkpoint_op, c.checkpoint_checksum, c.size)
        });
        if !same {
            // A newer checkpoint (the peer checkpointed again mid-transfer, and serves only its
            // newest), or the first chunk of one: start over with it, from its first chunk.
            let newer = self.sync.as_ref().is_none_or(|p| c.checkpoint_op >= p.op);
            if !newer {
                return;
            }
            self.sync = Some(SyncProgress {
                op: c.checkpoint_op,
                checksum: c.checkpoint_checksum,
                size: c.size,
                bytes: Vec::new(),
                from,
                unanswered: 0,
            });
            if c.offset != 0 {
                return self.request_sync_chunk(from);
            }
        }
        let progress = self.sync.as_mut().expect("set above");
        if c.offset != progress.bytes.len() as u64 {
            return;
        }
        progress.bytes.extend_from_slice(&message.body);
        // Paired with the decoder, which keeps every chunk inside the checkpoint's size.
        assert!(
            progress.bytes.len() as u64 <= progress.size,
            "chunk beyond the checkpoint"
        );
        progress.from = from;
        progress.unanswered = 0;
        if (progress.bytes.len() as u64) < progress.size {
            return self.request_sync_chunk(from);
        }
        let progress = self.sync.take().expect("set above");
        let checkpoint = Checkpoint::from_blob(bytes::Bytes::from(progress.bytes));
        let intact = checkpoint.checksum == progress.checksum
            && checkpoint.op(&self.ctx) == Some(progress.op);
        if !intact || !self.install_synced_checkpoint(checkpoint, message.header.view) {
            self.stats.state_syncs_rejected += 1;
        }
    }
}
