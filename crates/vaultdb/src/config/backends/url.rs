//! Backends written as URLs: `url = "s3://bucket/prefix"` in a `[[backends]]` entry, and
//! `vaultdb init --backend URL`. A URL stands for a `kind` and the section keys it names
//! ([`expand`]); the entry's other keys (`id`, `name`, credentials, ...) stay as they are,
//! and query parameters set more keys (`s3://b/p?region=eu-west-1`).
//!
//! | URL | kind | keys |
//! |---|---|---|
//! | `file:///abs/dir`, `file://rel/dir` | `fs` | `path` (relative: against `data_dir`) |
//! | `memory://` | `memory` | |
//! | `s3://bucket/prefix` | `s3` | `bucket`, `prefix` |
//! | `s3+https://host:port/bucket/prefix` (or `s3+http`) | `s3` | `endpoint`, `bucket`, `prefix`, `force_path_style = true` (and `allow_http` for `http`) |
//! | `minio+https://host:port/bucket/prefix` (or `minio+http`) | `minio` | `endpoint`, `bucket`, `prefix` |
//! | `gs://bucket/prefix` (or `gcs://`) | `gcs` | `bucket`, `prefix` |
//! | `az://account/container/prefix` (or `azure://`) | `azure` | `account`, `container`, `prefix` |
//!
//! A new backend kind adds its scheme to [`SCHEMES`] and a branch to [`expand`].

use toml::{Table, Value};

/// The schemes [`expand`] knows, as shown in messages and `vaultdb init --help`.
pub const SCHEMES: &[&str] = &[
    "file://",
    "memory://",
    "s3://",
    "s3+https://",
    "s3+http://",
    "minio+https://",
    "minio+http://",
    "gs://",
    "gcs://",
    "az://",
    "azure://",
    "postgres://",
    "postgresql://",
];

/// The `kind` and section keys `url` stands for (its query parameters included).
///
/// # Errors
/// A message naming what is wrong: an unknown scheme, a missing bucket or container.
pub fn expand(url: &str) -> Result<Table, String> {
    let bad = |what: &str| format!("url {url:?}: {what}");
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad(&format!("not a URL; write one of {}", SCHEMES.join(" "))))?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let rest = decode(rest).map_err(|e| bad(&e))?;
    let mut t = Table::new();
    let mut set = |k: &str, v: Value| {
        t.insert(k.to_owned(), v);
    };
    let text = |s: &str| Value::String(s.to_owned());
    // `bucket/prefix...` split at the first slash.
    let first = |s: &str| -> (String, String) {
        let (a, b) = s.split_once('/').unwrap_or((s, ""));
        (a.to_owned(), b.trim_matches('/').to_owned())
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            if rest.is_empty() {
                return Err(bad("no path"));
            }
            set("kind", text("fs"));
            set("path", text(&rest));
        }
        "memory" | "mem" => set("kind", text("memory")),
        "s3" | "gs" | "gcs" => {
            let (bucket, prefix) = first(&rest);
            if bucket.is_empty() {
                return Err(bad("no bucket"));
            }
            set("kind", text(if scheme.eq_ignore_ascii_case("s3") { "s3" } else { "gcs" }));
            set("bucket", text(&bucket));
            set("prefix", text(&prefix));
        }
        s @ ("s3+http" | "s3+https" | "minio+http" | "minio+https") => {
            let (kind, proto) = s.split_once('+').unwrap_or((s, "https"));
            let (host, path) = first(&rest);
            let (bucket, prefix) = first(&path);
            if host.is_empty() || bucket.is_empty() {
                return Err(bad("write it as <scheme>://host:port/bucket/prefix"));
            }
            set("kind", text(kind));
            set("endpoint", text(&format!("{proto}://{host}")));
            set("bucket", text(&bucket));
            set("prefix", text(&prefix));
            if kind == "s3" {
                set("force_path_style", Value::Boolean(true));
                if proto == "http" {
                    set("allow_http", Value::Boolean(true));
                }
            }
        }
        "postgres" | "postgresql" => {
            // libpq's URL, query (sslmode, ...) included, is the postgres backend's own `url`.
            set("kind", text("postgres"));
            set("url", text(url));
            return Ok(t);
        }
        "az" | "azure" => {
            let (account, path) = first(&rest);
            let (container, prefix) = first(&path);
            if account.is_empty() || container.is_empty() {
                return Err(bad("write it as az://account/container/prefix"));
            }
            set("kind", text("azure"));
            set("account", text(&account));
            set("container", text(&container));
            set("prefix", text(&prefix));
        }
        other => {
            return Err(bad(&format!(
                "unknown scheme {other:?}; write one of {}",
                SCHEMES.join(" ")
            )));
        }
    }
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let v = match v.as_ref() {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                n.parse().map(Value::Integer).map_err(|_| bad(&format!("{k}={n} is too large")))?
            }
            s => Value::String(s.to_owned()),
        };
        if matches!(k.as_ref(), "kind" | "url") || t.insert(k.to_string(), v).is_some() {
            return Err(bad(&format!("query parameter {k} repeats what the URL says")));
        }
    }
    Ok(t)
}

