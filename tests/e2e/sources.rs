//! Built-in sources through the compiled component: a sender's own payload at
//! `/hooks/{id}/{source}` and at a source hook's `/hooks/{id}`, threads, event filters,
//! signatures and a missing event header. Requests are the plugin's fixture files.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_host_shim::store::Post;
use switchboard_tests::{Api, Reply, TestShim, send_to_hook};

/// A fixture from `plugin/src/sources/fixtures/`: headers, raw body, the expected text.
struct Fixture {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    text: Option<String>,
}

fn fixture(name: &str) -> Fixture {
    let path = format!(
        "{}/../plugin/src/sources/fixtures/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).expect(&path)).unwrap();
    Fixture {
        headers: doc["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect(),
        body: serde_json::to_vec(&doc["body"]).unwrap(),
        text: doc["post"]["text"].as_str().map(str::to_owned),
    }
}

/// Sends a fixture (plus `extra` headers, minus `without`) to `path`; the answer and the
/// `X-Switchboard-Ignored` header.
async fn deliver(
    shim: &TestShim,
    path: &str,
    f: &Fixture,
    extra: &[(&str, &str)],
    without: &str,
) -> (Reply, Option<String>) {
    let mut request = reqwest::Client::new()
        .request(Method::POST, shim.url(path))
        .body(f.body.clone());
    for (k, v) in &f.headers {
        if !k.eq_ignore_ascii_case(without) {
            request = request.header(k, v);
        }
    }
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    send_to_hook(request).await
}

async fn shim() -> TestShim {
    TestShim::builder()
        .config(|c| {
            c.service_settings.enable_post_username_override = true;
            c.service_settings.enable_post_icon_override = true;
        })
        .start()
        .await
        .unwrap()
}

async fn hook(shim: &TestShim, extra: Value) -> (String, Value) {
    let hook = Api::admin(shim)
        .create_incoming_hook(&shim.town_square.id, extra)
        .await;
    (hook["id"].as_str().unwrap().to_owned(), hook)
}

fn last(shim: &TestShim) -> Post {
    shim.posts().pop().expect("a post")
}

fn props(post: &Post) -> Value {
    serde_json::from_str(&post.props).unwrap()
}

/// The URL pasted into GitHub: the fixture's exact post, as GitHub unless the hook names
/// itself; a source hook takes the same payload at its plain URL, and Slack payloads too.
#[tokio::test]
async fn a_github_push_posts_at_the_source_url_and_a_source_hooks_own_url() {
    let shim = shim().await;
    let (id, _) = hook(&shim, json!({})).await;
    let push = fixture("github/push");
    let (reply, ignored) = deliver(&shim, &format!("/hooks/{id}/github"), &push, &[], "").await;
    assert_eq!((reply.status.as_u16(), reply.text.as_str()), (200, "ok"));
    assert_eq!(ignored, None);
    let post = last(&shim);
    assert_eq!(Some(post.message.clone()), push.text);
    assert_eq!(post.channel_id, shim.town_square.id);
    assert_eq!(post.root_id, "");
    assert_eq!(props(&post)["override_username"], "GitHub");
    assert_eq!(props(&post)["from_webhook"], "true");
    assert!(
        props(&post)["override_icon_url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    // The commit message's `@here` reaches nobody.
    assert!(!post.message.contains("@here"), "{}", post.message);

    // The plain URL takes a Slack payload as before: the hook has no source.
    let (reply, _) = deliver(&shim, &format!("/hooks/{id}"), &push, &[], "").await;
    reply.assert_error(400, "web.incoming_webhook.general.app_error");

    // A hook with `source: github` and its own name takes GitHub at its plain URL.
    let (id, created) = hook(&shim, json!({"source": "github", "username": "ci"})).await;
    assert_eq!(created["source"], "github");
    assert_eq!(created["source_secret_set"], false);
    let ping = fixture("github/ping");
    let (reply, _) = deliver(&shim, &format!("/hooks/{id}"), &ping, &[], "").await;
    assert_eq!(reply.text, "ok");
    let post = last(&shim);
    assert_eq!(Some(post.message.clone()), ping.text);
    assert!(post.message.contains("octo-org/switchyard"));
    assert_eq!(props(&post)["override_username"], "ci");
    let reply = Api::new(&shim, None)
        .post_raw(
            &format!("/hooks/{id}"),
            Some("application/json"),
            json!({"text": "still Slack"}).to_string(),
        )
        .await;
    assert_eq!(reply.text, "ok");
    assert_eq!(last(&shim).message, "still Slack");

    // `?wait=true` and `Idempotency-Key` work as for any payload.
    let path = format!("/hooks/{id}/github?wait=true");
    let key = [("Idempotency-Key", "delivery-1")];
    let (first, _) = deliver(&shim, &path, &push, &key, "").await;
    let before = shim.posts().len();
    let (again, _) = deliver(&shim, &path, &push, &key, "").await;
    assert_eq!(first.json()[0]["message"].as_str(), push.text.as_deref());
    assert_eq!(first.json()[0]["id"], again.json()[0]["id"]);
    assert_eq!(shim.posts().len(), before);
    shim.stop().await.unwrap();
}

/// Later events about a pull request reply in the thread of its first post; a push stands
/// alone; `source_threads: false` turns threads off.
#[tokio::test]
async fn events_about_one_pull_request_share_a_thread() {
    let shim = shim().await;
    let (id, _) = hook(&shim, json!({})).await;
    let path = format!("/hooks/{id}/github");
    let send = |name: &'static str| {
        let shim = &shim;
        let path = path.clone();
        async move {
            let (reply, _) = deliver(shim, &path, &fixture(name), &[], "").await;
            assert_eq!(reply.text, "ok", "{name}");
            last(shim)
        }
    };
    let opened = send("github/pull_request_opened").await;
    assert_eq!(opened.root_id, "");
    let review = send("github/pull_request_review_submitted").await;
    assert_eq!(review.root_id, opened.id);
    let comment = send("github/issue_comment_on_pull_request").await;
    assert_eq!(comment.root_id, opened.id);
    let merged = send("github/pull_request_merged").await;
    assert_eq!(merged.root_id, opened.id);
    // An issue is a thing of its own.
    let issue = send("github/issues_opened").await;
    assert_eq!(issue.root_id, "");
    assert_eq!(send("github/issues_closed").await.root_id, issue.id);
    assert_eq!(send("github/push").await.root_id, "");

    // Deleting the root starts a new thread.
    Api::admin(&shim)
        .delete(&format!("/api/v4/posts/{}", opened.id))
        .await;
    let again = send("github/pull_request_reopened").await;
    assert_eq!(again.root_id, "");
    assert_eq!(send("github/pull_request_closed").await.root_id, again.id);

    // Threads are per hook, and a hook can turn them off.
    let (other, _) = hook(&shim, json!({"source_threads": false})).await;
    for name in ["github/pull_request_opened", "github/pull_request_merged"] {
        let (reply, _) = deliver(
            &shim,
            &format!("/hooks/{other}/github"),
            &fixture(name),
            &[],
            "",
        )
        .await;
        assert_eq!(reply.text, "ok");
        assert_eq!(last(&shim).root_id, "", "{name}");
    }
    shim.stop().await.unwrap();
}

/// `source_events` chooses what posts; the rest, and events the source has no post for,
/// answer 200 with `X-Switchboard-Ignored: event:<name>` and post nothing.
#[tokio::test]
async fn filters_and_unknown_events_post_nothing() {
    let shim = shim().await;
    let (id, _) = hook(
        &shim,
        json!({"source_events": ["pull_request.*", "!pull_request.closed", "star"]}),
    )
    .await;
    let path = format!("/hooks/{id}/github");
    let count = shim.posts().len();
    for (name, event) in [
        ("github/push", "push"),
        ("github/pull_request_closed", "pull_request.closed"),
        ("github/deployment", "deployment.created"),
        ("github/star_deleted", "star.deleted"),
    ] {
        let (reply, ignored) = deliver(&shim, &path, &fixture(name), &[], "").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(ignored.as_deref(), Some(format!("event:{event}").as_str()));
    }
    let (reply, _) = deliver(
        &shim,
        &format!("{path}?wait=true"),
        &fixture("github/push"),
        &[],
        "",
    )
    .await;
    assert_eq!(reply.json(), json!([]));
    assert_eq!(shim.posts().len(), count, "nothing posted");
    for name in ["github/pull_request_opened", "github/star_created"] {
        let (reply, ignored) = deliver(&shim, &path, &fixture(name), &[], "").await;
        assert_eq!((reply.text.as_str(), ignored), ("ok", None), "{name}");
    }
    assert_eq!(shim.posts().len(), count + 2);

    // A filter that is no glob is refused when the hook is saved.
    let reply = Api::admin(&shim)
        .post_json(
            "/api/v4/hooks/incoming",
            &json!({"channel_id": shim.town_square.id, "source_events": ["a b"]}),
        )
        .await;
    reply.assert_error(400, "model.incoming_hook.source_events.app_error");
    shim.stop().await.unwrap();
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    let mac = crate::outgoing::hmac_sha256(secret.as_bytes(), body);
    format!("sha256={}", hex::encode(mac))
}

/// With a `source_secret`, only requests GitHub signed with it post; the secret is never
/// answered, only whether it is set.
#[tokio::test]
async fn a_source_secret_checks_the_senders_signature() {
    let shim = shim().await;
    let secret = "It's a Secret to Everybody";
    let (id, created) = hook(&shim, json!({"source": "github", "source_secret": secret})).await;
    assert_eq!(created["source_secret_set"], true);
    assert!(!created.to_string().contains(secret));
    assert!(created.get("source_secret_sealed").is_none(), "{created}");
    let fetched = Api::admin(&shim).incoming_hook(&id).await;
    assert_eq!(fetched["source_secret_set"], true);
    assert!(
        fetched.get("source_secret").is_none() && fetched.get("source_secret_sealed").is_none()
    );

    let path = format!("/hooks/{id}/github");
    let push = fixture("github/push");
    let count = shim.posts().len();
    let wrong = github_signature("another secret", &push.body);
    let (reply, _) = deliver(&shim, &path, &push, &[("X-Hub-Signature-256", &wrong)], "").await;
    let body = reply.assert_error(401, "web.incoming_webhook.source_signature.app_error");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("X-Hub-Signature-256")
    );
    let (reply, _) = deliver(&shim, &path, &push, &[], "").await;
    reply.assert_error(401, "web.incoming_webhook.source_signature.app_error");
    assert_eq!(shim.posts().len(), count, "nothing posted");

    let good = github_signature(secret, &push.body);
    let (reply, _) = deliver(&shim, &path, &push, &[("X-Hub-Signature-256", &good)], "").await;
    assert_eq!(reply.text, "ok");
    assert_eq!(Some(last(&shim).message), push.text);

    // An update without the secret keeps it; `""` clears it.
    let mut update = fetched.clone();
    update.as_object_mut().unwrap().remove("stats");
    let reply = Api::admin(&shim)
        .put_json(&format!("/api/v4/hooks/incoming/{id}"), &update)
        .await;
    assert_eq!(reply.json()["source_secret_set"], true, "{}", reply.text);
    update["source_secret"] = json!("");
    let reply = Api::admin(&shim)
        .put_json(&format!("/api/v4/hooks/incoming/{id}"), &update)
        .await;
    assert_eq!(reply.json()["source_secret_set"], false, "{}", reply.text);
    let (reply, _) = deliver(&shim, &path, &push, &[], "").await;
    assert_eq!(reply.text, "ok");
    shim.stop().await.unwrap();
}

/// A request without the sender's event header was sent to the wrong URL: 400 naming the
/// header. An unknown source is 404; the listing names every source.
#[tokio::test]
async fn a_missing_header_or_an_unknown_source_is_refused() {
    let shim = shim().await;
    let (id, _) = hook(&shim, json!({})).await;
    let count = shim.posts().len();
    let (reply, _) = deliver(
        &shim,
        &format!("/hooks/{id}/github"),
        &fixture("github/push"),
        &[],
        "X-GitHub-Event",
    )
    .await;
    let body = reply.assert_error(400, "web.incoming_webhook.source_header.app_error");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("X-GitHub-Event"), "{message}");
    assert!(message.contains(&format!("/hooks/{id}")), "{message}");
    let (reply, _) = deliver(
        &shim,
        &format!("/hooks/{id}/nosuch"),
        &fixture("github/push"),
        &[],
        "",
    )
    .await;
    reply.assert_error(404, "web.incoming_webhook.source.app_error");
    let (reply, _) = deliver(
        &shim,
        &format!("/hooks/{}/github", "x".repeat(26)),
        &fixture("github/push"),
        &[],
        "",
    )
    .await;
    reply.assert_error(400, "web.incoming_webhook.invalid.app_error");
    assert_eq!(shim.posts().len(), count);

    let listed = Api::admin(&shim)
        .get("/api/v4/hooks/incoming/sources")
        .await
        .json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "github",
            "gitlab",
            "gitea",
            "bitbucket",
            "azure-devops",
            "alertmanager",
            "grafana",
            "jira",
            "pagerduty",
            "sentry",
            "json"
        ]
    );
    assert_eq!(listed[0]["display_name"], "GitHub");
    assert!(
        listed[0]["events"]
            .as_array()
            .unwrap()
            .contains(&json!("pull_request.merged"))
    );
    Api::new(&shim, None)
        .get("/api/v4/hooks/incoming/sources")
        .await
        .assert_error(401, "api.context.session_expired.app_error");
    shim.stop().await.unwrap();
}

