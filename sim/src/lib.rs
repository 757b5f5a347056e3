//! A strict simulator of both clouds' management APIs on loopback, for `demo`, the
//! integration tests and the benchmarks.
//!
//! Like the real services it checks signatures, timestamps, nonces and keys, throttles
//! per key and action, pages, and answers failures with the clouds' error codes and body
//! shapes. Faults (5xx, throttling, latency, hangs, malformed bodies) can be injected.
//! Every request is logged so tests can assert on what was sent. The simulator shares
//! only the pure signing functions with the client; `.ci/run` checks both against the
//! clouds' official SDKs.

pub mod alibaba;
pub mod alibaba_sts;
pub mod faults;
pub mod identity;
pub mod metadata;
pub mod tencent;
pub mod tencent_sts;
pub mod world;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use faults::{Fault, FaultRule, Faults};
use kcle_clock::{Clock, unix_millis};
use kcle_cloud::Cloud;
use world::World;

/// A key pair the simulated cloud accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimKey {
    pub id: String,
    pub secret: String,
    /// The STS token required with this key, if it is a temporary key.
    pub token: Option<String>,
}

/// How strict and how fast the simulated clouds are.
#[derive(Clone, Debug)]
pub struct SimSettings {
    pub alibaba_keys: Vec<SimKey>,
    pub tencent_keys: Vec<SimKey>,
    /// Alibaba requests per second per key and action (the real limit is unpublished).
    pub alibaba_rate_limit: f64,
    /// Tencent requests per second per key and action, where not listed in
    /// [`tencent::rate_limit`]; `None` uses the documented limits.
    pub tencent_rate_limit: Option<f64>,
    /// Answer Alibaba lists in the documented odd forms where they apply: a list of one
    /// element as a single object, an empty list as `""`, and `Code` as a string.
    pub alibaba_quirks: bool,
    /// Answer Alibaba in the documented older shapes, without the newer fields:
    /// `GetConsumerProgress` without `state`, the member fields (`MemberId`, `ClientId`,
    /// `ClientIp`), `Accumulate` and `RebalanceInfoList`; `GetConsumerList` without
    /// `Total` and without paging (every group on every page, whatever `CurrentPage`).
    pub alibaba_legacy_answers: bool,
    /// Largest `GetConsumerList` `PageSize` accepted; a larger one is refused with
    /// `InvalidParameter`, as a real service refuses values above its (unpublished) limit.
    pub alibaba_max_page_size: usize,
    /// Keep raw requests (method, URL, headers, body) in the log, for signature dumps.
    pub record_raw: bool,
    /// Most requests kept in the log (oldest dropped first).
    pub log_capacity: usize,
    /// Seed of the random faults.
    pub seed: u64,
    /// The STS and metadata services: OIDC provider, roles, instance roles.
    pub identity: identity::IdentitySettings,
    /// Added to every answer before it is sent (on the simulator's clock), like the
    /// round trip to a real cloud's API.
    pub latency: Duration,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            alibaba_keys: vec![SimKey {
                id: "LTAI5tSimulatorKeyId".into(),
                secret: "sim-alibaba-secret".into(),
                token: None,
            }],
            tencent_keys: vec![SimKey {
                id: "AKIDSimulatorSecretId".into(),
                secret: "sim-tencent-secret".into(),
                token: None,
            }],
            alibaba_rate_limit: 50.0,
            tencent_rate_limit: None,
            alibaba_quirks: false,
            alibaba_legacy_answers: false,
            alibaba_max_page_size: alibaba::DEFAULT_MAX_PAGE_SIZE,
            record_raw: false,
            log_capacity: 100_000,
            seed: 1,
            identity: identity::IdentitySettings::default(),
            latency: Duration::ZERO,
        }
    }
}

/// One HTTP request as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RawRequest {
    pub method: String,
    /// Path and query exactly as sent, e.g. `/?Action=...&Signature=...`.
    pub path_and_query: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as text (both clouds send UTF-8 or nothing).
    pub body: String,
}

