//! The vaultdb configuration file parser and validator: no panic; accepted configurations
//! meet the documented limits. The check is `vaultdb_fuzzing::app::check_config`
//! (docs/FUZZING.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vaultdb_fuzzing::app::check_config(data));