/// Alertmanager: a firing group as red attachments, its resolution green in the same
/// thread; the `Authorization` header carries the secret.
#[tokio::test]
async fn an_alert_group_fires_and_resolves_in_one_thread() {
    let shim = shim().await;
    let (id, _) = hook(
        &shim,
        json!({"source": "alertmanager", "source_secret": "s3cret"}),
    )
    .await;
    let path = format!("/hooks/{id}");
    let firing = fixture("alertmanager/firing");
    let (reply, _) = deliver(&shim, &path, &firing, &[], "").await;
    reply.assert_error(401, "web.incoming_webhook.source_signature.app_error");
    let auth = [("Authorization", "Bearer s3cret")];
    let (reply, _) = deliver(&shim, &path, &firing, &auth, "").await;
    assert_eq!(reply.text, "ok");
    let root = last(&shim);
    assert_eq!(Some(root.message.clone()), firing.text);
    assert_eq!(root.post_type, "slack_attachment");
    let attachments = props(&root)["attachments"].clone();
    assert_eq!(attachments.as_array().unwrap().len(), 2);
    assert_eq!(attachments[0]["color"], "#D0021B");
    assert!(!attachments.to_string().contains("@channel"));

    let resolved = fixture("alertmanager/resolved");
    let (reply, _) = deliver(&shim, &path, &resolved, &auth, "").await;
    assert_eq!(reply.text, "ok");
    let reply_post = last(&shim);
    assert_eq!(reply_post.root_id, root.id);
    assert_eq!(props(&reply_post)["attachments"][0]["color"], "#2EB67D");
    assert_eq!(props(&reply_post)["override_username"], "Alertmanager");
    shim.stop().await.unwrap();
}

