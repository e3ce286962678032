//! Opening what a configuration describes: the store, and the tokens the server accepts.

use std::fmt;
use std::sync::Arc;

use vaultdb_core::{KeyPrefix, ListFrom, StorageBackend, VaultDb};

use crate::auth::{Role, TokenEntry, Tokens, generate_token};
use crate::config::Loaded;
use crate::error::CliError;

/// Opens the store `cfg` describes, building its backends with secrets from the process
/// environment (reading, or on an empty store creating, the keyring).
///
/// # Errors
/// `INVALID_CONFIG` for a keyring mismatch; `INSUFFICIENT_SHARES` when too few backends
/// answer (a backend that cannot be built is one that does not answer, see
/// [`Loaded::backends`]).
pub async fn open(cfg: &Loaded) -> Result<VaultDb, CliError> {
    open_with(cfg, cfg.backends()).await
}

/// [`open`] over backends already built (by [`Loaded::backends`]), each wrapped to be
/// measured ([`crate::metrics::Measured`]).
///
/// # Errors
/// As [`open`].
pub async fn open_with(
    cfg: &Loaded,
    backends: Vec<Arc<dyn StorageBackend>>,
) -> Result<VaultDb, CliError> {
    builder(cfg, backends).open().await.map_err(CliError::from)
}

/// [`open_with`] for the target of a re-share from `old`
/// ([`VaultDbBuilder::migrating_from`](vaultdb_core::VaultDbBuilder::migrating_from)):
/// while the re-share is not done, it reads through to `old`.
///
/// # Errors
/// As [`open`].
pub async fn open_migrating(
    cfg: &Loaded,
    backends: Vec<Arc<dyn StorageBackend>>,
    old: &VaultDb,
) -> Result<VaultDb, CliError> {
    builder(cfg, backends).migrating_from(old.clone()).open().await.map_err(CliError::from)
}

/// The file in the new configuration's `data_dir` where `vaultdb reshare --to NEW.toml`
/// records the old configuration file (its absolute path, one line) while the re-share is
/// not done, so that commands and servers run on NEW.toml on that machine can read through
/// to the old store ([`follow_reshare`]).
pub const RESHARE_FROM_FILE: &str = "reshare-from";

/// The variable naming the old configuration file of an unfinished re-share into the store,
/// for processes on a machine without the record `vaultdb reshare` writes
/// ([`RESHARE_FROM_FILE`]); it takes precedence over that record.
pub const RESHARE_FROM_ENV: &str = "VAULTDB_RESHARE_FROM";

/// Records, in `new`'s data_dir, the file of `old` ([`RESHARE_FROM_FILE`]); nothing for a
/// configuration that is not a file (the embedded default).
///
/// # Errors
/// The file system's, when the record cannot be written.
pub fn record_reshare_source(new: &Loaded, old: &Loaded) -> std::io::Result<()> {
    let crate::config::Source::File(path) = &old.source else { return Ok(()) };
    let path = std::path::absolute(path)?;
    std::fs::create_dir_all(&new.data_dir)?;
    std::fs::write(new.data_dir.join(RESHARE_FROM_FILE), format!("{}\n", path.display()))
}

/// Removes the record of [`record_reshare_source`] (once the re-share is done).
pub fn forget_reshare_source(new: &Loaded) {
    let _ = std::fs::remove_file(new.data_dir.join(RESHARE_FROM_FILE));
}

/// Environment overrides that would apply to the old configuration as well as to this one.
const SHARED_ENV: [&str; 4] =
    ["VAULTDB_BACKENDS", "VAULTDB_THRESHOLD", "VAULTDB_WRITE_QUORUM", "VAULTDB_DATA_DIR"];

