//! vaultdb_core::envelope::decode: no panic; accepted envelopes re-encode to the same bytes.
//! The check is `vaultdb_fuzzing::formats::check_envelope` (docs/FUZZING.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaultdb_fuzzing::formats::check_envelope(data));
