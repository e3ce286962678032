//! `vaultdb serve` over HTTPS, as a process: requests with the CA trusted, plain HTTP
//! refused on the TLS port, client certificates, and certificate reload (SIGHUP, a change of
//! the files, and a broken new certificate that keeps the old one). The certificates are
//! made here with rcgen.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pki::{Ca, client_config, https_client};
use common::process::{Server, TOKEN};
use rustls::pki_types::{CertificateDer, ServerName};

/// `GET /v1/records` with the token: its status, or the error if the request failed.
async fn list_status(client: &reqwest::Client, base: &str) -> Result<u16, String> {
    let r = client.get(format!("{base}/v1/records")).bearer_auth(TOKEN).send().await;
    match r {
        Ok(resp) => {
            let status = resp.status().as_u16();
            // The body too: a refused client certificate may only show when reading.
            resp.bytes().await.map_err(|e| format!("{e:?}"))?;
            Ok(status)
        }
        Err(e) => Err(format!("{e:?}")),
    }
}

/// The leaf certificate the server at `addr` presents, to a client trusting `ca`.
async fn served_cert(addr: &str, ca: &Ca) -> CertificateDer<'static> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(ca, None)));
    let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
    let tls = connector.connect(name, tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned()
}

/// Replaces the file at `path` in one step (as deployment tools do).
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Waits until `addr` presents `want`, up to `within`.
async fn wait_for_cert(addr: &str, ca: &Ca, want: &CertificateDer<'static>, within: Duration) {
    let start = Instant::now();
    loop {
        if served_cert(addr, ca).await == *want {
            return;
        }
        assert!(start.elapsed() < within, "the new certificate is not served after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_works_with_the_ca_trusted_and_plain_http_to_the_tls_port_fails_and_sigterm_stops_it()
{
    let ca = Ca::new("test CA");
    let s = Server::tls(None, &ca.server("server one"), "");
    assert!(s.base.starts_with("https://127.0.0.1:"), "{}", s.base);

    assert_eq!(list_status(&https_client(&ca, None), &s.base).await, Ok(200));
    // The token is still needed.
    let resp = https_client(&ca, None).get(format!("{}/v1/records", s.base)).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::UNAUTHORIZED);

    // Plain HTTP to the TLS port: no answer.
    let plain = common::http_client().build().unwrap();
    let http = format!("http://{}", s.addr());
    assert!(list_status(&plain, &http).await.is_err(), "plain HTTP must fail on the TLS port");

    // A client that does not trust the CA refuses the server.
    let other = Ca::new("another CA");
    assert!(list_status(&https_client(&other, None), &s.base).await.is_err());

    // SIGTERM stops it gracefully, as over plain HTTP.
    let mut s = s;
    assert!(s.terminate().success(), "stderr: {}", s.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_clients_with_a_certificate_it_signed_get_in() {
    let ca = Ca::new("server CA");
    let clients = Ca::new("client CA");
    let s = Server::tls(Some(&clients.pem()), &ca.server("server"), "");

    let without = list_status(&https_client(&ca, None), &s.base).await;
    assert!(without.is_err(), "no client certificate: refused, got {without:?}");

    let stranger = Ca::new("stranger CA").client("mallory");
    let wrong = list_status(&https_client(&ca, Some(&stranger)), &s.base).await;
    assert!(wrong.is_err(), "a certificate of another CA: refused, got {wrong:?}");

    let alice = clients.client("alice");
    assert_eq!(list_status(&https_client(&ca, Some(&alice)), &s.base).await, Ok(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_and_a_broken_one_keeps_the_old() {
    let ca = Ca::new("test CA");
    let one = ca.server("server one");
    // No polling: only SIGHUP reloads.
    let s = Server::tls(None, &one, "tls_reload_interval = \"off\"");
    assert_eq!(served_cert(s.addr(), &ca).await, one.der);

    let two = ca.server("server two");
    replace(&s.path("key.pem"), &two.key);
    replace(&s.path("cert.pem"), &two.cert);
    // Without SIGHUP (and with polling off) the old certificate stays.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(served_cert(s.addr(), &ca).await, one.der, "reloaded without SIGHUP");
    s.hangup();
    wait_for_cert(s.addr(), &ca, &two.der, Duration::from_secs(10)).await;
    assert_eq!(list_status(&https_client(&ca, None), &s.base).await, Ok(200));

    // A broken certificate, then a key that does not match it: both keep the one in use.
    replace(&s.path("cert.pem"), "-----BEGIN CERTIFICATE-----\nnot base64!\n");
    s.hangup();
    let three = ca.server("server three");
    let start = Instant::now();
    while !s.stderr().contains("TLS reload (SIGHUP) failed") {
        assert!(start.elapsed() < Duration::from_secs(10), "no warning: {}", s.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    replace(&s.path("cert.pem"), &three.cert);
    s.hangup();
    let start = Instant::now();
    while s.stderr().matches("TLS reload (SIGHUP) failed").count() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "no warning: {}", s.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served_cert(s.addr(), &ca).await, two.der, "a failed reload keeps the old one");
    assert_eq!(list_status(&https_client(&ca, None), &s.base).await, Ok(200));
    let log = s.stderr();
    assert!(log.contains("cert.pem"), "the warning names the file: {log}");
    assert!(!log.contains("PRIVATE KEY"), "no key material in the logs: {log}");
    assert!(!log.contains(two.key.lines().nth(1).unwrap()), "no key material in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_the_files_reloads_the_certificate() {
    let ca = Ca::new("test CA");
    let one = ca.server("server one");
    let s = Server::tls(None, &one, "tls_reload_interval = \"200ms\"");
    assert_eq!(served_cert(s.addr(), &ca).await, one.der);
    let two = ca.server("server two");
    replace(&s.path("key.pem"), &two.key);
    replace(&s.path("cert.pem"), &two.cert);
    wait_for_cert(s.addr(), &ca, &two.der, Duration::from_secs(10)).await;
    assert!(s.stderr().contains("TLS certificate reloaded (the files changed)"), "{}", s.stderr());
}

#[test]
fn a_missing_or_mismatched_certificate_is_an_invalid_config_at_start() {
    let ca = Ca::new("test CA");
    let (one, two) = (ca.server("one"), ca.server("two"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("cert.pem"), &one.cert).unwrap();
    std::fs::write(d.join("key.pem"), &two.key).unwrap();
    let run = |args: &[&str]| {
        let out = common::vaultdb(d)
            .env("VAULTDB_LISTEN", "127.0.0.1:0")
            .env("VAULTDB_TOKEN", TOKEN)
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["serve", "--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.starts_with("error: INVALID_CONFIG: "), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
    let (code, err) = run(&["serve", "--tls-cert", "nowhere.pem", "--tls-key", "key.pem"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("nowhere.pem"), "{err}");
}

/// Whether the server closes `conn` (end of stream or an error) within `within`, reading
/// and discarding what it sends first (an answer).
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(conn: &mut S, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Slow loris over plain HTTP: a connection that sends nothing, one that sends half a
/// header and stops, and one that idles after a request are each closed by the server after
/// `request_timeout`, instead of holding a connection (and a file descriptor) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_a_whole_request_are_closed_after_the_request_timeout() {
    use tokio::io::AsyncWriteExt;
    let s = Server::plain("request_timeout = \"2s\"");
    let connect = || tokio::net::TcpStream::connect(s.addr());
    let mut silent = connect().await.unwrap();
    let mut half = connect().await.unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
    let mut idle = connect().await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let start = Instant::now();
    for (what, conn) in
        [("sends nothing", &mut silent), ("sends half a header", &mut half), ("idles", &mut idle)]
    {
        assert!(
            closed_within(conn, Duration::from_secs(10)).await,
            "a connection that {what} is still open {:?} after it began (request_timeout 2s)",
            start.elapsed()
        );
    }
    // The server still answers.
    let plain = common::http_client().build().unwrap();
    assert_eq!(list_status(&plain, &s.base).await, Ok(200));
}

/// Slow read: a client that pipelines requests and never reads the answers is disconnected
/// once the server could not write for `request_timeout`, instead of holding its connection
/// (and, with the cap on connections, a slot) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::plain("request_timeout = \"2s\"");
    let mut conn = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    let asks = 2000;
    let one = b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    conn.write_all(&one.repeat(asks)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Now read everything: a server still there answers every request.
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut got)).await;
    let answers = got.windows(12).filter(|w| w == b"HTTP/1.1 200").count();
    assert!(
        answers < asks,
        "the server wrote all {answers} answers to a client that read nothing for 8 s \
         (request_timeout 2s; read: {read:?})"
    );
}

/// Over HTTPS: a connection that finished its handshake and sends no request is closed
/// after `request_timeout`, as over plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_connection_that_sends_no_request_is_closed_after_the_request_timeout() {
    let ca = Ca::new("test CA");
    let s = Server::tls(None, &ca.server("server one"), "request_timeout = \"2s\"");
    let tcp = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(&ca, None)));
    let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
    let mut tls = connector.connect(name, tcp).await.unwrap();
    assert!(
        closed_within(&mut tls, Duration::from_secs(10)).await,
        "a TLS connection without a request is still open after 10 s (request_timeout 2s)"
    );
}

/// The sockets the process `pid` holds open (Linux: its `/proc/PID/fd` links to `socket:`).
#[cfg(target_os = "linux")]
fn sockets_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Thousands of connections that never finish the TLS handshake: the server holds at most
/// `server.max_connections` of them (the rest wait in the kernel's backlog, costing the
/// server nothing), instead of a task, buffers and a file descriptor each; and once they
/// are gone it serves again.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_finish_the_handshake_are_capped() {
    let ca = Ca::new("test CA");
    let s = Server::tls(None, &ca.server("server one"), "");
    let base = sockets_of(s.pid());
    let mut held = Vec::new();
    for _ in 0..700 {
        held.push(tokio::net::TcpStream::connect(s.addr()).await.unwrap());
    }
    // Let the server accept what it will.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open = sockets_of(s.pid()) - base;
    assert!(open <= 512, "the server holds {open} sockets for 700 silent clients (cap 512)");
    drop(held);
    let start = Instant::now();
    while list_status(&https_client(&ca, None), &s.base).await != Ok(200) {
        assert!(start.elapsed() < Duration::from_secs(30), "the server does not serve again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
