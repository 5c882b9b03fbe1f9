//! The web console's sessions over HTTP: the `MMAUTHTOKEN` cookie from the
//! sign-in page works on the API and the component's pages, but not for
//! requests another site could forge; a bad cookie is no session.

use reqwest::redirect::Policy;
use serde_json::{Value, json};
use switchboard_tests::{Api, TestShim};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in on /login with `form` and returns the session cookie's value.
async fn sign_in(shim: &TestShim, form: &[(&str, &str)]) -> Option<String> {
    let reply = client()
        .post(shim.url("/login"))
        .form(form)
        .send()
        .await
        .unwrap();
    let cookie = reply
        .headers()
        .get("set-cookie")?
        .to_str()
        .ok()?
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let value = cookie.split(';').next()?.strip_prefix("MMAUTHTOKEN=")?;
    Some(value.to_string())
}

async fn send(
    shim: &TestShim,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, String) {
    let mut request = client()
        .request(method, shim.url(path))
        .header("cookie", format!("MMAUTHTOKEN={cookie}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    let location = reply
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = reply.text().await.unwrap();
    (status, location.unwrap_or(text))
}

const XHR: (&str, &str) = ("x-requested-with", "XMLHttpRequest");

#[tokio::test]
async fn a_cookie_session_needs_the_xhr_header_to_change_anything() {
    let shim = TestShim::start().await.unwrap();
    let cookie = sign_in(&shim, &[("token", &shim.admin_token), ("redirect_to", "/")])
        .await
        .expect("a token signs in");
    assert_ne!(
        cookie, shim.admin_token,
        "a session of its own, not the token"
    );
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;

    let (status, me) = send(&shim, get.clone(), "/api/v4/users/me", &cookie, &[], None).await;
    assert_eq!(status, 200, "{me}");
    assert!(me.contains(&shim.admin.id));

    let message = json!({"channel_id": shim.town_square.id, "message": "from the page"});
    // A forged form post carries the cookie but cannot add the header.
    let (status, body) = send(
        &shim,
        post.clone(),
        "/api/v4/posts",
        &cookie,
        &[],
        Some(message.clone()),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("api.context.session_expired.app_error"),
        "{body}"
    );
    // Nor may another origin, header or not.
    let evil = ("origin", "http://evil.example");
    let (status, _) = send(
        &shim,
        post.clone(),
        "/api/v4/posts",
        &cookie,
        &[XHR, evil],
        Some(message.clone()),
    )
    .await;
    assert_eq!(status, 401);
    assert!(!shim.posts().iter().any(|p| p.message == "from the page"));
    let origin = shim.url("");
    let (status, body) = send(
        &shim,
        post.clone(),
        "/api/v4/posts",
        &cookie,
        &[XHR, ("origin", &origin)],
        Some(message),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // The same for the component's routes.
    let hook = json!({"channel_id": shim.town_square.id, "display_name": "from the console"});
    let (status, _) = send(
        &shim,
        post.clone(),
        "/api/v4/hooks/incoming",
        &cookie,
        &[],
        Some(hook.clone()),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = send(
        &shim,
        post.clone(),
        "/api/v4/hooks/incoming",
        &cookie,
        &[XHR],
        Some(hook),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Signing out ends the cookie's session.
    let (status, _) = send(&shim, post, "/api/v4/users/logout", &cookie, &[XHR], None).await;
    assert_eq!(status, 200);
    let (status, _) = send(&shim, get, "/api/v4/users/me", &cookie, &[], None).await;
    assert_eq!(status, 401);
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn pages_need_a_good_session() {
    let shim = TestShim::start().await.unwrap();
    let get = reqwest::Method::GET;
    for bad in ["", "not-a-session", &"x".repeat(26)] {
        let (status, to) = send(&shim, get.clone(), "/", bad, &[], None).await;
        assert_eq!((status, to.as_str()), (303, "/login?redirect_to=/"));
        let (status, to) = send(
            &shim,
            get.clone(),
            "/plugins/switchboard/console",
            bad,
            &[],
            None,
        )
        .await;
        assert_eq!(status, 302, "{to}");
        assert!(to.starts_with("/login?redirect_to="), "{to}");
        let (status, _) = send(&shim, get.clone(), "/api/v4/users/me", bad, &[], None).await;
        assert_eq!(status, 401);
    }
    // A wrong token does not sign in.
    assert_eq!(sign_in(&shim, &[("token", "nope")]).await, None);

    // A password does, for a person with one.
    let admin = Api::admin(&shim);
    let created = admin
        .post_json(
            "/api/v4/users",
            &json!({"username": "carol", "email": "carol@example.com", "password": "correct-horse-battery"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        sign_in(&shim, &[("login_id", "carol"), ("password", "wrong")]).await,
        None
    );
    let cookie = sign_in(
        &shim,
        &[("login_id", "carol"), ("password", "correct-horse-battery")],
    )
    .await
    .expect("the password signs in");
    let (status, page) = send(&shim, get.clone(), "/", &cookie, &[], None).await;
    assert_eq!(status, 200);
    assert!(page.contains("/web/app.js"));
    // The console page is the component's, behind the same session.
    let (status, page) = send(
        &shim,
        get.clone(),
        "/plugins/switchboard/console",
        &cookie,
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("console.js"), "{page}");
    let (status, script) = send(
        &shim,
        get,
        "/plugins/switchboard/console/console.js",
        "",
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(script.contains("X-Requested-With"));
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn rendered_posts_carry_no_script() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let posts = json!({"posts": [{
        "id": "p1", "user_id": shim.admin.id, "channel_id": shim.town_square.id, "create_at": 1,
        "message": "**ok** <script>alert(1)</script> [x](javascript:alert(1))",
        "props": {"attachments": [{"title": "t", "title_link": "javascript:alert(1)", "text": "<b onclick=alert(1)>b</b>"}]}
    }]});
    let reply = admin.post_json("/web/render", &posts).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let html = reply.json()["html"]["p1"].as_str().unwrap().to_string();
    assert!(html.contains("<strong>ok</strong>"), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("javascript:") && !html.contains("<b "),
        "{html}"
    );
    Api::new(&shim, None)
        .post_json("/web/render", &posts)
        .await
        .assert_error(401, "api.context.session_expired.app_error");
    shim.stop().await.unwrap();
}

/// The plugin's root leads to its integrations pages: the component answers
/// a redirect to the console, which then serves the page to a session.
#[tokio::test]
async fn the_plugin_root_leads_to_the_console() {
    let shim = TestShim::start().await.unwrap();
    for path in ["/plugins/switchboard/", "/plugins/switchboard"] {
        let reply = client().get(shim.url(path)).send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 302, "{path}");
        let location = reply.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(location, "/plugins/switchboard/console", "{path}");
        let page = client()
            .get(shim.url(&location))
            .bearer_auth(&shim.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        assert!(page.text().await.unwrap().contains("console.js"));
    }
    // Other methods and paths under the root still answer the plugin's 404.
    Api::admin(&shim)
        .post_json("/plugins/switchboard/", &json!({}))
        .await
        .assert_error(404, "api.context.404.app_error");
    shim.stop().await.unwrap();
}

/// The integrations page carries the site URL (`SiteURL`), so the webhook URLs it tells
/// people to paste into senders are the site's and not the address the browser used.
#[tokio::test]
async fn the_console_page_carries_the_site_url() {
    let shim = TestShim::start().await.unwrap();
    let page = |shim: &TestShim| {
        client()
            .get(shim.url("/plugins/switchboard/console"))
            .bearer_auth(&shim.admin_token)
            .send()
    };
    let html = page(&shim).await.unwrap().text().await.unwrap();
    assert!(
        html.contains(&format!(
            r#"<meta name="site-url" content="{}">"#,
            shim.url("")
        )),
        "{html}"
    );
    let patched = Api::admin(&shim)
        .put_json(
            "/api/v4/config/patch",
            &json!({"ServiceSettings": {"SiteURL": "https://chat.example.com/"}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let html = page(&shim).await.unwrap().text().await.unwrap();
    assert!(
        html.contains(r#"<meta name="site-url" content="https://chat.example.com">"#),
        "{html}"
    );
    shim.stop().await.unwrap();
}
