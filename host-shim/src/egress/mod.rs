//! Policed outbound HTTP for integrations (outgoing webhooks, slash commands, actions, dialogs).
//! Every address dialled, including each redirect hop, passes `policy::Policy` first.

pub mod policy;

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderName, HeaderValue};
use url::{Host, Url};

pub use policy::Policy;

const MAX_REDIRECTS: usize = 10;
const TIMEOUT_SETTING: &str = "ServiceSettings.OutgoingIntegrationRequestsTimeout";

pub struct EgressConfig {
    /// ServiceSettings.AllowedUntrustedInternalConnections: whitespace/comma separated host names, IPs, CIDRs.
    pub allowed_untrusted_internal: String,
    /// OutgoingIntegrationRequestsTimeout (default 30 s).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_response_bytes: usize,
    /// The shim's own listen addresses: refused like private ones.
    pub own_addresses: Vec<IpAddr>,
    pub user_agent: String,
}

impl Default for EgressConfig {
    /// Mattermost's defaults (spec §1, §2.7).
    fn default() -> Self {
        EgressConfig {
            allowed_untrusted_internal: String::new(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(3),
            max_response_bytes: 1 << 20,
            own_addresses: Vec::new(),
            user_agent: "Mattermost-Bot/1.1".to_string(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Overrides `EgressConfig::timeout` for this request.
    pub timeout: Option<Duration>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// At most `max_response_bytes`.
    pub body: Vec<u8>,
    /// The server sent more than `max_response_bytes`; the rest was not read.
    pub truncated: bool,
    /// From sending the request to the end of the body, for delivery logs.
    pub elapsed: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EgressError {
    /// The address policy refused a target (first hop or a redirect hop).
    Refused(String),
    /// Unparseable URL or a scheme other than http/https.
    InvalidUrl(String),
    /// Overall or connect timeout.
    Timeout(String),
    /// Name resolution or TCP/TLS connection failure.
    Connect(String),
    Other(String),
}

impl fmt::Display for EgressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EgressError::Refused(m)
            | EgressError::InvalidUrl(m)
            | EgressError::Timeout(m)
            | EgressError::Connect(m)
            | EgressError::Other(m) => f.write_str(m),
        }
    }
}

impl StdError for EgressError {}

/// Errors our resolver and redirect policy hand to reqwest; recovered afterwards by walking the
/// error's source chain, so the caller sees our text instead of reqwest's generic wrapper.
#[derive(Debug)]
enum Hook {
    Refused(String),
    Lookup(String),
    TooManyRedirects,
    BadScheme(String),
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hook::Refused(m) | Hook::Lookup(m) => f.write_str(m),
            Hook::TooManyRedirects => write!(f, "too many redirects (more than {MAX_REDIRECTS})"),
            Hook::BadScheme(u) => write!(f, "redirect to a non-http(s) URL refused: {u}"),
        }
    }
}

impl StdError for Hook {}

/// Resolves once and hands reqwest only the addresses that passed the policy, so there is no
/// second lookup that DNS rebinding could answer differently.
struct CheckedResolver {
    policy: Arc<Policy>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            // `?` boxes the Hook itself (not a Box<Hook>), so classify() can downcast it.
            let addrs = resolve_checked(&policy, &host).await?;
            let addrs: Addrs = Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Looks `host` up and keeps the addresses the policy accepts; refuses when none is left.
async fn resolve_checked(policy: &Policy, host: &str) -> Result<Vec<IpAddr>, Hook> {
    let found = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| Hook::Lookup(format!("could not resolve host name {host}: {e}")))?;
    let mut passed = Vec::new();
    let mut first_refusal = None;
    for sa in found {
        let ip = sa.ip();
        if passed.contains(&ip) {
            continue;
        }
        match policy.check_ip(host, ip) {
            Ok(()) => passed.push(ip),
            Err(why) => {
                tracing::debug!(host, %ip, "egress: skipping refused address");
                first_refusal.get_or_insert(why);
            }
        }
    }
    if !passed.is_empty() {
        return Ok(passed);
    }
    Err(match first_refusal {
        Some(why) => Hook::Refused(why),
        None => Hook::Lookup(format!("could not resolve host name {host}: no addresses")),
    })
}

/// The IP a URL names literally, if any. Such hosts never reach the resolver (hyper dials them
/// directly), so they are checked here, for the first hop and every redirect.
fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

