//! `POST /hooks/{id}` with what real senders send: bodies, payload fields,
//! channels, overrides, Slack translation, splitting and errors — through the
//! compiled component over HTTP.

use serde_json::{Value, json};
use switchboard_host_shim::store::Post;
use switchboard_tests::{Api, Reply, TestShim};

struct Hook {
    shim: TestShim,
    admin: Api,
    path: String,
}

impl Hook {
    async fn new() -> Hook {
        Hook::with(TestShim::start().await.unwrap(), json!({})).await
    }

    async fn with(shim: TestShim, extra: Value) -> Hook {
        let admin = Api::admin(&shim);
        let hook = admin
            .create_incoming_hook(&shim.town_square.id, extra)
            .await;
        let path = format!("/hooks/{}", hook["id"].as_str().unwrap());
        Hook { shim, admin, path }
    }

    async fn send(&self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Reply {
        Api::new(&self.shim, None)
            .post_raw(&self.path, content_type, body)
            .await
    }

    /// Sends JSON and expects `ok`.
    async fn ok(&self, body: Value) -> Post {
        let reply = self.send(Some("application/json"), body.to_string()).await;
        assert_eq!(
            (reply.status.as_u16(), reply.text.as_str()),
            (200, "ok"),
            "for {body}"
        );
        self.last()
    }

    /// Sends a raw body, expects `ok`, and returns the message posted.
    async fn accepted(&self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> String {
        let reply = self.send(content_type, body).await;
        assert_eq!(reply.text, "ok", "{content_type:?}");
        self.last().message
    }

    fn last(&self) -> Post {
        self.shim.posts().pop().expect("a post")
    }

    fn props(post: &Post) -> Value {
        serde_json::from_str(&post.props).unwrap()
    }
}

#[tokio::test]
async fn json_under_any_content_type_but_form_and_multipart() {
    let hook = Hook::new().await;
    for ct in [
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("application/json;charset=UTF-8"),
        Some("text/plain"),
        Some("mimetype/wrong"),
    ] {
        let body = json!({"text": format!("via {ct:?}")}).to_string();
        assert_eq!(hook.accepted(ct, body).await, format!("via {ct:?}"));
    }
}

#[tokio::test]
async fn form_bodies_multipart_and_json_sent_as_a_form() {
    let hook = Hook::new().await;
    let form = Some("application/x-www-form-urlencoded");
    assert_eq!(
        hook.accepted(form, r#"payload={"text":"plus+and%20space"}"#)
            .await,
        "plus and space"
    );
    assert_eq!(
        hook.accepted(form, "payload=%7B%22text%22%3A%22encoded%22%7D")
            .await,
        "encoded"
    );
    // Slack accepts JSON under a form content type; Mattermost does not; we do.
    assert_eq!(
        hook.accepted(form, r#"{"text":"json as form"}"#).await,
        "json as form"
    );
    hook.send(form, "payload=%zz")
        .await
        .assert_error(400, "web.incoming_webhook.parse_form.app_error");
    hook.send(form, "a=1;b=2")
        .await
        .assert_error(400, "web.incoming_webhook.parse_form.app_error");
    hook.send(form, "other=1")
        .await
        .assert_error(400, "web.incoming_webhook.decode.app_error");

    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nfrom multipart\r\n--XyZ--\r\n";
    assert_eq!(
        hook.accepted(Some("multipart/form-data; boundary=XyZ"), multipart)
            .await,
        "from multipart"
    );
    let unknown =
        "--XyZ\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\nx\r\n--XyZ--\r\n";
    hook.send(Some("multipart/form-data; boundary=XyZ"), unknown)
        .await
        .assert_error(400, "web.incoming_webhook.decode.app_error");
    hook.send(Some("application/json; charset"), r#"{"text":"x"}"#)
        .await
        .assert_error(400, "web.incoming_webhook.parse_form.app_error");
}

#[tokio::test]
async fn go_decoding_rules() {
    let hook = Hook::new().await;
    assert_eq!(
        hook.accepted(None, r#"{"TEXT":"upper key"} trailing junk"#)
            .await,
        "upper key"
    );
    assert_eq!(
        hook.accepted(None, "{\"text\":\"line one\nline\ttwo\"}")
            .await,
        "line one\nline\ttwo"
    );
    hook.send(None, "{\"text\":\"x\",\"username\":\"a\nb\"}")
        .await
        .assert_error(400, "web.incoming_webhook.decode.app_error");
    hook.send(None, r#"{"text":5}"#)
        .await
        .assert_error(400, "web.incoming_webhook.decode.app_error");
    hook.send(None, "not json")
        .await
        .assert_error(400, "web.incoming_webhook.decode.app_error");

    let post = hook
        .ok(json!({"attachments": [null, {"fields": [null, {"title": "n", "value": 1000000, "short": "TRUE"},
                                                     {"title": "f", "value": 4.5}, {"title": "b", "value": true}]}]}))
        .await;
    let fields = &Hook::props(&post)["attachments"][0]["fields"];
    assert_eq!(fields.as_array().unwrap().len(), 3);
    assert_eq!(
        fields[0],
        json!({"title": "n", "value": "1000000", "short": true})
    );
    assert_eq!(fields[1]["value"], "4.5");
    assert_eq!(fields[2]["value"], "true");
    hook.send(
        None,
        r#"{"attachments":[{"fields":[{"title":"x","value":"y","short":"yes"}]}]}"#,
    )
    .await
    .assert_error(400, "web.incoming_webhook.decode.app_error");
}

#[tokio::test]
async fn channel_override_and_direct_messages() {
    let hook = Hook::new().await;
    let shim = &hook.shim;
    let off_topic = shim
        .shim
        .app
        .store
        .channel_by_name(&shim.team.id, "off-topic")
        .unwrap();
    for channel in ["off-topic", "#off-topic"] {
        let post = hook.ok(json!({"text": "moved", "channel": channel})).await;
        assert_eq!(post.channel_id, off_topic.id, "{channel}");
    }
    let (bob, _) = shim.create_user("bob").unwrap();
    let post = hook.ok(json!({"text": "psst", "channel": "@BOB"})).await;
    let dm = shim.shim.app.store.channel(&post.channel_id).unwrap();
    assert_eq!(
        dm.channel_type,
        switchboard_host_shim::store::ChannelType::Direct
    );
    assert!(dm.name.contains(&bob.id) && dm.name.contains(&shim.admin.id));

    let body = hook
        .send(None, r#"{"text":"x","channel":"nowhere"}"#)
        .await
        .assert_error(404, "web.incoming_webhook.general.app_error");
    assert!(
        body["detailed_error"]
            .as_str()
            .unwrap()
            .contains("web.incoming_webhook.channel.app_error")
    );
    let body = hook
        .send(None, r#"{"text":"x","channel":"@nobody"}"#)
        .await
        .assert_error(400, "web.incoming_webhook.general.app_error");
    assert!(
        body["detailed_error"]
            .as_str()
            .unwrap()
            .contains("web.incoming_webhook.user.app_error")
    );
}

#[tokio::test]
async fn locked_hooks_and_private_channels() {
    let shim = TestShim::start().await.unwrap();
    let (_, token) = shim.create_user("erin").unwrap();
    let admin = Api::admin(&shim);
    let private = admin
        .post_json(
            "/api/v4/channels",
            &json!({"team_id": shim.team.id, "name": "ops", "display_name": "Ops", "type": "P"}),
        )
        .await
        .json();
    let erin = Api::new(&shim, Some(&token));
    let hook = erin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    let anonymous = Api::new(&shim, None);
    let body = anonymous
        .post_raw(&path, None, r#"{"text":"x","channel":"off-topic"}"#)
        .await
        .assert_error(403, "web.incoming_webhook.general.app_error");
    assert!(
        body["detailed_error"]
            .as_str()
            .unwrap()
            .contains("channel_locked")
    );

    // An unlocked hook of an admin may move, but erin's reach is checked on private channels.
    let admin_hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let admin_path = format!("/hooks/{}", admin_hook["id"].as_str().unwrap());
    assert_eq!(
        anonymous
            .post_raw(&admin_path, None, r#"{"text":"x","channel":"ops"}"#)
            .await
            .text,
        "ok"
    );
    assert_eq!(
        shim.posts().last().unwrap().channel_id,
        private["id"].as_str().unwrap()
    );
    let erin_unlocked = {
        let store = &shim.shim.app.store;
        let key = format!("incoming_hook/{}", hook["id"].as_str().unwrap());
        let mut stored: Value =
            serde_json::from_slice(&store.kv_get(&key).unwrap().unwrap()).unwrap();
        stored["channel_locked"] = json!(false);
        store.kv_set(&key, stored.to_string().as_bytes()).unwrap();
        path
    };
    let body = anonymous
        .post_raw(&erin_unlocked, None, r#"{"text":"x","channel":"ops"}"#)
        .await
        .assert_error(403, "web.incoming_webhook.general.app_error");
    assert!(
        body["detailed_error"]
            .as_str()
            .unwrap()
            .contains("web.incoming_webhook.permissions.app_error")
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn threads_through_root_id() {
    let hook = Hook::new().await;
    let root = hook.ok(json!({"text": "root"})).await;
    let reply = hook.ok(json!({"text": "reply", "root_id": root.id})).await;
    assert_eq!(reply.root_id, root.id);
    for bad in [reply.id.as_str(), "x"] {
        let body = hook
            .send(None, json!({"text": "x", "root_id": bad}).to_string())
            .await
            .assert_error(400, "web.incoming_webhook.general.app_error");
        assert!(body["detailed_error"].as_str().unwrap().contains("root_id"));
    }
}

#[tokio::test]
async fn overrides_follow_the_settings() {
    let hook = Hook::new().await;
    let request = json!({"text": "x", "username": "Deploy Bot", "icon_url": "http://i/x.png", "icon_emoji": ":rocket:"});
    let props = Hook::props(&hook.ok(request.clone()).await);
    for key in [
        "override_username",
        "override_icon_url",
        "override_icon_emoji",
    ] {
        assert!(
            props.get(key).is_none(),
            "{key} without the settings: {props}"
        );
    }
    hook.shim
        .set_config(|c| {
            c.service_settings.enable_post_username_override = true;
            c.service_settings.enable_post_icon_override = true;
        })
        .unwrap();
    let props = Hook::props(&hook.ok(request).await);
    assert_eq!(props["override_username"], "Deploy Bot");
    assert_eq!(props["override_icon_url"], "http://i/x.png");
    assert_eq!(props["override_icon_emoji"], ":rocket:");
    let props = Hook::props(&hook.ok(json!({"text": "x"})).await);
    assert_eq!(props["override_username"], "webhook");
    assert!(props.get("override_icon_url").is_none());
}

#[tokio::test]
async fn props_type_and_priority_rules() {
    let hook = Hook::new().await;
    let post = hook
        .ok(json!({"text": "x", "props": {
            "from_webhook": "false", "override_username": "evil", "webhook_display_name": "spoof",
            "attachments": [{"text": "raw"}], "add_channel_member": "x", "card": "kept", "override_icon_emoji": ":x:"
        }}))
        .await;
    let props = Hook::props(&post);
    assert_eq!(props["from_webhook"], "true");
    assert_eq!(props["webhook_display_name"], "Test hook");
    assert_eq!(props["card"], "kept");
    assert_eq!(props["override_icon_emoji"], ":x:");
    for gone in ["override_username", "attachments", "add_channel_member"] {
        assert!(props.get(gone).is_none(), "{gone}: {props}");
    }

    assert_eq!(
        hook.ok(json!({"text": "x", "type": "custom_deploy"}))
            .await
            .post_type,
        "custom_deploy"
    );
    let forced = hook
        .ok(json!({"text": "x", "type": "custom_deploy", "attachments": [{"text": "a"}]}))
        .await;
    assert_eq!(forced.post_type, "slack_attachment");
    let body = hook
        .send(None, r#"{"text":"x","type":"system_join_channel"}"#)
        .await
        .assert_error(400, "web.incoming_webhook.general.app_error");
    assert!(
        body["detailed_error"]
            .as_str()
            .unwrap()
            .contains("api.context.invalid_param.app_error")
    );
    hook.send(None, r#"{"text":"x","type":"weird"}"#)
        .await
        .assert_error(500, "web.incoming_webhook.general.app_error");

    hook.send(None, r#"{"text":"x","priority":{}}"#)
        .await
        .assert_error(400, "web.incoming_webhook.general.app_error");
    let post = hook
        .ok(json!({"text": "x", "priority": {"priority": "urgent", "requested_ack": true}}))
        .await;
    let metadata: Value = serde_json::from_str(&post.metadata).unwrap();
    assert_eq!(metadata["priority"]["priority"], "urgent");
    assert_eq!(metadata["priority"]["requested_ack"], true);
}

#[tokio::test]
async fn slack_translation_where_the_spec_says() {
    let hook = Hook::new().await;
    let admin_id = hook.shim.admin.id.clone();
    let post = hook
        .ok(json!({"text": format!("<!channel> <!here> <!all> <@{admin_id}> <@UNKNOWN1> <http://x.io|X> <http://a|b\nc>")}))
        .await;
    assert_eq!(
        post.message,
        "@channel @here @all @admin <@UNKNOWN1> [X](http://x.io) <http://a|b\nc>"
    );
    // What real senders use and Mattermost leaves raw.
    let post = hook
        .ok(json!({"text": "<!here|here> <!channel|channel> <!everyone> <!subteam^S1|@oncall> <@U99|sam> <#C1|ops> <http://x.io | Spaced>"}))
        .await;
    assert_eq!(
        post.message,
        "@here @channel @all @oncall @sam ~ops [Spaced](http://x.io)"
    );
    // Attachments: lenient links in text and pretext; title gets mentions but no links.
    let post = hook
        .ok(json!({"attachments": [{"pretext": "<http://p|P>", "text": "<http://t|T\nwo>", "title": "<!here> <http://x|y>", "fields": [{"title": "<http://f|F>", "value": "<http://v|V>"}]}]}))
        .await;
    let a = &Hook::props(&post)["attachments"][0];
    assert_eq!(a["pretext"], "[P](http://p)");
    assert_eq!(a["text"], "[T\nwo](http://t)");
    assert_eq!(a["title"], "@here <http://x|y>");
    assert_eq!(a["fields"][0]["title"], "<http://f|F>");
    assert_eq!(a["fields"][0]["value"], "[V](http://v)");
}

#[tokio::test]
async fn long_messages_split_with_attachments_last() {
    let hook = Hook::new().await;
    let before = hook.shim.posts().len();
    let text = "a".repeat(16384);
    let reply = hook
        .send(
            None,
            json!({"text": text, "attachments": [{"text": "att"}]}).to_string(),
        )
        .await;
    assert_eq!(reply.text, "ok");
    let posts = hook.shim.posts().split_off(before);
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].message.chars().count(), 16383);
    assert_eq!(posts[1].message, "a");
    assert!(Hook::props(&posts[0]).get("attachments").is_none());
    assert_eq!(Hook::props(&posts[1])["attachments"][0]["text"], "att");
    assert_eq!(Hook::props(&posts[0])["from_webhook"], "true");

    // A code fence cut across parts is closed and reopened.
    let before = hook.shim.posts().len();
    let code = format!("intro\n```rust\n{}```\n", "let x = 1;\n".repeat(2000));
    assert_eq!(
        hook.send(None, json!({"text": code}).to_string())
            .await
            .text,
        "ok"
    );
    let posts = hook.shim.posts().split_off(before);
    assert_eq!(posts.len(), 2);
    assert!(
        posts[0].message.ends_with("\n```"),
        "{}",
        &posts[0].message[posts[0].message.len() - 20..]
    );
    assert!(posts[1].message.starts_with("```rust\n"));
    assert!(posts.iter().all(|p| p.message.chars().count() <= 16383));
    // Nothing lost but the separators and the added fences.
    let joined: String = posts
        .iter()
        .map(|p| p.message.replace("```rust\n", "").replace("\n```", ""))
        .collect::<Vec<_>>()
        .join("");
    assert_eq!(joined.matches("let x = 1;").count(), 2000);
}

#[tokio::test]
async fn errors_in_mattermost_order() {
    let hook = Hook::new().await;
    let body = hook
        .send(None, r#"{"text":""}"#)
        .await
        .assert_error(400, "web.incoming_webhook.general.app_error");
    assert!(
        body["detailed_error"]
            .as_str()
            .unwrap()
            .contains("web.incoming_webhook.text.app_error")
    );
    // An empty message is reported before the unknown hook.
    let anonymous = Api::new(&hook.shim, None);
    let body = anonymous
        .post_raw("/hooks/nosuchhook", None, r#"{"text":""}"#)
        .await
        .assert_error(400, "web.incoming_webhook.general.app_error");
    assert!(
        body["detailed_error"]
            .as_str()
            .unwrap()
            .contains("web.incoming_webhook.text.app_error")
    );
    let body = anonymous
        .post_raw("/hooks/nosuchhook", None, r#"{"text":"x"}"#)
        .await
        .assert_error(400, "web.incoming_webhook.general.app_error");
    assert!(
        body["detailed_error"]
            .as_str()
            .unwrap()
            .contains("web.incoming_webhook.invalid.app_error")
    );
    hook.shim
        .set_config(|c| c.service_settings.enable_incoming_webhooks = false)
        .unwrap();
    hook.send(None, r#"{"text":"x"}"#)
        .await
        .assert_error(501, "web.incoming_webhook.general.app_error");
    // A body that does not parse is reported first, even with the feature off.
    hook.send(None, "{")
        .await
        .assert_error(400, "web.incoming_webhook.decode.app_error");
    assert_eq!(hook.admin.get("/api/v4/system/ping").await.status, 200);
}

#[tokio::test]
async fn a_realistic_alert_renders_as_the_spec_says() {
    let hook = Hook::new().await;
    let admin_id = hook.shim.admin.id.clone();
    let alert = json!({
        "username": "alertmanager",
        "icon_url": "https://example.com/am.png",
        "text": format!("<!here> *FIRING* <https://grafana.example.com/d/abc|High error rate> — paging <@{admin_id}>"),
        "attachments": [{
            "fallback": "High error rate on api",
            "color": "danger",
            "title": "api: 5xx > 5%",
            "title_link": "https://grafana.example.com/d/abc",
            "text": "Runbook: <https://runbooks.example.com/api|api runbook>",
            "fields": [
                {"title": "Severity", "value": "critical", "short": true},
                {"title": "Errors/min", "value": 1200, "short": true},
                {"title": "Ratio", "value": 0.057, "short": false}
            ],
            "footer": "Alertmanager",
            "ts": 1732350000
        }]
    });
    let post = hook.ok(alert).await;
    assert_eq!(
        post.message,
        "@here *FIRING* [High error rate](https://grafana.example.com/d/abc) — paging @admin"
    );
    assert_eq!(post.post_type, "slack_attachment");
    let props = Hook::props(&post);
    let a = &props["attachments"][0];
    let keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "fallback",
            "color",
            "pretext",
            "author_name",
            "author_link",
            "author_icon",
            "title",
            "title_link",
            "text",
            "fields",
            "image_url",
            "thumb_url",
            "footer",
            "footer_icon",
            "ts"
        ]
    );
    assert_eq!(a["color"], "danger");
    assert_eq!(
        a["text"],
        "Runbook: [api runbook](https://runbooks.example.com/api)"
    );
    assert_eq!(a["fields"][1]["value"], "1200");
    assert_eq!(a["fields"][2]["value"], "0.057");
    assert_eq!(a["ts"], 1732350000);
    assert!(
        props.get("override_username").is_none(),
        "overrides are off by default"
    );
}
