//! The plugin's shared HTTP types, below every feature: requests routed to it
//! by the host, responses, and Mattermost's error envelope. The route table
//! that sends each request to a feature sits above them, in `routes`.

mod error;

pub use error::ApiError;

use serde::Serialize;

/// A request the host routed to the plugin.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub body_too_large: bool,
    pub user_id: Option<String>,
    pub request_id: String,
}

impl Request {
    /// First header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, form-decoded; the first one wins.
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The session user, or Mattermost's 401.
    pub fn session_user(&self) -> Result<&str, ApiError> {
        self.user_id
            .as_deref()
            .ok_or_else(ApiError::session_expired)
    }

    /// Mattermost's `page` / `per_page` query parameters: page from 0,
    /// per_page 60 by default and at most 200.
    pub fn paging(&self) -> Result<(usize, usize), ApiError> {
        let parse = |name: &str, default: usize| match self.query_param(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| ApiError::invalid_url_param(name)),
        };
        let page = parse("page", 0)?;
        let per_page = parse("per_page", 60)?.min(200);
        Ok((page, per_page))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Response {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body,
        }
    }

    pub fn text(status: u16, text: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    /// Mattermost's `{"status":"OK"}`.
    pub fn status_ok() -> Response {
        Response::json(200, &serde_json::json!({"status": "OK"}))
    }
}

/// Fails with Mattermost's 403 unless `user_id` holds `permission` in `scope`.
pub fn require_permission(
    host: &dyn crate::host::Host,
    user_id: &str,
    permission: &str,
    scope: &crate::host::PermissionScope,
) -> Result<(), ApiError> {
    match host.has_permission(user_id, permission, scope) {
        Ok(true) => Ok(()),
        Ok(false) => {
            Err(ApiError::forbidden().with_detail(format!("missing permission {permission}")))
        }
        Err(e) => Err(ApiError::host("api.context.permissions.app_error", &e)),
    }
}

/// Decodes a JSON request body, or Mattermost's `invalid_body_param` for `name`.
pub fn json_body<T: serde::de::DeserializeOwned>(req: &Request, name: &str) -> Result<T, ApiError> {
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::invalid_body_param(name).with_detail(e.to_string()))
}
