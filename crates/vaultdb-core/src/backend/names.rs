//! [`ObjectNames`]: a cloud backend's configured prefix inside its bucket, and the mapping
//! between [`Key`]s and the service's object names, both ways; [`ListStart`]: where a
//! listing of the service starts or resumes; [`CloudCommon`]: what every cloud backend
//! holds besides its client (its id, name and object names).

use std::fmt;

use super::{BackendError, Key, KeyPrefix, ListEntry, ListFrom, ListPage, validate_key};

/// An escaping of keys into object names (for services that read some key bytes otherwise);
/// `decode` inverts `encode` and refuses names `encode` cannot produce. It must be a prefix
/// code: `encode(k)` starts with `encode(p)` exactly when `k` starts with `p`.
#[derive(Clone, Copy)]
pub struct Escaping {
    /// Key text to name text.
    pub encode: fn(&str) -> String,
    /// Name text to key text; `None` for a name `encode` does not produce.
    pub decode: fn(&str) -> Option<String>,
}

impl fmt::Debug for Escaping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Escaping")
    }
}

/// Where a backend's objects live inside its bucket (or container): object name =
/// `root` + key, where `root` is the configured prefix with a `/` added (or empty for the
/// bucket root). Going back is strict: a name outside the root, or one that is not a valid
/// key below it, is not the backend's and is skipped.
#[derive(Clone, Debug)]
pub struct ObjectNames {
    root: String,
    escaping: Option<Escaping>,
}

impl ObjectNames {
    /// The names under the configured `prefix` (empty for the bucket root; a trailing `/`
    /// is optional). `service` names the service in the error (`"S3"`).
    ///
    /// # Errors
    /// A [`Permanent`](super::BackendErrorKind::Permanent) configuration error if the prefix
    /// is not made of valid key segments.
    pub fn new(service: &str, prefix: &str) -> Result<Self, BackendError> {
        Self::build(service, prefix, None)
    }

    /// As [`new`](Self::new), with keys (and the prefix) escaped by `escaping`.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn escaped(service: &str, prefix: &str, escaping: Escaping) -> Result<Self, BackendError> {
        Self::build(service, prefix, Some(escaping))
    }

    fn build(
        service: &str,
        prefix: &str,
        escaping: Option<Escaping>,
    ) -> Result<Self, BackendError> {
        let p = prefix.trim_end_matches('/');
        if p.is_empty() {
            return Ok(Self { root: String::new(), escaping });
        }
        validate_key(p).map_err(|e| {
            BackendError::permanent(format!("{service} configuration: invalid prefix {p:?}: {e}"))
        })?;
        let p = escaping.map_or_else(|| p.to_owned(), |e| (e.encode)(p));
        Ok(Self { root: format!("{p}/"), escaping })
    }

    /// The configured prefix as used: empty, or ending in `/` (escaped, if keys are).
    pub fn root(&self) -> &str {
        &self.root
    }

    fn encode(&self, text: &str) -> String {
        match self.escaping {
            Some(e) => format!("{}{}", self.root, (e.encode)(text)),
            None => format!("{}{text}", self.root),
        }
    }

    /// The object name of `key`.
    pub fn object(&self, key: &Key) -> String {
        self.encode(key.as_str())
    }

    /// The name prefix that lists the keys under `prefix`.
    pub fn prefix(&self, prefix: &KeyPrefix) -> String {
        self.encode(prefix.as_str())
    }

    /// The key an object name stands for; `None` for a name that is not this backend's.
    pub fn key(&self, name: &str) -> Option<Key> {
        let rel = name.strip_prefix(self.root.as_str())?;
        match self.escaping {
            Some(e) => Key::new((e.decode)(rel)?).ok(),
            None => Key::new(rel).ok(),
        }
    }

    /// One listing page's entries from the service's `(object name, size)` pairs: the names
    /// that are keys under `within` and (with `after`) greater than `after`, sorted by key.
    /// Names that are not this backend's keys are skipped (logged at debug level, as
    /// `backend`'s).
    pub fn entries<'a>(
        &self,
        backend: &str,
        within: &KeyPrefix,
        after: Option<&Key>,
        objects: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Vec<ListEntry> {
        let mut entries: Vec<ListEntry> = objects
            .into_iter()
            .filter_map(|(name, size)| {
                let Some(key) = self.key(name) else {
                    tracing::debug!(backend, name, "ignoring an object that is not a valid key");
                    return None;
                };
                let wanted = key.starts_with(within) && after.is_none_or(|a| key > *a);
                wanted.then_some(ListEntry { key, size })
            })
            .collect();
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        entries
    }
}

