//! The shim's one error type for REST handlers, answered as Mattermost's
//! envelope `{id, message, detailed_error, request_id, status_code}`.

use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Seconds a client is asked to wait when the database is unavailable.
pub const RETRY_AFTER_UNAVAILABLE: u64 = 5;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub id: String,
    pub message: String,
    pub detailed_error: String,
    /// Seconds for a `Retry-After` header (503 busy answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, id: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            id: id.into(),
            message: message.into(),
            detailed_error: String::new(),
            retry_after: None,
        }
    }

    /// 503: the plugin's pool and queue are full; retry after `seconds`.
    pub fn busy(seconds: u64) -> ApiError {
        let mut err = ApiError::new(
            503,
            "app.plugin.busy.app_error",
            "The server is busy; try again shortly.",
        );
        err.retry_after = Some(seconds);
        err
    }

    pub fn detail(mut self, detail: impl Into<String>) -> ApiError {
        self.detailed_error = detail.into();
        self
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            401,
            "api.context.session_expired.app_error",
            "Invalid or expired session, please login again.",
        )
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(
            403,
            "api.context.permissions.app_error",
            "You do not have the appropriate permissions.",
        )
    }

    pub fn not_found_route() -> ApiError {
        ApiError::new(
            404,
            "api.context.404.app_error",
            "Sorry, we could not find the page.",
        )
    }

    pub fn invalid_body(name: &str) -> ApiError {
        ApiError::new(
            400,
            "api.context.invalid_body_param.app_error",
            format!("Invalid or missing {name} in request body."),
        )
    }

    pub fn invalid_url_param(name: &str) -> ApiError {
        ApiError::new(
            400,
            "api.context.invalid_url_param.app_error",
            format!("Invalid or missing {name} parameter in request URL."),
        )
    }

    pub fn too_large() -> ApiError {
        ApiError::new(
            413,
            "api.context.request_body_too_large.app_error",
            "The request body is too large.",
        )
    }

    /// A store failure, with the id the caller's operation uses.
    pub fn store(id: &str, err: StoreError) -> ApiError {
        let status = match &err {
            StoreError::NotFound(_) => 404,
            StoreError::Conflict(_) => 400,
            StoreError::Invalid(_) => 400,
            StoreError::Db(_) => 500,
            StoreError::Unavailable(_) => return ApiError::unavailable(&err),
        };
        ApiError::new(status, id, err.to_string()).detail(err.to_string())
    }

    /// 503: the database cannot be reached right now; retry shortly.
    pub fn unavailable(err: &StoreError) -> ApiError {
        let mut e = ApiError::new(
            503,
            "app.store.unavailable.app_error",
            "The database is unavailable; try again shortly.",
        )
        .detail(err.to_string());
        e.retry_after = Some(RETRY_AFTER_UNAVAILABLE);
        e
    }

    /// The envelope; `detailed_error` only in developer mode.
    pub fn into_response_with(self, developer: bool) -> Response {
        let mut response = envelope(
            self.status,
            &self.id,
            &self.message,
            if developer { &self.detailed_error } else { "" },
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(seconds));
        }
        response
    }
}

pub fn envelope(status: u16, id: &str, message: &str, detailed: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({
        "id": id,
        "message": message,
        "detailed_error": detailed,
        "request_id": super::request_id(),
        "status_code": status.as_u16(),
    });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Rendered without `detailed_error`; the error rides along as an extension
/// so the server's layer can re-render it in developer mode.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.clone().into_response_with(false);
        response.extensions_mut().insert(self);
        response
    }
}
