//! Emoji reactions through the real shim: a bot acknowledges a post with its
//! token, the channel's readers hear `reaction_added` / `reaction_removed`,
//! the post shows `has_reactions` and `metadata.reactions`, and only channel
//! members may react.

use crate::websocket::Client;
use serde_json::{Value, json};
use switchboard_tests::{Api, TestShim};

async fn create_post(api: &Api, channel: &str, message: &str) -> Value {
    let reply = api
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": channel, "message": message}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()
}

/// A bot in the team and town-square, with a token.
async fn bot_in_town_square(shim: &TestShim, admin: &Api) -> (String, String) {
    let bot = admin
        .post_json("/api/v4/bots", &json!({"username": "ackbot"}))
        .await
        .json();
    let bot_id = bot["user_id"].as_str().unwrap().to_string();
    for (path, body) in [
        (
            format!("/api/v4/teams/{}/members", shim.team.id),
            json!({"team_id": shim.team.id, "user_id": bot_id}),
        ),
        (
            format!("/api/v4/channels/{}/members", shim.town_square.id),
            json!({"user_id": bot_id}),
        ),
    ] {
        let reply = admin.post_json(&path, &body).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let token = admin
        .post_json(
            &format!("/api/v4/users/{bot_id}/tokens"),
            &json!({"description": "ack"}),
        )
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    (bot_id, token)
}

fn reaction_of(event: &Value) -> Value {
    serde_json::from_str(event["data"]["reaction"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_bot_acknowledges_a_post_and_the_channel_hears_it() {
    let shim = TestShim::builder()
        .config(|c| c.service_settings.enable_bot_account_creation = true)
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let (bot_id, bot_token) = bot_in_town_square(&shim, &admin).await;
    let bot = Api::new(&shim, Some(&bot_token));
    let (_, member_token) = shim.create_user("member").unwrap();
    let member = Api::new(&shim, Some(&member_token));
    let mut member_ws = Client::with_header(&shim, &member_token).await;

    let channel = shim.town_square.id.clone();
    let post = create_post(&admin, &channel, "deploy finished").await;
    let post_id = post["id"].as_str().unwrap().to_string();
    assert!(post.get("has_reactions").is_none(), "{post}");
    let before = post["update_at"].as_i64().unwrap();
    assert_eq!(member_ws.next_event().await.unwrap()["event"], "posted");

    let saved = bot
        .post_json(
            "/api/v4/reactions",
            &json!({"user_id": bot_id, "post_id": post_id, "emoji_name": "white_check_mark"}),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    let saved = saved.json();
    assert_eq!(
        (
            saved["user_id"].as_str(),
            saved["post_id"].as_str(),
            saved["emoji_name"].as_str()
        ),
        (
            Some(bot_id.as_str()),
            Some(post_id.as_str()),
            Some("white_check_mark")
        )
    );
    assert_eq!(saved["channel_id"], channel);
    assert!(saved["create_at"].as_i64().unwrap() > 0);

    let event = member_ws.next_event().await.unwrap();
    assert_eq!(event["event"], "reaction_added");
    assert_eq!(event["broadcast"]["channel_id"], channel);
    assert_eq!(reaction_of(&event), saved);

    let listed = member
        .get(&format!("/api/v4/posts/{post_id}/reactions"))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json(), json!([saved]));
    let shown = member.get(&format!("/api/v4/posts/{post_id}")).await.json();
    assert_eq!(shown["has_reactions"], true);
    assert_eq!(shown["metadata"]["reactions"], json!([saved]));
    assert!(shown["update_at"].as_i64().unwrap() > before);
    // A client catching up sees the post again.
    let since = member
        .get(&format!("/api/v4/channels/{channel}/posts?since={before}"))
        .await
        .json();
    assert_eq!(since["order"], json!([post_id]));
    assert_eq!(since["posts"][&post_id]["has_reactions"], true);

    // Someone else's reaction is not the member's to remove.
    member
        .delete(&format!(
            "/api/v4/users/{bot_id}/posts/{post_id}/reactions/white_check_mark"
        ))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    let removed = bot
        .delete(&format!(
            "/api/v4/users/me/posts/{post_id}/reactions/white_check_mark"
        ))
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    let event = member_ws.next_event().await.unwrap();
    assert_eq!(event["event"], "reaction_removed");
    assert_eq!(event["broadcast"]["channel_id"], channel);
    let gone = reaction_of(&event);
    assert_eq!(
        (gone["user_id"].as_str(), gone["emoji_name"].as_str()),
        (Some(bot_id.as_str()), Some("white_check_mark"))
    );
    assert_eq!(
        member
            .get(&format!("/api/v4/posts/{post_id}/reactions"))
            .await
            .json(),
        json!([])
    );
    let shown = member.get(&format!("/api/v4/posts/{post_id}")).await.json();
    assert!(shown.get("has_reactions").is_none(), "{shown}");
    assert!(shown["metadata"].get("reactions").is_none(), "{shown}");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn only_channel_members_react_and_bad_reactions_get_mattermosts_errors() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let (member_user, member_token) = shim.create_user("member").unwrap();
    let member = Api::new(&shim, Some(&member_token));
    let react = |post_id: &str, emoji: &str, user: &str| json!({"user_id": user, "post_id": post_id, "emoji_name": emoji});

    // A public channel the member is not in: readable, but no reacting.
    let side = admin
        .post_json(
            "/api/v4/channels",
            &json!({"team_id": shim.team.id, "name": "side", "display_name": "Side", "type": "O"}),
        )
        .await
        .json();
    let side_post = create_post(&admin, side["id"].as_str().unwrap(), "over here").await;
    let side_id = side_post["id"].as_str().unwrap();
    member
        .post_json(
            "/api/v4/reactions",
            &react(side_id, "eyes", &member_user.id),
        )
        .await
        .assert_error(403, "api.context.permissions.app_error");

    let post = create_post(&admin, &shim.town_square.id, "hello").await;
    let post_id = post["id"].as_str().unwrap();
    member
        .post_json("/api/v4/reactions", &react(post_id, "eyes", &shim.admin.id))
        .await
        .assert_error(403, "api.reaction.save_reaction.user_id.app_error");
    for bad in [
        react("not-an-id", "eyes", &member_user.id),
        react(post_id, "", &member_user.id),
        react(post_id, &"a".repeat(65), &member_user.id),
    ] {
        member
            .post_json("/api/v4/reactions", &bad)
            .await
            .assert_error(400, "api.reaction.save_reaction.invalid.app_error");
    }
    member
        .post_json(
            "/api/v4/reactions",
            &react(post_id, "no_such_emoji_here", &member_user.id),
        )
        .await
        .assert_error(404, "app.emoji.get_by_name.no_result");
    member
        .post_json(
            "/api/v4/reactions",
            &react(
                &switchboard_host_shim::store::new_id(),
                "eyes",
                &member_user.id,
            ),
        )
        .await
        .assert_error(403, "api.context.permissions.app_error");
    member
        .delete(&format!(
            "/api/v4/users/me/posts/{post_id}/reactions/bad*name"
        ))
        .await
        .assert_error(400, "api.context.invalid_url_param.app_error");

    // Members react, and again with the same emoji changes nothing.
    for _ in 0..2 {
        let reply = member
            .post_json("/api/v4/reactions", &react(post_id, "+1", &member_user.id))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let listed = admin
        .get(&format!("/api/v4/posts/{post_id}/reactions"))
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    shim.stop().await.unwrap();
}
