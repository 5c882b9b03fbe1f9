//! First start in one transaction: the team, its two channels, the admin,
//! memberships and token commit together or not at all, so a kill midway
//! leaves a data directory that the next start simply sets up again.

use super::{Result, Store, User, new_id, now_millis, secrets};
use crate::args;

/// What first start creates; ids are the rows' as committed.
#[derive(Debug, Clone)]
pub struct FirstStart {
    pub team_id: String,
    pub token: String,
}

impl Store {
    /// Creates the team `team_name` (or adopts one left by an older,
    /// interrupted start), the channels, the admin and a personal access
    /// token, as one write.
    pub fn create_first_start(
        &self,
        team_name: &str,
        team_display_name: &str,
        channels: &[(&str, &str)],
        admin: &User,
        password_hash: &str,
        token: &str,
    ) -> Result<FirstStart> {
        let team_id = new_id();
        let (team_name, team_display_name) = (team_name.to_string(), team_display_name.to_string());
        let channels: Vec<(String, String, String)> = channels
            .iter()
            .map(|(name, display)| (new_id(), name.to_string(), display.to_string()))
            .collect();
        let (admin, hash, digest) = (
            admin.clone(),
            password_hash.to_string(),
            secrets::token_digest(token),
        );
        let team_id = self.writer.write(move |c| {
            let now = now_millis();
            c.execute(
                "INSERT INTO teams (id, name, display_name, create_at, delete_at) VALUES (?1, ?2, ?3, ?4, 0) ON CONFLICT DO NOTHING",
                args![team_id, team_name, team_display_name, now])?;
            let team_id: String =
                c.one("SELECT id FROM teams WHERE name = ?1", args![&team_name], |r| r.get(0))?;
            c.execute(
                "INSERT INTO users (id, username, email, password_hash, nickname, first_name, last_name,
                                    roles, is_bot, create_at, update_at, delete_at)
                 VALUES (?1, ?2, ?3, ?4, '', '', '', ?5, 0, ?6, ?6, 0)",
                args![admin.id, admin.username, admin.email, hash, admin.roles, admin.create_at])?;
            c.execute(
                "INSERT INTO team_members (team_id, user_id, roles) VALUES (?1, ?2, 'team_user team_admin')
                 ON CONFLICT (team_id, user_id) DO UPDATE SET roles = excluded.roles",
                args![team_id, admin.id])?;
            for (id, name, display) in &channels {
                c.execute(
                    "INSERT INTO channels (id, team_id, name, display_name, type, header, purpose,
                                                     creator_id, create_at, update_at, delete_at)
                     VALUES (?1, ?2, ?3, ?4, 'O', '', '', ?5, ?6, ?6, 0) ON CONFLICT DO NOTHING",
                    args![id, team_id, name, display, admin.id, now])?;
                let channel_id: String = c.one(
                    "SELECT id FROM channels WHERE team_id = ?1 AND name = ?2",
                    args![&team_id, name],
                    |r| r.get(0))?;
                c.execute(
                    "INSERT INTO channel_members (channel_id, user_id, roles) VALUES (?1, ?2, 'channel_user') ON CONFLICT DO NOTHING",
                    args![&channel_id, &admin.id])?;
            }
            c.execute(
                "INSERT INTO tokens (token, user_id, kind, description, create_at, id) VALUES (?1, ?2, 'pat', 'created on first start', ?3, ?4)",
                args![digest, admin.id, now, super::new_id()])?;
            Ok(team_id)
        })?;
        Ok(FirstStart {
            team_id,
            token: token.to_string(),
        })
    }
}