impl RawRequest {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(p, _)| p)
    }

    /// The raw query string (empty when there is none).
    pub fn raw_query(&self) -> &str {
        self.path_and_query.split_once('?').map_or("", |(_, q)| q)
    }

    /// Query parameters, percent-decoded (`+` is taken literally, as the clouds do for
    /// RFC 3986 encoded queries), in order. `None` if a name or value is not valid UTF-8.
    pub fn query_pairs(&self) -> Option<Vec<(String, String)>> {
        let q = self.raw_query();
        if q.is_empty() {
            return Some(Vec::new());
        }
        q.split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                let k = percent_encoding::percent_decode_str(k).decode_utf8().ok()?;
                let v = percent_encoding::percent_decode_str(v).decode_utf8().ok()?;
                Some((k.into_owned(), v.into_owned()))
            })
            .collect()
    }
}

/// What a handler answers.
#[derive(Clone, Debug, PartialEq)]
pub struct SimResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long (real time) before answering.
    pub delay: Option<Duration>,
    /// Never answer.
    pub hang: bool,
}

impl SimResponse {
    /// A JSON answer.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        SimResponse {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json;charset=utf-8".into(),
            )],
            body: serde_json::to_vec(value).expect("JSON values serialize"),
            delay: None,
            hang: false,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Applies a timing or body fault to a normal answer: delay, hang, or truncation.
    pub fn with_fault(mut self, fault: &Fault) -> Self {
        match fault {
            Fault::Delay(d) => self.delay = Some(*d),
            Fault::Hang => self.hang = true,
            Fault::Truncated => {
                let keep = (self.body.len() / 2).max(1);
                self.body.truncate(keep);
            }
            Fault::Unconfirmed => {
                // Only the RequestId survives (Alibaba's at the top, Tencent's in Response).
                let id = |v: &serde_json::Value| v.get("RequestId").cloned();
                let answer: serde_json::Value =
                    serde_json::from_slice(&self.body).unwrap_or_default();
                let kept = match (id(&answer), answer.get("Response").and_then(id)) {
                    (Some(r), _) => serde_json::json!({ "RequestId": r }),
                    (None, Some(r)) => serde_json::json!({ "Response": { "RequestId": r } }),
                    (None, None) => serde_json::json!({}),
                };
                self.status = 200;
                self.body = serde_json::to_vec(&kept).expect("JSON values serialize");
            }
            _ => {}
        }
        self
    }
}

/// One logged request and how it was answered.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoggedRequest {
    pub cloud: Cloud,
    pub action: String,
    pub group: Option<String>,
    /// Operation parameters (signing and common parameters left out), values as text.
    pub params: BTreeMap<String, String>,
    /// `ok`, the error code answered, or `fault:<kind>`.
    pub outcome: String,
    /// Simulator clock time of the request, Unix ms.
    pub at_ms: i64,
    /// The request as received, when [`SimSettings::record_raw`] is set.
    pub raw: Option<RawRequest>,
}

/// Whether an action changes state (for "dry run makes no write call" assertions).
pub fn is_write_action(action: &str) -> bool {
    matches!(
        action,
        "UpdateConsumerOffset" | "ModifyGroupOffsets" | "BatchModifyGroupOffsets"
    )
}

struct Bucket {
    tokens: f64,
    at_ms: i64,
}

/// Used nonces: when each was seen, and the same in arrival order for expiry.
type NonceLog = (HashMap<String, i64>, VecDeque<(i64, String)>);

/// Everything the handlers share.
pub struct SimState {
    pub clock: Clock,
    pub settings: SimSettings,
    world: Mutex<World>,
    faults: Mutex<Faults>,
    log: Mutex<VecDeque<LoggedRequest>>,
    counts: Mutex<BTreeMap<(Cloud, String, String), u64>>,
    buckets: Mutex<HashMap<(Cloud, String, String), Bucket>>,
    nonces: Mutex<NonceLog>,
    /// Temporary keys and IMDSv2 tokens issued.
    issued: Mutex<identity::Issued>,
    /// Seeded randomness of issued keys and tokens.
    rng: Mutex<fastrand::Rng>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a used nonce is remembered (Alibaba rejects reuse within its time window).
const NONCE_TTL_MS: i64 = 15 * 60 * 1000;

impl SimState {
    pub fn new(settings: SimSettings, world: World, clock: Clock) -> Self {
        let seed = settings.seed;
        SimState {
            clock,
            settings,
            world: Mutex::new(world),
            faults: Mutex::new(Faults::new(seed)),
            log: Mutex::new(VecDeque::new()),
            counts: Mutex::new(BTreeMap::new()),
            buckets: Mutex::new(HashMap::new()),
            nonces: Mutex::new((HashMap::new(), VecDeque::new())),
            issued: Mutex::new(identity::Issued::default()),
            rng: Mutex::new(fastrand::Rng::with_seed(seed ^ 0x005e_ed1d)),
        }
    }

