//! Loading a configuration: finding the file, parsing it, applying the environment,
//! resolving paths and validating ([`Loaded`]); and what it maps to: the store's
//! [`Settings`] and the backends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vaultdb_core::{Settings, StorageBackend, VaultError};
use vaultdb_fs::FsBackend;

use super::backends::{BackendEntry, Env, process_env};
use super::model::Config;
use super::units::{ByteSize, Dur};
use super::{DEFAULT_CONFIG, DEFAULT_CONFIG_FILE};
use crate::error::{CliError, one_line};

/// Where a configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file.
    File(PathBuf),
    /// The embedded default.
    Embedded,
}

/// A parsed, validated configuration with its paths resolved.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The configuration (paths in it are already absolute or resolved).
    pub config: Config,
    /// Where it came from.
    pub source: Source,
    /// The resolved data directory.
    pub data_dir: PathBuf,
    /// The resolved audit log path.
    pub audit_log: PathBuf,
    /// Whether operations go on when the audit log cannot be written (`audit.fail_open`,
    /// or `VAULTDB_AUDIT_FAIL_OPEN`).
    pub audit_fail_open: bool,
    /// The resolved listen address.
    pub listen: SocketAddr,
}

impl Loaded {
    /// Finds, parses, overrides and validates the configuration. Touches nothing on disk
    /// but the configuration file it reads.
    ///
    /// # Errors
    /// `INVALID_CONFIG` with one line saying what is wrong.
    pub fn load(explicit: Option<&Path>) -> Result<Self, CliError> {
        let (text, source) = match explicit {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| {
                    CliError::config(format!("cannot read config {}: {e}", p.display()))
                })?;
                (text, Source::File(p.to_path_buf()))
            }
            None => {
                let p = Path::new(DEFAULT_CONFIG_FILE);
                match std::fs::read_to_string(p) {
                    Ok(text) => (text, Source::File(p.to_path_buf())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        (DEFAULT_CONFIG.to_owned(), Source::Embedded)
                    }
                    Err(e) => {
                        return Err(CliError::config(format!(
                            "cannot read config {}: {e}",
                            p.display()
                        )));
                    }
                }
            }
        };
        Self::from_text(&text, source)
    }

    /// Parses `text` as if read from `source`, then applies the environment.
    ///
    /// # Errors
    /// `INVALID_CONFIG` with one line saying what is wrong.
    pub fn from_text(text: &str, source: Source) -> Result<Self, CliError> {
        let label = match &source {
            Source::File(p) => p.display().to_string(),
            Source::Embedded => "embedded default config".to_owned(),
        };
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!(" (line {line})")
            });
            CliError::config(format!(
                "{label}{}: {}",
                at.unwrap_or_default(),
                one_line(e.message())
            ))
        })?;
        let base = match &source {
            Source::File(p) => match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            },
            Source::Embedded => PathBuf::from("."),
        };
        // Environment overrides.
        if let Some(v) = process_env("VAULTDB_THRESHOLD") {
            config.threshold = v.trim().parse().map_err(|_| {
                CliError::config(format!("VAULTDB_THRESHOLD={v:?} is not a number"))
            })?;
        }
        if let Some(v) = process_env("VAULTDB_WRITE_QUORUM") {
            config.write_quorum = Some(v.trim().parse().map_err(|_| {
                CliError::config(format!("VAULTDB_WRITE_QUORUM={v:?} is not a number"))
            })?);
        }
        let duration = |var: &str| -> Result<Option<Dur>, CliError> {
            process_env(var)
                .map(|v| {
                    super::parse_duration(&v)
                        .map(Dur)
                        .map_err(|e| CliError::config(format!("{var}={v:?}: {e}")))
                })
                .transpose()
        };
        if let Some(d) = duration("VAULTDB_CALL_TIMEOUT")? {
            config.timeouts.call = d;
        }
        if let Some(d) = duration("VAULTDB_FENCE_CHECK")? {
            config.timeouts.fence_check = Some(d);
        }
        if let Some(v) = process_env("VAULTDB_LISTEN") {
            config.server.listen = v;
        }
        if let Some(v) = process_env("VAULTDB_BACKENDS") {
            config.backends = super::backends::from_urls(&v)
                .map_err(|e| CliError::config(format!("VAULTDB_BACKENDS: {e}")))?;
        }
        if let Some(v) = process_env("VAULTDB_ALLOW_PLAIN_HTTP") {
            config.server.allow_plain_http = match v.trim() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(CliError::config(format!(
                        "VAULTDB_ALLOW_PLAIN_HTTP={v:?} is not true, false, 1 or 0"
                    )));
                }
            };
        }
        // TLS files: relative paths in the file against its directory; from the environment
        // as given.
        let tls = &mut config.server;
        for (path, var) in [
            (&mut tls.tls_cert, "VAULTDB_TLS_CERT"),
            (&mut tls.tls_key, "VAULTDB_TLS_KEY"),
            (&mut tls.tls_client_ca, "VAULTDB_TLS_CLIENT_CA"),
        ] {
            *path = match process_env(var) {
                Some(v) if v.trim().is_empty() => None,
                Some(v) => Some(PathBuf::from(v)),
                None => path.take().map(|p| base.join(p)),
            };
        }
        let data_dir = match process_env("VAULTDB_DATA_DIR") {
            Some(d) => PathBuf::from(d),
            None => base.join(config.data_dir.clone().unwrap_or_else(|| "vaultdb-data".into())),
        };
        let audit_log = match process_env("VAULTDB_AUDIT_LOG") {
            Some(p) => PathBuf::from(p),
            None => match &config.server.audit_log {
                Some(p) => base.join(p),
                None => data_dir.join("audit.jsonl"),
            },
        };
        let audit_fail_open = match process_env("VAULTDB_AUDIT_FAIL_OPEN") {
            Some(v) => match v.trim() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(CliError::config(format!(
                        "VAULTDB_AUDIT_FAIL_OPEN={v:?} is not true, false, 1 or 0"
                    )));
                }
            },
            None => config.audit.fail_open,
        };
        for b in &mut config.backends {
            b.resolve_paths(&data_dir, &base);
        }
        let listen: SocketAddr = config.server.listen.parse().map_err(|_| {
            CliError::config(format!(
                "server.listen {:?} is not an address like 127.0.0.1:8080",
                config.server.listen
            ))
        })?;
        let loaded = Self { config, source, data_dir, audit_log, audit_fail_open, listen };
        loaded.validate().map_err(CliError::config)?;
        Ok(loaded)
    }

    /// Checks everything that can be checked without touching a backend: the store's
    /// settings (by the same function [`VaultDbBuilder::open`] calls, so the two agree),
    /// the timeouts and server limits, each backend's section, and the tokens.
    ///
    /// [`VaultDbBuilder::open`]: vaultdb_core::client::VaultDbBuilder::open
    fn validate(&self) -> Result<(), String> {
        let c = &self.config;
        if c.timeouts.fence_check.is_some_and(|d| d.0.is_zero()) {
            return Err("timeouts.fence_check must be more than 0".into());
        }
        let ids: Vec<&str> = c.backends.iter().map(BackendEntry::id).collect();
        self.settings().validate(c.threshold, &ids).map_err(|e| match e {
            VaultError::InvalidConfig(m) => m,
            other => other.to_string(),
        })?;
        if c.timeouts.attempts == 0 {
            return Err("timeouts.attempts must be at least 1".into());
        }
        if c.timeouts.call.0.is_zero() {
            return Err("timeouts.call must be more than 0".into());
        }
        if c.server.body_limit.0 == 0 {
            return Err("server.body_limit must be more than 0".into());
        }
        if c.server.request_timeout.0.is_zero() {
            return Err("server.request_timeout must be more than 0".into());
        }
        if c.server.max_connections == 0 {
            return Err("server.max_connections must be at least 1".into());
        }
        for b in &c.backends {
            b.validate()?;
        }
        let server = &c.server;
        if server.tls_cert.is_some() != server.tls_key.is_some() {
            return Err(
                "server.tls_cert and server.tls_key go together: set both or neither".into()
            );
        }
        if server.tls_client_ca.is_some() && server.tls_cert.is_none() {
            return Err("server.tls_client_ca needs server.tls_cert and server.tls_key".into());
        }
        if server.tls_reload_interval.0.is_some_and(|d| d.is_zero()) {
            return Err("server.tls_reload_interval must be more than 0, or \"off\"".into());
        }
        for (i, t) in c.tokens.iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(format!("token #{} has an empty name", i + 1));
            }
            if crate::audit::RESERVED_ACTORS.contains(&t.name.as_str()) {
                return Err(format!(
                    "token {:?}: the name is reserved for the audit log's own lines (use \
                     another name)",
                    t.name
                ));
            }
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "token {:?}: sha256 must be 64 hex digits (the SHA-256 of the token)",
                    t.name
                ));
            }
        }
        Ok(())
    }

    /// The VaultDb settings this configuration asks for.
    pub fn settings(&self) -> Settings {
        let c = &self.config;
        let mut s = Settings::default();
        s.write_quorum = c.write_quorum;
        s.retain_versions = c.retain_versions;
        s.padding = c.padding.0;
        s.mode = c.mode.map(|m| m.0);
        s.prefix = c.prefix.clone();
        s.hedge_after = c.timeouts.hedge_after.0;
        if let Some(ByteSize(seg)) = c.segment_size {
            s.segment_size = usize::try_from(seg).unwrap_or(usize::MAX);
        }
        if let Some(ByteSize(m)) = c.max_record_size {
            s.max_record_size = usize::try_from(m).unwrap_or(usize::MAX);
        }
        if let Some(ByteSize(m)) = c.max_inflight {
            s.max_inflight_bytes = usize::try_from(m).unwrap_or(usize::MAX);
        }
        s.call_policy.timeout = c.timeouts.call.0;
        s.call_policy.max_attempts = c.timeouts.attempts;
        if let Some(g) = c.timeouts.grace_period {
            s.grace_period = g.0;
        }
        if let Some(f) = c.timeouts.fence_check {
            s.fence_check = Some(f.0);
        }
        s
    }

    /// Builds the backends, in share order, with secrets from the process environment.
    /// Offline: no request is sent and no credentials are loaded. A backend that cannot be
    /// built is an [`Unavailable`](super::backends::Unavailable) one, logged as a warning (see
    /// [`BackendEntry::build`]): it costs the store that backend only.
    pub fn backends(&self) -> Vec<Arc<dyn StorageBackend>> {
        self.backends_with(&process_env)
    }

    /// [`backends`](Self::backends) with secrets read from `env`.
    pub fn backends_with(&self, env: Env<'_>) -> Vec<Arc<dyn StorageBackend>> {
        self.config.backends.iter().map(|b| b.build(env)).collect()
    }

    /// Removes temporary files that crashed writes left in the fs backends (older than
    /// [`vaultdb_fs::TEMP_MAX_AGE`]); returns how many. Failures are logged, not fatal.
    pub async fn clean_fs_temp(&self) -> usize {
        let mut removed = 0;
        for b in &self.config.backends {
            if let BackendEntry::Fs(s) = b {
                let fs = FsBackend::new(s.id.clone(), s.id.clone(), s.path.clone());
                match fs.clean_temp(vaultdb_fs::TEMP_MAX_AGE).await {
                    Ok(n) => removed += n,
                    Err(e) => tracing::warn!(backend = %s.id, "cannot clean temporary files: {e}"),
                }
            }
        }
        removed
    }

    /// A one-line description, e.g. `2-of-3 over disk-1, disk-2, disk-3`.
    pub fn describe(&self) -> String {
        let ids: Vec<&str> = self.config.backends.iter().map(BackendEntry::id).collect();
        format!("{}-of-{} over {}", self.config.threshold, ids.len(), ids.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::config::{ByteSize, init_file};

    fn parse(text: &str) -> Result<Loaded, CliError> {
        Loaded::from_text(text, Source::File("/etc/vaultdb/vaultdb.toml".into()))
    }

    const TWO_FS: &str = "threshold = 2\n[[backends]]\nkind = \"fs\"\nid = \"a\"\npath = \"a\"\n\
                          [[backends]]\nkind = \"fs\"\nid = \"b\"\npath = \"/abs/b\"\n";

    #[test]
    fn embedded_default_parses() {
        let l = Loaded::from_text(DEFAULT_CONFIG, Source::Embedded).unwrap();
        assert_eq!(l.config.threshold, 2);
        assert_eq!(l.config.backends.len(), 3);
        assert_eq!(l.describe(), "2-of-3 over disk-1, disk-2, disk-3");
        assert_eq!(l.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(l.config.server.body_limit, ByteSize(16 << 20));
    }

    #[test]
    fn init_file_parses_with_token() {
        let text = init_file("admin", &"ab".repeat(32));
        let l = parse(&text).unwrap();
        assert_eq!(l.config.tokens.len(), 1);
        assert_eq!(l.config.tokens[0].role, Role::Admin);
        assert_eq!(l.settings().mode, None);
        let compact = crate::config::with_mode(&text, vaultdb_core::Mode::Compact);
        assert!(compact.contains("\nmode = \"compact\"\n"));
        let l = parse(&compact).unwrap();
        assert_eq!(l.settings().mode, Some(vaultdb_core::Mode::Compact));
        let v2 = crate::config::with_prefix(&text, "v2");
        assert_eq!(parse(&v2).unwrap().settings().prefix, "v2");
        assert_eq!(l.settings().prefix, "vaultdb");
        let bad = compact.replace("mode = \"compact\"", "mode = \"short\"");
        assert!(parse(&bad).unwrap_err().to_string().contains("invalid mode"));
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let l = parse(TWO_FS).unwrap();
        let paths: Vec<_> = l
            .config
            .backends
            .iter()
            .map(|b| match b {
                BackendEntry::Fs(s) => s.path.clone(),
                other => unreachable!("{other:?}"),
            })
            .collect();
        assert_eq!(paths[0], Path::new("/etc/vaultdb/vaultdb-data/a"));
        assert_eq!(paths[1], Path::new("/abs/b"));
        assert_eq!(l.audit_log, Path::new("/etc/vaultdb/vaultdb-data/audit.jsonl"));
    }

    #[test]
    fn tls_settings_resolve_and_go_together() {
        let l = parse(&format!(
            "{TWO_FS}[server]\ntls_cert = \"tls/cert.pem\"\ntls_key = \"/abs/key.pem\"\n\
             tls_client_ca = \"ca.pem\"\ntls_reload_interval = \"off\"\n"
        ))
        .unwrap();
        let server = &l.config.server;
        assert_eq!(server.tls_cert.as_deref(), Some(Path::new("/etc/vaultdb/tls/cert.pem")));
        assert_eq!(server.tls_key.as_deref(), Some(Path::new("/abs/key.pem")));
        assert_eq!(server.tls_client_ca.as_deref(), Some(Path::new("/etc/vaultdb/ca.pem")));
        assert_eq!(server.tls_reload_interval.0, None);
        let l = parse(TWO_FS).unwrap();
        assert_eq!(l.config.server.tls_cert, None);
        assert_eq!(
            l.config.server.tls_reload_interval.0,
            Some(crate::server::tls::DEFAULT_RELOAD_INTERVAL)
        );
        for (server, says) in [
            ("tls_cert = \"c.pem\"", "go together"),
            ("tls_key = \"k.pem\"", "go together"),
            ("tls_client_ca = \"ca.pem\"", "needs server.tls_cert"),
            ("tls_cert = \"c\"\ntls_key = \"k\"\ntls_reload_interval = \"0s\"", "more than 0"),
        ] {
            let e = parse(&format!("{TWO_FS}[server]\n{server}\n")).unwrap_err();
            assert_eq!(e.code, "INVALID_CONFIG");
            assert!(e.message.contains(says), "{server}: {e}");
        }
    }

    #[test]
    fn human_units_and_backend_urls() {
        let text = "threshold = 2\nsegment_size = \"1.5MiB\"\n\
                    [timeouts]\ncall = \"0.05s\"\ngrace_period = \"1d\"\nhedge_after = \"off\"\n\
                    fence_check = \"2s\"\n\
                    [server]\nbody_limit = \"1GB\"\nrequest_timeout = \"1h 30m\"\n\
                    [[backends]]\nid = \"a\"\nurl = \"file://a\"\n\
                    [[backends]]\nid = \"s3\"\nurl = \"s3://bkt/pre/fix?region=eu-west-1\"\n\
                    [[backends]]\nid = \"az\"\nurl = \"az://acct/cont\"\ncredentials = \"sas\"\n";
        let l = parse(text).unwrap();
        let c = &l.config;
        assert_eq!(c.segment_size, Some(ByteSize(1536 << 10)));
        assert_eq!(c.timeouts.call.0, std::time::Duration::from_millis(50));
        assert_eq!(c.timeouts.grace_period.unwrap().0, std::time::Duration::from_secs(86_400));
        assert_eq!(l.settings().fence_check, Some(std::time::Duration::from_secs(2)));
        assert_eq!(parse(TWO_FS).unwrap().settings().fence_check, Settings::default().fence_check);
        assert_eq!(c.server.body_limit, ByteSize(1_000_000_000));
        assert_eq!(c.server.request_timeout.0, std::time::Duration::from_secs(5_400));
        let kinds: Vec<&str> = c.backends.iter().map(BackendEntry::kind).collect();
        assert_eq!(kinds, ["fs", "s3", "azure"]);
        assert_eq!(c.backends[0].location(), "/etc/vaultdb/vaultdb-data/a");
        assert_eq!(c.backends[1].location(), "s3://bkt/pre/fix");
        assert_eq!(c.backends[2].location(), "az://acct/cont");
        let BackendEntry::S3(s3) = &c.backends[1] else { unreachable!() };
        assert_eq!(s3.region.as_deref(), Some("eu-west-1"));
        // A key given by the URL and again by hand, and kind with url, are errors.
        for (bad, says) in [
            (
                "[[backends]]\nid = \"x\"\nurl = \"s3://b\"\nbucket = \"c\"\n",
                "bucket is given twice",
            ),
            ("[[backends]]\nid = \"x\"\nkind = \"s3\"\nurl = \"s3://b\"\n", "kind or url"),
            ("[[backends]]\nid = \"x\"\nurl = \"s4://b\"\n", "unknown scheme"),
            ("[[backends]]\nid = \"x\"\nurl = \"s3://b?colour=red\"\n", "unknown field `colour`"),
        ] {
            let e = parse(&format!("threshold = 2\n{bad}")).unwrap_err();
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
        // The file `init --backend` writes parses to the backends given.
        let text = crate::config::init_file_with(
            Some(2),
            &[
                ("aws".into(), "s3://b1?region=us-west-2".into()),
                ("gcp".into(), "gs://b2/p".into()),
                ("azure".into(), "az://acct/c3".into()),
            ],
            "admin",
            &"ab".repeat(32),
        );
        let l = parse(&text).unwrap();
        assert_eq!(l.describe(), "2-of-3 over aws, gcp, azure");
    }

    #[test]
    fn rejects_bad_configs() {
        let cases = [
            ("threshold = 2\nbogus = 1\n", "unknown field"),
            ("threshold = \n", "line 1"),
            (&TWO_FS.replace("threshold = 2", "threshold = 3"), "larger than"),
            (&TWO_FS.replace("threshold = 2", "threshold = 1"), "at least 2"),
            (&TWO_FS.replacen("\"fs\"", "\"ftp\"", 1), "unknown variant"),
            (&TWO_FS.replacen("path = \"a\"", "path = \"a\"\ncolour = 1", 1), "unknown field"),
            (&TWO_FS.replacen("id = \"b\"", "id = \"a\"", 1), "used twice"),
            ("threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n", "at least 2 backends"),
            (&format!("{TWO_FS}[server]\nlisten = \"nowhere\"\n"), "not an address"),
            (&format!("padding = \"fancy\"\n{TWO_FS}"), "invalid padding"),
            // The store's own checks (vaultdb_core's Settings::validate).
            (&format!("write_quorum = 1\n{TWO_FS}"), "write_quorum 1 must be between"),
            (&format!("retain_versions = 0\n{TWO_FS}"), "retain_versions must be at least 1"),
            (&format!("segment_size = 10\n{TWO_FS}"), "segment_size must be between"),
            (&format!("max_inflight = 100\n{TWO_FS}"), "in-flight budget"),
            (&format!("prefix = \"a//b\"\n{TWO_FS}"), "invalid key prefix"),
            (&TWO_FS.replacen("id = \"b\"", "id = \" \"", 1), "backend #2 has an empty id"),
            // The file's own checks.
            (&TWO_FS.replacen("\n", "\n[timeouts]\nattempts = 0\n", 1), "timeouts.attempts"),
            (
                &TWO_FS.replacen("\n", "\n[timeouts]\nfence_check = \"0s\"\n", 1),
                "timeouts.fence_check must be more than 0",
            ),
            (&TWO_FS.replacen("path = \"a\"", "path = \"\"", 1), "path must not be empty"),
            (
                &format!(
                    "{TWO_FS}[[tokens]]\nname = \"anonymous\"\nrole = \"read\"\nsha256 = \"{}\"\n",
                    "ab".repeat(32)
                ),
                "reserved",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.code, "INVALID_CONFIG", "{text}");
            assert!(e.message.contains(want), "{text}: {} lacks {want}", e.message);
            assert!(!e.message.contains('\n'), "one line: {}", e.message);
        }
    }
}
