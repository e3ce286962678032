//! The `vaultdb` command line: see `vaultdb --help` and the crate's README.

fn main() -> std::process::ExitCode {
    vaultdb::cli::main()
}
