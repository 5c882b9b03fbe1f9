//! Gitea's and Forgejo's repository webhooks (the "Gitea" type, not their GitHub or Slack
//! imitations). The event is `X-Gitea-Event` (Forgejo also sends `X-Forgejo-Event`) plus the
//! body's `action`; the secret signs the raw body as `X-Gitea-Signature: <hex HMAC-SHA256>`
//! (Forgejo: `X-Forgejo-Signature`, the same value).

use super::github::{event_named_by, item};
use super::text::{capped, code, commit_line, link, or, plain, url_part, with_body};
use super::{Inbound, Message, Source, hmac_hex_matches, standalone, str_at, threaded};
use serde_json::Value;

pub const SOURCE: Source = Source {
    name: "gitea",
    display_name: "Gitea / Forgejo",
    username: "Gitea",
    icon_url: "",
    required_header: Some("X-Gitea-Event"),
    signature_header: "X-Gitea-Signature",
    events: &[
        "push",
        "pull_request.opened",
        "pull_request.closed",
        "pull_request.merged",
        "pull_request.reopened",
        "issues.opened",
        "issues.closed",
        "issues.reopened",
        "issue_comment.created",
        "release.published",
        "create",
        "delete",
    ],
    event,
    verify: |inbound, secret| {
        let sent = inbound
            .header("X-Gitea-Signature")
            .or_else(|| inbound.header("X-Forgejo-Signature"));
        hmac_hex_matches(secret, inbound.body, sent, "")
    },
    render,
    recognizes: |inbound| inbound.header("X-Gitea-Event").is_some(),
};

const COMMITS_LISTED: usize = 5;

fn event(inbound: &Inbound) -> String {
    event_named_by(inbound, "X-Gitea-Event")
}

fn render(event: &str, inbound: &Inbound) -> Option<Message> {
    let json = inbound.json;
    let who = link(
        or(str_at(json, "/sender/login"), str_at(json, "/pusher/login")),
        str_at(json, "/sender/html_url"),
    );
    let repo_name = str_at(json, "/repository/full_name");
    let repo_url = str_at(json, "/repository/html_url");
    let repo = link(repo_name, repo_url);
    match event {
        "push" => standalone(push(json, &who, &repo, repo_url)),
        "pull_request.opened"
        | "pull_request.closed"
        | "pull_request.merged"
        | "pull_request.reopened" => {
            let (pr, thread) = item(json, "/pull_request", "pr", repo_name);
            let text = match event {
                "pull_request.opened" => with_body(
                    format!("{who} opened pull request {pr}"),
                    str_at(json, "/pull_request/body"),
                ),
                "pull_request.closed" => {
                    format!("{who} closed pull request {pr} without merging")
                }
                "pull_request.merged" => format!(
                    "{who} merged pull request {pr} into {}",
                    code(str_at(json, "/pull_request/base/ref"))
                ),
                _ => format!("{who} reopened pull request {pr}"),
            };
            threaded(text, thread)
        }
        "issues.opened" | "issues.closed" | "issues.reopened" => {
            let (issue, thread) = item(json, "/issue", "issue", repo_name);
            let text = match event {
                "issues.opened" => with_body(
                    format!("{who} opened issue {issue}"),
                    str_at(json, "/issue/body"),
                ),
                "issues.closed" => format!("{who} closed issue {issue}"),
                _ => format!("{who} reopened issue {issue}"),
            };
            threaded(text, thread)
        }
        "issue_comment.created" => {
            let on_pr = json.get("is_pull") == Some(&Value::Bool(true))
                || json
                    .pointer("/issue/pull_request")
                    .is_some_and(|p| !p.is_null());
            let (kind, prefix) = if on_pr {
                ("pull request", "pr")
            } else {
                ("issue", "issue")
            };
            let (issue, thread) = item(json, "/issue", prefix, repo_name);
            let commented = link("commented", str_at(json, "/comment/html_url"));
            threaded(
                with_body(
                    format!("{who} {commented} on {kind} {issue}"),
                    str_at(json, "/comment/body"),
                ),
                thread,
            )
        }
        "release.published" => {
            let release = link(
                or(
                    str_at(json, "/release/name"),
                    str_at(json, "/release/tag_name"),
                ),
                str_at(json, "/release/html_url"),
            );
            standalone(with_body(
                format!("{who} published release {release} of {repo}"),
                str_at(json, "/release/body"),
            ))
        }
        "create" | "delete" => {
            let verb = if event == "create" {
                "created"
            } else {
                "deleted"
            };
            standalone(format!(
                "{who} {verb} {} {} in {repo}",
                plain(str_at(json, "/ref_type")),
                code(str_at(json, "/ref"))
            ))
        }
        _ => None,
    }
}

/// A push and its commits. Gitea announces new and deleted branches as `create` and
/// `delete` events, so a push is always commits to a ref.
fn push(json: &Value, who: &str, repo: &str, repo_url: &str) -> String {
    let full_ref = str_at(json, "/ref");
    let (kind, name) = if let Some(branch) = full_ref.strip_prefix("refs/heads/") {
        ("branch", branch)
    } else if let Some(tag) = full_ref.strip_prefix("refs/tags/") {
        ("tag", tag)
    } else {
        ("ref", full_ref)
    };
    let tree = if repo_url.is_empty() {
        String::new()
    } else {
        format!("{repo_url}/src/{kind}/{name}")
    };
    let commits: &[Value] = json
        .get("commits")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let total = json
        .get("total_commits")
        .and_then(Value::as_u64)
        .map_or(commits.len(), |n| n as usize)
        .max(commits.len());
    let count = if total == 1 {
        "1 commit".to_owned()
    } else {
        format!("{total} commits")
    };
    let compare = str_at(json, "/compare_url");
    let compare = if compare.is_empty() {
        String::new()
    } else {
        format!(" ([compare]({}))", url_part(compare))
    };
    let mut text = format!(
        "{who} pushed {count} to {kind} {} in {repo}{compare}",
        link(name, &tree)
    );
    let lines: Vec<String> = commits
        .iter()
        .map(|c| {
            let sha: String = str_at(c, "/id").chars().take(10).collect();
            let author = or(str_at(c, "/author/username"), str_at(c, "/author/name"));
            commit_line(&sha, str_at(c, "/url"), str_at(c, "/message"), author)
        })
        .collect();
    for line in capped(lines, total, COMMITS_LISTED) {
        text.push('\n');
        text.push_str(&line);
    }
    text
}
