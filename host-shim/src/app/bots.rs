//! The server's own bot, `system-bot`: it posts the host's notices (a
//! deactivated owner's bots, a failing hook) in DMs, as Mattermost's does.

use super::App;
use crate::store::{Bot, Post, StoreError, User, new_id};

pub const SYSTEM_BOT_USERNAME: &str = "system-bot";

impl App {
    /// The system bot, created on first use and owned by the first admin.
    pub fn system_bot(&self) -> Result<User, StoreError> {
        match self.store.user_by_username(SYSTEM_BOT_USERNAME) {
            Err(StoreError::NotFound(_)) => {}
            found => return found,
        }
        let owner = self
            .store
            .system_admins()?
            .into_iter()
            .next()
            .map(|u| u.id)
            .unwrap_or_default();
        let now = self.clock.now_millis();
        let bot = Bot {
            user_id: new_id(),
            username: SYSTEM_BOT_USERNAME.into(),
            display_name: "System".into(),
            description: "Posts the server's own notices.".into(),
            owner_id: owner,
            create_at: now,
            update_at: now,
            ..Bot::default()
        };
        match self.store.create_bot(&bot) {
            // Another call created it first: use theirs.
            Ok(()) | Err(StoreError::Conflict(_)) => {
                self.store.user_by_username(SYSTEM_BOT_USERNAME)
            }
            Err(e) => Err(e),
        }
    }

    /// A notice from the system bot in its DM with `user_id`: `post`'s
    /// message, type and props; channel and author are the bot's.
    pub fn notify_user(&self, user_id: &str, post: Post) -> Result<Post, StoreError> {
        let bot = self.system_bot()?;
        let channel = self.store.direct_channel(&bot.id, user_id)?;
        self.create_post(Post {
            id: String::new(),
            channel_id: channel.id,
            user_id: bot.id,
            root_id: String::new(),
            ..post
        })
    }
}