/// GitLab: its secret token, and a merge request's comments in its thread.
#[tokio::test]
async fn a_gitlab_merge_request_and_its_comments_share_a_thread() {
    let shim = shim().await;
    let (id, _) = hook(&shim, json!({"source_secret": "gl-token"})).await;
    let path = format!("/hooks/{id}/gitlab");
    let opened = fixture("gitlab/merge_request_open");
    let (reply, _) = deliver(&shim, &path, &opened, &[("X-Gitlab-Token", "wrong")], "").await;
    let body = reply.assert_error(401, "web.incoming_webhook.source_signature.app_error");
    assert!(body["message"].as_str().unwrap().contains("X-Gitlab-Token"));
    let token = [("X-Gitlab-Token", "gl-token")];
    let (reply, _) = deliver(&shim, &path, &opened, &token, "").await;
    assert_eq!(reply.text, "ok");
    let root = last(&shim);
    assert_eq!(Some(root.message.clone()), opened.text);
    assert_eq!(props(&root)["override_username"], "GitLab");
    let note = fixture("gitlab/note_on_merge_request");
    let (reply, _) = deliver(&shim, &path, &note, &token, "").await;
    assert_eq!(reply.text, "ok");
    let comment = last(&shim);
    assert_eq!(comment.root_id, root.id);
    assert_eq!(Some(comment.message), note.text);
    let (reply, _) = deliver(&shim, &path, &note, &token, "X-Gitlab-Event").await;
    reply.assert_error(400, "web.incoming_webhook.source_header.app_error");
    shim.stop().await.unwrap();
}

