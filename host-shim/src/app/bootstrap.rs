//! First start: a team with `town-square` and `off-topic`, and an admin with a
//! personal access token written to a 0600 file, so a newcomer can start at once.

use crate::store::{Channel, ChannelType, Store, User, new_id, now_millis};
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
pub fn bootstrap(store: &Store, data_dir: Option<&Path>) -> anyhow::Result<Option<Bootstrap>> {
    if store.user_count()? > 0 {
        return Ok(None);
    }
    let team = store.create_team(TEAM_NAME, "Switchboard")?;
    let password = new_id();
    let hash = bcrypt::hash(&password, 10)?;
    let admin = User {
        id: new_id(),
        username: ADMIN_USERNAME.into(),
        email: "admin@localhost".into(),
        roles: "system_user system_admin".into(),
        create_at: now_millis(),
        ..User::default()
    };
    store.create_user(&admin, &hash)?;
    store.add_team_member(&team.id, &admin.id, "team_user team_admin")?;
    for (name, display) in [("town-square", "Town Square"), ("off-topic", "Off-Topic")] {
        let channel = Channel {
            id: new_id(),
            team_id: team.id.clone(),
            name: name.into(),
            display_name: display.into(),
            channel_type: ChannelType::Open,
            header: String::new(),
            purpose: String::new(),
            creator_id: admin.id.clone(),
            create_at: now_millis(),
            update_at: 0,
            delete_at: 0,
        };
        store.create_channel(&channel)?;
        store.add_channel_member(&channel.id, &admin.id)?;
    }
    let token = store.create_token(&admin.id, "pat", "created on first start")?;
    let token_file = match data_dir {
        Some(dir) => {
            write_secret(&dir.join("admin-password"), &password)?;
            let path = dir.join("admin-token");
            write_secret(&path, &token)?;
            Some(path)
        }
        None => None,
    };
    Ok(Some(Bootstrap {
        team_name: team.name,
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
