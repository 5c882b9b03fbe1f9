//! Browser tests: a real headless Chromium against the real shim running the
//! compiled component. `make browser` installs Chromium and runs them.

mod driver;

use driver::Browser;
use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use switchboard_tests::{Answer, Api, CallbackServer, TestShim};

async fn shim() -> TestShim {
    TestShim::builder()
        .config(|c| {
            c.service_settings.allowed_untrusted_internal_connections = "127.0.0.1".into();
            c.service_settings.enable_post_username_override = true;
            c.service_settings.enable_post_icon_override = true;
            // One attempt: a failing receiver's delivery settles at once.
            c.delivery_settings.retry_schedule_milliseconds = vec![0];
            c.delivery_settings.jitter_percent = 0;
            c.service_settings.enable_bot_account_creation = true;
            c.service_settings.enable_outgoing_o_auth_connections = true;
        })
        .start()
        .await
        .expect("shim")
}

/// Signs in on the /login page with a token and waits for the channel view.
async fn sign_in(browser: &Browser, shim: &TestShim, token: &str) {
    browser.goto(&shim.url("/")).await;
    let field = browser.wait_for("#token").await;
    field.send_keys(token).await.unwrap();
    browser
        .client
        .find(Locator::Css("#sign_in_token"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_until(
            "the channel view shows the user",
            "return document.getElementById('me')?.textContent.startsWith('@') === true",
            vec![],
        )
        .await;
}

/// Opens the console at `section` (`#incoming`, …) and waits until it is ready.
async fn open_console(browser: &Browser, shim: &TestShim, section: &str) {
    browser
        .goto(&shim.url(&format!("/plugins/switchboard/console{section}")))
        .await;
    browser.wait_for("body[data-ready]").await;
}

/// Waits until the channel view's websocket is open.
async fn live(browser: &Browser) {
    browser
        .wait_until(
            "the websocket is open",
            "return document.getElementById('live').classList.contains('on')",
            vec![],
        )
        .await;
}

/// The text of the post whose body contains `needle`, once it is shown.
async fn post_with(browser: &Browser, needle: &str) -> String {
    browser
        .wait_until(
            &format!("a post with {needle:?}"),
            "return [...document.querySelectorAll('#posts .post')].some(p => p.textContent.includes(arguments[0]))",
            vec![json!(needle)],
        )
        .await;
    browser
        .client
        .execute(
            "return [...document.querySelectorAll('#posts .post')].find(p => p.textContent.includes(arguments[0])).outerHTML",
            vec![json!(needle)],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn webhook_made_on_its_page_posts_live_and_echo_runs_from_the_box() {
    let shim = shim().await;
    let browser = Browser::start().await;
    sign_in(&browser, &shim, &shim.admin_token).await;

    // Create an incoming webhook on the console page.
    open_console(&browser, &shim, "#incoming").await;
    browser.click("#add").await;
    browser
        .wait_for("#f_display_name")
        .await
        .send_keys("CI builds")
        .await
        .unwrap();
    browser.select("#f_channel_id", &shim.town_square.id).await;
    browser.click("#save").await;
    let url = browser
        .wait_for(".card .hook-url")
        .await
        .text()
        .await
        .unwrap();
    assert!(url.starts_with(&shim.url("/hooks/")), "{url}");
    // Edit it, and send its test message from the page.
    browser.click(".card .edit").await;
    let title = browser.wait_for("#f_display_name").await;
    title.clear().await.unwrap();
    title.send_keys("CI builds (nightly)").await.unwrap();
    browser.click("#save").await;
    browser
        .wait_until(
            "the card shows the new title",
            "return document.querySelector('.card h2')?.textContent === 'CI builds (nightly)'",
            vec![],
        )
        .await;
    browser.click(".card .send-test").await;
    browser
        .wait_until(
            "the test message was sent",
            "return document.getElementById('notice').textContent.startsWith('Test message sent')",
            vec![],
        )
        .await;
    assert!(shim.posts().iter().any(|p| {
        p.message
            .starts_with("Test message from the Switchboard console")
    }));
    browser.screenshot("incoming-webhooks").await;

    // Post to it over HTTP while the channel view is open: the post arrives
    // over the websocket, rendered, without a reload.
    browser.goto(&shim.url("/")).await;
    live(&browser).await;
    browser.eval("window.__same_page = true; return true").await;
    let payload = json!({
        "text": "Build **passed** for @admin in ~town-square",
        "username": "ci-bot",
        "attachments": [{
            "fallback": "Build 42 passed",
            "color": "#2eb886",
            "pretext": "Nightly build",
            "author_name": "Switchboard CI",
            "title": "Build 42",
            "title_link": "https://example.com/builds/42",
            "text": "All _green_.",
            "fields": [
                {"title": "Branch", "value": "main", "short": true},
                {"title": "Duration", "value": "3m 12s", "short": true}
            ],
            "footer": "ci.example.com",
            "actions": [{"id": "rerun", "name": "Re-run", "integration": {"url": "http://127.0.0.1:9/none"}}]
        }]
    });
    let reply = reqwest::Client::new()
        .post(&url)
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let html = post_with(&browser, "Build 42").await;
    assert!(html.contains("<strong>passed</strong>"), "{html}");
    assert!(html.contains("mention mention-me"), "{html}");
    assert!(html.contains("channel-mention"), "{html}");
    assert!(html.contains("border-left-color:#2eb886"), "{html}");
    assert!(
        html.contains("Switchboard CI")
            && html.contains("3m 12s")
            && html.contains("ci.example.com"),
        "{html}"
    );
    assert!(html.contains("class=\"bot-badge\""), "{html}");
    assert!(html.contains(">ci-bot<"), "the override username: {html}");
    assert!(html.contains("action-button"), "{html}");
    assert_eq!(
        browser.eval("return window.__same_page === true").await,
        Value::Bool(true),
        "the page was not reloaded"
    );

    // A slash command from the message box, completed from the suggestions.
    let message = browser.wait_for("#message").await;
    message.send_keys("/ec").await.unwrap();
    browser
        .wait_for("#suggestions li[data-complete^='echo']")
        .await;
    message.send_keys(&Key::Tab.to_string()).await.unwrap();
    let value = message.prop("value").await.unwrap().unwrap_or_default();
    assert_eq!(value, "/echo ");
    message.send_keys("hello from the box").await.unwrap();
    message.send_keys(&Key::Enter.to_string()).await.unwrap();
    post_with(&browser, "hello from the box").await;
    // And a plain message.
    message.send_keys("plain *words*").await.unwrap();
    message.send_keys(&Key::Enter.to_string()).await.unwrap();
    let html = post_with(&browser, "plain").await;
    assert!(html.contains("<em>words</em>"), "{html}");
    let posts = shim.posts();
    assert!(posts.iter().any(|p| p.message == "hello from the box"));
    browser.screenshot("channel-view").await;

    // A thread: reply from the side pane; the reply shows in both places.
    let root = posts
        .iter()
        .find(|p| p.message == "plain *words*")
        .unwrap()
        .id
        .clone();
    browser.click(&format!("#post_{root} .reply-link")).await;
    browser
        .wait_for("#thread:not([hidden]) #thread-posts .post")
        .await;
    let reply = browser.wait_for("#thread-message").await;
    reply.send_keys("a threaded reply").await.unwrap();
    reply.send_keys(&Key::Enter.to_string()).await.unwrap();
    browser
        .wait_until(
            "the reply in the thread pane",
            "return [...document.querySelectorAll('#thread-posts .post')].some(p => p.textContent.includes('a threaded reply'))",
            vec![],
        )
        .await;
    let html = post_with(&browser, "a threaded reply").await;
    assert!(html.contains("class=\"post reply\""), "{html}");
    let stored = shim.posts();
    assert!(
        stored
            .iter()
            .any(|p| p.message == "a threaded reply" && p.root_id == root)
    );
    browser.screenshot("thread").await;

    // An `open_dialog` event's dialog shows as a form (the event itself comes
    // from the interactive-messages routes; here the page's handler is fed one).
    browser
        .eval(
            "openDialog({trigger_id: 't', url: 'http://127.0.0.1:9/dialog', dialog: {callback_id: 'cb', \
             title: 'Deploy', submit_label: 'Go', elements: [\
             {name: 'env', display_name: 'Environment', type: 'select', options: [{text: 'Production', value: 'prod'}]},\
             {name: 'note', display_name: 'Note', type: 'text', default: 'nightly'}]}}); return true",
        )
        .await;
    browser.wait_for("dialog[open] #dialog_env").await;
    let note = browser.wait_for("dialog[open] #dialog_note").await;
    assert_eq!(
        note.prop("value").await.unwrap().as_deref(),
        Some("nightly")
    );
    browser.screenshot("dialog").await;
    browser
        .click("dialog[open] .buttons button[type=button]")
        .await;
    browser
        .wait_until(
            "the dialog closes",
            "return !document.getElementById('dialog').open",
            vec![],
        )
        .await;

    // Delete the webhook on its page: it no longer takes posts.
    open_console(&browser, &shim, "#incoming").await;
    browser
        .eval("window.confirm = () => true; return true")
        .await;
    browser.click(".card .delete").await;
    browser.wait_for("#list .empty").await;
    let gone = reqwest::Client::new()
        .post(&url)
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 400);

    browser.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn failed_outgoing_delivery_shows_in_its_log_and_redelivers() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let calls = Arc::new(Mutex::new(0u32));
    let count = calls.clone();
    let server = CallbackServer::start(move |_| {
        let mut n = count.lock().unwrap();
        *n += 1;
        if *n == 1 {
            Answer::raw(500, Some("text/plain"), "down for maintenance")
        } else {
            Answer::json(json!({"text": "deployed at last"}))
        }
    })
    .await;
    let hook = admin
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": shim.team.id, "display_name": "Deployer",
                "trigger_words": ["deploy"], "callback_urls": [server.url.clone()]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "deploy now"}),
        )
        .await;
    server.wait_for(1).await;

    let browser = Browser::start().await;
    sign_in(&browser, &shim, &shim.admin_token).await;
    open_console(&browser, &shim, "#outgoing").await;
    browser.click(".show-deliveries").await;
    // The delivery may still be settling; refresh the log until it failed.
    browser
        .wait_until(
            "a failed delivery in the log",
            "const f = document.querySelector('tr.delivery[data-state=failed]');\
             if (!f) document.querySelector('.show-deliveries').click();\
             return !!f && f.textContent.includes('HTTP 500') && f.textContent.includes('deploy now');",
            vec![],
        )
        .await;
    browser
        .click("tr.delivery[data-state=failed] .redeliver")
        .await;
    browser
        .wait_until(
            "the redelivery delivered",
            "const d = document.querySelector('tr.delivery[data-state=delivered]');\
             if (!d) document.querySelector('.show-deliveries').click();\
             return !!d && d.querySelector('.answer-cell').textContent.includes('deployed at last');",
            vec![],
        )
        .await;
    assert_eq!(server.requests().len(), 2);
    assert!(shim.posts().iter().any(|p| p.message == "deployed at last"));
    browser.screenshot("outgoing-deliveries").await;

    browser.stop().await;
    server.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn slash_command_made_on_its_page_shows_its_secret_and_runs_in_try_it() {
    let shim = shim().await;
    let server = CallbackServer::start(|request| {
        if request.one("text") == "quietly" {
            Answer::json(json!({"response_type": "ephemeral", "text": "only you see this"}))
        } else {
            Answer::json(json!({"response_type": "in_channel", "text": "deployed from try-it"}))
        }
    })
    .await;
    let browser = Browser::start().await;
    sign_in(&browser, &shim, &shim.admin_token).await;
    open_console(&browser, &shim, "#commands").await;
    browser.click("#add").await;
    for (field, value) in [
        ("#f_display_name", "Deploy"),
        ("#f_trigger", "deploy"),
        ("#f_url", server.url.as_str()),
        ("#f_auto_complete_desc", "Deploys a branch"),
    ] {
        browser
            .wait_for(field)
            .await
            .send_keys(value)
            .await
            .unwrap();
    }
    browser.click("#f_auto_complete").await;
    browser.click("#save").await;
    let secret = browser
        .wait_for(".card .signing-secret")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(secret.len(), 32, "{secret}");

    let input = browser.wait_for(".card .try-input").await;
    input.send_keys("main").await.unwrap();
    browser
        .select(".card .try-channel", &shim.town_square.id)
        .await;
    browser.click(".card .try-run").await;
    browser
        .wait_until(
            "the answer is shown",
            "return document.querySelector('.card pre.answer')?.textContent.includes('deployed from try-it') === true",
            vec![],
        )
        .await;
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "one request from try-it");
    assert_eq!(requests[0].one("text"), "main");
    assert!(
        shim.posts()
            .iter()
            .any(|p| p.message == "deployed from try-it")
    );
    browser.screenshot("slash-commands").await;

    // From the message box, an ephemeral answer shows for this user only,
    // and is gone after a reload (it was never stored).
    browser.goto(&shim.url("/")).await;
    live(&browser).await;
    let message = browser.wait_for("#message").await;
    message.send_keys("/deploy quietly").await.unwrap();
    message.send_keys(&Key::Enter.to_string()).await.unwrap();
    let html = post_with(&browser, "only you see this").await;
    assert!(
        html.contains("post ephemeral") && html.contains("(Only visible to you)"),
        "{html}"
    );
    assert!(
        !shim
            .posts()
            .iter()
            .any(|p| p.message == "only you see this")
    );
    browser.goto(&shim.url("/")).await;
    post_with(&browser, "deployed from try-it").await;
    assert_eq!(
        browser
            .eval(
                "return document.getElementById('posts').textContent.includes('only you see this')"
            )
            .await,
        json!(false)
    );

    browser.stop().await;
    server.stop().await;
    shim.stop().await.unwrap();
}