/// Gitea: a signed push at a gitea hook's own URL.
#[tokio::test]
async fn a_signed_gitea_push_posts() {
    let shim = shim().await;
    let (id, _) = hook(&shim, json!({"source": "gitea", "source_secret": "tea"})).await;
    let push = fixture("gitea/push");
    let signature = hex::encode(crate::outgoing::hmac_sha256(b"tea", &push.body));
    let path = format!("/hooks/{id}");
    let (reply, _) = deliver(&shim, &path, &push, &[("X-Gitea-Signature", "00")], "").await;
    reply.assert_error(401, "web.incoming_webhook.source_signature.app_error");
    let (reply, _) = deliver(
        &shim,
        &path,
        &push,
        &[("X-Gitea-Signature", &signature)],
        "",
    )
    .await;
    assert_eq!(reply.text, "ok");
    let post = last(&shim);
    assert_eq!(Some(post.message), push.text);
    assert_eq!(props(&last(&shim))["override_username"], "Gitea");
    shim.stop().await.unwrap();
}

/// Grafana: its HMAC header, and the alert's own links.
#[tokio::test]
async fn a_signed_grafana_alert_posts_with_its_links() {
    let shim = shim().await;
    let (id, _) = hook(&shim, json!({"source_secret": "gf"})).await;
    let firing = fixture("grafana/firing");
    let signature = hex::encode(crate::outgoing::hmac_sha256(b"gf", &firing.body));
    let path = format!("/hooks/{id}/grafana");
    let (reply, _) = deliver(&shim, &path, &firing, &[], "").await;
    reply.assert_error(401, "web.incoming_webhook.source_signature.app_error");
    let header = [("X-Grafana-Alerting-Signature", signature.as_str())];
    let (reply, _) = deliver(&shim, &path, &firing, &header, "").await;
    assert_eq!(reply.text, "ok");
    let post = last(&shim);
    assert_eq!(Some(post.message.clone()), firing.text);
    let text = props(&post)["attachments"][0]["text"].to_string();
    assert!(
        text.contains("viewPanel=4") && text.contains("alerting/silence/new"),
        "{text}"
    );
    shim.stop().await.unwrap();
}

