//! One error type for every handler: an i18n id, a message and a status, turned
//! into Mattermost's JSON envelope in exactly one place.

use super::Response;
use crate::host::{AppError, HostError};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub id: String,
    pub message: String,
    pub detailed_error: String,
    pub status: u16,
}

impl ApiError {
    pub fn new(status: u16, id: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            id: id.to_string(),
            message: message.into(),
            detailed_error: String::new(),
            status,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> ApiError {
        self.detailed_error = detail.into();
        self
    }

    /// Wraps a cause the way Mattermost's `/hooks` handlers do: the wrapper's
    /// id on top, the cause's status, the cause's id in the detail.
    pub fn wrap(self, id: &str, message: impl Into<String>) -> ApiError {
        let detail = if self.detailed_error.is_empty() {
            format!("{}: {}", self.id, self.message)
        } else {
            format!("{}: {}, {}", self.id, self.message, self.detailed_error)
        };
        ApiError {
            id: id.to_string(),
            message: message.into(),
            detailed_error: detail,
            status: self.status,
        }
    }

    pub fn session_expired() -> ApiError {
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

    pub fn invalid_url_param(name: &str) -> ApiError {
        ApiError::new(
            400,
            "api.context.invalid_url_param.app_error",
            format!("Invalid or missing {name} parameter in request URL."),
        )
    }

    pub fn invalid_body_param(name: &str) -> ApiError {
        ApiError::new(
            400,
            "api.context.invalid_body_param.app_error",
            format!("Invalid or missing {name} in request body."),
        )
    }

    pub fn invalid_param(name: &str) -> ApiError {
        ApiError::new(
            400,
            "api.context.invalid_param.app_error",
            format!("Invalid {name} parameter."),
        )
    }

    pub fn body_too_large() -> ApiError {
        ApiError::new(
            413,
            "api.context.request_body_too_large.app_error",
            "The request body is too large.",
        )
    }

    /// A host call failed where the caller expected it to work.
    pub fn host(id: &str, err: &HostError) -> ApiError {
        let status = match err {
            HostError::NotFound(_) => 404,
            HostError::Forbidden(_) => 403,
            HostError::Invalid(_) => 400,
            HostError::Conflict(_) => 409,
            HostError::Unavailable(_) => 500,
        };
        ApiError::new(status, id, err.detail().to_string()).with_detail(err.detail().to_string())
    }

    /// The envelope `{id, message, detailed_error, request_id, status_code}`.
    /// `detailed_error` is blanked unless the server runs in developer mode.
    pub fn into_response(self, request_id: &str, developer: bool) -> Response {
        let detailed = if developer {
            self.detailed_error
        } else {
            String::new()
        };
        Response::json(
            self.status,
            &serde_json::json!({
                "id": self.id,
                "message": self.message,
                "detailed_error": detailed,
                "request_id": request_id,
                "status_code": self.status,
            }),
        )
    }
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> AppError {
        AppError {
            id: e.id,
            message: e.message,
            detailed_error: e.detailed_error,
            status_code: e.status,
        }
    }
}

impl ApiError {
    pub fn with_status(mut self, status: u16) -> ApiError {
        self.status = status;
        self
    }
}
