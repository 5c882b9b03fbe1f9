//! GitHub's repository and organization webhooks. The event is `X-GitHub-Event` plus the
//! body's `action` (a closed pull request that was merged is `pull_request.merged`); the
//! secret signs the raw body as `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`.

use super::text::{capped, code, commit_line, link, or, plain, with_body};
use super::{Inbound, Message, Source, hmac_hex_matches, standalone, str_at};
use serde_json::Value;

pub const SOURCE: Source = Source {
    name: "github",
    display_name: "GitHub",
    username: "GitHub",
    icon_url: "https://github.githubassets.com/favicons/favicon.png",
    required_header: Some("X-GitHub-Event"),
    signature_header: "X-Hub-Signature-256",
    events: &[
        "push",
        "pull_request.opened",
        "pull_request.closed",
        "pull_request.merged",
        "pull_request.reopened",
        "pull_request.review_requested",
        "pull_request.ready_for_review",
        "pull_request_review.submitted",
        "issues.opened",
        "issues.closed",
        "issues.reopened",
        "issue_comment.created",
        "release.published",
        "workflow_run.completed",
        "check_run.completed",
        "create",
        "delete",
        "star.created",
        "fork",
        "ping",
    ],
    event,
    verify,
    render,
    recognizes: |inbound| inbound.header("X-GitHub-Event").is_some(),
};

/// How many commits a push lists.
const COMMITS_LISTED: usize = 5;

fn event(inbound: &Inbound) -> String {
    event_named_by(inbound, "X-GitHub-Event")
}

/// `kind.action` from the event header and the body's `action` (`pull_request.merged` for a
/// merged pull request's `closed`): GitHub's naming, which Gitea and Forgejo follow too.
pub(super) fn event_named_by(inbound: &Inbound, header: &str) -> String {
    let kind = inbound.header(header).unwrap_or("").trim();
    let action = str_at(inbound.json, "/action");
    if kind == "pull_request"
        && action == "closed"
        && inbound.json.pointer("/pull_request/merged") == Some(&Value::Bool(true))
    {
        return "pull_request.merged".to_owned();
    }
    if action.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{action}")
    }
}

fn verify(inbound: &Inbound, secret: &[u8]) -> bool {
    hmac_hex_matches(
        secret,
        inbound.body,
        inbound.header("X-Hub-Signature-256"),
        "sha256=",
    )
}

