//! The durable view state: view, log_view, commit and the current checkpoint, in redundant
//! checksummed copies.
//!
//! Every update writes all copies with a higher sequence number; recovery takes the valid copy
//! with the highest sequence, so a torn or corrupt copy never loses the last good state.

use crate::storage::{Storage, Zone};
use crate::wire::{checksum, Command, DecodeContext, Header, HEADER_SIZE};
use bytes::Bytes;

/// Copies written on every update.
pub const SUPERBLOCK_COPIES: u64 = 4;
const SIZE: usize = 16 + 8 + 16 + 4 + 4 + 8 + 1 + 1 + 8 + 16 + 8 + 1 + 1 + HEADER_SIZE + 8;
const DOMAIN: u64 = 0x5355_5045_5242_4c4b; // "SUPERBLK"

/// What a replica must remember across a crash to vote safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuperBlock {
    pub sequence: u64,
    pub cluster: u128,
    pub view: u32,
    pub log_view: u32,
    pub commit_max: u64,
    pub replica: u8,
    pub replica_count: u8,
    /// The op of the newest durable checkpoint (0: the root, no checkpoint written).
    pub checkpoint_op: u64,
    /// Checksum and size of that checkpoint, and the area of the checkpoint zone holding it.
    pub checkpoint_checksum: u128,
    pub checkpoint_size: u64,
    pub checkpoint_area: u8,
    /// The head of the log installed by the last view change (start_view, or the new
    /// primary's choice): recovery puts it back if its journal entry was lost, so entries
    /// below it that the view change did not replace are never taken for the view's log.
    pub view_head: Option<Header>,
    /// The consensus group this copy belongs to. A node's groups keep their regions on one
    /// disk, so a misdirected write can put another group's superblock (same cluster, same
    /// replica index, valid checksum) in this group's copies: `read` skips it.
    pub namespace: u64,
}

/// Whose superblock a copy must be to count (a copy of anyone else's is skipped like a
/// corrupt one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub cluster: u128,
    pub namespace: u64,
    pub replica: u8,
}

impl SuperBlock {
    fn owner(&self) -> Owner {
        Owner {
            cluster: self.cluster,
            namespace: self.namespace,
            replica: self.replica,
        }
    }
}

impl SuperBlock {
    fn encode(&self) -> Bytes {
        let mut b = Vec::with_capacity(SIZE);
        b.extend_from_slice(&[0u8; 16]);
        b.extend_from_slice(&self.sequence.to_le_bytes());
        b.extend_from_slice(&self.cluster.to_le_bytes());
        b.extend_from_slice(&self.view.to_le_bytes());
        b.extend_from_slice(&self.log_view.to_le_bytes());
        b.extend_from_slice(&self.commit_max.to_le_bytes());
        b.push(self.replica);
        b.push(self.replica_count);
        b.extend_from_slice(&self.checkpoint_op.to_le_bytes());
        b.extend_from_slice(&self.checkpoint_checksum.to_le_bytes());
        b.extend_from_slice(&self.checkpoint_size.to_le_bytes());
        b.push(self.checkpoint_area);
        b.push(self.view_head.is_some() as u8);
        b.extend_from_slice(&self.view_head.map_or([0; HEADER_SIZE], |h| h.encode()));
        b.extend_from_slice(&self.namespace.to_le_bytes());
        let sum = checksum(&b[16..], DOMAIN);
        b[..16].copy_from_slice(&sum.to_le_bytes());
        Bytes::from(b)
    }

    fn decode(b: &[u8]) -> Option<SuperBlock> {
        if b.len() != SIZE {
            return None;
        }
        let sum = u128::from_le_bytes(b[..16].try_into().ok()?);
        if sum != checksum(&b[16..], DOMAIN) {
            return None;
        }
        let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4"));
        let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
        let sb = SuperBlock {
            sequence: u64_at(16),
            cluster: u128::from_le_bytes(b[24..40].try_into().ok()?),
            view: u32_at(40),
            log_view: u32_at(44),
            commit_max: u64_at(48),
            replica: b[56],
            replica_count: b[57],
            checkpoint_op: u64_at(58),
            checkpoint_checksum: u128::from_le_bytes(b[66..82].try_into().ok()?),
            checkpoint_size: u64_at(82),
            checkpoint_area: b[90],
            view_head: match b[91] {
                0 => None,
                1 => {
                    let ctx = DecodeContext {
                        cluster: u128::from_le_bytes(b[24..40].try_into().ok()?),
                        replica_count: b[57],
                    };
                    let header = Header::decode(&b[92..92 + HEADER_SIZE], &ctx).ok()?;
                    matches!(header.command, Command::Prepare(_)).then_some(header)?;
                    Some(header)
                }
                _ => return None,
            },
            namespace: u64_at(92 + HEADER_SIZE),
        };
        let valid = sb.log_view <= sb.view
            && sb.checkpoint_op <= sb.commit_max
            && sb.checkpoint_area < 2
            && (sb.checkpoint_op == 0) == (sb.checkpoint_size == 0);
        valid.then_some(sb)
    }

