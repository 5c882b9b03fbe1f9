//! Block Kit from real senders, posted through `POST /hooks/{id}` into the compiled
//! component: each payload is written after the sender's public source, with the Markdown
//! and attachment a Mattermost client should show.

use serde_json::{Value, json};
use switchboard_host_shim::store::Post;
use switchboard_tests::{Api, TestShim};

async fn post(shim: &TestShim, path: &str, body: &Value) -> (u16, String, Option<Post>) {
    let before = shim.posts().len();
    let reply = Api::new(shim, None)
        .post_raw(path, Some("application/json"), body.to_string())
        .await;
    let posts = shim.posts();
    let created = (posts.len() > before)
        .then(|| posts.last().cloned())
        .flatten();
    (reply.status.as_u16(), reply.text, created)
}

fn props(post: &Post) -> Value {
    serde_json::from_str(&post.props).unwrap()
}

#[tokio::test]
async fn real_senders_read_as_they_do_in_slack() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    let admin_id = shim.admin.id.clone();

    // (sender, payload, message, fallback_text prop)
    let top_level = [
        (
            "Home Assistant notify.slack with data.blocks",
            json!({
                "text": "Motion in the garage",
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn",
                        "text": "*Motion* detected in the _garage_ <https://ha.example.com/lovelace/cameras|Open cameras>"}},
                    {"type": "context", "elements": [
                        {"type": "mrkdwn", "text": "Home Assistant"},
                        {"type": "plain_text", "text": "binary_sensor.garage_motion"}
                    ]}
                ]
            }),
            "**Motion** detected in the _garage_ [Open cameras](https://ha.example.com/lovelace/cameras)\n\n\
             Home Assistant · binary\\_sensor.garage\\_motion",
            Some("Motion in the garage"),
        ),
        (
            "slack-github-action deploy summary",
            json!({
                "text": "Deploy finished",
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": "Deploy #42 succeeded", "emoji": true}},
                    {"type": "section", "fields": [
                        {"type": "mrkdwn", "text": "*Repository*\n<https://github.com/acme/api|acme/api>"},
                        {"type": "mrkdwn", "text": "*Commit*\n`3f2a9c1`"}
                    ]},
                    {"type": "divider"},
                    {"type": "actions", "elements": [
                        {"type": "button", "text": {"type": "plain_text", "text": "View run"},
                         "url": "https://github.com/acme/api/actions/runs/42", "style": "primary"},
                        {"type": "button", "text": {"type": "plain_text", "text": "Roll back"},
                         "action_id": "rollback", "value": "42", "style": "danger"}
                    ]}
                ]
            }),
            "### Deploy #42 succeeded\n\n**Repository**\n[acme/api](https://github.com/acme/api)\n\
             **Commit**\n`3f2a9c1`\n\n---\n\n[View run](https://github.com/acme/api/actions/runs/42)",
            Some("Deploy finished"),
        ),
        (
            "a Workflow Builder style rich_text message",
            json!({
                "blocks": [{"type": "rich_text", "elements": [
                    {"type": "rich_text_section", "elements": [
                        {"type": "text", "text": "On call: "},
                        {"type": "user", "user_id": admin_id},
                        {"type": "text", "text": " — checklist:"}
                    ]},
                    {"type": "rich_text_list", "style": "bullet", "elements": [
                        {"type": "rich_text_section", "elements": [{"type": "text", "text": "Check dashboards"}]},
                        {"type": "rich_text_section", "elements": [
                            {"type": "text", "text": "Page the DBA", "style": {"bold": true}}
                        ]}
                    ]}
                ]}]
            }),
            "On call: @admin — checklist:\n\n- Check dashboards\n- **Page the DBA**",
            None,
        ),
        (
            "plain_text that looks like markup stays text",
            json!({
                "blocks": [{"type": "section", "text": {"type": "plain_text",
                    "text": "<!channel> *not bold* <script>alert(1)</script>"}}]
            }),
            "&lt;!channel&gt; \\*not bold\\* &lt;script&gt;alert(1)&lt;/script&gt;",
            None,
        ),
    ];
    for (sender, payload, message, fallback) in top_level {
        let (status, text, created) = post(&shim, &path, &payload).await;
        assert_eq!((status, text.as_str()), (200, "ok"), "{sender}");
        let created = created.unwrap_or_else(|| panic!("{sender}: no post"));
        assert_eq!(created.message, message, "{sender}");
        assert_eq!(
            props(&created).get("fallback_text").and_then(Value::as_str),
            fallback,
            "{sender}"
        );
    }
}

