//! `vaultdb init`: a commented `vaultdb.toml` and a new admin token.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::auth::{generate_token, hash_token};
use crate::config::{self, DEFAULT_CONFIG_FILE, Loaded};
use crate::error::CliError;

/// `vaultdb init`: writes the default configuration with a new admin token's hash, and
/// prints the token once.
///
/// # Errors
/// `INVALID_CONFIG` if the file exists (without `force`) or cannot be written.
pub(super) fn init(
    explicit: Option<&Path>,
    force: bool,
    mode: Option<vaultdb_core::Mode>,
) -> Result<(), CliError> {
    let path = explicit.map_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE), Path::to_path_buf);
    if path.exists() && !force {
        return Err(CliError::config(format!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        )));
    }
    let token = generate_token();
    let mut text = config::init_file("admin", &hex::encode(hash_token(&token)));
    if let Some(mode) = mode {
        text = config::with_mode(&text, mode);
    }
    // Check what we are about to write parses, with the file's own path.
    Loaded::from_text(&text, config::Source::File(path.clone()))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts
        .open(&path)
        .map_err(|e| CliError::config(format!("cannot write {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::config(format!("cannot write {}: {e}", path.display())))?;
    println!(
        "Wrote {}: 2-of-3 over three filesystem backends under ./vaultdb-data (relative to the \
         file), {} mode.",
        path.display(),
        mode.unwrap_or_default()
    );
    println!();
    println!(
        "Admin API token for `vaultdb serve`. It is shown only now; the file keeps only its SHA-256:"
    );
    println!();
    println!("  export VAULTDB_TOKEN={token}");
    println!();
    println!(
        "Try: echo '{{\"hello\":\"world\"}}' | vaultdb put greeting --json && vaultdb get greeting"
    );
    Ok(())
}
