//! The channel view at `/`: one page with its script and style (embedded in
//! the binary), and `POST /web/render`, which turns posts into safe HTML.

mod render;

pub(crate) use render::escape;

use super::Shim;
use super::rest::{Result, json_body, json_response};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

pub fn routes() -> Router<Shim> {
    Router::new()
        .route("/", get(index))
        .route("/web/app.js", get(script))
        .route("/web/app.css", get(style))
        .route("/web/render", post(render_posts))
}

/// What every page of ours sends: no framing by other sites, and a policy
/// that runs only our own script, so markup that slipped through could not.
fn page_headers(content_type: &'static str) -> [(&'static str, &'static str); 4] {
    [
        ("content-type", content_type),
        ("x-frame-options", "SAMEORIGIN"),
        (
            "content-security-policy",
            "default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'self'",
        ),
        ("cache-control", "no-store"),
    ]
}

/// The page, or the sign-in form (which comes back here) without a session.
async fn index(State(shim): State<Shim>, headers: HeaderMap) -> Response {
    let signed_in = super::oauth::cookie_token(&headers)
        .and_then(|t| shim.app.user_for_token(&t))
        .is_some();
    if !signed_in {
        return Redirect::to("/login?redirect_to=/").into_response();
    }
    (
        page_headers("text/html; charset=utf-8"),
        include_str!("../../../web/index.html"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        page_headers("text/javascript; charset=utf-8"),
        include_str!("../../../web/app.js"),
    )
        .into_response()
}

async fn style() -> Response {
    (
        page_headers("text/css; charset=utf-8"),
        include_str!("../../../web/app.css"),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct RenderRequest {
    posts: Vec<Value>,
}

/// `POST /web/render {"posts": [...]}` → `{"html": {post_id: fragment}}`.
/// The posts come from the API or the websocket as the page got them (an
/// ephemeral post exists nowhere else); authors are looked up here.
async fn render_posts(
    State(shim): State<Shim>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let request: RenderRequest = json_body(&shim, body, "posts").await?;
    let store = &shim.app.store;
    let viewer = store.user(&session).map(|u| u.username).unwrap_or_default();
    let config = shim.app.config();
    let ctx = render::Context {
        viewer: &viewer,
        allow_username_override: config.service_settings.enable_post_username_override,
        allow_icon_override: config.service_settings.enable_post_icon_override,
    };
    let mut html = Map::new();
    // A page asks for one channel's page of posts at most.
    for post in request.posts.iter().take(500) {
        let user_id = post.get("user_id").and_then(Value::as_str).unwrap_or("");
        let author = store
            .user(user_id)
            .map(|u| render::Author {
                username: u.username,
                is_bot: u.is_bot,
            })
            .unwrap_or_default();
        let id = post
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        html.insert(id, Value::String(render::post(post, &author, &ctx)));
    }
    Ok(json_response(StatusCode::OK, json!({ "html": html })))
}
