//! `/api/v4/commands[/{id}]`: create, list, read, update, move, delete custom
//! commands and regenerate their tokens, with Mattermost's permission rules:
//! those who may not see a command get 404, not 403, so ids do not leak.

use super::builtin::BUILT_INS;
use super::model::{Command, is_reserved};
use super::{registry, require_enabled};
use crate::api::{ApiError, Request, Response};
use crate::host::{Host, PermissionScope};
use crate::ids;
use serde_json::json;

const MANAGE_OWN: &str = "manage_own_slash_commands";
const MANAGE_OTHERS: &str = "manage_others_slash_commands";

fn can(host: &dyn Host, user: &str, permission: &str, team_id: &str) -> bool {
    host.has_permission(user, permission, &PermissionScope::Team(team_id.into()))
        .unwrap_or(false)
}

fn require(host: &dyn Host, user: &str, permission: &str, team_id: &str) -> Result<(), ApiError> {
    if can(host, user, permission, team_id) {
        Ok(())
    } else {
        Err(ApiError::forbidden().with_detail(format!("missing permission {permission}")))
    }
}

fn not_found() -> ApiError {
    ApiError::new(
        404,
        "store.sql_command.save.get.app_error",
        "Unable to get the command.",
    )
}

fn decode(req: &Request) -> Result<Command, ApiError> {
    Command::from_json(&req.body).map_err(|e| ApiError::invalid_param("command").with_detail(e))
}

/// The trigger rule Mattermost applies before saving: lower-cased, and no
/// built-in's trigger.
fn check_trigger(host: &dyn Host, command: &mut Command) -> Result<(), ApiError> {
    command.trigger = command.trigger.to_lowercase();
    if is_reserved(&command.trigger, host.settings().enable_testing) {
        return Err(registry::duplicate_trigger());
    }
    Ok(())
}

pub fn create(host: &dyn Host, req: &Request) -> Result<Response, ApiError> {
    let session = req.session_user()?;
    let mut command = decode(req)?;
    require(host, session, MANAGE_OWN, &command.team_id)?;
    let creator = if command.creator_id.is_empty() || command.creator_id == session {
        session.to_string()
    } else {
        require(host, session, MANAGE_OTHERS, &command.team_id)?;
        host.user(&command.creator_id)
            .map_err(|e| ApiError::host("app.user.missing_account.const", &e))?
            .id
    };
    require_enabled(host)?;
    check_trigger(host, &mut command)?;

    let now = host.now_millis();
    command.id = ids::new_id();
    command.token = ids::new_id();
    command.signing_secret = ids::new_secret();
    command.creator_id = creator;
    command.plugin_id.clear();
    command.create_at = now;
    command.update_at = now;
    command.delete_at = 0;
    command.validate()?;
    registry::save(host, &command, None)?;
    Ok(Response::json(201, &command))
}

/// Loads a command the session user may manage; 404 when they may not see it.
fn load_managed(host: &dyn Host, req: &Request, id: &str) -> Result<Command, ApiError> {
    let session = req.session_user()?;
    if !ids::is_valid(id) {
        return Err(ApiError::invalid_url_param("command_id"));
    }
    require_enabled(host)?;
    let command = registry::get(host, id)?.ok_or_else(not_found)?;
    if !can(host, session, MANAGE_OWN, &command.team_id) {
        return Err(not_found());
    }
    if command.creator_id != session {
        require(host, session, MANAGE_OTHERS, &command.team_id)?;
    }
    Ok(command)
}

pub fn get(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let command = load_managed(host, req, id).map_err(|e| {
        // Reading someone else's command without the right looks like a missing one.
        if e.status == 403 { not_found() } else { e }
    })?;
    Ok(Response::json(200, &command))
}

