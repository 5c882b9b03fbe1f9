//! The server's own bot, `system-bot`, cannot be disabled, deactivated,
//! renamed or converted to a person, and survives its owner's deactivation:
//! the host's notices depend on it.

use serde_json::json;
use switchboard_tests::{Api, TestShim};

#[tokio::test]
async fn the_system_bot_cannot_be_disabled_deactivated_or_converted() {
    let shim = TestShim::builder()
        .config(|c| c.service_settings.enable_bot_account_creation = true)
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    let bot = shim.shim.app.system_bot().unwrap();
    assert_eq!(bot.username, "system-bot");
    let id = &bot.id;

    admin
        .post_json(&format!("/api/v4/bots/{id}/disable"), &json!({}))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    admin
        .delete(&format!("/api/v4/users/{id}"))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    admin
        .post_json(
            &format!("/api/v4/bots/{id}/convert_to_user"),
            &json!({"password": "pass-word-1"}),
        )
        .await
        .assert_error(403, "api.context.permissions.app_error");
    admin
        .put_json(
            &format!("/api/v4/bots/{id}"),
            &json!({"username": "renamed"}),
        )
        .await
        .assert_error(403, "api.context.permissions.app_error");
    // Nothing changed: still an active bot with its name.
    let reply = admin.get(&format!("/api/v4/bots/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let now = reply.json();
    assert_eq!(
        (now["username"].as_str(), now["delete_at"].as_i64()),
        (Some("system-bot"), Some(0))
    );
    // Other changes are allowed, and enabling is a no-op.
    let reply = admin
        .put_json(
            &format!("/api/v4/bots/{id}"),
            &json!({"description": "notices"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = admin
        .post_json(&format!("/api/v4/bots/{id}/enable"), &json!({}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    // Its owner (the first admin) is deactivated: other bots of theirs are
    // disabled (DisableBotsWhenOwnerIsDeactivated), the system bot is not.
    let owner = shim.shim.app.store.bot(id).unwrap().owner_id;
    assert_eq!(owner, shim.admin.id);
    let reply = admin
        .post_json("/api/v4/bots", &json!({"username": "helper"}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let helper = reply.json()["user_id"].as_str().unwrap().to_string();
    let reply = admin.delete("/api/v4/users/me").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let store = &shim.shim.app.store;
    assert_eq!(store.bot(id).unwrap().delete_at, 0);
    assert_eq!(store.user(id).unwrap().delete_at, 0);
    assert_ne!(store.bot(&helper).unwrap().delete_at, 0);
    shim.stop().await.unwrap();
}
