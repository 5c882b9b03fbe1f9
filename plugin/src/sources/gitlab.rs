//! GitLab's project and group webhooks. The event is the body's `object_kind` (`build` is
//! named `job`) plus, where GitLab gives one, its action or status (`merge_request.merge`,
//! `pipeline.failed`); every request carries `X-Gitlab-Event`. The secret is GitLab's
//! secret token, sent as it is in `X-Gitlab-Token`.

use super::text::{capped, code, commit_line, link, or, plain, with_body};
use super::{Inbound, Message, Source, same_secret, standalone, str_at, threaded};
use serde_json::Value;

pub const SOURCE: Source = Source {
    name: "gitlab",
    display_name: "GitLab",
    username: "GitLab",
    icon_url: "https://gitlab.com/favicon.png",
    required_header: Some("X-Gitlab-Event"),
    signature_header: "X-Gitlab-Token",
    events: &[
        "push",
        "tag_push",
        "merge_request.open",
        "merge_request.close",
        "merge_request.reopen",
        "merge_request.merge",
        "merge_request.approved",
        "issue.open",
        "issue.close",
        "issue.reopen",
        "note",
        "pipeline.success",
        "pipeline.failed",
        "pipeline.canceled",
        "job.failed",
        "deployment.success",
        "deployment.failed",
        "release.create",
    ],
    event,
    verify: |inbound, secret| {
        inbound
            .header("X-Gitlab-Token")
            .is_some_and(|sent| same_secret(sent.as_bytes(), secret))
    },
    render,
    recognizes: |inbound| inbound.header("X-Gitlab-Event").is_some(),
};

const COMMITS_LISTED: usize = 5;
/// Git's name for "no commit": a branch created or deleted.
const NO_COMMIT: &str = "0000000000000000000000000000000000000000";

fn event(inbound: &Inbound) -> String {
    let json = inbound.json;
    let kind = match str_at(json, "/object_kind") {
        "build" => "job",
        other => other,
    };
    let detail = match kind {
        "merge_request" | "issue" => str_at(json, "/object_attributes/action"),
        "pipeline" => str_at(json, "/object_attributes/status"),
        "job" => str_at(json, "/build_status"),
        "deployment" => str_at(json, "/status"),
        "release" => str_at(json, "/action"),
        _ => "",
    };
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{detail}")
    }
}

fn render(event: &str, inbound: &Inbound) -> Option<Message> {
    let json = inbound.json;
    let who = plain(or(str_at(json, "/user/name"), str_at(json, "/user_name")));
    let who = format!("**{who}**");
    let project_name = or(
        str_at(json, "/project/path_with_namespace"),
        str_at(json, "/project_name"),
    );
    let project_url = str_at(json, "/project/web_url");
    let project = link(project_name, project_url);
    match event {
        "push" | "tag_push" => standalone(push(json, event, &project, project_url)),
        "merge_request.open"
        | "merge_request.close"
        | "merge_request.reopen"
        | "merge_request.merge"
        | "merge_request.approved" => {
            let (mr, thread) = merge_request(json, "/object_attributes", project_name);
            let text = match event {
                "merge_request.open" => with_body(
                    format!(
                        "{who} opened merge request {mr} ({} → {})",
                        code(str_at(json, "/object_attributes/source_branch")),
                        code(str_at(json, "/object_attributes/target_branch"))
                    ),
                    str_at(json, "/object_attributes/description"),
                ),
                "merge_request.close" => format!("{who} closed merge request {mr}"),
                "merge_request.reopen" => format!("{who} reopened merge request {mr}"),
                "merge_request.merge" => format!(
                    "{who} merged merge request {mr} into {}",
                    code(str_at(json, "/object_attributes/target_branch"))
                ),
                _ => format!("{who} approved merge request {mr}"),
            };
            threaded(text, thread)
        }
        "issue.open" | "issue.close" | "issue.reopen" => {
            let (issue, thread) = issue(json, "/object_attributes", project_name);
            let text = match event {
                "issue.open" => with_body(
                    format!("{who} opened issue {issue}"),
                    str_at(json, "/object_attributes/description"),
                ),
                "issue.close" => format!("{who} closed issue {issue}"),
                _ => format!("{who} reopened issue {issue}"),
            };
            threaded(text, thread)
        }
        "note" => {
            let commented = link("commented", str_at(json, "/object_attributes/url"));
            let body = str_at(json, "/object_attributes/note");
            let (target, thread) = match str_at(json, "/object_attributes/noteable_type") {
                "MergeRequest" => {
                    let (mr, thread) = merge_request(json, "/merge_request", project_name);
                    (format!("merge request {mr}"), Some(thread))
                }
                "Issue" => {
                    let (issue, thread) = issue(json, "/issue", project_name);
                    (format!("issue {issue}"), Some(thread))
                }
                "Commit" => {
                    let sha: String = str_at(json, "/commit/id").chars().take(8).collect();
                    let commit = format!(
                        "[`{sha}`]({})",
                        super::text::url_part(str_at(json, "/commit/url"))
                    );
                    (format!("commit {commit} in {project}"), None)
                }
                _ => (format!("a snippet in {project}"), None),
            };
            Some(Message {
                text: with_body(format!("{who} {commented} on {target}"), body),
                thread,
                ..Message::default()
            })
        }
        "pipeline.success" | "pipeline.failed" | "pipeline.canceled" => {
            let id = json
                .pointer("/object_attributes/id")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let url = or(
                str_at(json, "/object_attributes/url"),
                &format!("{project_url}/-/pipelines/{id}"),
            )
            .to_owned();
            let pipeline = link(&format!("Pipeline #{id}"), &url);
            let (icon, outcome) = outcome(event);
            standalone(format!(
                "{icon} {pipeline} {outcome} on {} in {project}",
                code(str_at(json, "/object_attributes/ref"))
            ))
        }
        "job.failed" => {
            let id = json.get("build_id").and_then(Value::as_u64).unwrap_or(0);
            let job = link(
                &format!(
                    "{} ({})",
                    str_at(json, "/build_name"),
                    str_at(json, "/build_stage")
                ),
                &format!("{project_url}/-/jobs/{id}"),
            );
            standalone(format!(
                ":x: Job {job} failed on {} in {project}",
                code(str_at(json, "/ref"))
            ))
        }
        "deployment.success" | "deployment.failed" => {
            let (icon, outcome) = outcome(event);
            let environment = link(
                str_at(json, "/environment"),
                str_at(json, "/environment_external_url"),
            );
            let job = link("deployment job", str_at(json, "/deployable_url"));
            standalone(format!(
                "{icon} Deployment of {} to {environment} {outcome} in {project} ({job})",
                code(str_at(json, "/short_sha"))
            ))
        }
        "release.create" => {
            let release = link(
                or(str_at(json, "/name"), str_at(json, "/tag")),
                str_at(json, "/url"),
            );
            standalone(with_body(
                format!("Release {release} of {project} was published"),
                str_at(json, "/description"),
            ))
        }
        _ => None,
    }
}

