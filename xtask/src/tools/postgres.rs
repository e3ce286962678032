//! PostgreSQL's server programs for `cargo xtask itest`: Debian's `postgresql` package,
//! installed with `apt-get` when no server is installed. The programs live in
//! `/usr/lib/postgresql/<major>/bin` (Debian puts only wrappers on `PATH`); the newest
//! major version installed is used. Debian's package also creates a cluster `main`, which
//! itest neither starts nor touches: it runs its own in a temporary directory.

use std::fs;
use std::path::PathBuf;

/// Where Debian installs each major version's programs.
const LIB: &str = "/usr/lib/postgresql";

/// The `bin/` folder of the newest installed PostgreSQL server, if any.
fn installed() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(LIB)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("postgres").exists()).then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The server programs' folder (`initdb`, `postgres`, `pg_isready`), installing Debian's
/// `postgresql` package first if there are none.
pub(crate) fn server_bin() -> Result<PathBuf, String> {
    if let Some(bin) = installed() {
        return Ok(bin);
    }
    println!("xtask: itest: installing PostgreSQL (apt-get install -y postgresql)");
    super::apt_install(&["postgresql"])?;
    installed()
        .ok_or_else(|| format!("apt-get installed postgresql, but {LIB}/*/bin has no server"))
}
