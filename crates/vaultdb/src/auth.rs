//! Bearer tokens with roles. Only SHA-256 hashes of tokens are kept; a presented token is
//! hashed and compared with every stored hash in constant time.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// What a token may do. Ordered: `Read < Write < Admin`, and each role may do what the
/// roles below it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read records and list ids.
    Read,
    /// Also put and delete records.
    Write,
    /// Also status and repair.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        })
    }
}

/// One accepted token, by hash.
#[derive(Clone)]
pub struct TokenEntry {
    /// The actor name written to the audit log.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
}

impl fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEntry")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The set of accepted tokens.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
}

/// Who a request authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// The token's name.
    pub name: String,
    /// The token's role.
    pub role: Role,
}

impl Tokens {
    /// Tokens from their entries.
    pub fn new(entries: Vec<TokenEntry>) -> Self {
        Self { entries }
    }

    /// True if no token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a token by its plaintext (hashed at once; the plaintext is not kept).
    pub fn add_plain(&mut self, name: impl Into<String>, role: Role, token: &str) {
        self.entries.push(TokenEntry { name: name.into(), role, sha256: hash_token(token) });
    }

    /// The actor whose token this is, if any. Every stored hash is compared, in constant
    /// time, whatever matches; only the hash of the presented token is computed.
    pub fn authenticate(&self, presented: &str) -> Option<Actor> {
        let h = hash_token(presented);
        const NONE: u32 = u32::MAX;
        let mut found = NONE;
        for (i, e) in self.entries.iter().enumerate() {
            let idx = u32::try_from(i).unwrap_or(NONE);
            found.conditional_assign(&idx, e.sha256.ct_eq(&h));
        }
        if found == NONE {
            return None;
        }
        let e = &self.entries[found as usize];
        Some(Actor { name: e.name.clone(), role: e.role })
    }
}

/// SHA-256 of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh token: `vdb_` and 32 random bytes in hex.
///
/// # Panics
/// If the operating system's random source fails (nothing safe can be done then).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS random source must work to create tokens");
    format!("vdb_{}", hex::encode(bytes))
}

/// The token in an `Authorization: Bearer <token>` header value, if that is its form.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let t = rest.trim();
    (!t.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Read < Role::Write && Role::Write < Role::Admin);
    }

    #[test]
    fn authenticate_by_hash() {
        let mut t = Tokens::default();
        t.add_plain("reader", Role::Read, "r-token");
        t.add_plain("admin", Role::Admin, "a-token");
        assert_eq!(
            t.authenticate("a-token").unwrap(),
            Actor { name: "admin".into(), role: Role::Admin }
        );
        assert_eq!(t.authenticate("r-token").unwrap().role, Role::Read);
        assert!(t.authenticate("x-token").is_none());
        assert!(t.authenticate("").is_none());
        assert!(Tokens::default().authenticate("a-token").is_none());
    }

    #[test]
    fn generated_tokens_differ() {
        let a = generate_token();
        assert!(a.starts_with("vdb_") && a.len() == 68);
        assert_ne!(a, generate_token());
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