/// Fills the console's editor and saves it.
async fn fill_and_save(browser: &Browser, fields: &[(&str, &str)]) {
    browser.click("#add").await;
    for (field, value) in fields {
        browser
            .wait_for(field)
            .await
            .send_keys(value)
            .await
            .unwrap();
    }
    browser.click("#save").await;
}

#[tokio::test]
async fn bot_and_oauth_app_made_on_their_pages_and_others_see_only_their_own() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    admin
        .create_incoming_hook(
            &shim.town_square.id,
            json!({"display_name": "the admin's hook"}),
        )
        .await;
    let browser = Browser::start().await;

    // An ordinary member sees none of the admin's integrations.
    let (_, token) = shim.create_user("dave").unwrap();
    sign_in(&browser, &shim, &token).await;
    open_console(&browser, &shim, "#incoming").await;
    browser.wait_for("#list .empty").await;
    assert_eq!(
        browser
            .eval(
                "return document.getElementById('list').textContent.includes(\"the admin's hook\")"
            )
            .await,
        json!(false)
    );
    fill_and_save(&browser, &[("#f_display_name", "dave's hook")]).await;
    browser
        .wait_until(
            "dave's own hook is listed",
            "return [...document.querySelectorAll('#list .card h2')].map(h => h.textContent).join() === \"dave's hook\"",
            vec![],
        )
        .await;

    // Signing out in the channel view ends the session.
    browser.goto(&shim.url("/")).await;
    browser.click("#sign-out").await;
    browser.wait_for("#token").await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/login");
    browser.goto(&shim.url("/")).await;
    browser.wait_for("#token").await;
    sign_in(&browser, &shim, &shim.admin_token).await;

    open_console(&browser, &shim, "#bots").await;
    fill_and_save(
        &browser,
        &[("#f_username", "deploy-bot"), ("#f_display_name", "Deploy")],
    )
    .await;
    browser
        .wait_until(
            "the bot's card",
            "return document.querySelector('#list .card h2')?.textContent === 'Deploy (@deploy-bot)'",
            vec![],
        )
        .await;
    let bot = shim.shim.app.store.user_by_username("deploy-bot").unwrap();
    assert!(bot.is_bot);

    browser
        .goto(&shim.url("/plugins/switchboard/console#oauth"))
        .await;
    browser
        .wait_until(
            "the OAuth page",
            "return document.getElementById('title').textContent === 'OAuth 2.0 Applications'",
            vec![],
        )
        .await;
    fill_and_save(
        &browser,
        &[
            ("#f_name", "Dashboard"),
            ("#f_homepage", "https://dash.example.com"),
            ("#f_callback_urls", "https://dash.example.com/callback"),
        ],
    )
    .await;
    browser
        .wait_until(
            "the app's card",
            "return document.querySelector('#list .card h2')?.textContent === 'Dashboard'",
            vec![],
        )
        .await;
    let apps = admin.get("/api/v4/oauth/apps").await.json();
    assert_eq!(apps[0]["name"], "Dashboard");
    assert_eq!(
        apps[0]["callback_urls"],
        json!(["https://dash.example.com/callback"])
    );
    browser.screenshot("oauth-apps").await;

    browser.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn script_in_messages_is_inert_and_a_bad_session_is_refused() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let browser = Browser::start().await;

    // A made-up cookie is no session: the page sends the browser to sign in.
    browser.goto(&shim.url("/login")).await;
    browser
        .eval("document.cookie = 'MMAUTHTOKEN=not-a-session; path=/'; return true")
        .await;
    browser.goto(&shim.url("/")).await;
    let at = browser.client.current_url().await.unwrap();
    assert_eq!(at.path(), "/login", "{at}");
    browser
        .goto(&shim.url("/plugins/switchboard/console"))
        .await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/login");

    sign_in(&browser, &shim, &shim.admin_token).await;
    live(&browser).await;
    let hostile = "<script>window.__pwned = 1</script> [click me](javascript:window.__pwned=2) \
<img src=x onerror=\"window.__pwned=3\"> <a href=\"javascript:window.__pwned=4\">raw</a> marker-one";
    let reply = admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": hostile, "props": {"attachments": [{
                "title": "<img src=x onerror=window.__pwned=5>", "title_link": "javascript:window.__pwned=6",
                "text": "<script>window.__pwned=7</script>", "color": "red\" onmouseover=\"window.__pwned=8",
                "image_url": "javascript:window.__pwned=9"
            }]}}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let html = post_with(&browser, "marker-one").await;
    for link in browser
        .client
        .find_all(Locator::Css("#posts a"))
        .await
        .unwrap()
    {
        let href = link.attr("href").await.unwrap().unwrap_or_default();
        assert!(!href.to_lowercase().starts_with("javascript"), "{href}");
    }
    // Click whatever link the post has; nothing may run.
    if let Ok(link) = browser.client.find(Locator::Css("#posts .post a")).await {
        let _ = link.click().await;
    }
    assert_eq!(
        browser.eval("return typeof window.__pwned").await,
        json!("undefined"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "shown as text: {html}");
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('#posts script, #posts [onerror], #posts [onmouseover]').length")
            .await,
        json!(0)
    );

    // After a reload, from the REST API rather than the websocket: the same.
    browser.goto(&shim.url("/")).await;
    post_with(&browser, "marker-one").await;
    assert_eq!(
        browser.eval("return typeof window.__pwned").await,
        json!("undefined")
    );

    browser.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_button_click_reaches_its_integration_and_its_dialog_submits_from_the_page() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    // The integration: a click is approved (the post is updated, the clicker
    // gets an ephemeral note); a dialog submission is taken with no errors.
    let integration = CallbackServer::start(|r| {
        if r.path == "/approve" {
            Answer::json(json!({
                "update": {"message": "Release 1.2: approved"},
                "ephemeral_text": "You approved 1.2"
            }))
        } else {
            Answer::json(json!({}))
        }
    })
    .await;
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let browser = Browser::start().await;
    sign_in(&browser, &shim, &shim.admin_token).await;
    live(&browser).await;

    let sent = reqwest::Client::new()
        .post(shim.url(&format!("/hooks/{}", hook["id"].as_str().unwrap())))
        .json(&json!({"text": "Release 1.2 is ready", "attachments": [{"actions": [{
            "type": "button", "name": "Approve", "style": "primary",
            "integration": {"url": format!("{}/approve", integration.url), "context": {"release": "1.2"}}
        }]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    post_with(&browser, "Release 1.2 is ready").await;
    browser.click("#posts .action-button").await;

    // The integration got the click with its context, and its answer shows
    // live: the post edited in place, the note for the clicker.
    let click = integration.wait_for(1).await.remove(0);
    let payload: Value = serde_json::from_slice(&click.body).unwrap();
    assert_eq!(payload["context"]["release"], "1.2");
    assert_eq!(payload["user_id"], shim.admin.id.as_str());
    post_with(&browser, "Release 1.2: approved").await;
    let note = post_with(&browser, "You approved 1.2").await;
    assert!(note.contains("ephemeral"), "{note}");

    // With the click's trigger id the integration opens a dialog; the user
    // fills it in on the page and the submission reaches the integration.
    let opened = admin
        .post_json(
            "/api/v4/actions/dialogs/open",
            &json!({
                "trigger_id": payload["trigger_id"],
                "url": format!("{}/submit", integration.url),
                "dialog": {"callback_id": "release-1.2", "title": "Approve 1.2", "submit_label": "Approve",
                    "elements": [{"name": "reason", "display_name": "Reason", "type": "text"}]}
            }),
        )
        .await;
    assert_eq!(opened.status, 200, "{}", opened.text);
    let reason = browser.wait_for("dialog[open] #dialog_reason").await;
    reason.send_keys("tests are green").await.unwrap();
    browser.click("dialog[open] button[type=submit]").await;
    let submitted = integration.wait_for(2).await.remove(1);
    assert_eq!(submitted.path, "/submit");
    let submission: Value = serde_json::from_slice(&submitted.body).unwrap();
    assert_eq!(submission["callback_id"], "release-1.2");
    assert_eq!(submission["submission"]["reason"], "tests are green");
    browser
        .wait_until(
            "the dialog closes",
            "return !document.getElementById('dialog').open",
            vec![],
        )
        .await;

    browser.stop().await;
    integration.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn outgoing_oauth_connection_made_on_its_page_never_shows_its_secret() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let browser = Browser::start().await;
    sign_in(&browser, &shim, &shim.admin_token).await;
    open_console(&browser, &shim, "#oauthout").await;
    browser.wait_for("#list .empty").await;
    fill_and_save(
        &browser,
        &[
            ("#f_name", "Billing API"),
            ("#f_oauth_token_url", "https://auth.example.com/token"),
            ("#f_client_id", "switchboard"),
            ("#f_client_secret", "s3cret-value"),
            ("#f_audiences", "https://billing.example.com"),
        ],
    )
    .await;
    browser
        .wait_until(
            "the connection's card",
            "return document.querySelector('#list .card h2')?.textContent === 'Billing API'",
            vec![],
        )
        .await;
    let page = browser
        .eval("return document.getElementById('list').textContent")
        .await;
    assert!(!page.as_str().unwrap().contains("s3cret-value"), "{page}");
    let listed = admin
        .get(&format!(
            "/api/v4/oauth/outgoing_connections?team_id={}",
            shim.team.id
        ))
        .await
        .json();
    assert_eq!(listed[0]["name"], "Billing API");
    assert_eq!(listed[0]["grant_type"], "client_credentials");
    assert_eq!(
        listed[0]["audiences"],
        json!(["https://billing.example.com"])
    );
    let id = listed[0]["id"].as_str().unwrap().to_string();
    let stored = || {
        shim.shim
            .app
            .store
            .outgoing_oauth_connection(&id)
            .unwrap()
            .client_secret
    };
    assert_eq!(stored(), "s3cret-value");

    // Edited with the secret left empty: the stored secret is kept.
    browser.click(".card .edit").await;
    let name = browser.wait_for("#f_name").await;
    name.clear().await.unwrap();
    name.send_keys("Billing API (prod)").await.unwrap();
    browser.click("#save").await;
    browser
        .wait_until(
            "the renamed card",
            "return document.querySelector('#list .card h2')?.textContent === 'Billing API (prod)'",
            vec![],
        )
        .await;
    assert_eq!(stored(), "s3cret-value");
    browser.screenshot("outgoing-oauth").await;

    browser.stop().await;
    shim.stop().await.unwrap();
}

/// A GitHub delivery to `url`: the event's header, and when a secret is given its
/// `X-Hub-Signature-256` (HMAC-SHA256 from `ring`, not the plugin's `hmac` crate).
async fn github_delivery(
    url: &str,
    event: &str,
    body: &Value,
    secret: Option<&str>,
) -> reqwest::Response {
    let body = serde_json::to_vec(body).unwrap();
    let mut request = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    if let Some(secret) = secret {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let mac = ring::hmac::sign(&key, &body);
        request = request.header(
            "X-Hub-Signature-256",
            format!("sha256={}", hex::encode(mac.as_ref())),
        );
    }
    request.body(body).send().await.unwrap()
}

#[tokio::test]
async fn incoming_webhook_with_a_source_is_set_up_on_its_page() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let browser = Browser::start().await;
    sign_in(&browser, &shim, &shim.admin_token).await;
    open_console(&browser, &shim, "#incoming").await;
    browser.click("#add").await;

    // The source select lists what the API lists, the default first; the source part of
    // the form shows only once a source is picked.
    let listed = admin.get("/api/v4/hooks/incoming/sources").await.json();
    let listed = listed.as_array().unwrap();
    let options = browser
        .eval("return [...document.querySelectorAll('#f_source option')].map(o => [o.value, o.textContent])")
        .await;
    let mut expected = vec![json!(["", "Slack-compatible (default)"])];
    expected.extend(listed.iter().map(|s| json!([s["name"], s["display_name"]])));
    assert_eq!(options, Value::Array(expected));
    assert_eq!(
        browser
            .eval("return document.getElementById('source-settings').hidden")
            .await,
        json!(true)
    );

    browser
        .wait_for("#f_display_name")
        .await
        .send_keys("Repo events")
        .await
        .unwrap();
    browser.select("#f_channel_id", &shim.town_square.id).await;
    browser.select("#f_source", "github").await;
    browser.wait_for("#source-settings:not([hidden])").await;
    let help = browser.wait_for("#source-help").await.text().await.unwrap();
    assert!(
        help.contains("Settings → Webhooks → Add webhook")
            && help.contains("Payload URL")
            && help.contains("application/json"),
        "{help}"
    );
    let preview = browser.wait_for("#source-url").await.text().await.unwrap();
    assert!(preview.ends_with("/github"), "{preview}");
    assert_eq!(
        browser
            .eval("return document.getElementById('f_source_threads').checked")
            .await,
        json!(true),
        "threads are on by default"
    );
    // A sender this page has no setup text for gets the generic line, naming it.
    let generic = browser
        .eval("return setupHelp({name: 'newtool', display_name: 'New Tool', signature_header: 'X-New-Signature'})")
        .await;
    let generic = generic.as_str().unwrap();
    assert!(
        generic.starts_with("In New Tool's webhook settings")
            && generic.contains("X-New-Signature"),
        "{generic}"
    );

    let secret = "gh-webhook-secret-7";
    browser
        .wait_for("#f_source_secret")
        .await
        .send_keys(secret)
        .await
        .unwrap();
    browser
        .wait_for("#f_source_events")
        .await
        .send_keys("pull_request.*, push !star")
        .await
        .unwrap();
    browser.click("#save").await;

    // The card shows the URL to paste, with the source; the secret is nowhere on the
    // page, but the API says it is set.
    browser
        .wait_until(
            "the card's URL ends in /github",
            "return document.querySelector('.card .hook-url')?.textContent.endsWith('/github') === true",
            vec![],
        )
        .await;
    let url = browser
        .wait_for(".card .hook-url")
        .await
        .text()
        .await
        .unwrap();
    assert!(url.starts_with(&shim.url("/hooks/")), "{url}");
    let notice = browser.wait_for("#notice").await.text().await.unwrap();
    assert!(
        notice.contains(&url) && notice.contains("GitHub"),
        "{notice}"
    );
    let leaked = browser
        .eval(&format!(
            "return document.documentElement.outerHTML.includes('{secret}') \
             || [...document.querySelectorAll('input')].some(i => i.value.includes('{secret}'))"
        ))
        .await;
    assert_eq!(leaked, json!(false), "the secret is not on the page");
    assert_eq!(
        browser
            .wait_for(".card .secret-state")
            .await
            .text()
            .await
            .unwrap(),
        "set"
    );
    let hooks = admin
        .get(&format!("/api/v4/hooks/incoming?team_id={}", shim.team.id))
        .await;
    assert!(!hooks.text.contains(secret), "{}", hooks.text);
    let hook = hooks.json()[0].clone();
    assert_eq!(hook["source"], "github");
    assert_eq!(hook["source_secret_set"], true);
    assert_eq!(
        hook["source_events"],
        json!(["pull_request.*", "push", "!star"])
    );
    assert_eq!(hook["channel_id"], shim.town_square.id.as_str());
    let id = hook["id"].as_str().unwrap().to_string();
    assert_eq!(url, shim.url(&format!("/hooks/{id}/github")));

    // GitHub's deliveries to the shown URL: signed ones post, a filtered event posts
    // nothing, an unsigned one is refused.
    let repository = json!({"full_name": "octo-org/hello-world", "html_url": "https://github.com/octo-org/hello-world"});
    let sender = json!({"login": "octocat", "html_url": "https://github.com/octocat"});
    let push = json!({
        "ref": "refs/heads/main", "before": "9049f1265b7d61be4a8904a9a27120d2064dab3b",
        "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "created": false, "deleted": false,
        "forced": false, "compare": "https://github.com/octo-org/hello-world/compare/9049f1265b7d...0d1a26e67d8f",
        "commits": [{"id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "message": "Fix the login page",
                     "url": "https://github.com/octo-org/hello-world/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
                     "author": {"name": "Mona", "username": "octocat"}}],
        "pusher": {"name": "octocat"}, "repository": repository, "sender": sender
    });
    let reply = github_delivery(&url, "push", &push, Some(secret)).await;
    assert_eq!(reply.status(), 200);
    let posted = shim.posts();
    let post = posted
        .iter()
        .find(|p| p.message.contains("Fix the login page"))
        .expect("the push's post");
    assert_eq!(post.channel_id, shim.town_square.id);
    assert!(
        post.message.contains("octo-org/hello-world"),
        "{}",
        post.message
    );
    let star = json!({"action": "created", "starred_at": "2026-12-07T10:00:00Z", "repository": repository, "sender": sender});
    let reply = github_delivery(&url, "star", &star, Some(secret)).await;
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply
            .headers()
            .get("X-Switchboard-Ignored")
            .and_then(|v| v.to_str().ok()),
        Some("event:star.created")
    );
    let reply = github_delivery(&url, "push", &push, None).await;
    assert_eq!(reply.status(), 401);
    assert_eq!(shim.posts().len(), posted.len(), "nothing more posted");

    // Editing it shows the URL (with a copy button) and that a secret is set, never the
    // secret; clearing it and turning threads off reach the hook.
    browser.click(".card .edit").await;
    let shown = browser.wait_for("#source-url").await.text().await.unwrap();
    assert_eq!(shown, url);
    assert_eq!(
        browser
            .wait_for("#secret-state")
            .await
            .text()
            .await
            .unwrap(),
        "A secret is set."
    );
    assert_eq!(
        browser
            .eval("return document.getElementById('f_source_secret').value")
            .await,
        json!("")
    );
    assert_eq!(
        browser
            .eval("return document.getElementById('f_source_events').value")
            .await,
        json!("pull_request.*, push, !star")
    );
    browser
        .eval("document.getElementById('f_source').scrollIntoView({block: 'start'}); window.scrollBy(0, -70); return true")
        .await;
    browser.screenshot("incoming-webhook-source").await;
    browser.click("#copy-source-url").await;
    browser
        .wait_until(
            "the URL was copied",
            "return document.getElementById('notice').textContent === 'Copied ' + arguments[0]",
            vec![json!(url)],
        )
        .await;
    browser.click("#f_source_secret_clear").await;
    browser.click("#f_source_threads").await;
    browser.click("#save").await;
    browser
        .wait_until(
            "the card says no secret is set",
            "return document.querySelector('.card .secret-state')?.textContent === 'not set'",
            vec![],
        )
        .await;
    let hook = admin.incoming_hook(&id).await;
    assert_eq!(hook["source_secret_set"], false);
    assert_eq!(hook["source_threads"], false);
    assert_eq!(hook["source"], "github");

    // Back to Slack-compatible: the hook drops its source; its URL is the plain one.
    browser.click(".card .edit").await;
    browser.select("#f_source", "").await;
    browser.wait_for("#source-settings[hidden]").await;
    browser.click("#save").await;
    browser
        .wait_until(
            "the card's URL is the plain one",
            "return document.querySelector('.card .hook-url')?.textContent === arguments[0]",
            vec![json!(shim.url(&format!("/hooks/{id}")))],
        )
        .await;
    let hook = admin.incoming_hook(&id).await;
    assert_eq!(hook["source"], "");

    browser.stop().await;
    shim.stop().await.unwrap();
}

/// Posts `body` as JSON to an incoming webhook's URL.
async fn send_to_hook(shim: &TestShim, hook_id: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(shim.url(&format!("/hooks/{hook_id}")))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn transform_written_on_a_captured_sample_previews_then_posts() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(
            &shim.town_square.id,
            json!({"display_name": "Uptime", "capture_only": true}),
        )
        .await;
    let id = hook["id"].as_str().unwrap().to_string();

    // A new sender pointed at a capture-only hook: recorded, answered 200, nothing posted.
    // One sample's note is markup; the newest one is a check that is fine.
    let hostile = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>";
    let down = json!({"check": "api", "state": "down", "region": "eu-west", "note": hostile});
    for body in [&down, &json!({"check": "db", "state": "ok"})] {
        let reply = send_to_hook(&shim, &id, body).await;
        assert_eq!(reply.status(), 200);
        assert_eq!(
            reply
                .headers()
                .get("X-Switchboard-Ignored")
                .and_then(|v| v.to_str().ok()),
            Some("capture_only")
        );
    }
    assert!(shim.posts().is_empty(), "capture only posts nothing");

    let browser = Browser::start().await;
    sign_in(&browser, &shim, &shim.admin_token).await;
    open_console(&browser, &shim, "#incoming").await;
    browser.click(".card .edit").await;
    assert_eq!(
        browser
            .eval("return document.getElementById('f_capture_only').checked")
            .await,
        json!(true)
    );
    // The samples, newest first; the sender's markup is shown as text.
    browser
        .wait_until(
            "the two samples are listed",
            "return document.querySelectorAll('#sample-pick option[value]:not([value=\"\"])').length === 2",
            vec![],
        )
        .await;
    let samples = admin
        .get(&format!("/api/v4/hooks/incoming/{id}/samples"))
        .await
        .json();
    let newest = samples[0]["id"].as_str().unwrap().to_string();
    let older = samples[1]["id"].as_str().unwrap().to_string();
    assert_eq!(
        browser
            .eval("return [...document.querySelectorAll('#sample-pick option')].map(o => o.value)")
            .await,
        json!([newest, older])
    );
    browser.select("#sample-pick", &older).await;
    let shown = browser
        .wait_for("#sample-request")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        shown.contains("<img src=x onerror=") && shown.contains("POST /hooks/"),
        "{shown}"
    );

    // A template: its preview is the post as the channel shows it, Markdown and all.
    browser.select("#f_transform_kind", "template").await;
    browser.type_into("#f_tpl_when", "body.state ==").await;
    browser
        .type_into(
            "#f_tpl_text",
            ":red_circle: **{{ body.check }}** is {{ body.state | upper }}. {{ body.note }}",
        )
        .await;
    browser
        .type_into("#f_tpl_thread_key", "{{ body.check }}")
        .await;
    browser.type_into("#f_tpl_attachments",
        r##"[{"color": "#d00000", "fields": [{"title": "Region", "value": "{{ body.region }}", "short": true}]}]"##,
    )
    .await;
    // The `when` does not compile: the preview says where, and Save keeps nothing.
    browser.click("#preview-run").await;
    browser
        .wait_until(
            "the preview names the line and column",
            "return /when, line 1, column \\d+/.test(document.querySelector('#preview .preview-error')?.textContent || '')",
            vec![],
        )
        .await;
    browser.click("#save").await;
    browser
        .wait_until(
            "the save is refused with the line and column",
            "return /does not compile: when, line 1, column/.test(document.querySelector('#notice.error')?.textContent || '')",
            vec![],
        )
        .await;
    let stored = admin.incoming_hook(&id).await;
    assert!(stored["transform"].is_null(), "{stored}");

    browser.type_into("#f_tpl_when", "body.state != 'ok'").await;
    browser.click("#preview-run").await;
    browser
        .wait_until(
            "the preview shows the post",
            "return document.querySelector('#preview .post .post-body strong')?.textContent === 'api'",
            vec![],
        )
        .await;
    let preview = browser
        .eval("return document.getElementById('preview').innerText")
        .await;
    let preview = preview.as_str().unwrap();
    assert!(
        preview.contains("api is DOWN")
            && preview.contains("Region")
            && preview.contains("eu-west")
            && preview.contains("BOT"),
        "{preview}"
    );
    assert_eq!(
        browser
            .eval("return getComputedStyle(document.querySelector('#preview .attachment')).borderLeftColor")
            .await,
        json!("rgb(208, 0, 0)")
    );
    // The newest sample is a check that is fine: dropped, said as such.
    browser.select("#sample-pick", &newest).await;
    browser.wait_for("#preview .preview-dropped").await;
    browser.select("#sample-pick", &older).await;
    browser.wait_for("#preview .post").await;
    browser
        .eval("document.getElementById('transform-settings').scrollIntoView({block: 'start'}); window.scrollBy(0, -40); return true")
        .await;
    browser.screenshot("transform-editor").await;
    // Nothing the sender sent ran, on the sample or in the preview.
    assert_eq!(
        browser.eval("return typeof window.__pwned").await,
        json!("undefined")
    );
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('#editor script, #editor [onerror], #sample-request *').length")
            .await,
        json!(0)
    );
    assert!(shim.posts().is_empty(), "a preview posts nothing");

    // Save with capture off: the next request posts, and the channel view shows it.
    browser.click("#f_capture_only").await;
    browser.click("#save").await;
    browser
        .wait_until(
            "the card shows the template",
            "return document.querySelector('.card')?.textContent.includes('template') === true",
            vec![],
        )
        .await;
    let stored = admin.incoming_hook(&id).await;
    assert_ne!(stored["capture_only"], true, "{stored}");
    assert_eq!(
        stored["transform"]["template"]["when"],
        "body.state != 'ok'"
    );
    assert_eq!(
        stored["transform"]["template"]["attachments"][0]["fields"][0]["value"],
        "{{ body.region }}"
    );
    let reply = send_to_hook(&shim, &id, &down).await;
    assert_eq!(reply.status(), 200);
    browser.goto(&shim.url("/")).await;
    let html = post_with(&browser, "is DOWN").await;
    assert!(
        html.contains("<strong>api</strong>") && html.contains("eu-west"),
        "{html}"
    );
    assert_eq!(
        browser.eval("return typeof window.__pwned").await,
        json!("undefined")
    );

    browser.stop().await;
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn transform_components_are_listed_uploaded_and_deleted_by_admins_only() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip2/release/switchboard_transform_hostile.wasm")
        .canonicalize()
        .expect("the test component: build it with `make component`");
    let size = std::fs::metadata(&wasm).unwrap().len();

    // An ordinary member has no link to the list, and the list is not theirs to see.
    let (_, token) = shim.create_user("dave").unwrap();
    let browser = Browser::start().await;
    sign_in(&browser, &shim, &token).await;
    open_console(&browser, &shim, "#transforms").await;
    assert_eq!(
        browser
            .eval("return document.getElementById('transforms-link').hidden")
            .await,
        json!(true)
    );
    browser.wait_for("#list .empty").await;
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('.card').length")
            .await,
        json!(0)
    );
    browser.stop().await;

    let browser = Browser::start().await;
    sign_in(&browser, &shim, &shim.admin_token).await;
    open_console(&browser, &shim, "#incoming").await;
    browser.click("#transforms-link:not([hidden])").await;
    browser.wait_for("#list .empty").await;
    browser.click("#add").await;
    browser.type_into("#f_name", "hostile").await;
    browser
        .wait_for("#f_component")
        .await
        .send_keys(wasm.to_str().unwrap())
        .await
        .unwrap();
    browser.click("#save").await;
    browser.wait_for(".card .sha256").await;
    let listed = admin.get("/api/v4/transforms").await.json();
    let uploaded = &listed[0];
    assert_eq!(uploaded["name"], "hostile");
    assert_eq!(uploaded["size"], size);
    let card = browser.wait_for(".card").await.text().await.unwrap();
    assert!(
        card.contains("hostile") && card.contains(uploaded["sha256"].as_str().unwrap()),
        "{card}"
    );

    // The incoming-webhook form offers it as a component transform, and saves it.
    admin
        .create_incoming_hook(&shim.town_square.id, json!({"display_name": "Device"}))
        .await;
    open_console(&browser, &shim, "#incoming").await;
    browser.click(".card .edit").await;
    browser.select("#f_transform_kind", "component").await;
    assert_eq!(
        browser
            .eval("return document.getElementById('f_transform_component').value")
            .await,
        uploaded["id"]
    );
    browser.click("#save").await;
    browser
        .wait_until(
            "the card names the component",
            "return document.querySelector('.card')?.textContent.includes('component hostile') === true",
            vec![],
        )
        .await;
    let hooks = admin
        .get(&format!("/api/v4/hooks/incoming?team_id={}", shim.team.id))
        .await
        .json();
    assert_eq!(hooks[0]["transform"]["component"], uploaded["id"]);

    // Deleted from its card.
    open_console(&browser, &shim, "#transforms").await;
    browser
        .eval("window.confirm = () => true; return true")
        .await;
    browser.click(".card .delete").await;
    browser.wait_for("#list .empty").await;
    assert_eq!(admin.get("/api/v4/transforms").await.json(), json!([]));

    browser.stop().await;
    shim.stop().await.unwrap();
}
