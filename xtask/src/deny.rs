//! `cargo xtask deny [--advisories | --advisory-db DIR]`: `cargo deny check bans licenses
//! sources`, then, if asked, `check advisories` for the main workspace and for `fuzz/`.
//!
//! `cargo xtask test` does not check advisories: the advisory database is fetched from
//! GitHub, which this project's machines cannot reach. With `--advisory-db DIR` it is read
//! offline from DIR, a git clone of <https://github.com/rustsec/advisory-db>.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{root, step, tools};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut advisories = false;
    let mut db = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--advisories" => advisories = true,
            "--advisory-db" => {
                let dir = it.next().ok_or("deny: --advisory-db needs a directory")?;
                db = Some(PathBuf::from(dir));
            }
            other => {
                return Err(format!(
                    "deny: unknown argument {other:?}; usage: cargo xtask deny \
                     [--advisories | --advisory-db DIR]"
                ));
            }
        }
    }
    let bin = tools::cargo_deny()?;
    let mut cmd = Command::new(&bin);
    cmd.current_dir(root()).args(["deny", "--workspace", "check", "bans", "licenses", "sources"]);
    step("cargo deny", cmd)?;
    if advisories || db.is_some() {
        check_advisories(&bin, db.as_deref())?;
    }
    Ok(())
}

/// The folder cargo-deny 0.20 clones the default advisory database
/// (<https://github.com/RustSec/advisory-db>) into, inside its `db-path`.
const ADVISORY_DB_FOLDER: &str = "advisory-db-3157b0e258782691";

/// `cargo deny check advisories` for the main workspace and for `fuzz/`. With `db`, the
/// database is read offline: cargo-deny accepts neither a local path nor a `file://` URL as
/// a database, so a clone of `db` goes where it would have fetched to, and each policy is
/// copied with `db-path` pointing there.
fn check_advisories(bin: &Path, db: Option<&Path>) -> Result<(), String> {
    let root = root();
    let offline = match db {
        None => None,
        Some(src) => {
            let base = tools::tools_dir().join("advisory-dbs");
            let dest = base.join(ADVISORY_DB_FOLDER);
            if dest.exists() {
                fs::remove_dir_all(&dest)
                    .map_err(|e| format!("deny: remove {}: {e}", dest.display()))?;
            }
            fs::create_dir_all(&base)
                .map_err(|e| format!("deny: create {}: {e}", base.display()))?;
            let mut clone = Command::new("git");
            clone.args(["clone", "--quiet", "--local"]).arg(src).arg(&dest);
            step("clone the advisory database", clone)?;
            Some(base)
        }
    };
    for (name, dir) in [("main", root.clone()), ("fuzz", root.join("fuzz"))] {
        let policy = dir.join("deny.toml");
        let mut cmd = Command::new(bin);
        cmd.current_dir(&root).arg("deny");
        match &offline {
            None => {
                cmd.arg("--config").arg(&policy);
            }
            Some(base) => {
                let text = fs::read_to_string(&policy)
                    .map_err(|e| format!("deny: read {}: {e}", policy.display()))?;
                let copy = base.join(format!("{name}-deny.toml"));
                fs::write(&copy, with_db_path(&text, base))
                    .map_err(|e| format!("deny: write {}: {e}", copy.display()))?;
                cmd.arg("--offline").arg("--config").arg(copy);
            }
        }
        cmd.arg("--manifest-path").arg(dir.join("Cargo.toml"));
        cmd.args(["--workspace", "check", "advisories"]);
        step(&format!("cargo deny advisories ({name} workspace)"), cmd)?;
    }
    Ok(())
}

/// The policy `text` with `db-path = "<base>"` in its `[advisories]` table (added if absent).
fn with_db_path(text: &str, base: &Path) -> String {
    let quoted = base.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
    let line = format!("db-path = \"{quoted}\"\n");
    match text.find("\n[advisories]\n") {
        Some(at) => {
            let after = at + "\n[advisories]\n".len();
            format!("{}{line}{}", &text[..after], &text[after..])
        }
        None => format!("{text}\n[advisories]\n{line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_path_goes_into_the_advisories_table() {
        let policy = "[graph]\nall-features = true\n\n[advisories]\nversion = 2\n\n[bans]\n";
        let out = with_db_path(policy, Path::new("/c/a\"b"));
        assert_eq!(
            out,
            "[graph]\nall-features = true\n\n[advisories]\ndb-path = \"/c/a\\\"b\"\nversion = 2\n\n[bans]\n"
        );
        let out = with_db_path("[bans]\n", Path::new("/c"));
        assert_eq!(out, "[bans]\n\n[advisories]\ndb-path = \"/c\"\n");
    }
}
