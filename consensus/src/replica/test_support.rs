//! Helpers for the replica's scripted unit tests (`backup_tests.rs`, `open.rs`): a freshly
//! formatted replica, and prepares built by hand.

use super::*;
use crate::wire::{Operation, Prepare};
use crate::{KvMachine, MemoryStorage};

pub(super) const CLUSTER: u128 = 7;

pub(super) type TestReplica = Replica<MemoryStorage, KvMachine>;

/// Replica `replica` of 3, opened on a disk just formatted.
pub(super) fn formatted(replica: u8) -> TestReplica {
    let config = Config::new(CLUSTER, 3, replica);
    let mut storage = MemoryStorage::new();
    TestReplica::format(&config, &mut storage);
    Replica::open(config, storage, KvMachine::new()).expect("formatted")
}

/// A prepare of `view` registering client `op`, chained to `parent`.
pub(super) fn prepare(view: u32, op: u64, parent: u128) -> Message {
    let p = Prepare {
        parent,
        client: 1_000 + op as u128,
        request_checksum: op as u128,
        op,
        commit: 0,
        timestamp: op,
        session: 0,
        request: 0,
        operation: Operation::Register,
    };
    Message::new(
        Header::new(CLUSTER, view, view as u8 % 3, Command::Prepare(p)),
        bytes::Bytes::new(),
    )
}
