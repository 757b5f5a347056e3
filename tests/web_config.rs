//! `--web.config.file` end to end over loopback: real TLS handshakes with certificates
//! generated here (a CA, a server certificate, client certificates), client-certificate
//! policies, basic auth with right, wrong and missing passwords, open probes, extra
//! headers, and changes to the file picked up by the next connection without a restart.
//!
//! The server is the real one (`server::serve`) over a stub backend; the clients are
//! reqwest (one per case, so one connection per case) on rustls configured here.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kafka_cloud_lag_exporter::web::WebConfigSource;
use kafka_cloud_lag_exporter::web::{
    self as server, Backend, Exposition, Prerendered, ServerState, WebProtection,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const METRICS: &str = "kafka_consumergroup_lag{cloud=\"alibaba\"} 42\n";

/// A backend with fixed answers.
struct Stub;

impl Backend for Stub {
    fn scrape(&self) -> Box<dyn Exposition> {
        Box::new(Prerendered::new(METRICS))
    }
    fn is_ready(&self) -> bool {
        true
    }
    fn group_count(&self) -> usize {
        1
    }
    fn reload(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A certificate with its key, as PEM and as rustls types.
struct Identity {
    cert_pem: String,
    key_pem: String,
    cert: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Identity {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// A certificate authority that issues server and client certificates.
struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    fn issue(&self, sans: &[&str], usage: rcgen::ExtendedKeyUsagePurpose) -> Identity {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        identity(cert, key)
    }

    fn server(&self) -> Identity {
        self.issue(
            &["localhost", "127.0.0.1"],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client(&self, san: &str) -> Identity {
        self.issue(&[san], rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }
}

fn identity(cert: rcgen::Certificate, key: rcgen::KeyPair) -> Identity {
    Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

/// A client certificate no CA vouches for.
fn self_signed_client(san: &str) -> Identity {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![san.to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).unwrap();
    identity(cert, key)
}

/// A running server with a web configuration in a temporary directory.
struct Server {
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Writes `files` (name, content) and `web.yml`, then starts serving.
    async fn start(web_yml: &str, files: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        std::fs::write(dir.path().join("web.yml"), web_yml).unwrap();
        let source = WebConfigSource::load(&dir.path().join("web.yml")).expect("valid web config");
        let state = Arc::new(ServerState {
            backend: Arc::new(Stub),
            telemetry_path: "/metrics".into(),
            web: Some(WebProtection::new(Arc::new(source))),
            clock: kcle_clock::Clock::virtual_at_unix(support::T0_SECS),
            bench_floor: None,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(server::serve(listener, state, stopped));
        Server {
            dir,
            addr,
            stop,
            task,
        }
    }

    /// HTTPS with a fresh server certificate from `ca` (and `ca.crt` for client
    /// certificates); `extra` is appended to `tls_server_config` (and may add sections).
    async fn tls(ca: &Ca, extra: &str) -> Server {
        let id = ca.server();
        Server::start(
            &tls_yml(extra),
            &[
                ("server.crt", &id.cert_pem),
                ("server.key", &id.key_pem),
                ("ca.crt", &ca.pem),
            ],
        )
        .await
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Replaces a file the way Kubernetes updates a mounted Secret: a new file renamed
    /// over the old one, so a reader never sees half of it.
    fn replace(&self, name: &str, content: &str) {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://localhost:{}{path}", self.addr.port())
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        let clock = kcle_clock::Clock::system();
        clock
            .timeout_at(clock.instant() + Duration::from_secs(10), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

/// An HTTPS client trusting `roots`, with an optional client certificate; every call
/// builds a new client, so every request below opens a new connection.
fn https_client(
    roots: &[&CertificateDer<'static>],
    identity: Option<&Identity>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> reqwest::Client {
    kafka_cloud_lag_exporter::providers::http::install_crypto_provider();
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add((*r).clone()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(store);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(vec![id.cert.clone()], id.key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn client(ca: &Ca) -> reqwest::Client {
    https_client(&[&ca.der], None, BOTH)
}

fn tls_yml(extra: &str) -> String {
    format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{extra}")
}

async fn status(req: reqwest::RequestBuilder) -> Result<u16, reqwest::Error> {
    Ok(req.send().await?.status().as_u16())
}

/// The status of a request that must get an HTTP answer.
async fn code(req: reqwest::RequestBuilder) -> u16 {
    status(req).await.expect("an HTTP answer")
}

fn hash(password: &str) -> String {
    // Cost 4 keeps the test fast; the format is the same as htpasswd's cost 10.
    bcrypt::hash(password, 4).unwrap()
}

#[tokio::test(start_paused = true)]
async fn tls_serves_metrics_and_refuses_plain_http_and_untrusted_clients() {
    let ca = Ca::new("test CA");
    let s = Server::tls(&ca, "").await;

    let body = client(&ca)
        .get(s.url("https", "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, METRICS);

    // TLS 1.2 only and TLS 1.3 only both work with the default min/max versions.
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let c = https_client(&[&ca.der], None, &[v]);
        assert_eq!(code(c.get(s.url("https", "/healthz"))).await, 200, "{v:?}");
    }

    // A client that does not trust our CA refuses the server.
    let other = Ca::new("other CA");
    assert!(
        https_client(&[&other.der], None, BOTH)
            .get(s.url("https", "/metrics"))
            .send()
            .await
            .is_err()
    );

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(plain.get(s.url("http", "/metrics")).send().await.is_err());
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stalled_and_garbage_handshakes_do_not_block_other_clients() {
    let ca = Ca::new("test CA");
    let s = Server::tls(&ca, "").await;
    // One connection that never says anything, one that sends garbage.
    let _stalled = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut garbage = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    // The server answers garbage with (at most) an alert and closes the connection.
    let clock = kcle_clock::Clock::system();
    clock
        .timeout_at(
            clock.instant() + Duration::from_secs(10),
            garbage.read_to_end(&mut buf),
        )
        .await
        .expect("server closes the garbage connection")
        .ok();
    assert!(!buf.starts_with(b"HTTP/"), "no HTTP over the TLS port");
    assert_eq!(code(client(&ca).get(s.url("https", "/healthz"))).await, 200);
    // Shutdown does not wait for the stalled handshake's 10 s deadline.
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn min_version_tls13_refuses_tls12_clients() {
    let ca = Ca::new("test CA");
    let s = Server::tls(&ca, "  min_version: TLS13\n").await;
    let tls12 = https_client(&[&ca.der], None, &[&rustls::version::TLS12]);
    assert!(tls12.get(s.url("https", "/healthz")).send().await.is_err());
    let tls13 = https_client(&[&ca.der], None, &[&rustls::version::TLS13]);
    assert_eq!(code(tls13.get(s.url("https", "/healthz"))).await, 200);
    s.stop().await;
}

/// For each client-certificate policy: which clients complete a request.
#[tokio::test(start_paused = true)]
async fn client_auth_types_follow_go_semantics() {
    let ca = Ca::new("test CA");
    let trusted = ca.client("prometheus.example");
    let stranger = self_signed_client("prometheus.example");
    // (policy, no certificate, CA-signed certificate, self-signed certificate)
    let cases = [
        ("RequireAndVerifyClientCert", false, true, false),
        ("VerifyClientCertIfGiven", true, true, false),
        ("RequireAnyClientCert", false, true, true),
        ("RequestClientCert", true, true, true),
        ("NoClientCert", true, true, true),
    ];
    for (policy, none_ok, trusted_ok, stranger_ok) in cases {
        let ca_line = if policy == "NoClientCert" {
            ""
        } else {
            "  client_ca_file: ca.crt\n"
        };
        let s = Server::tls(&ca, &format!("  client_auth_type: {policy}\n{ca_line}")).await;
        for (who, id, want) in [
            ("no certificate", None, none_ok),
            ("CA-signed", Some(&trusted), trusted_ok),
            ("self-signed", Some(&stranger), stranger_ok),
        ] {
            let got =
                status(https_client(&[&ca.der], id, BOTH).get(s.url("https", "/metrics"))).await;
            assert_eq!(
                got.as_ref().ok() == Some(&200),
                want,
                "{policy}, {who}: {got:?}"
            );
        }
        s.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn client_allowed_sans_admits_only_listed_names() {
    let ca = Ca::new("test CA");
    let policy = "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n";
    let sans = "  client_allowed_sans: [prometheus.example, other.example]\n";
    let s = Server::tls(&ca, &format!("{policy}{sans}")).await;
    let listed = ca.client("prometheus.example");
    let unlisted = ca.client("intruder.example");
    let ok = |id| {
        https_client(&[&ca.der], Some(id), BOTH)
            .get(s.url("https", "/metrics"))
            .send()
    };
    assert_eq!(ok(&listed).await.unwrap().status(), 200);
    assert!(
        ok(&unlisted).await.is_err(),
        "a CA-signed certificate with an unlisted SAN"
    );
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn basic_auth_right_wrong_missing_and_open_probes() {
    let ca = Ca::new("test CA");
    let yml = format!(
        "basic_auth_users:\n  prom: '{}'\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
        hash("right")
    );
    let s = Server::tls(&ca, &yml).await;
    let c = client(&ca);
    let get = |path: &str| c.get(s.url("https", path));

    let r = get("/metrics")
        .basic_auth("prom", Some("right"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.text().await.unwrap(), METRICS);
    // Cached now: the second request is answered the same way.
    assert_eq!(
        code(get("/metrics").basic_auth("prom", Some("right"))).await,
        200
    );

    for (what, req) in [
        (
            "wrong password",
            get("/metrics").basic_auth("prom", Some("wrong")),
        ),
        (
            "unknown user",
            get("/metrics").basic_auth("root", Some("right")),
        ),
        ("no credentials", get("/metrics")),
        ("landing page", get("/")),
        ("unknown path", get("/nope")),
        ("reload", c.post(s.url("https", "/-/reload"))),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{what}");
        assert_eq!(r.headers()["www-authenticate"], "Basic", "{what}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{what}");
    }
    assert_eq!(
        status(
            c.post(s.url("https", "/-/reload"))
                .basic_auth("prom", Some("right"))
        )
        .await
        .unwrap(),
        200
    );
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(code(get(probe)).await, 200, "{probe} stays open");
    }
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn basic_auth_without_tls_and_a_changed_password_applies_without_restart() {
    let s = Server::start(
        &format!("basic_auth_users:\n  prom: '{}'\n", hash("first")),
        &[],
    )
    .await;
    kafka_cloud_lag_exporter::providers::http::install_crypto_provider();
    let plain = || reqwest::Client::builder().no_proxy().build().unwrap();
    let metrics = |c: &reqwest::Client, pw: &str| {
        c.get(s.url("http", "/metrics"))
            .basic_auth("prom", Some(pw.to_string()))
    };
    assert_eq!(code(metrics(&plain(), "first")).await, 200);
    assert_eq!(code(metrics(&plain(), "second")).await, 401);

    // A client that keeps its connection open, as Prometheus does.
    let kept = plain();
    assert_eq!(code(metrics(&kept, "first")).await, 200);

    s.replace(
        "web.yml",
        &format!("basic_auth_users:\n  prom: '{}'\n", hash("second")),
    );
    assert_eq!(
        code(metrics(&plain(), "second")).await,
        200,
        "new connection, new password"
    );
    assert_eq!(
        code(metrics(&plain(), "first")).await,
        401,
        "old password refused"
    );
    assert_eq!(
        code(metrics(&kept, "first")).await,
        401,
        "also on an open connection"
    );

    // An invalid change keeps the last good configuration.
    s.replace("web.yml", "basic_auth_users:\n  prom: plaintext\n");
    assert_eq!(code(metrics(&plain(), "second")).await, 200);
    assert_eq!(code(metrics(&plain(), "first")).await, 401);

    // An empty file turns authentication off.
    s.replace("web.yml", "");
    assert_eq!(code(plain().get(s.url("http", "/metrics"))).await, 200);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_renewed_certificate_is_served_on_the_next_connection() {
    let old_ca = Ca::new("old CA");
    let s = Server::tls(&old_ca, "").await;
    assert_eq!(
        code(client(&old_ca).get(s.url("https", "/healthz"))).await,
        200
    );

    // cert-manager style renewal: a new key pair from a new CA, written as new files and
    // pointed to by a new web.yml.
    let new_ca = Ca::new("new CA");
    let new = new_ca.server();
    s.replace("server-2.crt", &new.cert_pem);
    s.replace("server-2.key", &new.key_pem);
    s.replace(
        "web.yml",
        "tls_server_config:\n  cert_file: server-2.crt\n  key_file: server-2.key\n",
    );
    assert_eq!(
        code(client(&new_ca).get(s.url("https", "/healthz"))).await,
        200
    );
    assert!(
        client(&old_ca)
            .get(s.url("https", "/healthz"))
            .send()
            .await
            .is_err()
    );

    // Same file names, new content (the other common renewal).
    let third_ca = Ca::new("third CA");
    let third = third_ca.server();
    s.replace("server-2.key", &third.key_pem);
    s.replace("server-2.crt", &third.cert_pem);
    assert_eq!(
        code(client(&third_ca).get(s.url("https", "/healthz"))).await,
        200
    );
    s.stop().await;
}

#[test]
fn invalid_file_at_startup_names_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(
        &path,
        "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS11\n",
    )
    .unwrap();
    let err = WebConfigSource::load(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}: tls_server_config.min_version: ",
            path.display()
        )),
        "{err}"
    );
    assert!(err.contains("TLS12, TLS13"), "{err}");
}

/// The binary: an invalid web configuration stops `demo` (and the daemon) with status 2
/// before anything listens; `check-config` validates the file too.
#[test]
fn binary_rejects_an_invalid_web_config_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  prom: hunter2\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_kafka-cloud-lag-exporter");
    let web_arg = web.display().to_string();
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .env("WEB_TEST_KEY_ID", "LTAIwebtest")
            .env("WEB_TEST_KEY_SECRET", "not-a-secret")
            .output()
            .expect("binary runs")
    };
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "listen: 127.0.0.1:0\naccounts:\n  - name: a\n    cloud: alibaba\n    region: cn-hangzhou\n    credentials: {id_env: WEB_TEST_KEY_ID, secret_env: WEB_TEST_KEY_SECRET}\n    instances: [{id: i, groups: [g]}]\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let check = [
        "check-config",
        "--skip-credentials",
        "--config.file",
        &config,
        "--web.config.file",
        &web_arg,
    ];
    for args in [
        vec![
            "demo",
            "--web.listen-address",
            "127.0.0.1:0",
            "--web.config.file",
            &web_arg,
        ],
        vec!["--config.file", &config, "--web.config.file", &web_arg],
        check.to_vec(),
    ] {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "{web_arg}: basic_auth_users.prom: not a bcrypt hash"
            )),
            "{args:?}: {err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  prom: '{}'\n", hash("x")),
    )
    .unwrap();
    let out = run(&check);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid (tls=false basic_auth_users=1)"));
}
