//! Hardening found by probing a running shim: private files, secrets hashed
//! or encrypted at rest, configuration kept whole, token minting permission,
//! hostile paging, and trap details kept out of production envelopes.

use serde_json::json;
use switchboard_tests::{Api, TestShim};

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn secrets_are_hashed_or_encrypted_at_rest_and_files_are_private() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let reply = admin
        .post_json(
            "/api/v4/hooks/outgoing",
            &json!({"team_id": shim.team.id, "trigger_words": ["deploy"],
                    "callback_urls": ["https://example.com/hook"]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let hook = reply.json();
    let (token, secret) = (
        hook["token"].as_str().unwrap().to_string(),
        hook["signing_secret"].as_str().unwrap().to_string(),
    );
    assert!(!token.is_empty() && !secret.is_empty());
    let (_, user_token) = shim.create_user("carol").unwrap();

    let on_disk = shim.database_bytes().unwrap();
    assert!(!on_disk.is_empty());
    for (what, value) in [
        ("the hook token", token.as_str()),
        ("the signing secret", secret.as_str()),
        ("the admin's token", shim.admin_token.as_str()),
        ("a user's token", user_token.as_str()),
    ] {
        assert!(!contains(&on_disk, value), "{what} is stored in the clear");
    }
    // The API still shows the hook's secrets, and the tokens still work.
    let again = admin
        .get(&format!(
            "/api/v4/hooks/outgoing/{}",
            hook["id"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(again["token"], token.as_str());
    assert_eq!(again["signing_secret"], secret.as_str());
    let carol = Api::new(&shim, Some(&user_token));
    assert_eq!(
        carol.get("/api/v4/users/me").await.json()["username"],
        "carol"
    );

    #[cfg(unix)]
    {
        assert_eq!(mode(shim.data_dir()), 0o700, "the data directory");
        // On PostgreSQL the database's files are the server's, not the shim's.
        let database: &[&str] = if shim.is_postgres() {
            &[]
        } else {
            &["switchboard.db", "switchboard.db-wal", "switchboard.db-shm"]
        };
        for file in database.iter().chain(&["admin-token"]) {
            assert_eq!(mode(&shim.data_dir().join(file)), 0o600, "{file}");
        }
    }
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn config_patch_keeps_unmodelled_keys_and_hides_the_at_rest_key() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let reply = admin
        .put_json(
            "/api/v4/config/patch",
            &json!({"TeamSettings": {"SiteName": "Ours", "MaxUsersPerTeam": 50},
                    "ServiceSettings": {"EnableLinkPreviews": true}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let reply = admin
        .put_json(
            "/api/v4/config/patch",
            &json!({"ServiceSettings": {"EnablePostUsernameOverride": true},
                    "SqlSettings": {"AtRestEncryptKey": "replaced"}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let config = admin.get("/api/v4/config").await.json();
    assert_eq!(config["TeamSettings"]["SiteName"], "Ours");
    assert_eq!(config["TeamSettings"]["MaxUsersPerTeam"], 50);
    assert_eq!(config["ServiceSettings"]["EnableLinkPreviews"], true);
    assert_eq!(
        config["ServiceSettings"]["EnablePostUsernameOverride"],
        true
    );
    assert_eq!(
        config["SqlSettings"]["AtRestEncryptKey"],
        "********************************"
    );
    assert_ne!(
        shim.shim.app.config().sql_settings.at_rest_encrypt_key,
        "replaced",
        "a patch cannot change the at-rest key"
    );
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn minting_a_token_takes_create_user_access_token() {
    let shim = TestShim::start().await.unwrap();
    let (user, token) = shim.create_user("dave").unwrap();
    let dave = Api::new(&shim, Some(&token));
    dave.post_json("/api/v4/users/me/tokens", &json!({"description": "mine"}))
        .await
        .assert_error(403, "api.context.permissions.app_error");
    let minted = Api::admin(&shim)
        .post_json(
            "/api/v4/users/me/tokens",
            &json!({"description": "admin's"}),
        )
        .await;
    assert_eq!(minted.status, 200, "{}", minted.text);
    let admin_for_dave = Api::admin(&shim)
        .post_json(
            &format!("/api/v4/users/{}/tokens", user.id),
            &json!({"description": "for dave"}),
        )
        .await;
    assert_eq!(admin_for_dave.status, 200, "{}", admin_for_dave.text);
    shim.stop().await.unwrap();
}

#[tokio::test]
async fn an_overflowing_page_is_a_400_not_a_dropped_connection() {
    let shim = TestShim::start().await.unwrap();
    let admin = Api::admin(&shim);
    let channel = &shim.town_square.id;
    for query in [
        "page=18446744073709551615&per_page=200",
        "page=9223372036854775807&per_page=2",
    ] {
        admin
            .get(&format!("/api/v4/channels/{channel}/posts?{query}"))
            .await
            .assert_error(400, "api.context.invalid_url_param.app_error");
    }
    let fine = admin
        .get(&format!(
            "/api/v4/channels/{channel}/posts?page=1000000&per_page=200"
        ))
        .await;
    assert_eq!(fine.status, 200, "{}", fine.text);
    shim.stop().await.unwrap();
}

/// The backtrace of a trap is for developers: with `EnableDeveloper` off the
/// envelope says what failed in one line and `detailed_error` is empty.
#[tokio::test]
async fn a_trap_keeps_its_backtrace_out_of_production_envelopes() {
    for developer in [false, true] {
        let shim = TestShim::builder()
            .config(|c| c.service_settings.enable_developer = developer)
            .start()
            .await
            .unwrap();
        let reply = Api::admin(&shim)
            .post_raw("/plugins/switchboard/test/trap", None, "")
            .await;
        let body = reply.assert_error(500, "app.plugin.call_failed.app_error");
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with("the plugin failed"), "{message}");
        assert!(
            !message.contains("backtrace") && !message.contains('\n'),
            "{message}"
        );
        let detail = body["detailed_error"].as_str().unwrap();
        if developer {
            assert!(detail.contains("backtrace"), "{detail}");
        } else {
            assert_eq!(detail, "");
        }
        shim.stop().await.unwrap();
    }
}
