//! Record::decode and Manifest::decode: no panic; accepted values round-trip.
//! The check is `vaultdb_fuzzing::formats::check_record` (docs/FUZZING.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaultdb_fuzzing::formats::check_record(data));
