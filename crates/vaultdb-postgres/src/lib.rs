#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

mod error;
mod url;

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::OnceCell;
use vaultdb_core::{
    BackendError, BackendResult, Key, KeyPrefix, ListEntry, ListFrom, ListPage, PutMode,
    StorageBackend,
};

use crate::error::map_error;
pub use crate::url::redact_url;

/// The table used when none is configured.
pub const DEFAULT_TABLE: &str = "vaultdb_objects";
/// The default number of keys per listing page.
pub const DEFAULT_PAGE_SIZE: usize = 1000;
/// The largest page a listing may ask for.
pub const MAX_PAGE_SIZE: usize = 10_000;
/// The default size of the connection pool.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// How long a call waits for a connection (from the pool, or a new one) by default.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a [`PostgresBackend`] keeps its objects and how it connects.
///
/// ```
/// use vaultdb_postgres::PostgresConfig;
///
/// let c = PostgresConfig::new("postgres://vaultdb@db.example.com/vaultdb?sslmode=verify-full")
///     .with_password("from a secret store")
///     .with_table("shares")
///     .with_max_connections(20);
/// // The password never shows.
/// assert!(!format!("{c:?}").contains("secret store"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// A libpq-style connection URL, `postgres://user@host:port/database?param=value`. Its
    /// parameters are libpq's (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`,
    /// `application_name`, `options`, ...); what it leaves out comes from the `PG*`
    /// environment variables (`PGHOST`, `PGUSER`, `PGPASSWORD`, `PGSSLMODE`, ...), as for
    /// `psql`. `sslmode` defaults to `prefer`, as in libpq: ask for TLS without verifying the
    /// server; use `verify-full` (and `sslrootcert` for a private CA; the system's CA store
    /// otherwise) to authenticate it.
    pub url: String,
    /// The password, if not in the URL or `PGPASSWORD` (redacted in `Debug`).
    pub password: Option<String>,
    /// The table, `name` or `schema.name`, each part a lowercase SQL identifier
    /// (`[a-z_][a-z0-9_]*`, at most 63 bytes); default [`DEFAULT_TABLE`].
    pub table: String,
    /// Create the table on first use if it does not exist (the default). Without it the
    /// table must exist, made with [`PostgresBackend::create_table_sql`].
    pub create_table: bool,
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// How long a call waits for a connection before failing (transient).
    pub acquire_timeout: Duration,
    /// Keys per listing page, 1 to [`MAX_PAGE_SIZE`].
    pub page_size: usize,
}

impl PostgresConfig {
    /// A configuration for the database at `url` (see [`url`](Self::url)).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            password: None,
            table: DEFAULT_TABLE.to_owned(),
            create_table: true,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

vaultdb_core::config_setters!(PostgresConfig {
    with_password(password: impl Into<String>) => Some(password.into()),
    with_table(table: impl Into<String>) => table.into(),
    with_create_table(create_table: bool),
    with_max_connections(max_connections: u32),
    with_acquire_timeout(acquire_timeout: Duration),
    with_page_size(page_size: usize),
});

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("table", &self.table)
            .field("create_table", &self.create_table)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// The SQL statements of one table, quoted once.
#[derive(Debug)]
struct Statements {
    /// The table as written in the configuration (for messages).
    table: String,
    create: [Arc<str>; 2],
    insert: Arc<str>,
    upsert: Arc<str>,
    get: Arc<str>,
    delete: Arc<str>,
    /// Keys after `$1` that are `>= $2`, `$3` at most.
    list_all: Arc<str>,
    /// As `list_all`, and `< $4` (the end of the prefix's range).
    list_range: Arc<str>,
}

impl Statements {
    fn new(table: &str) -> BackendResult<Self> {
        let parts: Vec<&str> = table.split('.').collect();
        if parts.len() > 2 || !parts.iter().all(|p| is_identifier(p)) {
            return Err(BackendError::permanent(format!(
                "PostgreSQL configuration: table {table:?} must be `name` or `schema.name`, \
                 each [a-z_][a-z0-9_]* and at most 63 bytes"
            )));
        }
        let q: Vec<String> = parts.iter().map(|p| format!("\"{p}\"")).collect();
        let t = q.join(".");
        Ok(Self {
            table: table.to_owned(),
            // "C" collation: keys compare and sort as bytes, as the contract's listings do.
            // Shares are random bytes: compressing them would only cost time.
            create: [
                format!(
                    "CREATE TABLE {t} (key text COLLATE \"C\" PRIMARY KEY, data bytea NOT NULL)"
                )
                .into(),
                format!("ALTER TABLE {t} ALTER COLUMN data SET STORAGE EXTERNAL").into(),
            ],
            insert: format!(
                "INSERT INTO {t} (key, data) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
            )
            .into(),
            upsert: format!(
                "INSERT INTO {t} (key, data) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data"
            )
            .into(),
            // The length comes from the value's header: an object over the limit is not read.
            get: format!(
                "SELECT octet_length(data), CASE WHEN octet_length(data) <= $2 THEN data END \
                 FROM {t} WHERE key = $1"
            )
            .into(),
            delete: format!("DELETE FROM {t} WHERE key = $1").into(),
            list_all: format!(
                "SELECT key, octet_length(data) FROM {t} WHERE key > $1 AND key >= $2 \
                 ORDER BY key LIMIT $3"
            )
            .into(),
            list_range: format!(
                "SELECT key, octet_length(data) FROM {t} WHERE key > $1 AND key >= $2 \
                 AND key < $4 ORDER BY key LIMIT $3"
            )
            .into(),
        })
    }
}

/// A lowercase unquoted SQL identifier (so that quoting it, and `to_regclass` reading it
/// unquoted, name the same table).
fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.len() <= 63
}

