//! `kind = "azure"`: Azure Blob Storage ([`AzureConfig`], crate vaultdb-azure).

use std::path::PathBuf;

use serde::Deserialize;
use vaultdb_azure::{AzureConfig, AzureCredentials};

use super::{Env, err, nonempty, page_size, url_like};
use crate::config::Dur;

/// Where an Azure account key is read from when `access_key_env` is not set.
pub const DEFAULT_AZURE_KEY_ENV: &str = "AZURE_STORAGE_ACCOUNT_KEY";
/// Where an Azure SAS token is read from when `sas_token_env` is not set.
pub const DEFAULT_AZURE_SAS_ENV: &str = "AZURE_STORAGE_SAS_TOKEN";
/// Where an Azure client secret is read from when `client_secret_env` is not set.
pub const DEFAULT_AZURE_CLIENT_SECRET_ENV: &str = "AZURE_CLIENT_SECRET";

/// Azure authentication, as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AzureAuth {
    /// object_store's choice from the `AZURE_*` variables.
    Environment,
    /// The account's shared key, from `access_key_env`.
    AccessKey,
    /// A SAS token, from `sas_token_env`.
    Sas,
    /// A managed identity (`client_id` for a user-assigned one).
    ManagedIdentity,
    /// A service principal: `tenant_id`, `client_id`, secret from `client_secret_env`.
    ClientSecret,
    /// AKS workload identity: `tenant_id`, `client_id`, `token_file`.
    WorkloadIdentity,
    /// The Azure CLI's logged-in account.
    AzureCli,
}

impl AzureAuth {
    fn as_str(self) -> &'static str {
        match self {
            Self::Environment => "environment",
            Self::AccessKey => "access_key",
            Self::Sas => "sas",
            Self::ManagedIdentity => "managed_identity",
            Self::ClientSecret => "client_secret",
            Self::WorkloadIdentity => "workload_identity",
            Self::AzureCli => "azure_cli",
        }
    }
}

section! {
    /// `kind = "azure"`: Azure Blob Storage ([`AzureConfig`]).
    pub struct AzureSection {
        /// Storage account (required unless `emulator`).
        pub account: Option<String>,
        /// The container (must exist).
        pub container: String,
        /// Key prefix inside the container.
        #[serde(default)]
        pub prefix: String,
        /// Custom blob endpoint (private endpoints, sovereign clouds, Azurite by URL).
        pub endpoint: Option<String>,
        /// Azurite mode: its account and well-known key, URL from `AZURITE_BLOB_STORAGE_URL`.
        #[serde(default)]
        pub emulator: bool,
        /// Accept an `http://` endpoint.
        #[serde(default)]
        pub allow_http: bool,
        /// Blobs per listing page (1 to 5000).
        pub page_size: Option<usize>,
        /// Timeout of one HTTP request.
        pub timeout: Option<Dur>,
        /// How requests are authorized (default `"environment"`, or the Azurite key with
        /// `emulator = true`).
        pub credentials: Option<AzureAuth>,
        /// `access_key`: the variable holding the account key.
        pub access_key_env: Option<String>,
        /// `sas`: the variable holding the SAS token.
        pub sas_token_env: Option<String>,
        /// `client_secret`: the variable holding the client secret.
        pub client_secret_env: Option<String>,
        /// `client_secret`, `workload_identity`: the Entra ID tenant.
        pub tenant_id: Option<String>,
        /// `managed_identity` (user-assigned), `client_secret`, `workload_identity`: the client id.
        pub client_id: Option<String>,
        /// `workload_identity`: the federated token file.
        pub token_file: Option<PathBuf>,
    }
}

impl AzureSection {
    /// The credentials in effect (`credentials`, else the emulator key or the environment).
    fn auth(&self) -> Option<AzureAuth> {
        match self.credentials {
            Some(a) => Some(a),
            None if self.emulator => None,
            None => Some(AzureAuth::Environment),
        }
    }

