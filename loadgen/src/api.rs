//! A typed client of the HTTP API: accounts and placements (where to connect,
//! with a join ticket). Every request is timed into [`HttpStats`] by endpoint,
//! and a 429 is waited out per its `Retry-After` and retried, a bounded number
//! of times.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::Rng as _;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::stats::{HttpOutcome, HttpStats};
use crate::tls::Trust;

/// Longest wait for one answer. Registration and login hash passwords
/// (argon2id, one per server core at a time), so a burst queues up there.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Sent as `User-Agent`.
const USER_AGENT: &str = concat!("loadgen/", env!("CARGO_PKG_VERSION"));

/// The API's endpoints, as the report names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    Register,
    Login,
    Refresh,
    Matchmake,
    JoinLobby,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Register => "register",
            Endpoint::Login => "login",
            Endpoint::Refresh => "refresh",
            Endpoint::Matchmake => "matchmake",
            Endpoint::JoinLobby => "join_lobby",
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An account's tokens, from register, login or refresh.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds the access token is valid from issue.
    pub expires_in: u64,
    pub token_type: String,
    pub account_id: uuid::Uuid,
}

/// Where to connect and the ticket to present there.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Placement {
    pub node_id: String,
    /// UDP host of the game node (a name or an IP address).
    pub host: String,
    pub port: u16,
    /// Hex SHA-256 of the node's DER leaf certificate.
    pub cert_sha256: String,
    /// Single use; valid for `ticket_expires_in` seconds.
    pub ticket: String,
    pub ticket_expires_in: u64,
    pub mode: Option<String>,
    pub lobby_id: Option<u64>,
}

impl Placement {
    /// Trust that pins the node's certificate by the hash the API returned.
    pub fn trust(&self) -> anyhow::Result<Trust> {
        Trust::sha256_hex(&self.cert_sha256)
            .with_context(|| format!("the placement's cert_sha256 for {}", self.node_id))
    }

    /// The node's UDP address (resolving `host` if it is a name).
    pub async fn socket_addr(&self) -> std::io::Result<SocketAddr> {
        let mut addrs = tokio::net::lookup_host((self.host.as_str(), self.port)).await?;
        addrs.next().ok_or_else(|| std::io::Error::other(format!("{} has no address", self.host)))
    }
}

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The API answered with an error status. `code` is the problem's stable
    /// code (`USERNAME_TAKEN`, `RATE_LIMITED`, ...), or `HTTP_<status>` when
    /// the body is not a problem document (a proxy's error page, say).
    #[error("{endpoint}: HTTP {status} {code}: {detail}")]
    Status { endpoint: Endpoint, status: StatusCode, code: String, detail: String, retry_after: Option<Duration> },
    /// No answer: refused connection, timeout, broken body.
    #[error("{endpoint}: {message}")]
    Transport { endpoint: Endpoint, message: String },
    /// A success status whose body is not what the endpoint returns.
    #[error("{endpoint}: unexpected answer: {message}")]
    Decode { endpoint: Endpoint, message: String },
}

impl ApiError {
    pub fn endpoint(&self) -> Endpoint {
        match self {
            ApiError::Status { endpoint, .. }
            | ApiError::Transport { endpoint, .. }
            | ApiError::Decode { endpoint, .. } => *endpoint,
        }
    }

    /// The HTTP status, if the API answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The problem code, if the API answered with an error status.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    /// A short, stable label for counting errors by kind:
    /// `http:<endpoint>:<CODE>`, `http:<endpoint>:transport` or `http:<endpoint>:decode`.
    pub fn kind(&self) -> String {
        match self {
            ApiError::Status { endpoint, code, .. } => format!("http:{endpoint}:{code}"),
            ApiError::Transport { endpoint, .. } => format!("http:{endpoint}:transport"),
            ApiError::Decode { endpoint, .. } => format!("http:{endpoint}:decode"),
        }
    }
}

/// What to do about 429 Too Many Requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after a 429 before its error is returned.
    pub max_retries: u32,
    /// Cap on one wait, whatever `Retry-After` asks.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy { max_retries: 5, max_wait: Duration::from_secs(10) }
    }
}

