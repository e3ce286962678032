//! The keyring payload decoder: no panic; accepted keyrings round-trip.
//! The check is `vaultdb_fuzzing::formats::check_keyring` (docs/FUZZING.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaultdb_fuzzing::formats::check_keyring(data));
