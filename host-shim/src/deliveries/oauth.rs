//! Bearer tokens for outgoing OAuth connections: a request whose URL matches a
//! connection's audience is sent with `Authorization: <type> <token>`, the
//! token fetched through the policed egress and cached per connection until
//! shortly before it expires (one fetch at a time per connection, shared by
//! every request waiting for it). Tokens live in memory only and are never
//! logged; they are added to the wire request at send time, so no stored
//! delivery holds one.

use crate::app::App;
use crate::egress::{EgressError, OutboundRequest, OutboundResponse};
use crate::store::OutgoingOAuthConnection;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A token without `expires_in` is kept this long (a 401 ends it sooner).
const DEFAULT_LIFETIME_MS: i64 = 300_000;
/// A token is renewed this long before it expires, or after nine tenths of
/// its life when that is shorter, so no request leaves with one about to die.
const RENEW_BEFORE_MS: i64 = 60_000;

/// What a send does when no token can be had for a matching connection
/// (spec §3.4: slash commands fail open, outgoing webhooks fail closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTokenFailure {
    /// Send the request without the token (commands, actions, dialogs).
    SendWithout,
    /// Do not send; the attempt fails with the token error (webhooks).
    Fail,
}

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenError {
    /// The token endpoint was not reached (policy, connect, timeout).
    Unreachable(EgressError),
    /// It answered 408, 429 or 5xx: worth trying again later.
    Unavailable { status: u16, detail: String },
    /// It refused the credentials (any other non-2xx status).
    Refused { status: u16, detail: String },
    /// A 2xx answer without a usable `access_token`.
    Malformed(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Unreachable(e) => write!(f, "the token endpoint was not reached: {e}"),
            TokenError::Unavailable { status, detail } | TokenError::Refused { status, detail } => {
                write!(f, "the token endpoint answered {status}")?;
                if !detail.is_empty() {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            TokenError::Malformed(why) => {
                write!(f, "the token endpoint's answer is unusable: {why}")
            }
        }
    }
}

impl TokenError {
    /// The failed attempt's error: transient failures stay retryable (the
    /// egress error kinds the delivery policy retries), refusals are final.
    fn for_attempt(&self, connection: &OutgoingOAuthConnection) -> EgressError {
        let text = format!(
            "no token from outgoing OAuth connection {:?} ({}): {self}",
            connection.name, connection.id
        );
        match self {
            TokenError::Unreachable(EgressError::Timeout(_)) => EgressError::Timeout(text),
            TokenError::Unreachable(EgressError::Connect(_)) => EgressError::Connect(text),
            TokenError::Unreachable(EgressError::Other(_)) | TokenError::Unavailable { .. } => {
                EgressError::Other(text)
            }
            TokenError::Unreachable(EgressError::InvalidUrl(_)) => EgressError::InvalidUrl(text),
            TokenError::Unreachable(EgressError::Refused(_))
            | TokenError::Refused { .. }
            | TokenError::Malformed(_) => EgressError::Refused(text),
        }
    }
}

/// Whether one audience entry covers `url`: equal to it (or to it without
/// its query, which a GET command's fields fill), or, for an entry ending in
/// `*`, a prefix of it.
pub fn audience_matches(audience: &str, url: &str) -> bool {
    if let Some(prefix) = audience.strip_suffix('*') {
        return url.starts_with(prefix);
    }
    let bare = url.split(['?', '#']).next().unwrap_or(url);
    audience == url || audience == bare
}

/// The connection for `url`: one with an exact audience wins, else the one
/// with the longest matching prefix; ties go to the lower id, so the choice
/// never depends on storage order.
pub fn connection_for<'a>(
    connections: &'a [OutgoingOAuthConnection],
    url: &str,
) -> Option<&'a OutgoingOAuthConnection> {
    connections
        .iter()
        .filter_map(|c| {
            c.audiences
                .iter()
                .filter(|a| audience_matches(a, url))
                .map(|a| match a.strip_suffix('*') {
                    None => usize::MAX,
                    Some(prefix) => prefix.len(),
                })
                .max()
                .map(|rank| (rank, c))
        })
        .max_by(|(ra, a), (rb, b)| ra.cmp(rb).then_with(|| b.id.cmp(&a.id)))
        .map(|(_, c)| c)
}

