//! The `vaultdb` command line.
fn main() {
    println!("vaultdb {}", env!("CARGO_PKG_VERSION"));
}
