//! What the command line ([`crate::cli`]) and the REST server ([`crate::server`]) share, so
//! that they cannot disagree:
//!
//! - [`open`](mod@open): opening the store a configuration describes, and the tokens `serve` accepts;
//! - [`audited`]: the audited runner ([`Auditor`]): every store operation, named by an
//!   [`Operation`], writes one audit line with its outcome, and is refused when its line
//!   cannot be written (unless the log fails open);
//! - [`content_type`]: which content types may be stored with a record;
//! - [`degraded`]: which backend outcomes make a successful operation degraded;
//! - [`spool`]: data of unknown length kept, encrypted, in a temporary file until its
//!   length is known (a put from standard input, a chunked raw REST put).

pub mod audited;
pub mod content_type;
pub mod degraded;
pub mod open;
pub mod spool;

pub use audited::{
    AUDIT_UNAVAILABLE, AuditSink, AuditUnavailable, Audited, AuditedStream, Auditor, CLIENT_CLOSED,
    Operation, StreamLine, Tally,
};
pub use open::{
    FallbackToken, Presence, RESHARE_FROM_ENV, RESHARE_FROM_FILE, STORE_NOT_FOUND, follow_reshare,
    forget_reshare_source, open, open_migrating, open_with, presence, record_reshare_source,
    serve_tokens, store_not_found, tokens,
};
