//! Helpers for the end-to-end tests: a small HTTP client bound to one shim and
//! one token, and loopback servers that stand in for integrations.

pub mod backend;

use reqwest::{Method, StatusCode};
use serde_json::Value;
pub use switchboard_host_shim::harness::TestShim;

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
}

impl Reply {
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
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.expect("request to the shim");
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

/// One request a [`CallbackServer`] received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Header names lower-cased.
    pub headers: std::collections::HashMap<String, String>,
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Recorded {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

/// What a [`CallbackServer`] answers: status, content type and body, after a delay.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub delay: std::time::Duration,
}

impl Answer {
    pub fn json(body: Value) -> Answer {
        Answer {
            status: 200,
            content_type: "application/json".into(),
            body: body.to_string().into_bytes(),
            delay: Default::default(),
        }
    }

    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            content_type: content_type.into(),
            body: body.into(),
            delay: Default::default(),
        }
    }

    pub fn after(mut self, delay: std::time::Duration) -> Answer {
        self.delay = delay;
        self
    }
}

type Responder = dyn Fn(&Recorded) -> Answer + Send + Sync;

/// An integration on loopback: records every request and answers with
/// `respond`. Stopped by [`CallbackServer::stop`] (or on drop).
pub struct CallbackServer {
    pub url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl CallbackServer {
    pub async fn start(
        respond: impl Fn(&Recorded) -> Answer + Send + Sync + 'static,
    ) -> CallbackServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let respond: std::sync::Arc<Responder> = std::sync::Arc::new(respond);
        let seen = requests.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let seen = seen.clone();
            let respond = respond.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 16 << 20)
                    .await
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                let recorded = Recorded {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or("").to_string(),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_lowercase(),
                                v.to_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect(),
                    body,
                    at: std::time::Instant::now(),
                };
                let answer = respond(&recorded);
                seen.lock().unwrap().push(recorded);
                tokio::time::sleep(answer.delay).await;
                axum::response::Response::builder()
                    .status(answer.status)
                    .header("content-type", answer.content_type)
                    .body(axum::body::Body::from(answer.body))
                    .unwrap()
            }
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        CallbackServer {
            url,
            requests,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until `n` requests have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        wait_until(|| self.requests.lock().unwrap().len() >= n).await;
        self.requests()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
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