pub fn update(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let mut updated = decode(req)?;
    if updated.id != id {
        return Err(ApiError::invalid_param("command"));
    }
    let old = load_managed(host, req, id)?;
    if updated.team_id != old.team_id {
        return Err(ApiError::new(
            400,
            "api.command.team_mismatch.app_error",
            "Unable to update commands across teams.",
        ));
    }
    check_trigger(host, &mut updated)?;
    updated.token = old.token.clone();
    updated.signing_secret = old.signing_secret.clone();
    updated.create_at = old.create_at;
    updated.update_at = host.now_millis().max(old.update_at + 1);
    updated.delete_at = old.delete_at;
    updated.creator_id = old.creator_id.clone();
    updated.plugin_id = old.plugin_id.clone();
    updated.validate()?;
    registry::save(host, &updated, Some(&old))?;
    Ok(Response::json(200, &updated))
}

pub fn delete(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let command = load_managed(host, req, id)?;
    registry::delete(host, &command)?;
    Ok(Response::status_ok())
}

/// `PUT /api/v4/commands/{id}/move`: to another team, whose trigger space it
/// must fit and where its creator may manage commands too.
pub fn move_to_team(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let session = req.session_user()?;
    let target: String = serde_json::from_slice::<serde_json::Value>(&req.body)
        .ok()
        .and_then(|v| {
            v.get("team_id")
                .and_then(|t| t.as_str())
                .map(str::to_string)
        })
        .ok_or_else(|| ApiError::invalid_param("team_id"))?;
    let team = host
        .team(&target)
        .map_err(|e| ApiError::host("app.team.get.find.app_error", &e))?;
    require(host, session, MANAGE_OWN, &team.id)?;
    let old = load_managed(host, req, id)?;
    if !can(host, &old.creator_id, MANAGE_OWN, &team.id) {
        return Err(ApiError::new(
            400,
            "api.command.move_command.creator_no_permission.app_error",
            "The command's creator may not manage commands in the target team.",
        ));
    }
    let moved = Command {
        team_id: team.id,
        update_at: host.now_millis().max(old.update_at + 1),
        ..old.clone()
    };
    registry::save(host, &moved, Some(&old))?;
    Ok(Response::status_ok())
}

pub fn regen_token(host: &dyn Host, req: &Request, id: &str) -> Result<Response, ApiError> {
    let mut command = load_managed(host, req, id)?;
    let old = command.clone();
    command.token = ids::new_id();
    command.update_at = host.now_millis().max(old.update_at + 1);
    registry::save(host, &command, Some(&old))?;
    Ok(Response::json(200, &json!({"token": command.token})))
}

/// Our addition: a new signing secret, for when the old one leaked.
pub fn regen_signing_secret(
    host: &dyn Host,
    req: &Request,
    id: &str,
) -> Result<Response, ApiError> {
    let mut command = load_managed(host, req, id)?;
    let old = command.clone();
    command.signing_secret = ids::new_secret();
    command.update_at = host.now_millis().max(old.update_at + 1);
    registry::save(host, &command, Some(&old))?;
    Ok(Response::json(
        200,
        &json!({"signing_secret": command.signing_secret}),
    ))
}

