//! What Azure adds to the shared HTTP mapping ([`vaultdb_core::backend::http`]): reading the
//! status out of object_store's errors, telling a missing container from a missing blob, and
//! keeping SAS signatures out of messages.

use std::error::Error as StdError;

use object_store::client::HttpError;
use vaultdb_core::BackendErrorKind;
use vaultdb_core::backend::http::{self, Class, Hint, Mapped, Op};

/// The text of an error and its sources, with anything that looks like a SAS signature
/// removed (object_store already leaves URLs out of errors of SAS-signed requests; this is a
/// second line).
pub(crate) fn redact(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut cur = err.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !text.contains(&t) {
            text.push_str(": ");
            text.push_str(&t);
        }
        cur = s.source();
    }
    while let Some(i) = text.find("sig=") {
        let end =
            text[i..].find(|c: char| c == '&' || c.is_whitespace()).map_or(text.len(), |j| i + j);
        text.replace_range(i..end, "sig=<redacted>");
        if text[i..].starts_with("sig=<redacted>") && !text[i + 14..].contains("sig=") {
            break;
        }
    }
    text
}

/// The HTTP status in an error's text ("... status code: 503 Service Unavailable ...").
/// object_store keeps the status in a private type, so its message is the only place to read
/// it from.
fn status_in(text: &str) -> Option<u16> {
    let i = text.find("status code: ")? + "status code: ".len();
    text.get(i..i + 3)?.parse().ok()
}

/// True if a transport-level [`HttpError`] (connect, timeout, reset) is in the source chain.
fn is_transport(err: &(dyn StdError + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<HttpError>().is_some() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Maps an error of `op` on `key` (a VaultDB key). `credentials_hint`, if any, replaces
/// the message of a credential fetch that failed without a status (and makes it Permanent):
/// the backend knows no credential was configured.
///
/// | object_store error | as HTTP status |
/// |---|---|
/// | `NotFound` | 404 (a missing container, `ContainerNotFound`, is not about the blob) |
/// | `AlreadyExists`, `Precondition` | 409, 412 |
/// | `PermissionDenied`, `Unauthenticated` | 403, 401 |
/// | `Generic` with a status in its text (`status code: 503`) | that status |
/// | `Generic` without one: a transport error (connect, timeout, reset), a failed credential fetch | Transient |
/// | `NotSupported`, `NotImplemented`, `InvalidPath`, configuration errors | Permanent |
/// | anything else | Other |
pub(crate) fn map_error(
    backend: &str,
    op: Op,
    key: &str,
    err: object_store::Error,
    credentials_hint: Option<&str>,
) -> Mapped {
    use BackendErrorKind::{Other, Permanent, Transient};
    use object_store::Error as E;
    let text = redact(&err);
    let hint = if text.contains("ContainerNotFound") { Hint::NotTheObject } else { Hint::Status };
    let status = |s: u16| http::classify(op, s, hint);
    let class = match &err {
        E::NotFound { .. } => status(404),
        E::AlreadyExists { .. } => status(409),
        E::Precondition { .. } => status(412),
        E::PermissionDenied { .. } => status(403),
        E::Unauthenticated { .. } => status(401),
        E::NotModified { .. } => Class::Kind(Other),
        E::NotSupported { .. }
        | E::NotImplemented { .. }
        | E::InvalidPath { .. }
        | E::UnknownConfigurationKey { .. } => Class::Kind(Permanent),
        E::Generic { source, .. } => match status_in(&text) {
            Some(s) => status(s),
            None if is_transport(source.as_ref()) => Class::Kind(Transient),
            // Credential fetches (token endpoint, metadata service) that failed without a
            // status: most likely the network, unless no credential was configured at all.
            None if text.contains("credential") || text.contains("token") => {
                if let Some(hint) = credentials_hint {
                    let e =
                        http::error(backend, op, &key, Permanent, &format_args!("{hint} ({text})"));
                    return Mapped::Error(e);
                }
                Class::Kind(Transient)
            }
            None => Class::Kind(Other),
        },
        _ => Class::Kind(Other),
    };
    Mapped::new(class, backend, op, &key, &text)
}

#[cfg(test)]
mod tests {
    use vaultdb_core::PutMode;

    use super::*;

    #[test]
    fn statuses_and_redaction() {
        assert_eq!(
            status_in("Server returned non-2xx status code: 503 Service Unavailable: x"),
            Some(503)
        );
        assert_eq!(status_in("no status"), None);
        let e = std::io::Error::other("GET https://a/c/k?sv=1&sig=SECRET%3D&se=2 failed");
        let r = redact(&e);
        assert!(!r.contains("SECRET"), "{r}");
        assert!(r.contains("sig=<redacted>&se=2"), "{r}");
    }

    #[test]
    fn typed_errors_map_to_kinds() {
        use object_store::Error as E;
        let src = || -> Box<dyn StdError + Send + Sync> { "x".into() };
        let kind = |op, e| match map_error("az", op, "k", e, None) {
            Mapped::Error(e) => Some(e.kind()),
            Mapped::NotFound | Mapped::Empty => None,
        };
        let create = Op::Put(PutMode::Create);
        let over = Op::Put(PutMode::Overwrite);
        assert!(matches!(
            map_error("az", Op::Get, "k", E::NotFound { path: "k".into(), source: src() }, None),
            Mapped::NotFound
        ));
        let container = || E::NotFound {
            path: "k".into(),
            source: "404 <Code>ContainerNotFound</Code>".into(),
        };
        assert_eq!(kind(Op::Get, container()), Some(BackendErrorKind::Permanent));
        assert_eq!(kind(Op::Delete, container()), Some(BackendErrorKind::Permanent));
        let exists = || E::AlreadyExists { path: "k".into(), source: src() };
        assert_eq!(kind(create, exists()), Some(BackendErrorKind::AlreadyExists));
        assert_eq!(kind(over, exists()), Some(BackendErrorKind::Transient));
        let precondition = || E::Precondition { path: "k".into(), source: src() };
        assert_eq!(kind(create, precondition()), Some(BackendErrorKind::AlreadyExists));
        assert_eq!(kind(over, precondition()), Some(BackendErrorKind::Other));
        let denied = E::PermissionDenied { path: "k".into(), source: src() };
        assert_eq!(kind(Op::List, denied), Some(BackendErrorKind::Permanent));
        let generic = |text: &str| E::Generic { store: "MicrosoftAzure", source: text.into() };
        let busy = "Server returned non-2xx status code: 503 Service Unavailable: busy";
        assert_eq!(kind(Op::Get, generic(busy)), Some(BackendErrorKind::Transient));
        let missing = "Server returned non-2xx status code: 404 Not Found: ContainerNotFound";
        assert_eq!(kind(Op::List, generic(missing)), Some(BackendErrorKind::Permanent));
        let range = "Server returned non-2xx status code: 416 Range Not Satisfiable";
        assert!(matches!(map_error("az", Op::Get, "k", generic(range), None), Mapped::Empty));
        let token = "Error performing token request: connection refused";
        assert_eq!(kind(Op::Get, generic(token)), Some(BackendErrorKind::Transient));
        let Mapped::Error(e) = map_error("az", Op::Get, "k", generic(token), Some("no credential"))
        else {
            panic!("an error");
        };
        assert_eq!(e.kind(), BackendErrorKind::Permanent);
        assert!(e.message().contains("no credential"), "{e}");
    }
}
