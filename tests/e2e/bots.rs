//! Bot accounts: the `/api/v4/bots` routes, bot tokens, and integrations
//! that post as a bot, through the compiled component where hooks are involved.

use serde_json::{Value, json};
use switchboard_tests::{Api, TestShim};

async fn shim_with_bots() -> TestShim {
    TestShim::builder()
        .config(|c| c.service_settings.enable_bot_account_creation = true)
        .start()
        .await
        .unwrap()
}

/// Signs in with a password and returns the session token.
async fn login(shim: &TestShim, username: &str, password: &str) -> String {
    let response = reqwest::Client::new()
        .post(shim.url("/api/v4/users/login"))
        .json(&json!({"login_id": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.headers()["token"].to_str().unwrap().to_string()
}

/// A new token for a bot, made by the admin.
async fn bot_token(admin: &Api, bot_id: &str) -> String {
    let reply = admin
        .post_json(
            &format!("/api/v4/users/{bot_id}/tokens"),
            &json!({"description": "test"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["token"].as_str().unwrap().to_string()
}

/// Adds a bot to the default team and town-square.
async fn join_town_square(shim: &TestShim, admin: &Api, bot_id: &str) {
    let added = admin
        .post_json(
            &format!("/api/v4/teams/{}/members", shim.team.id),
            &json!({"team_id": shim.team.id, "user_id": bot_id}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    let joined = admin
        .post_json(
            &format!("/api/v4/channels/{}/members", shim.town_square.id),
            &json!({"user_id": bot_id}),
        )
        .await;
    assert_eq!(joined.status, 201, "{}", joined.text);
}

async fn create_bot(admin: &Api, body: Value) -> Value {
    let reply = admin.post_json("/api/v4/bots", &body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()
}

#[tokio::test]
async fn create_list_patch_disable_enable_assign() {
    let shim = shim_with_bots().await;
    let admin = Api::admin(&shim);
    let bot = create_bot(
        &admin,
        json!({"username": "deploy-bot", "display_name": "Deploy", "description": "ships it"}),
    )
    .await;
    let id = bot["user_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 26);
    assert_eq!(bot["username"], "deploy-bot");
    assert_eq!(bot["display_name"], "Deploy");
    assert_eq!(bot["owner_id"], shim.admin.id);
    assert_eq!(bot["delete_at"], 0);
    assert!(bot.get("last_icon_update").is_none(), "zero is left out");

    // The bot's user is a bot, with its description, and it greeted its owner.
    let user = admin.get(&format!("/api/v4/users/{id}")).await.json();
    assert_eq!(user["is_bot"], true);
    assert_eq!(user["bot_description"], "ships it");
    assert_eq!(user["email"], "deploy-bot@localhost");
    let greeting = shim
        .posts()
        .into_iter()
        .find(|p| p.user_id == id)
        .expect("a post in the owner's DM");
    assert_eq!(greeting.post_type, "add_bot_teams_channels");
    assert!(greeting.props.contains("from_bot"));

    let listed = admin.get("/api/v4/bots").await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0], bot);

    let patched = admin
        .put_json(
            &format!("/api/v4/bots/{id}"),
            &json!({"description": "ships it faster"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json()["description"], "ships it faster");
    assert_eq!(
        patched.json()["display_name"],
        "Deploy",
        "absent fields stay"
    );

    let disabled = admin
        .post_json(&format!("/api/v4/bots/{id}/disable"), &json!({}))
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_ne!(disabled.json()["delete_at"], 0);
    assert_eq!(admin.get("/api/v4/bots").await.json(), json!([]));
    assert_eq!(
        admin
            .get("/api/v4/bots?include_deleted=true")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    admin
        .get(&format!("/api/v4/bots/{id}"))
        .await
        .assert_error(404, "store.sql_bot.get.missing.app_error");

    let enabled = admin
        .post_json(&format!("/api/v4/bots/{id}/enable"), &json!({}))
        .await;
    assert_eq!(enabled.json()["delete_at"], 0);

    let (alice, _) = shim.create_user("alice").unwrap();
    let assigned = admin
        .post_json(
            &format!("/api/v4/bots/{id}/assign/{}", alice.id),
            &json!({}),
        )
        .await;
    assert_eq!(assigned.status, 200, "{}", assigned.text);
    assert_eq!(assigned.json()["owner_id"], alice.id);
    // A bot cannot own a bot.
    let other = create_bot(&admin, json!({"username": "other-bot"})).await;
    admin
        .post_json(
            &format!(
                "/api/v4/bots/{id}/assign/{}",
                other["user_id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await
        .assert_error(403, "api.context.permissions.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_bot_token_posts_as_the_bot_and_stops_when_disabled() {
    let shim = shim_with_bots().await;
    let admin = Api::admin(&shim);
    let bot = create_bot(&admin, json!({"username": "poster"})).await;
    let id = bot["user_id"].as_str().unwrap().to_string();
    let token = admin
        .post_json(
            &format!("/api/v4/users/{id}/tokens"),
            &json!({"description": "ci"}),
        )
        .await;
    assert_eq!(token.status, 200, "{}", token.text);
    let token = token.json()["token"].as_str().unwrap().to_string();

    // With personal access tokens off for people, a person's token stops
    // working and none can be made; a bot's token goes on working.
    let created = admin
        .post_json(
            "/api/v4/users",
            &json!({"username": "carol", "email": "carol@example.com", "password": "carol-password"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let session = login(&shim, "carol", "carol-password").await;
    shim.set_config(|c| c.service_settings.enable_user_access_tokens = false)
        .unwrap();
    admin
        .get("/api/v4/users/me")
        .await
        .assert_error(401, "api.context.session_expired.app_error");
    Api::new(&shim, Some(&session))
        .post_json("/api/v4/users/me/tokens", &json!({"description": "mine"}))
        .await
        .assert_error(501, "app.user_access_token.disabled");
    shim.set_config(|c| c.service_settings.enable_user_access_tokens = true)
        .unwrap();
    let as_bot = Api::new(&shim, Some(&token));
    let me = as_bot.get("/api/v4/users/me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json()["is_bot"], true);

    // Into a team and channel, then a post that carries from_bot.
    join_town_square(&shim, &admin, &id).await;
    let posted = as_bot
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "build green"}),
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.text);
    assert_eq!(posted.json()["props"]["from_bot"], "true");

    // A DM with a person works for a bot too.
    let dm = as_bot
        .post_json("/api/v4/channels/direct", &json!([id, shim.admin.id]))
        .await;
    assert_eq!(dm.status, 201, "{}", dm.text);

    admin
        .post_json(&format!("/api/v4/bots/{id}/disable"), &json!({}))
        .await;
    as_bot
        .get("/api/v4/users/me")
        .await
        .assert_error(401, "api.context.session_expired.app_error");
    admin
        .post_json(&format!("/api/v4/bots/{id}/enable"), &json!({}))
        .await;
    assert_eq!(
        as_bot.get("/api/v4/users/me").await.status,
        200,
        "tokens are kept"
    );

    // Bots cannot log in with a password.
    Api::new(&shim, None)
        .post_json(
            "/api/v4/users/login",
            &json!({"login_id": "poster", "password": ""}),
        )
        .await
        .assert_error(401, "api.user.login.bot_login_forbidden.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn an_incoming_webhook_owned_by_a_bot_posts_as_the_bot() {
    let shim = shim_with_bots().await;
    let admin = Api::admin(&shim);
    let bot = create_bot(&admin, json!({"username": "alerts"})).await;
    let id = bot["user_id"].as_str().unwrap().to_string();
    let token = bot_token(&admin, &id).await;
    join_town_square(&shim, &admin, &id).await;
    let as_bot = Api::new(&shim, Some(&token));
    let hook = as_bot
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;
    assert_eq!(hook["user_id"], id);
    let sent = Api::new(&shim, None)
        .post_json(
            &format!("/hooks/{}", hook["id"].as_str().unwrap()),
            &json!({"text": "disk full"}),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let post = shim
        .posts()
        .into_iter()
        .find(|p| p.message == "disk full")
        .expect("the webhook's post");
    assert_eq!(post.user_id, id);
    let props: Value = serde_json::from_str(&post.props).unwrap();
    assert_eq!(props["from_bot"], "true");
    assert_eq!(props["from_webhook"], "true");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn permissions_and_configuration() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    admin
        .post_json("/api/v4/bots", &json!({"username": "nope"}))
        .await
        .assert_error(403, "api.bot.create_disabled");
    shim.set_config(|c| c.service_settings.enable_bot_account_creation = true)
        .unwrap();
    let bot = create_bot(&admin, json!({"username": "owned"})).await;
    let id = bot["user_id"].as_str().unwrap();

    let (_, token) = shim.create_user("alice").unwrap();
    let alice = Api::new(&shim, Some(&token));
    alice
        .post_json("/api/v4/bots", &json!({"username": "mine"}))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    alice
        .get("/api/v4/bots")
        .await
        .assert_error(403, "api.context.permissions.app_error");
    // Without read permission a bot looks missing, never forbidden.
    alice
        .get(&format!("/api/v4/bots/{id}"))
        .await
        .assert_error(404, "store.sql_bot.get.missing.app_error");
    alice
        .put_json(&format!("/api/v4/bots/{id}"), &json!({"description": "x"}))
        .await
        .assert_error(404, "store.sql_bot.get.missing.app_error");
    alice
        .post_json(
            &format!("/api/v4/users/{id}/tokens"),
            &json!({"description": "x"}),
        )
        .await
        // Minting a token is a permission of its own, asked before the bot's.
        .assert_error(403, "api.context.permissions.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_creates_nothing() {
    let shim = shim_with_bots().await;
    let admin = Api::admin(&shim);
    let cases = [
        (
            json!({"username": "a".repeat(65)}),
            "model.bot.is_valid.username.app_error",
        ),
        (
            json!({"username": "system"}),
            "model.bot.is_valid.username.app_error",
        ),
        (
            json!({"username": "Upper"}),
            "model.bot.is_valid.username.app_error",
        ),
        (json!({}), "model.bot.is_valid.username.app_error"),
        (
            json!({"username": "long-name", "display_name": "d".repeat(65)}),
            "model.bot.is_valid.user_id.app_error",
        ),
        (
            json!({"username": "long-text", "description": "d".repeat(1025)}),
            "model.bot.is_valid.description.app_error",
        ),
        (
            json!({"username": "trailing."}),
            "model.user.is_valid.email.app_error",
        ),
        // A person already has this name.
        (
            json!({"username": "admin"}),
            "app.user.save.username_exists.app_error",
        ),
    ];
    for (body, id) in cases {
        admin
            .post_json("/api/v4/bots", &body)
            .await
            .assert_error(400, id);
    }
    admin
        .post_raw("/api/v4/bots", Some("application/json"), "null")
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    admin
        .post_raw("/api/v4/bots", Some("application/json"), "{not json")
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    let bot = create_bot(&admin, json!({"username": "taken"})).await;
    admin
        .post_json("/api/v4/bots", &json!({"username": "taken"}))
        .await
        .assert_error(400, "app.user.save.username_exists.app_error");
    // An unknown owner cannot be a patch's target either: unknown bots are 404.
    admin
        .put_json(&format!("/api/v4/bots/{}", "x".repeat(26)), &json!({}))
        .await
        .assert_error(404, "store.sql_bot.get.missing.app_error");
    let all = admin.get("/api/v4/bots?include_deleted=true").await.json();
    assert_eq!(all, json!([bot]), "only the one good bot exists");
    assert!(
        shim.posts().iter().all(|p| p.user_id == bot["user_id"]),
        "no other bot greeted anyone"
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn convert_between_user_and_bot() {
    let shim = shim_with_bots().await;
    let admin = Api::admin(&shim);
    let (alice, alice_token) = shim.create_user("alice").unwrap();
    let bot = admin
        .post_json(
            &format!("/api/v4/users/{}/convert_to_bot", alice.id),
            &json!({}),
        )
        .await;
    assert_eq!(bot.status, 200, "{}", bot.text);
    assert_eq!(
        bot.json()["owner_id"],
        alice.id,
        "its own owner, as Mattermost does"
    );
    let user = admin
        .get(&format!("/api/v4/users/{}", alice.id))
        .await
        .json();
    assert_eq!(user["is_bot"], true);
    // Her personal access token still works: bots act through tokens.
    assert_eq!(
        Api::new(&shim, Some(&alice_token))
            .get("/api/v4/users/me")
            .await
            .status,
        200
    );

    admin
        .post_json(
            &format!("/api/v4/bots/{}/convert_to_user", alice.id),
            &json!({}),
        )
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    let back = admin
        .post_json(
            &format!("/api/v4/bots/{}/convert_to_user", alice.id),
            &json!({"password": "a-long-password"}),
        )
        .await;
    assert_eq!(back.status, 200, "{}", back.text);
    assert_eq!(back.json()["is_bot"], false);
    let login = Api::new(&shim, None)
        .post_json(
            "/api/v4/users/login",
            &json!({"login_id": "alice", "password": "a-long-password"}),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    admin
        .get(&format!("/api/v4/bots/{}?include_deleted=true", alice.id))
        .await
        .assert_error(404, "store.sql_bot.get.missing.app_error");

    let (_, token) = shim.create_user("bob").unwrap();
    Api::new(&shim, Some(&token))
        .post_json(
            &format!("/api/v4/users/{}/convert_to_bot", alice.id),
            &json!({}),
        )
        .await
        .assert_error(403, "api.context.permissions.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn deactivating_an_owner_disables_their_bots_and_tells_the_admins() {
    let shim = shim_with_bots().await;
    let admin = Api::admin(&shim);
    let (alice, _) = shim.create_user("alice").unwrap();
    let bot = create_bot(&admin, json!({"username": "alices-bot"})).await;
    let id = bot["user_id"].as_str().unwrap().to_string();
    let kept = create_bot(&admin, json!({"username": "admins-bot"})).await;
    admin
        .post_json(
            &format!("/api/v4/bots/{id}/assign/{}", alice.id),
            &json!({}),
        )
        .await;
    let token = bot_token(&admin, &id).await;

    let gone = admin.delete(&format!("/api/v4/users/{}", alice.id)).await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    let listed = admin.get("/api/v4/bots?include_deleted=true").await.json();
    let state = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["username"] == name)
            .unwrap()["delete_at"]
            .as_i64()
            .unwrap()
    };
    assert_ne!(
        state("alices-bot"),
        0,
        "the deactivated owner's bot is disabled"
    );
    assert_eq!(state("admins-bot"), 0, "other owners' bots are untouched");
    assert_eq!(
        Api::new(&shim, Some(&token))
            .get("/api/v4/users/me")
            .await
            .status,
        401
    );
    let orphaned = admin
        .get("/api/v4/bots?include_deleted=true&only_orphaned=true")
        .await
        .json();
    assert_eq!(orphaned.as_array().unwrap().len(), 1);
    assert_eq!(orphaned[0]["user_id"], id);
    assert_ne!(orphaned[0]["user_id"], kept["user_id"]);

    let system = admin.get("/api/v4/users/username/system-bot").await.json();
    assert_eq!(system["is_bot"], true);
    let notice = shim
        .posts()
        .into_iter()
        .find(|p| p.user_id == system["id"])
        .expect("the system bot's notice");
    assert!(notice.message.contains("@alice"), "{}", notice.message);
    assert!(notice.message.contains("@alices-bot"), "{}", notice.message);

    // With the setting off, a deactivated owner's bots keep working.
    shim.set_config(|c| c.service_settings.disable_bots_when_owner_is_deactivated = false)
        .unwrap();
    let (bob, _) = shim.create_user("bob").unwrap();
    let bobs = create_bot(&admin, json!({"username": "bobs-bot"})).await;
    let bobs_id = bobs["user_id"].as_str().unwrap();
    admin
        .post_json(
            &format!("/api/v4/bots/{bobs_id}/assign/{}", bob.id),
            &json!({}),
        )
        .await;
    admin.delete(&format!("/api/v4/users/{}", bob.id)).await;
    assert_eq!(
        admin.get(&format!("/api/v4/bots/{bobs_id}")).await.json()["delete_at"],
        0
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn a_bot_hears_posts_on_the_websocket() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let shim = shim_with_bots().await;
    let admin = Api::admin(&shim);
    let bot = create_bot(&admin, json!({"username": "listener"})).await;
    let id = bot["user_id"].as_str().unwrap().to_string();
    let token = bot_token(&admin, &id).await;
    join_town_square(&shim, &admin, &id).await;
    let mut request = format!("{}/api/v4/websocket", shim.url.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    admin
        .post_json(
            "/api/v4/posts",
            &json!({"channel_id": shim.town_square.id, "message": "hello bot"}),
        )
        .await;
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(Ok(message)) = socket.next().await {
            let Ok(text) = message.to_text() else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if event["event"] == "posted" {
                return Some(event);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("a posted event");
    assert!(heard.to_string().contains("hello bot"), "{heard}");
    shim.stop().await.unwrap();
}
