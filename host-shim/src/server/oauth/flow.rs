//! The authorization-code flow: `/oauth/authorize` (consent, codes), the token
//! endpoint (code and refresh grants, PKCE), deauthorization and discovery.

use super::pages::{self, WebSession};
use super::{OAuthError, app_missing, require_enabled, web_url};
use crate::server::plugin::read_body;
use crate::server::rest::{json_body, json_response};
use crate::server::{ApiError, Shim};
use crate::store::{AccessGrant, AuthCode, OAuthApp, new_id, token_digest, valid_id};
use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// How long an authorization code may wait for its exchange.
const CODE_LIFETIME_MS: i64 = 600_000;

pub fn routes() -> Router<Shim> {
    Router::new()
        .route("/oauth/authorize", get(authorize_page).post(authorize))
        .route("/oauth/access_token", post(access_token))
        .route("/oauth/deauthorize", post(deauthorize))
        .route("/.well-known/oauth-authorization-server", get(metadata))
}

/// The authorize request, from the query (GET), a form or JSON (POST).
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(default)]
pub(super) struct AuthorizeRequest {
    pub response_type: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
    pub resource: String,
    /// The consent form's anti-forgery value (form posts only).
    pub csrf: String,
}

fn authorize_invalid(field: &str) -> ApiError {
    ApiError::new(
        400,
        &format!("model.authorize.is_valid.{field}.app_error"),
        format!("Invalid {field}."),
    )
}

impl AuthorizeRequest {
    /// Mattermost's `AuthorizeRequest.IsValid`, PKCE and resource included.
    fn validate(&self) -> Result<(), ApiError> {
        if !valid_id(&self.client_id) {
            return Err(authorize_invalid("client_id"));
        }
        if self.response_type.is_empty() {
            return Err(authorize_invalid("response_type"));
        }
        if self.redirect_uri.is_empty()
            || self.redirect_uri.len() > 256
            || !web_url(&self.redirect_uri)
        {
            return Err(authorize_invalid("redirect_uri"));
        }
        if self.state.len() > 1024 {
            return Err(authorize_invalid("state"));
        }
        if self.scope.len() > 128 {
            return Err(authorize_invalid("scope"));
        }
        let (challenge, method) = (&self.code_challenge, &self.code_challenge_method);
        if !challenge.is_empty() || !method.is_empty() {
            if challenge.is_empty() {
                return Err(authorize_invalid("code_challenge"));
            }
            if method.is_empty() {
                return Err(authorize_invalid("code_challenge_method"));
            }
            if method != "S256" {
                return Err(authorize_invalid("code_challenge_method.unsupported"));
            }
            if !(43..=128).contains(&challenge.len()) {
                return Err(authorize_invalid("code_challenge.length"));
            }
            if !challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(authorize_invalid("code_challenge.format"));
            }
        }
        validate_resource(&self.resource)
            .map_err(|part| authorize_invalid(&format!("resource.{part}")))
    }
}

/// RFC 8707's resource indicator: absolute, parseable, no fragment.
fn validate_resource(resource: &str) -> Result<(), &'static str> {
    if resource.is_empty() {
        return Ok(());
    }
    if resource.len() > 512 {
        return Err("length");
    }
    let url = url::Url::parse(resource).map_err(|_| "invalid_uri")?;
    if url.cannot_be_a_base() {
        return Err("not_absolute");
    }
    if url.fragment().is_some() {
        return Err("has_fragment");
    }
    Ok(())
}

/// `redirect_uri` with its own query kept and `pairs` added.
fn with_query(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in pairs {
                    query.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_string(),
    }
}

