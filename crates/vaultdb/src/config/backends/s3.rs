//! `kind = "s3"`: Amazon S3 or an S3-compatible store ([`S3Config`], crate vaultdb-s3), and
//! the static-key fields it shares with `minio`.

use vaultdb_s3::{S3Config, S3Credentials};

use super::{Env, err, from_env, nonempty, opt_nonempty, page_size, url_like};

/// Where an S3 secret access key is read from when `secret_access_key_env` is not set.
pub const DEFAULT_S3_SECRET_ENV: &str = "AWS_SECRET_ACCESS_KEY";

/// Declares a section that takes static S3 keys (`s3`, `minio`): the `section!`, with its
/// own fields and then `access_key_id`, `access_key_id_env`, `secret_access_key_env` and
/// `session_token_env`, and its `keys()`, those four as `StaticKeys` of kind `$kind`.
macro_rules! with_static_keys {
    (
        $(#[$meta:meta])*
        pub struct $section:ident($kind:literal) { $($fields:tt)* }
    ) => {
        section! {
            $(#[$meta])*
            pub struct $section {
                $($fields)*
                /// Static credentials: the access key id (not secret).
                pub access_key_id: Option<String>,
                /// Static credentials: the variable holding the access key id.
                pub access_key_id_env: Option<String>,
                /// Static credentials: the variable holding the secret key (default
                /// `AWS_SECRET_ACCESS_KEY`).
                pub secret_access_key_env: Option<String>,
                /// Static credentials: the variable holding a session token (none by
                /// default).
                pub session_token_env: Option<String>,
            }
        }

        impl $section {
            fn keys(&self) -> super::s3::StaticKeys<'_> {
                super::s3::StaticKeys {
                    id: &self.id,
                    kind: $kind,
                    access_key_id: self.access_key_id.as_deref(),
                    access_key_id_env: self.access_key_id_env.as_deref(),
                    secret_access_key_env: self.secret_access_key_env.as_deref(),
                    session_token_env: self.session_token_env.as_deref(),
                }
            }
        }
    };
}
pub(super) use with_static_keys;

with_static_keys! {
    /// `kind = "s3"`: Amazon S3 or an S3-compatible store ([`S3Config`]).
    pub struct S3Section("s3") {
        /// The bucket (must exist).
        pub bucket: String,
        /// Key prefix ("folder") inside the bucket.
        #[serde(default)]
        pub prefix: String,
        /// Region requests are signed for (default: `AWS_REGION`, `AWS_DEFAULT_REGION`, the
        /// profile's region, else `us-east-1`).
        pub region: Option<String>,
        /// Custom endpoint URL (S3-compatible stores, emulators, VPC endpoints).
        pub endpoint: Option<String>,
        /// Path-style addressing.
        #[serde(default)]
        pub force_path_style: bool,
        /// Accept an `http://` endpoint.
        #[serde(default)]
        pub allow_http: bool,
        /// The SDK's optional checksums on every request.
        #[serde(default)]
        pub strict_checksums: bool,
        /// Keys per listing page (1 to 1000).
        pub page_size: Option<usize>,
        /// The AWS profile (of `~/.aws/config` and `~/.aws/credentials`) for the credential
        /// chain and the region, per backend, SSO profiles included (after `aws sso login`);
        /// default `AWS_PROFILE`, else `default`.
        pub profile: Option<String>,
    }
}

/// The static-key fields shared by `s3` and `minio`.
pub(super) struct StaticKeys<'a> {
    pub(super) id: &'a str,
    pub(super) kind: &'a str,
    pub(super) access_key_id: Option<&'a str>,
    pub(super) access_key_id_env: Option<&'a str>,
    pub(super) secret_access_key_env: Option<&'a str>,
    pub(super) session_token_env: Option<&'a str>,
}

