//! `posts`: create, create-ephemeral, get, update, delete — through the same `App`
//! logic as the REST API, so plugin posts are validated like any other.

use super::{post_from_wit, post_to_wit};
use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::posts::Host;
use crate::runtime::bindings::types::{Error, Post};

impl Host for CallState {
    async fn create(&mut self, post: Post) -> Result<Post, Error> {
        // Awaited on the writer, no blocking thread: the hot path of every
        // incoming webhook.
        let app = self.app.clone();
        Ok(post_to_wit(
            app.create_post_async(post_from_wit(post)).await?,
        ))
    }

    async fn create_ephemeral(&mut self, user_id: String, post: Post) -> Result<Post, Error> {
        Ok(post_to_wit(
            self.app.create_ephemeral(&user_id, post_from_wit(post))?,
        ))
    }

    async fn get(&mut self, id: String) -> Result<Post, Error> {
        Ok(post_to_wit(self.app.store.post(&id)?))
    }

    async fn notify_posted(&mut self, id: String) -> Result<(), Error> {
        let post = self.app.store.post(&id)?;
        // Owed from here on, through a crash too (the outbox).
        self.blocking(move |app| app.store.owe_post_hook(&id))
            .await?;
        self.app.notify_posted(post);
        Ok(())
    }

    async fn create_owing_hook(&mut self, post: Post) -> Result<Post, Error> {
        let post = post_from_wit(post);
        let set_online = post.props_json()["from_webhook"] != "true";
        let write = self.blocking(move |app| app.create_post_owing_hook(post, set_online));
        Ok(post_to_wit(write.await?))
    }

    async fn notify_user(&mut self, user_id: String, post: Post) -> Result<Post, Error> {
        let post = post_from_wit(post);
        let write = self.blocking(move |app| app.notify_user(&user_id, post));
        Ok(post_to_wit(write.await?))
    }

    async fn delete(&mut self, id: String) -> Result<Post, Error> {
        let author = self.app.store.post(&id)?.user_id;
        let write = self.blocking(move |app| app.delete_post(&id, &author));
        Ok(post_to_wit(write.await?))
    }

    async fn update(&mut self, post: Post) -> Result<Post, Error> {
        let post = post_from_wit(post);
        let write = self.blocking(move |app| app.update_post(post));
        Ok(post_to_wit(write.await?))
    }
}
