//! The write-ahead log: per op, the prepare's header (always) and its whole prepare (once it
//! has arrived). An in-memory index mirrors what storage holds, so lookups cost no read.
//!
//! Invariants: every indexed header is a sealed prepare header for its op; an entry marked
//! present has its prepare in storage with exactly that checksum (checked again on every read).

use crate::storage::{Storage, Zone};
use crate::wire::{self, DecodeContext, Header, Message};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    header: Header,
    /// The prepare body is durable in storage.
    present: bool,
}

/// The log index over storage.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    entries: BTreeMap<u64, Entry>,
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
            journal.entries.insert(op, Entry { header, present });
        }
        journal
    }

    pub fn header(&self, op: u64) -> Option<&Header> {
        self.entries.get(&op).map(|e| &e.header)
    }

    pub fn checksum(&self, op: u64) -> Option<u128> {
        self.header(op).map(|h| h.checksum)
    }

    /// Whether the prepare of `op` with `checksum` is durable here.
    pub fn has_prepare(&self, op: u64, checksum: u128) -> bool {
        matches!(self.entries.get(&op), Some(e) if e.present && e.header.checksum == checksum)
    }

    pub fn is_present(&self, op: u64) -> bool {
        matches!(self.entries.get(&op), Some(e) if e.present)
    }

    /// Highest op with a header.
    pub fn op_max(&self) -> Option<u64> {
        self.entries.keys().next_back().copied()
    }

    /// Headers of ops in `min..=max`, newest first.
    pub fn headers_desc(&self, min: u64, max: u64) -> impl Iterator<Item = &Header> {
        // An empty range (min > max) yields nothing rather than panicking in BTreeMap.
        let range = if min <= max {
            self.entries.range(min..=max)
        } else {
            self.entries.range(0..0)
        };
        range.rev().map(|(_, e)| &e.header)
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
        self.entries.insert(
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
        self.entries.insert(
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
        self.entries.remove(&op);
    }

    /// Removes every entry above `op`.
    pub fn truncate_after(&mut self, storage: &mut dyn Storage, op: u64) {
        let above: Vec<u64> = self.entries.range(op + 1..).map(|(&k, _)| k).collect();
        for k in above {
            self.remove(storage, k);
        }
    }

    /// Reads the prepare of `op`, verified against the indexed checksum.
    pub fn prepare(&self, storage: &dyn Storage, ctx: &DecodeContext, op: u64) -> Option<Message> {
        let entry = self.entries.get(&op)?;
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