#[tokio::test]
async fn blocks_inside_attachments_fill_the_attachment() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let path = format!("/hooks/{}", hook["id"].as_str().unwrap());

    // Uptime Kuma's Slack provider for a monitor that went down, with its dashboard button.
    let uptime_kuma = json!({
        "text": "Uptime Kuma Alert\n[api] [🔴 Down] timeout of 48000ms exceeded",
        "username": "Uptime Kuma",
        "icon_emoji": ":robot:",
        "attachments": [{
            "color": "#e01e5a",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Uptime Kuma Alert"}},
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*Message*\n[api] [🔴 Down] timeout of 48000ms exceeded"},
                    {"type": "mrkdwn", "text": "*Time (UTC)*\n2026-12-02 07:00:00"}
                ]},
                {"type": "actions", "elements": [{
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Visit Uptime Kuma"},
                    "value": "Uptime-Kuma",
                    "url": "https://kuma.example.com/dashboard/3"
                }]}
            ]
        }]
    });
    let (status, _, created) = post(&shim, &path, &uptime_kuma).await;
    assert_eq!(status, 200);
    let created = created.expect("a post");
    assert_eq!(
        created.message,
        "Uptime Kuma Alert\n[api] [🔴 Down] timeout of 48000ms exceeded"
    );
    assert_eq!(created.post_type, "slack_attachment");
    let a = &props(&created)["attachments"][0];
    assert_eq!(a["color"], "#e01e5a");
    assert_eq!(a["title"], "Uptime Kuma Alert");
    assert_eq!(
        a["fields"],
        json!([
            {"title": "Message", "value": "[api] [🔴 Down] timeout of 48000ms exceeded", "short": true},
            {"title": "Time (UTC)", "value": "2026-12-02 07:00:00", "short": true}
        ])
    );
    assert_eq!(
        a["text"],
        "[Visit Uptime Kuma](https://kuma.example.com/dashboard/3)"
    );
    assert!(a.get("blocks").is_none(), "blocks are rendered, not stored");

    // An attachment's own text gives way to its blocks and becomes the fallback; members
    // the sender set are kept.
    let both = json!({"attachments": [{
        "text": "legacy text",
        "title": "Own title",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Header"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "<https://x.example.com|link> ~old~"}}
        ]
    }]});
    let (status, _, created) = post(&shim, &path, &both).await;
    assert_eq!(status, 200);
    let a = &props(&created.expect("a post"))["attachments"][0];
    assert_eq!(a["title"], "Own title");
    assert_eq!(a["fallback"], "legacy text");
    assert_eq!(
        a["text"],
        "### Header\n\n[link](https://x.example.com) ~~old~~"
    );
}

#[tokio::test]
async fn blocks_with_nothing_to_show_are_no_text() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    // Only interactive elements, which call Slack back: nothing to render.
    let body = json!({"blocks": [{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Ack"}, "action_id": "ack"}
    ]}]});
    let (status, text, created) = post(&shim, &path, &body).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("web.incoming_webhook.text.app_error"),
        "{text}"
    );
    assert!(created.is_none());
    // A `blocks` that is not an array is ignored, and the text is posted.
    let (status, _, created) = post(&shim, &path, &json!({"text": "hi", "blocks": "x"})).await;
    assert_eq!(status, 200);
    assert_eq!(created.expect("a post").message, "hi");
}

/// A Slack app's slash command answering with Block Kit, as Bolt apps do.
#[tokio::test]
async fn command_responses_with_blocks() {
    use crate::commands::{command_for, execute, ok, shim};
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let backend = switchboard_tests::Backend::start().await;
    command_for(&admin, &shim, &backend, "P").await;
    backend.reply_json(json!({
        "response_type": "in_channel",
        "text": "Build status",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "*main* is ~red~ green"},
             "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Logs"},
                           "url": "https://ci.example.com/logs/7"}}
        ]
    }));
    ok(&execute(&admin, &shim.town_square.id, "/deploy status").await);
    let created = shim.posts().pop().expect("a post");
    assert_eq!(
        created.message,
        "**main** is ~~red~~ green\n[Logs](https://ci.example.com/logs/7)"
    );
    assert_eq!(props(&created)["fallback_text"], "Build status");
    shim.stop().await.unwrap();
}

/// An outgoing webhook's receiver answering with Block Kit.
#[tokio::test]
async fn outgoing_webhook_responses_with_blocks() {
    use switchboard_tests::{Answer, CallbackServer, wait_until};
    let shim = crate::commands::shim().await;
    let admin = Api::admin(&shim);
    let server = CallbackServer::start(|_| {
        Answer::json(json!({"blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Weather"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "_sunny_, 21°C"}]}
        ]}))
    })
    .await;
    let reply = admin
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": shim.team.id, "trigger_words": ["weather"],
                    "callback_urls": [server.url.clone()], "display_name": "Weather"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let reply = admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "weather today"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    wait_until(|| shim.posts().len() == 2).await;
    let answer = shim.posts().pop().unwrap();
    assert_eq!(answer.message, "### Weather\n\n_sunny_, 21°C");
    server.stop().await;
    shim.stop().await.unwrap();
}
