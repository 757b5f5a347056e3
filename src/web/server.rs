//! The HTTP server: `/metrics` (configurable path, gzip when asked), `/healthz`,
//! `/readyz` (ready after the first poll round), `POST /-/reload` (re-read the
//! configuration, as Prometheus does) and a landing page at `/`.
//!
//! With a web configuration file (`--web.config.file`) it also speaks HTTPS and asks for
//! basic auth on every path but the probes `/healthz` and `/readyz`, which kubelets and
//! load balancers call without credentials. The TLS handshake runs in the connection's
//! own task with a deadline, so a slow or failed handshake never holds up the accept loop.
//!
//! Serving never calls a cloud API: `/metrics` renders the store and the exporter's
//! registry, from a snapshot taken when the request arrives and piece by piece as the
//! response is sent (`body`). Connections drain gracefully on shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::basic_auth::Authenticator;
use super::bench_floor::BenchFloor;
use super::body::{Body, Exposition, PIECE, gzip};
use super::config::WebConfigSource;
use crate::metrics::CONTENT_TYPE;

/// How long open connections may take to finish after shutdown was requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// What hyper buffers per connection before writing to the socket: two pieces of a
/// streamed exposition. hyper's default (about 400 KB) would let every scrape in flight
/// hold that much.
const CONNECTION_BUFFER: usize = 2 * PIECE;
/// Paths served without basic auth: liveness and readiness probes.
pub const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// What the server serves; the exporter implements it.
pub trait Backend: Send + Sync {
    /// A scrape: the exposition of this moment, rendered as it is sent.
    fn scrape(&self) -> Box<dyn Exposition>;
    /// The whole exposition at once.
    fn render(&self) -> Vec<u8> {
        let mut scrape = self.scrape();
        let mut out = Vec::new();
        while scrape.fill(&mut out, usize::MAX) {}
        out
    }
    /// Whether the first poll round has finished.
    fn is_ready(&self) -> bool;
    /// Groups tracked, for the landing page.
    fn group_count(&self) -> usize;
    /// Re-reads the configuration; `Err` says why it was rejected.
    fn reload(&self) -> Result<(), String>;
}

/// What the handlers read.
pub struct ServerState {
    pub backend: Arc<dyn Backend>,
    pub telemetry_path: String,
    /// TLS, basic auth and extra headers; `None` serves plain HTTP to anyone.
    pub web: Option<WebProtection>,
    /// The clock of handshake deadlines and the shutdown drain.
    pub clock: kcle_clock::Clock,
    /// The benchmark aid (`--web.bench-floor-path`); `None` in production.
    pub bench_floor: Option<BenchFloor>,
}

/// The web configuration and the basic-auth checker (and its cache) that go with it.
pub struct WebProtection {
    pub source: Arc<WebConfigSource>,
    pub auth: Authenticator,
}

impl WebProtection {
    pub fn new(source: Arc<WebConfigSource>) -> WebProtection {
        WebProtection {
            source,
            auth: Authenticator::new(),
        }
    }
}

/// Accepts connections until `shutdown` turns true, then drains them.
pub async fn serve(
    listener: TcpListener,
    state: Arc<ServerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    state.clock.sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = crate::signals::stopped(&mut shutdown) => break,
        };
        let state = state.clone();
        // Taken before the handshake so that shutdown also waits for (and cuts short)
        // connections still negotiating TLS.
        let watcher = graceful.watcher();
        let shutdown = shutdown.clone();
        tokio::spawn(connection(stream, state, watcher, shutdown));
    }
    let drain_until = state.clock.instant() + DRAIN_TIMEOUT;
    if state
        .clock
        .timeout_at(drain_until, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open HTTP connections did not finish in time");
    }
}

/// Serves one connection: the TLS handshake when the web configuration asks for it
/// (read afresh for every connection), then HTTP/1.1.
async fn connection(
    stream: TcpStream,
    state: Arc<ServerState>,
    watcher: Watcher,
    mut shutdown: watch::Receiver<bool>,
) {
    let tls = state
        .web
        .as_ref()
        .and_then(|w| w.source.current().tls.clone());
    let Some(acceptor) = tls else {
        return http(stream, state, watcher).await;
    };
    let handshake = state.clock.timeout_at(
        state.clock.instant() + HANDSHAKE_TIMEOUT,
        acceptor.accept(stream),
    );
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            // Scanners and plain-HTTP clients end up here; not worth more than debug.
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return;
            }
        },
        _ = crate::signals::stopped(&mut shutdown) => return,
    };
    http(stream, state, watcher).await
}

