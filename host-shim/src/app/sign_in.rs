//! Checking a password for a sign-in: the account lockout of Mattermost's
//! `ServiceSettings.MaximumLoginAttempts`, and one bcrypt verify whatever
//! the login names, so timing does not tell which accounts exist.

use super::App;
use crate::store::{StoreError, User};

/// Why a sign-in was refused.
#[derive(Debug)]
pub enum SignInError {
    /// No such account, a wrong password or a deactivated account: one
    /// answer for all, as Mattermost gives.
    Invalid,
    /// A bot's account; bots use tokens.
    Bot,
    /// Too many failed attempts in a row.
    Locked,
    Store(StoreError),
}

impl From<StoreError> for SignInError {
    fn from(err: StoreError) -> Self {
        SignInError::Store(err)
    }
}

impl App {
    /// The account `login_id` (username or email) names, when `password` is
    /// its password and it may sign in.
    pub async fn sign_in(&self, login_id: &str, password: &str) -> Result<User, SignInError> {
        let (user, hash) = match self.store.user_for_login(login_id) {
            Ok(found) => found,
            Err(StoreError::NotFound(_)) => {
                self.passwords.verify(password, None).await;
                return Err(SignInError::Invalid);
            }
            Err(e) => return Err(e.into()),
        };
        if user.is_bot {
            // Not masked as bad credentials, as in Mattermost: bots use tokens.
            return Err(SignInError::Bot);
        }
        self.check_password(&user, &hash, password).await?;
        if user.delete_at != 0 {
            return Err(SignInError::Invalid);
        }
        Ok(user)
    }

    /// Whether `password` is `user`'s (whose stored hash is `hash`), counted
    /// against the lockout: a locked account is refused without a look at
    /// the password, a wrong one counts, a right one clears the count.
    pub async fn check_password(
        &self,
        user: &User,
        hash: &str,
        password: &str,
    ) -> Result<(), SignInError> {
        if user.delete_at != 0 {
            // No lockout to count for an account that cannot sign in; the
            // verify keeps its answer as slow as any other.
            self.passwords.verify(password, Some(hash)).await;
            return Err(SignInError::Invalid);
        }
        let limit = self.config().service_settings.maximum_login_attempts.max(1);
        if !self.store.begin_login_attempt(&user.id, limit).await? {
            return Err(SignInError::Locked);
        }
        if !self.passwords.verify(password, Some(hash)).await {
            return Err(SignInError::Invalid);
        }
        self.store.reset_login_attempts(&user.id).await?;
        Ok(())
    }
}
