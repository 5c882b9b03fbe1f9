//! The Mattermost v4 REST subset the shim serves itself: system, users,
//! tokens, teams, channels, posts and config — the objects integrations act on.

use super::plugin::read_body;
use super::{ApiError, Shim};
use crate::app::{Scope, SignInError};
use crate::store::{Channel, ChannelType, Post, StoreError, Team, User, new_id};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub(super) type Result<T> = std::result::Result<T, ApiError>;

pub fn routes() -> Router<Shim> {
    Router::new()
        .route("/api/v4/system/ping", get(super::status::ping))
        .route("/api/v4/users/login", post(login))
        .route("/api/v4/users/logout", post(logout))
        .route("/api/v4/users", post(create_user))
        .route(
            "/api/v4/users/{user_id}",
            get(get_user).delete(super::users::deactivate_user),
        )
        .route(
            "/api/v4/users/username/{username}",
            get(get_user_by_username),
        )
        .route(
            "/api/v4/users/{user_id}/tokens",
            post(create_token).get(super::tokens::for_user),
        )
        .route("/api/v4/users/{user_id}/teams", get(user_teams))
        .route(
            "/api/v4/users/{user_id}/password",
            put(super::users::update_password),
        )
        .route("/api/v4/teams", get(list_teams).post(create_team))
        .route("/api/v4/teams/{team_id}", get(get_team))
        .route("/api/v4/teams/name/{name}", get(get_team_by_name))
        .route("/api/v4/teams/{team_id}/members", post(add_team_member))
        .route(
            "/api/v4/teams/{team_id}/channels/name/{name}",
            get(get_channel_by_name),
        )
        .route("/api/v4/channels", post(create_channel))
        .route("/api/v4/channels/direct", post(create_direct))
        .route("/api/v4/channels/{channel_id}", get(get_channel))
        .route(
            "/api/v4/channels/{channel_id}/members",
            post(add_channel_member),
        )
        .route("/api/v4/channels/{channel_id}/posts", get(channel_posts))
        .route("/api/v4/posts", post(create_post))
        .route("/api/v4/posts/{post_id}", get(get_post))
        .route("/api/v4/config", get(get_config))
        .route("/api/v4/config/patch", put(patch_config))
}

pub(super) fn json_response(status: StatusCode, value: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

pub(super) async fn json_body<T: DeserializeOwned>(
    shim: &Shim,
    body: Body,
    name: &str,
) -> Result<T> {
    let bytes = read_body(shim, body)
        .await?
        .ok_or_else(ApiError::too_large)?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid_body(name).detail(e.to_string()))
}

/// A non-negative number from the query string; `default` when absent,
/// 400 `invalid_url_param` when it is not a number that fits.
fn query_number(query: Option<&str>, name: &str, default: u64) -> Result<u64> {
    match url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => v.parse().map_err(|_| ApiError::invalid_url_param(name)),
    }
}