/// Where a listing of a service starts or resumes: the service's page token, and the key the
/// listing started after ([`ListFrom::After`]).
///
/// The key is carried in the cursors of the following pages (`<token>\n<key>`: a key never
/// holds a newline), so that every page drops the keys at or before it, also from a service
/// that ignores the start position it was given (Azurite ignores `startFrom`) or whose
/// start position is inclusive (GCS's `startOffset`, Azure's `startFrom`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListStart {
    /// The service's page token, to resume a listing.
    pub token: Option<String>,
    /// The key the listing started after: only keys greater than it are listed.
    pub after: Option<Key>,
}

impl ListStart {
    /// Where a listing from `from` starts.
    pub fn new(from: ListFrom) -> Self {
        match from {
            ListFrom::Start => Self::default(),
            ListFrom::After(key) => Self { token: None, after: Some(key) },
            ListFrom::Cursor(cursor) => {
                if let Some((token, after)) = cursor.rsplit_once('\n')
                    && let Ok(key) = Key::new(after)
                {
                    return Self { token: Some(token.to_owned()), after: Some(key) };
                }
                Self { token: Some(cursor), after: None }
            }
        }
    }

    /// The cursor of the page after one whose service token is `token` (`None`: the last
    /// page).
    pub fn next(&self, token: Option<String>) -> Option<String> {
        let token = token?;
        Some(match &self.after {
            Some(after) => format!("{token}\n{after}"),
            None => token,
        })
    }

    /// The object name the service should start from, on the listing's first page only (a
    /// resumed listing follows its token).
    pub fn start_name(&self, names: &ObjectNames) -> Option<String> {
        match (&self.token, &self.after) {
            (None, Some(after)) => Some(names.object(after)),
            _ => None,
        }
    }
}

/// What every cloud backend holds besides its client and its service's settings: the id and
/// name it reports as a [`StorageBackend`](super::StorageBackend), and the [`ObjectNames`] of
/// its keys. It also writes the parts of the backend's `Debug` and listing pages that do not
/// depend on the service.
#[derive(Clone, Debug)]
pub struct CloudCommon {
    id: String,
    name: String,
    names: ObjectNames,
}

impl CloudCommon {
    /// The common part of the backend `id` (named `name`) whose objects are named by `names`.
    pub fn new(id: impl Into<String>, name: impl Into<String>, names: ObjectNames) -> Self {
        Self { id: id.into(), name: name.into(), names }
    }

    /// The backend's id ([`StorageBackend::id`](super::StorageBackend::id)).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The backend's name ([`StorageBackend::name`](super::StorageBackend::name)).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object names of the backend's keys.
    pub fn names(&self) -> &ObjectNames {
        &self.names
    }

