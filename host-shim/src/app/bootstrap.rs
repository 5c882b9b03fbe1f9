//! First start: a team with `town-square` and `off-topic`, and an admin with a
//! personal access token written to a 0600 file, so a newcomer can start at once.

use crate::store::{Store, User, new_id, now_millis};
use std::path::{Path, PathBuf};

/// What a first start created.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub team_name: String,
    pub admin_username: String,
    pub admin_token: String,
    pub token_file: Option<PathBuf>,
}

pub const TEAM_NAME: &str = "switchboard";
pub const ADMIN_USERNAME: &str = "admin";

/// Creates the first team, channels and admin when the store has no users;
/// `None` when it already had some. The token and password go to
/// `admin-token` and `admin-password` in `data_dir` when one is given.
///
/// Resumable: the files are written before the one transaction that creates
/// everything, so a start killed at any point either left no admin (and the
/// next start does it all again, overwriting the files) or left the admin
/// and the files that go with it.
pub fn bootstrap(store: &Store, data_dir: Option<&Path>) -> anyhow::Result<Option<Bootstrap>> {
    if store.user_count()? > 0 {
        return Ok(None);
    }
    let password = new_id();
    let hash = bcrypt::hash(&password, 10)?;
    let token = new_id();
    let admin = User {
        id: new_id(),
        username: ADMIN_USERNAME.into(),
        email: "admin@localhost".into(),
        roles: "system_user system_admin".into(),
        create_at: now_millis(),
        ..User::default()
    };
    let token_file = match data_dir {
        Some(dir) => {
            write_secret(&dir.join("admin-password"), &password)?;
            let path = dir.join("admin-token");
            write_secret(&path, &token)?;
            Some(path)
        }
        None => None,
    };
    store.create_first_start(
        TEAM_NAME,
        "Switchboard",
        &[("town-square", "Town Square"), ("off-topic", "Off-Topic")],
        &admin,
        &hash,
        &token,
    )?;
    Ok(Some(Bootstrap {
        team_name: TEAM_NAME.into(),
        admin_username: admin.username,
        admin_token: token,
        token_file,
    }))
}

fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{secret}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an interrupted start of an older shim left: the team, no admin.
    /// The next start adopts the team and finishes the job.
    #[test]
    fn a_start_interrupted_after_the_team_is_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("switchboard.db")).unwrap();
        let team = store.create_team(TEAM_NAME, "Switchboard").unwrap();
        let first = bootstrap(&store, Some(dir.path())).unwrap().unwrap();
        let admin = store.user_by_username(ADMIN_USERNAME).unwrap();
        assert_eq!(
            store
                .user_for_token(&first.admin_token)
                .unwrap()
                .map(|o| o.user_id),
            Some(admin.id.clone())
        );
        assert!(store.team_member(&team.id, &admin.id).unwrap().is_some());
        for name in ["town-square", "off-topic"] {
            let channel = store.channel_by_name(&team.id, name).unwrap();
            assert!(store.is_channel_member(&channel.id, &admin.id).unwrap());
        }
        let file = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
        assert_eq!(file.trim(), first.admin_token);
        // And a later start leaves it alone.
        assert!(bootstrap(&store, Some(dir.path())).unwrap().is_none());
    }

    /// A first start whose transaction fails leaves no team behind, so the
    /// next start is a clean first start.
    #[test]
    fn a_failed_first_start_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("switchboard.db")).unwrap();
        let admin = User {
            id: new_id(),
            username: ADMIN_USERNAME.into(),
            roles: "system_user".into(),
            ..User::default()
        };
        // A token that already exists makes the last insert fail, after the
        // team, admin and channel rows were written in the same transaction.
        store
            .create_user(
                &User {
                    id: new_id(),
                    username: "someone".into(),
                    ..User::default()
                },
                "!",
            )
            .unwrap();
        let someone = store.user_by_username("someone").unwrap();
        let token = store.create_token(&someone.id, "pat", "x").unwrap();
        let failed = store.create_first_start(
            TEAM_NAME,
            "Switchboard",
            &[("town-square", "Town Square")],
            &admin,
            "!",
            &token,
        );
        assert!(failed.is_err());
        assert!(
            store.team_by_name(TEAM_NAME).is_err(),
            "the team was rolled back"
        );
        assert!(store.user_by_username(ADMIN_USERNAME).is_err());
    }
}
