//! A deterministic, fault-injecting simulator for the `consensus` replica, and the library
//! behind the `vopr` binary. See ARCHITECTURE.md.
#![forbid(unsafe_code)]

pub mod aim;
pub mod checker;
pub mod cli;
pub mod cluster;
pub mod end_of_run;
pub mod fuzz;
pub mod history;
pub mod history_cli;
pub mod merge;
pub mod network;
pub mod node;
pub mod options;
pub mod prng;
pub mod run;
pub mod scenario;
pub mod schedule;
pub mod seeds;
pub mod shrink;
pub mod shrink_cli;
pub mod simulation;
pub mod storage;
pub mod summary;
pub mod timeline;
pub mod trace;
pub mod workload;
