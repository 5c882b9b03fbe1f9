//! Failed sign-ins in a row (`users.failed_attempts`) and password updates.
//! `App::check_password` reads, checks and counts one account's attempts
//! one at a time, so guesses sent at once cannot slip past the limit.

use super::{Result, Store, StoreError, now_millis};
use crate::args;

impl Store {
    /// Counts one more failed sign-in in a row for `user_id`.
    pub async fn record_failed_login(&self, user_id: &str) -> Result<()> {
        let user_id = user_id.to_string();
        self.writer
            .write_async(move |c| {
                c.execute(
                    "UPDATE users SET failed_attempts = failed_attempts + 1 WHERE id = ?1",
                    args![user_id],
                )?;
                Ok(())
            })
            .await
    }

    /// A sign-in succeeded: the failures in a row start again from 0.
    pub async fn reset_login_attempts(&self, user_id: &str) -> Result<()> {
        let user_id = user_id.to_string();
        self.writer
            .write_async(move |c| {
                c.execute(
                    "UPDATE users SET failed_attempts = 0 WHERE id = ?1 AND failed_attempts != 0",
                    args![user_id],
                )?;
                Ok(())
            })
            .await
    }

    /// The failures in a row counted for `user_id`.
    pub fn login_attempts(&self, user_id: &str) -> Result<u32> {
        self.conn()?
            .row(
                "SELECT failed_attempts FROM users WHERE id = ?1",
                args![user_id],
                |r| r.get(0),
            )?
            .ok_or_else(|| StoreError::NotFound(format!("user {user_id}")))
    }

    /// The stored password hash of `user_id`.
    pub fn password_hash(&self, user_id: &str) -> Result<String> {
        self.conn()?
            .row(
                "SELECT password_hash FROM users WHERE id = ?1",
                args![user_id],
                |r| r.get(0),
            )?
            .ok_or_else(|| StoreError::NotFound(format!("user {user_id}")))
    }

    /// Replaces a user's password hash and unlocks the account, as
    /// Mattermost's password update does.
    pub async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<()> {
        let (user_id, hash) = (user_id.to_string(), password_hash.to_string());
        self.writer
            .write_async(move |c| {
                let changed = c.execute(
                    "UPDATE users SET password_hash = ?2, failed_attempts = 0, update_at = ?3
                     WHERE id = ?1",
                    args![user_id, hash, now_millis()],
                )?;
                if changed == 0 {
                    return Err(StoreError::NotFound(format!("user {user_id}")));
                }
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, User, new_id};

    #[tokio::test]
    async fn failures_count_until_a_reset_or_a_new_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("switchboard.db")).unwrap();
        let user = User {
            id: new_id(),
            username: "someone".into(),
            ..User::default()
        };
        store.create_user(&user, "!").unwrap();
        for _ in 0..3 {
            store.record_failed_login(&user.id).await.unwrap();
        }
        assert_eq!(store.login_attempts(&user.id).unwrap(), 3);
        store.reset_login_attempts(&user.id).await.unwrap();
        assert_eq!(store.login_attempts(&user.id).unwrap(), 0);
        store.record_failed_login(&user.id).await.unwrap();
        store.set_password(&user.id, "new-hash").await.unwrap();
        assert_eq!(store.login_attempts(&user.id).unwrap(), 0);
        assert_eq!(store.password_hash(&user.id).unwrap(), "new-hash");
        assert!(store.set_password(&new_id(), "x").await.is_err());
    }
}