/// The problem document's fields this client uses (RFC 9457 plus `code`).
#[derive(Debug, Deserialize)]
struct Problem {
    code: Option<String>,
    detail: Option<String>,
    title: Option<String>,
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Credentials<'a> {
    username: &'a str,
    password: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
}

/// A client of one API base URL. Cheap to clone: clones share the connection
/// pool and the statistics.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    stats: Arc<HttpStats>,
    retry: RetryPolicy,
    /// Set once a registration found its name taken; see [`ApiClient::register_or_login`].
    login_first: Arc<AtomicBool>,
}

impl ApiClient {
    /// A client of the API at `base_url` (e.g. `http://127.0.0.1:8080`; a
    /// path prefix is kept), with its own statistics and the default retry policy.
    pub fn new(base_url: &str) -> anyhow::Result<ApiClient> {
        let mut base = Url::parse(base_url).with_context(|| format!("the API URL {base_url:?}"))?;
        anyhow::ensure!(matches!(base.scheme(), "http" | "https"), "the API URL {base_url:?} is not http(s)");
        // `Url::join` replaces the last path segment unless the path ends in '/'.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        Ok(ApiClient {
            http,
            base,
            stats: Arc::new(HttpStats::default()),
            retry: RetryPolicy::default(),
            login_first: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Records into `stats` (a run's shared statistics) instead.
    pub fn with_stats(mut self, stats: Arc<HttpStats>) -> ApiClient {
        self.stats = stats;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> ApiClient {
        self.retry = retry;
        self
    }

    pub fn stats(&self) -> &Arc<HttpStats> {
        &self.stats
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Whether the API answers at all (any status will do), so a run against
    /// a wrong URL stops at once instead of failing every bot. Not counted.
    pub async fn check_reachable(&self) -> anyhow::Result<()> {
        let response = self.http.get(self.base.clone()).send().await.map_err(|e| anyhow::anyhow!(describe(&e)))?;
        tracing::debug!(status = %response.status(), url = %self.base, "the API answers");
        Ok(())
    }

    /// `POST /v1/auth/register`; a taken name fails with code `USERNAME_TAKEN` (409).
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<Tokens, ApiError> {
        let body = Credentials { username, password, display_name };
        self.post(Endpoint::Register, "v1/auth/register", None, Some(&body)).await
    }

    /// `POST /v1/auth/login`; wrong credentials fail with `INVALID_CREDENTIALS` (401).
    pub async fn login(&self, username: &str, password: &str) -> Result<Tokens, ApiError> {
        let body = Credentials { username, password, display_name: None };
        self.post(Endpoint::Login, "v1/auth/login", None, Some(&body)).await
    }

    /// Registers, or logs in if the name is taken (by an earlier run with the
    /// same names, or by itself when an answer was lost). Once a name turned
    /// out taken, later calls on this client and its clones log in first and
    /// register only unknown names: a rerun with the same names would
    /// otherwise cost the API two password hashes per account.
    pub async fn register_or_login(&self, username: &str, password: &str) -> Result<Tokens, ApiError> {
        if self.login_first.load(Relaxed) {
            match self.login(username, password).await {
                Err(e) if e.code() == Some("INVALID_CREDENTIALS") => {}
                other => return other,
            }
            return self.register(username, password, None).await;
        }
        match self.register(username, password, None).await {
            Err(e) if e.code() == Some("USERNAME_TAKEN") => {
                self.login_first.store(true, Relaxed);
                self.login(username, password).await
            }
            other => other,
        }
    }

    /// `POST /v1/auth/refresh`: new tokens for a refresh token, which is used up.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, ApiError> {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        self.post(Endpoint::Refresh, "v1/auth/refresh", None, Some(&body)).await
    }

    /// `POST /v1/matchmake`: a place in a lobby of `mode`.
    pub async fn matchmake(&self, access_token: &str, mode: &str) -> Result<Placement, ApiError> {
        let body = serde_json::json!({ "mode": mode });
        self.post(Endpoint::Matchmake, "v1/matchmake", Some(access_token), Some(&body)).await
    }

    /// `POST /v1/lobbies/{id}/join`: a place in that lobby.
    pub async fn join_lobby(&self, access_token: &str, lobby_id: u64) -> Result<Placement, ApiError> {
        let path = format!("v1/lobbies/{lobby_id}/join");
        self.post::<Placement, ()>(Endpoint::JoinLobby, &path, Some(access_token), None).await
    }

    /// One call, retried after each 429 within the retry policy.
    async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        endpoint: Endpoint,
        path: &str,
        bearer: Option<&str>,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let url = self.base.join(path).map_err(|e| ApiError::Transport { endpoint, message: e.to_string() })?;
        let mut retries = 0;
        loop {
            let mut request = self.http.post(url.clone());
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            // Endpoints without a body still get `{}`: the API takes JSON on every POST.
            request = match body {
                Some(body) => request.json(body),
                None => request.json(&serde_json::json!({})),
            };
            let started = Instant::now();
            let result = attempt(endpoint, request).await;
            let outcome = match &result {
                Ok(_) => HttpOutcome::Ok,
                Err(e) if e.status() == Some(StatusCode::TOO_MANY_REQUESTS) => HttpOutcome::RateLimited,
                Err(_) => HttpOutcome::Failed,
            };
            self.stats.record(endpoint.name(), started.elapsed(), outcome);
            match result {
                Err(ApiError::Status { status: StatusCode::TOO_MANY_REQUESTS, retry_after, .. })
                    if retries < self.retry.max_retries =>
                {
                    retries += 1;
                    tokio::time::sleep(retry_wait(retry_after, self.retry.max_wait)).await;
                }
                other => return other,
            }
        }
    }
}

/// Sends one request and reads its answer.
async fn attempt<T: DeserializeOwned>(endpoint: Endpoint, request: reqwest::RequestBuilder) -> Result<T, ApiError> {
    let transport = |e: reqwest::Error| ApiError::Transport { endpoint, message: describe(&e) };
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let retry_after = retry_after_header(response.headers());
    let bytes = response.bytes().await.map_err(transport)?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode { endpoint, message: e.to_string() });
    }
    Err(error_answer(endpoint, status, retry_after, &bytes))
}

