//! Helpers for the end-to-end tests: a small HTTP client bound to one shim and
//! one token, and loopback servers that stand in for integrations.

pub use backend::{Answer, Backend, CallbackServer, Recorded};
use reqwest::{Method, StatusCode};
use serde_json::Value;
pub use switchboard_host_shim::harness::TestShim;

pub mod backend;
pub mod load;
pub mod native;

/// Whether this run puts its shims on PostgreSQL (`SWITCHBOARD_DB=postgres`:
/// the end-to-end suite's second run in `make test`).
pub fn on_postgres() -> bool {
    std::env::var(switchboard_host_shim::harness::BACKEND_ENV).is_ok_and(|v| v == "postgres")
}

/// For a test of what only SQLite has (its file, a data directory of an
/// earlier release): on a PostgreSQL run it says on stderr that it skips
/// `what` and returns true, and the test returns; otherwise false.
pub fn sqlite_only(what: &str) -> bool {
    if on_postgres() {
        eprintln!("skipped on PostgreSQL (SQLite only): {what}");
    }
    on_postgres()
}

/// A port nothing listens on at the moment, on 127.0.0.1, for a server a
/// test starts by its own means (a process, chromedriver).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
}

impl Reply {
    /// Reads `response` whole.
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = response.text().await.expect("response body");
        Reply {
            status,
            content_type,
            text,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts a Mattermost error envelope with this status and id.
    #[track_caller]
    pub fn assert_error(&self, status: u16, id: &str) -> Value {
        let body = self.json();
        assert_eq!(self.status.as_u16(), status, "status for {}", self.text);
        assert_eq!(body["id"], id, "id in {}", self.text);
        assert_eq!(body["status_code"], status, "{}", self.text);
        assert_eq!(
            body["request_id"].as_str().map(str::len),
            Some(26),
            "{}",
            self.text
        );
        assert!(body.get("message").is_some() && body.get("detailed_error").is_some());
        body
    }
}

/// Sends a request to an incoming webhook: the answer, and the fields it
/// ignored (`X-Switchboard-Ignored`) if it names any.
pub async fn send_to_hook(request: reqwest::RequestBuilder) -> (Reply, Option<String>) {
    let response = request.send().await.expect("request to the shim");
    let ignored = response
        .headers()
        .get("x-switchboard-ignored")
        .map(|v| v.to_str().unwrap().to_owned());
    (Reply::read(response).await, ignored)
}

/// Talks to one shim as one user.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub fn new(shim: &TestShim, token: Option<&str>) -> Api {
        Api {
            base: shim.url.clone(),
            token: token.map(str::to_string),
            http: reqwest::Client::new(),
        }
    }

    /// A client for a server at `base` (e.g. a `host-shim` process).
    pub fn at(base: &str, token: Option<&str>) -> Api {
        switchboard_host_shim::harness::install_tls_provider();
        Api {
            base: base.to_string(),
            token: token.map(str::to_string),
            http: reqwest::Client::new(),
        }
    }

    pub fn admin(shim: &TestShim) -> Api {
        Api::new(shim, Some(&shim.admin_token))
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        self.send_with_headers(method, path, content_type, &[], body)
            .await
    }

    /// [`Api::send`] with extra request headers.
    pub async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        Reply::read(request.send().await.expect("request to the shim")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, Vec::new()).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, Vec::new()).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(
            Method::POST,
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        self.send(
            Method::PUT,
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        self.send(Method::POST, path, content_type, body.into())
            .await
    }

    /// Creates an incoming webhook on `channel_id` and returns its JSON.
    pub async fn create_incoming_hook(&self, channel_id: &str, extra: Value) -> Value {
        let mut body = serde_json::json!({"channel_id": channel_id, "display_name": "Test hook"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let reply = self.post_json("/api/v4/hooks/incoming", &body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json()
    }

    /// An incoming webhook's JSON, as `GET /api/v4/hooks/incoming/{id}` answers it.
    pub async fn incoming_hook(&self, id: &str) -> Value {
        let reply = self.get(&format!("/api/v4/hooks/incoming/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()
    }

    /// A channel's posts, newest first, as the REST API returns them.
    pub async fn channel_posts(&self, channel_id: &str) -> Vec<Value> {
        let reply = self
            .get(&format!("/api/v4/channels/{channel_id}/posts?per_page=200"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let body = reply.json();
        body["order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| body["posts"][id.as_str().unwrap()].clone())
            .collect()
    }
}

/// Polls `condition` every 10 ms for up to 10 s; panics if it never holds.
/// For effects that happen off the request path (outgoing webhooks).
#[track_caller]
pub fn wait_until(condition: impl Fn() -> bool) -> impl std::future::Future<Output = ()> {
    let caller = std::panic::Location::caller();
    async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !condition() {
            assert!(
                std::time::Instant::now() < deadline,
                "condition not met within 10 s ({caller})"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
