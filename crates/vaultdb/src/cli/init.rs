//! `vaultdb init`: a commented `vaultdb.toml` and a new admin token.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::auth::{generate_token, hash_token};
use crate::config::{self, DEFAULT_CONFIG_FILE, Loaded};
use crate::error::CliError;

use super::output::Output;
use super::{Create, open_store};

/// What `vaultdb init` writes.
#[derive(Debug)]
pub(super) struct InitArgs<'a> {
    /// Overwrite an existing file.
    pub force: bool,
    /// `--backend` URLs, in share order (none: the default's three fs backends).
    pub backends: &'a [String],
    /// `--threshold`.
    pub threshold: Option<usize>,
    /// Create the store after writing the file.
    pub create: bool,
    /// `--mode`: the storage mode written to the file (unset: the default, shamir).
    pub mode: Option<vaultdb_core::Mode>,
    /// `--prefix`: the key prefix written to the file (unset: the default, `vaultdb`).
    pub prefix: Option<&'a str>,
}

/// `vaultdb init`: writes the default configuration with a new admin token's hash, prints
/// the token once, and creates the store (its keyring). A store that cannot be created now
/// (a backend that does not answer) is a warning: the first `put` or `serve` creates it.
///
/// # Errors
/// `INVALID_CONFIG` if the file exists (without `force`) or cannot be written.
pub(super) async fn init(
    explicit: Option<&Path>,
    args: InitArgs<'_>,
    out: Output,
) -> Result<(), CliError> {
    let force = args.force;
    let mut backends: Vec<(String, String)> = Vec::new();
    for url in args.backends {
        // Two backends of one place get -2, -3, ...
        let id = config::backends::url::unique_id(url, |id| backends.iter().any(|(i, _)| i == id))
            .map_err(CliError::config)?;
        backends.push((id, url.clone()));
    }
    let path = explicit.map_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE), Path::to_path_buf);
    if path.exists() && !force {
        return Err(CliError::config(format!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        )));
    }
    let token = generate_token();
    let mut text = config::init_file_with(
        args.threshold,
        &backends,
        "admin",
        &hex::encode(hash_token(&token)),
    );
    if let Some(mode) = args.mode {
        text = config::with_mode(&text, mode);
    }
    if let Some(prefix) = args.prefix {
        text = config::with_prefix(&text, prefix);
    }
    // Check what we are about to write parses, with the file's own path.
    let loaded = Loaded::from_text(&text, config::Source::File(path.clone()))?;
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
    let created = args.create
        && match open_store(&loaded, Create::Announce).await {
            Ok(_) => true,
            Err(e) => {
                eprintln!(
                    "warning: the store was not created yet ({e}); the first `vaultdb put` or \
                     `vaultdb serve` creates it"
                );
                false
            }
        };
    out.emit(
        || {
            format!(
                "Wrote {}: {} (relative to the file).\n\n\
                 Admin API token for `vaultdb serve`. It is shown only now; the file keeps only \
                 its SHA-256:\n\n  export VAULTDB_TOKEN={token}\n\n\
                 Try: echo '{{\"hello\":\"world\"}}' | vaultdb put greeting --json-input && \
                 vaultdb get greeting",
                path.display(),
                loaded.describe(),
            )
        },
        || {
            serde_json::json!({
                "config": path.display().to_string(),
                "store": loaded.describe(),
                "store_created": created,
                "token": token,
            })
        },
    )
}
