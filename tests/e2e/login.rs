//! Sign-in that holds up (issue 26): an unknown name costs a bcrypt verify
//! like a wrong password, hashing leaves the server answering, failed
//! attempts lock an account until its password is set, and dynamic client
//! registration has a budget per address.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchboard_host_shim::store::{User, new_id};
use switchboard_tests::{Api, TestShim};

/// `POST /api/v4/users/login`: status, the session token, the body.
async fn login(base: &str, login_id: &str, password: &str) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v4/users/login"))
        .json(&json!({"login_id": login_id, "password": password}))
        .send()
        .await
        .expect("login request");
    let status = response.status().as_u16();
    let token = response
        .headers()
        .get("token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, token, body)
}

/// A person created through the API, so the password is really hashed.
async fn person(shim: &TestShim, username: &str, password: &str) -> String {
    let reply = Api::admin(shim)
        .post_json(
            "/api/v4/users",
            &json!({"username": username, "email": format!("{username}@example.com"), "password": password}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()["id"].as_str().unwrap().to_string()
}

/// A shim whose accounts lock after `attempts` failed sign-ins in a row.
async fn locking_after(attempts: u32) -> TestShim {
    TestShim::builder()
        .config(move |c| c.service_settings.maximum_login_attempts = attempts)
        .start()
        .await
        .unwrap()
}

#[track_caller]
fn assert_error(status: u16, body: &Value, want_status: u16, id: &str) {
    assert_eq!(
        (status, body["id"].as_str()),
        (want_status, Some(id)),
        "{body}"
    );
    assert_eq!(body["status_code"], want_status, "{body}");
}

/// An unknown name is answered like a wrong password, after the same work:
/// one bcrypt verify each (against a fixed hash of the same cost when there
/// is no account), counted by the shim's hasher.
#[tokio::test]
async fn an_unknown_name_costs_one_verify_like_a_wrong_password() {
    let shim = TestShim::start().await.unwrap();
    person(&shim, "alice", "right-password").await;
    let passwords = &shim.shim.app.passwords;
    for (login_id, password) in [
        ("nobody-by-that-name", "whatever"),
        ("nobody@example.com", "whatever"),
        ("alice", "wrong-password"),
        ("alice@example.com", "wrong-password"),
    ] {
        let before = passwords.verifies();
        let (status, token, body) = login(&shim.url, login_id, password).await;
        assert_error(
            status,
            &body,
            401,
            "api.user.login.invalid_credentials_email_username",
        );
        assert!(token.is_none());
        assert_eq!(passwords.verifies(), before + 1, "{login_id}");
    }
    let (status, token, body) = login(&shim.url, "alice", "right-password").await;
    assert_eq!(status, 200, "{body}");
    assert!(token.is_some());
    shim.stop().await.unwrap();
}

/// 40 logins at once while the server is pinged: hashing runs on blocking
/// threads, a core's worth at a time, so every ping is answered promptly
/// (median under 20 ms, none over a second) and every login succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_logins_at_once_leave_ping_answering() {
    let shim = TestShim::start().await.unwrap();
    // 40 people (one account's checks take turns), sharing one real hash.
    let hash = shim
        .shim
        .app
        .passwords
        .hash("crowd-password")
        .await
        .unwrap();
    for n in 0..40 {
        let user = User {
            id: new_id(),
            username: format!("crowd{n}"),
            email: format!("crowd{n}@example.com"),
            roles: "system_user".into(),
            ..User::default()
        };
        shim.shim.app.store.create_user(&user, &hash).unwrap();
    }
    let base = shim.url.clone();
    // One warm connection for the pings, so each measures the server alone.
    let pinger = reqwest::Client::new();
    let ping = |client: reqwest::Client, base: String| async move {
        let started = Instant::now();
        let response = client
            .get(format!("{base}/api/v4/system/ping"))
            .send()
            .await
            .expect("ping");
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        started.elapsed()
    };
    ping(pinger.clone(), base.clone()).await;

    let logins: Vec<_> = (0..40)
        .map(|n| {
            let base = base.clone();
            tokio::spawn(
                async move { login(&base, &format!("crowd{n}"), "crowd-password").await.0 },
            )
        })
        .collect();
    let mut latencies = Vec::new();
    while logins.iter().any(|l| !l.is_finished()) {
        latencies.push(ping(pinger.clone(), base.clone()).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for login in logins {
        assert_eq!(login.await.unwrap(), 200);
    }
    assert!(latencies.len() >= 5, "only {} pings ran", latencies.len());
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let slowest = *latencies.last().unwrap();
    assert!(
        median < Duration::from_millis(20),
        "median ping {median:?} over {} pings",
        latencies.len()
    );
    assert!(slowest < Duration::from_secs(1), "slowest ping {slowest:?}");
    shim.stop().await.unwrap();
}

/// `ServiceSettings.MaximumLoginAttempts` failures in a row lock the account,
/// the right password included, with Mattermost's error; a success before
/// the limit starts the count again; an admin setting the password unlocks.
#[tokio::test]
async fn failed_logins_lock_the_account_until_an_admin_sets_its_password() {
    let shim = locking_after(3).await;
    let id = person(&shim, "bob", "first-password").await;
    let store = &shim.shim.app.store;

    // Two failures, then a success: the count starts again.
    for _ in 0..2 {
        assert_eq!(login(&shim.url, "bob", "guess").await.0, 401);
    }
    assert_eq!(store.login_attempts(&id).unwrap(), 2);
    assert_eq!(login(&shim.url, "bob", "first-password").await.0, 200);
    assert_eq!(store.login_attempts(&id).unwrap(), 0);

    // Ten guesses at once: exactly three are checked, the rest find the
    // account locked.
    let guesses: Vec<_> = (0..10)
        .map(|_| {
            let base = shim.url.clone();
            tokio::spawn(async move { login(&base, "bob", "guess").await.2 })
        })
        .collect();
    let mut ids = Vec::new();
    for guess in guesses {
        ids.push(guess.await.unwrap()["id"].as_str().unwrap().to_string());
    }
    let checked = ids
        .iter()
        .filter(|id| *id == "api.user.login.invalid_credentials_email_username")
        .count();
    let locked = ids
        .iter()
        .filter(|id| *id == "api.user.check_user_login_attempts.too_many.app_error")
        .count();
    assert_eq!((checked, locked), (3, 7), "{ids:?}");
    assert!(shim.shim.app.login_turns.is_empty());
    // The right password no longer helps.
    for password in ["first-password", "guess"] {
        let (status, token, body) = login(&shim.url, "bob", password).await;
        assert_error(
            status,
            &body,
            401,
            "api.user.check_user_login_attempts.too_many.app_error",
        );
        assert!(token.is_none());
    }
    assert_eq!(
        store.login_attempts(&id).unwrap(),
        3,
        "locked tries not counted"
    );

    // Someone else may not set it; the admin may, without the old password.
    let (_, carol) = shim.create_user("carol").unwrap();
    Api::at(&shim.url, Some(&carol))
        .put_json(
            &format!("/api/v4/users/{id}/password"),
            &json!({"new_password": "mine-now"}),
        )
        .await
        .assert_error(403, "api.context.permissions.app_error");
    let admin = Api::admin(&shim);
    admin
        .put_json(
            &format!("/api/v4/users/{id}/password"),
            &json!({"new_password": "abc"}),
        )
        .await
        .assert_error(400, "model.user.is_valid.pwd.app_error");
    let reply = admin
        .put_json(
            &format!("/api/v4/users/{id}/password"),
            &json!({"new_password": "second-password"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["status"], "OK");
    assert_eq!(login(&shim.url, "bob", "first-password").await.0, 401);
    let (status, token, _) = login(&shim.url, "bob", "second-password").await;
    assert_eq!(status, 200);

    // Bob changes his own: the current password is needed, and a wrong one
    // counts towards the lockout.
    let bob = Api::at(&shim.url, token.as_deref());
    bob.put_json(
        "/api/v4/users/me/password",
        &json!({"new_password": "third-password"}),
    )
    .await
    .assert_error(400, "api.context.invalid_body_param.app_error");
    bob.put_json(
        "/api/v4/users/me/password",
        &json!({"current_password": "guess", "new_password": "third-password"}),
    )
    .await
    .assert_error(400, "api.user.update_password.incorrect.app_error");
    assert_eq!(store.login_attempts(&id).unwrap(), 1);
    let reply = bob
        .put_json(
            "/api/v4/users/me/password",
            &json!({"current_password": "second-password", "new_password": "third-password"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(login(&shim.url, "bob", "third-password").await.0, 200);
    shim.stop().await.unwrap();
}

/// The OAuth sign-in page counts against the same lockout.
#[tokio::test]
async fn the_oauth_sign_in_page_honours_the_lockout() {
    let shim = locking_after(2).await;
    let id = person(&shim, "dora", "dora-password").await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in = |password: &'static str| {
        let client = client.clone();
        let url = shim.url("/login");
        async move {
            let response = client
                .post(url)
                .form(&[
                    ("login_id", "dora"),
                    ("password", password),
                    ("redirect_to", "/"),
                ])
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(sign_in("guess").await.0, 401);
    assert_eq!(sign_in("guess").await.0, 401);
    let (status, page) = sign_in("dora-password").await;
    assert_eq!(status, 401);
    assert!(page.contains("locked"), "{page}");
    assert_eq!(shim.shim.app.store.login_attempts(&id).unwrap(), 2);
    shim.stop().await.unwrap();
}

/// Each client address may register a few clients a minute; one more is
/// answered 429 with `Retry-After`, in Mattermost's envelope, and stores
/// nothing.
#[tokio::test]
async fn dynamic_client_registration_has_a_budget_per_address() {
    let shim = TestShim::builder()
        .config(|c| {
            c.service_settings.enable_dynamic_client_registration = true;
            c.switchboard_settings
                .dynamic_client_registrations_per_minute = 3;
        })
        .start()
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let body = json!({"redirect_uris": ["https://app.example.com/cb"]});
    let register = || {
        client
            .post(shim.url("/api/v4/oauth/apps/register"))
            .json(&body)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(register().await.unwrap().status(), 201);
    }
    let apps = shim.shim.app.store.oauth_apps(None, 0, 100).unwrap().len();
    let response = register().await.unwrap();
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let answer: Value = response.json().await.unwrap();
    assert_error(
        429,
        &answer,
        429,
        "api.oauth.register_dynamic_client.rate_limited.app_error",
    );
    assert_eq!(
        shim.shim.app.store.oauth_apps(None, 0, 100).unwrap().len(),
        apps
    );
    // The budget is the registration route's alone: other routes still answer.
    assert_eq!(login(&shim.url, "nobody", "x").await.0, 401);
    shim.stop().await.unwrap();
}

/// An installer provisions the first start from the environment (which
/// wins over the config file) and signs in at once with its password: the
/// team has its name, no password is written to the data directory or the
/// log, and the config file's password is gone after the start.
#[tokio::test]
async fn the_first_start_takes_the_admin_and_team_from_the_environment() {
    let data = tempfile::tempdir().unwrap();
    let process = crate::processes::Process::start_env(
        data.path(),
        "installed",
        &[1000],
        json!({"SwitchboardSettings": {"FirstStart": {
            "AdminUsername": "from-config",
            "AdminPassword": "config-secret-pw",
            "AdminEmail": "ops@example.com",
        }}}),
        &[
            ("SWITCHBOARD_ADMIN_USERNAME", "installer"),
            ("SWITCHBOARD_ADMIN_PASSWORD", "env-secret-pw"),
            ("SWITCHBOARD_TEAM_NAME", "acme"),
            ("SWITCHBOARD_TEAM_DISPLAY_NAME", "Acme Inc."),
        ],
    )
    .await;
    let (status, token, me) = login(&process.url, "installer", "env-secret-pw").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "ops@example.com");
    assert!(me["roles"].as_str().unwrap().contains("system_admin"));
    assert_eq!(
        login(&process.url, "installer", "config-secret-pw").await.0,
        401,
        "the environment's password wins"
    );
    let admin = Api::at(&process.url, token.as_deref());
    let team = admin.get("/api/v4/teams/name/acme").await;
    assert_eq!(team.status, 200, "{}", team.text);
    assert_eq!(team.json()["display_name"], "Acme Inc.");
    let mine = admin.get("/api/v4/users/me/teams").await.json();
    assert_eq!(mine[0]["name"], "acme");

    assert!(data.path().join("admin-token").exists());
    assert!(!data.path().join("admin-password").exists());
    let config = std::fs::read_to_string(data.path().join("installed.json")).unwrap();
    assert!(!config.contains("config-secret-pw"), "{config}");
    let saved: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        saved["SwitchboardSettings"]["FirstStart"]["AdminPassword"],
        ""
    );
    assert_eq!(
        saved["SwitchboardSettings"]["FirstStart"]["AdminUsername"],
        "from-config"
    );
    drop(process);
    // Neither password is in any file the process left: database, config,
    // token file, log.
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for secret in ["env-secret-pw", "config-secret-pw"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in {}",
                path.display()
            );
        }
    }
}