/// A token as the endpoint gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// `Authorization`'s value: `<token_type> <access_token>`.
    pub header: String,
    /// Seconds, as the endpoint said (`None` when it did not).
    pub expires_in: Option<u64>,
}

struct Cached {
    header: String,
    /// The connection's `update_at` when fetched: an edited connection's
    /// token is not used again.
    version: i64,
    /// App-clock milliseconds after which the token is renewed before use.
    renew_at: i64,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    /// The last fetch's failure, handed to requests that waited for it.
    failed: Option<TokenError>,
}

/// One connection's token. `fetches` counts finished fetches, so a request
/// that waited for the lock knows one happened meanwhile and shares it.
#[derive(Default)]
struct Slot {
    fetches: AtomicU64,
    state: tokio::sync::Mutex<State>,
}

/// The token cache, one per delivery engine (`deliveries::Engine`).
#[derive(Default)]
pub struct Tokens {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl Tokens {
    fn slot(&self, id: &str) -> Arc<Slot> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    /// Drops a connection's token (it was edited or deleted).
    pub fn forget(&self, id: &str) {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// The `Authorization` value for `connection`: the cached one while it is
    /// fresh and not `stale` (the one a service just answered 401 to), else
    /// a new one. Requests arriving during a fetch wait for it and share its
    /// outcome, success or failure, so a slow endpoint is asked once.
    async fn header(
        &self,
        app: &App,
        connection: &OutgoingOAuthConnection,
        stale: Option<&str>,
    ) -> Result<String, TokenError> {
        let slot = self.slot(&connection.id);
        let seen = slot.fetches.load(Ordering::SeqCst);
        let mut state = slot.state.lock().await;
        if let Some(cached) = &state.cached {
            let fresh = cached.version == connection.update_at
                && app.clock.now_millis() < cached.renew_at
                && Some(cached.header.as_str()) != stale;
            if fresh {
                return Ok(cached.header.clone());
            }
        }
        if slot.fetches.load(Ordering::SeqCst) != seen
            && let Some(failed) = &state.failed
        {
            return Err(failed.clone());
        }
        let fetched_at = app.clock.now_millis();
        let outcome = fetch_token(app, connection).await;
        slot.fetches.fetch_add(1, Ordering::SeqCst);
        match outcome {
            Ok(token) => {
                let life = token
                    .expires_in
                    .filter(|s| *s > 0)
                    .map(|s| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX))
                    .unwrap_or(DEFAULT_LIFETIME_MS);
                let margin = RENEW_BEFORE_MS.min(life / 10);
                state.cached = Some(Cached {
                    header: token.header.clone(),
                    version: connection.update_at,
                    renew_at: fetched_at.saturating_add(life - margin),
                });
                state.failed = None;
                Ok(token.header)
            }
            Err(e) => {
                state.cached = None;
                state.failed = Some(e.clone());
                Err(e)
            }
        }
    }
}

/// Asks the connection's token endpoint for a token: a form POST with the
/// client's id and secret (`client_secret_post`), and the user's name and
/// password for the `password` grant.
pub async fn fetch_token(
    app: &App,
    connection: &OutgoingOAuthConnection,
) -> Result<Token, TokenError> {
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", &connection.grant_type);
        form.append_pair("client_id", &connection.client_id);
        form.append_pair("client_secret", &connection.client_secret);
        if connection.grant_type == "password" {
            form.append_pair(
                "username",
                connection.credentials_username.as_deref().unwrap_or(""),
            );
            form.append_pair(
                "password",
                connection.credentials_password.as_deref().unwrap_or(""),
            );
        }
        form.finish()
    };
    let request = OutboundRequest {
        method: "POST".into(),
        url: connection.oauth_token_url.clone(),
        headers: vec![
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("Accept".into(), "application/json".into()),
        ],
        body: body.into_bytes(),
        timeout: None,
    };
    let response = app
        .egress()
        .send(request)
        .await
        .map_err(TokenError::Unreachable)?;
    read_token_response(&response)
}