/// A boolean query parameter as Go's `strconv.ParseBool` reads it; anything
/// unreadable (or nothing) is false, as Mattermost ignores the error.
pub(super) fn query_flag(query: Option<&str>, name: &str) -> bool {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .is_some_and(|(_, v)| matches!(v.as_ref(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

/// Mattermost's `page` and `per_page` (default 60, at most 200).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Paging {
    pub page: u64,
    pub per_page: u64,
    /// `page * per_page`, known to fit SQLite's integers.
    pub offset: u64,
}

/// Reads the paging parameters; a non-number, or a page whose offset does
/// not fit, is 400 `invalid_url_param`.
pub(super) fn paging(query: Option<&str>) -> Result<Paging> {
    let page = query_number(query, "page", 0)?;
    let per_page = query_number(query, "per_page", 60)?.min(200);
    let offset = page
        .checked_mul(per_page)
        .filter(|offset| i64::try_from(*offset).is_ok())
        .ok_or_else(|| ApiError::invalid_url_param("page"))?;
    Ok(Paging {
        page,
        per_page,
        offset,
    })
}

/// `me` in a path means the session user.
pub(super) fn resolve_me(id: String, session: &str) -> String {
    if id == "me" { session.to_string() } else { id }
}

pub(super) fn require_admin(shim: &Shim, user_id: &str) -> Result<()> {
    if shim
        .app
        .has_permission(user_id, "manage_system", &Scope::System)
    {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

pub(super) fn require(shim: &Shim, user_id: &str, permission: &str, scope: Scope) -> Result<()> {
    if shim.app.has_permission(user_id, permission, &scope) {
        Ok(())
    } else {
        Err(ApiError::forbidden().detail(format!("missing permission {permission}")))
    }
}

// ---- users and sessions ----

#[derive(Deserialize)]
struct Login {
    login_id: String,
    password: String,
}

async fn login(State(shim): State<Shim>, body: Body) -> Result<Response> {
    let login: Login = json_body(&shim, body, "login_id").await?;
    let user = shim
        .app
        .sign_in(&login.login_id, &login.password)
        .await
        .map_err(|e| sign_in_error(e, "api.user.login.app_error"))?;
    let token = shim
        .app
        .store
        .create_token(&user.id, "session", "login")
        .map_err(|e| ApiError::store("api.user.login.app_error", e))?;
    let mut response = json_response(StatusCode::OK, user.to_json());
    if let Ok(value) = token.parse() {
        response.headers_mut().insert("token", value);
    }
    Ok(response)
}

/// A refused sign-in as Mattermost answers it; `store_id` names a store
/// failure.
pub(super) fn sign_in_error(err: SignInError, store_id: &str) -> ApiError {
    match err {
        SignInError::Invalid => ApiError::new(
            401,
            "api.user.login.invalid_credentials_email_username",
            "Enter a valid email or username and/or password.",
        ),
        SignInError::Bot => ApiError::new(
            401,
            "api.user.login.bot_login_forbidden.app_error",
            "Bot login is forbidden.",
        ),
        SignInError::Locked => ApiError::new(
            401,
            "api.user.check_user_login_attempts.too_many.app_error",
            "Your account is locked because of too many failed password attempts. Please reset your password.",
        ),
        SignInError::Store(e) => ApiError::store(store_id, e),
    }
}

async fn logout(State(shim): State<Shim>, headers: HeaderMap) -> Result<Response> {
    if let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').map(|(_, t)| t.trim().to_string()))
    {
        let _ = shim.app.store.delete_token(&token);
    }
    Ok(json_response(StatusCode::OK, json!({"status": "OK"})))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewUser {
    username: String,
    email: String,
    password: String,
    nickname: String,
    first_name: String,
    last_name: String,
}

async fn create_user(State(shim): State<Shim>, headers: HeaderMap, body: Body) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_admin(&shim, &session)?;
    let new: NewUser = json_body(&shim, body, "user").await?;
    let username = new.username.to_lowercase();
    if !User::valid_username(&username) {
        return Err(ApiError::new(
            400,
            "model.user.is_valid.username.app_error",
            "Username must begin with a letter and contain between 3 and 22 lowercase characters made up of numbers, letters, and the symbols '.', '-', and '_'.",
        ));
    }
    if !new.email.contains('@') {
        return Err(ApiError::new(
            400,
            "model.user.is_valid.email.app_error",
            "Invalid email.",
        ));
    }
    valid_password(&new.password)?;
    let hash = shim
        .app
        .passwords
        .hash(&new.password)
        .await
        .map_err(|e| ApiError::new(500, "api.user.create_user.app_error", e.to_string()))?;
    let user = User {
        id: new_id(),
        username,
        email: new.email.to_lowercase(),
        nickname: new.nickname,
        first_name: new.first_name,
        last_name: new.last_name,
        roles: "system_user".into(),
        is_bot: false,
        create_at: shim.app.clock.now_millis(),
        delete_at: 0,
    };
    shim.app
        .store
        .create_user(&user, &hash)
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                400,
                "app.user.save.username_exists.app_error",
                "An account with that username already exists.",
            ),
            e => ApiError::store("app.user.save.app_error", e),
        })?;
    Ok(json_response(StatusCode::CREATED, user.to_json()))
}

/// The password rule a new password must meet.
pub(super) fn valid_password(password: &str) -> Result<()> {
    if password.len() < 5 {
        return Err(ApiError::new(
            400,
            "model.user.is_valid.pwd.app_error",
            "Your password must contain at least 5 characters.",
        ));
    }
    Ok(())
}

async fn get_user(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let id = resolve_me(user_id, &session);
    let user = shim
        .app
        .store
        .user(&id)
        .map_err(|e| ApiError::store("app.user.missing_account.const", e))?;
    Ok(json_response(
        StatusCode::OK,
        super::bots::user_json(&shim, &user),
    ))
}

async fn get_user_by_username(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(username): Path<String>,
) -> Result<Response> {
    shim.require_user(&headers, None)?;
    let user = shim
        .app
        .store
        .user_by_username(&username)
        .map_err(|e| ApiError::store("app.user.get_by_username.app_error", e))?;
    Ok(json_response(
        StatusCode::OK,
        super::bots::user_json(&shim, &user),
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewToken {
    description: String,
}

async fn create_token(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let user_id = resolve_me(user_id, &session);
    let target = shim
        .app
        .store
        .user(&user_id)
        .map_err(|e| ApiError::store("app.user.missing_account.const", e))?;
    if shim.is_oauth_session(&headers, None) {
        // A third-party app must not turn its grant into a lasting token.
        return Err(ApiError::forbidden().detail("attempted access by oauth app"));
    }
    let request: NewToken = json_body(&shim, body, "description").await?;
    if request.description.is_empty() {
        return Err(ApiError::invalid_body("description"));
    }
    // As in Mattermost: minting a token is a permission of its own, which
    // plain system users do not hold; then who it is for is checked.
    super::bots::check_tokens_enabled(&shim, &target)?;
    require(&shim, &session, "create_user_access_token", Scope::System)?;
    super::bots::check_token_target(&shim, &session, &target)?;
    let (id, token) = shim
        .app
        .store
        .issue_token(&user_id, "pat", &request.description)
        .map_err(|e| ApiError::store("app.user_access_token.save.app_error", e))?;
    Ok(json_response(
        StatusCode::OK,
        json!({"id": id, "token": token, "user_id": user_id, "description": request.description, "is_active": true}),
    ))
}

// ---- teams ----

async fn user_teams(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let user_id = resolve_me(user_id, &session);
    if user_id != session {
        require_admin(&shim, &session)?;
    }
    let teams = shim
        .app
        .store
        .teams_for_user(&user_id)
        .map_err(|e| ApiError::store("app.team.get_all.app_error", e))?;
    Ok(json_response(
        StatusCode::OK,
        Value::Array(teams.iter().map(|t| t.to_json()).collect()),
    ))
}

async fn list_teams(State(shim): State<Shim>, headers: HeaderMap) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let teams = if shim
        .app
        .has_permission(&session, "manage_system", &Scope::System)
    {
        shim.app.store.teams()
    } else {
        shim.app.store.teams_for_user(&session)
    }
    .map_err(|e| ApiError::store("app.team.get_all.app_error", e))?;
    Ok(json_response(
        StatusCode::OK,
        Value::Array(teams.iter().map(|t| t.to_json()).collect()),
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewTeam {
    name: String,
    display_name: String,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

async fn create_team(State(shim): State<Shim>, headers: HeaderMap, body: Body) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let new: NewTeam = json_body(&shim, body, "team").await?;
    if !Team::valid_name(&new.name) {
        return Err(ApiError::new(
            400,
            "model.team.is_valid.url.app_error",
            "Invalid URL Identifier.",
        ));
    }
    if new.display_name.is_empty() || new.display_name.chars().count() > 64 {
        return Err(ApiError::new(
            400,
            "model.team.is_valid.name.app_error",
            "Invalid name.",
        ));
    }
    let team = shim
        .app
        .store
        .create_team(&new.name, &new.display_name)
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                400,
                "store.sql_team.save_team.existing.app_error",
                "A team with that name already exists.",
            ),
            e => ApiError::store("app.team.save.app_error", e),
        })?;
    shim.app
        .store
        .add_team_member(&team.id, &session, "team_user team_admin")
        .map_err(|e| ApiError::store("app.team.join_user_to_team.save_member.app_error", e))?;
    Ok(json_response(StatusCode::CREATED, team.to_json()))
}

fn load_team(
    shim: &Shim,
    session: &str,
    team: std::result::Result<crate::store::Team, StoreError>,
) -> Result<Response> {
    let team = team.map_err(|e| ApiError::store("app.team.get.find.app_error", e))?;
    require(shim, session, "view_team", Scope::Team(team.id.clone()))?;
    Ok(json_response(StatusCode::OK, team.to_json()))
}

async fn get_team(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(team_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    load_team(&shim, &session, shim.app.store.team(&team_id))
}

async fn get_team_by_name(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    load_team(&shim, &session, shim.app.store.team_by_name(&name))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewMember {
    user_id: String,
}

async fn add_team_member(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(team_id): Path<String>,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let member: NewMember = json_body(&shim, body, "team_member").await?;
    require(&shim, &session, "manage_team", Scope::Team(team_id.clone()))?;
    shim.app
        .store
        .team(&team_id)
        .map_err(|e| ApiError::store("app.team.get.find.app_error", e))?;
    shim.app
        .store
        .user(&member.user_id)
        .map_err(|e| ApiError::store("app.user.missing_account.const", e))?;
    let roles = shim
        .app
        .store
        .team_member(&team_id, &member.user_id)
        .ok()
        .flatten()
        .map(|m| m.roles)
        .unwrap_or_else(|| "team_user".into());
    shim.app
        .store
        .add_team_member(&team_id, &member.user_id, &roles)
        .map_err(|e| ApiError::store("app.team.join_user_to_team.save_member.app_error", e))?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({"team_id": team_id, "user_id": member.user_id, "roles": roles}),
    ))
}

// ---- channels ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewChannel {
    team_id: String,
    name: String,
    display_name: String,
    #[serde(rename = "type")]
    channel_type: String,
    header: String,
    purpose: String,
}

async fn create_channel(
    State(shim): State<Shim>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let new: NewChannel = json_body(&shim, body, "channel").await?;
    let (channel_type, permission) = match new.channel_type.as_str() {
        "O" | "" => (ChannelType::Open, "create_public_channel"),
        "P" => (ChannelType::Private, "create_private_channel"),
        _ => {
            return Err(ApiError::new(
                400,
                "model.channel.is_valid.type.app_error",
                "Invalid type.",
            ));
        }
    };
    require(
        &shim,
        &session,
        permission,
        Scope::Team(new.team_id.clone()),
    )?;
    if !valid_name(&new.name) {
        return Err(ApiError::new(
            400,
            "model.channel.is_valid.name.app_error",
            "Invalid channel name.",
        ));
    }
    if new.display_name.is_empty() || new.display_name.chars().count() > 64 {
        return Err(ApiError::new(
            400,
            "model.channel.is_valid.display_name.app_error",
            "Invalid display name.",
        ));
    }
    let channel = Channel {
        id: new_id(),
        team_id: new.team_id,
        name: new.name,
        display_name: new.display_name,
        channel_type,
        header: new.header,
        purpose: new.purpose,
        creator_id: session.clone(),
        create_at: shim.app.clock.now_millis(),
        update_at: shim.app.clock.now_millis(),
        delete_at: 0,
    };
    shim.app
        .store
        .create_channel(&channel)
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                400,
                "store.sql_channel.save_channel.exists.app_error",
                "A channel with that name already exists on the same team.",
            ),
            e => ApiError::store("store.sql_channel.save.app_error", e),
        })?;
    shim.app
        .store
        .add_channel_member(&channel.id, &session)
        .map_err(|e| ApiError::store("api.channel.add_member.app_error", e))?;
    Ok(json_response(StatusCode::CREATED, channel.to_json()))
}