/// If `db` (the store `cfg` describes) is being filled by a re-share that is not done, as
/// far as `db` last read its notices, makes it read through to the old store
/// ([`VaultDb::follow_reshare`]): the old configuration file is the one
/// [`RESHARE_FROM_ENV`] names, else the one `vaultdb reshare` recorded
/// ([`RESHARE_FROM_FILE`]). Nothing to do (`Ok`) without an unfinished re-share, or when
/// `db` already reads through.
///
/// # Errors
/// `INVALID_CONFIG` when the old configuration is not known here, cannot be loaded, is not
/// the store the re-share comes from, or environment overrides would apply to it too;
/// `STORE_NOT_FOUND` when it names an empty store; the store's errors when it cannot be
/// opened.
pub async fn follow_reshare(cfg: &Loaded, db: &VaultDb) -> Result<(), CliError> {
    use vaultdb_core::ResharePhase;
    if db.is_migrating_client() || db.reshare_phase().is_none_or(|p| p >= ResharePhase::Done) {
        return Ok(());
    }
    let from = db.reshare_from().unwrap_or_default();
    let record = cfg.data_dir.join(RESHARE_FROM_FILE);
    let unfollowable = |why: String| {
        CliError::config(format!(
            "the store {} is being filled by a re-share from {from} that is not done, and \
             {why}: `vaultdb reshare` records the old configuration file in {} on the machine \
             it runs on; set {RESHARE_FROM_ENV} to the old configuration file (the one given \
             to `vaultdb --config OLD.toml reshare`), or wait until the re-share is done",
            cfg.describe(),
            record.display()
        ))
    };
    let path = match crate::config::process_env(RESHARE_FROM_ENV) {
        Some(p) => std::path::PathBuf::from(p),
        None => match std::fs::read_to_string(&record) {
            Ok(text) if !text.trim().is_empty() => std::path::PathBuf::from(text.trim()),
            _ => {
                return Err(unfollowable(
                    "this process does not know the old configuration".into(),
                ));
            }
        },
    };
    if let Some(var) = SHARED_ENV.iter().find(|v| crate::config::process_env(v).is_some()) {
        return Err(unfollowable(format!(
            "{var} is set: it would override the old configuration too"
        )));
    }
    let old_cfg = Loaded::load(Some(&path)).map_err(|e| {
        unfollowable(format!(
            "its configuration {} cannot be loaded ({})",
            path.display(),
            e.message
        ))
    })?;
    let backends = old_cfg.backends();
    if presence(&old_cfg, &backends).await == Presence::Empty {
        return Err(store_not_found(&old_cfg));
    }
    let old = builder(&old_cfg, backends).open().await.map_err(CliError::from)?;
    db.follow_reshare(&old)
        .map_err(|e| unfollowable(format!("{} is not that store ({e})", path.display())))?;
    tracing::info!(from = %path.display(), "reading through to the old store of an unfinished re-share");
    Ok(())
}

/// The builder of the store `cfg` describes, over `backends`.
fn builder(cfg: &Loaded, backends: Vec<Arc<dyn StorageBackend>>) -> vaultdb_core::VaultDbBuilder {
    let mut b = VaultDb::builder_with(cfg.settings()).threshold(cfg.config.threshold);
    for backend in backends {
        // Each call counted per backend in the server's /metrics.
        b = b.backend_arc(crate::metrics::Measured::wrap(backend));
    }
    b
}

/// Whether a store is there, as far as its backends say ([`presence`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Some backend holds an object under the store's prefix (a keyring, records).
    Found,
    /// Every backend answered, and none holds anything under the prefix: opening would
    /// create a new store.
    Empty,
    /// Some backends did not answer and those that did hold nothing: opening decides
    /// (it creates nothing while a backend cannot be reached).
    Unknown,
}

/// Looks for the store `cfg` describes without writing anything: one listing page under
/// the store's prefix on every backend at once, each bounded by `timeouts.call`. Commands
/// that must not create a store ([`Presence::Empty`]) check this before opening it, since
/// opening an empty store creates its keyring. The first backend that holds something
/// decides (`Found`); once K backends answered, the others are waited for
/// [`Settings::straggler_wait`](vaultdb_core::Settings::straggler_wait) more at most (then
/// `Unknown`), so that a hung backend does not cost every command a call timeout.
pub async fn presence(cfg: &Loaded, backends: &[Arc<dyn StorageBackend>]) -> Presence {
    use futures::stream::{FuturesUnordered, StreamExt};
    let prefix = cfg.config.prefix.trim_end_matches('/');
    let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
    let Ok(prefix) = KeyPrefix::new(prefix) else { return Presence::Unknown };
    let limit = cfg.config.timeouts.call.0;
    let prefix = &prefix;
    let mut pages: FuturesUnordered<_> = backends
        .iter()
        .map(|b| tokio::time::timeout(limit, b.list_page(prefix, ListFrom::Start)))
        .collect();
    let patience = cfg.settings().straggler_wait();
    let (mut answered, mut heard) = (0, 0);
    let mut deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        let next = match deadline.as_mut() {
            Some(d) => tokio::select! { next = pages.next() => next, () = d => break },
            None => pages.next().await,
        };
        let Some(page) = next else { break };
        heard += 1;
        match page {
            Ok(Ok(p)) if !p.entries.is_empty() => return Presence::Found,
            Ok(Ok(_)) => answered += 1,
            _ => {}
        }
        if heard >= cfg.config.threshold
            && deadline.is_none()
            && let Some(wait) = patience
        {
            deadline = Some(Box::pin(tokio::time::sleep(wait)));
        }
    }
    if answered == backends.len() { Presence::Empty } else { Presence::Unknown }
}