/// `json`: any document as a code block.
#[tokio::test]
async fn any_json_posts_as_a_code_block() {
    let shim = shim().await;
    let (id, _) = hook(&shim, json!({})).await;
    let doc = fixture("json/document");
    let (reply, _) = deliver(&shim, &format!("/hooks/{id}/json"), &doc, &[], "").await;
    assert_eq!(reply.text, "ok");
    let post = last(&shim);
    assert_eq!(Some(post.message.clone()), doc.text);
    assert!(post.message.starts_with("```json\n"));
    shim.stop().await.unwrap();
}

/// Jira: a signed issue, and its comment and worklog in its thread; the update Jira sends
/// beside a comment posts nothing.
#[tokio::test]
async fn a_signed_jira_issue_and_its_comment_share_a_thread() {
    let shim = shim().await;
    let (id, _) = hook(&shim, json!({"source_secret": "jira-secret"})).await;
    let path = format!("/hooks/{id}/jira");
    let send = |name: &'static str| {
        let shim = &shim;
        let path = path.clone();
        async move {
            let f = fixture(name);
            let signature = format!(
                "sha256={}",
                hex::encode(crate::outgoing::hmac_sha256(b"jira-secret", &f.body))
            );
            let (reply, ignored) =
                deliver(shim, &path, &f, &[("X-Hub-Signature", &signature)], "").await;
            assert_eq!(reply.text, "ok", "{name}");
            (f, ignored)
        }
    };
    let created = fixture("jira/issue_created");
    let (reply, _) = deliver(&shim, &path, &created, &[], "").await;
    let body = reply.assert_error(401, "web.incoming_webhook.source_signature.app_error");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("X-Hub-Signature")
    );
    send("jira/issue_created").await;
    let root = last(&shim);
    assert_eq!(Some(root.message.clone()), created.text);
    assert_eq!(root.root_id, "");
    assert_eq!(props(&root)["override_username"], "Jira");
    let (comment, _) = send("jira/comment_created").await;
    let reply_post = last(&shim);
    assert_eq!(reply_post.root_id, root.id);
    assert_eq!(Some(reply_post.message), comment.text);
    send("jira/worklog_created").await;
    assert_eq!(last(&shim).root_id, root.id);
    let before = shim.posts().len();
    let (_, ignored) = send("jira/issue_updated_by_comment").await;
    assert_eq!(ignored.as_deref(), Some("event:jira:issue_updated"));
    assert_eq!(shim.posts().len(), before);
    shim.stop().await.unwrap();
}