    /// The simulator's time in Unix ms.
    pub fn now_ms(&self) -> i64 {
        unix_millis(self.clock.now())
    }

    /// Reads or changes the world.
    pub fn world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut lock(&self.world))
    }

    /// The requests per second the simulated cloud allows per key for `action`.
    pub fn rate_limit(&self, cloud: Cloud, action: &str) -> f64 {
        match cloud {
            Cloud::Alibaba => self.settings.alibaba_rate_limit,
            Cloud::Tencent => self
                .settings
                .tencent_rate_limit
                .unwrap_or_else(|| tencent::rate_limit(action)),
        }
    }

    /// The accepted key with this id: a configured one, or a temporary one issued by STS
    /// or a metadata service (expired or not: see [`SimState::key_expired`]).
    pub fn key(&self, cloud: Cloud, id: &str) -> Option<SimKey> {
        let keys = match cloud {
            Cloud::Alibaba => &self.settings.alibaba_keys,
            Cloud::Tencent => &self.settings.tencent_keys,
        };
        keys.iter()
            .find(|k| k.id == id)
            .cloned()
            .or_else(|| lock(&self.issued).get(cloud, id).map(|t| t.key.clone()))
    }

    /// Whether the key with this id is a temporary key that has expired.
    pub fn key_expired(&self, cloud: Cloud, id: &str) -> bool {
        lock(&self.issued)
            .get(cloud, id)
            .is_some_and(|t| t.expires_ms <= self.now_ms())
    }

    /// Issues a temporary key acting as `role`, valid for `lifetime` from now.
    pub fn issue_key(&self, cloud: Cloud, role: &str, lifetime: Duration) -> identity::TempKey {
        let now = self.now_ms();
        let expires = now + lifetime.as_millis() as i64;
        lock(&self.issued).issue(&mut lock(&self.rng), cloud, role, now, expires)
    }

    /// Every temporary key issued (tests check that none of them leaks).
    pub fn issued_keys(&self) -> Vec<identity::TempKey> {
        lock(&self.issued).all()
    }

    /// The simulated instance's role key, if a role is attached.
    pub fn instance_key(&self, cloud: Cloud) -> Option<identity::TempKey> {
        let role = self.settings.identity.cloud(cloud).instance_role.clone()?;
        let lifetime = self.settings.identity.instance_credentials_lifetime;
        let now = self.now_ms();
        Some(lock(&self.issued).instance_key(&mut lock(&self.rng), cloud, &role, now, lifetime))
    }

    /// A new IMDSv2 session token.
    pub fn imds_token(&self, ttl_secs: i64) -> String {
        let now = self.now_ms();
        lock(&self.issued).imds_token(&mut lock(&self.rng), now, ttl_secs)
    }

    /// Whether an IMDSv2 session token is valid now.
    pub fn imds_token_valid(&self, token: &str) -> bool {
        lock(&self.issued).imds_token_valid(token, self.now_ms())
    }

    /// An OIDC token of the simulated issuer for `cloud`'s provider, as kubelet projects
    /// it into a pod, valid for `lifetime` from now.
    pub fn mint_oidc_token(&self, cloud: Cloud, lifetime: Duration) -> String {
        identity::mint_token(
            &self.settings.identity.cloud(cloud).audience,
            self.now_ms().div_euclid(1000),
            lifetime,
        )
    }

    /// Verifies an OIDC token presented to `cloud`'s STS now.
    pub fn verify_oidc_token(&self, cloud: Cloud, token: &str) -> Result<(), identity::TokenError> {
        identity::verify_token(
            token,
            &self.settings.identity.cloud(cloud).audience,
            self.now_ms().div_euclid(1000),
        )
    }

    /// A role of `cloud`'s account by ARN.
    pub fn role(&self, cloud: Cloud, arn: &str) -> Option<identity::SimRole> {
        self.settings
            .identity
            .cloud(cloud)
            .roles
            .iter()
            .find(|r| r.arn == arn)
            .cloned()
    }

    /// Takes one request from the (key, action) bucket of `rate` per second (burst of one
    /// second's worth). `Err` carries how long until a token is free.
    pub fn take_token(
        &self,
        cloud: Cloud,
        key_id: &str,
        action: &str,
        rate: f64,
    ) -> Result<(), Duration> {
        let now = self.now_ms();
        let mut buckets = lock(&self.buckets);
        let b = buckets
            .entry((cloud, key_id.to_string(), action.to_string()))
            .or_insert(Bucket {
                tokens: rate,
                at_ms: now,
            });
        let elapsed = (now - b.at_ms).max(0) as f64 / 1000.0;
        b.tokens = (b.tokens + elapsed * rate).min(rate.max(1.0));
        b.at_ms = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - b.tokens) / rate * 1000.0).ceil() as u64;
            Err(Duration::from_millis(wait.max(1)))
        }
    }

    /// Remembers a signature nonce; `false` if it was used within the window.
    pub fn use_nonce(&self, nonce: &str) -> bool {
        let now = self.now_ms();
        let mut guard = lock(&self.nonces);
        let (seen, order) = &mut *guard;
        while let Some((at, _)) = order.front() {
            if now - *at <= NONCE_TTL_MS {
                break;
            }
            let (_, old) = order.pop_front().expect("front exists");
            seen.remove(&old);
        }
        if seen.contains_key(nonce) {
            return false;
        }
        seen.insert(nonce.to_string(), now);
        order.push_back((now, nonce.to_string()));
        true
    }

    /// The fault to inject for this request, if any.
    pub fn fault(&self, cloud: Cloud, action: &str, group: Option<&str>) -> Option<Fault> {
        lock(&self.faults).pick(cloud, action, group)
    }

    /// Adds a fault rule.
    pub fn inject(&self, rule: FaultRule) {
        lock(&self.faults).push(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// Logs a request.
    pub fn record(&self, entry: LoggedRequest) {
        *lock(&self.counts)
            .entry((entry.cloud, entry.action.clone(), entry.outcome.clone()))
            .or_insert(0) += 1;
        let mut log = lock(&self.log);
        if log.len() >= self.settings.log_capacity {
            log.pop_front();
        }
        log.push_back(entry);
    }

    /// The logged requests, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.log).iter().cloned().collect()
    }

    /// Forgets the logged requests and counts.
    pub fn clear_log(&self) {
        lock(&self.log).clear();
        lock(&self.counts).clear();
    }

    /// Requests answered so far by (cloud, action, outcome); never truncated.
    pub fn counts(&self) -> BTreeMap<(Cloud, String, String), u64> {
        lock(&self.counts).clone()
    }

    /// How many requests of `action` were answered with `outcome` (`None`: any).
    pub fn count(&self, cloud: Cloud, action: &str, outcome: Option<&str>) -> u64 {
        lock(&self.counts)
            .iter()
            .filter(|((c, a, o), _)| *c == cloud && a == action && outcome.is_none_or(|x| x == o))
            .map(|(_, n)| n)
            .sum()
    }
}

