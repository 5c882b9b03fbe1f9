//! What the plugin's post hook still owes (table `post_hook_outbox`): a row
//! is written in the transaction that stores a post the hook runs for, and
//! deleted once the hook returned, so a crash in between loses nothing.

use super::{Post, Result, Store, insert_post_row, now_millis};
use crate::args;

impl Store {
    /// Stores a new post and what its post hook owes, in one transaction.
    pub fn insert_post_owing_hook(&self, post: &Post) -> Result<()> {
        let post = post.clone();
        let now = now_millis();
        self.writer.write(move |c| {
            insert_post_row(c, &post)?;
            owe(c, &post.id, now)
        })
    }

    /// Marks a stored post as owed its post hook (the plugin's
    /// `notify-posted`, after its own `create`). Owing twice is owing once.
    pub fn owe_post_hook(&self, post_id: &str) -> Result<()> {
        let (id, now) = (post_id.to_string(), now_millis());
        self.writer.write(move |c| owe(c, &id, now))
    }

    /// The post hook ran for `post_id` (or never will: the post is gone).
    pub fn post_hook_done(&self, post_id: &str) -> Result<()> {
        let id = post_id.to_string();
        self.writer.write(move |c| {
            c.execute("DELETE FROM post_hook_outbox WHERE post_id = ?1", args![id])?;
            Ok(())
        })
    }

    /// Posts still owed their post hook, oldest first.
    pub fn owed_post_hooks(&self) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let ids = conn.rows(
            "SELECT post_id FROM post_hook_outbox ORDER BY create_at, post_id",
            args![],
            |r| r.get(0),
        )?;
        Ok(ids)
    }
}

fn owe(c: &super::sql::Db, post_id: &str, now: i64) -> Result<()> {
    c.execute(
        "INSERT INTO post_hook_outbox (post_id, create_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        args![post_id, now],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_and_its_debt_are_one_write_and_paying_it_forgets_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let team = store.create_team("t", "T").unwrap();
        let channel = crate::store::Channel {
            id: crate::store::new_id(),
            team_id: team.id,
            name: "c".into(),
            display_name: "C".into(),
            channel_type: crate::store::ChannelType::Open,
            header: String::new(),
            purpose: String::new(),
            creator_id: String::new(),
            create_at: 1,
            update_at: 1,
            delete_at: 0,
        };
        store.create_channel(&channel).unwrap();
        let post = Post {
            id: crate::store::new_id(),
            channel_id: channel.id,
            create_at: 1,
            update_at: 1,
            message: "hi".into(),
            props: "{}".into(),
            metadata: "{}".into(),
            ..Post::default()
        };
        store.insert_post_owing_hook(&post).unwrap();
        assert_eq!(store.owed_post_hooks().unwrap(), [post.id.as_str()]);
        // A failing insert (the same id again) owes nothing more.
        assert!(store.insert_post_owing_hook(&post).is_err());
        store.owe_post_hook(&post.id).unwrap();
        assert_eq!(store.owed_post_hooks().unwrap().len(), 1);
        store.post_hook_done(&post.id).unwrap();
        assert!(store.owed_post_hooks().unwrap().is_empty());
        assert!(store.post(&post.id).is_ok(), "the post stays");
    }
}