/// A token endpoint's answer (RFC 6749 §5.1), JSON or, as some providers
/// send it, a form.
fn read_token_response(response: &OutboundResponse) -> Result<Token, TokenError> {
    let fields = token_fields(response);
    let field = |name: &str| -> Option<String> {
        fields.get(name).and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    if !(200..300).contains(&response.status) {
        // RFC 6749 §5.2's error code and description, shortened: enough to
        // tell a wrong secret from a wrong URL, never the whole body.
        let detail: String = [field("error"), field("error_description")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ")
            .chars()
            .take(200)
            .collect();
        let status = response.status;
        return Err(if status == 408 || status == 429 || status >= 500 {
            TokenError::Unavailable { status, detail }
        } else {
            TokenError::Refused { status, detail }
        });
    }
    let access_token = field("access_token").unwrap_or_default();
    if access_token.is_empty() || !access_token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TokenError::Malformed(
            "no access_token, or one that cannot travel in a header".into(),
        ));
    }
    let token_type = field("token_type").unwrap_or_default();
    // Auth schemes are case-insensitive; "bearer" (which many endpoints
    // send) goes out in the usual spelling.
    let token_type = if token_type.is_empty() || token_type.eq_ignore_ascii_case("bearer") {
        "Bearer".to_string()
    } else if token_type
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        token_type
    } else {
        return Err(TokenError::Malformed("an unusable token_type".into()));
    };
    Ok(Token {
        header: format!("{token_type} {access_token}"),
        expires_in: field("expires_in").and_then(|s| s.trim().parse().ok()),
    })
}

fn token_fields(response: &OutboundResponse) -> serde_json::Map<String, serde_json::Value> {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(&response.body) {
        return map;
    }
    url::form_urlencoded::parse(&response.body)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect()
}

/// The request with `Authorization` set to `header` (replacing the command
/// token's `Token …`, as Mattermost does; the token stays in the form).
fn authorized(request: &OutboundRequest, header: &str) -> OutboundRequest {
    let mut request = request.clone();
    request
        .headers
        .retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
    request
        .headers
        .push(("Authorization".into(), header.to_string()));
    request
}

/// The enabled connection whose audience covers `url`, if any.
fn matching_connection(app: &App, url: &str) -> Option<OutgoingOAuthConnection> {
    if !app
        .config()
        .service_settings
        .enable_outgoing_o_auth_connections
    {
        return None;
    }
    match app.store.outgoing_oauth_connections("", u32::MAX) {
        Ok(all) => connection_for(&all, url).cloned(),
        Err(e) => {
            tracing::error!("outgoing OAuth: reading the connections failed: {e}");
            None
        }
    }
}

