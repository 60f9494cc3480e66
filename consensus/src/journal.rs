//! The write-ahead log: a ring of slots, each holding an op's header in a redundant header
//! record and, once it has arrived, the whole prepare. An in-memory index mirrors what storage
//! holds, so lookups cost no read.
//!
//! Each entry's prepare is in one of three states, and the difference matters for safety:
//! - `Present`: durable here, and verified by checksum whenever it is read;
//! - `Missing`: never written here (the header came from a start_view or from repair), so this
//!   replica never acknowledged it and may nack it;
//! - `Faulty`: written here once (so possibly acknowledged), now unreadable. It must be
//!   repaired, and must never be nacked (protocol-aware recovery, Alagappan et al., FAST'18).
//!
//! The header record stores whether the prepare was written, so the three states survive a
//! restart: a header whose prepare was written but reads back corrupt or absent is `Faulty`.
//!
//! A record also names the prepare of the same op it supersedes in the slot's prepare zone (the
//! last one written there, if its header differs): where the two zones name the same op with
//! different checksums, the record is the newer write only if it names that prepare. Otherwise
//! the prepare was written after the record's write (which a crash lost, or which a stale
//! sector took back): seed 30081, a stale record at the head of the log, where nothing above
//! tells the two apart.

use crate::storage::{Storage, Zone};
use crate::wire::{self, checksum, DecodeContext, Header, Message, HEADER_SIZE};
use bytes::{Buf, BufMut, Bytes};

/// What this replica holds of an op's prepare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepareState {
    Present,
    Missing,
    Faulty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    header: Header,
    state: PrepareState,
}

const RECORD_SIZE: usize = HEADER_SIZE + 1 + 16 + 16;
const RECORD_DOMAIN: u64 = 0x5741_4c48_4452_5243; // "WALHDRRC"
const TOMBSTONE_DOMAIN: u64 = 0x5741_4c54_4f4d_4253; // "WALTOMBS"

/// The log index over storage: a ring of `slot_count` slots, op `k` in slot `k % slot_count`,
/// so lookups cost no search and memory stays bounded however long the log grows.
///
/// The journal holds ops from its checkpoint up to `window_max()`: no op above that is ever
/// written, because its slot still holds an op the replica needs to replay after a crash.
/// The checkpoint's own header is kept apart (it anchors the hash chain even once its slot is
/// reused or found corrupt).
#[derive(Debug, Clone)]
pub struct Journal {
    slots: Vec<Option<Entry>>,
    checkpoint: Header,
    /// Ops of the window whose slot held something unreadable at recovery: this replica may
    /// have acknowledged them without knowing even their header. Until each is written again
    /// (or a start_view or checkpoint passes it) the replica must not take part in choosing a
    /// log, where a missing header would count as a nack.
    unknown: std::collections::BTreeSet<u64>,
    /// Entries found faulty (at recovery or on a read), for the storage_faults counters.
    faults_found: u64,
    /// Ops whose header record recovery found stale (see `resolve_stale_records`), to be
    /// written again when the replica opens (`rewrite_stale_records`).
    records_stale: Vec<u64>,
    /// Per slot: the op and checksum of the last prepare submitted to its prepare zone (as
    /// recovery found it), kept when the zone is erased: a later record of that op with
    /// another header names it as superseded (see the module comment).
    zones: Vec<Option<(u64, u128)>>,
}

/// A header record: the header, whether its prepare was written here, the checksum of the
/// prepare of the same op it supersedes in the prepare zone (0 for none), and a checksum of all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    header: Header,
    prepare_written: bool,
    supersedes: u128,
}

fn encode_record(header: &Header, prepare_written: bool, supersedes: u128) -> Bytes {
    let mut b = bytes::BytesMut::with_capacity(RECORD_SIZE);
    b.put_slice(&header.encode());
    b.put_u8(prepare_written as u8);
    b.put_u128_le(supersedes);
    let sum = checksum(&b, RECORD_DOMAIN);
    b.put_u128_le(sum);
    assert_eq!(b.len(), RECORD_SIZE);
    b.freeze()
}

fn decode_record(b: &[u8], ctx: &DecodeContext) -> Option<Record> {
    if b.len() != RECORD_SIZE {
        return None;
    }
    let (body, mut sum) = b.split_at(RECORD_SIZE - 16);
    if sum.get_u128_le() != checksum(body, RECORD_DOMAIN) {
        return None;
    }
    let header = Header::decode(&body[..HEADER_SIZE], ctx).ok()?;
    let mut rest = &body[HEADER_SIZE..];
    let prepare_written = match rest.get_u8() {
        0 => false,
        1 => true,
        _ => return None,
    };
    let supersedes = rest.get_u128_le();
    matches!(header.command, wire::Command::Prepare(_)).then_some(Record {
        header,
        prepare_written,
        supersedes,
    })
}

impl Journal {
    /// An empty journal whose log starts at `checkpoint` (the root, or a checkpoint's header).
    pub fn new(slot_count: u64, checkpoint: Header) -> Journal {
        assert!(slot_count >= 2);
        Journal {
            slots: vec![None; usize::try_from(slot_count).expect("slot count fits in memory")],
            checkpoint,
            unknown: std::collections::BTreeSet::new(),
            faults_found: 0,
            records_stale: Vec::new(),
            zones: vec![None; usize::try_from(slot_count).expect("slot count fits in memory")],
        }
    }

