//! Record::decode and Manifest::decode: no panic; accepted values round-trip.
//! The check is `vaultdb_core::testkit::fuzzing::check_record` (docs/FUZZING.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaultdb_core::testkit::fuzzing::check_record(data));