/// The error for a non-success answer, from its problem document if it is one.
fn error_answer(endpoint: Endpoint, status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> ApiError {
    let problem = serde_json::from_slice::<Problem>(body).ok();
    let problem = problem.as_ref();
    let code = problem.and_then(|p| p.code.clone()).unwrap_or_else(|| format!("HTTP_{}", status.as_u16()));
    let detail = problem
        .and_then(|p| p.detail.clone().or_else(|| p.title.clone()))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    // The header rules; the body's copy covers a proxy that strips headers.
    let retry_after = retry_after.or_else(|| problem.and_then(|p| p.retry_after).map(Duration::from_secs));
    ApiError::Status { endpoint, status, code, detail, retry_after }
}

/// `Retry-After` in seconds (the API never sends the HTTP-date form).
fn retry_after_header(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The wait before retrying a 429: what the server asked (one second if it
/// did not say), capped, plus up to a quarter more at random so the bots it
/// refused together do not all come back in the same instant.
fn retry_wait(asked: Option<Duration>, cap: Duration) -> Duration {
    let base = asked.unwrap_or(Duration::from_secs(1)).min(cap);
    base + base.mul_f64(rand::rng().random_range(0.0..0.25))
}

/// reqwest's top-level message hides the cause ("error sending request");
/// the chain says what happened ("connection refused").
fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_become_typed_errors() {
        let body = br#"{"type":"https://trespasser.dev/errors/rate-limited","title":"Too Many Requests","status":429,
            "code":"RATE_LIMITED","detail":"too many requests; slow down","retry_after":3}"#;
        let e = error_answer(Endpoint::Matchmake, StatusCode::TOO_MANY_REQUESTS, None, body);
        assert_eq!(e.status(), Some(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(e.code(), Some("RATE_LIMITED"));
        assert_eq!(e.kind(), "http:matchmake:RATE_LIMITED");
        assert!(matches!(e, ApiError::Status { retry_after: Some(d), .. } if d == Duration::from_secs(3)));
        // The header wins over the body.
        let e = error_answer(Endpoint::Matchmake, StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(1)), body);
        assert!(matches!(e, ApiError::Status { retry_after: Some(d), .. } if d == Duration::from_secs(1)));

        let e = error_answer(Endpoint::Register, StatusCode::BAD_GATEWAY, None, b"<html>bad gateway</html>");
        assert_eq!((e.code(), e.kind().as_str()), (Some("HTTP_502"), "http:register:HTTP_502"));
        assert!(e.to_string().contains("bad gateway"));
        let e = ApiError::Transport { endpoint: Endpoint::JoinLobby, message: "refused".into() };
        assert_eq!((e.status(), e.code(), e.kind().as_str()), (None, None, "http:join_lobby:transport"));
    }

    #[test]
    fn retry_waits_follow_retry_after_within_the_cap() {
        for _ in 0..100 {
            let w = retry_wait(Some(Duration::from_secs(2)), Duration::from_secs(10));
            assert!(w >= Duration::from_secs(2) && w < Duration::from_millis(2500), "{w:?}");
            let w = retry_wait(Some(Duration::from_secs(60)), Duration::from_secs(10));
            assert!(w >= Duration::from_secs(10) && w < Duration::from_millis(12_500), "{w:?}");
            assert!(retry_wait(None, Duration::from_secs(10)) >= Duration::from_secs(1));
        }
        let mut h = HeaderMap::new();
        assert_eq!(retry_after_header(&h), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after_header(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after_header(&h), None);
    }

    #[test]
    fn base_urls_keep_their_path_prefix() {
        let api = ApiClient::new("http://127.0.0.1:8080").unwrap();
        assert_eq!(api.base_url().join("v1/matchmake").unwrap().as_str(), "http://127.0.0.1:8080/v1/matchmake");
        let api = ApiClient::new("https://games.example/api").unwrap();
        assert_eq!(api.base_url().join("v1/matchmake").unwrap().as_str(), "https://games.example/api/v1/matchmake");
        assert!(ApiClient::new("127.0.0.1:8080").is_err());
        assert!(ApiClient::new("ftp://example").is_err());
    }

    #[test]
    fn placements_parse_and_pin_the_certificate() {
        let hash = "ab".repeat(32);
        let json = format!(
            r#"{{"node_id":"local","host":"127.0.0.1","port":4433,"cert_sha256":"{hash}","ticket":"t",
                "ticket_expires_in":30,"mode":"deathmatch","lobby_id":null}}"#
        );
        let p: Placement = serde_json::from_str(&json).unwrap();
        assert_eq!((p.port, p.lobby_id, p.mode.as_deref()), (4433, None, Some("deathmatch")));
        assert_eq!(p.trust().unwrap(), Trust::Sha256([0xab; 32]));
        let bad = Placement { cert_sha256: String::new(), ..p };
        assert!(bad.trust().is_err(), "an empty hash pins nothing and is refused");
    }

    /// A one-connection-per-request HTTP/1.1 server answering canned
    /// responses in order, and recording each request's head.
    async fn canned(responses: Vec<String>) -> (String, tokio::task::JoinHandle<Vec<String>>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut heads = Vec::new();
            for response in responses {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and a body of Content-Length bytes.
                loop {
                    let n = sock.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len || n == 0 {
                            heads.push(text);
                            break;
                        }
                    }
                }
                sock.write_all(response.as_bytes()).await.unwrap();
                sock.shutdown().await.unwrap();
            }
            heads
        });
        (url, task)
    }

    fn answer(status: &str, headers: &str, body: &str) -> String {
        format!("HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {}\r\n{headers}\r\n{body}", body.len())
    }

    const TOKENS: &str = r#"{"access_token":"a","refresh_token":"r","expires_in":900,"token_type":"Bearer",
        "account_id":"00000000-0000-0000-0000-000000000001"}"#;

    #[tokio::test]
    async fn rate_limits_are_waited_out_and_counted() {
        let limited = r#"{"code":"RATE_LIMITED","detail":"slow down","status":429}"#;
        let (url, server) = canned(vec![
            answer("429 Too Many Requests", "retry-after: 1\r\ncontent-type: application/problem+json\r\n", limited),
            answer("429 Too Many Requests", "retry-after: 1\r\n", limited),
            answer("201 Created", "content-type: application/json\r\n", TOKENS),
        ])
        .await;
        let api = ApiClient::new(&url)
            .unwrap()
            .with_retry(RetryPolicy { max_retries: 2, max_wait: Duration::from_millis(20) });
        let tokens = api.register("bot_1", "a long password", None).await.unwrap();
        assert_eq!((tokens.access_token.as_str(), tokens.expires_in), ("a", 900));
        let heads = server.await.unwrap();
        assert!(heads.iter().all(|h| h.starts_with("POST /v1/auth/register HTTP/1.1")), "{heads:?}");
        assert!(heads[0].contains(r#""username":"bot_1""#) && !heads[0].contains("display_name"));
        let r = &api.stats().report()["register"];
        assert_eq!((r.count, r.rate_limited, r.errors), (3, 2, 0));

        // Out of retries: the 429 itself comes back.
        let (url, _server) = canned(vec![answer("429 Too Many Requests", "retry-after: 1\r\n", limited); 2]).await;
        let api = ApiClient::new(&url)
            .unwrap()
            .with_retry(RetryPolicy { max_retries: 1, max_wait: Duration::from_millis(20) });
        let e = api.matchmake("token", "deathmatch").await.unwrap_err();
        assert_eq!((e.status(), e.code()), (Some(StatusCode::TOO_MANY_REQUESTS), Some("RATE_LIMITED")));
        assert_eq!(api.stats().report()["matchmake"].rate_limited, 2);
    }

    #[tokio::test]
    async fn a_taken_name_logs_in_and_tokens_are_sent_as_bearer() {
        let taken = r#"{"code":"USERNAME_TAKEN","detail":"taken","status":409}"#;
        let placement = format!(
            r#"{{"node_id":"local","host":"127.0.0.1","port":4433,"cert_sha256":"{}","ticket":"t1",
                "ticket_expires_in":30,"mode":null,"lobby_id":7}}"#,
            "00".repeat(32)
        );
        let unknown = r#"{"code":"INVALID_CREDENTIALS","detail":"wrong username or password"}"#;
        let (url, server) = canned(vec![
            answer("409 Conflict", "content-type: application/problem+json\r\n", taken),
            answer("200 OK", "", TOKENS),
            answer("200 OK", "", &placement),
            answer("401 Unauthorized", "", r#"{"code":"INVALID_TOKEN","detail":"expired"}"#),
            // After a taken name, the next account logs in first...
            answer("200 OK", "", TOKENS),
            // ...and registers only when the name is unknown.
            answer("401 Unauthorized", "", unknown),
            answer("201 Created", "", TOKENS),
        ])
        .await;
        let api = ApiClient::new(&url).unwrap();
        let tokens = api.register_or_login("bot_2", "a long password").await.unwrap();
        let p = api.join_lobby(&tokens.access_token, 7).await.unwrap();
        assert_eq!((p.lobby_id, p.ticket.as_str()), (Some(7), "t1"));
        let e = api.matchmake("stale", "deathmatch").await.unwrap_err();
        assert_eq!((e.status(), e.kind().as_str()), (Some(StatusCode::UNAUTHORIZED), "http:matchmake:INVALID_TOKEN"));
        let clone = api.clone();
        clone.register_or_login("bot_3", "a long password").await.unwrap();
        clone.register_or_login("bot_4", "a long password").await.unwrap();

        let heads = server.await.unwrap();
        let paths: Vec<_> = heads.iter().map(|h| h.split(' ').nth(1).unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/v1/auth/register",
                "/v1/auth/login",
                "/v1/lobbies/7/join",
                "/v1/matchmake",
                "/v1/auth/login",
                "/v1/auth/login",
                "/v1/auth/register"
            ]
        );
        assert!(heads[2].contains("authorization: Bearer a"));
        assert!(heads[3].contains(r#"{"mode":"deathmatch"}"#) && heads[3].contains("authorization: Bearer stale"));
        let report = api.stats().report();
        let counts: Vec<_> = report.iter().map(|(k, v)| (k.as_str(), v.count, v.errors)).collect();
        assert_eq!(counts, [("join_lobby", 1, 0), ("login", 3, 1), ("matchmake", 1, 1), ("register", 2, 1)]);
    }
}
