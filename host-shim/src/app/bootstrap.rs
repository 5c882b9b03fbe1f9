//! First start: a team with `town-square` and `off-topic`, and an admin with a
//! personal access token written to a 0600 file, so a newcomer can start at
//! once. An installer may name the admin, its password and the team
//! (`SwitchboardSettings.FirstStart`, or `SWITCHBOARD_*` variables, which win).

use crate::config::FirstStartSettings;
use crate::store::{Store, Team, User, new_id, now_millis};
use std::path::{Path, PathBuf};

/// What a first start created.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub team_name: String,
    pub admin_username: String,
    pub admin_token: String,
    pub token_file: Option<PathBuf>,
    /// Where the generated password was written; `None` when the installer
    /// chose it.
    pub password_file: Option<PathBuf>,
}

pub const TEAM_NAME: &str = "switchboard";
pub const ADMIN_USERNAME: &str = "admin";

/// The environment variables a first start reads, and the field each sets.
pub const ENVIRONMENT: [&str; 5] = [
    "SWITCHBOARD_ADMIN_USERNAME",
    "SWITCHBOARD_ADMIN_PASSWORD",
    "SWITCHBOARD_ADMIN_EMAIL",
    "SWITCHBOARD_TEAM_NAME",
    "SWITCHBOARD_TEAM_DISPLAY_NAME",
];

/// `settings` with each variable `lookup` finds (non-empty) put over it.
pub fn with_environment(
    settings: &FirstStartSettings,
    lookup: impl Fn(&str) -> Option<String>,
) -> FirstStartSettings {
    let mut settings = settings.clone();
    let fields = [
        &mut settings.admin_username,
        &mut settings.admin_password,
        &mut settings.admin_email,
        &mut settings.team_name,
        &mut settings.team_display_name,
    ];
    for (name, field) in ENVIRONMENT.iter().zip(fields) {
        if let Some(value) = lookup(name).filter(|v| !v.is_empty()) {
            *field = value;
        }
    }
    settings
}

/// The first start's names, checked: what is wrong is named, a password
/// never shown.
struct Chosen {
    username: String,
    password: Option<String>,
    email: String,
    team_name: String,
    team_display_name: String,
}

fn choose(settings: &FirstStartSettings) -> anyhow::Result<Chosen> {
    let username = match settings.admin_username.trim().to_lowercase() {
        name if name.is_empty() => ADMIN_USERNAME.to_string(),
        name if User::valid_username(&name) => name,
        name => anyhow::bail!(
            "the first start's admin username `{name}` (SwitchboardSettings.FirstStart.AdminUsername or SWITCHBOARD_ADMIN_USERNAME) must begin with a letter and hold at most 22 lowercase letters, digits, '.', '-' and '_'"
        ),
    };
    let password = match settings.admin_password.as_str() {
        "" => None,
        short if short.len() < 5 => anyhow::bail!(
            "the first start's admin password (SwitchboardSettings.FirstStart.AdminPassword or SWITCHBOARD_ADMIN_PASSWORD) must have at least 5 characters"
        ),
        password => Some(password.to_string()),
    };
    let email = match settings.admin_email.trim().to_lowercase() {
        email if email.is_empty() => format!("{username}@localhost"),
        email if email.contains('@') => email,
        email => anyhow::bail!(
            "the first start's admin email `{email}` (SwitchboardSettings.FirstStart.AdminEmail or SWITCHBOARD_ADMIN_EMAIL) is not an email address"
        ),
    };
    let team_name = match settings.team_name.trim().to_lowercase() {
        name if name.is_empty() => TEAM_NAME.to_string(),
        name if Team::valid_name(&name) => name,
        name => anyhow::bail!(
            "the first start's team name `{name}` (SwitchboardSettings.FirstStart.TeamName or SWITCHBOARD_TEAM_NAME) must hold 2 to 64 lowercase letters, digits, '-' and '_'"
        ),
    };
    let team_display_name = match settings.team_display_name.trim() {
        "" if settings.team_name.trim().is_empty() => "Switchboard".to_string(),
        "" => team_name.clone(),
        name if name.chars().count() <= 64 => name.to_string(),
        _ => anyhow::bail!(
            "the first start's team display name (SwitchboardSettings.FirstStart.TeamDisplayName or SWITCHBOARD_TEAM_DISPLAY_NAME) has more than 64 characters"
        ),
    };
    Ok(Chosen {
        username,
        password,
        email,
        team_name,
        team_display_name,
    })
}

