//! Request metrics, per-backend metrics ([`Measured`], [`BackendMetrics`]) and a small
//! Prometheus text-format encoder (format 0.0.4).
//!
//! Labels are route templates (`/v1/records/{id}`) and backend ids, never concrete paths
//! or object keys, so no record id reaches the metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use vaultdb_core::client::StatsSnapshot;
use vaultdb_core::{BackendError, Key, KeyPrefix, ListFrom, ListPage, PutMode, StorageBackend};

/// Upper bounds of the latency histogram's buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The route label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    /// Counts one observation of `elapsed`.
    fn observe(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (n, le) in self.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if secs <= le {
                *n += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    /// Writes the histogram's series `name` (its buckets, sum and count) with `labels`, in
    /// the Prometheus text format.
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        for (le, n) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Tables {
    /// (method, route, status) -> count.
    requests: BTreeMap<(String, String, u16), u64>,
    /// (method, route) -> latency histogram.
    latency: BTreeMap<(String, String), Histogram>,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    tables: Mutex<Tables>,
    audit_failures: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Counts one finished request.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut t = self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *t.requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        let h = t.latency.entry((method.to_owned(), route.to_owned())).or_default();
        h.observe(elapsed);
    }

    /// Counts an audit line that could not be written.
    pub fn audit_failed(&self) {
        self.audit_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The number of requests counted for (method, route, status).
    pub fn requests(&self, method: &str, route: &str, status: u16) -> u64 {
        let t = self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        t.requests.get(&(method.to_owned(), route.to_owned(), status)).copied().unwrap_or(0)
    }

    /// Everything in Prometheus text format, with the store's counters.
    pub fn render(&self, stats: StatsSnapshot) -> String {
        let mut out = String::with_capacity(4096);
        let t = self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        family(
            &mut out,
            "vaultdb_http_requests_total",
            "counter",
            "HTTP requests by method, route and status.",
            t.requests.iter().map(|((method, route, status), n)| {
                let labels = format!(
                    "method=\"{}\",route=\"{}\",status=\"{status}\"",
                    escape(method),
                    escape(route)
                );
                (labels, n)
            }),
        );
        header(
            &mut out,
            "vaultdb_http_request_duration_seconds",
            "histogram",
            "HTTP request latency by method and route.",
        );
        for ((method, route), h) in &t.latency {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            h.write(&mut out, "vaultdb_http_request_duration_seconds", &labels);
        }
        drop(t);
        let counters = [
            (
                "vaultdb_degraded_reads_total",
                "Reads that succeeded with a backend missing, failing or serving bad data.",
                stats.degraded_reads,
            ),
            (
                "vaultdb_bad_shares_total",
                "Shares found bad (CRC, format, binding or polynomial check).",
                stats.bad_shares,
            ),
            ("vaultdb_shares_repaired_total", "Shares rewritten by repair.", stats.shares_repaired),
            (
                "vaultdb_objects_removed_total",
                "Objects removed by cleanup (superseded versions, abandoned writes).",
                stats.objects_removed,
            ),
            (
                "vaultdb_audit_write_failures_total",
                "Audit log lines that could not be written.",
                self.audit_failures.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {v}");
        }
        backend_metrics().render(&mut out);
        out
    }
}

/// One backend's calls: latency by operation, errors by operation and kind, and whether
/// its last call succeeded.
#[derive(Default)]
struct BackendTables {
    /// (backend, op) -> latency histogram.
    latency: BTreeMap<(String, &'static str), Histogram>,
    /// (backend, op, error kind) -> count.
    errors: BTreeMap<(String, &'static str, String), u64>,
    /// backend -> its last call succeeded.
    up: BTreeMap<String, bool>,
}

/// Per-backend metrics of the store's calls, filled by [`Measured`] backends. One registry
/// per process ([`backend_metrics`]): a process serves one store, and its backends are
/// wrapped when [`crate::service::open_with`] opens it.
#[derive(Default)]
pub struct BackendMetrics {
    tables: Mutex<BackendTables>,
}

impl std::fmt::Debug for BackendMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendMetrics").finish_non_exhaustive()
    }
}

/// The process's [`BackendMetrics`].
pub fn backend_metrics() -> &'static BackendMetrics {
    static METRICS: OnceLock<BackendMetrics> = OnceLock::new();
    METRICS.get_or_init(BackendMetrics::default)
}

impl BackendMetrics {
    /// Counts one call of `backend`: its operation, how long it took and its error, if any.
    pub fn observe(
        &self,
        backend: &str,
        op: &'static str,
        elapsed: Duration,
        error: Option<&BackendError>,
    ) {
        let mut t = self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = t.latency.entry((backend.to_owned(), op)).or_default();
        h.observe(elapsed);
        // A create-only put that finds its key is an answer, not an outage.
        let down = error.filter(|e| e.kind() != vaultdb_core::BackendErrorKind::AlreadyExists);
        if let Some(e) = error {
            *t.errors.entry((backend.to_owned(), op, e.kind().to_string())).or_default() += 1;
        }
        t.up.insert(backend.to_owned(), down.is_none());
    }

    fn render(&self, out: &mut String) {
        let t = self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        family(
            out,
            "vaultdb_backend_up",
            "gauge",
            "1 if the backend's last call succeeded.",
            t.up.iter().map(|(b, up)| (format!("backend=\"{}\"", escape(b)), u8::from(*up))),
        );
        header(
            out,
            "vaultdb_backend_call_duration_seconds",
            "histogram",
            "Backend call latency by backend and operation (get, put, delete, list).",
        );
        for ((b, op), h) in &t.latency {
            let labels = format!("backend=\"{}\",op=\"{op}\"", escape(b));
            h.write(out, "vaultdb_backend_call_duration_seconds", &labels);
        }
        family(
            out,
            "vaultdb_backend_errors_total",
            "counter",
            "Failed backend calls by backend, operation and error kind.",
            t.errors.iter().map(|((b, op, kind), n)| {
                (format!("backend=\"{}\",op=\"{op}\",kind=\"{kind}\"", escape(b)), n)
            }),
        );
    }
}

/// A backend whose calls are counted in [`backend_metrics`] (by its id; keys never).
#[derive(Debug)]
pub struct Measured(Arc<dyn StorageBackend>);

impl Measured {
    /// `backend`, measured.
    pub fn wrap(backend: Arc<dyn StorageBackend>) -> Arc<dyn StorageBackend> {
        Arc::new(Self(backend))
    }

    fn seen<T>(&self, op: &'static str, start: Instant, r: &Result<T, BackendError>) {
        backend_metrics().observe(self.0.id(), op, start.elapsed(), r.as_ref().err());
    }
}

#[async_trait]
impl StorageBackend for Measured {
    vaultdb_core::backend_identity!(0);
    async fn put(&self, key: &Key, data: Bytes, mode: PutMode) -> Result<(), BackendError> {
        let start = Instant::now();
        let r = self.0.put(key, data, mode).await;
        self.seen("put", start, &r);
        r
    }
    async fn get(&self, key: &Key, max_len: u64) -> Result<Option<Bytes>, BackendError> {
        let start = Instant::now();
        let r = self.0.get(key, max_len).await;
        self.seen("get", start, &r);
        r
    }
    async fn delete(&self, key: &Key) -> Result<(), BackendError> {
        let start = Instant::now();
        let r = self.0.delete(key).await;
        self.seen("delete", start, &r);
        r
    }
    async fn list_page(
        &self,
        prefix: &KeyPrefix,
        from: ListFrom,
    ) -> Result<ListPage, BackendError> {
        let start = Instant::now();
        let r = self.0.list_page(prefix, from).await;
        self.seen("list", start, &r);
        r
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A family of labelled samples: its header, then a `name{labels} value` line per sample
/// (`labels` already escaped).
fn family<V: std::fmt::Display>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, V)>,
) {
    header(out, name, kind, help);
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {v}");
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(v: &str) -> Cow<'_> {
    if v.contains(['\\', '"', '\n']) {
        Cow::Owned(v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
    } else {
        Cow::Borrowed(v)
    }
}

type Cow<'a> = std::borrow::Cow<'a, str>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.observe("GET", "/v1/records/{id}", 200, Duration::from_millis(3));
        m.observe("GET", "/v1/records/{id}", 200, Duration::from_millis(30));
        m.observe("GET", "/v1/records/{id}", 404, Duration::from_millis(3));
        m.observe("GET", "we\"ird", 404, Duration::from_millis(3));
        let text = m.render(StatsSnapshot { degraded_reads: 7, ..Default::default() });
        assert!(text.contains(
            "vaultdb_http_requests_total{method=\"GET\",route=\"/v1/records/{id}\",status=\"200\"} 2\n"
        ));
        assert!(text.contains("route=\"we\\\"ird\""));
        assert!(text.contains(
            "vaultdb_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/records/{id}\",le=\"0.005\"} 2\n"
        ));
        assert!(text.contains(
            "vaultdb_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/records/{id}\"} 3\n"
        ));
        assert!(text.contains("vaultdb_degraded_reads_total 7\n"));
        // Per-backend metrics (the process-wide registry; this backend id is this test's).
        let b = backend_metrics();
        b.observe("metrics-test-b", "get", Duration::from_millis(2), None);
        let transient = BackendError::transient("slow down");
        b.observe("metrics-test-b", "put", Duration::from_millis(40), Some(&transient));
        let text = m.render(StatsSnapshot::default());
        assert!(text.contains("vaultdb_backend_up{backend=\"metrics-test-b\"} 0\n"), "{text}");
        assert!(text.contains(
            "vaultdb_backend_errors_total{backend=\"metrics-test-b\",op=\"put\",kind=\"transient\"} 1\n"
        ));
        assert!(text.contains(
            "vaultdb_backend_call_duration_seconds_bucket{backend=\"metrics-test-b\",op=\"get\",le=\"0.0025\"} 1\n"
        ));
        assert_eq!(m.requests("GET", "/v1/records/{id}", 404), 1);
        for line in text.lines() {
            assert!(
                line.starts_with('#')
                    || line.rsplit_once(' ').is_some_and(|(_, v)| v.parse::<f64>().is_ok()),
                "{line}"
            );
        }
    }
}
