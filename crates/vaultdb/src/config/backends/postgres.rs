//! `kind = "postgres"`: a PostgreSQL table ([`PostgresConfig`], crate vaultdb-postgres).

use vaultdb_postgres::{PostgresBackend, PostgresConfig, redact_url};

use super::{Env, err, from_env};

section! {
    /// `kind = "postgres"`: share objects as rows of a PostgreSQL table.
    pub struct PostgresSection {
        /// The connection URL, libpq's form: `postgres://user@host:port/db?sslmode=verify-full`
        /// (without a password: see `password_env`).
        pub url: String,
        /// The variable holding the password (none: the URL's user needs none, or `PGPASSWORD`).
        pub password_env: Option<String>,
        /// The table (`name` or `schema.name`; default `vaultdb_objects`).
        pub table: Option<String>,
        /// Create the table on first use if missing (default true).
        pub create_table: Option<bool>,
        /// The connection pool's size (default 10).
        pub max_connections: Option<u32>,
        /// Keys per listing page (1 to 10000).
        pub page_size: Option<usize>,
    }
}

impl PostgresSection {
    /// The configuration without the password.
    fn base(&self) -> PostgresConfig {
        let mut c = PostgresConfig::new(self.url.clone());
        if let Some(t) = &self.table {
            c = c.with_table(t.clone());
        }
        if let Some(create) = self.create_table {
            c = c.with_create_table(create);
        }
        if let Some(n) = self.max_connections {
            c = c.with_max_connections(n);
        }
        if let Some(n) = self.page_size {
            c = c.with_page_size(n);
        }
        c
    }

    /// Checks the fields (no environment, no network): the crate checks the URL, the table
    /// and the sizes (page and pool) offline; a password written in the URL is refused.
    pub fn validate(&self) -> Result<(), String> {
        let (id, kind) = (self.id.as_str(), "postgres");
        if redact_url(&self.url) != self.url {
            return Err(err(
                id,
                kind,
                "url must not hold a password: name the variable that does in password_env",
            ));
        }
        PostgresBackend::new(id, id, self.base()).map(drop).map_err(|e| err(id, kind, e.message()))
    }

    /// The [`PostgresConfig`] this section stands for, reading the password from `env`.
    ///
    /// # Errors
    /// `password_env` names a variable that is not set.
    pub fn to_config(&self, env: Env<'_>) -> Result<PostgresConfig, String> {
        let mut c = self.base();
        if let Some(var) = &self.password_env {
            c = c.with_password(from_env(env, &self.id, "postgres", "password_env", var)?);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::super::BackendEntry;
    use crate::config::{Loaded, Source};

    fn parse(backend: &str) -> Result<Loaded, String> {
        let text = format!(
            "threshold = 2\n[[backends]]\nkind = \"memory\"\nid = \"m\"\n\
             [[backends]]\nkind = \"postgres\"\nid = \"pg\"\n{backend}"
        );
        Loaded::from_text(&text, Source::File("/etc/vaultdb/vaultdb.toml".into()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_key_maps_and_the_password_comes_from_the_environment() {
        let l = parse(
            "name = \"On-premise PostgreSQL\"\n\
             url = \"postgres://vaultdb@db.internal:5433/vault?sslmode=verify-full\"\n\
             password_env = \"VAULTDB_PG_PASSWORD\"\ntable = \"app.shares\"\n\
             create_table = false\nmax_connections = 4\npage_size = 250\n",
        )
        .unwrap();
        assert_eq!(l.describe(), "2-of-2 over m, pg");
        let BackendEntry::Postgres(s) = &l.config.backends[1] else { panic!() };
        let env = |v: &str| (v == "VAULTDB_PG_PASSWORD").then(|| "pg-secret-pw".to_owned());
        let c = s.to_config(&env).unwrap();
        assert_eq!(c.url, "postgres://vaultdb@db.internal:5433/vault?sslmode=verify-full");
        assert_eq!(c.password.as_deref(), Some("pg-secret-pw"));
        assert_eq!((c.table.as_str(), c.create_table), ("app.shares", false));
        assert_eq!((c.max_connections, c.page_size), (4, 250));
        let built = l.backends_with(&env);
        assert_eq!(built[1].name(), "On-premise PostgreSQL");
        let debug = format!("{:?}", built[1]);
        assert!(debug.starts_with("PostgresBackend") && !debug.contains("pg-secret-pw"), "{debug}");
        // Without the variable: built as Unavailable, naming the variable, never a value.
        let none = |_: &str| None;
        let e = l.backends_with(&none)[1].clone();
        let debug = format!("{e:?}");
        assert!(debug.contains("VAULTDB_PG_PASSWORD") && debug.contains("not set"), "{debug}");
    }

    #[test]
    fn bad_sections_fail_at_load_naming_the_backend() {
        for (section, what) in [
            ("url = \"postgres://u:hunter2@h/db\"\n", "must not hold a password"),
            ("url = \"postgres://u@h/db?password=hunter2\"\n", "must not hold a password"),
            ("url = \"mysql://u@h/db\"\n", "postgres://"),
            ("url = \"postgres://u@h/db?sslmode=sometimes\"\n", "not a valid connection URL"),
            ("url = \"postgres://u@h/db\"\ntable = \"t; DROP TABLE x\"\n", "table"),
            ("url = \"postgres://u@h/db\"\npage_size = 0\n", "page_size"),
            ("url = \"postgres://u@h/db\"\nmax_connections = 0\n", "max_connections"),
            ("url = \"postgres://u@h/db\"\npassword = \"x\"\n", "unknown field"),
        ] {
            let e = parse(section).unwrap_err();
            assert!(e.contains(what), "{section}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
            if what != "unknown field" {
                assert!(e.contains("backend \"pg\" (postgres)"), "{e}");
            }
        }
    }
}
