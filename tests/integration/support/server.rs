//! A real HTTP server on 127.0.0.1:0, on its own thread and runtime, with one endpoint per
//! behaviour the tests need (hang, trickle, redirect, loop, compress, charsets, huge bodies, a gzip
//! bomb, throttling, flakiness, resets). It counts hits per path and the peak of concurrent
//! requests per Host header, so tests can assert what the server actually saw.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::serve::IncomingStream;
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use tokio::io::AsyncReadExt;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::tls::Identity;
use tokio::sync::oneshot;

#[derive(Default)]
struct Counters {
    hits: Mutex<HashMap<String, usize>>,
    /// Hits per path that carried If-None-Match or If-Modified-Since.
    conditional: Mutex<HashMap<String, usize>>,
    /// The methods of the requests per path, in arrival order.
    methods: Mutex<HashMap<String, Vec<String>>>,
    /// Per Host header: (requests in flight now, peak).
    in_flight: Mutex<HashMap<String, (usize, usize)>>,
    /// The client addresses requests came from: one per connection.
    peers: Mutex<HashSet<SocketAddr>>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    scheme: &'static str,
    /// A listener that resets every connection it accepts.
    pub reset_addr: SocketAddr,
    counters: Arc<Counters>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Plain HTTP/1.1.
    pub fn start() -> Self {
        Self::spawn(None)
    }

    /// HTTPS with this certificate, offering HTTP/2 and HTTP/1.1 by ALPN.
    pub fn start_tls(identity: &Identity) -> Self {
        let key = PrivateKeyDer::Pkcs8(identity.key_der.clone().into());
        let cert = CertificateDer::from(identity.cert_der.clone());
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .expect("server certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self::spawn(Some(TlsAcceptor::from(Arc::new(config))))
    }

    fn spawn(tls: Option<TlsAcceptor>) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let counters = Arc::new(Counters::default());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let state = Arc::clone(&counters);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let resets = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send((
                        listener.local_addr().expect("addr"),
                        resets.local_addr().expect("addr"),
                    ))
                    .expect("send addr");
                tokio::spawn(reset_every_connection(resets));
                let app = router(state).into_make_service_with_connect_info::<Peer>();
                let shutdown = async {
                    let _ = shutdown_rx.await;
                };
                match tls {
                    None => {
                        axum::serve(listener, app)
                            .with_graceful_shutdown(shutdown)
                            .await
                    }
                    Some(acceptor) => {
                        let listener = TlsListener {
                            tcp: listener,
                            acceptor,
                        };
                        axum::serve(listener, app)
                            .with_graceful_shutdown(shutdown)
                            .await
                    }
                }
                .expect("serve");
            });
            runtime.shutdown_timeout(Duration::from_millis(100));
        });
        let (addr, reset_addr) = addr_rx.recv().expect("server address");
        TestServer {
            addr,
            scheme,
            reset_addr,
            counters,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests seen for this exact path (query excluded).
    pub fn hits(&self, path: &str) -> usize {
        let hits = self.counters.hits.lock().expect("lock");
        hits.get(path).copied().unwrap_or(0)
    }

    /// The most requests that were in flight at once with this Host header (`name:port`).
    /// Requests for this path that carried a validator (If-None-Match or If-Modified-Since).
    pub fn conditional_hits(&self, path: &str) -> usize {
        let conditional = self.counters.conditional.lock().expect("lock");
        conditional.get(path).copied().unwrap_or(0)
    }

    /// The methods of the requests for this path, in arrival order.
    pub fn methods(&self, path: &str) -> Vec<String> {
        let methods = self.counters.methods.lock().expect("lock");
        methods.get(path).cloned().unwrap_or_default()
    }

    /// The connections that carried at least one request.
    pub fn connections(&self) -> usize {
        self.counters.peers.lock().expect("lock").len()
    }

    /// `"*"` gives the peak over all hosts together.
    pub fn peak_in_flight(&self, host: &str) -> usize {
        let in_flight = self.counters.in_flight.lock().expect("lock");
        in_flight.get(host).map_or(0, |&(_, peak)| peak)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Hanging handlers never finish: do not wait for a graceful end.
        drop(self.thread.take());
    }
}