/// Sends `request` through the egress, with a token when a connection's
/// audience covers its URL. A 401 from the service renews the token once
/// and sends the request once more; the second answer is final.
pub async fn send(
    app: &App,
    tokens: &Tokens,
    request: OutboundRequest,
    on_failure: OnTokenFailure,
) -> Result<OutboundResponse, EgressError> {
    let Some(connection) = matching_connection(app, &request.url) else {
        return app.egress().send(request).await;
    };
    let header = match tokens.header(app, &connection, None).await {
        Ok(header) => header,
        Err(e) => {
            let failed = e.for_attempt(&connection);
            return match on_failure {
                OnTokenFailure::SendWithout => {
                    tracing::warn!("{failed}; sending the request without it");
                    app.egress().send(request).await
                }
                OnTokenFailure::Fail => {
                    tracing::warn!("{failed}; the request is not sent");
                    Err(failed)
                }
            };
        }
    };
    let first = app.egress().send(authorized(&request, &header)).await;
    if !matches!(&first, Ok(r) if r.status == 401) {
        return first;
    }
    match tokens.header(app, &connection, Some(&header)).await {
        Ok(renewed) => app.egress().send(authorized(&request, &renewed)).await,
        Err(e) => {
            tracing::warn!(
                "{} after the service answered 401",
                e.for_attempt(&connection)
            );
            first
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(id: &str, audiences: &[&str]) -> OutgoingOAuthConnection {
        OutgoingOAuthConnection {
            id: id.into(),
            audiences: audiences.iter().map(|a| a.to_string()).collect(),
            ..OutgoingOAuthConnection::default()
        }
    }

    #[test]
    fn audiences_match_exactly_or_by_prefix() {
        assert!(audience_matches(
            "https://a.example.com/x",
            "https://a.example.com/x"
        ));
        assert!(audience_matches(
            "https://a.example.com/x",
            "https://a.example.com/x?token=1&text=hi"
        ));
        assert!(!audience_matches(
            "https://a.example.com/x",
            "https://a.example.com/x/y"
        ));
        assert!(!audience_matches(
            "https://a.example.com/x",
            "https://a.example.com/"
        ));
        assert!(audience_matches(
            "https://a.example.com/*",
            "https://a.example.com/x/y"
        ));
        assert!(audience_matches(
            "https://a.example.com/*",
            "https://a.example.com/"
        ));
        assert!(!audience_matches(
            "https://a.example.com/*",
            "https://b.example.com/"
        ));
        assert!(!audience_matches(
            "https://a.example.com/*",
            "http://a.example.com/x"
        ));
    }

    #[test]
    fn exact_beats_the_longest_prefix_which_beats_shorter_ones() {
        let all = [
            connection("c", &["https://a.example.com/*"]),
            connection("b", &["https://a.example.com/api/*"]),
            connection("a", &["https://a.example.com/api/exact"]),
        ];
        let pick = |url: &str| connection_for(&all, url).map(|c| c.id.as_str());
        assert_eq!(pick("https://a.example.com/api/exact"), Some("a"));
        assert_eq!(pick("https://a.example.com/api/other"), Some("b"));
        assert_eq!(pick("https://a.example.com/web"), Some("c"));
        assert_eq!(pick("https://b.example.com/"), None);
        let tie = [
            connection("z", &["https://a.example.com/*"]),
            connection("y", &["https://a.example.com/*"]),
        ];
        assert_eq!(
            connection_for(&tie, "https://a.example.com/q").map(|c| c.id.as_str()),
            Some("y")
        );
    }

    fn answer(status: u16, body: &str) -> OutboundResponse {
        OutboundResponse {
            status,
            body: body.as_bytes().to_vec(),
            ..OutboundResponse::default()
        }
    }

    #[test]
    fn token_responses_are_read_as_rfc_6749_says() {
        let token = read_token_response(&answer(
            200,
            r#"{"access_token":"abc","token_type":"bearer","expires_in":3600}"#,
        ))
        .unwrap();
        assert_eq!(token.header, "Bearer abc");
        assert_eq!(token.expires_in, Some(3600));
        let form = read_token_response(&answer(200, "access_token=xyz&expires_in=60")).unwrap();
        assert_eq!(
            (form.header.as_str(), form.expires_in),
            ("Bearer xyz", Some(60))
        );
        let mac = read_token_response(&answer(200, r#"{"access_token":"k","token_type":"MAC"}"#));
        assert_eq!(mac.unwrap().header, "MAC k");
        assert!(matches!(
            read_token_response(&answer(200, r#"{"token_type":"bearer"}"#)),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            read_token_response(&answer(200, r#"{"access_token":"a b\r\nX: y"}"#)),
            Err(TokenError::Malformed(_))
        ));
        let refused = read_token_response(&answer(
            401,
            r#"{"error":"invalid_client","error_description":"bad secret"}"#,
        ))
        .unwrap_err();
        assert_eq!(
            refused,
            TokenError::Refused {
                status: 401,
                detail: "invalid_client: bad secret".into()
            }
        );
        assert!(matches!(
            read_token_response(&answer(503, "down")),
            Err(TokenError::Unavailable { status: 503, .. })
        ));
    }

    #[test]
    fn transient_token_failures_stay_retryable_and_refusals_are_final() {
        let c = connection("id", &[]);
        let retryable =
            |e: TokenError| crate::deliveries::policy::retryable(&Err(e.for_attempt(&c)));
        assert!(retryable(TokenError::Unreachable(EgressError::Timeout(
            "t".into()
        ))));
        assert!(retryable(TokenError::Unavailable {
            status: 503,
            detail: String::new()
        }));
        assert!(!retryable(TokenError::Refused {
            status: 401,
            detail: String::new()
        }));
        assert!(!retryable(TokenError::Malformed("m".into())));
    }

    #[test]
    fn the_authorization_header_is_replaced() {
        let request = OutboundRequest {
            headers: vec![
                ("authorization".into(), "Token cmd".into()),
                ("Accept".into(), "application/json".into()),
            ],
            ..OutboundRequest::default()
        };
        let sent = authorized(&request, "Bearer t");
        assert_eq!(
            sent.headers,
            vec![
                ("Accept".to_string(), "application/json".to_string()),
                ("Authorization".to_string(), "Bearer t".to_string()),
            ]
        );
    }
}