fn push(json: &Value, event: &str, project: &str, project_url: &str) -> String {
    let who = format!(
        "**{}**",
        plain(or(
            str_at(json, "/user_name"),
            str_at(json, "/user_username")
        ))
    );
    let full_ref = str_at(json, "/ref");
    let (kind, name) = match event {
        "tag_push" => ("tag", full_ref.trim_start_matches("refs/tags/")),
        _ => ("branch", full_ref.trim_start_matches("refs/heads/")),
    };
    if str_at(json, "/after") == NO_COMMIT {
        return format!("{who} deleted {kind} {} in {project}", code(name));
    }
    let target = format!(
        "{kind} {}",
        link(name, &format!("{project_url}/-/tree/{name}"))
    );
    if str_at(json, "/before") == NO_COMMIT && kind == "tag" {
        return format!("{who} pushed new {target} to {project}");
    }
    let commits: &[Value] = json
        .get("commits")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    // GitLab sends at most 20 commits and counts them all.
    let total = json
        .get("total_commits_count")
        .and_then(Value::as_u64)
        .unwrap_or(commits.len() as u64) as usize;
    let head = if str_at(json, "/before") == NO_COMMIT {
        format!("{who} created {target} in {project}")
    } else if total == 1 {
        format!("{who} pushed 1 commit to {target} in {project}")
    } else {
        format!("{who} pushed {total} commits to {target} in {project}")
    };
    let lines: Vec<String> = commits
        .iter()
        .map(|c| {
            let sha: String = str_at(c, "/id").chars().take(8).collect();
            commit_line(
                &sha,
                str_at(c, "/url"),
                str_at(c, "/message"),
                str_at(c, "/author/name"),
            )
        })
        .collect();
    let mut text = head;
    for line in capped(lines, total.max(commits.len()), COMMITS_LISTED) {
        text.push('\n');
        text.push_str(&line);
    }
    text
}

/// `[group/project!5 Title](url)` and its thread.
fn merge_request(json: &Value, at: &str, project: &str) -> (String, String) {
    let iid = json
        .pointer(&format!("{at}/iid"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let title = str_at(json, &format!("{at}/title"));
    (
        link(
            &format!("{project}!{iid} {title}"),
            str_at(json, &format!("{at}/url")),
        ),
        format!("mr/{project}!{iid}"),
    )
}

/// `[group/project#7 Title](url)` and its thread.
fn issue(json: &Value, at: &str, project: &str) -> (String, String) {
    let iid = json
        .pointer(&format!("{at}/iid"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let title = str_at(json, &format!("{at}/title"));
    (
        link(
            &format!("{project}#{iid} {title}"),
            str_at(json, &format!("{at}/url")),
        ),
        format!("issue/{project}#{iid}"),
    )
}

fn outcome(event: &str) -> (&'static str, &'static str) {
    match event.rsplit('.').next().unwrap_or("") {
        "success" => (":white_check_mark:", "succeeded"),
        "failed" => (":x:", "failed"),
        _ => (":no_entry_sign:", "was canceled"),
    }
}