fn router(counters: Arc<Counters>) -> Router {
    Router::new()
        .route("/page/{name}", get(page))
        .route("/slow/{ms}/{name}", get(slow))
        .route("/hang", get(hang))
        .route("/trickle", get(trickle))
        .route("/redirect/{n}", get(redirect))
        .route("/loop/a", get(|| async { Redirect::temporary("/loop/b") }))
        .route("/loop/b", get(|| async { Redirect::temporary("/loop/a") }))
        .route(
            "/to-ftp",
            get(|| async { Redirect::temporary("ftp://example.com/") }),
        )
        .route(
            "/to-nowhere",
            get(|| async { Redirect::temporary("http://[::1/") }),
        )
        .route("/encoded/{encoding}", get(encoded))
        .route(
            "/version",
            get(|request: Request| async move { format!("{:?}", request.version()) }),
        )
        .route("/latin1", get(latin1))
        .route("/sjis", get(sjis))
        .route("/big/{mb}", get(big))
        .route("/bomb", get(bomb))
        .route("/status/{code}", get(status))
        .route("/flaky/{key}/{failures}", get(flaky))
        .route("/throttled/{key}", get(throttled))
        .route("/binary", get(binary))
        .route(
            "/no-head",
            get(|| async { html("GET only", "") })
                .head(|| async { StatusCode::METHOD_NOT_ALLOWED }),
        )
        .route("/shop/{name}", get(shop))
        .route("/xhtml", get(xhtml))
        .route("/huge-html/{mb}", get(huge_html))
        .route("/cached/{key}", get(cached))
        .route("/dated/{key}", get(dated))
        .route("/counter/{key}", get(counter))
        .route("/flip/{key}", get(flip))
        .route("/hostile", get(hostile))
        .route("/echo-headers", get(echo_headers))
        .layer(middleware::from_fn_with_state(Arc::clone(&counters), count))
        .with_state(counters)
}

/// Counts hits and tracks requests in flight per Host header, around every handler.
async fn count(State(counters): State<Arc<Counters>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if let Some(ConnectInfo(Peer(peer))) = request.extensions().get::<ConnectInfo<Peer>>() {
        counters.peers.lock().expect("lock").insert(*peer);
    }
    let headers = request.headers();
    if headers.contains_key(header::IF_NONE_MATCH)
        || headers.contains_key(header::IF_MODIFIED_SINCE)
    {
        *counters
            .conditional
            .lock()
            .expect("lock")
            .entry(path.clone())
            .or_default() += 1;
    }
    counters
        .methods
        .lock()
        .expect("lock")
        .entry(path.clone())
        .or_default()
        .push(request.method().to_string());
    *counters.hits.lock().expect("lock").entry(path).or_default() += 1;
    {
        let mut in_flight = counters.in_flight.lock().expect("lock");
        for key in [host.as_str(), "*"] {
            let entry = in_flight.entry(key.to_string()).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(entry.0);
        }
    }
    let response = next.run(request).await;
    let mut in_flight = counters.in_flight.lock().expect("lock");
    for key in [host.as_str(), "*"] {
        in_flight.entry(key.to_string()).or_default().0 -= 1;
    }
    response
}

fn html(title: &str, body: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
        ),
    )
        .into_response()
}

async fn page(Path(name): Path<String>) -> Response {
    html(
        &format!("Page {name}"),
        &format!("<h1>Heading {name}</h1><p>Text of page {name}.</p>"),
    )
}

async fn slow(Path((ms, name)): Path<(u64, String)>) -> Response {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    page(Path(name)).await
}

async fn hang() -> Response {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    html("never", "")
}