async fn create_direct(
    State(shim): State<Shim>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let ids: Vec<String> = json_body(&shim, body, "user_ids").await?;
    let [a, b] = ids.as_slice() else {
        return Err(ApiError::invalid_body("user_ids"));
    };
    if *a != session && *b != session {
        require_admin(&shim, &session)?;
    }
    let channel = shim.app.store.direct_channel(a, b).map_err(|e| {
        ApiError::store(
            "api.channel.create_direct_channel.invalid_user.app_error",
            e,
        )
    })?;
    Ok(json_response(StatusCode::CREATED, channel.to_json()))
}

pub(super) fn readable_channel(
    shim: &Shim,
    session: &str,
    channel: std::result::Result<Channel, StoreError>,
) -> Result<Channel> {
    let channel = channel.map_err(|e| ApiError::store("app.channel.get.existing.app_error", e))?;
    require(
        shim,
        session,
        "read_channel",
        Scope::Channel(channel.id.clone()),
    )?;
    Ok(channel)
}

async fn get_channel(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let channel = readable_channel(&shim, &session, shim.app.store.channel(&channel_id))?;
    Ok(json_response(StatusCode::OK, channel.to_json()))
}

async fn get_channel_by_name(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path((team_id, name)): Path<(String, String)>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let channel = readable_channel(
        &shim,
        &session,
        shim.app.store.channel_by_name(&team_id, &name),
    )?;
    Ok(json_response(StatusCode::OK, channel.to_json()))
}

