//! The write-ahead log: per op, the prepare's header in a redundant header record and, once it
//! has arrived, the whole prepare. An in-memory index mirrors what storage holds, so lookups
//! cost no read.
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

use crate::storage::{Storage, Zone};
use crate::wire::{self, checksum, DecodeContext, Header, Message, HEADER_SIZE};
use bytes::Bytes;

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

const RECORD_SIZE: usize = HEADER_SIZE + 1 + 16;
const RECORD_DOMAIN: u64 = 0x5741_4c48_4452_5243; // "WALHDRRC"

/// The log index over storage: a dense vector by op (ops are contiguous from the root), so
/// the hash-chain walks that run on every message cost no tree search.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    entries: Vec<Option<Entry>>,
    /// Entries found faulty (at recovery or on a read), for the storage_faults counters.
    faults_found: u64,
}

/// A header record: the header, whether its prepare was written here, and a checksum of both.
fn encode_record(header: &Header, prepare_written: bool) -> Bytes {
    let mut b = Vec::with_capacity(RECORD_SIZE);
    b.extend_from_slice(&header.encode());
    b.push(prepare_written as u8);
    let sum = checksum(&b, RECORD_DOMAIN);
    b.extend_from_slice(&sum.to_le_bytes());
    Bytes::from(b)
}

fn decode_record(b: &[u8], ctx: &DecodeContext, op: u64) -> Option<(Header, bool)> {
    if b.len() != RECORD_SIZE || b[HEADER_SIZE] > 1 {
        return None;
    }
    let sum = u128::from_le_bytes(b[HEADER_SIZE + 1..].try_into().ok()?);
    if sum != checksum(&b[..HEADER_SIZE + 1], RECORD_DOMAIN) {
        return None;
    }
    let header = Header::decode(&b[..HEADER_SIZE], ctx).ok()?;
    matches!(header.command, wire::Command::Prepare(p) if p.op == op)
        .then_some((header, b[HEADER_SIZE] == 1))
}

impl Journal {
    /// Rebuilds the index from storage, classifying each op (see the module comment).
    pub fn recover(storage: &dyn Storage, ctx: &DecodeContext) -> Journal {
        let mut journal = Journal::default();
        let mut ops = storage.indices(Zone::WalHeaders);
        ops.extend(storage.indices(Zone::WalPrepares));
        ops.sort_unstable();
        ops.dedup();
        for op in ops {
            if let Some(entry) = recover_entry(storage, ctx, op) {
                if entry.state == PrepareState::Faulty {
                    journal.faults_found += 1;
                }
                journal.set(op, entry);
            }
        }
        journal
    }

    fn entry(&self, op: u64) -> Option<&Entry> {
        self.entries.get(usize::try_from(op).ok()?)?.as_ref()
    }

    fn set(&mut self, op: u64, entry: Entry) {
        let index = usize::try_from(op).expect("op fits in memory");
        if self.entries.len() <= index {
            self.entries.resize(index + 1, None);
        }
        self.entries[index] = Some(entry);
    }

    pub fn header(&self, op: u64) -> Option<&Header> {
        self.entry(op).map(|e| &e.header)
    }

