//! Keeping passwords out of what the backend prints: connection URLs with their password
//! (in the user part, or a `password=` / `sslpassword=` parameter) replaced.

/// The parameters of a connection URL whose values are secrets.
const SECRET_PARAMS: [&str; 2] = ["password", "sslpassword"];

/// What a redacted secret reads as.
const REDACTED: &str = "<redacted>";

/// `url` with its password, if any, replaced by `<redacted>`:
/// `postgres://vaultdb:<redacted>@db/vaultdb?sslmode=verify-full`.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    for secret in secrets(url) {
        out = out.replace(secret, REDACTED);
    }
    out
}

/// Replaces the secrets of `url` in `text` (an error message that may quote the URL).
pub(crate) fn redact_in(text: &str, url: &str) -> String {
    let mut out = text.to_owned();
    for secret in secrets(url) {
        out = out.replace(secret, REDACTED);
    }
    out
}

/// The secrets written in `url`: the password of its user part and the values of
/// [`SECRET_PARAMS`], non-empty ones only.
fn secrets(url: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some((userinfo, _)) = rest[..authority_end].rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        found.push(password);
    }
    if let Some((_, query)) = rest.split_once('?') {
        let query = query.split('#').next().unwrap_or_default();
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=')
                && SECRET_PARAMS.iter().any(|p| name.eq_ignore_ascii_case(p))
            {
                found.push(value);
            }
        }
    }
    found.retain(|s| !s.is_empty());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://vaultdb:s3cr3t@db:5432/vault?sslmode=verify-full"),
            "postgres://vaultdb:<redacted>@db:5432/vault?sslmode=verify-full"
        );
        assert_eq!(
            redact_url(
                "postgresql://db/vault?user=u&password=p%40ss&sslpassword=k&sslmode=require"
            ),
            "postgresql://db/vault?user=u&password=<redacted>&sslpassword=<redacted>&sslmode=require"
        );
        // A password holding '@' or ':' is cut at the last '@' of the authority.
        assert_eq!(redact_url("postgres://u:a:b@c@h/d"), "postgres://u:<redacted>@h/d");
        for clean in ["postgres://u@h/d", "postgres://h", "postgres://u@h/d?sslmode=disable"] {
            assert_eq!(redact_url(clean), clean);
        }
        assert_eq!(
            redact_in("bad URL postgres://u:pw@h: invalid port", "postgres://u:pw@h"),
            "bad URL postgres://u:<redacted>@h: invalid port"
        );
    }
}