/// Creates the first team, channels and admin when the store has no users;
/// `None` when it already had some. The token goes to `admin-token` in
/// `data_dir` when one is given, and so does a generated password (to
/// `admin-password`); a password from `settings` is written nowhere.
///
/// Resumable: the files are written before the one transaction that creates
/// everything, so a start killed at any point either left no admin (and the
/// next start does it all again, overwriting the files) or left the admin
/// and the files that go with it.
pub fn bootstrap(
    store: &Store,
    data_dir: Option<&Path>,
    settings: &FirstStartSettings,
) -> anyhow::Result<Option<Bootstrap>> {
    if store.user_count()? > 0 {
        return Ok(None);
    }
    let chosen = choose(settings)?;
    let (password, generated) = match chosen.password {
        Some(password) => (password, false),
        None => (new_id(), true),
    };
    let hash = bcrypt::hash(&password, super::passwords::COST)?;
    let token = new_id();
    let admin = User {
        id: new_id(),
        username: chosen.username,
        email: chosen.email,
        roles: "system_user system_admin".into(),
        create_at: now_millis(),
        ..User::default()
    };
    let (token_file, password_file) = match data_dir {
        Some(dir) => {
            let path = dir.join("admin-password");
            let password_file = if generated {
                write_secret(&path, &password)?;
                Some(path)
            } else {
                // One an interrupted earlier start generated is not this one.
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => None,
                }
            };
            let path = dir.join("admin-token");
            write_secret(&path, &token)?;
            (Some(path), password_file)
        }
        None => (None, None),
    };
    store.create_first_start(
        &chosen.team_name,
        &chosen.team_display_name,
        &[("town-square", "Town Square"), ("off-topic", "Off-Topic")],
        &admin,
        &hash,
        &token,
    )?;
    Ok(Some(Bootstrap {
        team_name: chosen.team_name,
        admin_username: admin.username,
        admin_token: token,
        token_file,
        password_file,
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
        let first = bootstrap(&store, Some(dir.path()), &FirstStartSettings::default())
            .unwrap()
            .unwrap();
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
        assert!(
            bootstrap(&store, Some(dir.path()), &FirstStartSettings::default())
                .unwrap()
                .is_none()
        );
    }

    /// The installer's names and password are the admin's and the team's;
    /// the environment wins over the config; no password file is written.
    #[test]
    fn a_first_start_takes_the_installers_names_and_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("switchboard.db")).unwrap();
        let from_config = FirstStartSettings {
            admin_username: "config-admin".into(),
            admin_password: "from-the-config".into(),
            team_name: "config-team".into(),
            ..FirstStartSettings::default()
        };
        let settings = with_environment(&from_config, |name| match name {
            "SWITCHBOARD_ADMIN_USERNAME" => Some("Ops".into()),
            "SWITCHBOARD_ADMIN_PASSWORD" => Some("from-the-environment".into()),
            "SWITCHBOARD_TEAM_NAME" => Some(String::new()),
            _ => None,
        });
        let first = bootstrap(&store, Some(dir.path()), &settings)
            .unwrap()
            .unwrap();
        assert_eq!(first.admin_username, "ops");
        assert_eq!(first.team_name, "config-team", "an empty variable is unset");
        assert!(first.password_file.is_none());
        assert!(!dir.path().join("admin-password").exists());
        let (admin, hash) = store.user_for_login("ops@localhost").unwrap();
        assert!(admin.roles.contains("system_admin"));
        assert!(bcrypt::verify("from-the-environment", &hash).unwrap());
        let team = store.team_by_name("config-team").unwrap();
        assert_eq!(team.display_name, "config-team");
        assert!(store.team_member(&team.id, &admin.id).unwrap().is_some());
    }

    /// Names that would not be valid refuse the start, and the message
    /// never holds a password.
    #[test]
    fn bad_first_start_settings_are_refused_without_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("switchboard.db")).unwrap();
        for settings in [
            FirstStartSettings {
                admin_username: "9lives".into(),
                ..FirstStartSettings::default()
            },
            FirstStartSettings {
                admin_password: "abcd".into(),
                ..FirstStartSettings::default()
            },
            FirstStartSettings {
                team_name: "Not A Name".into(),
                ..FirstStartSettings::default()
            },
            FirstStartSettings {
                admin_email: "nobody".into(),
                ..FirstStartSettings::default()
            },
        ] {
            let err = bootstrap(&store, Some(dir.path()), &settings)
                .unwrap_err()
                .to_string();
            assert!(err.contains("SwitchboardSettings.FirstStart."), "{err}");
            assert!(!err.contains("abcd"), "{err}");
        }
        assert_eq!(store.user_count().unwrap(), 0);
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
