//! Autocomplete: the commands a team's members may pick from
//! (`GET /api/v4/teams/{team_id}/commands/autocomplete`) and suggestions for
//! what the user has typed so far (`…/commands/autocomplete_suggestions`).

use super::builtin::BUILT_INS;
use super::model::Command;
use super::registry;
use crate::api::{ApiError, Request, Response, require_permission};
use crate::host::{Host, PermissionScope};
use crate::ids;
use serde::Serialize;
use serde_json::Value;

/// The team's commands that offer autocomplete, sanitized, then the
/// built-ins, each trigger once.
pub fn commands(host: &dyn Host, team_id: &str) -> Result<Vec<Command>, ApiError> {
    let mut out: Vec<Command> = Vec::new();
    if host.settings().enable_commands {
        out.extend(
            registry::for_team(host, team_id)?
                .into_iter()
                .filter(|c| c.auto_complete)
                .map(Command::sanitized),
        );
    }
    for b in BUILT_INS {
        if !out.iter().any(|c| c.trigger == b.trigger) {
            out.push(b.as_command());
        }
    }
    Ok(out)
}

fn team_param(host: &dyn Host, req: &Request, team_id: &str) -> Result<(), ApiError> {
    let session = req.session_user()?;
    if !ids::is_valid(team_id) {
        return Err(ApiError::invalid_url_param("team_id"));
    }
    require_permission(
        host,
        session,
        "view_team",
        &PermissionScope::Team(team_id.into()),
    )
}

pub fn list(host: &dyn Host, req: &Request, team_id: &str) -> Result<Response, ApiError> {
    team_param(host, req, team_id)?;
    Ok(Response::json(200, &commands(host, team_id)?))
}

/// Mattermost's `AutocompleteSuggestion`, whose members have no JSON tags
/// and so are written capitalized.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Suggestion {
    pub complete: String,
    pub suggestion: String,
    pub hint: String,
    pub description: String,
    pub icon_data: String,
}

pub fn suggestions(host: &dyn Host, req: &Request, team_id: &str) -> Result<Response, ApiError> {
    team_param(host, req, team_id)?;
    let input = req.query_param("user_input").unwrap_or_default();
    if input.is_empty() {
        return Err(ApiError::invalid_param("userInput"));
    }
    let input = input.strip_prefix('/').unwrap_or(&input);
    Ok(Response::json(
        200,
        &suggest(&commands(host, team_id)?, input),
    ))
}

/// Suggestions for `input` (without its `/`): while the trigger is being
/// typed, every command whose trigger starts with it; after the trigger, the
/// sub-commands of its `autocomplete_data` that start with the next word.
pub fn suggest(commands: &[Command], input: &str) -> Vec<Suggestion> {
    let lowered = input.to_lowercase();
    let Some((trigger, rest)) = lowered.split_once(' ') else {
        let mut out: Vec<Suggestion> = commands
            .iter()
            .filter(|c| c.trigger.starts_with(&lowered))
            .map(|c| Suggestion {
                complete: c.trigger.clone(),
                suggestion: format!("/{}", c.trigger),
                hint: c.auto_complete_hint.clone(),
                description: c.auto_complete_desc.clone(),
                icon_data: c.autocomplete_icon_data.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.complete.cmp(&b.complete));
        return out;
    };
    let Some(command) = commands.iter().find(|c| c.trigger == trigger) else {
        return Vec::new();
    };
    let Some(subs) = command
        .autocomplete_data
        .as_ref()
        .and_then(|d| member(d, "SubCommands"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let typed = rest.trim_start();
    if typed.contains(' ') {
        return Vec::new();
    }
    subs.iter()
        .filter_map(|sub| {
            let name = member(sub, "Trigger")?.as_str()?;
            name.to_lowercase().starts_with(typed).then(|| Suggestion {
                complete: format!("{trigger} {name}"),
                suggestion: name.to_string(),
                hint: text(sub, "Hint"),
                description: text(sub, "HelpText"),
                icon_data: command.autocomplete_icon_data.clone(),
            })
        })
        .collect()
}

/// A member of Mattermost's `AutocompleteData`, whose keys clients write in
/// any case.
fn member<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn text(v: &Value, name: &str) -> String {
    member(v, name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn command(trigger: &str, data: Option<Value>) -> Command {
        Command {
            trigger: trigger.into(),
            auto_complete: true,
            auto_complete_hint: "[env]".into(),
            auto_complete_desc: "Deploys".into(),
            autocomplete_data: data,
            ..Default::default()
        }
    }

    #[test]
    fn partial_triggers() {
        let all = [
            command("deploy", None),
            command("debug", None),
            command("echo", None),
        ];
        let got = suggest(&all, "De");
        let triggers: Vec<&str> = got.iter().map(|s| s.complete.as_str()).collect();
        assert_eq!(triggers, ["debug", "deploy"]);
        assert_eq!(got[1].suggestion, "/deploy");
        assert_eq!(got[1].hint, "[env]");
        assert!(suggest(&all, "x").is_empty());
        let json = serde_json::to_value(&got[0]).unwrap();
        assert_eq!(
            json.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["Complete", "Suggestion", "Hint", "Description", "IconData"]
        );
    }

    #[test]
    fn sub_commands() {
        let data = json!({"Trigger": "deploy", "SubCommands": [
            {"Trigger": "staging", "HelpText": "to staging", "Hint": "[tag]"},
            {"Trigger": "production", "HelpText": "to prod"}
        ]});
        let all = [command("deploy", Some(data))];
        let got = suggest(&all, "deploy st");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].complete, "deploy staging");
        assert_eq!(got[0].description, "to staging");
        assert_eq!(suggest(&all, "deploy ").len(), 2);
        assert!(suggest(&all, "deploy staging now").is_empty());
        assert!(suggest(&[command("deploy", None)], "deploy x").is_empty());
    }
}
