//! Dynamic client registration (RFC 7591, `POST /api/v4/oauth/apps/register`),
//! as current Mattermost offers it: anonymous, behind `EnableDynamicClientRegistration`
//! and `DCRRedirectURIAllowlist`, with RFC-shaped errors.

use super::apps::validate;
use super::web_url;
use crate::server::ApiError;
use crate::server::Shim;
use crate::server::plugin::read_body;
use crate::store::{OAuthApp, new_id};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;

pub fn routes() -> Router<Shim> {
    Router::new().route("/api/v4/oauth/apps/register", post(register))
}

const DEFAULT_NAME: &str = "Dynamically Registered Client";

/// RFC 7591 §3.2.2's error body.
fn refuse(code: &str, description: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        json!({"error": code, "error_description": description.into()}).to_string(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Registration {
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    client_uri: Option<String>,
}

/// One allowlist pattern's parts: `**` any run, `*` a run without `/`.
#[derive(Debug, PartialEq)]
enum Part {
    Byte(u8),
    Segment,
    Anything,
}

/// A pattern's parts, or `None` when it is not one: it must be an http(s)
/// URL pattern and may not hold `***`.
fn parse_pattern(pattern: &str) -> Option<Vec<Part>> {
    let usable = (pattern.starts_with("http://") || pattern.starts_with("https://"))
        && !pattern.contains("***");
    if !usable {
        return None;
    }
    let bytes = pattern.as_bytes();
    let mut parts = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'*' {
            let double = bytes.get(i + 1) == Some(&b'*');
            parts.push(if double {
                Part::Anything
            } else {
                Part::Segment
            });
            i += if double { 2 } else { 1 };
        } else {
            parts.push(Part::Byte(bytes[i]));
            i += 1;
        }
    }
    Some(parts)
}

/// Whether `text` matches the pattern; dynamic programming over both, so
/// no pattern can make it slow.
fn glob_matches(parts: &[Part], text: &str) -> bool {
    let text = text.as_bytes();
    // row[j]: the parts so far match text[..j].
    let mut row = vec![false; text.len() + 1];
    row[0] = true;
    for part in parts {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match part {
                Part::Byte(b) => j > 0 && row[j - 1] && text[j - 1] == *b,
                Part::Segment => row[j] || (j > 0 && next[j - 1] && text[j - 1] != b'/'),
                Part::Anything => row[j] || (j > 0 && next[j - 1]),
            };
        }
        row = next;
    }
    row[text.len()]
}

/// Whether the allowlist lets `uri` be registered (an empty list lets any).
/// Unusable patterns match nothing.
fn allowed(allowlist: &[String], uri: &str) -> bool {
    allowlist.is_empty()
        || allowlist
            .iter()
            .filter_map(|p| parse_pattern(p))
            .any(|parts| glob_matches(&parts, uri))
}