/// The user said yes (or the app is trusted, or they said yes before):
/// issue a code (or, for the legacy implicit flow, a token) and say where
/// the browser goes next.
pub(super) fn allow(
    shim: &Shim,
    user_id: &str,
    request: &AuthorizeRequest,
) -> Result<String, ApiError> {
    require_enabled(shim, "api.oauth.allow_oauth.turn_off.app_error")?;
    let app = shim
        .app
        .store
        .oauth_app(&request.client_id)
        .map_err(|_| app_missing())?;
    if !app.callback_urls.contains(&request.redirect_uri) {
        return Err(ApiError::new(
            400,
            "api.oauth.allow_oauth.redirect_callback.app_error",
            "The redirect URI is not one of the app's callback URLs.",
        ));
    }
    let scope = if request.scope.is_empty() {
        "user"
    } else {
        &request.scope
    };
    match request.response_type.as_str() {
        "code" => {
            if app.is_public() && request.code_challenge.is_empty() {
                return Err(ApiError::new(
                    400,
                    "api.oauth.allow_oauth.pkce_required_public.app_error",
                    "A public client must use PKCE.",
                ));
            }
            let code = format!("{}{}", new_id(), new_id());
            shim.app
                .store
                .save_oauth_code(
                    &code,
                    &AuthCode {
                        client_id: app.id.clone(),
                        user_id: user_id.to_string(),
                        redirect_uri: request.redirect_uri.clone(),
                        state: request.state.clone(),
                        scope: scope.to_string(),
                        code_challenge: request.code_challenge.clone(),
                        code_challenge_method: request.code_challenge_method.clone(),
                        resource: request.resource.clone(),
                        create_at: shim.app.clock.now_millis(),
                    },
                )
                .map_err(|e| ApiError::store("app.oauth.save_auth_data.app_error", e))?;
            Ok(with_query(
                &request.redirect_uri,
                &[("code", &code), ("state", &request.state)],
            ))
        }
        "token" => {
            let issued = issue(
                shim,
                &app,
                user_id,
                &request.redirect_uri,
                scope,
                &request.resource,
                None,
            )
            .map_err(|e| ApiError::new(500, "api.oauth.allow_oauth.app_error", e.message))?;
            Ok(format!(
                "{}#access_token={}&token_type=bearer&expires_in={}&scope={}&state={}",
                request.redirect_uri,
                issued.access_token,
                issued.expires_in,
                url::form_urlencoded::byte_serialize(scope.as_bytes()).collect::<String>(),
                url::form_urlencoded::byte_serialize(request.state.as_bytes()).collect::<String>(),
            ))
        }
        _ => Ok(format!(
            "{}?error=unsupported_response_type&state={}",
            request.redirect_uri,
            url::form_urlencoded::byte_serialize(request.state.as_bytes()).collect::<String>()
        )),
    }
}

/// `GET /oauth/authorize`: the browser's entry. Not signed in: to the sign-in
/// page and back. Trusted or already consented: straight to the app. Else
/// the consent page.
async fn authorize_page(
    State(shim): State<Shim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    if require_enabled(&shim, "api.oauth.authorize_oauth.disabled.app_error").is_err() {
        return pages::error_page(501, "The OAuth 2.0 service provider is turned off.");
    }
    let request: AuthorizeRequest = match authorize_request_from(&query) {
        Some(r) => r,
        None => return pages::error_page(400, "The authorization request is malformed."),
    };
    if let Err(e) = request.validate() {
        return pages::error_page(
            400,
            &format!("Invalid authorization request: {}", e.message),
        );
    }
    let Ok(app) = shim.app.store.oauth_app(&request.client_id) else {
        return pages::error_page(404, "No app is registered with this client id.");
    };
    let Some(session) = WebSession::from_request(&shim, &headers) else {
        let back = format!("/oauth/authorize?{query}");
        return found(&format!(
            "/login?redirect_to={}",
            url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
        ));
    };
    if !app.callback_urls.contains(&request.redirect_uri) {
        return pages::error_page(
            400,
            "The redirect URI is not one of the app's callback URLs.",
        );
    }
    if app.is_public() && request.response_type == "code" && request.code_challenge.is_empty() {
        return pages::error_page(400, "This app must use PKCE (a code_challenge).");
    }
    let consented = shim
        .app
        .store
        .has_oauth_consent(&session.user_id, &app.id)
        .unwrap_or(false);
    if app.is_trusted || consented {
        return match allow(&shim, &session.user_id, &request) {
            Ok(to) => found(&to),
            Err(e) => pages::error_page(e.status, &e.message),
        };
    }
    pages::consent_page(&shim, &session, &app, &request)
}

