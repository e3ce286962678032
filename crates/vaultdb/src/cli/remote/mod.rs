//! Remote mode: `vaultdb --server URL COMMAND` runs `put`, `get`, `stat`, `delete`, `list`,
//! `status` and `repair` through a server's REST API ([`crate::server`]) instead of on a
//! store opened here, with the same output, `--json` documents and exit codes: the code of
//! the server's JSON error body is the command's error code. The other commands (`init`,
//! `serve`, `scrub`, `audit`) run where the store's configuration is, and are refused with
//! `USAGE_ERROR`.
//!
//! The token comes from `--token-file` or `VAULTDB_TOKEN` (never from a flag's value, which
//! other users could read in the process list), and is never printed. Over HTTPS the
//! server's certificate is checked against the system's CA certificates, or only those of
//! `--ca-cert` (`VAULTDB_CA_CERT`); `--client-cert` and `--client-key` present a client
//! certificate to a server that asks for one. Record data is streamed both ways: a put sends the file
//! (or standard input) as it reads it, a get writes each chunk as it arrives.
//!
//! The server is not trusted with the terminal or with the client's time and memory: a
//! request fails after `--timeout` (`VAULTDB_TIMEOUT`, 2 minutes) in which the server sent
//! nothing and took none of a put's data; an answer other than a record is read up to
//! [`MAX_ANSWER`] bytes ([`MAX_ERROR`] for an error); listed ids must be valid ids and cursors
//! must not repeat; and every text from it is printed without control characters (no escape
//! sequence reaches the terminal).

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{RequestBuilder, Response};
use serde::Deserialize;
use serde_json::json;
use vaultdb_core::naming::validate_id;
use zeroize::Zeroizing;

mod transport;

use self::transport::{body_of, check_plain_http, tls_config};
use super::admin::{StatusDoc, enough_up, repair_report, status_text};
use super::args::PutArgs;
use super::output::{DataOut, Output, progress_bar, write_failed};
use super::records::{Interrupt, open_input, parse_meta};
use crate::error::{CliError, EXIT_CODES, USAGE_ERROR, one_line};
use crate::server::{DEGRADED_HEADER, ERROR_CODES, MAX_PAGE, VERSION_HEADER};
use crate::service::content_type;

/// Where the server is and how to reach it: `--server`, `--token-file`, `--ca-cert`.
#[derive(Debug)]
pub(super) struct RemoteArgs<'a> {
    /// The server's base URL.
    pub server: &'a str,
    /// A file holding the token, instead of `VAULTDB_TOKEN`.
    pub token_file: Option<&'a Path>,
    /// CA certificates to trust instead of the system's.
    pub ca_cert: Option<&'a Path>,
    /// A client certificate and its key, for a server that asks for one.
    pub client_cert: Option<(&'a Path, &'a Path)>,
    /// How long the server may stay silent (`--timeout`).
    pub timeout: Duration,
}

/// The largest answer read that is not a record (a JSON document): far more than a page of
/// [`MAX_PAGE`] ids of the longest kind.
pub(super) const MAX_ANSWER: usize = 16 << 20;

/// The largest error answer read (its JSON body; the server's are a few hundred bytes).
pub(super) const MAX_ERROR: usize = 64 << 10;

/// A client of one server.
pub(super) struct Remote {
    client: reqwest::Client,
    /// The base URL without a trailing `/`.
    base: String,
    token: Option<Zeroizing<String>>,
    /// How long the server may stay silent.
    timeout: Duration,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Remote").field("base", &self.base).finish_non_exhaustive()
    }
}

/// The largest standard input a `put --json-input` checks (it is kept in a temporary file
/// to be read twice): the store's default `max_record_size`.
fn spool_limit() -> u64 {
    vaultdb_core::Settings::default().max_record_size as u64
}