/// Headers at once, then one byte every 200 ms: only a whole-attempt timeout stops it.
async fn trickle() -> Response {
    let stream = futures::stream::unfold(0u32, |n| async move {
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (n < 300).then(|| (Ok::<_, Infallible>(Bytes::from_static(b"x")), n + 1))
    });
    (
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn redirect(Path(n): Path<u32>) -> Response {
    if n == 0 {
        html("Landed", "<p>after the redirects</p>")
    } else {
        Redirect::temporary(&format!("/redirect/{}", n - 1)).into_response()
    }
}

/// The same page in the `Content-Encoding` named in the path: gzip, br, zstd or deflate.
async fn encoded(Path(encoding): Path<String>) -> Response {
    let page: &[u8] =
        b"<html><head><title>Compressed</title></head><body><p>squeezed text</p></body></html>";
    let body = match encoding.as_str() {
        "gzip" => {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(page).expect("gzip");
            encoder.finish().expect("gzip")
        }
        "deflate" => {
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(page).expect("deflate");
            encoder.finish().expect("deflate")
        }
        "br" => {
            let mut out = Vec::new();
            let mut encoder = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            encoder.write_all(page).expect("brotli");
            drop(encoder);
            out
        }
        "zstd" => zstd::encode_all(page, 3).expect("zstd"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "text/html".to_string()),
            (header::CONTENT_ENCODING, encoding),
        ],
        body,
    )
        .into_response()
}

async fn latin1() -> Response {
    let body: &[u8] = b"<html><head><title>Caf\xe9 cr\xe8me</title></head><body><p>Na\xefve \xfcber</p></body></html>";
    (
        [(header::CONTENT_TYPE, "text/html; charset=iso-8859-1")],
        body,
    )
        .into_response()
}

async fn sjis() -> Response {
    let (text, _, _) = encoding_rs::SHIFT_JIS.encode(
        "<html><head><meta charset=\"shift_jis\"><title>日本語のタイトル</title></head><body><p>こんにちは世界</p></body></html>",
    );
    ([(header::CONTENT_TYPE, "text/html")], text.into_owned()).into_response()
}

/// `mb` megabytes of HTML, generated as it is sent.
async fn big(Path(mb): Path<usize>) -> Response {
    let chunk = Bytes::from(
        "<p>lorem ipsum dolor sit amet</p>\n".repeat(1024 * 1024 / 34 + 1)[..1024 * 1024]
            .to_string(),
    );
    let head = Bytes::from_static(b"<html><head><title>Big</title></head><body>");
    let stream = futures::stream::iter(
        std::iter::once(head)
            .chain(std::iter::repeat_n(chunk, mb))
            .map(Ok::<_, Infallible>),
    );
    (
        [(header::CONTENT_TYPE, "text/html")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// 1 GiB of zeros in about 1 MB of gzip.
async fn bomb() -> Response {
    static BOMB: OnceLock<Bytes> = OnceLock::new();
    let body = BOMB.get_or_init(|| {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..1024 {
            encoder.write_all(&zeros).expect("gzip");
        }
        Bytes::from(encoder.finish().expect("gzip"))
    });
    (
        [
            (header::CONTENT_TYPE, "text/plain"),
            (header::CONTENT_ENCODING, "gzip"),
        ],
        body.clone(),
    )
        .into_response()
}

async fn status(Path(code): Path<u16>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, html(&format!("Status {code}"), "")).into_response()
}

/// 503 for the first `failures` requests of each key, then 200.
async fn flaky(
    State(counters): State<Arc<Counters>>,
    Path((key, failures)): Path<(String, usize)>,
) -> Response {
    let seen = counters.hits.lock().expect("lock")[&format!("/flaky/{key}/{failures}")];
    if seen <= failures {
        (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response()
    } else {
        html("Recovered", "<p>fine now</p>")
    }
}

/// 429 with `Retry-After: 1` on the first request of each key, then 200.
async fn throttled(State(counters): State<Arc<Counters>>, Path(key): Path<String>) -> Response {
    let seen = counters.hits.lock().expect("lock")[&format!("/throttled/{key}")];
    if seen == 1 {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "slow down",
        )
            .into_response()
    } else {
        html("Allowed", "")
    }
}

/// A page with an ETag, answering 304 when If-None-Match carries it.
async fn cached(Path(key): Path<String>, headers: HeaderMap) -> Response {
    let etag = format!("\"{key}-v1\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let mut response = html(&format!("Cached {key}"), "<p>stable</p>");
    response
        .headers_mut()
        .insert(header::ETAG, etag.parse().expect("etag"));
    response
}

/// A page with only a Last-Modified date, answering 304 to If-Modified-Since.
async fn dated(Path(key): Path<String>, headers: HeaderMap) -> Response {
    const DATE: &str = "Tue, 03 Nov 2026 10:00:00 GMT";
    if headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        == Some(DATE)
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut response = html(&format!("Dated {key}"), "<p>as of a date</p>");
    response
        .headers_mut()
        .insert(header::LAST_MODIFIED, DATE.parse().expect("date"));
    response
}

/// A different body on every request, and no validators.
async fn counter(State(counters): State<Arc<Counters>>, Path(key): Path<String>) -> Response {
    let seen = counters.hits.lock().expect("lock")[&format!("/counter/{key}")];
    html(&format!("Counter {key}"), &format!("<p>visit {seen}</p>"))
}

/// A full page on the first request; later, a body that breaks off half-way.
async fn flip(State(counters): State<Arc<Counters>>, Path(key): Path<String>) -> Response {
    let seen = counters.hits.lock().expect("lock")[&format!("/flip/{key}")];
    if seen == 1 {
        return html("Flip", "<p>the good copy</p>");
    }
    let stream = futures::stream::iter([
        Ok(Bytes::from_static(
            b"<html><head><title>Broken</title></head><body><p>half",
        )),
        Err(std::io::Error::other("the server died")),
    ]);
    (
        [(header::CONTENT_TYPE, "text/html")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A page for extraction: nested markup, entities, relative, root-relative and protocol-relative
/// links, a `<base href>`, hidden content, and markup that is not closed properly.
async fn shop(Path(name): Path<String>) -> Response {
    let body = format!(
        r#"<!doctype html><html><head><title>Shop {name}</title><base href="/catalog/">
        <style>.price {{ color: red }}</style><script>document.write("<h1>fake</h1>")</script></head>
        <body><h1>Deals &amp; <em>offers</em></h1>
        <ul id="items">
          <li class="item"><a class="title" href="widget.html#specs">Widget</a> <span class="price">€&nbsp;10</span></li>
          <li class="item"><a class="title" href="/gadget">Gadget</a> <span class="price">€ 20</span></li>
          <li class="item"><a class="title" href="//cdn.example/x">Elsewhere</a></li>
        </ul>
        <p>Unclosed <b>bold <i>and italic</p><p>Next paragraph
        <a href="mailto:shop@example.com">mail</a><a href="widget.html">again</a>
        <noscript>turn on scripts</noscript><template><p>inert</p></template>
        <img src="img/logo.png" alt="logo"></body></html>"#
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn xhtml() -> Response {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>XHTML</title></head>
<body><h1>Served as XHTML</h1></body></html>"#;
    ([(header::CONTENT_TYPE, "application/xhtml+xml")], body).into_response()
}

/// `mb` megabytes of HTML made of many small elements: slow to parse into a DOM.
async fn huge_html(Path(mb): Path<usize>) -> Response {
    let item = "<div class=\"row\"><p>cell <b>one</b></p><p>cell <i>two</i></p></div>\n";
    let body = format!(
        "<html><head><title>Huge</title></head><body>{}</body></html>",
        item.repeat(mb * 1024 * 1024 / item.len())
    );
    ([(header::CONTENT_TYPE, "text/html")], body).into_response()
}

async fn binary() -> Response {
    (
        [(header::CONTENT_TYPE, "image/png")],
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\x1b[31m".to_vec(),
    )
        .into_response()
}

async fn hostile() -> Response {
    html(
        "Evil\x1b]0;owned\x07 title\x1b[2J",
        "<p>bidi \u{202E}txt.exe and \x1b[31mred</p>",
    )
}

async fn echo_headers(headers: HeaderMap) -> Response {
    let mut lines: Vec<String> = headers
        .iter()
        .map(|(name, value)| format!("{name}={}", value.to_str().unwrap_or("?")))
        .collect();
    lines.sort();
    ([(header::CONTENT_TYPE, "text/plain")], lines.join(" ")).into_response()
}

/// The client address of a connection, over TCP or TLS.
#[derive(Clone)]
struct Peer(SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// Accepts TCP connections and completes the TLS handshake before handing them to the server.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client that rejects the certificate fails its handshake: wait for the next one.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn reset_every_connection(listener: tokio::net::TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await;
        // Closing with a zero linger sends RST instead of FIN.
        let _ = stream.set_zero_linger();
        drop(stream);
    }
}