    /// Rebuilds the index from storage, classifying each slot (see the module comment). Slots
    /// holding an op outside the window (stale from before the checkpoint, or misdirected)
    /// are ignored: the op they held is covered by the checkpoint.
    pub fn recover(
        storage: &dyn Storage,
        ctx: &DecodeContext,
        slot_count: u64,
        checkpoint: Header,
        namespace: u64,
    ) -> Journal {
        let mut journal = Journal::new(slot_count, checkpoint);
        // Written locations, whether or not they read back: a sector can be unreadable
        // (read as nothing) and still have been written.
        let records = storage.indices(Zone::WalHeaders);
        let prepares = storage.indices(Zone::WalPrepares);
        let mut slots = records.clone();
        slots.extend(prepares.iter().copied());
        slots.sort_unstable();
        slots.dedup();
        for slot in slots.into_iter().filter(|&s| s < slot_count) {
            let prepare = zone_prepare(storage, ctx, slot_count, slot, namespace);
            journal.zones[slot as usize] = prepare
                .as_ref()
                .map(|m| (m.header.prepare().op, m.header.checksum));
            let prepare_written = prepares.binary_search(&slot).is_ok();
            let entry = recover_entry(
                storage,
                ctx,
                slot_count,
                slot,
                namespace,
                prepare,
                prepare_written,
            );
            let Some(entry) = entry else {
                // Neither zone is readable as this slot's. If both were written (whatever
                // they read back now: garbage, or nothing for an unreadable sector), a prepare
                // and its header record were written here and both are lost: had they been
                // the window's op for this slot, this replica may have acked it. (With one zone
                // never written, no prepare of the current op was ever durable here: a
                // header-only entry, or a misdirected write into an unused slot.)
                let op = journal.window_op(slot);
                let both_written =
                    records.binary_search(&slot).is_ok() && prepares.binary_search(&slot).is_ok();
                if both_written && op <= journal.window_max() {
                    journal.unknown.insert(op);
                    journal.faults_found += 1;
                }
                continue;
            };
            let op = entry.header.prepare().op;
            if op <= journal.checkpoint_op() || op > journal.window_max() {
                continue;
            }
            if entry.state == PrepareState::Faulty {
                journal.faults_found += 1;
            }
            journal.set(op, entry);
        }
        journal.resolve_stale_records(storage, ctx, namespace);
        journal
    }

    /// A slot whose header record and prepare name the same op with different checksums: one
    /// of the two zones reads back stale, or a crash fell between the prepare's write and its
    /// record's. Recovery took the record (the newer write when nothing is stale). But where
    /// the op above names the prepare's checksum as its parent, the prepare is the op's in
    /// this replica's log, and the record is the stale zone: the prepare was written here last
    /// (and may have been acknowledged, even executed). Indexed under the record's older
    /// header, the op would go into a do_view_change as that header, which nacks the op the
    /// log holds there; a new primary that learned a lower commit point would truncate a
    /// committed op (seed 2019, had the view change come before repair).
    fn resolve_stale_records(
        &mut self,
        storage: &dyn Storage,
        ctx: &DecodeContext,
        namespace: u64,
    ) {
        let candidates: Vec<(u64, u128)> = self
            .slots
            .iter()
            .flatten()
            .filter(|e| e.state != PrepareState::Present)
            .map(|e| (e.header.prepare().op, e.header.checksum))
            .collect();
        for (op, indexed) in candidates {
            let Some(message) = storage
                .read(Zone::WalPrepares, self.slot(op) as u64)
                .and_then(|b| wire::decode(&b, ctx).ok())
            else {
                continue;
            };
            let same_op = matches!(message.header.command, wire::Command::Prepare(p) if p.op == op);
            let checksum = message.header.checksum;
            let named_above = self
                .entry(op + 1)
                .is_some_and(|above| above.header.prepare().parent == checksum);
            if message.header.namespace == namespace
                && same_op
                && checksum != indexed
                && named_above
            {
                let header = message.header;
                self.set(
                    op,
                    Entry {
                        header,
                        state: PrepareState::Present,
                    },
                );
                self.records_stale.push(op);
            }
        }
    }

    /// Writes the header record of every op whose record recovery found stale, so it no
    /// longer depends on the op above still naming it (a later view change may truncate that).
    pub fn rewrite_stale_records(&mut self, storage: &mut dyn Storage) {
        for op in std::mem::take(&mut self.records_stale) {
            let Some(entry) = self.entry(op).copied() else {
                continue;
            };
            let slot = self.slot(op) as u64;
            let record = encode_record(
                &entry.header,
                true,
                self.superseded(op, entry.header.checksum),
            );
            storage.write(Zone::WalHeaders, slot, record);
        }
    }

    pub fn slot_count(&self) -> u64 {
        self.slots.len() as u64
    }

    /// The op after the checkpoint that lives in `slot`.
    fn window_op(&self, slot: u64) -> u64 {
        let first = self.checkpoint_op() + 1;
        let count = self.slot_count();
        first + (slot + count - first % count) % count
    }

    /// Whether some op above `op` may have been acknowledged here without its header being
    /// known (see `unknown`).
    pub fn has_unknown_above(&self, op: u64) -> bool {
        self.unknown.range(op + 1..).next().is_some()
    }

