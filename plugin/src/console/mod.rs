//! The integrations console: Mattermost's Integrations pages served by the
//! component itself under `/plugins/switchboard/console`, so every host that
//! loads it has them. The pages call the plugin's own `/api/v4` routes with
//! the browser's session; what they show is what the API lets that user see.

use crate::api::{ApiError, Request, Response};

const PAGE: &str = include_str!("console.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// Headers every console response carries: no framing by other sites, and
/// only our own script may run.
fn with_headers(content_type: &str, body: &str) -> Response {
    Response {
        status: 200,
        headers: vec![
            ("Content-Type".into(), content_type.into()),
            ("X-Frame-Options".into(), "SAMEORIGIN".into()),
            (
                "Content-Security-Policy".into(),
                "default-src 'self'; img-src * data:; style-src 'self'; script-src 'self'; frame-ancestors 'self'".into(),
            ),
            ("Cache-Control".into(), "no-store".into()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

/// `GET /plugins/switchboard/`: the plugin's home is its integrations
/// pages, so a link to the plugin lands there.
pub fn home() -> Response {
    Response {
        status: 302,
        headers: vec![("Location".into(), "/plugins/switchboard/console".into())],
        body: Vec::new(),
    }
}

/// `GET /plugins/switchboard/console[/asset]`. The page needs a session (a
/// browser without one goes to the host's sign-in page and comes back); the
/// script and style are the same for everyone. The page carries the site URL,
/// since the URLs it tells people to paste into senders are the site's.
pub fn serve(req: &Request, rest: &[&str], site_url: &str) -> Result<Response, ApiError> {
    match rest {
        [] | [""] => {
            if req.user_id.is_none() {
                return Ok(Response {
                    status: 302,
                    headers: vec![(
                        "Location".into(),
                        "/login?redirect_to=/plugins/switchboard/console".into(),
                    )],
                    body: Vec::new(),
                });
            }
            let page = PAGE.replace("{{site_url}}", &attribute(site_url.trim_end_matches('/')));
            Ok(with_headers("text/html; charset=utf-8", &page))
        }
        ["console.js"] => Ok(with_headers("text/javascript; charset=utf-8", SCRIPT)),
        ["console.css"] => Ok(with_headers("text/css; charset=utf-8", STYLE)),
        _ => Err(ApiError::not_found_route()),
    }
}

/// `value` made safe inside a double-quoted HTML attribute.
fn attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &[&str], user: Option<&str>) -> Response {
        let req = Request {
            method: "GET".into(),
            user_id: user.map(str::to_string),
            ..Request::default()
        };
        serve(&req, path, "http://chat.example.com/")
            .unwrap_or_else(|e| e.into_response("r", false))
    }

    #[test]
    fn page_needs_a_session_assets_do_not() {
        let anonymous = get(&[], None);
        assert_eq!(anonymous.status, 302);
        assert!(
            anonymous
                .headers
                .iter()
                .any(|(k, v)| k == "Location" && v.starts_with("/login?"))
        );
        let page = get(&[], Some("u1"));
        assert_eq!(page.status, 200);
        assert!(String::from_utf8_lossy(&page.body).contains("console.js"));
        assert_eq!(get(&["console.js"], None).status, 200);
        assert_eq!(get(&["console.css"], None).status, 200);
        assert_eq!(get(&["nope"], Some("u1")).status, 404);
    }

    #[test]
    fn the_page_carries_the_site_url_escaped() {
        let page = get(&[], Some("u1"));
        let html = String::from_utf8_lossy(&page.body);
        assert!(
            html.contains(r#"<meta name="site-url" content="http://chat.example.com">"#),
            "{html}"
        );
        let req = Request {
            method: "GET".into(),
            user_id: Some("u1".into()),
            ..Request::default()
        };
        let page = serve(&req, &[], r#"http://x/"><script>"#).unwrap();
        let html = String::from_utf8_lossy(&page.body);
        assert!(
            html.contains(r#"content="http://x/&quot;&gt;&lt;script&gt;""#),
            "{html}"
        );
    }
}