/// The error for a command that found no store: where it looked (the configuration and
/// each backend's location), and how to create one. Code `STORE_NOT_FOUND`.
pub fn store_not_found(cfg: &Loaded) -> CliError {
    let source = match &cfg.source {
        crate::config::Source::File(p) => format!("config {}", p.display()),
        crate::config::Source::Embedded => {
            let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
            format!("the embedded default config (no ./vaultdb.toml in {cwd})")
        }
    };
    let places: Vec<String> =
        cfg.config.backends.iter().map(|b| format!("{} at {}", b.id(), b.location())).collect();
    CliError::new(
        STORE_NOT_FOUND,
        format!(
            "no store found with {source}: no backend holds anything under prefix {:?} ({}); \
             create one with `vaultdb init`, or store a first record with `vaultdb put`",
            cfg.config.prefix,
            places.join(", ")
        ),
    )
}

/// The code of a command that needs an existing store and found none ([`store_not_found`]).
pub const STORE_NOT_FOUND: &str = "STORE_NOT_FOUND";

/// The API tokens of the file (`[[tokens]]`).
///
/// # Errors
/// Never for a loaded configuration (its hashes were checked); kept fallible for
/// configurations built by hand.
pub fn tokens(cfg: &Loaded) -> Result<Tokens, CliError> {
    let mut entries = Vec::new();
    for t in &cfg.config.tokens {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&t.sha256, &mut hash)
            .map_err(|_| CliError::config(format!("token {:?}: sha256 is not hex", t.name)))?;
        entries.push(TokenEntry { name: t.name.clone(), role: t.role, sha256: hash });
    }
    Ok(Tokens::new(entries))
}

/// The admin token `serve` accepts when the file configures none.
pub enum FallbackToken {
    /// The token given in `VAULTDB_TOKEN`.
    FromEnv,
    /// A token generated for this run (to be shown once).
    Generated(String),
}

impl fmt::Debug for FallbackToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::FromEnv => "FromEnv",
            Self::Generated(_) => "Generated(<redacted>)",
        })
    }
}

/// The tokens `serve` accepts: the file's; or, if it has none, an `admin` token: the one
/// given (the value of `VAULTDB_TOKEN`, trimmed; ignored when blank), else a new one.
///
/// # Errors
/// As [`tokens`].
pub fn serve_tokens(
    cfg: &Loaded,
    given: Option<&str>,
) -> Result<(Tokens, Option<FallbackToken>), CliError> {
    let mut tokens = tokens(cfg)?;
    if !tokens.is_empty() {
        return Ok((tokens, None));
    }
    let fallback = match given.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => {
            tokens.add_plain("admin", Role::Admin, t);
            FallbackToken::FromEnv
        }
        None => {
            let t = generate_token();
            tokens.add_plain("admin", Role::Admin, &t);
            FallbackToken::Generated(t)
        }
    };
    Ok((tokens, Some(fallback)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::hash_token;
    use crate::config::{Source, init_file};

    const MEMORY: &str = "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"a\"\n\
                          [[backends]]\nkind = \"memory\"\nid = \"b\"\n";

    #[test]
    fn serve_takes_the_files_tokens_or_one_admin_token() {
        let no_tokens = Loaded::from_text(MEMORY, Source::Embedded).unwrap();
        let (t, f) = serve_tokens(&no_tokens, Some("  env-token ")).unwrap();
        assert!(matches!(f, Some(FallbackToken::FromEnv)));
        assert_eq!(t.authenticate("env-token").map(|a| a.role), Some(Role::Admin));
        let (t, f) = serve_tokens(&no_tokens, Some(" ")).unwrap();
        let Some(FallbackToken::Generated(g)) = f else { panic!("a token is generated") };
        assert_eq!(t.authenticate(&g).map(|a| a.name), Some("admin".to_owned()));
        assert!(!format!("{:?}", FallbackToken::Generated(g.clone())).contains(&g));

        let text = init_file("ops", &hex::encode(hash_token("file-token")));
        let with_tokens = Loaded::from_text(&text, Source::Embedded).unwrap();
        let (t, f) = serve_tokens(&with_tokens, Some("env-token")).unwrap();
        assert!(f.is_none());
        assert!(t.authenticate("env-token").is_none());
        assert_eq!(t.authenticate("file-token").map(|a| a.name), Some("ops".to_owned()));
    }

    #[tokio::test]
    async fn open_applies_the_settings() {
        let three =
            format!("write_quorum = 2\n{MEMORY}[[backends]]\nkind = \"memory\"\nid = \"c\"\n");
        let cfg = Loaded::from_text(&three, Source::Embedded).unwrap();
        let db = open(&cfg).await.unwrap();
        assert_eq!((db.threshold().k(), db.write_quorum()), (2, 2));
        assert_eq!(db.backend_ids(), ["a", "b", "c"]);
    }
}