/// The first string greater than every string that starts with `prefix` (keys are printable
/// ASCII, so the last byte, at most `~`, can be incremented); `None` for the empty prefix.
fn prefix_end(prefix: &str) -> Option<String> {
    let last = *prefix.as_bytes().last()?;
    let mut end = prefix[..prefix.len() - 1].to_owned();
    end.push(char::from(last + 1));
    Some(end)
}

/// A [`StorageBackend`] on a PostgreSQL table: one row per object, `(key text COLLATE "C"
/// PRIMARY KEY, data bytea)`.
///
/// - Creates are `INSERT ... ON CONFLICT (key) DO NOTHING`: the primary key makes concurrent
///   creates of one key atomic (one row inserted, the others see none), and a row is visible
///   only once its transaction commits, whole.
/// - `get` asks for the value's length first, in the same statement: an object longer than
///   the caller allows is refused without being sent.
/// - Listings are keyset-paginated on the primary key's index (`key > last ORDER BY key
///   LIMIT n`), so a page costs the same wherever it is, and the cursor is the last key.
/// - One connection pool per backend, created on first use; nothing connects before a call.
pub struct PostgresBackend {
    id: String,
    name: String,
    options: PgConnectOptions,
    config: PostgresConfig,
    sql: Statements,
    pool: OnceLock<PgPool>,
    table_ready: OnceCell<()>,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PostgresBackend {
    /// A backend `id` on the database and table of `config`. Offline: the URL is parsed and
    /// checked, nothing connects until the first call.
    ///
    /// # Errors
    /// A [`Permanent`](vaultdb_core::BackendErrorKind::Permanent) error for a URL that does not parse, a
    /// table name that is not a plain identifier, or a page size or pool size out of range.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        config: PostgresConfig,
    ) -> BackendResult<Self> {
        let scheme_ok = ["postgres://", "postgresql://"]
            .iter()
            .any(|s| config.url.get(..s.len()).is_some_and(|h| h.eq_ignore_ascii_case(s)));
        if !scheme_ok {
            return Err(BackendError::permanent(
                "PostgreSQL configuration: the URL must start with postgres:// or postgresql://",
            ));
        }
        let mut options = PgConnectOptions::from_str(&config.url).map_err(|e| {
            // sqlx's message may quote the URL: give only the redacted one.
            BackendError::permanent(format!(
                "PostgreSQL configuration: {} is not a valid connection URL ({})",
                redact_url(&config.url),
                error::url_error(&e, &config.url)
            ))
        })?;
        if let Some(p) = &config.password {
            options = options.password(p);
        }
        if options.get_application_name().is_none() {
            options = options.application_name("vaultdb");
        }
        if config.page_size == 0 || config.page_size > MAX_PAGE_SIZE {
            return Err(BackendError::permanent(format!(
                "PostgreSQL configuration: page_size must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        if config.max_connections == 0 {
            return Err(BackendError::permanent(
                "PostgreSQL configuration: max_connections must be at least 1",
            ));
        }
        let sql = Statements::new(&config.table)?;
        Ok(Self {
            id: id.into(),
            name: name.into(),
            options,
            config,
            sql,
            pool: OnceLock::new(),
            table_ready: OnceCell::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// The statements that create the backend's table (for a database where the backend's
    /// role may not create tables: run them once as the table's owner).
    pub fn create_table_sql(&self) -> [&str; 2] {
        [&*self.sql.create[0], &*self.sql.create[1]]
    }

    /// The pool, created (without connecting) on first use.
    fn pool(&self) -> &PgPool {
        self.pool.get_or_init(|| {
            PgPoolOptions::new()
                .max_connections(self.config.max_connections)
                .acquire_timeout(self.config.acquire_timeout)
                // An idle connection is checked before a call gets it, so that one the server
                // closed (a restart, a failover) is replaced rather than failing the call.
                .test_before_acquire(true)
                .connect_lazy_with(self.options.clone())
        })
    }

    /// The pool, once the table exists (created on first use unless configured not to).
    async fn ready(&self) -> BackendResult<&PgPool> {
        let pool = self.pool();
        if self.config.create_table {
            self.table_ready.get_or_try_init(|| self.create_table(pool)).await?;
        }
        Ok(pool)
    }

    /// Creates the table unless it exists. Several processes may race to do it, and
    /// PostgreSQL's `CREATE TABLE` is not safe against itself (two creators can both pass
    /// the existence check and the loser fails on the catalogs: "type ... already exists",
    /// 42710). So creators queue on a transaction-scoped advisory lock named by the table
    /// and look again once they hold it; the "already exists" codes are still taken as
    /// success, for a creator that does not take the lock (an older VaultDB, a DBA's script).
    async fn create_table(&self, pool: &PgPool) -> BackendResult<()> {
        let what = format!("table {}", self.sql.table);
        let exists = || {
            sqlx::query_scalar::<_, Option<String>>("SELECT to_regclass($1)::text")
                .bind(&self.sql.table)
        };
        let found = exists().fetch_one(pool).await.map_err(|e| map_error("check", &what, e))?;
        if found.is_some() {
            return Ok(());
        }
        let mut tx = pool.begin().await.map_err(|e| map_error("create", &what, e))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("vaultdb create {}", self.sql.table))
            .execute(&mut *tx)
            .await
            .map_err(|e| map_error("lock", &what, e))?;
        let found = exists().fetch_one(&mut *tx).await.map_err(|e| map_error("check", &what, e))?;
        if found.is_some() {
            return Ok(());
        }
        for stmt in &self.sql.create {
            if let Err(e) = sqlx::query(AssertSqlSafe(stmt.clone())).execute(&mut *tx).await {
                return match error::sqlstate(&e).as_deref() {
                    // duplicate_table, duplicate_object (the row type), unique_violation (of
                    // the catalogs): another creator won.
                    Some("42P07" | "42710" | "23505") => Ok(()),
                    _ => Err(map_error("create", &what, e)),
                };
            }
        }
        tx.commit().await.map_err(|e| map_error("create", &what, e))
    }
}

#[async_trait]
impl StorageBackend for PostgresBackend {
    vaultdb_core::backend_identity!();

    async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> BackendResult<()> {
        let pool = self.ready().await?;
        let stmt = match mode {
            PutMode::Create => &self.sql.insert,
            PutMode::Overwrite => &self.sql.upsert,
        };
        // Every statement is built from the checked table name alone (Statements::new);
        // values are bound.
        let done = sqlx::query(AssertSqlSafe(stmt.clone()))
            .bind(key.as_str())
            .bind(data.as_ref())
            .execute(pool)
            .await
            .map_err(|e| map_error("put", key, e))?;
        if mode == PutMode::Create && done.rows_affected() == 0 {
            return Err(BackendError::already_exists(key));
        }
        Ok(())
    }

    async fn get(&self, key: &Key, max_len: u64) -> BackendResult<Option<Bytes>> {
        let pool = self.ready().await?;
        let limit = i64::try_from(max_len).unwrap_or(i64::MAX);
        let row = sqlx::query(AssertSqlSafe(self.sql.get.clone()))
            .bind(key.as_str())
            .bind(limit)
            .fetch_optional(pool)
            .await
            .map_err(|e| map_error("get", key, e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let len: i32 = row.try_get(0).map_err(|e| map_error("get", key, e))?;
        let data: Option<Vec<u8>> = row.try_get(1).map_err(|e| map_error("get", key, e))?;
        let len = u64::try_from(len).unwrap_or(0);
        match data {
            Some(d) if d.len() as u64 <= max_len => Ok(Some(Bytes::from(d))),
            Some(d) => Err(BackendError::too_large(key, d.len() as u64, max_len)),
            None => Err(BackendError::too_large(key, len, max_len)),
        }
    }

    async fn delete(&self, key: &Key) -> BackendResult<()> {
        let pool = self.ready().await?;
        sqlx::query(AssertSqlSafe(self.sql.delete.clone()))
            .bind(key.as_str())
            .execute(pool)
            .await
            .map_err(|e| map_error("delete", key, e))?;
        Ok(())
    }

    async fn list_page(&self, prefix: &KeyPrefix, from: ListFrom) -> BackendResult<ListPage> {
        // The cursor is the last key (row) of the page before: the listing resumes after it.
        let after = match from {
            ListFrom::Start => String::new(),
            ListFrom::After(k) => k.as_str().to_owned(),
            ListFrom::Cursor(c) => c,
        };
        let pool = self.ready().await?;
        let limit = i64::try_from(self.config.page_size).unwrap_or(i64::MAX);
        let end = prefix_end(prefix.as_str());
        let sql = if end.is_some() { &self.sql.list_range } else { &self.sql.list_all };
        let mut query =
            sqlx::query(AssertSqlSafe(sql.clone())).bind(after).bind(prefix.as_str()).bind(limit);
        if let Some(end) = end {
            query = query.bind(end);
        }
        let rows = query.fetch_all(pool).await.map_err(|e| map_error("list", prefix, e))?;
        // A full page may have more after it: its last row is the cursor.
        let full = rows.len() >= self.config.page_size;
        let mut entries = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in rows {
            let name: String = row.try_get(0).map_err(|e| map_error("list", prefix, e))?;
            let size: i32 = row.try_get(1).map_err(|e| map_error("list", prefix, e))?;
            // A row whose key is not a valid key was not written by a backend: skipped.
            if let Ok(key) = Key::new(&name) {
                entries.push(ListEntry { key, size: u64::try_from(size).unwrap_or(0) });
            }
            last = Some(name);
        }
        Ok(ListPage { entries, next: last.filter(|_| full) })
    }
}

#[cfg(test)]
mod tests {
    use vaultdb_core::BackendErrorKind;

    use super::*;

    #[test]
    fn table_names() {
        assert!(Statements::new("vaultdb_objects").is_ok());
        assert!(Statements::new("app.shares_2").is_ok());
        assert!(Statements::new(&"t".repeat(63)).is_ok());
        for bad in [
            "",
            "1t",
            "a-b",
            "a.b.c",
            "x\"; DROP TABLE y; --",
            "a b",
            ".t",
            "t.",
            "Shares",
            &"t".repeat(64),
        ] {
            let e = Statements::new(bad).unwrap_err();
            assert_eq!(e.kind(), BackendErrorKind::Permanent, "{bad}");
        }
        let s = Statements::new("app.shares").unwrap();
        assert!(s.insert.starts_with("INSERT INTO \"app\".\"shares\" "), "{}", s.insert);
    }

    #[test]
    fn prefix_ranges() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a/"), Some("a0".to_owned()));
        assert_eq!(prefix_end("vdb/r/~"), Some("vdb/r/\u{7f}".to_owned()));
        // Every key under the prefix is below its end, and the keys just past it are not.
        let end = prefix_end("ab").unwrap();
        for k in ["ab", "ab/", "ab~~~", "ab\u{7e}"] {
            assert!(k < end.as_str(), "{k}");
        }
        assert!("ac" >= end.as_str());
    }

    #[test]
    fn construction_is_offline_and_checks_the_configuration() {
        let ok = PostgresBackend::new(
            "pg",
            "PostgreSQL",
            PostgresConfig::new("postgres://u:hunter2@127.0.0.1:1/db?sslmode=require"),
        )
        .unwrap();
        let debug = format!("{ok:?}");
        assert!(!debug.contains("hunter2") && debug.contains("127.0.0.1:1"), "{debug}");
        for (url, what) in [
            ("mysql://u@h/db", "must start with"),
            ("postgres://u@h/db?sslmode=sometimes", "not a valid connection URL"),
        ] {
            let e = PostgresBackend::new("pg", "PG", PostgresConfig::new(url)).unwrap_err();
            assert!(e.message().contains(what), "{url}: {e}");
            assert_eq!(e.kind(), BackendErrorKind::Permanent);
        }
        let pw = PostgresConfig::new("postgres://u:s3cr3t@h/db?sslmode=bogus");
        let e = PostgresBackend::new("pg", "PG", pw).unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let base = PostgresConfig::new("postgres://h/db");
        for (config, what) in [
            (base.clone().with_page_size(0), "page_size"),
            (base.clone().with_page_size(MAX_PAGE_SIZE + 1), "page_size"),
            (base.with_max_connections(0), "max_connections"),
        ] {
            let e = PostgresBackend::new("pg", "PG", config).unwrap_err();
            assert!(e.message().contains(what), "{e}");
        }
    }
}
