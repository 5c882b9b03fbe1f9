//! Stand-in integrations on loopback: a server that records every request and
//! answers through a function (`CallbackServer`), and one that answers with
//! queued replies (`Backend`).

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Recorded {
    /// Path and query, as sent.
    pub fn uri(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The form fields: the query of a GET, the body of anything else.
    pub fn form(&self) -> Vec<(String, String)> {
        let raw = if self.method == "GET" {
            self.query.as_bytes()
        } else {
            &self.body
        };
        url::form_urlencoded::parse(raw).into_owned().collect()
    }

    /// Every value of one form field, in order.
    pub fn field(&self, key: &str) -> Vec<String> {
        self.form()
            .into_iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect()
    }

    /// The one value of a form field.
    #[track_caller]
    pub fn one(&self, key: &str) -> String {
        let values = self.field(key);
        assert_eq!(values.len(), 1, "{key} in {:?}", self.form());
        values.into_iter().next().unwrap()
    }
}

/// What a server answers: status, content type (none when `None`) and body,
/// after a delay.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub delay: Duration,
    /// Further response headers (e.g. `Retry-After`).
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn json(body: Value) -> Answer {
        Answer::raw(200, Some("application/json"), body.to_string())
    }

    pub fn raw(status: u16, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            content_type: content_type.map(str::to_string),
            body: body.into(),
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }

    /// 200 with an empty body and no content type.
    pub fn empty() -> Answer {
        Answer::raw(200, None, "")
    }

    pub fn after(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Responder = dyn Fn(&Recorded) -> Answer + Send + Sync;

/// A loopback server that records every request and answers with `respond`.
/// Stopped by [`CallbackServer::stop`] (or on drop).
pub struct CallbackServer {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
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
        let requests = Arc::new(Mutex::new(Vec::new()));
        let respond: Arc<Responder> = Arc::new(respond);
        let seen = requests.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (seen, respond) = (seen.clone(), respond.clone());
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
                    at: Instant::now(),
                };
                let answer = respond(&recorded);
                seen.lock().unwrap().push(recorded);
                tokio::time::sleep(answer.delay).await;
                let mut response = axum::response::Response::builder().status(answer.status);
                if let Some(ct) = &answer.content_type {
                    response = response.header("content-type", ct);
                }
                for (name, value) in &answer.headers {
                    response = response.header(name, value);
                }
                response.body(axum::body::Body::from(answer.body)).unwrap()
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
        crate::wait_until(|| self.requests.lock().unwrap().len() >= n).await;
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

/// A [`CallbackServer`] answering each request with the next queued reply
/// (200 with an empty body when none is queued).
pub struct Backend {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    server: CallbackServer,
    replies: Arc<Mutex<VecDeque<Answer>>>,
}

impl Backend {
    pub async fn start() -> Backend {
        let replies: Arc<Mutex<VecDeque<Answer>>> = Arc::default();
        let queue = replies.clone();
        let server = CallbackServer::start(move |_| {
            queue
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(Answer::empty)
        })
        .await;
        Backend {
            url: server.url.clone(),
            server,
            replies,
        }
    }

    /// Queues the answer to the next request.
    pub fn reply(&self, status: u16, content_type: Option<&str>, body: impl Into<String>) {
        self.replies
            .lock()
            .unwrap()
            .push_back(Answer::raw(status, content_type, body.into()));
    }

    /// Queues a JSON answer with status 200.
    pub fn reply_json(&self, body: Value) {
        self.replies.lock().unwrap().push_back(Answer::json(body));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    #[track_caller]
    pub fn last(&self) -> Recorded {
        self.requests().pop().expect("the backend got a request")
    }
}