fn check_literal(policy: &Policy, url: &Url) -> Result<(), String> {
    match literal_ip(url) {
        Some(ip) => policy.check_ip(&ip.to_string(), ip),
        None => Ok(()),
    }
}

#[derive(Clone)]
pub struct Egress {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    policy: Arc<Policy>,
    timeout: Duration,
    connect_timeout: Duration,
    max_response_bytes: usize,
}

impl Egress {
    pub fn new(config: EgressConfig) -> Result<Egress, String> {
        // reqwest is built without a bundled provider; Err only means one is already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let policy = Arc::new(Policy::new(
            &config.allowed_untrusted_internal,
            &config.own_addresses,
        ));
        let redirect_policy = policy.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            // previous() holds the original URL plus every hop followed so far.
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Hook::TooManyRedirects);
            }
            let next = attempt.url();
            if next.scheme() != "http" && next.scheme() != "https" {
                let shown = next.to_string();
                return attempt.error(Hook::BadScheme(shown));
            }
            match check_literal(&redirect_policy, next) {
                Ok(()) => attempt.follow(),
                Err(why) => attempt.error(Hook::Refused(why)),
            }
        });
        let user_agent = HeaderValue::from_str(&config.user_agent)
            .map_err(|e| format!("invalid user agent {:?}: {e}", config.user_agent))?;
        let client = reqwest::Client::builder()
            .dns_resolver(CheckedResolver {
                policy: policy.clone(),
            })
            .redirect(redirects)
            // A proxy would do its own resolution and dial whatever it liked.
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .user_agent(user_agent)
            .build()
            .map_err(|e| format!("could not build the outbound HTTP client: {}", chain(&e)))?;
        Ok(Egress {
            inner: Arc::new(Inner {
                client,
                policy,
                timeout: config.timeout,
                connect_timeout: config.connect_timeout,
                max_response_bytes: config.max_response_bytes,
            }),
        })
    }

    pub async fn send(&self, req: OutboundRequest) -> Result<OutboundResponse, EgressError> {
        let url = Url::parse(&req.url)
            .map_err(|e| EgressError::InvalidUrl(format!("invalid URL {:?}: {e}", req.url)))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(EgressError::InvalidUrl(format!(
                "invalid URL {:?}: only http and https are allowed",
                req.url
            )));
        }
        if url.host().is_none() {
            return Err(EgressError::InvalidUrl(format!(
                "invalid URL {:?}: no host",
                req.url
            )));
        }
        check_literal(&self.inner.policy, &url).map_err(EgressError::Refused)?;

        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| EgressError::Other(format!("invalid HTTP method {:?}", req.method)))?;
        let mut request = reqwest::Request::new(method, url.clone());
        for (name, value) in &req.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| EgressError::Other(format!("invalid header name {name:?}")))?;
            let v = HeaderValue::from_str(value)
                .map_err(|_| EgressError::Other(format!("invalid value for header {name}")))?;
            request.headers_mut().append(n, v);
        }
        *request.body_mut() = Some(req.body.into());

        let limit = req.timeout.unwrap_or(self.inner.timeout);
        // One deadline over connect, redirects and body, as Go's http.Client.Timeout does.
        let started = std::time::Instant::now();
        match tokio::time::timeout(limit, self.exchange(request)).await {
            Ok(result) => result.map(|r| OutboundResponse {
                elapsed: started.elapsed(),
                ..r
            }),
            Err(_) => Err(EgressError::Timeout(format!(
                "request to {} timed out after {} ({TIMEOUT_SETTING})",
                redact(&url),
                show_duration(limit)
            ))),
        }
    }

    /// All concurrently; results in request order.
    pub async fn send_all(
        &self,
        reqs: Vec<OutboundRequest>,
    ) -> Vec<Result<OutboundResponse, EgressError>> {
        futures::future::join_all(reqs.into_iter().map(|r| self.send(r))).await
    }

    async fn exchange(&self, request: reqwest::Request) -> Result<OutboundResponse, EgressError> {
        let first_url = request.url().clone();
        let mut resp = self
            .inner
            .client
            .execute(request)
            .await
            .map_err(|e| self.classify(&e, &first_url))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let cap = self.inner.max_response_bytes;
        let final_url = resp.url().clone();
        let mut body = Vec::new();
        let mut truncated = false;
        // Chunk by chunk so that at most one chunk beyond the cap is ever held.
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.classify(&e, &final_url))?
        {
            let room = cap - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(OutboundResponse {
            status,
            headers,
            body,
            truncated,
            elapsed: Duration::ZERO,
        })
    }

    /// Turns a reqwest error into our error, preferring the text our hooks put in its chain.
    fn classify(&self, err: &reqwest::Error, fallback: &Url) -> EgressError {
        let url = redact(err.url().unwrap_or(fallback));
        let mut source: Option<&(dyn StdError + 'static)> = Some(err);
        let mut io_kind = None;
        while let Some(e) = source {
            if let Some(hook) = e.downcast_ref::<Hook>() {
                return match hook {
                    Hook::Refused(m) => EgressError::Refused(m.clone()),
                    Hook::Lookup(m) => EgressError::Connect(m.clone()),
                    Hook::TooManyRedirects | Hook::BadScheme(_) => {
                        EgressError::Other(format!("request to {url} failed: {hook}"))
                    }
                };
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                io_kind.get_or_insert(io.kind());
            }
            source = e.source();
        }
        let detail = chain(err);
        if err.is_connect() {
            if err.is_timeout() || io_kind == Some(std::io::ErrorKind::TimedOut) {
                return EgressError::Timeout(format!(
                    "could not connect to {url} within the connect timeout of {}",
                    show_duration(self.inner.connect_timeout)
                ));
            }
            if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
                return EgressError::Connect(format!("connection refused by {url}"));
            }
            return EgressError::Connect(format!("could not connect to {url}: {detail}"));
        }
        if err.is_timeout() {
            return EgressError::Timeout(format!("request to {url} timed out: {detail}"));
        }
        if err.is_body() || err.is_decode() {
            return EgressError::Other(format!("error reading the response from {url}: {detail}"));
        }
        EgressError::Other(format!("request to {url} failed: {detail}"))
    }
}

