//! `kind = "gcs"`: Google Cloud Storage ([`GcsConfig`], crate vaultdb-gcs).

use std::path::PathBuf;

use serde::Deserialize;
use vaultdb_gcs::{GcsConfig, GcsCredentials};

use super::{Env, err, from_env, nonempty, opt_nonempty, page_size, url_like};

/// GCS authentication, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GcsAuth {
    /// Application Default Credentials.
    Default,
    /// No authentication (emulators, public buckets).
    Anonymous,
    /// A service account key (`service_account_file` or `service_account_json_env`).
    ServiceAccount,
}

section! {
    /// `kind = "gcs"`: Google Cloud Storage ([`GcsConfig`]).
    pub struct GcsSection {
        /// The bucket (must exist).
        pub bucket: String,
        /// Key prefix inside the bucket.
        #[serde(default)]
        pub prefix: String,
        /// JSON API endpoint (default Google's; an emulator's URL for tests).
        pub endpoint: Option<String>,
        /// Accept an `http://` endpoint.
        #[serde(default)]
        pub allow_http: bool,
        /// Keys per listing page (1 to 1000).
        pub page_size: Option<usize>,
        /// `"default"` (Application Default Credentials), `"anonymous"` or
        /// `"service_account"`; implied by the service account keys.
        pub credentials: Option<GcsAuth>,
        /// A service account key file (relative: against the configuration file's directory).
        #[serde(alias = "credentials_file")]
        pub service_account_file: Option<PathBuf>,
        /// The variable holding a service account key's JSON.
        pub service_account_json_env: Option<String>,
    }
}

impl GcsSection {
    /// Checks the fields (no environment, no network).
    pub fn validate(&self) -> Result<(), String> {
        let (id, kind) = (self.id.as_str(), "gcs");
        nonempty(id, kind, "bucket", &self.bucket)?;
        if let Some(e) = &self.endpoint {
            url_like(id, kind, e)?;
        }
        page_size(id, kind, self.page_size, 1000)?;
        opt_nonempty(
            id,
            kind,
            "service_account_json_env",
            self.service_account_json_env.as_deref(),
        )?;
        if let Some(p) = &self.service_account_file {
            nonempty(id, kind, "service_account_file", &p.to_string_lossy())?;
        }
        let keyed = self.service_account_file.is_some() || self.service_account_json_env.is_some();
        if self.service_account_file.is_some() && self.service_account_json_env.is_some() {
            return Err(err(
                id,
                kind,
                "set service_account_file or service_account_json_env, not both",
            ));
        }
        match (self.credentials, keyed) {
            (Some(GcsAuth::ServiceAccount), false) => Err(err(
                id,
                kind,
                "credentials = \"service_account\" needs service_account_file or \
                 service_account_json_env",
            )),
            (Some(GcsAuth::Default | GcsAuth::Anonymous), true) => Err(err(
                id,
                kind,
                "service_account_file and service_account_json_env go with credentials = \
                 \"service_account\" (or no credentials key)",
            )),
            _ => Ok(()),
        }
    }

    /// The [`GcsConfig`] this section stands for, reading secrets from `env`.
    ///
    /// # Errors
    /// A variable the section names is not set.
    pub fn to_config(&self, env: Env<'_>) -> Result<GcsConfig, String> {
        let (id, kind) = (self.id.as_str(), "gcs");
        let credentials =
            match (&self.service_account_file, &self.service_account_json_env, self.credentials) {
                (Some(path), _, _) => GcsCredentials::ServiceAccountFile(path.clone()),
                (None, Some(var), _) => GcsCredentials::ServiceAccountJson(from_env(
                    env,
                    id,
                    kind,
                    "service_account_json_env",
                    var,
                )?),
                (None, None, Some(GcsAuth::Anonymous)) => GcsCredentials::Anonymous,
                (None, None, _) => GcsCredentials::Default,
            };
        let mut c = GcsConfig::new(self.bucket.clone())
            .with_prefix(self.prefix.clone())
            .with_credentials(credentials);
        if let Some(e) = &self.endpoint {
            c = c.with_endpoint(e.clone());
        }
        if let Some(n) = self.page_size {
            c = c.with_page_size(n);
        }
        c.allow_http = self.allow_http;
        Ok(c)
    }
}
