//! The pages a person sees during an OAuth sign-in: the sign-in form (which
//! sets the `MMAUTHTOKEN` cookie), the consent page and error pages.

use super::flow::AuthorizeRequest;
use crate::server::Shim;
use crate::server::plugin::read_body;
use crate::server::web::escape;
use crate::store::OAuthApp;
use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

const COOKIE: &str = "MMAUTHTOKEN";

pub fn routes() -> Router<Shim> {
    Router::new().route("/login", get(login_page).post(login))
}

/// The `MMAUTHTOKEN` cookie's value, if the request carries one.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// A browser's session, from its cookie. The OAuth pages read it here; the
/// API, the plugin's pages and the web console take it through
/// `server::cookie_session`, which refuses it for requests another site
/// could forge.
pub(super) struct WebSession {
    pub user_id: String,
    token: String,
}

impl WebSession {
    pub fn from_cookie(shim: &Shim, headers: &HeaderMap) -> Option<WebSession> {
        let token = cookie_token(headers)?;
        let user_id = shim.app.user_for_token(&token)?;
        Some(WebSession { user_id, token })
    }

    /// The session of a page request: a token in `Authorization` (as on
    /// every Mattermost route), else the cookie. Only for pages that change
    /// nothing themselves (a form they lead to still needs the cookie).
    pub fn from_request(shim: &Shim, headers: &HeaderMap) -> Option<WebSession> {
        let bearer = crate::server::request_token(headers, None).and_then(|token| {
            let user_id = shim.app.user_for_token(&token)?;
            Some(WebSession { user_id, token })
        });
        bearer.or_else(|| WebSession::from_cookie(shim, headers))
    }

    /// The consent form's anti-forgery value: derived from the session
    /// token, which another site cannot read.
    pub fn csrf(&self) -> String {
        hex::encode(&Sha256::digest(format!("switchboard-consent:{}", self.token).as_bytes())[..16])
    }

    pub fn csrf_matches(&self, value: &str) -> bool {
        !value.is_empty() && self.csrf() == value
    }
}