    /// The ops that may have been acknowledged here without their header being known.
    pub fn unknown_ops(&self) -> impl Iterator<Item = u64> + '_ {
        self.unknown.iter().copied()
    }

    /// Forgets the entry of `op`, which is not the one this replica's log holds there, and
    /// counts the op as unknown: the replica may have acked the one its log holds. The disk is
    /// left as it is, so a later recovery finds the same entry and forgets it again.
    pub fn distrust(&mut self, op: u64) {
        if self.entry(op).is_none() || op <= self.checkpoint_op() {
            return;
        }
        let slot = self.slot(op);
        self.slots[slot] = None;
        self.unknown.insert(op);
        self.faults_found += 1;
    }

    /// A start_view's log ends at `op`: ops above it were not committed by the quorum that
    /// chose that log (which this replica was not part of), so they no longer matter.
    pub fn clear_unknown_above(&mut self, op: u64) {
        self.unknown.retain(|&k| k <= op);
    }

    fn slot(&self, op: u64) -> usize {
        (op % self.slot_count()) as usize
    }

    /// The op of the checkpoint the journal's log starts at.
    pub fn checkpoint_op(&self) -> u64 {
        self.checkpoint.prepare().op
    }

    /// The highest op the journal may hold: one more would reuse the checkpoint's slot.
    pub fn window_max(&self) -> u64 {
        self.checkpoint_op() + self.slot_count() - 1
    }

    /// Moves the log's start to a newer checkpoint; the slots of ops at or below it are free
    /// to be reused (their entries stay indexed until then, to serve lagging peers).
    pub fn set_checkpoint(&mut self, header: Header) {
        assert!(
            header.prepare().op >= self.checkpoint_op(),
            "checkpoints only move forward"
        );
        self.checkpoint = header;
        let op = self.checkpoint_op();
        self.unknown.retain(|&k| k > op);
    }

    /// Drops (from the index only) every entry at or below `op`: after a state transfer to a
    /// checkpoint at `op`, what this replica held below it may be from an abandoned log.
    pub fn forget_through(&mut self, op: u64) {
        self.unknown.retain(|&k| k > op);
        for slot in self.slots.iter_mut() {
            if slot.is_some_and(|e| e.header.prepare().op <= op) {
                *slot = None;
            }
        }
    }

    fn entry(&self, op: u64) -> Option<&Entry> {
        self.slots[self.slot(op)]
            .as_ref()
            .filter(|e| e.header.prepare().op == op)
    }

    fn set(&mut self, op: u64, entry: Entry) {
        assert!(
            op > self.checkpoint_op() && op <= self.window_max(),
            "op {op} outside the journal window"
        );
        let slot = self.slot(op);
        self.slots[slot] = Some(entry);
    }

    pub fn header(&self, op: u64) -> Option<&Header> {
        if op == self.checkpoint_op() {
            return Some(&self.checkpoint);
        }
        self.entry(op).map(|e| &e.header)
    }

    pub fn checksum(&self, op: u64) -> Option<u128> {
        self.header(op).map(|h| h.checksum)
    }

    /// Whether the journal holds a header for `op` that differs from `checksum` (an op it
    /// does not hold at all, for instance one below the checkpoint, contradicts nothing).
    pub fn contradicts(&self, op: u64, checksum: u128) -> bool {
        self.checksum(op).is_some_and(|have| have != checksum)
    }

    pub fn state(&self, op: u64) -> Option<PrepareState> {
        self.entry(op).map(|e| e.state)
    }

    /// Whether the prepare of `op` with `checksum` is durable here.
    pub fn has_prepare(&self, op: u64, checksum: u128) -> bool {
        matches!(self.entry(op), Some(e) if e.state == PrepareState::Present && e.header.checksum == checksum)
    }

    pub fn is_present(&self, op: u64) -> bool {
        matches!(self.entry(op), Some(e) if e.state == PrepareState::Present)
    }

    /// Whether this replica may ever have acknowledged `op` as it is indexed: its prepare is
    /// here, or was here before a fault (the checkpoint's op is committed: it counts as held).
    /// Only the rest may be nacked.
    pub fn may_have_acked(&self, op: u64) -> bool {
        op == self.checkpoint_op()
            || self.unknown.contains(&op)
            || matches!(self.entry(op), Some(e) if e.state != PrepareState::Missing)
    }

    /// Entries found faulty so far.
    pub fn faults_found(&self) -> u64 {
        self.faults_found
    }

    /// Highest op with a header (at least the checkpoint's).
    pub fn op_max(&self) -> u64 {
        self.slots
            .iter()
            .flatten()
            .map(|e| e.header.prepare().op)
            .fold(self.checkpoint_op(), u64::max)
    }

    /// Headers of ops in `min..=max` that the journal holds, newest first.
    pub fn headers_desc(&self, min: u64, max: u64) -> impl Iterator<Item = &Header> {
        let min = min.max(max.saturating_sub(self.slot_count() - 1));
        (min..=max).rev().filter_map(|op| self.header(op))
    }

    /// Writes a whole prepare (and its header record) and marks it present.
    pub fn write_prepare(&mut self, storage: &mut dyn Storage, message: &Message) {
        let op = message.header.prepare().op;
        let entry = Entry {
            header: message.header,
            state: PrepareState::Present,
        };
        self.set(op, entry);
        self.unknown.remove(&op);
        let supersedes = self.superseded(op, message.header.checksum);
        let slot = self.slot(op);
        self.zones[slot] = Some((op, message.header.checksum));
        let slot = slot as u64;
        storage.write(Zone::WalPrepares, slot, message.encode());
        let record = encode_record(&message.header, true, supersedes);
        storage.write(Zone::WalHeaders, slot, record);
    }

    /// The checksum of the prepare of `op` last written to its slot's prepare zone, if it is
    /// not `checksum` (0 for none): what a record of `op` with header `checksum` supersedes.
    fn superseded(&self, op: u64, checksum: u128) -> u128 {
        match self.zones[self.slot(op)] {
            Some((zone_op, zone_checksum)) if zone_op == op && zone_checksum != checksum => {
                zone_checksum
            }
            _ => 0,
        }
    }

    /// Records a header whose prepare has not arrived (repair will fetch it). Replaces a
    /// different header at that op; keeps the entry as it is if the checksum is unchanged.
    pub fn write_header(&mut self, storage: &mut dyn Storage, header: &Header) {
        let op = header.prepare().op;
        if self.checksum(op) == Some(header.checksum) {
            return;
        }
        // An op that may have been acked here before its slot became unreadable is faulty,
        // not missing: it must never be nacked. That holds as well when the op's entry is
        // already faulty and the new header differs: a faulty entry's header may be a stale
        // record of an older prepare at the op, while the prepare this replica wrote (and
        // acked, even executed) last is the one the new header names. Marking it missing would
        // let a do_view_change nack a committed op, and the view change truncate it (seed
        // 2019). Like TigerBeetle's `set_header_as_dirty`, replacing the header keeps the
        // faulty bit; only writing the prepare (or removing the entry) clears it.
        let faulty = matches!(self.entry(op), Some(e) if e.state == PrepareState::Faulty);
        let state = if self.unknown.remove(&op) || faulty {
            PrepareState::Faulty
        } else {
            PrepareState::Missing
        };
        self.set(
            op,
            Entry {
                header: *header,
                state,
            },
        );
        let slot = self.slot(op) as u64;
        // The record says "written here" for a faulty entry, so it stays faulty (never
        // nacked) across a restart too. Its prepare zone gets a tombstone, not an erase: if a
        // fault later takes the record, both zones were still written and neither reads back,
        // so recovery finds the op unknown. After an erase it would find one zone empty, the
        // mark of a header-only entry never acked here, and nack an op it may have acked
        // (found by the log selection model: a replica that lost an acked op, learned its
        // header from a start_view, then lost that record, let a view change drop the op).
        let written = state == PrepareState::Faulty;
        if written {
            storage.write(Zone::WalPrepares, slot, tombstone(op));
        } else {
            storage.erase(Zone::WalPrepares, slot);
        }
        let record = encode_record(header, written, self.superseded(op, header.checksum));
        storage.write(Zone::WalHeaders, slot, record);
    }

    /// Forgets the entry of `op` (a header known to be stale).
    pub fn remove(&mut self, storage: &mut dyn Storage, op: u64) {
        if self.entry(op).is_none() || op == self.checkpoint_op() {
            return;
        }
        let slot = self.slot(op);
        self.slots[slot] = None;
        storage.erase(Zone::WalPrepares, slot as u64);
        storage.erase(Zone::WalHeaders, slot as u64);
    }

    /// Removes every entry above `op`.
    pub fn truncate_after(&mut self, storage: &mut dyn Storage, op: u64) {
        let above: Vec<u64> = self
            .slots
            .iter()
            .flatten()
            .map(|e| e.header.prepare().op)
            .filter(|&k| k > op)
            .collect();
        for k in above {
            self.remove(storage, k);
        }
    }

    /// Reads the prepare of `op`, verified against the indexed checksum. A prepare indexed as
    /// present that fails to read is marked faulty (repair will replace it).
    pub fn prepare(
        &mut self,
        storage: &dyn Storage,
        ctx: &DecodeContext,
        op: u64,
    ) -> Option<Message> {
        let entry = *self.entry(op)?;
        if entry.state != PrepareState::Present {
            return None;
        }
        let message = read_prepare(storage, ctx, self.slot(op) as u64, entry.header.checksum);
        if message.is_none() {
            self.faults_found += 1;
            let slot = self.slot(op);
            self.slots[slot] = Some(Entry {
                header: entry.header,
                state: PrepareState::Faulty,
            });
        }
        message
    }

    /// Reads the prepare of `op` without updating the index (for read-only views).
    pub fn peek_prepare(
        &self,
        storage: &dyn Storage,
        ctx: &DecodeContext,
        op: u64,
    ) -> Option<Message> {
        let entry = self.entry(op)?;
        if entry.state != PrepareState::Present {
            return None;
        }
        read_prepare(storage, ctx, self.slot(op) as u64, entry.header.checksum)
    }
}

