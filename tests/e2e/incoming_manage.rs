//! `/api/v4/hooks/incoming`: CRUD, paging, validation and permission rules,
//! through the compiled component.

use serde_json::json;
use switchboard_tests::{Api, TestShim};

#[tokio::test]
async fn create_get_update_delete() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(
            &shim.town_square.id,
            json!({"display_name": "Alerts", "description": "from Alertmanager"}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    assert_eq!(id.len(), 26);
    assert_eq!(hook["team_id"], shim.team.id);
    assert_eq!(hook["user_id"], shim.admin.id);
    assert_eq!(
        hook["channel_locked"], false,
        "admins may leave a hook unlocked"
    );

    let got = admin.get(&format!("/api/v4/hooks/incoming/{id}")).await;
    assert_eq!(got.status, 200);
    // A single hook also carries our `stats` (docs/COMPATIBILITY.md); the rest is as created.
    let mut got = got.json();
    assert_eq!(got["stats"]["requests"], 0);
    got.as_object_mut().unwrap().remove("stats");
    assert_eq!(got, hook);

    let mut changed = hook.clone();
    changed["display_name"] = json!("Renamed");
    let updated = admin
        .put_json(&format!("/api/v4/hooks/incoming/{id}"), &changed)
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json()["display_name"], "Renamed");
    assert_eq!(updated.json()["create_at"], hook["create_at"]);

    let mut mismatched = changed.clone();
    mismatched["id"] = json!("x".repeat(26));
    admin
        .put_json(&format!("/api/v4/hooks/incoming/{id}"), &mismatched)
        .await
        .assert_error(400, "api.context.invalid_param.app_error");

    let deleted = admin.delete(&format!("/api/v4/hooks/incoming/{id}")).await;
    assert_eq!(deleted.json(), json!({"status": "OK"}));
    admin
        .get(&format!("/api/v4/hooks/incoming/{id}"))
        .await
        .assert_error(404, "app.webhooks.get_incoming.app_error");
    admin
        .get("/api/v4/hooks/incoming/not-an-id")
        .await
        .assert_error(400, "api.context.invalid_url_param.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn field_validation() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let cases = [
        (
            json!({"display_name": "x".repeat(65)}),
            "model.incoming_hook.display_name.app_error",
        ),
        (
            json!({"description": "x".repeat(501)}),
            "model.incoming_hook.description.app_error",
        ),
    ];
    for (extra, id) in cases {
        let mut body = json!({"channel_id": shim.town_square.id});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        admin
            .post_json("/api/v4/hooks/incoming", &body)
            .await
            .assert_error(400, id);
    }
    admin
        .post_json(
            "/api/v4/hooks/incoming",
            &json!({"channel_id": "x".repeat(26)}),
        )
        .await
        .assert_error(404, "app.channel.get.existing.app_error");
    admin
        .post_json(
            "/api/v4/hooks/incoming",
            &json!({"display_name": "no channel"}),
        )
        .await
        .assert_error(400, "api.context.invalid_param.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn username_and_icon_follow_the_override_settings() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let hook = admin
        .create_incoming_hook(
            &shim.town_square.id,
            json!({"username": "ci-bot", "icon_url": "http://x/i.png"}),
        )
        .await;
    assert_eq!(hook["username"], "", "overrides are off by default");
    assert_eq!(hook["icon_url"], "");

    shim.set_config(|c| {
        c.service_settings.enable_post_username_override = true;
        c.service_settings.enable_post_icon_override = true;
    })
    .unwrap();
    let hook = admin
        .create_incoming_hook(
            &shim.town_square.id,
            json!({"username": "ci-bot", "icon_url": "http://x/i.png"}),
        )
        .await;
    assert_eq!(hook["username"], "ci-bot");
    assert_eq!(hook["icon_url"], "http://x/i.png");
    admin
        .post_json(
            "/api/v4/hooks/incoming",
            &json!({"channel_id": shim.town_square.id, "username": "Bad Name"}),
        )
        .await
        .assert_error(400, "api.incoming_webhook.invalid_username.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn ordinary_users_get_locked_hooks_and_see_only_their_own() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let (dave, token) = shim.create_user("dave").unwrap();
    let dave_api = Api::new(&shim, Some(&token));

    let hook = dave_api
        .create_incoming_hook(&shim.town_square.id, json!({"channel_locked": false}))
        .await;
    assert_eq!(
        hook["channel_locked"], true,
        "no bypass permission: the lock is forced"
    );
    assert_eq!(hook["user_id"], dave.id);
    admin
        .create_incoming_hook(&shim.town_square.id, json!({}))
        .await;

    let mine = dave_api
        .get(&format!("/api/v4/hooks/incoming?team_id={}", shim.team.id))
        .await
        .json();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let all = admin
        .get(&format!("/api/v4/hooks/incoming?team_id={}", shim.team.id))
        .await
        .json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    dave_api
        .get("/api/v4/hooks/incoming")
        .await
        .assert_error(403, "api.context.permissions.app_error");

    // Another user's hook is out of reach for dave.
    let admins = all
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["user_id"] == shim.admin.id)
        .unwrap()
        .clone();
    dave_api
        .get(&format!(
            "/api/v4/hooks/incoming/{}",
            admins["id"].as_str().unwrap()
        ))
        .await
        .assert_error(403, "api.context.permissions.app_error");

    // A private channel dave is not in.
    let private = admin
        .post_json("/api/v4/channels", &json!({"team_id": shim.team.id, "name": "secret", "display_name": "Secret", "type": "P"}))
        .await
        .json();
    dave_api
        .post_json(
            "/api/v4/hooks/incoming",
            &json!({"channel_id": private["id"]}),
        )
        .await
        .assert_error(403, "api.context.permissions.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn listing_pages() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let mut ids = Vec::new();
    for n in 0..5 {
        let hook = admin
            .create_incoming_hook(
                &shim.town_square.id,
                json!({"display_name": format!("h{n}")}),
            )
            .await;
        ids.push(hook["id"].as_str().unwrap().to_string());
    }
    let page = |p: usize| {
        let admin = admin.clone();
        let team = shim.team.id.clone();
        async move {
            admin
                .get(&format!(
                    "/api/v4/hooks/incoming?team_id={team}&page={p}&per_page=2"
                ))
                .await
                .json()
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let mut seen = page(0).await;
    assert_eq!(seen.len(), 2);
    seen.extend(page(1).await);
    seen.extend(page(2).await);
    // Hooks made in the same millisecond may list in either order (the
    // order is create_at, then the random id), so compare as sets.
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids, "the pages cover every hook exactly once");
    assert!(page(3).await.is_empty());
    admin
        .get("/api/v4/hooks/incoming?per_page=abc")
        .await
        .assert_error(400, "api.context.invalid_url_param.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn management_is_refused_when_incoming_webhooks_are_off() {
    let shim = TestShim::builder()
        .config(|c| c.service_settings.enable_incoming_webhooks = false)
        .start()
        .await
        .unwrap();
    let admin = Api::admin(&shim);
    admin
        .post_json(
            "/api/v4/hooks/incoming",
            &json!({"channel_id": shim.town_square.id}),
        )
        .await
        .assert_error(501, "api.incoming_webhook.disabled.app_error");
    shim.stop().await.unwrap();
}