impl StaticKeys<'_> {
    pub(super) fn validate(&self) -> Result<(), String> {
        let (id, kind) = (self.id, self.kind);
        opt_nonempty(id, kind, "access_key_id", self.access_key_id)?;
        opt_nonempty(id, kind, "access_key_id_env", self.access_key_id_env)?;
        opt_nonempty(id, kind, "secret_access_key_env", self.secret_access_key_env)?;
        opt_nonempty(id, kind, "session_token_env", self.session_token_env)?;
        if self.access_key_id.is_some() && self.access_key_id_env.is_some() {
            return Err(err(id, kind, "set access_key_id or access_key_id_env, not both"));
        }
        if self.access_key_id.is_none() && self.access_key_id_env.is_none() {
            for (key, v) in [
                ("secret_access_key_env", self.secret_access_key_env),
                ("session_token_env", self.session_token_env),
            ] {
                if v.is_some() {
                    return Err(err(
                        id,
                        kind,
                        format_args!(
                            "{key} needs access_key_id or access_key_id_env (without them the \
                             AWS credential chain is used)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Static credentials when an access key is configured, else the credential chain.
    pub(super) fn resolve(&self, env: Env<'_>) -> Result<S3Credentials, String> {
        let (id, kind) = (self.id, self.kind);
        let access_key_id = match (self.access_key_id, self.access_key_id_env) {
            (Some(k), _) => k.to_owned(),
            (None, Some(var)) => from_env(env, id, kind, "access_key_id_env", var)?,
            (None, None) => return Ok(S3Credentials::Chain),
        };
        let secret_var = self.secret_access_key_env.unwrap_or(DEFAULT_S3_SECRET_ENV);
        let secret_access_key = env(secret_var).ok_or_else(|| {
            err(
                id,
                kind,
                format_args!(
                    "the secret access key is read from the environment variable {secret_var} \
                     (secret_access_key_env), which is not set"
                ),
            )
        })?;
        let session_token = match self.session_token_env {
            Some(var) => Some(from_env(env, id, kind, "session_token_env", var)?),
            None => None,
        };
        Ok(S3Credentials::Static { access_key_id, secret_access_key, session_token })
    }
}

impl S3Section {
    /// Checks the fields (no environment, no network).
    pub fn validate(&self) -> Result<(), String> {
        let (id, kind) = (self.id.as_str(), "s3");
        nonempty(id, kind, "bucket", &self.bucket)?;
        opt_nonempty(id, kind, "region", self.region.as_deref())?;
        opt_nonempty(id, kind, "profile", self.profile.as_deref())?;
        if self.profile.is_some()
            && (self.access_key_id.is_some() || self.access_key_id_env.is_some())
        {
            return Err(err(
                id,
                kind,
                "profile goes with the credential chain, not with static keys",
            ));
        }
        if let Some(e) = &self.endpoint {
            url_like(id, kind, e)?;
        }
        page_size(id, kind, self.page_size, 1000)?;
        self.keys().validate()
    }

    /// The [`S3Config`] this section stands for, reading secrets from `env`.
    ///
    /// # Errors
    /// A variable the section names is not set.
    pub fn to_config(&self, env: Env<'_>) -> Result<S3Config, String> {
        let mut c = S3Config::new(self.bucket.clone())
            .with_prefix(self.prefix.clone())
            .with_path_style(self.force_path_style)
            .with_allow_http(self.allow_http)
            .with_credentials(self.keys().resolve(env)?);
        // No region written: the AWS tools' own rule (AWS_REGION, AWS_DEFAULT_REGION, the
        // profile's region), applied when the client is built (vaultdb_s3::resolve_region).
        c = c.with_region(self.region.clone().unwrap_or_default());
        if let Some(e) = &self.endpoint {
            c = c.with_endpoint(e.clone());
        }
        if let Some(n) = self.page_size {
            c = c.with_page_size(n);
        }
        c.strict_checksums = self.strict_checksums;
        c.profile = self.profile.clone();
        Ok(c)
    }
}