/// Classifies one op from its header record and its prepare slot (`prepare`: what it decodes
/// to, `zone_prepare`).
/// A header record or prepare that names an op of another slot, or another group (a write of
/// another group's region misdirected here), was misdirected (or is garbage that happens to
/// decode): it is not this slot's.
fn recover_entry(
    storage: &dyn Storage,
    ctx: &DecodeContext,
    slot_count: u64,
    slot: u64,
    namespace: u64,
    prepare: Option<Message>,
    prepare_written: bool,
) -> Option<Entry> {
    let ours = |h: &Header| h.namespace == namespace;
    let in_slot = |op: u64| op % slot_count == slot;
    let record = storage.read(Zone::WalHeaders, slot);
    let record = record
        .as_deref()
        .and_then(|b| decode_record(b, ctx))
        .filter(|r| ours(&r.header) && in_slot(r.header.prepare().op))
        .map(|r| (r.header, r.prepare_written, r.supersedes));
    let entry = |header, state| Some(Entry { header, state });
    match (record, prepare) {
        (Some((header, ..)), Some(m)) if m.header.checksum == header.checksum => {
            entry(header, PrepareState::Present)
        }
        // A slot's ops only grow, so a prepare of a later op than the record is the newer
        // write (the record's write was lost): its header is verified, and it is here.
        (Some((header, ..)), Some(m)) if m.header.prepare().op > header.prepare().op => {
            entry(m.header, PrepareState::Present)
        }
        // Another prepare of the same op that the record does not name as superseded was
        // written after it: the record's newer write was lost, or its zone reads back stale.
        (Some((header, _, supersedes)), Some(m))
            if m.header.prepare().op == header.prepare().op && m.header.checksum != supersedes =>
        {
            entry(m.header, PrepareState::Present)
        }
        // Otherwise the header record is the newer write (a header that replaced the prepare
        // it names at the same op, or a prepare left over from an earlier wrap).
        (Some((header, written, _)), Some(_)) => entry(header, faulty_or_missing(written)),
        (Some((header, written, _)), None) => {
            // A prepare slot that was written but does not decode (or reads as nothing) was
            // written here.
            let written = written || prepare_written;
            entry(header, faulty_or_missing(written))
        }
        // The header record is lost, but the prepare carries its own header.
        (None, Some(m)) => entry(m.header, PrepareState::Present),
        // Neither readable: nothing to index (see `Journal::unknown`).
        (None, None) => None,
    }
}