/// A running simulator: one listener per cloud's management API, and one per cloud's
/// STS and instance metadata service.
pub struct Simulator {
    state: Arc<SimState>,
    alibaba_addr: SocketAddr,
    tencent_addr: SocketAddr,
    alibaba_sts_addr: SocketAddr,
    tencent_sts_addr: SocketAddr,
    alibaba_metadata_addr: SocketAddr,
    tencent_metadata_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl Simulator {
    /// Starts both clouds' APIs on `127.0.0.1` with ephemeral ports.
    pub async fn start(
        settings: SimSettings,
        world: World,
        clock: Clock,
    ) -> std::io::Result<Simulator> {
        let local = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_on(settings, world, clock, local, local).await
    }

    /// Starts both clouds' APIs on the given addresses (STS and metadata services on
    /// ephemeral ports of the Alibaba address' IP).
    pub async fn start_on(
        settings: SimSettings,
        world: World,
        clock: Clock,
        alibaba: SocketAddr,
        tencent: SocketAddr,
    ) -> std::io::Result<Simulator> {
        let state = Arc::new(SimState::new(settings, world, clock));
        let (shutdown, rx) = watch::channel(false);
        let ali = TcpListener::bind(alibaba).await?;
        let tc = TcpListener::bind(tencent).await?;
        let side = SocketAddr::new(alibaba.ip(), 0);
        let ali_sts = TcpListener::bind(side).await?;
        let tc_sts = TcpListener::bind(side).await?;
        let ali_meta = TcpListener::bind(side).await?;
        let tc_meta = TcpListener::bind(side).await?;
        let sim = Simulator {
            state: state.clone(),
            alibaba_addr: ali.local_addr()?,
            tencent_addr: tc.local_addr()?,
            alibaba_sts_addr: ali_sts.local_addr()?,
            tencent_sts_addr: tc_sts.local_addr()?,
            alibaba_metadata_addr: ali_meta.local_addr()?,
            tencent_metadata_addr: tc_meta.local_addr()?,
            shutdown,
        };
        tokio::spawn(serve(ali, state.clone(), alibaba::handle, rx.clone()));
        tokio::spawn(serve(tc, state.clone(), tencent::handle, rx.clone()));
        tokio::spawn(serve(
            ali_sts,
            state.clone(),
            alibaba_sts::handle,
            rx.clone(),
        ));
        tokio::spawn(serve(
            tc_sts,
            state.clone(),
            tencent_sts::handle,
            rx.clone(),
        ));
        tokio::spawn(serve(
            ali_meta,
            state.clone(),
            metadata::alibaba,
            rx.clone(),
        ));
        tokio::spawn(serve(tc_meta, state, metadata::tencent, rx));
        Ok(sim)
    }

    /// Base URL of the simulated Alibaba endpoint.
    pub fn alibaba_endpoint(&self) -> String {
        format!("http://{}", self.alibaba_addr)
    }

    /// Base URL of the simulated Tencent endpoint.
    pub fn tencent_endpoint(&self) -> String {
        format!("http://{}", self.tencent_addr)
    }

    /// The base URL for a cloud.
    pub fn endpoint(&self, cloud: Cloud) -> String {
        match cloud {
            Cloud::Alibaba => self.alibaba_endpoint(),
            Cloud::Tencent => self.tencent_endpoint(),
        }
    }

    /// Base URL of a cloud's simulated STS.
    pub fn sts_endpoint(&self, cloud: Cloud) -> String {
        match cloud {
            Cloud::Alibaba => format!("http://{}", self.alibaba_sts_addr),
            Cloud::Tencent => format!("http://{}", self.tencent_sts_addr),
        }
    }

    /// Base URL of a cloud's simulated instance metadata service.
    pub fn metadata_endpoint(&self, cloud: Cloud) -> String {
        match cloud {
            Cloud::Alibaba => format!("http://{}", self.alibaba_metadata_addr),
            Cloud::Tencent => format!("http://{}", self.tencent_metadata_addr),
        }
    }

    /// The URL of the simulated `ALIBABA_CLOUD_CREDENTIALS_URI` service.
    pub fn credentials_uri(&self) -> String {
        format!(
            "http://{}{}",
            self.alibaba_metadata_addr,
            metadata::CREDENTIALS_URI_PATH
        )
    }

    /// The shared state: world, faults, request log.
    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

type Handler = fn(&SimState, &RawRequest) -> SimResponse;

async fn serve(
    listener: TcpListener,
    state: Arc<SimState>,
    handler: Handler,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "simulator accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let state = state.clone();
        let rx = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<Incoming>| {
                let state = state.clone();
                let mut rx = rx.clone();
                async move {
                    let raw = match read_request(req).await {
                        Ok(raw) => raw,
                        Err(_) => return Ok::<_, Infallible>(plain(400, "unreadable request")),
                    };
                    let resp = handler(&state, &raw);
                    if resp.hang {
                        let _ = rx.wait_for(|stop| *stop).await;
                        return Ok(plain(503, "simulator shutting down"));
                    }
                    let delay = state.settings.latency + resp.delay.unwrap_or_default();
                    if !delay.is_zero() {
                        state.clock.sleep(delay).await;
                    }
                    let mut builder = hyper::Response::builder().status(resp.status);
                    for (n, v) in &resp.headers {
                        builder = builder.header(n, v);
                    }
                    Ok(builder
                        .body(Full::new(Bytes::from(resp.body)))
                        .unwrap_or_else(|_| plain(500, "bad simulator response")))
                }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
        });
    }
}