fn page(status: u16, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title} · Switchboard</title>\
<style>body{{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1e1e2e;margin:0}}\
main{{max-width:26rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 2px 8px #0002}}\
h1{{font-size:1.3rem;margin-top:0}}label{{display:block;margin:.8rem 0 .2rem}}\
input[type=text],input[type=password]{{width:100%;padding:.5rem;box-sizing:border-box;border:1px solid #bbb;border-radius:4px}}\
button,a.button{{margin-top:1rem;padding:.5rem 1.2rem;border-radius:4px;border:0;background:#1c58d9;color:#fff;font-size:1rem;cursor:pointer;text-decoration:none;display:inline-block}}\
a.button.secondary{{background:#e4e6eb;color:#1e1e2e;margin-left:.5rem}}.error{{color:#b00020}}</style></head>\
<body><main><h1>{title}</h1>{body}</main></body></html>",
        title = escape(title),
    );
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (
        status,
        [
            ("x-frame-options", "SAMEORIGIN"),
            ("content-security-policy", "frame-ancestors 'self'"),
            ("cache-control", "no-store"),
        ],
        Html(html),
    )
        .into_response()
}

pub(super) fn error_page(status: u16, message: &str) -> Response {
    page(
        status,
        "Cannot continue",
        &format!("<p class=\"error\">{}</p>", escape(message)),
    )
}

/// Where to go after signing in: only a path on this server.
fn local_path(target: &str) -> &str {
    if target.starts_with('/') && !target.starts_with("//") && !target.contains('\\') {
        target
    } else {
        "/"
    }
}

fn login_form(redirect_to: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        "{error}<form method=\"post\" action=\"/login\">\
<input type=\"hidden\" name=\"redirect_to\" value=\"{to}\">\
<label for=\"login_id\">Username or email</label><input type=\"text\" id=\"login_id\" name=\"login_id\" autofocus>\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\">\
<button type=\"submit\" id=\"sign_in\">Sign in</button></form>\
<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"redirect_to\" value=\"{to}\">\
<label for=\"token\">Or an access token</label><input type=\"password\" id=\"token\" name=\"token\">\
<button type=\"submit\" id=\"sign_in_token\">Sign in with token</button></form>",
        to = escape(redirect_to)
    )
}

async fn login_page(RawQuery(query): RawQuery) -> Response {
    let to = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "redirect_to")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| "/".into());
    page(
        200,
        "Sign in to Switchboard",
        &login_form(local_path(&to), None),
    )
}

/// Checks the password like `POST /api/v4/users/login`, then sets the
/// session cookie and goes back where the person came from.
async fn login(State(shim): State<Shim>, body: Body) -> Response {
    let bytes = read_body(&shim, body)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut login_id = String::new();
    let mut password = String::new();
    let mut access_token = String::new();
    let mut to = "/".to_string();
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        match k.as_ref() {
            "login_id" => login_id = v.into_owned(),
            "password" => password = v.into_owned(),
            "redirect_to" => to = v.into_owned(),
            "token" => access_token = v.into_owned(),
            _ => {}
        }
    }
    let to = local_path(&to).to_string();
    let store = &shim.app.store;
    // A token signs in its user (a bot too) into a session of its own, so the
    // cookie never holds the token itself and signing out ends only it.
    let user = if access_token.is_empty() {
        match shim.app.sign_in(&login_id, &password).await {
            Ok(user) => Some(user),
            Err(crate::app::SignInError::Locked) => {
                return page(
                    401,
                    "Sign in to Switchboard",
                    &login_form(
                        &to,
                        Some(
                            "Your account is locked because of too many failed password attempts. Ask an administrator to reset your password.",
                        ),
                    ),
                );
            }
            Err(_) => None,
        }
    } else {
        shim.app
            .user_for_token(&access_token)
            .and_then(|id| store.user(&id).ok())
            .filter(|user| user.delete_at == 0)
    };
    let Some(user) = user else {
        return page(
            401,
            "Sign in to Switchboard",
            &login_form(&to, Some("Enter a valid username or email and password.")),
        );
    };
    let Ok(token) = store.create_token(&user.id, "session", "web sign-in") else {
        return error_page(500, "Could not start a session.");
    };
    let mut response = Redirect::to(&to).into_response();
    if let Ok(cookie) = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax").parse() {
        response.headers_mut().insert("set-cookie", cookie);
    }
    response
}

/// Asks the signed-in person whether the app may act for them.
pub(super) fn consent_page(
    shim: &Shim,
    session: &WebSession,
    app: &OAuthApp,
    request: &AuthorizeRequest,
) -> Response {
    let username = shim
        .app
        .store
        .user(&session.user_id)
        .map(|u| u.username)
        .unwrap_or_default();
    let hidden = [
        ("response_type", &request.response_type),
        ("client_id", &request.client_id),
        ("redirect_uri", &request.redirect_uri),
        ("scope", &request.scope),
        ("state", &request.state),
        ("code_challenge", &request.code_challenge),
        ("code_challenge_method", &request.code_challenge_method),
        ("resource", &request.resource),
    ]
    .iter()
    .map(|(k, v)| {
        format!(
            "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
            escape(v)
        )
    })
    .collect::<String>();
    // Denying goes back to the app with `error=access_denied` (no state), as
    // Mattermost's consent page does.
    let deny = format!("{}?error=access_denied", request.redirect_uri);
    let body = format!(
        "<p><strong>{name}</strong> wants to access your account <strong>@{user}</strong>: \
it will be able to read and post as you.</p><p><a href=\"{home}\">{home}</a></p>\
<form method=\"post\" action=\"/oauth/authorize\">{hidden}\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\" id=\"allow\">Allow</button>\
<a class=\"button secondary\" id=\"deny\" href=\"{deny}\">Deny</a></form>",
        name = escape(&app.name),
        user = escape(&username),
        home = escape(&app.homepage),
        csrf = session.csrf(),
        deny = escape(&deny),
    );
    page(200, &format!("Authorize {}", app.name), &body)
}
