//! Running the `vopr` binary from the integration tests that drive it end to end.
// Each test file uses the helpers it needs.
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn vopr(args: &[&str]) -> Output {
    vopr_env(args, &[])
}

/// vopr with extra environment variables (and without RUST_BACKTRACE, so errors stay one line).
pub fn vopr_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vopr"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .envs(env.iter().copied())
        .output()
        .expect("vopr runs")
}
