//! The REST routes real clients call beyond the basics: channels by team
//! and channel name, a user's channels, threads, archiving, moderation,
//! hook lists with counts, and posts as clients read them.

use serde_json::{Value, json};
use switchboard_tests::{Api, TestShim};

async fn create_post(api: &Api, channel_id: &str, message: &str, root_id: &str) -> Value {
    let reply = api
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": channel_id, "message": message, "root_id": root_id}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()
}

async fn private_channel(admin: &Api, shim: &TestShim, name: &str) -> Value {
    let reply = admin
        .post_json(
            "/api/v4/channels",
            &json!({"team_id": shim.team.id, "name": name, "display_name": name, "type": "P"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()
}

#[tokio::test]
async fn channels_by_team_and_channel_name() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let (_, token) = shim.create_user("erin").unwrap();
    let erin = Api::new(&shim, Some(&token));
    let team = &shim.team.name;
    let reply = erin
        .get(&format!(
            "/api/v4/teams/name/{team}/channels/name/town-square"
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["id"], shim.town_square.id);

    private_channel(&admin, &shim, "secret").await;
    // A private channel the user may not read does not exist for them.
    erin.get(&format!("/api/v4/teams/name/{team}/channels/name/secret"))
        .await
        .assert_error(404, "app.channel.get_by_name.missing.app_error");
    assert_eq!(
        admin
            .get(&format!("/api/v4/teams/name/{team}/channels/name/secret"))
            .await
            .json()["name"],
        "secret"
    );
    let members = erin
        .get(&format!(
            "/api/v4/channels/{}/members?per_page=1&page=1",
            shim.town_square.id
        ))
        .await
        .json();
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
    assert_eq!(members[0]["channel_id"], shim.town_square.id);
    assert_eq!(members[0]["roles"], "channel_user");
    let secret = admin
        .get(&format!("/api/v4/teams/name/{team}/channels/name/secret"))
        .await
        .json();
    erin.get(&format!(
        "/api/v4/channels/{}/members",
        secret["id"].as_str().unwrap()
    ))
    .await
    .assert_error(403, "api.context.permissions.app_error");
    erin.get("/api/v4/teams/name/nosuchteam/channels/name/town-square")
        .await
        .assert_error(404, "app.team.get_by_name.missing.app_error");
    erin.get(&format!("/api/v4/teams/name/{team}/channels/name/nope"))
        .await
        .assert_error(404, "app.channel.get_by_name.missing.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn my_channels_in_a_team_include_direct_channels() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let (frank, token) = shim.create_user("frank").unwrap();
    let frank_api = Api::new(&shim, Some(&token));
    let direct = frank_api
        .post_json("/api/v4/channels/direct", &json!([frank.id, shim.admin.id]))
        .await
        .json();
    private_channel(&admin, &shim, "hidden").await;
    let reply = frank_api
        .get(&format!("/api/v4/users/me/teams/{}/channels", shim.team.id))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let ids: Vec<Value> = reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert!(ids.contains(&json!(shim.town_square.id)), "{ids:?}");
    assert!(ids.contains(&direct["id"]), "{ids:?}");
    assert_eq!(ids.len(), 2, "{ids:?}");
    // Another user's list is for admins only.
    frank_api
        .get(&format!(
            "/api/v4/users/{}/teams/{}/channels",
            shim.admin.id, shim.team.id
        ))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    let admins_view = admin
        .get(&format!(
            "/api/v4/users/{}/teams/{}/channels",
            frank.id, shim.team.id
        ))
        .await;
    assert_eq!(admins_view.json().as_array().unwrap().len(), 2);
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_thread_is_a_post_list_from_the_root_or_any_reply() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let root = create_post(&admin, &shim.town_square.id, "root", "").await;
    let root_id = root["id"].as_str().unwrap();
    let first = create_post(&admin, &shim.town_square.id, "first", root_id).await;
    let second = create_post(&admin, &shim.town_square.id, "second", root_id).await;
    create_post(&admin, &shim.town_square.id, "elsewhere", "").await;

    let reply = admin
        .get(&format!(
            "/api/v4/posts/{}/thread",
            first["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let list = reply.json();
    assert_eq!(
        list["order"],
        json!([second["id"], first["id"], root["id"]]),
        "newest first"
    );
    assert_eq!(list["posts"].as_object().unwrap().len(), 3);
    assert_eq!(list["posts"][root_id]["message"], "root");
    assert_eq!(
        (
            &list["next_post_id"],
            &list["prev_post_id"],
            &list["has_next"]
        ),
        (&json!(""), &json!(""), &json!(false))
    );
    // A page of one reply leaves one for the next page.
    let page = admin
        .get(&format!(
            "/api/v4/posts/{root_id}/thread?perPage=1&direction=down"
        ))
        .await
        .json();
    assert_eq!(page["order"], json!([first["id"], root["id"]]));
    assert_eq!(page["has_next"], true);
    admin
        .get(&format!("/api/v4/posts/{root_id}/thread?perPage=x"))
        .await
        .assert_error(400, "api.context.invalid_param.app_error");
    admin
        .get("/api/v4/posts/nosuchpost/thread")
        .await
        .assert_error(404, "app.post.get.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn archived_channels_refuse_posts_and_commands_until_restored() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let (_, token) = shim.create_user("gina").unwrap();
    let gina = Api::new(&shim, Some(&token));
    let channel = admin
        .post_json(
            "/api/v4/channels",
            &json!({"team_id": shim.team.id, "name": "old", "display_name": "Old", "type": "O"}),
        )
        .await
        .json();
    let id = channel["id"].as_str().unwrap();
    // Members may archive; others may not.
    gina.delete(&format!("/api/v4/channels/{id}"))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    let reply = admin.delete(&format!("/api/v4/channels/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json(), json!({"status": "OK"}));
    let archived = admin.get(&format!("/api/v4/channels/{id}")).await.json();
    assert_ne!(archived["delete_at"], 0);
    let posts = admin.channel_posts(id).await;
    assert_eq!(posts[0]["type"], "system_channel_deleted");
    assert_eq!(posts[0]["message"], "admin archived the channel.");

    admin
        .post_json("/api/v4/posts", &json!({"channel_id": id, "message": "hi"}))
        .await
        .assert_error(400, "api.post.create_post.can_not_post_to_deleted.error");
    admin
        .post_json(
            "/api/v4/commands/execute",
            &json!({"channel_id": id, "command": "/shrug"}),
        )
        .await
        .assert_error(400, "api.command.execute_command.deleted.error");
    admin
        .delete(&format!("/api/v4/channels/{id}"))
        .await
        .assert_error(400, "api.channel.delete_channel.deleted.app_error");
    admin
        .delete(&format!("/api/v4/channels/{}", shim.town_square.id))
        .await
        .assert_error(400, "api.channel.delete_channel.cannot.app_error");

    // Restoring is for team admins.
    gina.post_json(&format!("/api/v4/channels/{id}/restore"), &json!({}))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    let restored = admin
        .post_json(&format!("/api/v4/channels/{id}/restore"), &json!({}))
        .await;
    assert_eq!(restored.status, 200, "{}", restored.text);
    assert_eq!(restored.json()["delete_at"], 0);
    create_post(&admin, id, "back again", "").await;
    admin
        .post_json(&format!("/api/v4/channels/{id}/restore"), &json!({}))
        .await
        .assert_error(400, "api.channel.restore_channel.restored.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_read_only_channel_refuses_members_posts_and_commands() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let (_, token) = shim.create_user("hank").unwrap();
    let hank = Api::new(&shim, Some(&token));
    let channel = shim.town_square.id.clone();
    let patch = json!([{"name": "create_post", "roles": {"members": false, "guests": false}}]);
    hank.put_json(
        &format!("/api/v4/channels/{channel}/moderations/patch"),
        &patch,
    )
    .await
    .assert_error(403, "api.context.permissions.app_error");
    let reply = admin
        .put_json(
            &format!("/api/v4/channels/{channel}/moderations/patch"),
            &patch,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let moderations = reply.json();
    let create_post_moderation = moderations
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "create_post")
        .unwrap()
        .clone();
    assert_eq!(
        create_post_moderation["roles"],
        json!({"guests": {"value": false, "enabled": true}, "members": {"value": false, "enabled": true}})
    );
    let manage_members = &moderations[2];
    assert_eq!(manage_members["name"], "manage_members");
    assert_eq!(manage_members["roles"]["guests"], Value::Null);

    hank.post_json(
        "/api/v4/posts",
        &json!({"channel_id": channel, "message": "x"}),
    )
    .await
    .assert_error(403, "api.context.permissions.app_error");
    hank.post_json(
        "/api/v4/commands/execute",
        &json!({"channel_id": channel, "command": "/shrug"}),
    )
    .await
    .assert_error(403, "api.context.permissions.app_error");
    // Admins still post.
    create_post(&admin, &channel, "announcement", "").await;

    let open_again = json!([{"name": "create_post", "roles": {"members": true}}]);
    admin
        .put_json(
            &format!("/api/v4/channels/{channel}/moderations/patch"),
            &open_again,
        )
        .await;
    create_post(&hank, &channel, "thanks", "").await;
    admin
        .put_json(
            &format!("/api/v4/channels/{channel}/moderations/patch"),
            &json!({"x": 1}),
        )
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn hook_lists_can_carry_their_total_count() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    for _ in 0..3 {
        admin
            .create_incoming_hook(&shim.town_square.id, json!({}))
            .await;
    }
    let plain = admin.get("/api/v4/hooks/incoming?per_page=2").await.json();
    assert_eq!(plain.as_array().unwrap().len(), 2);
    let counted = admin
        .get("/api/v4/hooks/incoming?per_page=2&include_total_count=true")
        .await
        .json();
    assert_eq!(counted["total_count"], 3);
    assert_eq!(counted["incoming_webhooks"].as_array().unwrap().len(), 2);

    let reply = admin
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": shim.team.id, "trigger_words": ["go"], "callback_urls": ["http://example.com/x"]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let counted = admin
        .get("/api/v4/hooks/outgoing?include_total_count=true")
        .await
        .json();
    assert_eq!(counted["total_count"], 1);
    assert_eq!(counted["outgoing_webhooks"].as_array().unwrap().len(), 1);

    let base = json!({"team_id": shim.team.id, "trigger_words": ["x"], "callback_urls": ["http://example.com/y"]});
    let mut long_name = base.clone();
    long_name["username"] = json!("u".repeat(65));
    admin
        .post_json("/api/v4/hooks/outgoing", &long_name)
        .await
        .assert_error(400, "model.outgoing_hook.username.app_error");
    let mut long_icon = base;
    long_icon["icon_url"] = json!(format!("http://example.com/{}", "i".repeat(1020)));
    admin
        .post_json("/api/v4/hooks/outgoing", &long_icon)
        .await
        .assert_error(400, "model.outgoing_hook.icon_url.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn icon_emoji_overrides_are_read_as_icon_urls() {
    let shim = TestShim::builder()
        .config(|c| c.service_settings.enable_post_icon_override = true)
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    let reply = Api::new(&shim, None)
        .post_json(
            &format!("/hooks/{}", hook["id"].as_str().unwrap()),
            &json!({"text": "deployed", "icon_emoji": ":rocket:"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let post = &admin.channel_posts(&shim.town_square.id).await[0];
    assert_eq!(post["props"]["override_icon_emoji"], ":rocket:");
    assert_eq!(
        post["props"]["override_icon_url"],
        "/static/emoji/1f680.png"
    );
    // Stored as sent: the rendering happens when clients read.
    let stored = shim.posts().pop().unwrap();
    assert!(stored.props_json().get("override_icon_url").is_none());
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn authors_patch_and_delete_their_posts() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let (_, token) = shim.create_user("ivy").unwrap();
    let ivy = Api::new(&shim, Some(&token));
    let root = create_post(&ivy, &shim.town_square.id, "build running", "").await;
    let root_id = root["id"].as_str().unwrap();
    let reply = create_post(&admin, &shim.town_square.id, "thanks", root_id).await;

    let patched = ivy
        .put_json(
            &format!("/api/v4/posts/{root_id}/patch"),
            &json!({"message": "build passed", "is_pinned": true}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let patched = patched.json();
    assert_eq!(patched["message"], "build passed");
    assert_eq!(patched["is_pinned"], true);
    assert_ne!(patched["edit_at"], 0);
    // Another member may not edit or delete it; a missing post is the same 403.
    let (_, other) = shim.create_user("jack").unwrap();
    let jack = Api::new(&shim, Some(&other));
    jack.put_json(
        &format!("/api/v4/posts/{root_id}/patch"),
        &json!({"message": "x"}),
    )
    .await
    .assert_error(403, "api.context.permissions.app_error");
    jack.delete(&format!("/api/v4/posts/{root_id}"))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    jack.delete("/api/v4/posts/nosuchpost")
        .await
        .assert_error(403, "api.context.permissions.app_error");

    let deleted = ivy.delete(&format!("/api/v4/posts/{root_id}")).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.json(), json!({"status": "OK"}));
    // The replies go with the root.
    admin
        .get(&format!("/api/v4/posts/{}", reply["id"].as_str().unwrap()))
        .await
        .assert_error(404, "app.post.get.app_error");
    let kinds: Vec<String> = shim.events().iter().map(|e| e.event.clone()).collect();
    assert!(kinds.contains(&"post_edited".to_string()), "{kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("post_deleted"));
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn users_by_ids_and_by_usernames() {
    let shim = TestShim::start().await.unwrap();
    let (kim, token) = shim.create_user("kim").unwrap();
    let api = Api::new(&shim, Some(&token));
    let found = api
        .post_json(
            "/api/v4/users/ids",
            &json!([kim.id, shim.admin.id, "nosuchuser"]),
        )
        .await
        .json();
    let names: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kim", "admin"]);
    let found = api
        .post_json("/api/v4/users/usernames", &json!(["KIM", "nobody"]))
        .await
        .json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], kim.id);
    api.post_json("/api/v4/users/ids", &json!([]))
        .await
        .assert_error(400, "api.context.invalid_param.app_error");
    Api::new(&shim, None)
        .post_json("/api/v4/users/ids", &json!([kim.id]))
        .await
        .assert_error(401, "api.context.session_expired.app_error");
    shim.stop().await.unwrap();
}