    /// The newest valid copy of `owner`'s, if any.
    pub fn read(storage: &dyn Storage, owner: Owner) -> Option<SuperBlock> {
        (0..SUPERBLOCK_COPIES)
            .filter_map(|copy| storage.read(Zone::Superblock, copy))
            .filter_map(|bytes| SuperBlock::decode(&bytes))
            .filter(|sb| sb.owner() == owner)
            .max_by_key(|sb| sb.sequence)
    }

    /// Whether every copy reads back as `self` (none torn, stale or unreadable).
    pub fn copies_agree(&self, storage: &dyn Storage) -> bool {
        (0..SUPERBLOCK_COPIES).all(|copy| {
            storage
                .read(Zone::Superblock, copy)
                .and_then(|bytes| SuperBlock::decode(&bytes))
                == Some(*self)
        })
    }

    /// Writes every copy with the next sequence number.
    pub fn write(&mut self, storage: &mut dyn Storage) {
        assert!(self.log_view <= self.view);
        assert!(self.checkpoint_op <= self.commit_max);
        self.sequence += 1;
        let bytes = self.encode();
        for copy in 0..SUPERBLOCK_COPIES {
            storage.write(Zone::Superblock, copy, bytes.clone());
        }
        // Paired check, in every build: what we wrote decodes as what we meant (the disk may
        // still fail later; recovery handles that, not this check).
        assert_eq!(
            SuperBlock::decode(&bytes),
            Some(*self),
            "superblock round trip"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    fn superblock(namespace: u64, sequence: u64, view: u32) -> SuperBlock {
        SuperBlock {
            sequence,
            cluster: 7,
            view,
            log_view: view,
            commit_max: 0,
            replica: 1,
            replica_count: 3,
            checkpoint_op: 0,
            checkpoint_checksum: 0,
            checkpoint_size: 0,
            checkpoint_area: 0,
            view_head: None,
            namespace,
        }
    }

    fn owner(namespace: u64) -> Owner {
        Owner {
            cluster: 7,
            namespace,
            replica: 1,
        }
    }

    #[test]
    fn another_groups_copy_is_skipped_even_when_newer() {
        let mut storage = MemoryStorage::default();
        let mut mine = superblock(2, 0, 4);
        mine.write(&mut storage);
        // Group 5's superblock, misdirected into copy 3 of group 2's region: valid, newer.
        let foreign = superblock(5, 9, 1).encode();
        storage.write(Zone::Superblock, 3, foreign);
        let read = SuperBlock::read(&storage, owner(2)).expect("group 2's copies remain");
        assert_eq!((read.namespace, read.view, read.sequence), (2, 4, 1));
        assert!(
            !read.copies_agree(&storage),
            "the foreign copy is rewritten at open"
        );
        assert_eq!(SuperBlock::read(&storage, owner(5)).unwrap().view, 1);
        assert_eq!(SuperBlock::read(&storage, owner(6)), None);
    }

    /// The newest copy wins, wherever it is: after a crash tore the newest write on some
    /// copies, or a copy went stale, an older copy must never bring back an older view or
    /// log_view (the replica would vote or act in a view it left).
    #[test]
    fn the_newest_valid_copy_is_read_whichever_copy_holds_it() {
        for newest in 0..SUPERBLOCK_COPIES {
            let mut storage = MemoryStorage::default();
            let mut sb = superblock(0, 0, 3);
            sb.write(&mut storage);
            let old = sb.encode();
            sb.view = 4;
            sb.log_view = 4;
            sb.write(&mut storage);
            for copy in (0..SUPERBLOCK_COPIES).filter(|&c| c != newest) {
                storage.write(Zone::Superblock, copy, old.clone());
            }
            let read = SuperBlock::read(&storage, owner(0)).expect("copies");
            assert_eq!(
                (read.view, read.sequence),
                (4, 2),
                "newest in copy {newest}"
            );
        }
    }

    #[test]
    fn the_namespace_round_trips() {
        let mut storage = MemoryStorage::default();
        let mut sb = superblock(u64::MAX, 0, 3);
        sb.write(&mut storage);
        assert_eq!(SuperBlock::read(&storage, owner(u64::MAX)), Some(sb));
    }
}
