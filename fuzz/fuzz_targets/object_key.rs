//! KeySpace::parse, validate_key, unpad_id, decode_base32: no panic; exact round trips.
//! The check is `vaultdb_fuzzing::formats::check_object_key` (docs/FUZZING.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaultdb_fuzzing::formats::check_object_key(data));
