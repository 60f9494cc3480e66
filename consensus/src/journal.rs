//! The write-ahead log: per op, the prepare's header (always) and its whole prepare (once it
//! has arrived). An in-memory index mirrors what storage holds, so lookups cost no read.
//!
//! Invariants: every indexed header is a sealed prepare header for its op; an entry marked
//! present has its prepare in storage with exactly that checksum (checked again on every read).

use crate::storage::{Storage, Zone};
use crate::wire::{self, DecodeContext, Header, Message};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    header: Header,
    /// The prepare body is durable in storage.
    present: bool,
}

/// The log index over storage: a dense vector by op (ops are contiguous from the root), so
/// the hash-chain walks that run on every message cost no tree search.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    entries: Vec<Option<Entry>>,
}

impl Journal {
    /// Rebuilds the index from storage, dropping anything that fails its checksum.
    pub fn recover(storage: &dyn Storage, ctx: &DecodeContext) -> Journal {
        let mut journal = Journal::default();
        for op in storage.indices(Zone::WalHeaders) {
            let Some(bytes) = storage.read(Zone::WalHeaders, op) else {
                continue;
            };
            let Ok(header) = Header::decode(&bytes, ctx) else {
                continue;
            };
            if !matches!(header.command, wire::Command::Prepare(p) if p.op == op) {
                continue;
            }
            let present = read_prepare(storage, ctx, op, header.checksum).is_some();
            journal.set(op, Entry { header, present });
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

    /// Whether the prepare of `op` with `checksum` is durable here.
    pub fn has_prepare(&self, op: u64, checksum: u128) -> bool {
        matches!(self.entry(op), Some(e) if e.present && e.header.checksum == checksum)
    }

    pub fn is_present(&self, op: u64) -> bool {
        matches!(self.entry(op), Some(e) if e.present)
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

    /// Writes a whole prepare (its header too) and marks it present.
    pub fn write_prepare(&mut self, storage: &mut dyn Storage, message: &Message) {
        let op = message.header.prepare().op;
        storage.write(Zone::WalPrepares, op, message.encode());
        storage.write(
            Zone::WalHeaders,
            op,
            bytes::Bytes::copy_from_slice(&message.header.encode()),
        );
        self.set(
            op,
            Entry {
                header: message.header,
                present: true,
            },
        );
    }

    /// Records a header whose prepare has not arrived (repair will fetch it). Replaces a
    /// different header at that op; keeps the prepare if the checksum is unchanged.
    pub fn write_header(&mut self, storage: &mut dyn Storage, header: &Header) {
        let op = header.prepare().op;
        if self.checksum(op) == Some(header.checksum) {
            return;
        }
        storage.erase(Zone::WalPrepares, op);
        storage.write(
            Zone::WalHeaders,
            op,
            bytes::Bytes::copy_from_slice(&header.encode()),
        );
        self.set(
            op,
            Entry {
                header: *header,
                present: false,
            },
        );
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

    /// Reads the prepare of `op`, verified against the indexed checksum.
    pub fn prepare(&self, storage: &dyn Storage, ctx: &DecodeContext, op: u64) -> Option<Message> {
        let entry = self.entry(op)?;
        if !entry.present {
            return None;
        }
        read_prepare(storage, ctx, op, entry.header.checksum)
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