/// Percent-decodes a URL's path (`%20`), which must be UTF-8.
fn decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "the path is not UTF-8 once percent-decoded".to_owned())
}

/// A backend id for `url`, for `vaultdb init --backend URL`: the kind and its bucket,
/// container or directory name (`s3-my-bucket`, `gcs-b`, `azure-c`, `fs-disk-1`), with
/// characters other than letters, digits, `-` and `_` replaced by `-`.
///
/// # Errors
/// As [`expand`].
pub fn default_id(url: &str) -> Result<String, String> {
    let t = expand(url)?;
    let kind = t.get("kind").and_then(Value::as_str).unwrap_or("backend");
    let key = match kind {
        "fs" => t
            .get("path")
            .and_then(Value::as_str)
            .map(|p| p.trim_end_matches('/').rsplit('/').next().unwrap_or(p).to_owned()),
        "azure" => t.get("container").and_then(Value::as_str).map(str::to_owned),
        "memory" => None,
        _ => t.get("bucket").and_then(Value::as_str).map(str::to_owned),
    };
    let id = match key {
        Some(k) if !k.is_empty() => format!("{kind}-{k}"),
        _ => kind.to_owned(),
    };
    Ok(id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect())
}

/// [`default_id`] for `url`, made unique: when `taken` says the id is in use already, the
/// second backend of one place gets `-2`, the third `-3`, and so on.
///
/// # Errors
/// As [`expand`].
pub fn unique_id(url: &str, taken: impl Fn(&str) -> bool) -> Result<String, String> {
    let base = default_id(url)?;
    let mut id = base.clone();
    let mut n = 1;
    while taken(&id) {
        n += 1;
        id = format!("{base}-{n}");
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each URL with (some of) the keys it expands to, as a TOML inline table.
    #[test]
    fn every_scheme_expands_to_its_kind() {
        for (url, keys) in [
            (
                "s3://my-bucket/vault/db?region=eu-west-1",
                r#"{ kind = "s3", bucket = "my-bucket", prefix = "vault/db", region = "eu-west-1" }"#,
            ),
            ("gs://b", r#"{ kind = "gcs", bucket = "b", prefix = "" }"#),
            (
                "az://acct/cont/p/q",
                r#"{ kind = "azure", account = "acct", container = "cont", prefix = "p/q" }"#,
            ),
            (
                "minio+http://127.0.0.1:9000/b/p?page_size=10",
                r#"{ kind = "minio", endpoint = "http://127.0.0.1:9000", page_size = 10 }"#,
            ),
            (
                "s3+http://localhost:4566/b",
                r#"{ kind = "s3", force_path_style = true, allow_http = true }"#,
            ),
            ("file:///srv/vault%20disk", r#"{ kind = "fs", path = "/srv/vault disk" }"#),
            ("file://disk-1", r#"{ kind = "fs", path = "disk-1" }"#),
            ("memory://", r#"{ kind = "memory" }"#),
        ] {
            let t = expand(url).unwrap();
            let want: Table = toml::from_str(&format!("want = {keys}")).unwrap();
            for (k, v) in want["want"].as_table().unwrap() {
                assert_eq!(t.get(k), Some(v), "{url}: {k} in {t:?}");
            }
        }
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, says) in [
            ("ftp://x/y", "unknown scheme \"ftp\""),
            ("s3:/bucket", "not a URL"),
            ("s3://", "no bucket"),
            ("az://acct", "az://account/container/prefix"),
            ("file://", "no path"),
            ("s3://b?bucket=c", "repeats"),
        ] {
            let e = expand(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn postgres_urls_stay_whole_as_the_backends_own_url() {
        let u = "postgres://vaultdb@db:5432/vault?sslmode=verify-full&sslrootcert=/ca.pem";
        let t = expand(u).unwrap();
        assert_eq!(t["kind"].as_str(), Some("postgres"));
        assert_eq!(t["url"].as_str(), Some(u), "query kept in the URL, not made into keys");
        assert_eq!(t.len(), 2);
        assert_eq!(expand("postgresql://h/db").unwrap()["kind"].as_str(), Some("postgres"));
    }

    #[test]
    fn default_ids_name_the_place() {
        assert_eq!(default_id("s3://my.bucket/p").unwrap(), "s3-my-bucket");
        assert_eq!(default_id("az://a/c").unwrap(), "azure-c");
        assert_eq!(default_id("file:///srv/disk-1/").unwrap(), "fs-disk-1");
        assert_eq!(default_id("memory://").unwrap(), "memory");
    }

    #[test]
    fn unique_ids_count_up_past_the_ones_taken() {
        let taken = ["s3-b", "s3-b-2"];
        assert_eq!(unique_id("s3://b", |id| taken.contains(&id)).unwrap(), "s3-b-3");
        assert_eq!(unique_id("s3://c", |id| taken.contains(&id)).unwrap(), "s3-c");
        assert!(unique_id("ftp://x", |_| false).is_err());
    }
}
