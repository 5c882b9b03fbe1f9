//! Post routes beyond create and get: a post's whole thread as Mattermost's
//! `PostList` (`{order, posts, next_post_id, prev_post_id, has_next}`).

use super::rest::{Result, json_response, require};
use super::{ApiError, Shim};
use crate::app::Scope;
use crate::store::Post;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};

pub fn routes() -> Router<Shim> {
    Router::new().route("/api/v4/posts/{post_id}/thread", get(thread))
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