async fn http<S>(stream: S, state: Arc<ServerState>, watcher: Watcher)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(respond(&state, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(CONNECTION_BUFFER)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Applies the web configuration (basic auth, extra headers), then routes.
async fn respond(state: &ServerState, req: Request<Incoming>) -> Response<Body> {
    let Some(web) = &state.web else {
        return handle(state, req);
    };
    let config = web.source.current();
    let open = OPEN_PATHS.contains(&req.uri().path());
    let mut resp = match &config.users {
        Some(users) if !open && !web.auth.check(users, req.headers()).await => unauthorized(),
        _ => handle(state, req),
    };
    for (name, value) in &config.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// 401 with the challenge, as exporter-toolkit answers.
fn unauthorized() -> Response<Body> {
    let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
    r
}

/// Routes one request.
pub fn handle(state: &ServerState, req: Request<Incoming>) -> Response<Body> {
    route(state, req.method(), req.uri().path(), req.headers())
}

fn route(
    state: &ServerState,
    method: &Method,
    path: &str,
    headers: &hyper::HeaderMap,
) -> Response<Body> {
    if path == "/-/reload" {
        if method != Method::POST && method != Method::PUT {
            return text(StatusCode::METHOD_NOT_ALLOWED, "use POST to reload\n");
        }
        return match state.backend.reload() {
            Ok(()) => text(StatusCode::OK, "configuration reloaded\n"),
            Err(e) => owned_text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to reload config: {e}\n"),
            ),
        };
    }
    if let Some(floor) = state.bench_floor.as_ref().filter(|f| f.path == path) {
        return bench_floor(state, floor, method, headers);
    }
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    if path == state.telemetry_path {
        return metrics(state, headers);
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if state.backend.is_ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first poll round has not finished\n",
        ),
        "/" => landing(state),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn metrics(state: &ServerState, headers: &hyper::HeaderMap) -> Response<Body> {
    let gzipped = accepts_gzip(headers);
    exposition(Body::stream(state.backend.scrape(), gzipped), gzipped)
}

/// The exposition's response: its content type, and its encoding when gzipped.
fn exposition(body: Body, gzipped: bool) -> Response<Body> {
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .header(header::VARY, "Accept-Encoding");
    if gzipped {
        resp = resp.header(header::CONTENT_ENCODING, "gzip");
    }
    resp.body(body).expect("static headers are valid")
}

/// The benchmark floor (see [`BenchFloor`]): `POST` captures the exposition, `GET`
/// serves the capture from its prebuilt buffer with the headers `/metrics` sends.
fn bench_floor(
    state: &ServerState,
    floor: &BenchFloor,
    method: &Method,
    headers: &hyper::HeaderMap,
) -> Response<Body> {
    if method == Method::POST {
        let captured = floor.capture(state.backend.render(), gzip);
        return owned_text(
            StatusCode::OK,
            format!(
                "captured {} bytes ({} gzipped)\n",
                captured.plain.len(),
                captured.gzip.len()
            ),
        );
    }
    if method != Method::GET && method != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET, or POST to capture\n",
        );
    }
    let gzipped = accepts_gzip(headers);
    match floor.get(gzipped) {
        Some(body) => exposition(Body::full(body), gzipped),
        None => text(
            StatusCode::CONFLICT,
            "nothing captured yet; POST to this path first\n",
        ),
    }
}

/// Whether `Accept-Encoding` allows gzip (with a non-zero q-value).
fn accepts_gzip(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
}

fn landing(state: &ServerState) -> Response<Body> {
    let path = html_escape(&state.telemetry_path);
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>kafka-cloud-lag-exporter</title></head>\n\
         <body><h1>kafka-cloud-lag-exporter</h1>\n\
         <p>Consumer-group lag of Alibaba Cloud and Tencent Cloud managed Kafka, version {}.</p>\n\
         <ul><li><a href=\"{path}\">Metrics</a></li><li><a href=\"/healthz\">Health</a></li>\
         <li><a href=\"/readyz\">Readiness</a></li></ul>\n\
         <p>Groups tracked: {}. Ready: {}.</p></body></html>\n",
        env!("CARGO_PKG_VERSION"),
        state.backend.group_count(),
        state.backend.is_ready(),
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Body::full(html))
        .expect("static headers are valid")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn owned_text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = text(status, "");
    *r.body_mut() = Body::full(body);
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::full(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::super::body::Prerendered;
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Renders a different exposition on every call, so a served capture is recognisable.
    struct Counting(AtomicUsize);

    impl Backend for Counting {
        fn scrape(&self) -> Box<dyn Exposition> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Box::new(Prerendered::new(
                format!("# TYPE m gauge\nm {n}\n").repeat(50),
            ))
        }
        fn is_ready(&self) -> bool {
            true
        }
        fn group_count(&self) -> usize {
            0
        }
        fn reload(&self) -> Result<(), String> {
            Ok(())
        }
    }

    fn state(floor: Option<&str>) -> ServerState {
        ServerState {
            backend: Arc::new(Counting(AtomicUsize::new(0))),
            telemetry_path: "/metrics".into(),
            web: None,
            clock: kcle_clock::Clock::system(),
            bench_floor: floor.map(BenchFloor::new),
        }
    }

    async fn body(resp: Response<Body>) -> Vec<u8> {
        use http_body_util::BodyExt;
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    fn gunzip(b: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[tokio::test]
    async fn the_bench_floor_serves_its_capture_with_the_metrics_headers() {
        let floor = "/-/bench/floor";
        let plain = hyper::HeaderMap::new();
        let mut gz = hyper::HeaderMap::new();
        gz.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));

        let off = state(None);
        assert_eq!(
            route(&off, &Method::GET, floor, &plain).status(),
            StatusCode::NOT_FOUND,
            "absent without the flag"
        );
        assert_eq!(
            route(&off, &Method::POST, floor, &plain).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );

        let on = state(Some(floor));
        assert_eq!(
            route(&on, &Method::GET, floor, &plain).status(),
            StatusCode::CONFLICT,
            "nothing captured yet"
        );
        let captured = route(&on, &Method::POST, floor, &plain);
        assert_eq!(captured.status(), StatusCode::OK);
        let first = b"# TYPE m gauge\nm 0\n".repeat(50);
        // Later scrapes render anew; the floor keeps serving the capture.
        let scrape = route(&on, &Method::GET, "/metrics", &gz);
        let floor_gz = route(&on, &Method::GET, floor, &gz);
        assert_eq!(
            scrape.headers(),
            floor_gz.headers(),
            "same headers as /metrics"
        );
        assert_eq!(floor_gz.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gunzip(&body(floor_gz).await), first);
        assert_ne!(gunzip(&body(scrape).await), first);
        let floor_plain = route(&on, &Method::GET, floor, &plain);
        assert_eq!(
            floor_plain.headers(),
            route(&on, &Method::GET, "/metrics", &plain).headers()
        );
        assert_eq!(body(floor_plain).await, first);
    }

    /// An exposition of `pieces` pieces of one line each, counting the pieces rendered.
    struct Counted {
        rendered: Arc<AtomicUsize>,
        pieces: usize,
    }

    impl Exposition for Counted {
        fn fill(&mut self, out: &mut Vec<u8>, _until: usize) -> bool {
            let n = self.rendered.fetch_add(1, Ordering::SeqCst);
            out.extend_from_slice(format!("m{{piece=\"{n}\"}} 1\n").as_bytes());
            n + 1 < self.pieces
        }
    }

    struct Slow(Arc<AtomicUsize>);

    impl Backend for Slow {
        fn scrape(&self) -> Box<dyn Exposition> {
            Box::new(Counted {
                rendered: self.0.clone(),
                pieces: 200,
            })
        }
        fn is_ready(&self) -> bool {
            true
        }
        fn group_count(&self) -> usize {
            0
        }
        fn reload(&self) -> Result<(), String> {
            Ok(())
        }
    }

    /// A connection whose client has sent `request` and reads whatever is written at once:
    /// the socket never makes the server wait, so only the server's own yields let other
    /// tasks run.
    struct Eager {
        request: Vec<u8>,
        written: Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl AsyncRead for Eager {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.request.is_empty() {
                // Nothing more from the client (it waits for the response).
                return std::task::Poll::Pending;
            }
            let n = self.request.len().min(buf.remaining());
            buf.put_slice(&self.request[..n]);
            self.request.drain(..n);
            std::task::Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Eager {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            data: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.written.lock().unwrap().extend_from_slice(data);
            std::task::Poll::Ready(Ok(data.len()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// Serves one request on a spawned connection task; returns what was written.
    fn connect(
        state: &Arc<ServerState>,
        graceful: &hyper_util::server::graceful::GracefulShutdown,
        path: &str,
    ) -> (tokio::task::JoinHandle<()>, Arc<std::sync::Mutex<Vec<u8>>>) {
        let written = Arc::default();
        let conn = Eager {
            request: format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .into_bytes(),
            written: Arc::clone(&written),
        };
        let task = tokio::spawn(http(conn, state.clone(), graceful.watcher()));
        (task, written)
    }

    /// One worker thread, and a client that never makes the server wait: `/healthz` is
    /// answered after a piece or two of a scrape that was asked first, not after all of
    /// it, because the scrape's body ends the task's turn after each piece.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_scrape_in_progress_does_not_hold_up_healthz() {
        let rendered = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(ServerState {
            backend: Arc::new(Slow(rendered.clone())),
            ..state(None)
        });
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let (scrape, scraped) = connect(&state, &graceful, "/metrics");
        let (health, answer) = connect(&state, &graceful, "/healthz");
        health.await.unwrap();
        let at_health = rendered.load(Ordering::SeqCst);
        assert!(
            String::from_utf8_lossy(&answer.lock().unwrap()).ends_with("\r\n\r\nok\n"),
            "healthz answered"
        );
        assert!(
            (1..10).contains(&at_health),
            "{at_health} of 200 pieces rendered when /healthz was answered"
        );
        scrape.await.unwrap();
        assert_eq!(rendered.load(Ordering::SeqCst), 200);
        let scraped = String::from_utf8(scraped.lock().unwrap().clone()).unwrap();
        assert!(
            scraped.contains("transfer-encoding: chunked"),
            "{scraped:.200}"
        );
        assert!(scraped.contains("m{piece=\"0\"} 1\n") && scraped.contains("m{piece=\"199\"} 1\n"));
        assert!(
            scraped.ends_with("\r\n0\r\n\r\n"),
            "the chunked body is complete"
        );
    }

    #[test]
    fn gzip_negotiation() {
        let mut h = hyper::HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("deflate, gzip;q=0.5"),
        );
        assert!(accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0"),
        );
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        assert!(!accepts_gzip(&h));
    }
}