/// PagerDuty: any one of several `v1=` signatures lets an incident post (as a red
/// attachment); its acknowledgement lands in its thread.
#[tokio::test]
async fn a_pagerduty_incident_with_rotated_signatures_threads_its_updates() {
    let shim = shim().await;
    let (id, _) = hook(
        &shim,
        json!({"source": "pagerduty", "source_secret": "pd-secret"}),
    )
    .await;
    let path = format!("/hooks/{id}");
    let sign = |secret: &[u8], body: &[u8]| {
        format!(
            "v1={}",
            hex::encode(crate::outgoing::hmac_sha256(secret, body))
        )
    };
    let triggered = fixture("pagerduty/incident_triggered");
    let stale = sign(b"old-secret", &triggered.body);
    let (reply, _) = deliver(
        &shim,
        &path,
        &triggered,
        &[("X-PagerDuty-Signature", &stale)],
        "",
    )
    .await;
    reply.assert_error(401, "web.incoming_webhook.source_signature.app_error");
    let both = format!("{stale},{}", sign(b"pd-secret", &triggered.body));
    let (reply, _) = deliver(
        &shim,
        &path,
        &triggered,
        &[("X-PagerDuty-Signature", &both)],
        "",
    )
    .await;
    assert_eq!(reply.text, "ok");
    let root = last(&shim);
    assert_eq!(Some(root.message.clone()), triggered.text);
    assert_eq!(props(&root)["attachments"][0]["color"], "#D0021B");
    assert_eq!(props(&root)["override_username"], "PagerDuty");
    let acknowledged = fixture("pagerduty/incident_acknowledged");
    let signature = sign(b"pd-secret", &acknowledged.body);
    let (reply, _) = deliver(
        &shim,
        &path,
        &acknowledged,
        &[("X-PagerDuty-Signature", &signature)],
        "",
    )
    .await;
    assert_eq!(reply.text, "ok");
    let follow_up = last(&shim);
    assert_eq!(follow_up.root_id, root.id);
    assert_eq!(Some(follow_up.message), acknowledged.text);
    shim.stop().await.unwrap();
}

/// Sentry: a signed new issue, its resolution in its thread, and a resource it has no post
/// for ignored.
#[tokio::test]
async fn a_signed_sentry_issue_and_its_resolution_share_a_thread() {
    let shim = shim().await;
    let (id, _) = hook(&shim, json!({"source_secret": "client-secret"})).await;
    let path = format!("/hooks/{id}/sentry");
    let sign = |body: &[u8]| hex::encode(crate::outgoing::hmac_sha256(b"client-secret", body));
    let created = fixture("sentry/issue_created");
    let (reply, _) = deliver(
        &shim,
        &path,
        &created,
        &[("Sentry-Hook-Signature", "00")],
        "",
    )
    .await;
    reply.assert_error(401, "web.incoming_webhook.source_signature.app_error");
    let signature = sign(&created.body);
    let (reply, _) = deliver(
        &shim,
        &path,
        &created,
        &[("Sentry-Hook-Signature", &signature)],
        "",
    )
    .await;
    assert_eq!(reply.text, "ok");
    let root = last(&shim);
    assert_eq!(Some(root.message.clone()), created.text);
    assert_eq!(props(&root)["override_username"], "Sentry");
    let resolved = fixture("sentry/issue_resolved");
    let signature = sign(&resolved.body);
    let (reply, _) = deliver(
        &shim,
        &path,
        &resolved,
        &[("Sentry-Hook-Signature", &signature)],
        "",
    )
    .await;
    assert_eq!(reply.text, "ok");
    let follow_up = last(&shim);
    assert_eq!(follow_up.root_id, root.id);
    assert_eq!(Some(follow_up.message), resolved.text);
    let ignored = fixture("sentry/issue_ignored");
    let signature = sign(&ignored.body);
    let (reply, header) = deliver(
        &shim,
        &path,
        &ignored,
        &[("Sentry-Hook-Signature", &signature)],
        "",
    )
    .await;
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(header.as_deref(), Some("event:issue.ignored"));
    assert_eq!(last(&shim).id, follow_up.id);
    let (reply, _) = deliver(&shim, &path, &resolved, &[], "Sentry-Hook-Resource").await;
    reply.assert_error(400, "web.incoming_webhook.source_header.app_error");
    shim.stop().await.unwrap();
}

