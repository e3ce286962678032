//! The backend conformance suite against a real PostgreSQL server (started by `cargo xtask
//! itest`, which sets `VAULTDB_TEST_POSTGRES_URL` to a superuser's URL on a throwaway
//! cluster); skipped without it.

use std::env;
use std::sync::Arc;

use bytes::Bytes;
use vaultdb_core::{BackendErrorKind, Key, KeyPrefix, ListFrom, PutMode, StorageBackend};
use vaultdb_postgres::{PostgresBackend, PostgresConfig};
use vaultdb_testkit::Capabilities;

fn url() -> Option<String> {
    env::var("VAULTDB_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())
}

macro_rules! url_or_skip {
    () => {
        match url() {
            Some(u) => u,
            None => {
                return eprintln!(
                    "skip: VAULTDB_TEST_POSTGRES_URL unset (run `cargo xtask itest`)"
                );
            }
        }
    };
}

/// A table name of its own per test, so that tests running at once do not meet.
fn table(test: &str) -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{test}_{}_{nanos}", std::process::id())
}

fn backend(url: &str, config: impl FnOnce(PostgresConfig) -> PostgresConfig) -> PostgresBackend {
    PostgresBackend::new("pg", "PostgreSQL", config(PostgresConfig::new(url))).unwrap()
}

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_postgres() {
    let url = url_or_skip!();
    let b = backend(&url, |c| c.with_table(table("conformance")));
    vaultdb_testkit::run_all(&b, "conformance/").await;
    vaultdb_testkit::run_all(&b, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_postgres_schema_table_small_pages() {
    let url = url_or_skip!();
    // A schema of its own, created here (the backend creates tables, never schemas).
    let schema = table("s");
    let pool = sqlx_pool(&url).await;
    sqlx_exec(&pool, &format!("CREATE SCHEMA {schema}")).await;
    let b = backend(&url, |c| c.with_table(format!("{schema}.shares")).with_page_size(7));
    let caps = Capabilities {
        pagination_keys: 60,
        large_object_bytes: 1 << 20,
        ..Capabilities::default()
    };
    vaultdb_testkit::run_all_with(&b, "", &caps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_backends_create_one_table_at_once() {
    let url = url_or_skip!();
    let name = table("race");
    let backends: Vec<Arc<PostgresBackend>> =
        (0..8).map(|_| Arc::new(backend(&url, |c| c.with_table(name.clone())))).collect();
    let tasks: Vec<_> = backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let b = b.clone();
            tokio::spawn(async move {
                b.put(&k(&format!("k{i}")), Bytes::from(vec![i as u8; 3]), PutMode::Create).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let page = backends[0].list_page(&KeyPrefix::default(), ListFrom::Start).await.unwrap();
    assert_eq!(page.entries.len(), 8);
    assert!(page.entries.iter().all(|e| e.size == 3));
}

#[tokio::test]
async fn without_the_table_or_the_privileges_calls_fail_permanently() {
    let url = url_or_skip!();
    // create_table off and no table: the statement fails on an undefined table (42P01).
    let b = backend(&url, |c| c.with_table(table("missing")).with_create_table(false));
    let e = b.get(&k("k"), 10).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
    assert!(e.message().contains("42P01"), "{e}");

    // A role that may log in but not read the table (42501).
    let pool = sqlx_pool(&url).await;
    let name = table("private");
    let owner = backend(&url, |c| c.with_table(name.clone()));
    owner.put(&k("k"), Bytes::from_static(b"v"), PutMode::Create).await.unwrap();
    let role = table("nobody");
    sqlx_exec(&pool, &format!("CREATE ROLE {role} LOGIN PASSWORD 'pw-of-{role}'")).await;
    let as_role = with_user(&url, &role);
    let b =
        backend(&as_role, |c| c.with_table(name.clone()).with_password(format!("pw-of-{role}")));
    let e = b.get(&k("k"), 10).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
    assert!(!e.to_string().contains(&format!("pw-of-{role}")), "{e}");
    // A wrong password (28P01) is permanent too, and not shown.
    let b = backend(&as_role, |c| c.with_table(name.clone()).with_password("wrong-password"));
    let e = b.get(&k("k"), 10).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
    assert!(
        !e.to_string().contains("wrong-password") && !format!("{b:?}").contains("wrong-password")
    );
}

#[tokio::test]
async fn a_server_that_is_not_there_is_transient() {
    let _ = url_or_skip!();
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let b = backend(&format!("postgres://vaultdb@127.0.0.1:{port}/vaultdb?sslmode=disable"), |c| {
        c.with_acquire_timeout(std::time::Duration::from_secs(2))
    });
    let e = b.put(&k("k"), Bytes::from_static(b"v"), PutMode::Create).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Transient, "{e}");
}

#[tokio::test]
async fn rows_with_invalid_keys_are_skipped_and_values_are_stored_uncompressed() {
    let url = url_or_skip!();
    let name = table("foreign");
    let b = backend(&url, |c| c.with_table(name.clone()).with_page_size(2));
    b.put(&k("a"), Bytes::from_static(b"1"), PutMode::Create).await.unwrap();
    let pool = sqlx_pool(&url).await;
    for bad in ["a b", "", "x//y", "b/"] {
        sqlx_exec(&pool, &format!("INSERT INTO {name} (key, data) VALUES ('{bad}', '\\x00')"))
            .await;
    }
    b.put(&k("c"), Bytes::from_static(b"22"), PutMode::Create).await.unwrap();
    let all = vaultdb_core::backend::StorageBackendExt::list_all(&b, &KeyPrefix::default())
        .await
        .unwrap();
    let keys: Vec<_> = all.iter().map(|e| (e.key.as_str().to_owned(), e.size)).collect();
    assert_eq!(keys, [("a".to_owned(), 1), ("c".to_owned(), 2)]);
    let storage: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT attstorage::text FROM pg_attribute WHERE attrelid = '{name}'::regclass \
         AND attname = 'data'"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(storage, "e", "STORAGE EXTERNAL");
}

/// A pool on `url` for the test's own statements.
async fn sqlx_pool(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(url).await.unwrap()
}

async fn sqlx_exec(pool: &sqlx::PgPool, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// `url` with its user replaced by `user` (and no password).
fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

/// `url` with its `sslmode` (and any `sslrootcert`) replaced by `params`.
fn with_tls(url: &str, params: &str) -> String {
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    format!("{base}?{params}")
}

#[tokio::test]
async fn tls_as_sslmode_says() {
    let url = url_or_skip!();
    let (Ok(tls_url), Ok(ca)) =
        (env::var("VAULTDB_TEST_POSTGRES_TLS_URL"), env::var("VAULTDB_TEST_POSTGRES_CA"))
    else {
        return eprintln!("skip: VAULTDB_TEST_POSTGRES_TLS_URL unset (run `cargo xtask itest`)");
    };
    let name = table("tls");
    // verify-full against the run's CA: the server is authenticated, and the session is
    // encrypted (pg_stat_ssl, through a connection made with the same URL).
    let verified = backend(&tls_url, |c| c.with_table(name.clone()));
    verified.put(&k("k"), Bytes::from_static(b"over tls"), PutMode::Create).await.unwrap();
    assert_eq!(verified.get(&k("k"), 100).await.unwrap().unwrap(), Bytes::from_static(b"over tls"));
    for (params, encrypted) in [
        (format!("sslmode=verify-full&sslrootcert={ca}"), true),
        (format!("sslmode=verify-ca&sslrootcert={ca}"), true),
        ("sslmode=require".to_owned(), true),
        ("sslmode=prefer".to_owned(), true),
        ("sslmode=disable".to_owned(), false),
    ] {
        let u = with_tls(&tls_url, &params);
        let pool = sqlx_pool(&u).await;
        let ssl: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(ssl, encrypted, "{params}");
        let b = backend(&u, |c| c.with_table(name.clone()));
        assert_eq!(b.get(&k("k"), 100).await.unwrap().unwrap(), Bytes::from_static(b"over tls"));
    }
    // verify-full without the CA: the system's CA store does not know the run's CA, so the
    // server is not trusted; that is permanent (retrying will not help), and says TLS.
    let untrusted = backend(&with_tls(&url, "sslmode=verify-full"), |c| c.with_table(name.clone()));
    let e = untrusted.get(&k("k"), 100).await.unwrap_err();
    assert_eq!(e.kind(), BackendErrorKind::Permanent, "{e}");
    assert!(
        e.to_string().to_lowercase().contains("tls") || e.to_string().contains("certificate"),
        "{e}"
    );
}