impl Remote {
    /// A client for `args.server`.
    ///
    /// # Errors
    /// `USAGE_ERROR` for a URL that is not `http://` or `https://`; `INVALID_INPUT` for a
    /// token file or CA file that cannot be read; `INVALID_CONFIG` for a token over plain
    /// HTTP beyond loopback without `VAULTDB_ALLOW_PLAIN_HTTP=true`.
    pub(super) fn new(args: &RemoteArgs<'_>) -> Result<Self, CliError> {
        let url = reqwest::Url::parse(args.server).map_err(|e| {
            CliError::new(USAGE_ERROR, format!("--server {:?} is not a URL: {e}", args.server))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(CliError::new(
                USAGE_ERROR,
                format!("--server {:?}: give http://HOST:PORT or https://HOST:PORT", args.server),
            ));
        }
        let token = match args.token_file {
            Some(p) => Some(Zeroizing::new(
                std::fs::read_to_string(p)
                    .map_err(|e| CliError::input(format!("--token-file {}: {e}", p.display())))?,
            )),
            None => std::env::var("VAULTDB_TOKEN").ok().map(Zeroizing::new),
        }
        .map(|t| Zeroizing::new(t.trim().to_owned()))
        .filter(|t| !t.is_empty());
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(args.ca_cert, args.client_cert)?)
            .user_agent(concat!("vaultdb/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| CliError::new("INTERNAL_ERROR", format!("HTTP client: {e}")))?;
        if token.is_some() {
            check_plain_http(args.server, &url)?;
        }
        Ok(Self {
            client,
            base: args.server.trim_end_matches('/').to_owned(),
            token,
            timeout: args.timeout,
        })
    }

    /// The URL of `/v1/records/{id}` plus `rest`.
    fn record_url(&self, id: &str, rest: &str) -> String {
        format!("{}/v1/records/{}{rest}", self.base, utf8_percent_encode(id, NON_ALPHANUMERIC))
    }

    /// A request with the token.
    fn request(&self, method: reqwest::Method, url: String) -> RequestBuilder {
        let req = self.client.request(method, url);
        match &self.token {
            Some(t) => req.bearer_auth(t.as_str()),
            None => req,
        }
    }

    /// Sends `req`; an error answer becomes the error of its JSON body's code.
    async fn send(&self, req: RequestBuilder) -> Result<Response, CliError> {
        self.send_counting(req, None).await
    }

    /// [`Self::send`] of a request whose body counts its bytes into `sent`: the server is
    /// silent only if it neither answers nor takes more of the body for `--timeout`.
    async fn send_counting(
        &self,
        req: RequestBuilder,
        sent: Option<&AtomicU64>,
    ) -> Result<Response, CliError> {
        let resp = self.patient(req.send(), sent).await?.map_err(|e| self.unreachable(&e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(self.error_of(resp).await)
    }

    /// Waits for `fut` while the server shows signs of life: it fails after `--timeout`
    /// in which `fut` did not finish and `progress` (if any) did not move.
    async fn patient<T>(
        &self,
        fut: impl Future<Output = T>,
        progress: Option<&AtomicU64>,
    ) -> Result<T, CliError> {
        let mut fut = std::pin::pin!(fut);
        let mut seen = progress.map(|p| p.load(Ordering::SeqCst));
        loop {
            if let Ok(v) = tokio::time::timeout(self.timeout, &mut fut).await {
                return Ok(v);
            }
            let now = progress.map(|p| p.load(Ordering::SeqCst));
            if now == seen {
                return Err(CliError::new(
                    "INTERNAL_ERROR",
                    format!(
                        "the server {} sent nothing for {} (--timeout)",
                        self.base,
                        humantime::format_duration(self.timeout)
                    ),
                ));
            }
            seen = now;
        }
    }

    /// The next chunk of an answer's body, within `--timeout`.
    async fn chunk(
        &self,
        body: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    ) -> Result<Option<reqwest::Result<bytes::Bytes>>, CliError> {
        self.patient(body.next(), None).await
    }

    /// An answer's whole body, up to `max` bytes (`Ok(None)` beyond).
    async fn body(&self, resp: Response, max: usize) -> Result<Option<Vec<u8>>, CliError> {
        if resp.content_length().is_some_and(|l| l > max as u64) {
            return Ok(None);
        }
        let mut body = resp.bytes_stream();
        let mut all = Vec::new();
        while let Some(chunk) = self.chunk(&mut body).await? {
            let chunk = chunk.map_err(|e| self.unreachable(&e))?;
            if all.len() + chunk.len() > max {
                return Ok(None);
            }
            all.extend_from_slice(&chunk);
        }
        Ok(Some(all))
    }

    /// An answer's JSON body (at most [`MAX_ANSWER`] bytes).
    async fn json<T: serde::de::DeserializeOwned>(&self, resp: Response) -> Result<T, CliError> {
        let Some(body) = self.body(resp, MAX_ANSWER).await? else {
            return Err(CliError::new(
                "INTERNAL_ERROR",
                format!("the server {} answered with over {MAX_ANSWER} bytes", self.base),
            ));
        };
        serde_json::from_slice(&body).map_err(|e| {
            CliError::new(
                "INTERNAL_ERROR",
                format!("the server {} answered with an unexpected document: {e}", self.base),
            )
        })
    }

    /// The error of an error answer: its JSON body's code (one of [`EXIT_CODES`], or of
    /// [`ERROR_CODES`]) and message. A body too large or too small for the request is
    /// `INVALID_INPUT`, as it is for the local command.
    async fn error_of(&self, resp: Response) -> CliError {
        #[derive(Deserialize)]
        struct Body {
            error: Detail,
        }
        #[derive(Deserialize)]
        struct Detail {
            code: String,
            message: String,
        }
        let status = resp.status();
        let body = match self.body(resp, MAX_ERROR).await {
            Ok(b) => b.unwrap_or_default(),
            Err(e) => return e,
        };
        let Ok(Body { error }) = serde_json::from_slice::<Body>(&body) else {
            return CliError::new(
                "INTERNAL_ERROR",
                format!(
                    "the server answered {status} without a vaultdb error (is it a vaultdb \
                     server?)"
                ),
            );
        };
        let code = match error.code.as_str() {
            "INVALID_REQUEST" | "PAYLOAD_TOO_LARGE" => Some("INVALID_INPUT"),
            c => EXIT_CODES
                .iter()
                .map(|(c, _)| *c)
                .chain(ERROR_CODES.iter().map(|(c, _)| *c))
                .find(|known| *known == c),
        };
        match code {
            Some(code) => CliError::new(code, error.message),
            None => CliError::new("INTERNAL_ERROR", format!("{}: {}", error.code, error.message)),
        }
    }

    /// A request that got no answer: the server cannot be reached, or its certificate is
    /// not trusted. (Without the URL: it may carry a record id.)
    fn unreachable(&self, e: &reqwest::Error) -> CliError {
        let mut msg = format!("no answer from the server {}", self.base);
        let mut source: Option<&dyn std::error::Error> = Some(e);
        while let Some(s) = source {
            let text = s.to_string();
            if !text.contains("://") && !msg.ends_with(&text) {
                msg.push_str(": ");
                msg.push_str(&text);
            }
            source = s.source();
        }
        CliError::new("INTERNAL_ERROR", msg)
    }

    /// The number of backends, from `GET /health` (`None` if it does not say).
    async fn backend_count(&self) -> Option<usize> {
        #[derive(Deserialize)]
        struct Health {
            n: usize,
        }
        let resp = self.patient(self.client.get(format!("{}/health", self.base)).send(), None);
        let resp = resp.await.ok()?.ok()?;
        self.json::<Health>(resp).await.ok().map(|h| h.n)
    }

    /// `put ID [FILE|-]`: `PUT /v1/records/{id}/raw`, the data streamed (with its length
    /// when known), the content type and `--meta` entries as headers.
    pub(super) async fn put(&self, args: &PutArgs, out: Output) -> Result<(), CliError> {
        let id = args.id.as_str();
        validate_id(id).map_err(CliError::from)?;
        let mut ct = match args.content_type.as_deref() {
            Some(ct) => content_type::normalize(ct.as_bytes())
                .map_err(|e| CliError::input(format!("--content-type {e}")))?,
            None => None,
        };
        let mut headers = HeaderMap::new();
        for (k, v) in parse_meta(&args.meta)? {
            let name = HeaderName::from_bytes(format!("x-vaultdb-meta-{k}").as_bytes());
            let value = HeaderValue::from_str(&v);
            let (Ok(name), Ok(value)) = (name, value) else {
                return Err(CliError::input(format!(
                    "--meta {k:?}: with --server, keys are header name characters and values \
                     visible ASCII"
                )));
            };
            headers.insert(name, value);
        }
        let stdin = args.file.as_deref().is_none_or(|p| p == Path::new("-"));
        let sent = Arc::new(AtomicU64::new(0));
        let body = if stdin && !args.json_input {
            if args.file.is_none() && std::io::stdin().is_terminal() {
                return Err(CliError::input(
                    "no data: give a FILE, or pipe the data in (use - for standard input)",
                ));
            }
            // Sent as it is read, in chunks: bounded memory, nothing on disk; the server
            // enforces max_record_size.
            body_of(tokio::io::stdin(), sent.clone())
        } else {
            let file = args.file.clone();
            let (mut f, len) = tokio::task::spawn_blocking(move || {
                open_input(file.as_deref(), spool_limit(), &Interrupt::never())
            })
            .await
            .map_err(|e| CliError::new("INTERNAL_ERROR", e.to_string()))??;
            if args.json_input {
                let checked = serde_json::from_reader::<_, serde::de::IgnoredAny>(
                    std::io::BufReader::new(&mut f),
                );
                checked.map_err(|e| CliError::input(format!("the data is not valid JSON: {e}")))?;
                f.rewind().map_err(|e| {
                    CliError::new("INTERNAL_ERROR", format!("cannot reread the data: {e}"))
                })?;
                ct = Some(vaultdb_core::record::JSON_CONTENT_TYPE.to_owned());
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            body_of(f.into_async(), sent.clone())
        };
        if let Some(ct) = ct.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::CONTENT_TYPE, ct);
        }
        let req = self
            .request(reqwest::Method::PUT, self.record_url(id, "/raw"))
            .headers(headers)
            .body(body);
        let resp = self.send_counting(req, Some(&*sent)).await?;
        #[derive(Deserialize)]
        struct Stored {
            version: String,
            acks: usize,
            degraded: bool,
        }
        let mut r: Stored = self.json(resp).await?;
        r.version = one_line(&r.version);
        if r.degraded {
            eprintln!(
                "warning: degraded write: not every backend took its share (see the server's log)"
            );
        }
        let n = self.backend_count().await;
        let size = sent.load(Ordering::SeqCst);
        out.emit(
            || match n {
                Some(n) => format!("stored version {} on {} of {n} backends", r.version, r.acks),
                None => format!("stored version {} on {} backends", r.version, r.acks),
            },
            || {
                json!({
                    "id": id,
                    "version": r.version,
                    "size": size,
                    "acks": r.acks,
                    "backends": n,
                    "degraded": r.degraded,
                })
            },
        )
    }

    /// `get ID [-o FILE]`: `GET /v1/records/{id}/raw`, each chunk written as it arrives;
    /// FILE appears only once the whole answer arrived.
    pub(super) async fn get(
        &self,
        id: &str,
        output: Option<&Path>,
        out: Output,
    ) -> Result<(), CliError> {
        validate_id(id).map_err(CliError::from)?;
        let req = self.request(reqwest::Method::GET, self.record_url(id, "/raw"));
        let resp = self.send(req).await?;
        let degraded = is_degraded(resp.headers());
        let bar = progress_bar(resp.content_length().unwrap_or(0), "get");
        let head = (out == Output::Json).then(|| {
            let (version, content_type, metadata) = record_head(resp.headers());
            json!({
                "id": id,
                "version": version,
                "size": resp.content_length(),
                "content_type": content_type,
                "metadata": metadata,
            })
        });
        let mut body = resp.bytes_stream();
        let broke_off = |e: reqwest::Error| {
            CliError::new(
                "INTERNAL_ERROR",
                format!(
                    "the server's answer broke off ({}); the record could not be read in full \
                     (the server's log says why)",
                    e.without_url()
                ),
            )
        };
        match output {
            Some(p) => {
                let dir =
                    p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                let tmp = tempfile::NamedTempFile::new_in(dir)
                    .map_err(|e| CliError::input(format!("cannot write {}: {e}", p.display())))?;
                let mut f = std::io::BufWriter::new(tmp);
                while let Some(chunk) = self.chunk(&mut body).await? {
                    let chunk = chunk.map_err(broke_off)?;
                    f.write_all(&chunk).map_err(|e| write_failed(&e))?;
                    bar.inc(chunk.len() as u64);
                }
                let tmp = f.into_inner().map_err(|e| write_failed(e.error()))?;
                tmp.persist(p)
                    .map_err(|e| CliError::input(format!("cannot write {}: {e}", p.display())))?;
                if let Some(mut head) = head {
                    head["path"] = json!(p);
                    out.emit(String::new, || head)?;
                }
            }
            None => {
                let stdout = std::io::stdout().lock();
                let mut data = DataOut::new(stdout, head).map_err(|e| write_failed(&e))?;
                while let Some(chunk) = self.chunk(&mut body).await? {
                    let chunk = chunk.map_err(broke_off)?;
                    data.write(&chunk).map_err(|e| write_failed(&e))?;
                    bar.inc(chunk.len() as u64);
                }
                data.finish().map_err(|e| write_failed(&e))?;
            }
        }
        bar.finish_and_clear();
        if degraded {
            eprintln!(
                "warning: degraded read: a backend is missing or failing (see the server's log)"
            );
        }
        Ok(())
    }

    /// `stat ID`: the first byte of `GET /v1/records/{id}/raw` (its headers say the rest).
    pub(super) async fn stat(&self, id: &str, out: Output) -> Result<(), CliError> {
        validate_id(id).map_err(CliError::from)?;
        let req = self
            .request(reqwest::Method::GET, self.record_url(id, "/raw"))
            .header(header::RANGE, "bytes=0-0");
        let resp = self.send(req).await?;
        // 206: `bytes 0-0/TOTAL`; 200 (an empty record): its length.
        let size = header_text(resp.headers(), header::CONTENT_RANGE.as_str())
            .and_then(|r| r.rsplit_once('/').and_then(|(_, t)| t.parse::<u64>().ok()))
            .or_else(|| resp.content_length())
            .unwrap_or(0);
        let (version, content_type, metadata) = record_head(resp.headers());
        out.emit(
            || {
                let mut text = format!(
                    "id: {id}\nversion: {version}\nsize: {size}\ncontent-type: {}",
                    content_type.as_deref().unwrap_or("-")
                );
                for (k, v) in &metadata {
                    text.push_str(&format!("\nmeta: {k}={v}"));
                }
                text
            },
            || {
                json!({
                    "id": id,
                    "version": version,
                    "size": size,
                    "content_type": content_type,
                    "metadata": metadata,
                })
            },
        )
    }

    /// `delete ID`: `DELETE /v1/records/{id}`.
    pub(super) async fn delete(&self, id: &str, out: Output) -> Result<(), CliError> {
        validate_id(id).map_err(CliError::from)?;
        let resp =
            self.send(self.request(reqwest::Method::DELETE, self.record_url(id, ""))).await?;
        if is_degraded(resp.headers()) {
            eprintln!(
                "warning: degraded delete: a backend is missing or failing (see the server's log)"
            );
        }
        // The server does not say how many share objects it removed.
        out.emit(|| "deleted".to_owned(), || json!({"id": id, "deleted": true, "removed": null}))
    }

    /// One page of `GET /v1/records`.
    async fn page(&self, limit: u32, cursor: Option<&str>) -> Result<Page, CliError> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(c) = cursor {
            query.push(("cursor", c.to_owned()));
        }
        let req =
            self.request(reqwest::Method::GET, format!("{}/v1/records", self.base)).query(&query);
        let resp = self.send(req).await?;
        let degraded = is_degraded(resp.headers());
        #[derive(Deserialize)]
        struct Body {
            ids: Vec<String>,
            next: Option<String>,
        }
        let b: Body = self.json(resp).await?;
        // Ids as the store allows them (no control characters), a cursor without any.
        let invalid = b.ids.iter().any(|id| validate_id(id).is_err())
            || b.next.as_deref().is_some_and(|c| c.chars().any(char::is_control));
        if invalid {
            return Err(CliError::new(
                "INTERNAL_ERROR",
                format!("the server {} listed an invalid id or cursor", self.base),
            ));
        }
        Ok(Page { ids: b.ids, next: b.next, degraded })
    }

    /// `list [--limit N [--cursor C]]`: pages of `GET /v1/records` (at most the server's
    /// page size each): every id, sorted; or the N ids after C and the next cursor.
    pub(super) async fn list(
        &self,
        page: Option<(usize, Option<&str>)>,
        out: Output,
    ) -> Result<(), CliError> {
        let (limit, mut cursor) = match page {
            Some((l, c)) => (Some(l), c.map(str::to_owned)),
            None => (None, None),
        };
        let (mut ids, mut degraded) = (Vec::new(), false);
        let mut seen = std::collections::HashSet::new();
        loop {
            let want = limit.map_or(MAX_PAGE as usize, |l| (l - ids.len()).min(MAX_PAGE as usize));
            let p = self.page(want as u32, cursor.as_deref()).await?;
            degraded |= p.degraded;
            ids.extend(p.ids);
            cursor = p.next;
            // A cursor seen before would list the same pages again, for ever.
            if cursor.as_ref().is_some_and(|c| !seen.insert(c.clone())) {
                return Err(CliError::new(
                    "INTERNAL_ERROR",
                    format!("the server {} repeats a listing's cursor (it never ends)", self.base),
                ));
            }
            if cursor.is_none() || limit.is_some_and(|l| ids.len() >= l) {
                break;
            }
        }
        if degraded {
            eprintln!(
                "warning: degraded list: a backend is missing or failing (see the server's log)"
            );
        }
        if let Some(limit) = limit {
            if let Some(next) = &cursor
                && !matches!(out, Output::Json)
            {
                eprintln!("next page: vaultdb list --limit {limit} --cursor {next}");
            }
            return out.emit(
                || ids.join("\n"),
                || json!({"ids": ids, "next": cursor, "unverified": null, "degraded": degraded}),
            );
        }
        ids.sort();
        ids.dedup();
        out.emit(
            || ids.join("\n"),
            || json!({"ids": ids, "unverified": null, "degraded": degraded}),
        )
    }

    /// `status`: `GET /v1/status` (an admin token).
    pub(super) async fn status(&self, out: Output) -> Result<(), CliError> {
        let url = format!("{}/v1/status", self.base);
        let resp = self.send(self.request(reqwest::Method::GET, url)).await?;
        let mut s: StatusDoc = self.json(resp).await?;
        // The server answers about the store it opened.
        s.opened = true;
        let write_quorum = s.write_quorum.unwrap_or(s.n);
        // The server's words, printed: without control characters.
        let rows: Vec<_> = s
            .backends
            .iter()
            .map(|b| {
                let secs = b.latency_ms / 1000.0;
                let latency = std::time::Duration::try_from_secs_f64(secs).unwrap_or_default();
                (one_line(&b.id), one_line(&b.name), b.error.as_deref().map(one_line), latency)
            })
            .collect();
        out.emit(|| status_text(s.k, s.n, write_quorum, s.up, s.margin, &rows), || s.to_json())?;
        enough_up(s.k, s.n, s.up, s.margin)
    }

    /// `repair ID`: `POST /v1/records/{id}/repair` (an admin token).
    pub(super) async fn repair(&self, id: &str, out: Output) -> Result<(), CliError> {
        validate_id(id).map_err(CliError::from)?;
        let req = self.request(reqwest::Method::POST, self.record_url(id, "/repair"));
        let resp = self.send(req).await?;
        #[derive(Deserialize)]
        struct Repaired {
            version: Option<String>,
            restored: Vec<String>,
            removed: usize,
            problems: Vec<String>,
        }
        let r: Repaired = self.json(resp).await?;
        let restored: Vec<_> = r.restored.iter().map(|b| one_line(b)).collect();
        let problems: Vec<_> = r.problems.iter().map(|p| one_line(p)).collect();
        // No version of the record anywhere: not found, as the local command says.
        if r.version.is_none() && r.restored.is_empty() && r.problems.is_empty() {
            return Err(vaultdb_core::VaultError::RecordNotFound.into());
        }
        let version = r.version.as_deref().map(one_line);
        repair_report(out, id, version, &restored, r.removed, &problems)
    }
}

/// A page of ids.
struct Page {
    ids: Vec<String>,
    next: Option<String>,
    degraded: bool,
}

/// Whether an answer says the operation ran with a backend missing or failing.
fn is_degraded(h: &HeaderMap) -> bool {
    h.get(DEGRADED_HEADER).is_some_and(|v| v.as_bytes() == b"true")
}

/// A header's value, if it is text.
fn header_text(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// A raw read's version, content type and metadata (`X-Vaultdb-Meta-*`), from its headers.
fn record_head(h: &HeaderMap) -> (String, Option<String>, BTreeMap<String, String>) {
    let metadata = h
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix("x-vaultdb-meta-")?;
            Some((key.to_owned(), v.to_str().ok()?.to_owned()))
        })
        .collect();
    let version = header_text(h, VERSION_HEADER).unwrap_or_default();
    (version, header_text(h, header::CONTENT_TYPE.as_str()), metadata)
}
