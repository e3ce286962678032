//! `cargo xtask`: VaultDB developer tasks.
fn main() {
    eprintln!("usage: cargo xtask <task>");
}