fn plain(status: u16, text: &str) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(text.to_string())))
        .expect("static response")
}

async fn read_request(req: hyper::Request<Incoming>) -> Result<RawRequest, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(RawRequest {
        method: parts.method.as_str().to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or("/".to_string(), |pq| pq.as_str().to_string()),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> (Clock, SimState) {
        let clock = Clock::virtual_at_unix(1_700_000_000);
        let s = SimState::new(SimSettings::default(), World::default(), clock.clone());
        (clock, s)
    }

    #[tokio::test(start_paused = true)]
    async fn token_bucket_limits_and_refills() {
        let (clock, s) = state();
        for _ in 0..3 {
            assert!(s.take_token(Cloud::Tencent, "k", "A", 3.0).is_ok());
        }
        let wait = s.take_token(Cloud::Tencent, "k", "A", 3.0).unwrap_err();
        assert!(wait <= Duration::from_millis(334), "{wait:?}");
        assert!(
            s.take_token(Cloud::Tencent, "k", "B", 3.0).is_ok(),
            "buckets are per action"
        );
        tokio::time::advance(Duration::from_millis(400)).await;
        let _ = &clock;
        assert!(s.take_token(Cloud::Tencent, "k", "A", 3.0).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn nonces_are_single_use_within_the_window() {
        let (clock, s) = state();
        assert!(s.use_nonce("n1"));
        assert!(!s.use_nonce("n1"));
        tokio::time::advance(Duration::from_secs(16 * 60)).await;
        let _ = &clock;
        assert!(s.use_nonce("n2"));
        assert!(s.use_nonce("n1"), "expired nonces are forgotten");
    }

    /// Sends one request over a raw connection and returns the answer's status line.
    async fn status_line(addr: SocketAddr) -> String {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request =
            b"GET /?Action=GetInstanceList HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n";
        let mut sent = 0;
        while sent < request.len() {
            stream.writable().await.unwrap();
            match stream.try_write(&request[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("writing: {e}"),
            }
        }
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            stream.readable().await.unwrap();
            match stream.try_read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("reading: {e}"),
            }
        }
        let text = String::from_utf8_lossy(&answer);
        text.lines().next().unwrap_or_default().to_string()
    }

    #[tokio::test(start_paused = true)]
    async fn every_answer_waits_the_configured_latency() {
        for latency in [Duration::ZERO, Duration::from_millis(30)] {
            let clock = Clock::virtual_at_unix(1_700_000_000);
            let settings = SimSettings {
                latency,
                ..SimSettings::default()
            };
            let sim = Simulator::start(settings, World::default(), clock.clone())
                .await
                .unwrap();
            let started = clock.instant();
            let status = status_line(sim.alibaba_addr).await;
            let took = clock.instant() - started;
            assert!(status.starts_with("HTTP/1.1 4"), "unsigned: {status}");
            if latency.is_zero() {
                assert!(took < Duration::from_millis(30), "{took:?}");
            } else {
                assert!(took >= latency, "{took:?}");
            }
        }
    }

    #[test]
    fn query_pairs_decode_rfc3986() {
        let r = RawRequest {
            method: "POST".into(),
            path_and_query: "/?Topic=&Offsets=%5B%7B%22P%22%3A1%7D%5D&A=a%2Bb+c".into(),
            headers: vec![],
            body: String::new(),
        };
        assert_eq!(
            r.query_pairs().unwrap(),
            vec![
                ("Topic".to_string(), String::new()),
                ("Offsets".to_string(), "[{\"P\":1}]".to_string()),
                ("A".to_string(), "a+b+c".to_string()),
            ]
        );
    }
}
