//! `/api/v4/commands`: CRUD, trigger and URL rules, permissions, tokens,
//! listing and autocomplete.

use super::{create_command, execute, shim};
use serde_json::{Value, json};
use switchboard_tests::{Api, TestShim};

#[tokio::test]
async fn create_get_update_delete() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let created = create_command(
        &admin,
        &shim,
        json!({"trigger": "Deploy", "auto_complete": true, "auto_complete_hint": "[env]"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(id.len(), 26);
    assert_eq!(created["trigger"], "deploy", "triggers are lower-cased");
    assert_eq!(created["token"].as_str().unwrap().len(), 26);
    assert_eq!(created["signing_secret"].as_str().unwrap().len(), 32);
    assert_eq!(created["creator_id"], shim.admin.id);
    assert_eq!(created["team_id"], shim.team.id);

    let got = admin.get(&format!("/api/v4/commands/{id}")).await;
    assert_eq!(got.json(), created);

    let mut changed = created.clone();
    changed["trigger"] = json!("ship");
    changed["token"] = json!("x".repeat(26));
    let updated = admin
        .put_json(&format!("/api/v4/commands/{id}"), &changed)
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    let updated = updated.json();
    assert_eq!(updated["trigger"], "ship");
    assert_eq!(
        updated["token"], created["token"],
        "the token is the server's"
    );

    let regen = admin
        .put_json(&format!("/api/v4/commands/{id}/regen_token"), &json!({}))
        .await
        .json();
    assert_eq!(regen.as_object().unwrap().len(), 1);
    assert_ne!(regen["token"], created["token"]);
    assert_eq!(regen["token"].as_str().unwrap().len(), 26);

    let listed = admin
        .get(&format!(
            "/api/v4/commands?team_id={}&custom_only=true",
            shim.team.id
        ))
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["token"], regen["token"]);

    let deleted = admin.delete(&format!("/api/v4/commands/{id}")).await;
    assert_eq!(deleted.json(), json!({"status": "OK"}));
    admin
        .get(&format!("/api/v4/commands/{id}"))
        .await
        .assert_error(404, "store.sql_command.save.get.app_error");
    admin
        .get("/api/v4/commands/not-an-id")
        .await
        .assert_error(400, "api.context.invalid_url_param.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn trigger_url_and_field_rules() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    create_command(&admin, &shim, json!({})).await;
    let cases = [
        (
            json!({"trigger": "DEPLOY"}),
            "api.command.duplicate_trigger.app_error",
        ),
        (
            json!({"trigger": "Shrug"}),
            "api.command.duplicate_trigger.app_error",
        ),
        (
            json!({"trigger": "away"}),
            "api.command.duplicate_trigger.app_error",
        ),
        (
            json!({"trigger": "/slash"}),
            "model.command.is_valid.trigger.app_error",
        ),
        (
            json!({"trigger": "two words"}),
            "model.command.is_valid.trigger.app_error",
        ),
        (
            json!({"trigger": "café"}),
            "model.command.is_valid.trigger.app_error",
        ),
        (
            json!({"trigger": "x".repeat(129)}),
            "model.command.is_valid.trigger.app_error",
        ),
        (
            json!({"trigger": "t", "url": "HTTP://x"}),
            "model.command.is_valid.url_http.app_error",
        ),
        (
            json!({"trigger": "t", "url": "https:////x"}),
            "model.command.is_valid.url_http.app_error",
        ),
        (
            json!({"trigger": "t", "url": ""}),
            "model.command.is_valid.url.app_error",
        ),
        (
            json!({"trigger": "t", "method": "POST"}),
            "model.command.is_valid.method.app_error",
        ),
        (
            json!({"trigger": "t", "display_name": "x".repeat(65)}),
            "model.command.is_valid.display_name.app_error",
        ),
        (
            json!({"trigger": "t", "description": "x".repeat(129)}),
            "model.command.is_valid.description.app_error",
        ),
        (
            json!({"trigger": ["t"]}),
            "api.context.invalid_param.app_error",
        ),
    ];
    for (patch, id) in cases {
        let mut body =
            json!({"team_id": shim.team.id, "trigger": "t", "method": "P", "url": "http://x"});
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        admin
            .post_json("/api/v4/commands", &body)
            .await
            .assert_error(400, id);
    }
    // Valid at the limits, and every allowed character.
    create_command(
        &admin,
        &shim,
        json!({"trigger": "a_b-c.d/e", "display_name": "x".repeat(64), "description": "y".repeat(128)}),
    )
    .await;
    admin
        .post_raw("/api/v4/commands", Some("application/json"), "{")
        .await
        .assert_error(400, "api.context.invalid_param.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn who_may_manage_what() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let (_, alice_token) = shim.create_user("alice").unwrap();
    let (_, bob_token) = shim.create_user("bob").unwrap();
    let alice = Api::new(&shim, Some(&alice_token));
    let bob = Api::new(&shim, Some(&bob_token));

    let mine = create_command(&alice, &shim, json!({"trigger": "alices"})).await;
    let id = mine["id"].as_str().unwrap();
    bob.get(&format!("/api/v4/commands/{id}"))
        .await
        .assert_error(404, "store.sql_command.save.get.app_error");
    bob.delete(&format!("/api/v4/commands/{id}"))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    assert_eq!(
        admin.get(&format!("/api/v4/commands/{id}")).await.status,
        200
    );
    alice
        .post_json(
            "/api/v4/commands",
            &json!({"team_id": shim.team.id, "trigger": "x", "method": "P", "url": "http://x", "creator_id": shim.admin.id}),
        )
        .await
        .assert_error(403, "api.context.permissions.app_error");
    Api::new(&shim, None)
        .get(&format!("/api/v4/commands/{id}"))
        .await
        .assert_error(401, "api.context.session_expired.app_error");

    // Bob sees only his own in a custom listing; the full listing hides secrets.
    let bobs = bob
        .get(&format!(
            "/api/v4/commands?team_id={}&custom_only=true",
            shim.team.id
        ))
        .await
        .json();
    assert_eq!(bobs, json!([]));
    let all = bob
        .get(&format!("/api/v4/commands?team_id={}", shim.team.id))
        .await
        .json();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|c| c["trigger"] != "alices")
    );
    let all = admin
        .get(&format!("/api/v4/commands?team_id={}", shim.team.id))
        .await
        .json();
    let alices = all
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["trigger"] == "alices")
        .unwrap();
    assert_eq!(
        (alices["token"].as_str(), alices["url"].as_str()),
        (Some(""), Some(""))
    );
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|c| c["trigger"] == "echo")
    );
    admin
        .get("/api/v4/commands")
        .await
        .assert_error(400, "api.context.invalid_param.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn disabled_commands_answer_501() {
    let shim = shim().await;
    let admin = Api::admin(&shim);
    let command = create_command(&admin, &shim, json!({})).await;
    shim.set_config(|c| c.service_settings.enable_commands = false)
        .unwrap();
    admin
        .post_json(
            "/api/v4/commands",
            &json!({"team_id": shim.team.id, "trigger": "x", "method": "P", "url": "http://x"}),
        )
        .await
        .assert_error(501, "api.command.disabled.app_error");
    admin
        .get(&format!(
            "/api/v4/commands/{}",
            command["id"].as_str().unwrap()
        ))
        .await
        .assert_error(501, "api.command.disabled.app_error");
    // Custom commands are looked up first, so even built-ins fail.
    execute(&admin, &shim.town_square.id, "/shrug")
        .await
        .assert_error(501, "api.command.disabled.app_error");
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn autocomplete_lists_and_suggests() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    create_command(
        &admin,
        &shim,
        json!({
            "trigger": "deploy", "auto_complete": true, "auto_complete_hint": "[env]",
            "auto_complete_desc": "Deploy a build",
            "autocomplete_data": {"Trigger": "deploy", "SubCommands": [
                {"Trigger": "staging", "HelpText": "to staging"},
                {"Trigger": "production", "HelpText": "to production"}
            ]}
        }),
    )
    .await;
    create_command(
        &admin,
        &shim,
        json!({"trigger": "hidden", "auto_complete": false}),
    )
    .await;
    let team = &shim.team.id;
    let listed = admin
        .get(&format!("/api/v4/teams/{team}/commands/autocomplete"))
        .await
        .json();
    let triggers: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["trigger"].as_str().unwrap())
        .collect();
    assert!(triggers.contains(&"deploy") && triggers.contains(&"echo"));
    assert!(!triggers.contains(&"hidden"));
    let deploy = &listed[0];
    assert_eq!(
        (deploy["token"].as_str(), deploy["url"].as_str()),
        (Some(""), Some(""))
    );

    let suggest = |input: &str| {
        let path = format!(
            "/api/v4/teams/{team}/commands/autocomplete_suggestions?user_input={}",
            url::form_urlencoded::byte_serialize(input.as_bytes()).collect::<String>()
        );
        let admin = admin.clone();
        async move { admin.get(&path).await.json() }
    };
    let got: Value = suggest("/de").await;
    assert_eq!(
        got,
        json!([{"Complete": "deploy", "Suggestion": "/deploy", "Hint": "[env]", "Description": "Deploy a build", "IconData": ""}])
    );
    let got = suggest("/deploy pro").await;
    assert_eq!(got[0]["Complete"], "deploy production");
    assert_eq!(got.as_array().unwrap().len(), 1);
    let got = suggest("/e").await;
    assert_eq!(got[0]["Complete"], "echo");
    admin
        .get(&format!(
            "/api/v4/teams/{team}/commands/autocomplete_suggestions"
        ))
        .await
        .assert_error(400, "api.context.invalid_param.app_error");
    admin
        .get("/api/v4/teams/bad/commands/autocomplete")
        .await
        .assert_error(400, "api.context.invalid_url_param.app_error");
    let (_, outsider) = shim.create_user("outsider").unwrap();
    let other_team = "x".repeat(26);
    Api::new(&shim, Some(&outsider))
        .get(&format!("/api/v4/teams/{other_team}/commands/autocomplete"))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    shim.stop().await.unwrap();
}