async fn add_channel_member(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let member: NewMember = json_body(&shim, body, "user_id").await?;
    let channel = shim
        .app
        .store
        .channel(&channel_id)
        .map_err(|e| ApiError::store("app.channel.get.existing.app_error", e))?;
    let joining_public = member.user_id == session
        && channel.channel_type == ChannelType::Open
        && shim.app.has_permission(
            &session,
            "join_public_channels",
            &Scope::Team(channel.team_id.clone()),
        );
    let member_adding = matches!(
        channel.channel_type,
        ChannelType::Open | ChannelType::Private
    ) && shim
        .app
        .store
        .is_channel_member(&channel_id, &session)
        .unwrap_or(false);
    if !joining_public && !member_adding {
        require_admin(&shim, &session)?;
    }
    if !channel.team_id.is_empty()
        && shim
            .app
            .store
            .team_member(&channel.team_id, &member.user_id)
            .ok()
            .flatten()
            .is_none()
    {
        return Err(ApiError::new(
            403,
            "api.channel.add_members.user_denied",
            "The user is not a member of the channel's team.",
        ));
    }
    shim.app
        .store
        .add_channel_member(&channel_id, &member.user_id)
        .map_err(|e| ApiError::store("api.channel.add_member.app_error", e))?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({"channel_id": channel_id, "user_id": member.user_id, "roles": "channel_user"}),
    ))
}