fn render(event: &str, inbound: &Inbound) -> Option<Message> {
    let json = inbound.json;
    let who = link(
        or(str_at(json, "/sender/login"), str_at(json, "/pusher/name")),
        str_at(json, "/sender/html_url"),
    );
    let repo_name = str_at(json, "/repository/full_name");
    let repo_url = str_at(json, "/repository/html_url");
    let repo = link(repo_name, repo_url);

    match event {
        "ping" => {
            let target = if repo_name.is_empty() {
                link(str_at(json, "/organization/login"), "")
            } else {
                repo.clone()
            };
            standalone(format!(
                "GitHub's webhook for {target} is set up: its events will post here."
            ))
        }
        "push" => standalone(push(json, &who, &repo, repo_url)),
        "pull_request.opened"
        | "pull_request.closed"
        | "pull_request.merged"
        | "pull_request.reopened"
        | "pull_request.review_requested"
        | "pull_request.ready_for_review" => {
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
                "pull_request.reopened" => format!("{who} reopened pull request {pr}"),
                "pull_request.review_requested" => {
                    let reviewer = or(
                        str_at(json, "/requested_reviewer/login"),
                        str_at(json, "/requested_team/name"),
                    );
                    format!(
                        "{who} requested a review from **{}** on pull request {pr}",
                        plain(reviewer)
                    )
                }
                _ => format!("{who} marked pull request {pr} as ready for review"),
            };
            Some(Message {
                text,
                thread: Some(thread),
                ..Message::default()
            })
        }
        "pull_request_review.submitted" => {
            let (pr, thread) = item(json, "/pull_request", "pr", repo_name);
            let verb = match str_at(json, "/review/state").to_ascii_lowercase().as_str() {
                "approved" => "approved",
                "changes_requested" => "requested changes on",
                _ => "reviewed",
            };
            let verb = link(verb, str_at(json, "/review/html_url"));
            Some(Message {
                text: with_body(
                    format!("{who} {verb} pull request {pr}"),
                    str_at(json, "/review/body"),
                ),
                thread: Some(thread),
                ..Message::default()
            })
        }
        "issues.opened" | "issues.closed" | "issues.reopened" => {
            let (issue, thread) = item(json, "/issue", "issue", repo_name);
            let text = match event {
                "issues.opened" => with_body(
                    format!("{who} opened issue {issue}"),
                    str_at(json, "/issue/body"),
                ),
                "issues.closed" if str_at(json, "/issue/state_reason") == "not_planned" => {
                    format!("{who} closed issue {issue} as not planned")
                }
                "issues.closed" => format!("{who} closed issue {issue}"),
                _ => format!("{who} reopened issue {issue}"),
            };
            Some(Message {
                text,
                thread: Some(thread),
                ..Message::default()
            })
        }
        "issue_comment.created" => {
            // GitHub sends comments on pull requests as issue comments too.
            let on_pr = json.pointer("/issue/pull_request").is_some();
            let (kind, prefix) = if on_pr {
                ("pull request", "pr")
            } else {
                ("issue", "issue")
            };
            let (issue, thread) = item(json, "/issue", prefix, repo_name);
            let commented = link("commented", str_at(json, "/comment/html_url"));
            Some(Message {
                text: with_body(
                    format!("{who} {commented} on {kind} {issue}"),
                    str_at(json, "/comment/body"),
                ),
                thread: Some(thread),
                ..Message::default()
            })
        }
        "release.published" => {
            let name = or(
                str_at(json, "/release/name"),
                str_at(json, "/release/tag_name"),
            );
            let release = link(name, str_at(json, "/release/html_url"));
            standalone(with_body(
                format!("{who} published release {release} of {repo}"),
                str_at(json, "/release/body"),
            ))
        }
        "workflow_run.completed" => {
            let run = link(
                &format!(
                    "{} #{}",
                    str_at(json, "/workflow_run/name"),
                    json.pointer("/workflow_run/run_number")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                ),
                str_at(json, "/workflow_run/html_url"),
            );
            let (icon, outcome) = outcome(str_at(json, "/workflow_run/conclusion"));
            standalone(format!(
                "{icon} Workflow {run} {outcome} on {} in {repo}",
                code(str_at(json, "/workflow_run/head_branch"))
            ))
        }
        // Only failures post: a passing check is noise in a channel.
        "check_run.completed" => {
            let conclusion = str_at(json, "/check_run/conclusion");
            if !matches!(conclusion, "failure" | "timed_out" | "action_required") {
                return None;
            }
            let (icon, outcome) = outcome(conclusion);
            let check = link(
                str_at(json, "/check_run/name"),
                str_at(json, "/check_run/html_url"),
            );
            let sha: String = str_at(json, "/check_run/head_sha")
                .chars()
                .take(7)
                .collect();
            standalone(format!(
                "{icon} Check {check} {outcome} on {} in {repo}",
                code(&sha)
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
        "star.created" => standalone(format!("{who} starred {repo}")),
        "fork" => standalone(format!(
            "{who} forked {repo} to {}",
            link(
                str_at(json, "/forkee/full_name"),
                str_at(json, "/forkee/html_url")
            )
        )),
        _ => None,
    }
}

/// A push: branch or tag created, deleted, pushed to or force-pushed, with its commits.
fn push(json: &Value, who: &str, repo: &str, repo_url: &str) -> String {
    let full_ref = str_at(json, "/ref");
    let (kind, name) = if let Some(branch) = full_ref.strip_prefix("refs/heads/") {
        ("branch", branch)
    } else if let Some(tag) = full_ref.strip_prefix("refs/tags/") {
        ("tag", tag)
    } else {
        ("ref", full_ref)
    };
    let flag = |key: &str| json.get(key) == Some(&Value::Bool(true));
    if flag("deleted") {
        return format!("{who} deleted {kind} {} in {repo}", code(name));
    }
    let tree = if repo_url.is_empty() {
        String::new()
    } else {
        format!("{repo_url}/tree/{name}")
    };
    let target = format!("{kind} {}", link(name, &tree));
    let commits: &[Value] = json
        .get("commits")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let count = match commits.len() {
        1 => "1 commit".to_owned(),
        n => format!("{n} commits"),
    };
    let compare = str_at(json, "/compare");
    let compare = if compare.is_empty() {
        String::new()
    } else {
        format!(" ([compare]({compare}))")
    };
    let head = if flag("created") {
        format!("{who} created {target} in {repo}")
    } else if flag("forced") && commits.is_empty() {
        format!("{who} force-pushed {target} in {repo}{compare}")
    } else if flag("forced") {
        format!("{who} force-pushed {count} to {target} in {repo}{compare}")
    } else {
        format!("{who} pushed {count} to {target} in {repo}{compare}")
    };
    let lines: Vec<String> = commits
        .iter()
        .map(|c| {
            let sha: String = str_at(c, "/id").chars().take(7).collect();
            let author = or(str_at(c, "/author/username"), str_at(c, "/author/name"));
            commit_line(&sha, str_at(c, "/url"), str_at(c, "/message"), author)
        })
        .collect();
    let mut text = head;
    let total = lines.len();
    for line in capped(lines, total, COMMITS_LISTED) {
        text.push('\n');
        text.push_str(&line);
    }
    text
}

/// A pull request or issue as `[owner/repo#12 Title](url)`, and its thread key.
pub(super) fn item(json: &Value, at: &str, prefix: &str, repo_name: &str) -> (String, String) {
    let number = json
        .pointer(&format!("{at}/number"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let title = str_at(json, &format!("{at}/title"));
    let url = str_at(json, &format!("{at}/html_url"));
    (
        link(&format!("{repo_name}#{number} {title}"), url),
        format!("{prefix}/{repo_name}#{number}"),
    )
}

fn outcome(conclusion: &str) -> (&'static str, String) {
    match conclusion {
        "success" => (":white_check_mark:", "succeeded".to_owned()),
        "failure" => (":x:", "failed".to_owned()),
        "timed_out" => (":x:", "timed out".to_owned()),
        "cancelled" => (":no_entry_sign:", "was cancelled".to_owned()),
        "action_required" => (":warning:", "needs action".to_owned()),
        other => (":grey_question:", format!("ended: {}", plain(other))),
    }
}