    /// The backend's `Debug`, begun: a struct named `type_name` with the id, name and prefix.
    /// The backend adds its own fields (never credentials) and finishes it.
    pub fn debug_struct<'a, 'b: 'a>(
        &self,
        f: &'a mut fmt::Formatter<'b>,
        type_name: &str,
    ) -> fmt::DebugStruct<'a, 'b> {
        let mut d = f.debug_struct(type_name);
        d.field("id", &self.id).field("name", &self.name).field("prefix", &self.names.root());
        d
    }

    /// One listing page from a service's answer to a listing that began at `start`: the
    /// `(object name, size)` pairs that are keys under `within` (see
    /// [`ObjectNames::entries`]), and the cursor of the next page from the service's page
    /// `token` (`None` or empty: this was the last page).
    pub fn page<'a>(
        &self,
        within: &KeyPrefix,
        start: &ListStart,
        objects: impl IntoIterator<Item = (&'a str, u64)>,
        token: Option<String>,
    ) -> ListPage {
        let entries = self.names.entries(&self.id, within, start.after.as_ref(), objects);
        ListPage { entries, next: start.next(token.filter(|t| !t.is_empty())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendErrorKind;

    fn key(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    #[test]
    fn prefixes_are_normalized() {
        let root = |p: &str| ObjectNames::new("S3", p).map(|n| n.root().to_owned());
        assert_eq!(root("").unwrap(), "");
        assert_eq!(root("/").unwrap(), "");
        assert_eq!(root("a").unwrap(), "a/");
        assert_eq!(root("a/b/").unwrap(), "a/b/");
        for bad in ["/a", "a/./b", "a//b", "a b"] {
            let e = root(bad).unwrap_err();
            assert_eq!(e.kind(), BackendErrorKind::Permanent);
            assert!(e.message().starts_with("S3 configuration: invalid prefix"), "{e}");
        }
    }

    #[test]
    fn names_map_both_ways_strictly() {
        let n = ObjectNames::new("S3", "team/vault").unwrap();
        assert_eq!(n.object(&key("r/1")), "team/vault/r/1");
        assert_eq!(n.prefix(&KeyPrefix::new("r/").unwrap()), "team/vault/r/");
        assert_eq!(n.key("team/vault/r/1"), Some(key("r/1")));
        for foreign in ["team/vault", "team/vault/", "team/other/x", "team/vault/a//b", "x"] {
            assert_eq!(n.key(foreign), None, "{foreign}");
        }
        let within = KeyPrefix::new("r/").unwrap();
        let listed = [
            ("team/vault/r/2", 2),
            ("team/vault/r/1", 1),
            ("team/vault/q/1", 9),
            ("elsewhere/r/1", 9),
            ("team/vault/r//x", 9),
            ("team/vault/r/0", 0),
        ];
        let page = n.entries("b", &within, None, listed);
        let got: Vec<(&str, u64)> = page.iter().map(|e| (e.key.as_str(), e.size)).collect();
        assert_eq!(got, [("r/0", 0), ("r/1", 1), ("r/2", 2)]);
        let page = n.entries("b", &within, Some(&key("r/1")), listed);
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].key, "r/2");
    }

    #[test]
    fn list_starts_carry_the_key_in_their_cursors() {
        let n = ObjectNames::new("S3", "p").unwrap();
        assert_eq!(ListStart::new(ListFrom::Start), ListStart::default());
        let after = ListStart::new(ListFrom::After(key("a/b")));
        assert_eq!(after.start_name(&n).as_deref(), Some("p/a/b"));
        let cursor = after.next(Some("tok".into())).unwrap();
        assert_eq!(cursor, "tok\na/b");
        let resumed = ListStart::new(ListFrom::Cursor(cursor));
        assert_eq!(resumed, ListStart { token: Some("tok".into()), after: Some(key("a/b")) });
        assert_eq!(resumed.start_name(&n), None, "a resumed listing follows its token");
        assert_eq!(resumed.next(None), None);
        let plain = ListStart::new(ListFrom::Cursor("t2".into()));
        assert_eq!(plain, ListStart { token: Some("t2".into()), after: None });
        assert_eq!(plain.next(Some("t3".into())).as_deref(), Some("t3"));
    }

    #[test]
    fn escaped_names() {
        let esc = Escaping {
            encode: |s| s.replace('%', "%25"),
            decode: |s| Some(s.replace("%25", "%")).filter(|_| !s.contains("%2F")),
        };
        let n = ObjectNames::escaped("Azure", "p%", esc).unwrap();
        assert_eq!(n.root(), "p%25/");
        assert_eq!(n.object(&key("a%b")), "p%25/a%25b");
        assert_eq!(n.key("p%25/a%25b"), Some(key("a%b")));
        assert_eq!(n.key("p%25/a%2Fb"), None);
    }
}
