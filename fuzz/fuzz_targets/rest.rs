//! The REST server, in-process over memory backends: one request per input; no panic, no
//! undocumented 5xx, every error `{"error": {code, message}}`. The check is
//! `vaultdb_fuzzing::app::check_rest` (docs/FUZZING.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaultdb_fuzzing::app::check_rest(data));
