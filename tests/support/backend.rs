//! A stand-in integration on loopback: it records every request it gets and
//! answers each with the next queued reply (200 with an empty body when none
//! is queued).

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// One request the backend received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The form fields: the query of a GET, the body of anything else.
    pub fn form(&self) -> Vec<(String, String)> {
        let raw = if self.method == "GET" {
            self.uri
                .split_once('?')
                .map(|(_, q)| q)
                .unwrap_or("")
                .as_bytes()
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

/// A queued answer.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

#[derive(Default)]
struct Shared {
    recorded: Mutex<Vec<Recorded>>,
    replies: Mutex<VecDeque<Canned>>,
}

pub struct Backend {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Backend {
    pub async fn start() -> Backend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Backend {
            url,
            shared,
            server,
        }
    }

    /// Queues the answer to the next request.
    pub fn reply(&self, status: u16, content_type: Option<&str>, body: impl Into<String>) {
        self.shared.replies.lock().unwrap().push_back(Canned {
            status,
            content_type: content_type.map(str::to_string),
            body: body.into(),
        });
    }

    /// Queues a JSON answer with status 200.
    pub fn reply_json(&self, body: serde_json::Value) {
        self.reply(200, Some("application/json"), body.to_string());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().unwrap().clone()
    }

    #[track_caller]
    pub fn last(&self) -> Recorded {
        self.requests().pop().expect("the backend got a request")
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    shared.recorded.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body,
    });
    let canned = shared
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Canned {
            status: 200,
            content_type: None,
            body: String::new(),
        });
    let mut response = Response::new(Body::from(canned.body));
    *response.status_mut() = StatusCode::from_u16(canned.status).unwrap_or(StatusCode::OK);
    if let Some(ct) = canned
        .content_type
        .and_then(|ct| HeaderValue::from_str(&ct).ok())
    {
        response.headers_mut().insert("content-type", ct);
    }
    response
}
