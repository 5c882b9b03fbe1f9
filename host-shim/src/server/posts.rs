//! Post routes beyond create and get: a post's whole thread as Mattermost's
//! `PostList` (`{order, posts, next_post_id, prev_post_id, has_next}`), and
//! the edits and deletions bots make to their own posts.

use super::rest::{Result, json_body, json_response, require};
use super::{ApiError, Shim};
use crate::app::Scope;
use crate::store::Post;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, put};
use serde_json::{Map, Value, json};

pub fn routes() -> Router<Shim> {
    Router::new()
        .route("/api/v4/posts/{post_id}/thread", get(thread))
        .route("/api/v4/posts/{post_id}/patch", put(patch))
        .route("/api/v4/posts/{post_id}", delete(remove))
}

/// The post a route names and the permission its session needs on it: the
/// own-post one for its author, the others' one for anyone else. A missing
/// post is the permission error, as in Mattermost.
fn load_for(shim: &Shim, session: &str, post_id: &str, own: &str, others: &str) -> Result<Post> {
    let permission = |p: &str| ApiError::forbidden().detail(format!("missing permission {p}"));
    let post = shim.app.store.post(post_id).map_err(|_| permission(own))?;
    let needed = if post.user_id == session { own } else { others };
    require(
        shim,
        session,
        needed,
        Scope::Channel(post.channel_id.clone()),
    )?;
    Ok(post)
}

#[derive(serde::Deserialize)]
struct PostPatch {
    message: Option<String>,
    props: Option<Map<String, Value>>,
    is_pinned: Option<bool>,
}

/// `PUT /posts/{id}/patch`: changes the message, props or pinned state.
async fn patch(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(post_id): Path<String>,
    body: Body,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let patch: PostPatch = json_body(&shim, body, "post").await?;
    let mut post = load_for(&shim, &session, &post_id, "edit_post", "edit_others_posts")?;
    let channel = shim
        .app
        .store
        .channel(&post.channel_id)
        .map_err(|e| ApiError::store("app.channel.get.existing.app_error", e))?;
    if channel.delete_at != 0 {
        return Err(ApiError::new(
            400,
            "api.post.update_post.can_not_update_post_in_deleted.error",
            "Can not update a post in a deleted channel.",
        ));
    }
    if let Some(message) = patch.message {
        post.message = message;
    }
    if let Some(props) = patch.props {
        post.props = Value::Object(props).to_string();
    }
    if let Some(pinned) = patch.is_pinned {
        post.is_pinned = pinned;
    }
    let app = shim.app.clone();
    let updated = tokio::task::spawn_blocking(move || app.update_post(post))
        .await
        .map_err(|e| ApiError::new(500, "app.post.update.app_error", e.to_string()))?
        .map_err(|e| ApiError::store("app.post.update.app_error", e))?;
    Ok(json_response(
        StatusCode::OK,
        shim.app.post_for_client(&updated),
    ))
}

/// `DELETE /posts/{id}`: deletes a post (a root with its replies).
async fn remove(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(post_id): Path<String>,
) -> Result<Response> {
    let session = shim.require_user(&headers, None)?;
    let post = load_for(
        &shim,
        &session,
        &post_id,
        "delete_post",
        "delete_others_posts",
    )?;
    let app = shim.app.clone();
    tokio::task::spawn_blocking(move || app.delete_post(&post.id, &session))
        .await
        .map_err(|e| ApiError::new(500, "app.post.delete.app_error", e.to_string()))?
        .map_err(|e| ApiError::store("app.post.delete.app_error", e))?;
    Ok(json_response(StatusCode::OK, json!({"status": "OK"})))
}

/// Mattermost's most posts one page may hold.
const PER_PAGE_MAXIMUM: usize = 200;

/// `GET /posts/{id}/thread`: the root and every reply, for the root or any
/// reply's id. `perPage` (with `direction` `down`, the default, or `up`)
/// returns the root and a page of replies, `has_next` saying more remain.
async fn thread(
    State(shim): State<Shim>,
    headers: HeaderMap,
    Path(post_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let session = shim.require_user(&headers, query.as_deref())?;
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let per_page = match param("perPage") {
        None => 0,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= PER_PAGE_MAXIMUM => n,
            _ => {
                return Err(ApiError::new(
                    400,
                    "api.context.invalid_param.app_error",
                    "Invalid perPage parameter.",
                ));
            }
        },
    };
    let up = match param("direction").as_deref() {
        None | Some("") | Some("down") => false,
        Some("up") => true,
        Some(_) => {
            return Err(ApiError::new(
                400,
                "api.context.invalid_param.app_error",
                "Invalid direction parameter.",
            ));
        }
    };
    let post = shim
        .app
        .store
        .post(&post_id)
        .map_err(|e| ApiError::store("app.post.get.app_error", e))?;
    require(
        &shim,
        &session,
        "read_channel",
        Scope::Channel(post.channel_id.clone()),
    )?;
    let root_id = if post.root_id.is_empty() {
        post.id.clone()
    } else {
        post.root_id.clone()
    };
    let mut posts = shim
        .app
        .store
        .thread_posts(&root_id)
        .map_err(|e| ApiError::store("app.post.get_thread.app_error", e))?;
    let mut has_next = false;
    if per_page > 0 {
        let (root, mut replies): (Vec<Post>, Vec<Post>) =
            posts.into_iter().partition(|p| p.id == root_id);
        if up {
            replies.reverse();
        }
        has_next = replies.len() > per_page;
        replies.truncate(per_page);
        posts = root.into_iter().chain(replies).collect();
    }
    Ok(json_response(
        StatusCode::OK,
        post_list(&shim, posts, has_next),
    ))
}

/// A `PostList`, newest first as Mattermost sorts a thread.
fn post_list(shim: &Shim, mut posts: Vec<Post>, has_next: bool) -> Value {
    // Newest first; of posts made in the same millisecond, the later one first.
    posts.reverse();
    posts.sort_by_key(|p| std::cmp::Reverse(p.create_at));
    let order: Vec<&str> = posts.iter().map(|p| p.id.as_str()).collect();
    let map: Map<String, Value> = posts
        .iter()
        .map(|p| (p.id.clone(), shim.app.post_for_client(p)))
        .collect();
    json!({
        "order": order,
        "posts": map,
        "next_post_id": "",
        "prev_post_id": "",
        "has_next": has_next,
    })
}