/// What a faulty entry's prepare zone holds once its header is rewritten (see
/// `Journal::write_header`): too short to decode as a message, so it never reads back as a
/// prepare, but it shows the zone was written.
fn tombstone(op: u64) -> Bytes {
    let mut bytes = Vec::with_capacity(16);
    bytes.put_u64_le(TOMBSTONE_DOMAIN);
    bytes.put_u64_le(op);
    Bytes::from(bytes)
}

/// The prepare a slot's prepare zone holds, if it decodes as this group's and this slot's.
fn zone_prepare(
    storage: &dyn Storage,
    ctx: &DecodeContext,
    slot_count: u64,
    slot: u64,
    namespace: u64,
) -> Option<Message> {
    storage
        .read(Zone::WalPrepares, slot)
        .as_deref()
        .and_then(|b| wire::decode(b, ctx).ok())
        .filter(|m| m.header.namespace == namespace)
        .filter(
            |m| matches!(m.header.command, wire::Command::Prepare(p) if p.op % slot_count == slot),
        )
}

fn faulty_or_missing(prepare_written: bool) -> PrepareState {
    if prepare_written {
        PrepareState::Faulty
    } else {
        PrepareState::Missing
    }
}

fn read_prepare(
    storage: &dyn Storage,
    ctx: &DecodeContext,
    slot: u64,
    checksum: u128,
) -> Option<Message> {
    let bytes = storage.read(Zone::WalPrepares, slot)?;
    let message = wire::decode(&bytes, ctx).ok()?;
    (message.header.checksum == checksum).then_some(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::root_prepare;
    use crate::storage::MemoryStorage;
    use crate::wire::{Command, Operation, Prepare};

    const CLUSTER: u128 = 9;
    const SLOTS: u64 = 8;

    fn ctx() -> DecodeContext {
        DecodeContext {
            cluster: CLUSTER,
            replica_count: 3,
        }
    }

    /// Prepares 1..=count chained from the root.
    fn chain(count: u64) -> Vec<Message> {
        let mut parent = root_prepare(CLUSTER).header.checksum;
        (1..=count)
            .map(|op| {
                let p = Prepare {
                    parent,
                    client: 1,
                    request_checksum: 0,
                    op,
                    commit: op - 1,
                    timestamp: op,
                    session: 1,
                    request: op as u32,
                    operation: Operation::StateMachine,
                };
                let m = Message::new(
                    Header::new(CLUSTER, 0, 0, Command::Prepare(p)),
                    Bytes::new(),
                );
                parent = m.header.checksum;
                m
            })
            .collect()
    }

    fn journal_with(storage: &mut MemoryStorage, prepares: &[Message]) -> Journal {
        let mut journal = Journal::new(SLOTS, root_prepare(CLUSTER).header);
        for m in prepares {
            journal.write_prepare(storage, m);
        }
        journal
    }

    fn recover(storage: &MemoryStorage) -> Journal {
        Journal::recover(storage, &ctx(), SLOTS, root_prepare(CLUSTER).header, 0)
    }

    #[test]
    fn recovery_classifies_slots() {
        let prepares = chain(5);
        let mut storage = MemoryStorage::new();
        journal_with(&mut storage, &prepares);
        // Op 2: its header record reads back corrupt, its prepare is intact.
        storage.write(Zone::WalHeaders, 2, Bytes::from_static(b"garbage"));
        // Op 3: its prepare is corrupt, its record says it was written here.
        storage.write(Zone::WalPrepares, 3, Bytes::from_static(b"garbage"));
        // Op 4: nothing readable at all.
        storage.write(Zone::WalHeaders, 4, Bytes::from_static(b"garbage"));
        storage.write(Zone::WalPrepares, 4, Bytes::from_static(b"garbage"));
        let mut journal = recover(&storage);
        assert_eq!(journal.state(1), Some(PrepareState::Present));
        assert_eq!(journal.state(2), Some(PrepareState::Present));
        assert_eq!(journal.state(3), Some(PrepareState::Faulty));
        assert!(journal.may_have_acked(3));
        assert_eq!(journal.header(4), None);
        assert!(
            journal.may_have_acked(4),
            "an unreadable slot may hold an acked op"
        );
        assert!(journal.has_unknown_above(3));
        assert!(!journal.has_unknown_above(4));
        assert_eq!(journal.state(5), Some(PrepareState::Present));
        assert_eq!(journal.faults_found(), 2);
        // Repair brings op 4's header back: faulty (never nacked), not missing.
        journal.write_header(&mut storage, &prepares[3].header);
        assert_eq!(journal.state(4), Some(PrepareState::Faulty));
        assert!(!journal.has_unknown_above(0));
    }

    #[test]
    fn an_unknown_op_whose_header_came_back_stays_unknown_if_its_record_is_lost_again() {
        // Op 4's slot was lost whole (unknown), then its header came back (a start_view):
        // faulty. Then a latent fault takes the new record. This replica may have acked op 4:
        // recovery must find it unknown again, not a header-only entry never written here.
        let prepares = chain(5);
        let mut storage = MemoryStorage::new();
        journal_with(&mut storage, &prepares);
        storage.write(Zone::WalHeaders, 4, Bytes::from_static(b"garbage"));
        storage.write(Zone::WalPrepares, 4, Bytes::from_static(b"garbage"));
        let mut journal = recover(&storage);
        assert_eq!(journal.unknown_ops().collect::<Vec<_>>(), vec![4]);
        journal.write_header(&mut storage, &prepares[3].header);
        assert_eq!(journal.state(4), Some(PrepareState::Faulty));
        assert_eq!(recover(&storage).state(4), Some(PrepareState::Faulty));
        storage.write(Zone::WalHeaders, 4, Bytes::from_static(b"garbage"));
        let recovered = recover(&storage);
        assert_eq!(recovered.header(4), None);
        assert!(
            recovered.may_have_acked(4),
            "both zones written, neither readable"
        );
        assert_eq!(recovered.unknown_ops().collect::<Vec<_>>(), vec![4]);
        // A header-only entry (never written here) lost the same way is simply gone.
        journal.write_header(&mut storage, &prepares[4].header);
        let mut other = prepares[4].header;
        if let Command::Prepare(ref mut p) = other.command {
            p.client = 55;
        }
        other.seal(&[]);
        journal.write_header(&mut storage, &other);
        storage.write(Zone::WalHeaders, 5, Bytes::from_static(b"garbage"));
        let recovered = recover(&storage);
        assert!(!recovered.may_have_acked(5));
        assert_eq!(recovered.unknown_ops().collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn a_prepare_zone_that_was_written_keeps_its_op_faulty_whatever_it_holds_now() {
        // Op 2: its record says the prepare was written, but the zone reads back empty (a
        // lost sector): it may have been acked. Op 4: a header-only entry (never written
        // here) whose zone now holds something unreadable (a misdirected write, say): the
        // record alone cannot prove the prepare never landed there, so it is faulty too.
        let prepares = chain(5);
        let mut storage = MemoryStorage::new();
        let mut journal = journal_with(&mut storage, &prepares[..3]);
        storage.erase(Zone::WalPrepares, 2);
        journal.write_header(&mut storage, &prepares[3].header);
        assert_eq!(journal.state(4), Some(PrepareState::Missing));
        storage.write(Zone::WalPrepares, 4, Bytes::from_static(b"misdirected"));
        let recovered = recover(&storage);
        assert_eq!(recovered.state(1), Some(PrepareState::Present));
        assert_eq!(recovered.state(2), Some(PrepareState::Faulty));
        assert_eq!(recovered.state(4), Some(PrepareState::Faulty));
        assert!(recovered.may_have_acked(2) && recovered.may_have_acked(4));
    }

    /// A disk whose `hidden` locations were written but read back as nothing (an unreadable
    /// sector a disk returns no data for): still among the zone's `indices`.
    struct Unreadable {
        inner: MemoryStorage,
        hidden: Vec<(Zone, u64)>,
    }

    impl Storage for Unreadable {
        fn read(&self, zone: Zone, index: u64) -> Option<Bytes> {
            if self.hidden.contains(&(zone, index)) {
                return None;
            }
            self.inner.read(zone, index)
        }

        fn write(&mut self, zone: Zone, index: u64, data: Bytes) {
            self.hidden.retain(|&at| at != (zone, index));
            self.inner.write(zone, index, data);
        }

        fn erase(&mut self, zone: Zone, index: u64) {
            self.hidden.retain(|&at| at != (zone, index));
            self.inner.erase(zone, index);
        }

        fn indices(&self, zone: Zone) -> Vec<u64> {
            self.inner.indices(zone)
        }
    }

    #[test]
    fn a_slot_whose_record_is_torn_and_whose_prepare_reads_as_nothing_is_unknown() {
        // Op 3 was prepared here (so it may have been acked); a crash tore its header record
        // and its prepare's sector now reads back as nothing. Both zones were written: op 3
        // is unknown, never taken for a header-only entry this replica could nack.
        let prepares = chain(3);
        let mut inner = MemoryStorage::new();
        journal_with(&mut inner, &prepares);
        inner.write(Zone::WalHeaders, 3, Bytes::from_static(b"torn"));
        let storage = Unreadable {
            inner,
            hidden: vec![(Zone::WalPrepares, 3)],
        };
        let recovered = Journal::recover(&storage, &ctx(), SLOTS, root_prepare(CLUSTER).header, 0);
        assert_eq!(recovered.state(2), Some(PrepareState::Present));
        assert_eq!(recovered.unknown_ops().collect::<Vec<_>>(), vec![3]);
        // The same with the record unreadable and the prepare torn.
        let mut inner = MemoryStorage::new();
        journal_with(&mut inner, &prepares);
        inner.write(Zone::WalPrepares, 3, Bytes::from_static(b"torn"));
        let storage = Unreadable {
            inner,
            hidden: vec![(Zone::WalHeaders, 3)],
        };
        let recovered = Journal::recover(&storage, &ctx(), SLOTS, root_prepare(CLUSTER).header, 0);
        assert_eq!(recovered.unknown_ops().collect::<Vec<_>>(), vec![3]);
        // A header-only entry (its prepare never written here) whose prepare zone was since
        // written (a misdirected write, say) and now reads as nothing: the record alone cannot
        // prove the prepare never landed there, so the op is faulty, not missing.
        let mut inner = MemoryStorage::new();
        let mut journal = journal_with(&mut inner, &prepares[..2]);
        journal.write_header(&mut inner, &prepares[2].header);
        inner.write(Zone::WalPrepares, 3, Bytes::from_static(b"misdirected"));
        let storage = Unreadable {
            inner,
            hidden: vec![(Zone::WalPrepares, 3)],
        };
        let recovered = Journal::recover(&storage, &ctx(), SLOTS, root_prepare(CLUSTER).header, 0);
        assert_eq!(recovered.state(3), Some(PrepareState::Faulty));
        assert!(recovered.may_have_acked(3));
    }

    /// A journal of ops 1..=`ops` whose op 3 header record reads back stale: another
    /// prepare of op 3 (`old`, an abandoned one), marked written, beside the prepare of
    /// op 3 the log holds.
    fn stale_record_at_op_3(ops: u64) -> (Vec<Message>, Header, MemoryStorage) {
        let prepares = chain(ops);
        let mut old = prepares[2].header;
        if let Command::Prepare(ref mut p) = old.command {
            p.client = 99;
        }
        old.seal(&[]);
        let mut storage = MemoryStorage::new();
        journal_with(&mut storage, &prepares);
        // What slot 3's record held after `old` was written there (it superseded nothing).
        storage.write(Zone::WalHeaders, 3, encode_record(&old, true, 0));
        (prepares, old, storage)
    }

    #[test]
    fn a_stale_record_at_the_head_does_not_hide_the_prepare_written_after_it() {
        // Seed 30081: op 3 was prepared as `old` (abandoned), then prepared again as `new`,
        // committed. Its header record reads back stale (`old`) beside the prepare of `new`,
        // and op 3 is the head: nothing above names `new`. The record does not name `new` as
        // a prepare it superseded, so `new` was written after it: `new` is op 3's entry.
        let (prepares, _, storage) = stale_record_at_op_3(3);
        let journal = recover(&storage);
        assert_eq!(journal.checksum(3), Some(prepares[2].header.checksum));
        assert_eq!(journal.state(3), Some(PrepareState::Present));
    }

    #[test]
    fn a_record_that_replaced_a_prepare_wins_over_it_when_the_erase_was_lost() {
        // Op 3's prepare `new` was written, then a start_view installed another header there
        // (`old`): the prepare zone's erase was lost in a crash, the record's write landed.
        let (prepares, old, _) = stale_record_at_op_3(3);
        let mut storage = MemoryStorage::new();
        let mut journal = journal_with(&mut storage, &prepares);
        let zone = storage.read(Zone::WalPrepares, 3).unwrap();
        journal.write_header(&mut storage, &old);
        storage.write(Zone::WalPrepares, 3, zone.clone());
        let recovered = recover(&storage);
        assert_eq!(recovered.checksum(3), Some(old.checksum));
        assert_eq!(recovered.state(3), Some(PrepareState::Missing));
        // So is a later header at the op, though the erase came with the first one.
        let mut third = old;
        if let Command::Prepare(ref mut p) = third.command {
            p.client = 77;
        }
        third.seal(&[]);
        journal.write_header(&mut storage, &third);
        storage.write(Zone::WalPrepares, 3, zone);
        assert_eq!(recover(&storage).checksum(3), Some(third.checksum));
    }

    #[test]
    fn a_faulty_entry_stays_faulty_when_repair_replaces_its_header() {
        // Op 3 was prepared as `new`, then as `old`, whose prepare write was lost in a crash
        // while its record (which names `new` as superseded) landed: recovery indexes `old` as
        // faulty (op 3 is the head here). Then `new`'s header comes back (repair, a
        // start_view). This replica may have acked op 3 (seed 2019): it must stay faulty
        // (never nacked), also across a restart, or a do_view_change nacks a committed op.
        let (prepares, old, mut storage) = stale_record_at_op_3(3);
        storage.write(
            Zone::WalHeaders,
            3,
            encode_record(&old, true, prepares[2].header.checksum),
        );
        let mut journal = recover(&storage);
        assert_eq!(journal.checksum(3), Some(old.checksum));
        assert_eq!(journal.state(3), Some(PrepareState::Faulty));
        journal.write_header(&mut storage, &prepares[2].header);
        assert_eq!(journal.checksum(3), Some(prepares[2].header.checksum));
        assert_eq!(journal.state(3), Some(PrepareState::Faulty));
        assert!(
            journal.may_have_acked(3),
            "an op acked here is never nacked"
        );
        let restarted = recover(&storage);
        assert_eq!(restarted.checksum(3), Some(prepares[2].header.checksum));
        assert_eq!(restarted.state(3), Some(PrepareState::Faulty));
        // A missing entry (never written here) stays missing when its header is replaced.
        journal.write_header(&mut storage, &old);
        journal.remove(&mut storage, 3);
        journal.write_header(&mut storage, &old);
        assert_eq!(journal.state(3), Some(PrepareState::Missing));
        journal.write_header(&mut storage, &prepares[2].header);
        assert_eq!(journal.state(3), Some(PrepareState::Missing));
        assert!(!recover(&storage).may_have_acked(3));
    }

    #[test]
    fn a_stale_record_beside_the_prepare_the_op_above_names_is_rewritten() {
        // As above, but the replica restarts before repair: the op above (4) names `new`, the
        // prepare in slot 3, so the stale record (`old`) is not taken for op 3. Indexed as
        // `old`, op 3 would go into a do_view_change as `old`, a nack of the committed `new`.
        let (prepares, old, mut storage) = stale_record_at_op_3(4);
        let mut journal = recover(&storage);
        assert_eq!(journal.checksum(3), Some(prepares[2].header.checksum));
        assert_eq!(journal.state(3), Some(PrepareState::Present));
        journal.rewrite_stale_records(&mut storage);
        // The record no longer depends on op 4: a view change may truncate it.
        journal.remove(&mut storage, 4);
        let restarted = recover(&storage);
        assert_eq!(restarted.checksum(3), Some(prepares[2].header.checksum));
        assert_eq!(restarted.state(3), Some(PrepareState::Present));
        // Without an op above naming the prepare, the stale record still loses: it does not
        // name the prepare as one it superseded.
        storage.write(Zone::WalHeaders, 3, encode_record(&old, true, 0));
        let head = recover(&storage);
        assert_eq!(head.checksum(3), Some(prepares[2].header.checksum));
        assert_eq!(head.state(3), Some(PrepareState::Present));
    }

    #[test]
    fn another_groups_entries_are_not_recovered_as_ours() {
        let prepares = chain(5);
        let mut storage = MemoryStorage::new();
        journal_with(&mut storage, &prepares);
        // Slot 2 now holds group 9's op 2 (a write misdirected from another region of the
        // node's disk): valid checksums, right slot, wrong group.
        let mut header = prepares[1].header;
        header.namespace = 9;
        let foreign = Message::new(header, prepares[1].body.clone());
        storage.write(Zone::WalHeaders, 2, encode_record(&foreign.header, true, 0));
        storage.write(Zone::WalPrepares, 2, foreign.encode());
        let journal = recover(&storage);
        assert_eq!(journal.header(2), None, "not taken for this group's op 2");
        assert!(
            journal.may_have_acked(2),
            "this group's op 2 may have been acked there"
        );
        assert_eq!(journal.faults_found(), 1);
        assert_eq!(journal.state(3), Some(PrepareState::Present));
        // Read as group 9's journal, only that slot is its own.
        let other = Journal::recover(&storage, &ctx(), SLOTS, root_prepare(CLUSTER).header, 9);
        assert_eq!(
            other.header(2).map(|h| h.checksum),
            Some(foreign.header.checksum)
        );
        assert_eq!(other.header(3), None);
    }

    #[test]
    fn a_lost_header_record_write_leaves_the_newer_prepare_in_charge() {
        // Op 9 reuses op 1's slot; its prepare landed but its header record write was lost,
        // so the slot's record still names op 1 (stale from the earlier wrap).
        let prepares = chain(9);
        let mut storage = MemoryStorage::new();
        let mut journal = journal_with(&mut storage, &prepares[..7]);
        let stale_record = storage.read(Zone::WalHeaders, 1).unwrap();
        journal.set_checkpoint(prepares[3].header);
        journal.write_prepare(&mut storage, &prepares[7]);
        journal.write_prepare(&mut storage, &prepares[8]);
        storage.write(Zone::WalHeaders, 1, stale_record);
        let recovered = Journal::recover(&storage, &ctx(), SLOTS, prepares[3].header, 0);
        assert_eq!(recovered.state(9), Some(PrepareState::Present));
        assert_eq!(recovered.checksum(9), Some(prepares[8].header.checksum));
        assert_eq!(recovered.op_max(), 9);
    }

    #[test]
    fn the_ring_never_writes_beyond_its_window() {
        let prepares = chain(9);
        let mut storage = MemoryStorage::new();
        let mut journal = journal_with(&mut storage, &prepares[..7]);
        assert_eq!(journal.window_max(), SLOTS - 1);
        let overflow = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut j = journal.clone();
            let mut s = storage.clone();
            j.write_prepare(&mut s, &prepares[7]);
        }));
        assert!(overflow.is_err(), "op 8 would reuse the checkpoint's slot");
        journal.set_checkpoint(prepares[0].header);
        journal.write_prepare(&mut storage, &prepares[7]);
        assert_eq!(
            journal.header(8).map(|h| h.checksum),
            Some(prepares[7].header.checksum)
        );
        assert_eq!(journal.header(0), None, "slot 0 now holds op 8");
        assert!(storage
            .indices(Zone::WalPrepares)
            .iter()
            .all(|&s| s < SLOTS));
    }
}
