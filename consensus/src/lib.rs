//! A sans-I/O Viewstamped Replication replica.
//!
//! No threads, clocks, sockets, files or ambient randomness: the host feeds messages and ticks
//! and carries out the actions the replica emits. See ARCHITECTURE.md for the map.
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod client_table;
pub mod journal;
pub mod kv;
pub mod node;
pub mod pipeline;
pub mod prng;
pub mod replica;
pub mod state_machine;
pub mod storage;
pub mod superblock;
pub mod timeout;
pub mod wire;

pub use replica::{Action, Config, Peer, Replica, Status};
pub use state_machine::{KvMachine, KvOp, KvOutput, StateMachine};
pub use storage::{MemoryStorage, Storage};
