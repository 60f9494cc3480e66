//! Checkpoints: the state machine and client table as of one committed op, with that op's
//! header (the anchor of the hash chain above it). A checkpoint lets the journal reuse the
//! slots of every op at or below it, and is what a lagging replica receives in a state
//! transfer.
//!
//! On disk a checkpoint lives in one of two areas, two copies each. A new checkpoint goes to
//! the area the superblock does not point at, and only then is the superblock updated, so a
//! crash or a torn write never leaves the replica without its last good checkpoint.

use crate::storage::{Storage, Zone};
use crate::wire::{checksum, DecodeContext, Header, HEADER_SIZE};
use bytes::Bytes;

const DOMAIN: u64 = 0x4348_4543_4b50_4f49; // "CHECKPOI"
/// Copies written per area.
pub const CHECKPOINT_COPIES: u64 = 2;

/// A checkpoint as bytes: `header | state length (u64) | state | client table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub blob: Bytes,
    pub checksum: u128,
}

/// A checkpoint taken apart (each part still to be validated by its owner).
pub struct CheckpointParts<'a> {
    pub header: Header,
    pub state: &'a [u8],
    pub client_table: &'a [u8],
}

impl Checkpoint {
    pub fn new(header: &Header, state: &[u8], client_table: &[u8]) -> Checkpoint {
        let mut b = Vec::with_capacity(HEADER_SIZE + 8 + state.len() + client_table.len());
        b.extend_from_slice(&header.encode());
        b.extend_from_slice(&(state.len() as u64).to_le_bytes());
        b.extend_from_slice(state);
        b.extend_from_slice(client_table);
        Checkpoint::from_blob(Bytes::from(b))
    }

    pub fn from_blob(blob: Bytes) -> Checkpoint {
        let checksum = checksum(&blob, DOMAIN);
        Checkpoint { blob, checksum }
    }

    /// The op this checkpoint is as of.
    pub fn op(&self, ctx: &DecodeContext) -> Option<u64> {
        self.parts(ctx).map(|p| p.header.prepare().op)
    }

    /// Splits the blob. None if it is not a checkpoint (its header is not a prepare).
    pub fn parts(&self, ctx: &DecodeContext) -> Option<CheckpointParts<'_>> {
        let b = &self.blob[..];
        let header = Header::decode(b.get(..HEADER_SIZE)?, ctx).ok()?;
        if !matches!(header.command, crate::wire::Command::Prepare(_)) {
            return None;
        }
        let at = HEADER_SIZE + 8;
        let len = u64::from_le_bytes(b.get(HEADER_SIZE..at)?.try_into().ok()?);
        let end = at.checked_add(usize::try_from(len).ok()?)?;
        Some(CheckpointParts {
            header,
            state: b.get(at..end)?,
            client_table: b.get(end..)?,
        })
    }

    /// Writes both copies into `area`.
    pub fn write(&self, storage: &mut dyn Storage, area: u8) {
        for copy in 0..CHECKPOINT_COPIES {
            storage.write(Zone::Checkpoint, index(area, copy), self.blob.clone());
        }
    }

    /// Reads the checkpoint with `checksum` from `area`: the first copy that verifies.
    pub fn read(storage: &dyn Storage, area: u8, checksum: u128) -> Option<Checkpoint> {
        (0..CHECKPOINT_COPIES)
            .filter_map(|copy| storage.read(Zone::Checkpoint, index(area, copy)))
            .map(Checkpoint::from_blob)
            .find(|c| c.checksum == checksum)
    }
}

fn index(area: u8, copy: u64) -> u64 {
    area as u64 * CHECKPOINT_COPIES + copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::root_prepare;
    use crate::storage::MemoryStorage;

    /// Both copies are written, and a checkpoint whose first copy reads back corrupted (or as
    /// nothing) is read from the second: one fault must not lose the checkpoint (a solo
    /// replica would refuse to open, a replica of a cluster would need a state transfer).
    #[test]
    fn a_checkpoint_survives_the_loss_of_either_copy() {
        let header = root_prepare(7).header;
        let checkpoint = Checkpoint::new(&header, b"state", b"clients");
        for area in [0u8, 1] {
            for lost in 0..CHECKPOINT_COPIES {
                let mut storage = MemoryStorage::new();
                checkpoint.write(&mut storage, area);
                let at = index(area, lost);
                if lost == 0 {
                    storage.write(Zone::Checkpoint, at, Bytes::from_static(b"corrupted"));
                } else {
                    storage.erase(Zone::Checkpoint, at);
                }
                let read = Checkpoint::read(&storage, area, checkpoint.checksum);
                assert_eq!(
                    read.map(|c| c.checksum),
                    Some(checkpoint.checksum),
                    "area {area}, copy {lost} lost"
                );
                assert!(Checkpoint::read(&storage, 1 - area, checkpoint.checksum).is_none());
            }
        }
    }
}
