#![no_main]
// The logic lives in the library (simulator::fuzz), so cargo test runs it on stable too.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    simulator::fuzz::view_change(data);
});