/// A 302, as Mattermost's `GET /oauth/authorize` answers (axum's
/// `Redirect::to` is a 303).
fn found(location: &str) -> Response {
    (StatusCode::FOUND, [("location", location)]).into_response()
}

/// `POST /oauth/authorize`: the consent. JSON with a token (Mattermost's web
/// app) answers `{"redirect": …}`; the consent page's form (cookie session
/// and its anti-forgery value) is sent on with a redirect.
async fn authorize(State(shim): State<Shim>, headers: HeaderMap, body: Body) -> Response {
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        let Some(session) = WebSession::from_cookie(&shim, &headers) else {
            return pages::error_page(401, "Sign in first.");
        };
        let bytes = match read_body(&shim, body).await {
            Ok(Some(b)) => b,
            _ => return pages::error_page(400, "The form is malformed."),
        };
        let Some(request) = std::str::from_utf8(&bytes)
            .ok()
            .and_then(authorize_request_from)
        else {
            return pages::error_page(400, "The form is malformed.");
        };
        if !session.csrf_matches(&request.csrf) {
            return pages::error_page(403, "The form has expired; start again from the app.");
        }
        if let Err(e) = request.validate() {
            return pages::error_page(400, &e.message);
        }
        return match allow(&shim, &session.user_id, &request) {
            Ok(to) => Redirect::to(&to).into_response(),
            Err(e) => pages::error_page(e.status, &e.message),
        };
    }
    let answer = async {
        let session = shim.require_user(&headers, None)?;
        let request: AuthorizeRequest = json_body(&shim, body, "authorize").await?;
        request.validate()?;
        if shim.is_oauth_session(&headers, None) {
            return Err(ApiError::forbidden().detail("attempted access by oauth app"));
        }
        let redirect = allow(&shim, &session, &request)?;
        Ok::<_, ApiError>(json_response(StatusCode::OK, json!({"redirect": redirect})))
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// An authorize request from a query string or form body.
fn authorize_request_from(text: &str) -> Option<AuthorizeRequest> {
    let map: Map<String, Value> = url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    serde_json::from_value(Value::Object(map)).ok()
}

/// What the token endpoint hands out.
struct Issued {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
    audience: String,
}

impl Issued {
    fn to_response(&self) -> Response {
        let mut body = json!({
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "scope": "",
            "refresh_token": self.refresh_token,
            "id_token": "",
        });
        if !self.audience.is_empty() {
            body["audience"] = self.audience.clone().into();
        }
        (
            StatusCode::OK,
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

/// Stores a new grant (replacing `replaces`, a token hash) and returns its
/// tokens. Public clients get no refresh token.
fn issue(
    shim: &Shim,
    app: &OAuthApp,
    user_id: &str,
    redirect_uri: &str,
    scope: &str,
    audience: &str,
    replaces: Option<&str>,
) -> Result<Issued, OAuthError> {
    let hours = i64::from(
        shim.app
            .config()
            .service_settings
            .session_length_sso_in_hours
            .max(1),
    );
    let access_token = new_id();
    let refresh_token = if app.is_public() {
        String::new()
    } else {
        new_id()
    };
    let grant = AccessGrant {
        token_hash: token_digest(&access_token),
        refresh_hash: if refresh_token.is_empty() {
            String::new()
        } else {
            token_digest(&refresh_token)
        },
        client_id: app.id.clone(),
        user_id: user_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        expires_at: shim.app.clock.now_millis() + hours * 3_600_000,
        scope: scope.to_string(),
        audience: audience.to_string(),
    };
    shim.app
        .store
        .save_oauth_grant(&grant, replaces)
        .map_err(|e| {
            OAuthError::new(
                500,
                "api.oauth.get_access_token.internal_saving.app_error",
                "server_error",
                e.to_string(),
            )
        })?;
    Ok(Issued {
        access_token,
        refresh_token,
        expires_in: hours * 3600,
        audience: audience.to_string(),
    })
}

/// The token endpoint's parameters: the form body, then the query; client
/// credentials also from HTTP Basic (RFC 6749 §2.3.1).
#[derive(Default, Debug)]
struct TokenRequest {
    grant_type: String,
    client_id: String,
    client_secret: String,
    code: String,
    redirect_uri: String,
    refresh_token: String,
    code_verifier: String,
    resource: String,
}

impl TokenRequest {
    fn parse(headers: &HeaderMap, query: &str, body: &[u8]) -> Result<TokenRequest, OAuthError> {
        let bad = || {
            OAuthError::new(
                400,
                "api.oauth.get_access_token.bad_request.app_error",
                "invalid_request",
                "The request is not a valid form.",
            )
        };
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/x-www-form-urlencoded");
        if !body.is_empty() && !content_type.starts_with("application/x-www-form-urlencoded") {
            return Err(bad());
        }
        let body = std::str::from_utf8(body).map_err(|_| bad())?;
        let mut r = TokenRequest::default();
        // The body wins over the query, as Go's ParseForm orders them.
        for source in [query, body] {
            for (k, v) in url::form_urlencoded::parse(source.as_bytes()) {
                let v = v.into_owned();
                match k.as_ref() {
                    "grant_type" => r.grant_type = v,
                    "client_id" => r.client_id = v,
                    "client_secret" => r.client_secret = v,
                    "code" => r.code = v,
                    "redirect_uri" => r.redirect_uri = v,
                    "refresh_token" => r.refresh_token = v,
                    "code_verifier" => r.code_verifier = v,
                    "resource" => r.resource = v,
                    _ => {}
                }
            }
        }
        if let Some((id, secret)) = basic_credentials(headers) {
            if r.client_id.is_empty() {
                r.client_id = id;
            }
            if r.client_secret.is_empty() {
                r.client_secret = secret;
            }
        }
        Ok(r)
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

fn grant_error(status: u16, id: &str, message: &str) -> OAuthError {
    OAuthError::new(status, id, "invalid_grant", message)
}

/// Equal without leaking where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

async fn access_token(
    State(shim): State<Shim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    exchange(&shim, &headers, query.as_deref().unwrap_or(""), body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Mattermost's order of checks, with its statuses and ids.
async fn exchange(
    shim: &Shim,
    headers: &HeaderMap,
    query: &str,
    body: Body,
) -> Result<Response, OAuthError> {
    let bytes = read_body(shim, body).await.ok().flatten().ok_or_else(|| {
        OAuthError::new(
            400,
            "api.oauth.get_access_token.bad_request.app_error",
            "invalid_request",
            "The request body could not be read.",
        )
    })?;
    let r = TokenRequest::parse(headers, query, &bytes)?;
    let invalid = |id: &str, message: &str| OAuthError::new(400, id, "invalid_request", message);
    match r.grant_type.as_str() {
        "authorization_code" if r.code.is_empty() => {
            return Err(invalid(
                "api.oauth.get_access_token.missing_code.app_error",
                "Missing code.",
            ));
        }
        "refresh_token" if r.refresh_token.is_empty() => {
            return Err(invalid(
                "api.oauth.get_access_token.missing_refresh_token.app_error",
                "Missing refresh_token.",
            ));
        }
        "authorization_code" | "refresh_token" => {}
        _ => {
            return Err(OAuthError::new(
                400,
                "api.oauth.get_access_token.bad_grant.app_error",
                "unsupported_grant_type",
                "Only authorization_code and refresh_token grants are supported.",
            ));
        }
    }
    if !valid_id(&r.client_id) {
        return Err(invalid(
            "api.oauth.get_access_token.bad_client_id.app_error",
            "Bad client_id.",
        ));
    }
    require_enabled(shim, "api.oauth.get_access_token.disabled.app_error")?;
    let app = shim.app.store.oauth_app(&r.client_id).map_err(|_| {
        OAuthError::new(
            404,
            "api.oauth.get_access_token.credentials.app_error",
            "invalid_client",
            "The client is not registered.",
        )
    })?;
    let refresh = r.grant_type == "refresh_token";
    if app.is_public() {
        if !r.client_secret.is_empty() {
            return Err(invalid(
                "model.oauth.validate_grant.public_client_secret.app_error",
                "A public client has no secret.",
            ));
        }
        if refresh {
            return Err(invalid(
                "model.oauth.validate_grant.public_client_refresh_token.app_error",
                "Public clients cannot refresh tokens.",
            ));
        }
        if r.code_verifier.is_empty() {
            return Err(invalid(
                "model.oauth.validate_grant.pkce_required.app_error",
                "A public client must send its code_verifier.",
            ));
        }
    } else if !same_secret(&r.client_secret, &app.client_secret) {
        return Err(OAuthError::new(
            401,
            "model.oauth.validate_grant.credentials.app_error",
            "invalid_client",
            "The client credentials are wrong.",
        ));
    }
    if refresh {
        return refresh_grant(shim, &app, &r);
    }
    code_grant(shim, &app, &r)
}

fn code_grant(shim: &Shim, app: &OAuthApp, r: &TokenRequest) -> Result<Response, OAuthError> {
    let store = &shim.app.store;
    let expired = "api.oauth.get_access_token.expired_code.app_error";
    let code = store
        .oauth_code(&r.code)
        .ok()
        .flatten()
        .ok_or_else(|| grant_error(400, expired, "The code is unknown or was used already."))?;
    if shim.app.clock.now_millis() - code.create_at > CODE_LIFETIME_MS {
        let _ = store.take_oauth_code(&r.code);
        return Err(grant_error(403, expired, "The code has expired."));
    }
    if code.client_id != app.id {
        return Err(grant_error(
            400,
            "api.oauth.get_access_token.client_id_mismatch.app_error",
            "The code was issued to another client.",
        ));
    }
    if code.redirect_uri != r.redirect_uri {
        return Err(grant_error(
            400,
            "api.oauth.get_access_token.redirect_uri.app_error",
            "redirect_uri differs from the authorization request's.",
        ));
    }
    verify_pkce(app, &code, &r.code_verifier)?;
    let user = store.user(&code.user_id).map_err(|_| {
        grant_error(
            404,
            "api.oauth.get_access_token.internal_user.app_error",
            "The user is gone.",
        )
    })?;
    if user.delete_at != 0 {
        return Err(grant_error(403, expired, "The user is deactivated."));
    }
    // Single use: of two exchanges racing for one code, one wins.
    if !store.take_oauth_code(&r.code).unwrap_or(false) {
        return Err(grant_error(400, expired, "The code was used already."));
    }
    validate_resource(&r.resource).map_err(|_| {
        grant_error(
            400,
            "api.oauth.get_access_token.resource.app_error",
            "Invalid resource.",
        )
    })?;
    if !r.resource.is_empty() && !code.resource.is_empty() && r.resource != code.resource {
        return Err(grant_error(
            400,
            "api.oauth.get_access_token.resource_mismatch.app_error",
            "resource differs from the authorization request's.",
        ));
    }
    let audience = if code.resource.is_empty() {
        &r.resource
    } else {
        &code.resource
    };
    let issued = issue(
        shim,
        app,
        &user.id,
        &code.redirect_uri,
        &code.scope,
        audience,
        None,
    )?;
    Ok(issued.to_response())
}

fn verify_pkce(app: &OAuthApp, code: &AuthCode, verifier: &str) -> Result<(), OAuthError> {
    let fail = |id: &str, message: &str| OAuthError::new(400, id, "invalid_grant", message);
    if code.code_challenge.is_empty() {
        if app.is_public() {
            return Err(fail(
                "model.authorize.validate_pkce.public_client_required.app_error",
                "A public client's code must carry a code_challenge.",
            ));
        }
        if !verifier.is_empty() {
            return Err(fail(
                "model.authorize.validate_pkce.not_used_in_auth.app_error",
                "The authorization request used no code_challenge.",
            ));
        }
        return Ok(());
    }
    if verifier.is_empty() {
        return Err(fail(
            "model.authorize.validate_pkce.verifier_required.app_error",
            "code_verifier is required.",
        ));
    }
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let derived = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !well_formed || !same_secret(&derived, &code.code_challenge) {
        return Err(fail(
            "model.authorize.validate_pkce.verification_failed.app_error",
            "code_verifier does not match the code_challenge.",
        ));
    }
    Ok(())
}

/// Rotation: the old access and refresh tokens stop working; new ones replace them.
fn refresh_grant(shim: &Shim, app: &OAuthApp, r: &TokenRequest) -> Result<Response, OAuthError> {
    let store = &shim.app.store;
    let grant = store
        .oauth_grant_by_refresh(&r.refresh_token)
        .ok()
        .flatten()
        .ok_or_else(|| {
            grant_error(
                404,
                "api.oauth.get_access_token.refresh_token.app_error",
                "Unknown refresh token.",
            )
        })?;
    if grant.client_id != app.id {
        return Err(grant_error(
            400,
            "api.oauth.get_access_token.client_id_mismatch.app_error",
            "The refresh token was issued to another client.",
        ));
    }
    if !r.resource.is_empty() && r.resource != grant.audience {
        return Err(grant_error(
            400,
            "api.oauth.get_access_token.resource_mismatch.app_error",
            "resource differs from the token's audience.",
        ));
    }
    store.user(&grant.user_id).map_err(|_| {
        grant_error(
            404,
            "api.oauth.get_access_token.internal_user.app_error",
            "The user is gone.",
        )
    })?;
    let issued = issue(
        shim,
        app,
        &grant.user_id,
        &grant.redirect_uri,
        &grant.scope,
        &grant.audience,
        Some(&grant.token_hash),
    )?;
    Ok(issued.to_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Deauthorize {
    client_id: String,
}

/// Ends every token the user holds for the app, and forgets the consent.
async fn deauthorize(
    State(shim): State<Shim>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let session = shim.require_user(&headers, None)?;
    let request: Deauthorize = json_body(&shim, body, "client_id").await?;
    if !valid_id(&request.client_id) {
        return Err(ApiError::invalid_body("client_id"));
    }
    require_enabled(&shim, "api.oauth.allow_oauth.turn_off.app_error")?;
    shim.app
        .store
        .deauthorize_oauth_app(&session, &request.client_id)
        .map_err(|e| ApiError::store("api.oauth.revoke_access_token.del_token.app_error", e))?;
    Ok(json_response(StatusCode::OK, json!({"status": "OK"})))
}

/// RFC 8414 metadata, as current Mattermost publishes it.
async fn metadata(State(shim): State<Shim>) -> Result<Response, ApiError> {
    require_enabled(
        &shim,
        "api.oauth.authorization_server_metadata.disabled.app_error",
    )?;
    let site = shim
        .app
        .config()
        .service_settings
        .site_url
        .trim_end_matches('/')
        .to_string();
    if site.is_empty() {
        return Err(ApiError::new(
            500,
            "api.oauth.authorization_server_metadata.site_url_required.app_error",
            "SiteURL must be set.",
        ));
    }
    let mut document = json!({
            "issuer": site,
            "authorization_endpoint": format!("{site}/oauth/authorize"),
            "token_endpoint": format!("{site}/oauth/access_token"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
            "scopes_supported": ["user"],
            "code_challenge_methods_supported": ["S256"],
    });
    if shim
        .app
        .config()
        .service_settings
        .enable_dynamic_client_registration
    {
        document["registration_endpoint"] = json!(format!("{site}/api/v4/oauth/apps/register"));
    }
    Ok(json_response(StatusCode::OK, document))
}
