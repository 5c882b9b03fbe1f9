//! Managing personal access tokens as mmctl, mattermostdriver and
//! @mattermost/client do: list (never the token), read, disable, enable,
//! revoke and search, with Mattermost's permissions.

use serde_json::{Value, json};
use switchboard_host_shim::store::{User, new_id};
use switchboard_tests::{Api, TestShim};

/// A person holding `system_user_access_token` (may manage their own
/// tokens), signed in with a token the store mints.
fn token_user(shim: &TestShim, username: &str) -> (User, String) {
    let store = &shim.shim.app.store;
    let user = User {
        id: new_id(),
        username: username.into(),
        email: format!("{username}@example.com"),
        roles: "system_user system_user_access_token".into(),
        ..User::default()
    };
    store.create_user(&user, "!").unwrap();
    let token = store.create_token(&user.id, "session", "test").unwrap();
    (user, token)
}

async fn mint(api: &Api, user: &str, description: &str) -> (String, String) {
    let reply = api
        .post_json(
            &format!("/api/v4/users/{user}/tokens"),
            &json!({"description": description}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 26);
    (id, body["token"].as_str().unwrap().to_string())
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect()
}

async fn post_token(api: &Api, action: &str, id: &str) -> u16 {
    api.post_json(
        &format!("/api/v4/users/tokens/{action}"),
        &json!({"token_id": id}),
    )
    .await
    .status
    .as_u16()
}

#[tokio::test]
async fn tokens_are_listed_read_disabled_enabled_and_revoked() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let (dana, dana_session) = token_user(&shim, "dana");
    let dana_api = Api::new(&shim, Some(&dana_session));

    // Dana mints her own token; the listing names it by id, without secret.
    let (id, secret) = mint(&dana_api, "me", "ci").await;
    let listed = dana_api.get("/api/v4/users/me/tokens").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let listed = listed.json();
    assert_eq!(
        listed,
        json!([{"id": id, "user_id": dana.id, "description": "ci", "is_active": true}])
    );
    assert!(!listed.to_string().contains(&secret));
    let one = dana_api.get(&format!("/api/v4/users/tokens/{id}")).await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.json(), listed[0]);

    // The token works; disabled it does not; enabled it works again.
    let with_token = Api::new(&shim, Some(&secret));
    assert_eq!(with_token.get("/api/v4/users/me").await.status, 200);
    assert_eq!(post_token(&dana_api, "disable", &id).await, 200);
    with_token
        .get("/api/v4/users/me")
        .await
        .assert_error(401, "api.context.session_expired.app_error");
    let one = dana_api
        .get(&format!("/api/v4/users/tokens/{id}"))
        .await
        .json();
    assert_eq!(one["is_active"], false);
    assert_eq!(post_token(&dana_api, "enable", &id).await, 200);
    assert_eq!(with_token.get("/api/v4/users/me").await.status, 200);

    // Others' tokens: not for Dana; an admin sees and manages them all.
    let (admin_token_id, _) = mint(&admin, "me", "admin's").await;
    dana_api
        .get(&format!("/api/v4/users/{}/tokens", shim.admin.id))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    dana_api
        .get(&format!("/api/v4/users/tokens/{admin_token_id}"))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    assert_eq!(post_token(&dana_api, "disable", &admin_token_id).await, 403);
    dana_api
        .get("/api/v4/users/tokens")
        .await
        .assert_error(403, "api.context.permissions.app_error");
    let all = admin.get("/api/v4/users/tokens").await.json();
    assert!(ids(&all).contains(&id.as_str()) && ids(&all).contains(&admin_token_id.as_str()));
    let page = admin
        .get("/api/v4/users/tokens?page=0&per_page=1")
        .await
        .json();
    assert_eq!(ids(&page).len(), 1);
    let dana_tokens = admin
        .get(&format!("/api/v4/users/{}/tokens", dana.id))
        .await
        .json();
    assert_eq!(ids(&dana_tokens), [id.as_str()]);

    // Search (admins): by username, user id or token id prefix.
    for term in ["dan", &dana.id[..5], &id[..8]] {
        let found = admin
            .post_json("/api/v4/users/tokens/search", &json!({"term": term}))
            .await;
        assert_eq!(found.status, 200, "{}", found.text);
        assert_eq!(ids(&found.json()), [id.as_str()], "{term}");
    }
    admin
        .post_json("/api/v4/users/tokens/search", &json!({"term": ""}))
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    dana_api
        .post_json("/api/v4/users/tokens/search", &json!({"term": "dan"}))
        .await
        .assert_error(403, "api.context.permissions.app_error");

    // Revoked: gone, and the token no longer signs in.
    assert_eq!(post_token(&admin, "revoke", &id).await, 200);
    with_token
        .get("/api/v4/users/me")
        .await
        .assert_error(401, "api.context.session_expired.app_error");
    dana_api
        .get(&format!("/api/v4/users/tokens/{id}"))
        .await
        .assert_error(404, "app.user_access_token.get_by_user.app_error");
    admin
        .post_json("/api/v4/users/tokens/revoke", &json!({"token_id": id}))
        .await
        .assert_error(404, "app.user_access_token.get_by_user.app_error");
    admin
        .post_json("/api/v4/users/tokens/disable", &json!({}))
        .await
        .assert_error(400, "api.context.invalid_body_param.app_error");
    shim.stop().await.unwrap();
}

/// Without `system_user_access_token`, a person may not list even their own
/// tokens (Mattermost's default roles); a bot's tokens are its manager's to
/// manage, and a bot token can be disabled like any.
#[tokio::test]
async fn plain_users_and_bots_follow_mattermosts_permissions() {
    let shim = TestShim::builder()
        .config(|c| c.service_settings.enable_bot_account_creation = true)
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let (_, plain) = shim.create_user("plain").unwrap();
    Api::new(&shim, Some(&plain))
        .get("/api/v4/users/me/tokens")
        .await
        .assert_error(403, "api.context.permissions.app_error");

    let bot = admin
        .post_json("/api/v4/bots", &json!({"username": "ackbot"}))
        .await
        .json();
    let bot_id = bot["user_id"].as_str().unwrap();
    let (id, secret) = mint(&admin, bot_id, "bot").await;
    let listed = admin
        .get(&format!("/api/v4/users/{bot_id}/tokens"))
        .await
        .json();
    assert_eq!(ids(&listed), [id.as_str()]);
    let bot_api = Api::new(&shim, Some(&secret));
    assert_eq!(bot_api.get("/api/v4/users/me").await.status, 200);
    assert_eq!(post_token(&admin, "disable", &id).await, 200);
    assert_eq!(bot_api.get("/api/v4/users/me").await.status, 401);
    assert_eq!(post_token(&admin, "enable", &id).await, 200);
    assert_eq!(bot_api.get("/api/v4/users/me").await.status, 200);
    shim.stop().await.unwrap();
}
