//! Which region kernels a test ran, and on which CPU. The tests that run every kernel
//! (`tests/engine.rs`, `tests/kat.rs`, `tests/format_doc.rs`) report it, so a test log says
//! what was actually checked on the machine that produced it.

use std::io::Write as _;

use vaultdb_core::gf256::Kernel;

/// The CPU's model name as the OS reports it (`model name` in /proc/cpuinfo on Linux), or
/// the architecture's name where there is no such file.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| format!("unknown {} CPU", std::env::consts::ARCH))
}

/// Writes one line to standard error naming `test`, the CPU model, the kernels it ran and
/// the one the engine picks by default, e.g.
/// `kat: CPU Intel(R) Xeon(R) Processor; kernels run: avx512-gfni, avx2, portable; best: avx512-gfni`.
///
/// It writes to the process's standard error directly, past the test harness's output
/// capture, so the line shows in `cargo test` output even when the test passes.
pub fn report_kernels(test: &str, kernels: &[Kernel]) {
    let names: Vec<String> = kernels.iter().map(|k| k.isa().to_string()).collect();
    let line = format!(
        "{test}: CPU {}; kernels run: {}; best: {}\n",
        cpu_model(),
        names.join(", "),
        Kernel::best().isa()
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}