/// Bitbucket: a signed pull request at a bitbucket hook's own URL, and its comment in its
/// thread.
#[tokio::test]
async fn a_signed_bitbucket_pull_request_and_its_comment_share_a_thread() {
    let shim = shim().await;
    let (id, _) = hook(
        &shim,
        json!({"source": "bitbucket", "source_secret": "bb-secret"}),
    )
    .await;
    let path = format!("/hooks/{id}");
    let sign = |body: &[u8]| {
        format!(
            "sha256={}",
            hex::encode(crate::outgoing::hmac_sha256(b"bb-secret", body))
        )
    };
    let opened = fixture("bitbucket/pullrequest_created");
    let wrong = sign(b"something else");
    let (reply, _) = deliver(&shim, &path, &opened, &[("X-Hub-Signature", &wrong)], "").await;
    reply.assert_error(401, "web.incoming_webhook.source_signature.app_error");
    let signature = sign(&opened.body);
    let (reply, _) = deliver(
        &shim,
        &path,
        &opened,
        &[("X-Hub-Signature", &signature)],
        "",
    )
    .await;
    assert_eq!(reply.text, "ok");
    let root = last(&shim);
    assert_eq!(Some(root.message.clone()), opened.text);
    assert_eq!(props(&root)["override_username"], "Bitbucket");
    let comment = fixture("bitbucket/pullrequest_comment_created");
    let signature = sign(&comment.body);
    let (reply, _) = deliver(
        &shim,
        &path,
        &comment,
        &[("X-Hub-Signature", &signature)],
        "",
    )
    .await;
    assert_eq!(reply.text, "ok");
    let follow_up = last(&shim);
    assert_eq!(follow_up.root_id, root.id);
    assert_eq!(Some(follow_up.message), comment.text);
    shim.stop().await.unwrap();
}

/// Azure DevOps: basic credentials carry the secret; a work item's update lands in the
/// thread of its creation, and a build stands alone.
#[tokio::test]
async fn an_azure_devops_work_item_and_its_update_share_a_thread() {
    use base64::Engine;
    let shim = shim().await;
    let (id, _) = hook(&shim, json!({"source_secret": "ado-secret"})).await;
    let path = format!("/hooks/{id}/azure-devops");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("hooks:ado-secret")
    );
    let auth = [("Authorization", basic.as_str())];
    let created = fixture("azure-devops/workitem_created");
    let (reply, _) = deliver(&shim, &path, &created, &[], "").await;
    let body = reply.assert_error(401, "web.incoming_webhook.source_signature.app_error");
    assert!(body["message"].as_str().unwrap().contains("Authorization"));
    let (reply, _) = deliver(&shim, &path, &created, &auth, "").await;
    assert_eq!(reply.text, "ok");
    let root = last(&shim);
    assert_eq!(Some(root.message.clone()), created.text);
    assert_eq!(props(&root)["override_username"], "Azure DevOps");
    let updated = fixture("azure-devops/workitem_updated");
    let (reply, _) = deliver(&shim, &path, &updated, &auth, "").await;
    assert_eq!(reply.text, "ok");
    let follow_up = last(&shim);
    assert_eq!(follow_up.root_id, root.id);
    assert_eq!(Some(follow_up.message), updated.text);
    let build = fixture("azure-devops/build_complete");
    let (reply, _) = deliver(&shim, &path, &build, &auth, "").await;
    assert_eq!(reply.text, "ok");
    let post = last(&shim);
    assert_eq!(post.root_id, "");
    assert_eq!(Some(post.message), build.text);
    shim.stop().await.unwrap();
}