    pub fn checksum(&self, op: u64) -> Option<u128> {
        self.header(op).map(|h| h.checksum)
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
    /// here, or was here before a fault. Only the rest may be nacked.
    pub fn may_have_acked(&self, op: u64) -> bool {
        matches!(self.entry(op), Some(e) if e.state != PrepareState::Missing)
    }

    /// Entries found faulty so far.
    pub fn faults_found(&self) -> u64 {
        self.faults_found
    }

    /// Highest op with a header.
    pub fn op_max(&self) -> Option<u64> {
        self.entries
            .iter()
            .rposition(|e| e.is_some())
            .map(|i| i as u64)
    }

    /// Headers of ops in `min..=max`, newest first.
    pub fn headers_desc(&self, min: u64, max: u64) -> impl Iterator<Item = &Header> {
        let end = (max.saturating_add(1)).min(self.entries.len() as u64);
        let start = min.min(end);
        self.entries[start as usize..end as usize]
            .iter()
            .rev()
            .filter_map(|e| e.as_ref().map(|e| &e.header))
    }

    /// Writes a whole prepare (and its header record) and marks it present.
    pub fn write_prepare(&mut self, storage: &mut dyn Storage, message: &Message) {
        let op = message.header.prepare().op;
        storage.write(Zone::WalPrepares, op, message.encode());
        storage.write(Zone::WalHeaders, op, encode_record(&message.header, true));
        let entry = Entry {
            header: message.header,
            state: PrepareState::Present,
        };
        self.set(op, entry);
    }

    /// Records a header whose prepare has not arrived (repair will fetch it). Replaces a
    /// different header at that op; keeps the entry as it is if the checksum is unchanged.
    pub fn write_header(&mut self, storage: &mut dyn Storage, header: &Header) {
        let op = header.prepare().op;
        if self.checksum(op) == Some(header.checksum) {
            return;
        }
        storage.erase(Zone::WalPrepares, op);
        storage.write(Zone::WalHeaders, op, encode_record(header, false));
        let entry = Entry {
            header: *header,
            state: PrepareState::Missing,
        };
        self.set(op, entry);
    }

    /// Forgets the entry of `op` (a header known to be stale).
    pub fn remove(&mut self, storage: &mut dyn Storage, op: u64) {
        storage.erase(Zone::WalPrepares, op);
        storage.erase(Zone::WalHeaders, op);
        if let Some(slot) = self.entries.get_mut(op as usize) {
            *slot = None;
        }
    }

    /// Removes every entry above `op`.
    pub fn truncate_after(&mut self, storage: &mut dyn Storage, op: u64) {
        let above: Vec<u64> = (op + 1..self.entries.len() as u64)
            .filter(|&k| self.entry(k).is_some())
            .collect();
        for k in above {
            self.remove(storage, k);
        }
        self.entries.truncate((op + 1) as usize);
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
        let message = read_prepare(storage, ctx, op, entry.header.checksum);
        if message.is_none() {
            self.faults_found += 1;
            self.set(
                op,
                Entry {
                    header: entry.header,
                    state: PrepareState::Faulty,
                },
            );
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
        read_prepare(storage, ctx, op, entry.header.checksum)
    }
}

/// Classifies one op from its header record and its prepare slot.
fn recover_entry(storage: &dyn Storage, ctx: &DecodeContext, op: u64) -> Option<Entry> {
    let record = storage.read(Zone::WalHeaders, op);
    let record = record.as_deref().and_then(|b| decode_record(b, ctx, op));
    let prepare_bytes = storage.read(Zone::WalPrepares, op);
    let prepare = prepare_bytes
        .as_deref()
        .and_then(|b| wire::decode(b, ctx).ok())
        .filter(|m| matches!(m.header.command, wire::Command::Prepare(p) if p.op == op));
    let entry = |header, state| Some(Entry { header, state });
    match (record, prepare) {
        (Some((header, _)), Some(m)) if m.header.checksum == header.checksum => {
            entry(header, PrepareState::Present)
        }
        // The header record is the newer write when the two disagree.
        (Some((header, written)), Some(_)) => entry(header, faulty_or_missing(written)),
        (Some((header, written)), None) => {
            // A prepare slot that exists but does not decode was written here.
            let written = written || prepare_bytes.is_some();
            entry(header, faulty_or_missing(written))
        }
        // The header record is lost, but the prepare carries its own header.
        (None, Some(m)) => entry(m.header, PrepareState::Present),
        // Neither readable: nothing to index. The op is a gap that repair fills by hash chain.
        (None, None) => None,
    }
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
    op: u64,
    checksum: u128,
) -> Option<Message> {
    let bytes = storage.read(Zone::WalPrepares, op)?;
    let message = wire::decode(&bytes, ctx).ok()?;
    (message.header.checksum == checksum).then_some(message)
}