async fn channel_posts(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(channel_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let session = shim.require_user(&headers, query.as_deref())?;
    readable_channel(&shim, &session, shim.app.store.channel(&channel_id))?;
    let since = match query_param(query.as_deref(), "since") {
        None => 0,
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| ApiError::invalid_body("since"))?,
    };
    if since > 0 {
        return posts_since(
            &shim,
            &channel_id,
            since,
            query_flag(query.as_deref(), "skipFetchThreads"),
        );
    }
    let paging = paging(query.as_deref())?;
    // Both fit: the offset fits an i64.
    let (page, per_page) = (paging.page as usize, paging.per_page as usize);
    let posts = shim
        .app
        .store
        .channel_posts(&channel_id, page, per_page)
        .map_err(|e| ApiError::store("app.post.get_posts.app_error", e))?;
    let order: Vec<&str> = posts.iter().map(|p| p.id.as_str()).collect();
    let map: serde_json::Map<String, Value> = posts
        .iter()
        .map(|p| (p.id.clone(), shim.app.post_for_client(p)))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        json!({"order": order, "posts": map, "next_post_id": "", "prev_post_id": "", "has_next": posts.len() == per_page}),
    ))
}

/// `?since=`: the posts changed after `since`, as a `PostList`. The roots
/// of changed replies come along in `posts` (not in `order`) unless
/// `skipFetchThreads`, so a client can place them, as in Mattermost.
fn posts_since(shim: &Shim, channel_id: &str, since: i64, skip_threads: bool) -> Result<Response> {
    let store = &shim.app.store;
    let changed = store
        .channel_posts_since(channel_id, since)
        .map_err(|e| ApiError::store("app.post.get_posts_since.app_error", e))?;
    let order: Vec<&str> = changed.iter().map(|p| p.id.as_str()).collect();
    let mut map: serde_json::Map<String, Value> = changed
        .iter()
        .map(|p| (p.id.clone(), shim.app.post_for_client(p)))
        .collect();
    if !skip_threads {
        for post in &changed {
            if !post.root_id.is_empty()
                && !map.contains_key(&post.root_id)
                && let Ok(root) = store.post(&post.root_id)
            {
                map.insert(root.id.clone(), shim.app.post_for_client(&root));
            }
        }
    }
    Ok(json_response(
        StatusCode::OK,
        json!({"order": order, "posts": map, "next_post_id": "", "prev_post_id": "", "has_next": false}),
    ))
}

/// A query parameter's value, if present.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

// ---- posts ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewPost {
    channel_id: String,
    message: String,
    root_id: String,
    #[serde(rename = "type")]
    post_type: String,
    props: Option<serde_json::Map<String, Value>>,
}