async fn register(
    State(shim): State<Shim>,
    extensions: axum::http::Extensions,
    body: Body,
) -> Response {
    let config = shim.app.config();
    let settings = config.service_settings.clone();
    if !settings.enable_oauth_service_provider || !settings.enable_dynamic_client_registration {
        return refuse(
            "unsupported_operation",
            "Dynamic client registration is disabled (ServiceSettings.EnableDynamicClientRegistration).",
        );
    }
    // Anyone may register, so each address gets a budget per minute; a
    // request the server did not get from a socket (none in service) has none.
    if let Some(ConnectInfo(peer)) = extensions.get::<ConnectInfo<SocketAddr>>() {
        let budget = config
            .switchboard_settings
            .dynamic_client_registrations_per_minute;
        if let Err(seconds) = shim.app.registrations.take(peer.ip(), budget) {
            let mut refused = ApiError::new(
                429,
                "api.oauth.register_dynamic_client.rate_limited.app_error",
                "Too many client registrations from this address; try again later.",
            );
            refused.retry_after = Some(seconds);
            return refused.into_response();
        }
    }
    let bytes = match read_body(&shim, body).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return refuse("invalid_client_metadata", "The request body is too large."),
        Err(e) => return e.into_response(),
    };
    let request: Registration = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return refuse("invalid_client_metadata", format!("Invalid JSON: {e}")),
    };
    if request.redirect_uris.is_empty() || !request.redirect_uris.iter().all(|u| web_url(u)) {
        return refuse(
            "invalid_client_metadata",
            "redirect_uris must be one or more http:// or https:// URLs.",
        );
    }
    let method = request
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_post".into());
    if !matches!(
        method.as_str(),
        "client_secret_post" | "client_secret_basic" | "none"
    ) {
        return refuse(
            "invalid_client_metadata",
            "token_endpoint_auth_method must be client_secret_post, client_secret_basic or none.",
        );
    }
    let name = request.client_name.unwrap_or_default();
    if name.len() > 64 {
        return refuse("invalid_client_metadata", "client_name: at most 64 bytes.");
    }
    let client_uri = request.client_uri.unwrap_or_default();
    if !client_uri.is_empty() && (client_uri.len() > 256 || !web_url(&client_uri)) {
        return refuse(
            "invalid_client_metadata",
            "client_uri must be an http:// or https:// URL of at most 256 characters.",
        );
    }
    if let Some(refused) = request
        .redirect_uris
        .iter()
        .find(|u| !allowed(&settings.dcr_redirect_uri_allowlist, u))
    {
        return refuse(
            "invalid_redirect_uri",
            format!("{refused} is not allowed by ServiceSettings.DCRRedirectURIAllowlist."),
        );
    }
    let now = shim.app.clock.now_millis();
    let app = OAuthApp {
        id: new_id(),
        creator_id: String::new(),
        create_at: now,
        update_at: now,
        client_secret: if method == "none" {
            String::new()
        } else {
            new_id()
        },
        name: if name.is_empty() {
            DEFAULT_NAME.into()
        } else {
            name
        },
        callback_urls: request.redirect_uris,
        homepage: client_uri,
        is_trusted: false,
        is_dynamically_registered: true,
        ..OAuthApp::default()
    };
    if let Err(e) = validate(&app) {
        return refuse("invalid_client_metadata", e.message);
    }
    if let Err(e) = shim.app.store.create_oauth_app(&app) {
        tracing::error!("oauth: storing a dynamically registered client failed: {e}");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "application/json")],
            json!({"error": "server_error", "error_description": "The client could not be stored."})
                .to_string(),
        )
            .into_response();
    }
    let mut answer = json!({
        "client_id": app.id,
        "redirect_uris": app.callback_urls,
        "token_endpoint_auth_method": method,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "user",
        "client_name": app.name,
        "client_uri": app.homepage,
    });
    if !app.is_public() {
        answer["client_secret"] = json!(app.client_secret);
    }
    (
        StatusCode::CREATED,
        [
            ("content-type", "application/json"),
            ("cache-control", "no-store"),
        ],
        answer.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_globs_match_within_a_segment_or_across_with_two_stars() {
        let list = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let one = list(&["https://app.example.com/*/callback"]);
        assert!(allowed(&one, "https://app.example.com/v1/callback"));
        assert!(!allowed(&one, "https://app.example.com/v1/x/callback"));
        assert!(!allowed(&one, "https://evil.example.com/v1/callback"));
        let two = list(&["https://app.example.com/**"]);
        assert!(allowed(&two, "https://app.example.com/a/b/c"));
        assert!(!allowed(&two, "https://app.example.com.evil.net/"));
        let host = list(&["http://*.example.com/cb"]);
        assert!(allowed(&host, "http://a.example.com/cb"));
        assert!(!allowed(&host, "http://a.b/.example.com/cb"));
        assert!(allowed(&[], "https://anything.example.com/"));
        // Unusable patterns allow nothing.
        assert!(!allowed(
            &list(&["https://a.example.com/***"]),
            "https://a.example.com/x"
        ));
        assert!(!allowed(&list(&["*"]), "https://a.example.com/x"));
        // Many stars stay fast.
        let stars = list(&[&format!("https://{}", "*a".repeat(200))]);
        assert!(!allowed(&stars, &format!("https://{}b", "a".repeat(300))));
    }
}
