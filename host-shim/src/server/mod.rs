//! The shim as an HTTP server: the Mattermost v4 REST subset integrations and
//! their clients use, and the routing of plugin-owned paths to the component.

mod actions;
mod bots;
mod channels;
mod connections;
mod error;
pub mod metrics;
mod oauth;
mod plugin;
mod posts;
mod reactions;
mod rest;
mod status;
mod tokens;
mod transforms;
mod users;
mod web;
mod websocket;

pub use connections::{ConnectionLimits, serve as serve_connections};
pub use error::ApiError;

use crate::app::App;
use crate::deliveries::Engine;
use crate::runtime::Runtime;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
use std::sync::Arc;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct Shim {
    pub app: Arc<App>,
    pub runtime: Arc<Runtime>,
    /// The delivery engine: what sends (`deliveries::send_now`) and what
    /// holds the outgoing OAuth connections' tokens.
    pub engine: Arc<Engine>,
}

/// The whole HTTP surface.
pub fn router(shim: Shim) -> Router {
    rest::routes()
        .merge(bots::routes())
        .merge(oauth::routes())
        .merge(channels::routes())
        .merge(posts::routes())
        .merge(users::routes())
        .merge(tokens::routes())
        .merge(reactions::routes())
        .merge(transforms::routes())
        .merge(plugin::routes())
        .merge(actions::routes())
        .merge(websocket::routes())
        .merge(web::routes())
        .fallback(|| async { ApiError::not_found_route() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(405, "api.context.405.app_error", "Method not allowed.")
        })
        .layer(middleware::from_fn_with_state(
            shim.clone(),
            developer_details,
        ))
        .layer(middleware::from_fn(cookie_session))
        .layer(middleware::from_fn_with_state(
            shim.clone(),
            observe_request,
        ))
        .layer(middleware::from_fn(request_log))
        .with_state(shim)
}

/// Counts every request in `switchboard_http_request_duration_seconds` by
/// its route's template (never its path: ids and tokens stay out).
async fn observe_request(State(shim): State<Shim>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let response = next.run(request).await;
    shim.app.telemetry.http_request(
        &method,
        route.as_ref().map(|r| r.as_str()),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

tokio::task_local! {
    /// The id of the request being served: in its error envelopes, its
    /// `X-Request-ID` header and its log line.
    static REQUEST_ID: String;
}

/// The id of the request this task serves, or a new one off a request.
pub fn request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| crate::store::new_id())
}

/// Gives each request an id (answered as `X-Request-ID`, as Mattermost
/// does) and writes one log line for it: id, method, route TEMPLATE (the raw
/// path may carry a secret: `/hooks/{id}`), status and latency. Nothing of
/// the query, the headers or the body is logged.
async fn request_log(request: Request, next: Next) -> Response {
    let id = crate::store::new_id();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "(no route)".into());
    let started = std::time::Instant::now();
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::error!(target: "switchboard_host_shim::http", request_id = %id, method, route, status, latency_ms, "request");
    } else {
        tracing::info!(target: "switchboard_host_shim::http", request_id = %id, method, route, status, latency_ms, "request");
    }
    response
}

/// In developer mode, re-renders error envelopes with their details.
async fn developer_details(State(shim): State<Shim>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    match response.extensions().get::<ApiError>() {
        Some(err) if shim.app.config().service_settings.enable_developer => {
            err.clone().into_response_with(true)
        }
        _ => response,
    }
}

/// A browser's `MMAUTHTOKEN` cookie stands for `Authorization: Bearer` on
/// the API, the plugin's pages and the web console, as in Mattermost, but
/// only where another site cannot forge the request: a state-changing method
/// must carry `X-Requested-With: XMLHttpRequest` (which a cross-site form
/// cannot send), and an `Origin` other than this server's drops the cookie
/// (the websocket upgrade too). A dropped cookie leaves the request without a
/// session, so the route answers as it would to anyone else (401 where a
/// session is needed).
async fn cookie_session(mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    if headers.contains_key("authorization") {
        return next.run(request).await;
    }
    let Some(token) = oauth::cookie_token(headers) else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    let covered =
        path.starts_with("/api/v4/") || path.starts_with("/plugins/") || path.starts_with("/web/");
    let safe = matches!(request.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    let xhr = headers
        .get("x-requested-with")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest"));
    if covered
        && (safe || xhr)
        && same_origin(headers)
        && let Ok(value) = format!("Bearer {token}").parse()
    {
        request.headers_mut().insert("authorization", value);
    }
    next.run(request).await
}

/// No `Origin`, or one naming the host the request was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get("host").and_then(|v| v.to_str().ok());
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

impl Shim {
    /// The user behind the request's token (`Authorization: Bearer|Token …`,
    /// or `access_token` in the query), if any.
    pub fn session_user(&self, headers: &HeaderMap, query: Option<&str>) -> Option<String> {
        self.app.user_for_token(&request_token(headers, query)?)
    }

    /// Whether the request is made with an OAuth app's access token: such
    /// sessions may not mint tokens or authorize other apps.
    pub fn is_oauth_session(&self, headers: &HeaderMap, query: Option<&str>) -> bool {
        request_token(headers, query).is_some_and(|t| self.app.is_oauth_token(&t))
    }

    pub fn require_user(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<String, ApiError> {
        let token = request_token(headers, query).ok_or_else(ApiError::unauthorized)?;
        match self.app.session_for_token(&token) {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(ApiError::unauthorized()),
            // The database is away: a 503 to retry, not a signed-out client.
            Err(e) => Err(ApiError::unavailable(&e)),
        }
    }

    /// The request body cap: `MaximumPayloadSizeBytes` plus Mattermost's 512.
    pub fn body_limit(&self) -> usize {
        (self
            .app
            .config()
            .service_settings
            .maximum_payload_size_bytes as usize)
            .saturating_add(512)
    }
}

/// The token a request carries: the `Authorization` header's (`Bearer` or
/// `Token`), else `access_token` in the query.
pub(crate) fn request_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let from_header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
                .then(|| token.trim().to_string())
        });
    from_header.or_else(|| {
        url::form_urlencoded::parse(query?.as_bytes())
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
    })
}