async fn create_post(
    State(shim): State<Shim>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    // Mattermost's `set_online` query parameter: anything but "false" is true.
    let set_online = !url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .any(|(k, v)| k == "set_online" && v == "false");
    let new: NewPost = json_body(&shim, body, "post").await?;
    let channel = shim
        .app
        .store
        .channel(&new.channel_id)
        .map_err(|e| ApiError::store("api.post.create_post.channel.app_error", e))?;
    require(
        &shim,
        &session,
        "create_post",
        Scope::Channel(channel.id.clone()),
    )?;
    if new.post_type.starts_with("system_") {
        return Err(ApiError::new(
            400,
            "api.context.invalid_param.app_error",
            "Invalid post.type parameter.",
        ));
    }
    if channel.delete_at != 0 {
        return Err(ApiError::new(
            400,
            "api.post.create_post.can_not_post_to_deleted.error",
            "Can not post to deleted channel.",
        ));
    }
    let mut props = new.props.unwrap_or_default();
    // As in Mattermost, a post made with an OAuth app's token says so.
    if shim.is_oauth_session(&headers, None) {
        props.insert("from_oauth_app".into(), "true".into());
    }
    let post = Post {
        user_id: session,
        channel_id: channel.id,
        root_id: new.root_id,
        message: new.message,
        post_type: new.post_type,
        props: Value::Object(props).to_string(),
        metadata: "{}".into(),
        ..Post::default()
    };
    // Off the async threads: the write waits for its group commit.
    let app = shim.app.clone();
    // Outgoing webhooks run after the 201, off this request; the post owes
    // them from its commit on.
    let post = tokio::task::spawn_blocking(move || app.create_post_owing_hook(post, set_online))
        .await
        .map_err(|e| ApiError::new(500, "api.post.create_post.app_error", e.to_string()))?
        .map_err(|e| ApiError::store("api.post.create_post.app_error", e))?;
    Ok(json_response(
        StatusCode::CREATED,
        shim.app.post_for_client(&post),
    ))
}

async fn get_post(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(post_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let post = shim
        .app
        .store
        .post(&post_id)
        .map_err(|e| ApiError::store("app.post.get.app_error", e))?;
    require(
        &shim,
        &session,
        "read_channel",
        Scope::Channel(post.channel_id.clone()),
    )?;
    Ok(json_response(
        StatusCode::OK,
        shim.app.post_for_client(&post),
    ))
}

// ---- config ----

async fn get_config(State(shim): State<Shim>, headers: HeaderMap) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_admin(&shim, &session)?;
    Ok(json_response(
        StatusCode::OK,
        shim.app.config().sanitized_document(),
    ))
}

async fn patch_config(
    State(shim): State<Shim>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    require_admin(&shim, &session)?;
    let patch: Value = json_body(&shim, body, "config").await?;
    let config = shim
        .app
        .config()
        .patched(&patch)
        .map_err(|e| ApiError::invalid_body("config").detail(e))?;
    shim.app.set_config(config).map_err(|e| {
        ApiError::new(
            500,
            "api.config.update_config.app_error",
            "Could not save the configuration.",
        )
        .detail(e.to_string())
    })?;
    let (runtime, app) = (shim.runtime.clone(), shim.app.clone());
    if let Err(err) = runtime.configuration_changed(app).await {
        tracing::warn!("plugin configuration_changed failed: {err}");
    }
    Ok(json_response(
        StatusCode::OK,
        shim.app.config().sanitized_document(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_as_go_parses_booleans() {
        assert!(query_flag(Some("include_deleted=true"), "include_deleted"));
        assert!(query_flag(Some("a=1&include_deleted=T"), "include_deleted"));
        assert!(!query_flag(Some("include_deleted=yes"), "include_deleted"));
        assert!(!query_flag(None, "include_deleted"));
    }

    #[test]
    fn paging_defaults_clamps_and_refuses_overflow() {
        let p = paging(None).unwrap();
        assert_eq!((p.page, p.per_page, p.offset), (0, 60, 0));
        let p = paging(Some("page=2&per_page=500")).unwrap();
        assert_eq!((p.page, p.per_page, p.offset), (2, 200, 400));
        assert!(paging(Some("page=18446744073709551615&per_page=200")).is_err());
        assert!(paging(Some("page=x")).is_err());
    }
}