/// The whole source chain on one line; reqwest's own Display shows only the outermost layer.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        // Some layers repeat their cause in their own text; don't print it twice.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

/// The URL without credentials or query (tokens often ride there), for error texts and logs.
fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn show_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    use std::time::Instant;
    use tokio::sync::{Notify, oneshot};

    /// A loopback axum server; `stop` ends it and waits for its task, releasing slow handlers.
    struct TestServer {
        addr: SocketAddr,
        stop: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<()>,
        release: Arc<Notify>,
    }

    impl TestServer {
        async fn start(bind: &str, routes: impl FnOnce(SocketAddr, Arc<Notify>) -> Router) -> Self {
            let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let release = Arc::new(Notify::new());
            let app = routes(addr, release.clone());
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
            TestServer {
                addr,
                stop,
                task,
                release,
            }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        async fn stop(self) {
            self.release.notify_waiters();
            let _ = self.stop.send(());
            tokio::time::timeout(Duration::from_secs(5), self.task)
                .await
                .expect("server did not stop")
                .unwrap();
        }
    }

    fn found(location: String) -> (StatusCode, [(&'static str, String); 1]) {
        (StatusCode::FOUND, [("location", location)])
    }

    fn routes(addr: SocketAddr, release: Arc<Notify>) -> Router {
        let port = addr.port();
        Router::new()
            .route(
                "/echo",
                post(|headers: HeaderMap, body: Bytes| async move {
                    let seen = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    (
                        StatusCode::CREATED,
                        [
                            ("x-seen-ua", seen("user-agent")),
                            ("x-seen-test", seen("x-test")),
                            ("x-seen-type", seen("content-type")),
                        ],
                        body,
                    )
                }),
            )
            .route("/ok", get(|| async { "ok" }))
            .route("/redirect-ok", get(|| async { found("/ok".to_string()) }))
            .route(
                "/redirect-v6",
                get(move || async move { found(format!("http://[::1]:{port}/ok")) }),
            )
            .route(
                "/redirect-private",
                get(|| async { found("http://10.0.0.1/ok".to_string()) }),
            )
            .route(
                "/redirect-decimal",
                get(move || async move { found(format!("http://2130706433:{port}/ok")) }),
            )
            .route(
                "/redirect-localhost",
                get(move || async move { found(format!("http://localhost:{port}/ok")) }),
            )
            .route(
                "/redirect-ftp",
                get(|| async { found("ftp://example.com/".to_string()) }),
            )
            .route("/loop", get(|| async { found("/loop".to_string()) }))
            .route("/big", get(|| async { vec![b'x'; 2 << 20] }))
            .route("/exact", get(|| async { vec![b'y'; 1 << 20] }))
            .route(
                "/slow",
                get(move || async move {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                        _ = release.notified() => {}
                    }
                    "late"
                }),
            )
            .route(
                "/sleep/{i}",
                get(|Path(i): Path<u32>| async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    i.to_string()
                }),
            )
    }

    fn egress(allowed: &str) -> Egress {
        Egress::new(EgressConfig {
            allowed_untrusted_internal: allowed.to_string(),
            ..EgressConfig::default()
        })
        .unwrap()
    }

    fn get_req(url: &str) -> OutboundRequest {
        OutboundRequest {
            method: "GET".into(),
            url: url.into(),
            ..OutboundRequest::default()
        }
    }

    #[test]
    fn egress_is_cheap_shared_state() {
        fn assert_traits<T: Clone + Send + Sync + 'static>() {}
        assert_traits::<Egress>();
        let d = EgressConfig::default();
        assert_eq!(d.timeout, Duration::from_secs(30));
        assert_eq!(d.connect_timeout, Duration::from_secs(3));
        assert_eq!(d.max_response_bytes, 1_048_576);
        assert_eq!(d.user_agent, "Mattermost-Bot/1.1");
    }

    #[tokio::test]
    async fn refused_urls() {
        let e = egress("");
        let table: &[(&str, &str)] = &[
            ("http://127.0.0.1/", "127.0.0.1 (loopback)"),
            ("http://2130706433/", "127.0.0.1 (loopback)"),
            ("http://0177.0.0.1/", "127.0.0.1 (loopback)"),
            ("http://0x7f.0.0.1/", "127.0.0.1 (loopback)"),
            ("http://0x7f000001/", "127.0.0.1 (loopback)"),
            ("http://017700000001/", "127.0.0.1 (loopback)"),
            ("http://127.1/", "127.0.0.1 (loopback)"),
            ("http://3232235521/", "192.168.0.1 (private network)"),
            ("http://012.0.0.1:8080/", "10.0.0.1 (private network)"),
            ("http://0/", "0.0.0.0 (unspecified"),
            ("https://0.0.0.0/", "unspecified"),
            ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
            ("http://0xa9fea9fe/", "169.254.169.254 (cloud metadata"),
            ("http://[fd00:ec2::254]/", "cloud metadata"),
            ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
            ("http://[64:ff9b::a9fe:a9fe]/", "cloud metadata"),
            ("http://[::1]:8065/", "::1 (loopback)"),
            ("http://[::]/", "unspecified"),
            (
                "http://[::ffff:127.0.0.1]/",
                "IPv4-mapped form of 127.0.0.1",
            ),
            ("http://[::ffff:7f00:1]/", "IPv4-mapped form of 127.0.0.1"),
            ("http://[::127.0.0.1]/", "IPv4-compatible"),
            ("http://[2002:7f00:1::]/", "6to4 form of 127.0.0.1"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[fc00::5]/", "unique-local"),
            ("http://100.64.1.1/", "carrier-grade NAT"),
            ("http://user:secret@10.0.0.1/", "10.0.0.1 (private network)"),
            ("http://localhost/", "resolved from localhost"),
            ("http://LOCALHOST:1/x?y=z", "resolved from localhost"),
        ];
        for (url, want) in table {
            match e.send(get_req(url)).await {
                Err(EgressError::Refused(m)) => {
                    assert!(m.contains(want), "{url}: {m:?} lacks {want:?}");
                    assert!(m.contains("AllowedUntrustedInternalConnections"), "{m}");
                }
                other => panic!("{url}: expected Refused, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn invalid_urls() {
        let e = egress("");
        for url in [
            "",
            "not a url",
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://127.0.0.1/",
            "javascript:alert(1)",
            "mailto:a@b.c",
            "http://",
            "http://[::1/",
            "http://exa mple.com/",
            "http://256.0.0.1/",
        ] {
            match e.send(get_req(url)).await {
                Err(EgressError::InvalidUrl(_)) => {}
                other => panic!("{url:?}: expected InvalidUrl, got {other:?}"),
            }
        }
        let mut bad = get_req("http://127.0.0.1/");
        bad.method = "GE T".into();
        assert!(matches!(e.send(bad).await, Err(EgressError::Refused(_))));
        let mut bad = get_req("http://8.8.8.8/");
        bad.method = "GE T".into();
        assert!(matches!(e.send(bad).await, Err(EgressError::Other(_))));
        let mut bad = get_req("http://8.8.8.8/");
        bad.headers = vec![("bad name".into(), "v".into())];
        assert!(matches!(e.send(bad).await, Err(EgressError::Other(_))));
        let mut bad = get_req("http://8.8.8.8/");
        bad.headers = vec![("x".into(), "line\nbreak".into())];
        assert!(matches!(e.send(bad).await, Err(EgressError::Other(_))));
    }

    #[tokio::test]
    async fn resolver_keeps_only_passing_addresses() {
        let strict = Policy::new("", &[]);
        match resolve_checked(&strict, "localhost").await {
            Err(Hook::Refused(m)) => assert!(m.contains("loopback"), "{m}"),
            other => panic!("expected refusal, got {other:?}"),
        }
        // Allowing only the IPv4 loopback drops ::1 (if localhost has it) but keeps 127.0.0.1.
        let v4_only = Policy::new("127.0.0.0/8", &[]);
        let ips = resolve_checked(&v4_only, "localhost").await.unwrap();
        assert!(!ips.is_empty());
        assert!(ips.iter().all(|ip| ip.is_ipv4()), "{ips:?}");
        let by_name = Policy::new("localhost", &[]);
        assert!(
            !resolve_checked(&by_name, "localhost")
                .await
                .unwrap()
                .is_empty()
        );
        match resolve_checked(&strict, "no-such-host.invalid").await {
            Err(Hook::Lookup(m)) => assert!(m.contains("no-such-host.invalid"), "{m}"),
            other => panic!("expected lookup failure, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn post_with_body_and_headers() {
        let server = TestServer::start("127.0.0.1:0", routes).await;
        let e = egress("127.0.0.1");
        let resp = e
            .send(OutboundRequest {
                method: "POST".into(),
                url: server.url("/echo"),
                headers: vec![
                    ("Content-Type".into(), "application/json".into()),
                    ("X-Test".into(), "hello".into()),
                ],
                body: br#"{"text":"hi"}"#.to_vec(),
                timeout: None,
            })
            .await
            .unwrap();
        assert_eq!(resp.status, 201);
        assert_eq!(resp.body, br#"{"text":"hi"}"#);
        assert!(!resp.truncated);
        let header = |n: &str| {
            resp.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-seen-ua"), Some("Mattermost-Bot/1.1"));
        assert_eq!(header("x-seen-test"), Some("hello"));
        assert_eq!(header("x-seen-type"), Some("application/json"));
        server.stop().await;
    }

    #[tokio::test]
    async fn loopback_refused_without_allow_list() {
        let server = TestServer::start("127.0.0.1:0", routes).await;
        let err = egress("").send(get_req(&server.url("/ok"))).await;
        assert!(matches!(err, Err(EgressError::Refused(_))), "{err:?}");
        // A listed host name is not enough when the URL uses the IP literal.
        let err = egress("localhost").send(get_req(&server.url("/ok"))).await;
        assert!(matches!(err, Err(EgressError::Refused(_))), "{err:?}");
        server.stop().await;
    }

    #[tokio::test]
    async fn redirects_are_rechecked() {
        let server = TestServer::start("127.0.0.1:0", routes).await;
        let e = egress("127.0.0.1");

        let ok = e.send(get_req(&server.url("/redirect-ok"))).await.unwrap();
        assert_eq!((ok.status, ok.body.as_slice()), (200, b"ok".as_slice()));

        for (path, want) in [
            ("/redirect-v6", "::1 (loopback)"),
            ("/redirect-private", "10.0.0.1 (private network)"),
        ] {
            match e.send(get_req(&server.url(path))).await {
                Err(EgressError::Refused(m)) => assert!(m.contains(want), "{path}: {m}"),
                other => panic!("{path}: expected Refused, got {other:?}"),
            }
        }
        // The decimal spelling of 127.0.0.1 is normalised and then allowed by the listed IP.
        let ok = e.send(get_req(&server.url("/redirect-decimal"))).await;
        assert_eq!(ok.unwrap().status, 200);

        match e.send(get_req(&server.url("/loop"))).await {
            Err(EgressError::Other(m)) => assert!(m.contains("too many redirects"), "{m}"),
            other => panic!("expected too many redirects, got {other:?}"),
        }
        match e.send(get_req(&server.url("/redirect-ftp"))).await {
            Err(EgressError::Other(m)) => assert!(m.contains("non-http"), "{m}"),
            other => panic!("expected scheme refusal, got {other:?}"),
        }
        server.stop().await;
    }

    #[tokio::test]
    async fn redirect_to_a_refused_name_goes_through_the_resolver() {
        // Serve on 127.0.0.2 and allow only that; localhost (127.0.0.1 / ::1) stays refused.
        let Ok(probe) = tokio::net::TcpListener::bind("127.0.0.2:0").await else {
            eprintln!("127.0.0.2 not bindable here; skipping");
            return;
        };
        drop(probe);
        let server = TestServer::start("127.0.0.2:0", routes).await;
        let e = egress("127.0.0.2");
        assert_eq!(
            e.send(get_req(&server.url("/ok"))).await.unwrap().status,
            200
        );
        match e.send(get_req(&server.url("/redirect-localhost"))).await {
            Err(EgressError::Refused(m)) => {
                assert!(m.contains("resolved from localhost"), "{m}")
            }
            other => panic!("expected Refused, got {other:?}"),
        }
        server.stop().await;
    }

    #[tokio::test]
    async fn body_is_capped_and_flagged() {
        let server = TestServer::start("127.0.0.1:0", routes).await;
        let e = egress("127.0.0.1");
        let big = e.send(get_req(&server.url("/big"))).await.unwrap();
        assert_eq!(big.body.len(), 1 << 20);
        assert!(big.truncated);
        let exact = e.send(get_req(&server.url("/exact"))).await.unwrap();
        assert_eq!(exact.body.len(), 1 << 20);
        assert!(!exact.truncated);
        server.stop().await;
    }

    #[tokio::test]
    async fn timeouts_name_the_setting() {
        let server = TestServer::start("127.0.0.1:0", routes).await;
        let e = Egress::new(EgressConfig {
            allowed_untrusted_internal: "127.0.0.1".into(),
            timeout: Duration::from_secs(1),
            ..EgressConfig::default()
        })
        .unwrap();
        let mut req = get_req(&server.url("/slow?token=secret"));
        req.timeout = Some(Duration::from_millis(300));
        let started = Instant::now();
        match e.send(req).await {
            Err(EgressError::Timeout(m)) => {
                assert!(m.contains("timed out after 300 ms"), "{m}");
                assert!(m.contains("OutgoingIntegrationRequestsTimeout"), "{m}");
                assert!(!m.contains("secret"), "{m}");
            }
            other => panic!("expected Timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        match e.send(get_req(&server.url("/slow"))).await {
            Err(EgressError::Timeout(m)) => assert!(m.contains("after 1 s"), "{m}"),
            other => panic!("expected Timeout, got {other:?}"),
        }
        server.stop().await;
    }

    #[tokio::test]
    async fn connection_refused_is_reported() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        match egress("127.0.0.1")
            .send(get_req(&format!("http://{addr}/")))
            .await
        {
            Err(EgressError::Connect(m)) => assert!(m.contains("connection refused"), "{m}"),
            other => panic!("expected Connect, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn send_all_is_concurrent_and_ordered() {
        let server = TestServer::start("127.0.0.1:0", routes).await;
        let e = egress("127.0.0.1");
        let mut reqs: Vec<_> = (0..20)
            .map(|i| get_req(&server.url(&format!("/sleep/{i}"))))
            .collect();
        reqs[7] = get_req("http://10.0.0.7/");
        let started = Instant::now();
        let results = e.send_all(reqs).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert_eq!(results.len(), 20);
        for (i, r) in results.iter().enumerate() {
            if i == 7 {
                assert!(matches!(r, Err(EgressError::Refused(_))), "{r:?}");
            } else {
                let body = &r.as_ref().unwrap().body;
                assert_eq!(body, i.to_string().as_bytes());
            }
        }
        assert!(e.send_all(Vec::new()).await.is_empty());
        server.stop().await;
    }
}
