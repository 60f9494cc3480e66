#![no_main]
// The logic lives in the library (simulator::fuzz), so cargo test runs it on stable too; how
// deep the input got goes to libFuzzer as extra features (fuzz/src/lib.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| vsr_fuzz::feed(&simulator::fuzz::view_change(data)));
