//! The OAuth 2.0 provider: third-party apps (`/api/v4/oauth/apps`), the web
//! flow (`/oauth/authorize`, sign-in and consent pages), the token endpoint,
//! dynamic client registration,
//! deauthorization and the discovery document; and the outgoing OAuth
//! connections integrations' requests get their tokens through.

mod apps;
mod flow;
mod outgoing;
mod pages;
mod register;

pub use pages::cookie_token;

use super::{ApiError, Shim};
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub fn routes() -> Router<Shim> {
    apps::routes()
        .merge(flow::routes())
        .merge(pages::routes())
        .merge(outgoing::routes())
        .merge(register::routes())
}

/// An absolute http(s) URL with a host: what callback, homepage, icon and
/// redirect URLs must be.
fn web_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

fn app_missing() -> ApiError {
    ApiError::new(
        404,
        "app.oauth.get_app.find.app_error",
        "The app does not exist.",
    )
}

/// 501 with the route's id while `EnableOAuthServiceProvider` is off.
fn require_enabled(shim: &Shim, id: &str) -> Result<(), ApiError> {
    if shim
        .app
        .config()
        .service_settings
        .enable_oauth_service_provider
    {
        Ok(())
    } else {
        Err(ApiError::new(
            501,
            id,
            "The OAuth 2.0 service provider has been disabled by the system admin.",
        ))
    }
}

/// An error of the token and authorize endpoints: Mattermost's envelope with
/// RFC 6749's `error` and `error_description` in the same object, so both
/// Mattermost clients and standard OAuth libraries read it.
#[derive(Debug, Clone)]
struct OAuthError {
    status: u16,
    id: String,
    /// The RFC 6749 code: `invalid_request`, `invalid_client`, `invalid_grant`, …
    code: &'static str,
    message: String,
}

impl OAuthError {
    fn new(status: u16, id: &str, code: &'static str, message: impl Into<String>) -> Self {
        OAuthError {
            status,
            id: id.to_string(),
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({
            "id": self.id,
            "message": format!("{}: {}", self.code, self.message),
            "detailed_error": "",
            "request_id": crate::server::request_id(),
            "status_code": status.as_u16(),
            "error": self.code,
            "error_description": self.message,
        });
        (
            status,
            [
                ("content-type", "application/json"),
                ("cache-control", "no-store"),
                ("pragma", "no-cache"),
            ],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        let code = match e.status {
            401 => "invalid_client",
            501 => "temporarily_unavailable",
            500.. => "server_error",
            _ => "invalid_request",
        };
        OAuthError {
            status: e.status,
            id: e.id,
            code,
            message: e.message,
        }
    }
}
