//! Where command definitions live: one kv record per command, plus a claim per
//! team and trigger that makes triggers unique even under concurrent writes
//! and finds a command by trigger in one read.

use super::model::Command;
use crate::api::ApiError;
use crate::host::Host;
use crate::store::Collection;

const COMMANDS: Collection =
    Collection::indexed("command/", "command_index/", crate::store::by_team);
const TRIGGER_PREFIX: &str = "command_trigger/";

fn trigger_key(team_id: &str, trigger: &str) -> String {
    format!("{TRIGGER_PREFIX}{team_id}/{trigger}")
}

fn storage(e: crate::host::HostError) -> ApiError {
    ApiError::new(500, "app.plugin.kv.app_error", "The plugin store failed.")
        .with_detail(e.detail().to_string())
}

pub fn duplicate_trigger() -> ApiError {
    ApiError::new(
        400,
        "api.command.duplicate_trigger.app_error",
        "This trigger word is already in use. Please choose another word.",
    )
}

pub fn get(host: &dyn Host, id: &str) -> Result<Option<Command>, ApiError> {
    COMMANDS.get(host, id)
}

/// Every command of a team, by trigger.
pub fn for_team(host: &dyn Host, team_id: &str) -> Result<Vec<Command>, ApiError> {
    let mut commands: Vec<Command> = COMMANDS
        .find::<Command>(host, &[crate::store::team_term(team_id)])?
        .into_iter()
        .filter(|c| c.team_id == team_id)
        .collect();
    commands.sort_by(|a, b| a.trigger.cmp(&b.trigger));
    Ok(commands)
}

/// The team's command with this (lower-cased) trigger.
pub fn by_trigger(
    host: &dyn Host,
    team_id: &str,
    trigger: &str,
) -> Result<Option<Command>, ApiError> {
    // No stored command has an invalid trigger, and a long one would make a
    // kv key past the host's limit (a 500 instead of the user's 404).
    if !super::model::is_valid_trigger(trigger) {
        return Ok(None);
    }
    let Some(id) = host
        .kv_get(&trigger_key(team_id, trigger))
        .map_err(storage)?
    else {
        return Ok(None);
    };
    let id = String::from_utf8_lossy(&id).into_owned();
    Ok(get(host, &id)?.filter(|c| c.team_id == team_id && c.trigger == trigger))
}

/// Takes `trigger` in `team_id` for command `id`, or fails with
/// `duplicate_trigger` when another live command holds it. A claim left by a
/// deleted or renamed command is taken over.
fn claim(host: &dyn Host, team_id: &str, trigger: &str, id: &str) -> Result<(), ApiError> {
    let key = trigger_key(team_id, trigger);
    for _ in 0..8 {
        let current = host.kv_get(&key).map_err(storage)?;
        if let Some(holder) = &current {
            let holder = String::from_utf8_lossy(holder);
            if holder == id {
                return Ok(());
            }
            let live =
                get(host, &holder)?.is_some_and(|c| c.team_id == team_id && c.trigger == trigger);
            if live {
                return Err(duplicate_trigger());
            }
        }
        if host
            .kv_compare_and_set(&key, current.as_deref(), Some(id.as_bytes()))
            .map_err(storage)?
        {
            return Ok(());
        }
    }
    Err(duplicate_trigger())
}

/// Gives up a claim, only if `id` still holds it.
fn release(host: &dyn Host, team_id: &str, trigger: &str, id: &str) -> Result<(), ApiError> {
    host.kv_compare_and_set(&trigger_key(team_id, trigger), Some(id.as_bytes()), None)
        .map(|_| ())
        .map_err(storage)
}

/// Stores a new command, or an edited one (`previous` is what was stored),
/// claiming its trigger in its team first and releasing the old claim after.
pub fn save(
    host: &dyn Host,
    command: &Command,
    previous: Option<&Command>,
) -> Result<(), ApiError> {
    let moved =
        previous.is_some_and(|p| p.team_id != command.team_id || p.trigger != command.trigger);
    if previous.is_none() || moved {
        claim(host, &command.team_id, &command.trigger, &command.id)?;
    }
    if let Err(e) = COMMANDS.put(host, &command.id, command) {
        if previous.is_none() || moved {
            let _ = release(host, &command.team_id, &command.trigger, &command.id);
        }
        return Err(e);
    }
    if let Some(p) = previous.filter(|_| moved) {
        release(host, &p.team_id, &p.trigger, &p.id)?;
    }
    Ok(())
}

pub fn delete(host: &dyn Host, command: &Command) -> Result<(), ApiError> {
    COMMANDS.delete(host, &command.id)?;
    release(host, &command.team_id, &command.trigger, &command.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    fn command(id: &str, team: &str, trigger: &str) -> Command {
        Command {
            id: id.into(),
            team_id: team.into(),
            trigger: trigger.into(),
            ..Default::default()
        }
    }

    #[test]
    fn triggers_are_unique_per_team() {
        let host = FakeHost::default();
        save(&host, &command("a", "t1", "deploy"), None).unwrap();
        let err = save(&host, &command("b", "t1", "deploy"), None).unwrap_err();
        assert_eq!(err.id, "api.command.duplicate_trigger.app_error");
        save(&host, &command("c", "t2", "deploy"), None).unwrap();
        assert_eq!(by_trigger(&host, "t1", "deploy").unwrap().unwrap().id, "a");
        assert_eq!(by_trigger(&host, "t2", "deploy").unwrap().unwrap().id, "c");
        assert!(by_trigger(&host, "t1", "other").unwrap().is_none());
    }

    #[test]
    fn renaming_and_deleting_free_the_trigger() {
        let host = FakeHost::default();
        let old = command("a", "t", "deploy");
        save(&host, &old, None).unwrap();
        let renamed = command("a", "t", "ship");
        save(&host, &renamed, Some(&old)).unwrap();
        assert!(by_trigger(&host, "t", "deploy").unwrap().is_none());
        save(&host, &command("b", "t", "deploy"), None).unwrap();
        assert!(save(&host, &command("c", "t", "ship"), None).is_err());
        delete(&host, &renamed).unwrap();
        save(&host, &command("c", "t", "ship"), None).unwrap();
        assert_eq!(for_team(&host, "t").unwrap().len(), 2);
    }

    #[test]
    fn a_stale_claim_is_taken_over() {
        let host = FakeHost::default();
        host.kv_set(&trigger_key("t", "deploy"), b"gone").unwrap();
        save(&host, &command("a", "t", "deploy"), None).unwrap();
        assert_eq!(by_trigger(&host, "t", "deploy").unwrap().unwrap().id, "a");
    }
}