    /// Checks the fields (no environment, no network).
    pub fn validate(&self) -> Result<(), String> {
        use AzureAuth::{AccessKey, ClientSecret, ManagedIdentity, Sas, WorkloadIdentity};
        let (id, kind) = (self.id.as_str(), "azure");
        match &self.account {
            Some(a) => nonempty(id, kind, "account", a)?,
            None if self.emulator => {}
            None => {
                return Err(err(id, kind, "account is required (unless emulator = true)"));
            }
        }
        nonempty(id, kind, "container", &self.container)?;
        if let Some(e) = &self.endpoint {
            url_like(id, kind, e)?;
            if self.emulator {
                return Err(err(
                    id,
                    kind,
                    "endpoint does not go with emulator = true (Azurite's URL comes from \
                     AZURITE_BLOB_STORAGE_URL)",
                ));
            }
        }
        page_size(id, kind, self.page_size, 5000)?;
        if self.timeout.is_some_and(|t| t.0.is_zero()) {
            return Err(err(id, kind, "timeout must be more than 0"));
        }
        let fields: [(&str, Option<String>, &[AzureAuth]); 6] = [
            ("access_key_env", self.access_key_env.clone(), &[AccessKey]),
            ("sas_token_env", self.sas_token_env.clone(), &[Sas]),
            ("client_secret_env", self.client_secret_env.clone(), &[ClientSecret]),
            ("tenant_id", self.tenant_id.clone(), &[ClientSecret, WorkloadIdentity]),
            (
                "client_id",
                self.client_id.clone(),
                &[ManagedIdentity, ClientSecret, WorkloadIdentity],
            ),
            (
                "token_file",
                self.token_file.as_ref().map(|p| p.to_string_lossy().into_owned()),
                &[WorkloadIdentity],
            ),
        ];
        let auth = self.auth();
        for (key, value, allowed) in &fields {
            let Some(v) = value else { continue };
            nonempty(id, kind, key, v)?;
            if !auth.is_some_and(|a| allowed.contains(&a)) {
                let names: Vec<String> =
                    allowed.iter().map(|a| format!("\"{}\"", a.as_str())).collect();
                return Err(err(
                    id,
                    kind,
                    format_args!("{key} goes with credentials = {}", names.join(" or ")),
                ));
            }
        }
        let needs: &[&str] = match auth {
            Some(ClientSecret) => &["tenant_id", "client_id"],
            Some(WorkloadIdentity) => &["tenant_id", "client_id", "token_file"],
            _ => &[],
        };
        for key in needs {
            if fields.iter().any(|(k, v, _)| k == key && v.is_none()) {
                return Err(err(
                    id,
                    kind,
                    format_args!(
                        "credentials = \"{}\" needs {key}",
                        auth.map_or("", AzureAuth::as_str)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The [`AzureConfig`] this section stands for, reading secrets from `env`.
    ///
    /// # Errors
    /// A variable the section names is not set.
    pub fn to_config(&self, env: Env<'_>) -> Result<AzureConfig, String> {
        let (id, kind) = (self.id.as_str(), "azure");
        let var = |key: &str, set: &Option<String>, default: &str| {
            let name = set.as_deref().unwrap_or(default);
            env(name).ok_or_else(|| {
                err(
                    id,
                    kind,
                    format_args!("{key} names the environment variable {name}, which is not set"),
                )
            })
        };
        let mut c = if self.emulator {
            AzureConfig::azurite(self.container.clone())
        } else {
            AzureConfig::new(self.account.clone().unwrap_or_default(), self.container.clone())
        };
        if let Some(a) = &self.account {
            c.account = a.clone();
        }
        let credentials = match self.auth() {
            // Emulator mode without credentials: Azurite's well-known key, set by azurite().
            None => None,
            Some(AzureAuth::Environment) => match env(CONNECTION_STRING_ENV) {
                Some(cs) => Some(connection_string(&cs, &mut c).map_err(|e| err(id, kind, e))?),
                None => Some(AzureCredentials::Environment),
            },
            Some(AzureAuth::AccessKey) => Some(AzureCredentials::AccessKey(var(
                "access_key_env",
                &self.access_key_env,
                DEFAULT_AZURE_KEY_ENV,
            )?)),
            Some(AzureAuth::Sas) => Some(AzureCredentials::Sas(var(
                "sas_token_env",
                &self.sas_token_env,
                DEFAULT_AZURE_SAS_ENV,
            )?)),
            Some(AzureAuth::ManagedIdentity) => {
                Some(AzureCredentials::ManagedIdentity { client_id: self.client_id.clone() })
            }
            Some(AzureAuth::ClientSecret) => Some(AzureCredentials::ClientSecret {
                tenant_id: self.tenant_id.clone().unwrap_or_default(),
                client_id: self.client_id.clone().unwrap_or_default(),
                client_secret: var(
                    "client_secret_env",
                    &self.client_secret_env,
                    DEFAULT_AZURE_CLIENT_SECRET_ENV,
                )?,
            }),
            Some(AzureAuth::WorkloadIdentity) => Some(AzureCredentials::WorkloadIdentity {
                tenant_id: self.tenant_id.clone().unwrap_or_default(),
                client_id: self.client_id.clone().unwrap_or_default(),
                token_file: self
                    .token_file
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            }),
            Some(AzureAuth::AzureCli) => Some(AzureCredentials::AzureCli),
        };
        if let Some(cr) = credentials {
            c = c.with_credentials(cr);
        }
        c = c.with_prefix(self.prefix.clone());
        if let Some(e) = &self.endpoint {
            c = c.with_endpoint(e.clone());
        }
        if let Some(n) = self.page_size {
            c = c.with_page_size(n);
        }
        c.allow_http = self.allow_http || self.emulator;
        c.timeout = self.timeout.map(|t| t.0);
        Ok(c)
    }
}

/// The variable holding a storage connection string, read with `credentials =
/// "environment"` (the default), as the Azure CLI and SDKs read it.
pub const CONNECTION_STRING_ENV: &str = "AZURE_STORAGE_CONNECTION_STRING";

/// Applies a storage connection string (`AccountName=...;AccountKey=...;...`, from the
/// portal's "Access keys" page, or with `SharedAccessSignature=...`) to `c`: its account
/// (unless the section names one), its blob endpoint if it gives one, and its credentials.
///
/// # Errors
/// The string has neither `AccountKey` nor `SharedAccessSignature` (the message names the
/// variable and the keys it has, never their values).
fn connection_string(cs: &str, c: &mut AzureConfig) -> Result<AzureCredentials, String> {
    let parts: Vec<(&str, &str)> = cs
        .split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let get = |key: &str| parts.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|p| p.1);
    if let Some(account) = get("AccountName")
        && c.account.is_empty()
    {
        c.account = account.to_owned();
    }
    if let Some(e) = get("BlobEndpoint") {
        c.endpoint = Some(e.to_owned());
    }
    if let Some(key) = get("AccountKey") {
        return Ok(AzureCredentials::AccessKey(key.to_owned()));
    }
    if let Some(sas) = get("SharedAccessSignature") {
        return Ok(AzureCredentials::Sas(sas.to_owned()));
    }
    let keys: Vec<&str> = parts.iter().map(|p| p.0).collect();
    Err(format!(
        "{CONNECTION_STRING_ENV} has no AccountKey or SharedAccessSignature (it has: {})",
        keys.join(", ")
    ))
}