/// `GET /api/v4/commands?team_id=…[&custom_only=true]`. Custom only: the
/// team's commands the user may manage, in full. Otherwise the built-ins
/// plus, for those with manage rights, the team's commands, sanitized; for
/// others what autocomplete offers.
pub fn list(host: &dyn Host, req: &Request) -> Result<Response, ApiError> {
    let session = req.session_user()?;
    let custom_only = req
        .query_param("custom_only")
        .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"));
    let team_id = req.query_param("team_id").unwrap_or_default();
    if team_id.is_empty() {
        return Err(ApiError::invalid_param("team_id"));
    }
    require(host, session, "view_team", &team_id)?;
    let own = can(host, session, MANAGE_OWN, &team_id);
    let mine = |c: &Command| can(host, session, MANAGE_OTHERS, &team_id) || c.creator_id == session;

    if custom_only {
        require(host, session, MANAGE_OWN, &team_id)?;
        require_enabled(host)?;
        let commands: Vec<Command> = registry::for_team(host, &team_id)?
            .into_iter()
            .filter(|c| mine(c))
            .collect();
        return Ok(Response::json(200, &commands));
    }
    if !own {
        return Ok(Response::json(
            200,
            &super::autocomplete::commands(host, &team_id)?,
        ));
    }
    let mut commands: Vec<Command> = BUILT_INS.iter().map(|b| b.as_command()).collect();
    if host.settings().enable_commands {
        commands.extend(
            registry::for_team(host, &team_id)?
                .into_iter()
                .filter(|c| mine(c))
                .map(Command::sanitized),
        );
    }
    Ok(Response::json(200, &commands))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeHost, user};
    use serde_json::Value;

    const TEAM: &str = "tttttttttttttttttttttttttt";
    const ADMIN: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaa";
    const USER: &str = "uuuuuuuuuuuuuuuuuuuuuuuuuu";

    fn host() -> FakeHost {
        let host = FakeHost::default();
        host.users.borrow_mut().push(user(ADMIN, "admin"));
        host.users.borrow_mut().push(user(USER, "user"));
        host.admins.borrow_mut().push(ADMIN.into());
        host
    }

    fn req(method: &str, user: &str, body: Value) -> Request {
        Request {
            method: method.into(),
            body: body.to_string().into_bytes(),
            user_id: Some(user.into()),
            request_id: "r".into(),
            ..Default::default()
        }
    }

    fn new_command(host: &FakeHost, body: Value) -> Result<Command, ApiError> {
        create(host, &req("POST", ADMIN, body)).map(|r| serde_json::from_slice(&r.body).unwrap())
    }

    fn valid() -> Value {
        json!({"team_id": TEAM, "trigger": "Deploy", "method": "P", "url": "http://x/cmd"})
    }

    #[test]
    fn create_lowercases_and_fills_in() {
        let host = host();
        let c = new_command(&host, valid()).unwrap();
        assert_eq!(c.trigger, "deploy");
        assert_eq!(c.creator_id, ADMIN);
        assert!(ids::is_valid(&c.id) && c.token.len() == 26);
        assert_eq!(c.signing_secret.len(), 32);
        assert!(c.create_at > 0 && c.create_at == c.update_at);
    }

    #[test]
    fn create_rules() {
        let host = host();
        new_command(&host, valid()).unwrap();
        let cases = [
            (
                json!({"trigger": "DEPLOY"}),
                "api.command.duplicate_trigger.app_error",
            ),
            (
                json!({"trigger": "Echo"}),
                "api.command.duplicate_trigger.app_error",
            ),
            (
                json!({"trigger": "a b"}),
                "model.command.is_valid.trigger.app_error",
            ),
            (
                json!({"trigger": "x", "method": "POST"}),
                "model.command.is_valid.method.app_error",
            ),
            (
                json!({"trigger": "x", "url": "ftp://x"}),
                "model.command.is_valid.url_http.app_error",
            ),
            (
                json!({"trigger": "x", "url": ""}),
                "model.command.is_valid.url.app_error",
            ),
            (
                json!({"trigger": "x", "description": "d".repeat(129)}),
                "model.command.is_valid.description.app_error",
            ),
            (json!({"trigger": 5}), "api.context.invalid_param.app_error"),
        ];
        for (patch, id) in cases {
            let mut body = valid();
            body.as_object_mut()
                .unwrap()
                .extend(patch.as_object().unwrap().clone());
            let err = new_command(&host, body.clone()).unwrap_err();
            assert_eq!((err.status, err.id.as_str()), (400, id), "{body}");
        }
        let err = create(&host, &req("POST", USER, valid())).unwrap_err();
        assert_eq!(err.status, 403);
        host.settings.borrow_mut().enable_commands = false;
        let mut body = valid();
        body["trigger"] = json!("other");
        assert_eq!(new_command(&host, body).unwrap_err().status, 501);
    }

    #[test]
    fn update_keeps_what_the_server_owns() {
        let host = host();
        let c = new_command(&host, valid()).unwrap();
        let mut body = serde_json::to_value(&c).unwrap();
        body["trigger"] = json!("Ship");
        body["token"] = json!("x".repeat(26));
        body["creator_id"] = json!(USER);
        let r = update(&host, &req("PUT", ADMIN, body.clone()), &c.id).unwrap();
        let u: Command = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            (u.trigger.as_str(), u.token.as_str(), u.creator_id.as_str()),
            ("ship", c.token.as_str(), ADMIN)
        );
        assert!(u.update_at > c.update_at);
        body["team_id"] = json!("other");
        let err = update(&host, &req("PUT", ADMIN, body.clone()), &c.id).unwrap_err();
        assert_eq!(err.id, "api.command.team_mismatch.app_error");
        let err = update(&host, &req("PUT", ADMIN, body), "wrongid").unwrap_err();
        assert_eq!(err.id, "api.context.invalid_param.app_error");
    }

    #[test]
    fn others_cannot_see_and_tokens_regenerate() {
        let host = host();
        let c = new_command(&host, valid()).unwrap();
        let err = get(&host, &req("GET", USER, Value::Null), &c.id).unwrap_err();
        assert_eq!(
            (err.status, err.id.as_str()),
            (404, "store.sql_command.save.get.app_error")
        );
        let err = get(&host, &req("GET", ADMIN, Value::Null), "short").unwrap_err();
        assert_eq!(err.id, "api.context.invalid_url_param.app_error");
        let r = regen_token(&host, &req("PUT", ADMIN, Value::Null), &c.id).unwrap();
        let token: Value = serde_json::from_slice(&r.body).unwrap();
        assert_ne!(token["token"], json!(c.token));
        assert_eq!(
            registry::get(&host, &c.id).unwrap().unwrap().token,
            token["token"]
        );
        let r = regen_signing_secret(&host, &req("PUT", ADMIN, Value::Null), &c.id).unwrap();
        let secret: Value = serde_json::from_slice(&r.body).unwrap();
        assert_ne!(secret["signing_secret"], json!(c.signing_secret));
        delete(&host, &req("DELETE", ADMIN, Value::Null), &c.id).unwrap();
        let err = get(&host, &req("GET", ADMIN, Value::Null), &c.id).unwrap_err();
        assert_eq!(err.status, 404);
    }

    #[test]
    fn moving_to_another_team() {
        let host = host();
        let c = new_command(&host, valid()).unwrap();
        let other = "oooooooooooooooooooooooooo";
        let moved = move_to_team(&host, &req("PUT", ADMIN, json!({"team_id": other})), &c.id);
        assert_eq!(moved.unwrap().status, 200);
        assert_eq!(
            registry::by_trigger(&host, other, "deploy")
                .unwrap()
                .unwrap()
                .id,
            c.id
        );
        assert!(
            registry::by_trigger(&host, TEAM, "deploy")
                .unwrap()
                .is_none()
        );
        // Back home, where the trigger has been taken meanwhile: refused.
        let mut taken = valid();
        taken["trigger"] = json!("deploy");
        new_command(&host, taken).unwrap();
        let err =
            move_to_team(&host, &req("PUT", ADMIN, json!({"team_id": TEAM})), &c.id).unwrap_err();
        assert_eq!(err.id, "api.command.duplicate_trigger.app_error");
        let err = move_to_team(&host, &req("PUT", ADMIN, json!({})), &c.id).unwrap_err();
        assert_eq!(err.id, "api.context.invalid_param.app_error");
    }

    #[test]
    fn listing() {
        let host = host();
        new_command(&host, valid()).unwrap();
        let mut list_req = req("GET", ADMIN, Value::Null);
        list_req.query = format!("team_id={TEAM}&custom_only=true");
        let all: Vec<Command> =
            serde_json::from_slice(&list(&host, &list_req).unwrap().body).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].token.len(), 26);
        list_req.query = format!("team_id={TEAM}");
        let all: Vec<Command> =
            serde_json::from_slice(&list(&host, &list_req).unwrap().body).unwrap();
        assert_eq!(all.len(), BUILT_INS.len() + 1);
        let custom = all.iter().find(|c| c.trigger == "deploy").unwrap();
        assert!(custom.token.is_empty() && custom.url.is_empty());
        list_req.query.clear();
        assert_eq!(
            list(&host, &list_req).unwrap_err().id,
            "api.context.invalid_param.app_error"
        );
    }
}
