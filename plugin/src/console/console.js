// The integrations console. Each kind of integration is described once
// (where it lives in /api/v4, its form, what a card shows and which extra
// buttons it has) and one set of functions lists, adds, edits and deletes
// them all. Requests carry the session cookie and X-Requested-With.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { kind: "incoming", team: null, teams: [], channels: [], items: [], editing: null, sources: [], components: null };
// The site's URL (ServiceSettings.SiteURL): what senders are told to post to.
const siteUrl = () => document.querySelector("meta[name=site-url]")?.content || location.origin;

async function api(method, path, body) {
  const init = { method, headers: { "X-Requested-With": "XMLHttpRequest" }, credentials: "same-origin" };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!response.ok) {
    if (response.status === 401) location.href = "/login?redirect_to=" + encodeURIComponent(location.pathname);
    throw new Error((data && data.message) || response.statusText);
  }
  return data;
}

function make(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== false && v !== undefined && v !== null) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

function notice(message, isError) {
  const box = $("notice");
  box.hidden = !message;
  box.className = "notice" + (isError ? " error" : "");
  box.textContent = message || "";
}

const guard = (fn) => async (...args) => {
  try { await fn(...args); } catch (err) { notice(err.message || String(err), true); }
};

const channelName = (id) => {
  const c = state.channels.find((c) => c.id === id);
  return c ? "~" + c.name : id ? id : "(any channel)";
};
const lines = (value) => value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "");

// ---- the kinds ----

const channelField = (optional) => ({
  name: "channel_id", label: "Channel", type: "channel", optional,
});

const KINDS = {
  incoming: {
    title: "Incoming Webhooks",
    intro: "Let external applications post messages to a channel with an HTTP POST.",
    list: () => `/api/v4/hooks/incoming?team_id=${state.team.id}&per_page=200`,
    create: "/api/v4/hooks/incoming",
    item: (h) => `/api/v4/hooks/incoming/${h.id}`,
    fields: [
      { name: "display_name", label: "Title" },
      { name: "description", label: "Description" },
      channelField(false),
      { name: "channel_locked", label: "Lock to this channel", type: "bool" },
      { name: "source", type: "custom", render: sourceSection, read: readSource },
      { name: "username", label: "Username", help: "Shown instead of the creator's when overrides are enabled." },
      { name: "icon_url", label: "Profile picture URL" },
      { name: "transform", type: "custom", render: transformSection, read: readTransform },
    ],
    name: (h) => h.display_name || "Incoming webhook",
    meta: (h) => [
      ["URL", make("code", { class: "hook-url" }, hookUrl(h))],
      ["Source", h.source ? sourceName(h.source) : ""],
      ["Secret", h.source ? make("span", { class: "secret-state" }, h.source_secret_set ? "set" : "not set") : ""],
      ["Events", (h.source_events || []).join(", ")],
      ["Threads", h.source && h.source_threads === false ? "off: every event is a post of its own" : ""],
      ["Transform", h.transform?.template ? "template" : h.transform?.component ? "component " + componentName(h.transform.component) : ""],
      ["Capture", h.capture_only ? "capture only: requests are recorded, nothing is posted" : ""],
      ["Channel", channelName(h.channel_id)], ["Description", h.description], ["Created", when(h.create_at)],
    ],
    extra: (h, card) => [
      make("button", { type: "button", class: "copy-url", onclick: guard(() => copy(hookUrl(h))) }, "Copy URL"),
      make("button", { type: "button", class: "send-test", onclick: guard(() => sendTest(h, card)) }, "Send test message"),
    ],
  },
  outgoing: {
    title: "Outgoing Webhooks",
    intro: "Send channel messages that start with a trigger word to your server; its answer is posted back.",
    list: () => `/api/v4/hooks/outgoing?team_id=${state.team.id}&per_page=200`,
    create: "/api/v4/hooks/outgoing",
    item: (h) => `/api/v4/hooks/outgoing/${h.id}`,
    fields: [
      { name: "display_name", label: "Title" },
      { name: "description", label: "Description" },
      { name: "content_type", label: "Content type", type: "select", options: [["application/x-www-form-urlencoded", "application/x-www-form-urlencoded"], ["application/json", "application/json"]] },
      channelField(true),
      { name: "trigger_words", label: "Trigger words", type: "list", help: "One a line." },
      { name: "trigger_when", label: "Trigger when", type: "select", number: true, options: [["0", "First word matches a trigger word exactly"], ["1", "First word starts with a trigger word"]] },
      { name: "callback_urls", label: "Callback URLs", type: "list", help: "One a line." },
      { name: "username", label: "Username" },
      { name: "icon_url", label: "Profile picture URL" },
    ],
    name: (h) => h.display_name || "Outgoing webhook",
    meta: (h) => [["Trigger words", (h.trigger_words || []).join(", ")], ["Callback URLs", (h.callback_urls || []).join(" ")], ["Channel", channelName(h.channel_id)], ["Token", make("code", {}, h.token || "")]],
    extra: (h, card) => [
      make("button", { type: "button", class: "show-deliveries", onclick: guard(() => deliveries(h, card)) }, "Delivery log"),
      make("button", { type: "button", onclick: guard(async () => { await api("POST", `/api/v4/hooks/outgoing/${h.id}/regen_token`); await refresh(); notice("A new token was made."); }) }, "Regenerate token"),
    ],
  },
  commands: {
    title: "Slash Commands",
    intro: "Run a command from the message box: Switchboard sends it to your server, signed, and posts the answer.",
    list: () => `/api/v4/commands?team_id=${state.team.id}&custom_only=true`,
    create: "/api/v4/commands",
    item: (c) => `/api/v4/commands/${c.id}`,
    fields: [
      { name: "display_name", label: "Title" },
      { name: "description", label: "Description" },
      { name: "trigger", label: "Command trigger word", help: "Without the slash." },
      { name: "url", label: "Request URL" },
      { name: "method", label: "Request method", type: "select", options: [["P", "POST"], ["G", "GET"]] },
      { name: "username", label: "Response username" },
      { name: "icon_url", label: "Response icon URL" },
      { name: "auto_complete", label: "Show in autocomplete", type: "bool" },
      { name: "auto_complete_desc", label: "Autocomplete description" },
      { name: "auto_complete_hint", label: "Autocomplete hint" },
    ],
    name: (c) => "/" + c.trigger + (c.display_name ? " · " + c.display_name : ""),
    meta: (c) => [["Request URL", c.url], ["Method", c.method === "G" ? "GET" : "POST"], ["Token", make("code", {}, c.token || "")], ["Signing secret", make("code", { class: "signing-secret" }, c.signing_secret || "")]],
    extra: (c, card) => [
      make("button", { type: "button", onclick: guard(async () => { await api("PUT", `/api/v4/commands/${c.id}/regen_signing_secret`); await refresh(); notice("A new signing secret was made."); }) }, "Regenerate signing secret"),
      tryIt(c, card),
    ],
  },
  bots: {
    title: "Bot Accounts",
    intro: "Accounts for integrations, with tokens of their own.",
    list: () => "/api/v4/bots?per_page=200&include_deleted=true",
    create: "/api/v4/bots",
    item: (b) => `/api/v4/bots/${b.user_id}`,
    update: "PUT",
    noDelete: true,
    fields: [
      { name: "username", label: "Username" },
      { name: "display_name", label: "Display name" },
      { name: "description", label: "Description" },
    ],
    name: (b) => (b.display_name || b.username) + " (@" + b.username + ")" + (b.delete_at ? " · disabled" : ""),
    meta: (b) => [["Description", b.description], ["Created", when(b.create_at)]],
    extra: (b) => [
      make("button", { type: "button", onclick: guard(async () => { await api("POST", `/api/v4/bots/${b.user_id}/${b.delete_at ? "enable" : "disable"}`); await refresh(); }) }, b.delete_at ? "Enable" : "Disable"),
    ],
  },
  oauth: {
    title: "OAuth 2.0 Applications",
    intro: "Let applications act for a user who allows them, with Mattermost's OAuth 2.0 flow.",
    list: () => "/api/v4/oauth/apps?per_page=200",
    create: "/api/v4/oauth/apps",
    item: (a) => `/api/v4/oauth/apps/${a.id}`,
    fields: [
      { name: "name", label: "Display name" },
      { name: "description", label: "Description" },
      { name: "homepage", label: "Homepage" },
      { name: "icon_url", label: "Icon URL" },
      { name: "callback_urls", label: "Callback URLs", type: "list", help: "One a line." },
      { name: "is_trusted", label: "Trusted (skips the consent page)", type: "bool" },
    ],
    name: (a) => a.name,
    meta: (a) => [["Client ID", make("code", {}, a.id)], ["Client secret", make("code", {}, a.client_secret || "(hidden)")], ["Callback URLs", (a.callback_urls || []).join(" ")], ["Homepage", a.homepage]],
    extra: (a) => [
      make("button", { type: "button", onclick: guard(async () => { const fresh = await api("POST", `/api/v4/oauth/apps/${a.id}/regen_secret`); notice("New client secret: " + fresh.client_secret); }) }, "Regenerate secret"),
    ],
  },
  oauthout: {
    title: "Outgoing OAuth Connections",
    intro: "Let outgoing webhooks and slash commands call servers that want an OAuth 2.0 token: Switchboard fetches it and sends it as a bearer token.",
    list: () => `/api/v4/oauth/outgoing_connections?team_id=${state.team.id}&limit=100`,
    create: "/api/v4/oauth/outgoing_connections",
    item: (c) => `/api/v4/oauth/outgoing_connections/${c.id}`,
    fields: [
      { name: "name", label: "Name" },
      { name: "oauth_token_url", label: "Token URL" },
      { name: "grant_type", label: "Grant type", type: "select", options: [["client_credentials", "Client credentials"], ["password", "Password"]] },
      { name: "client_id", label: "Client ID" },
      { name: "client_secret", label: "Client secret", secret: true, help: "Kept when left empty on edit." },
      { name: "credentials_username", label: "Username", help: "Password grant only." },
      { name: "credentials_password", label: "Password", secret: true, help: "Password grant only; kept when left empty." },
      { name: "audiences", label: "Audiences", type: "list", help: "URLs this connection's token is sent to, one a line." },
    ],
    name: (c) => c.name,
    meta: (c) => [["Token URL", c.oauth_token_url], ["Grant type", c.grant_type], ["Client ID", make("code", {}, c.client_id)], ["Audiences", (c.audiences || []).join(" ")], ["Created", when(c.create_at)]],
    extra: () => [],
  },
  // System admins only: the nav link shows once /api/v4/transforms answers.
  transforms: {
    title: "Transform Components",
    intro: "WebAssembly components of the switchboard:transform world, uploaded once and attached to incoming webhooks. They run sandboxed: no files, network or environment.",
    list: () => "/api/v4/transforms",
    create: "/api/v4/transforms",
    item: (t) => `/api/v4/transforms/${t.id}`,
    upload: true,
    noEdit: true,
    fields: [
      { name: "name", label: "Name" },
      { name: "component", label: "Component (.wasm)", type: "file", accept: ".wasm,application/wasm" },
    ],
    name: (t) => t.name,
    meta: (t) => [["ID", make("code", {}, t.id)], ["Size", bytes(t.size)], ["SHA-256", make("code", { class: "sha256" }, t.sha256)], ["Created", when(t.create_at)]],
    extra: () => [],
  },
};

const bytes = (n) => (n >= 1048576 ? (n / 1048576).toFixed(1) + " MiB" : n >= 1024 ? (n / 1024).toFixed(1) + " KiB" : n + " bytes");
const componentName = (id) => state.components?.find((t) => t.id === id)?.name || id;

// ---- the kind-specific extras ----

/// The URL to paste into the sender: a hook with a source takes its native payloads at
/// /hooks/{id}/{source}.
function hookUrl(h, source = h.source) {
  return siteUrl() + "/hooks/" + h.id + (source ? "/" + source : "");
}

const sourceName = (name) => state.sources.find((s) => s.name === name)?.display_name || name;

// How to set a sender up on its side, for the sources this page knows; `code` in
// backticks. Sources it does not know get `genericHelp`.
const SETUP = {
  github: "In the repository or organization: Settings → Webhooks → Add webhook. Payload URL: the URL above; Content type: `application/json`; Secret: the secret below; then pick the events to send.",
  gitlab: "In the project or group: Settings → Webhooks → Add new webhook. URL: the URL above; Secret token: the secret below; then tick the triggers to send.",
  gitea: "In the repository: Settings → Webhooks → Add webhook → Gitea (or Forgejo). Target URL: the URL above; POST content type: `application/json`; Secret: the secret below.",
  alertmanager: "In `alertmanager.yml`, add a receiver with a `webhook_configs` entry whose `url` is the URL above and whose `http_config.authorization.credentials` is the secret below (sent as a bearer token), and route alerts to it.",
  grafana: "Alerting → Contact points → Add contact point, integration Webhook. URL: the URL above; under Optional Webhook settings, Authorization Header - Credentials: the secret below.",
  json: "Any sender that POSTs JSON: each document is posted as a code block. With a secret, the sender must send `Authorization: Bearer <secret>` (or Basic auth with the secret as the password).",
  bitbucket: "In the repository: Repository settings → Webhooks → Add webhook. URL: the URL above; Secret: the secret below; then choose the triggers.",
  jira: "In Jira: Settings → System → WebHooks → Create a WebHook. URL: the URL above; Secret: the secret below; then choose the events.",
  sentry: "In Sentry: Settings → Developer Settings → Custom Integrations → Create New Integration (internal). Webhook URL: the URL above; then copy the integration's Client Secret into the secret below.",
  pagerduty: "In PagerDuty: Integrations → Generic Webhooks (v3) → New Webhook. Webhook URL: the URL above; PagerDuty shows a signing secret once: paste it as the secret below.",
  "azure-devops": "In the project: Project settings → Service hooks → Create subscription → Web Hooks. URL: the URL above; Basic authentication password: the secret below (any username).",
};

const genericHelp = (s) => "In " + s.display_name + "'s webhook settings, paste the URL above as the webhook's URL" +
  (s.signature_header ? "; if it signs its requests, set the secret below there too (checked in its `" + s.signature_header + "` header)." : ".");

/// The setup text for a source from the listing: its own, or the generic line.
function setupHelp(source) {
  return SETUP[source.name] || genericHelp(source);
}

/// Text with `code` spans, as nodes.
function withCode(text) {
  return text.split("`").map((part, i) => (i % 2 ? make("code", {}, part) : part));
}

/// The source part of the incoming-webhook form: which sender posts to the hook, the URL to
/// paste there, how to set it up on the sender's side, its secret, its event filter, threads.
function sourceSection(hook) {
  const current = hook?.source || "";
  const select = make("select", { id: "f_source", name: "source" },
    make("option", { value: "" }, "Slack-compatible (default)"),
    ...state.sources.map((s) => make("option", { value: s.name, selected: s.name === current }, s.display_name)));
  if (current && !state.sources.some((s) => s.name === current)) select.append(make("option", { value: current, selected: true }, current));
  const url = make("code", { id: "source-url" });
  const copyButton = make("button", { type: "button", id: "copy-source-url", onclick: guard(() => copy(url.textContent)) }, "Copy");
  const help = make("p", { id: "source-help", class: "setup" });
  const events = make("details", { id: "source-event-list" });
  const secretSet = !!hook?.source_secret_set;
  const settings = make("div", { id: "source-settings", class: "source-settings" },
    make("label", {}, "URL to paste into the sender"),
    make("div", { class: "url-row" }, url, hook ? copyButton : null),
    help,
    make("label", { for: "f_source_secret" }, "Secret", make("span", { class: "help" }, " Write-only: it is never shown again. " + (hook ? "Leave empty to keep the stored one." : ""))),
    make("input", { type: "password", id: "f_source_secret", name: "source_secret", autocomplete: "new-password" }),
    hook ? make("div", { class: "secret-row" },
      make("span", { id: "secret-state", class: secretSet ? "is-set" : "not-set" }, secretSet ? "A secret is set." : "No secret is set: unsigned requests are taken."),
      secretSet ? make("label", { class: "check" }, make("input", { type: "checkbox", id: "f_source_secret_clear" }), "Clear it") : null) : null,
    make("label", { for: "f_source_events" }, "Events that post", make("span", { class: "help" }, ...withCode(" Comma- or space-separated; `*` matches anything, `!` leaves out: `pull_request.*, push, !star`. Empty: every event."))),
    make("input", { type: "text", id: "f_source_events", name: "source_events", value: (hook?.source_events || []).join(", "), placeholder: "every event" }),
    events,
    make("label", { class: "check" }, make("input", { type: "checkbox", id: "f_source_threads", checked: hook?.source_threads !== false }), "Reply in threads: later events about a pull request, issue or alert group answer its first post"));
  const update = () => {
    const source = state.sources.find((s) => s.name === select.value);
    settings.hidden = !select.value;
    url.textContent = hook ? hookUrl(hook, select.value) : siteUrl() + "/hooks/<id, once added>/" + select.value;
    help.replaceChildren(...(source ? withCode(setupHelp(source)) : []));
    events.replaceChildren(make("summary", {}, "Events " + (source?.display_name || "this source") + " posts"),
      make("p", { class: "event-names" }, (source?.events || []).join(", ")));
    events.hidden = !source?.events?.length;
  };
  select.addEventListener("change", update);
  update();
  return make("div", {}, make("label", { for: "f_source" }, "Source", make("span", { class: "help" }, " Which sender posts here: Slack-format JSON, or a tool's own webhooks.")), select, settings);
}

/// What the source part adds to the request: only what changed meaning, so a hook with no
/// source stays a plain Mattermost hook.
function readSource(form, out, hook) {
  const source = form.elements.source.value;
  if (!source) {
    if (hook?.source) out.source = "";
    return;
  }
  out.source = source;
  out.source_events = form.elements.source_events.value.split(/[\s,]+/).filter(Boolean);
  out.source_threads = $("f_source_threads").checked;
  const secret = form.elements.source_secret.value;
  if ($("f_source_secret_clear")?.checked) out.source_secret = "";
  else if (secret) out.source_secret = secret;
}

// ---- the transform editor (incoming webhooks) ----

const TEMPLATE_FIELDS = [
  ["when", "When", "A Jinja expression: the request is dropped unless it is true. Empty: always."],
  ["text", "Text", "The message: Markdown, as a sender would post it."],
  ["username", "Username", ""],
  ["icon_url", "Icon URL", ""],
  ["channel", "Channel", "A channel name, when the hook is not locked."],
  ["thread_key", "Thread key", "Posts with the same key reply in the first one's thread."],
];

/// The transform part of the incoming-webhook form: none, a template (its fields, a sample to
/// try it on and the post it makes, as the channel shows it) or an uploaded component.
function transformSection(hook) {
  const current = hook?.transform;
  const template = current?.template || {};
  const kind = make("select", { id: "f_transform_kind" },
    make("option", { value: "" }, "None: the payload is posted as sent"),
    make("option", { value: "template", selected: !!current?.template }, "Template"));
  // Components are offered to those who may list them (system admins), and the one attached.
  if (state.components || current?.component) {
    kind.append(make("option", { value: "component", selected: !!current?.component }, "Uploaded component"));
  }
  const fields = TEMPLATE_FIELDS.map(([name, label, help]) => {
    const id = "f_tpl_" + name;
    const input = name === "text"
      ? make("textarea", { id, rows: 4, class: "template-input", spellcheck: "false" })
      : make("input", { type: "text", id, class: "template-input", spellcheck: "false" });
    input.value = template[name] || "";
    return make("div", {}, make("label", { for: id }, label, help ? make("span", { class: "help" }, " " + help) : null), input);
  });
  const attachments = make("textarea", { id: "f_tpl_attachments", rows: 5, class: "template-input", spellcheck: "false",
    placeholder: '[{"color": "#d00", "title": "{{ body.title }}", "fields": [{"title": "Region", "value": "{{ body.region }}", "short": true}]}]' });
  attachments.value = template.attachments?.length ? JSON.stringify(template.attachments, null, 2) : "";
  const component = make("select", { id: "f_transform_component" },
    ...(state.components || []).map((t) => make("option", { value: t.id, selected: t.id === current?.component }, t.name + " (" + bytes(t.size) + ")")));
  if (current?.component && !(state.components || []).some((t) => t.id === current.component)) {
    component.append(make("option", { value: current.component, selected: true }, current.component));
  }
  if (!component.options.length) component.append(make("option", { value: "", disabled: true, selected: true }, "None uploaded yet"));
  const templatePart = make("div", { id: "template-settings" }, ...fields,
    make("div", {}, make("label", { for: "f_tpl_attachments" }, "Attachments", make("span", { class: "help" }, " A JSON list; each attachment's text members and its fields' title and value are templates.")), attachments),
    make("p", { class: "help" }, ...withCode("The template sees `body` (the JSON, or the text), `headers` (lower-case names), `query` and `post` (what the hook's source would post).")));
  const componentPart = make("div", { id: "component-settings" },
    make("label", { for: "f_transform_component" }, "Component", make("span", { class: "help" }, " Upload one under Transform Components.")), component);
  const capture = make("label", { class: "check" },
    make("input", { type: "checkbox", id: "f_capture_only", checked: !!hook?.capture_only }),
    "Capture only: record requests and answer 200, post nothing (point a new sender here first)");
  const form = make("div", { class: "transform-form" }, kind, templatePart, componentPart);
  const panel = hook ? tryPanel(hook) : make("p", { class: "help" }, "Add the hook and send to it: its requests show here as samples to try the transform on.");
  if (panel.live) { form.addEventListener("input", panel.live); form.addEventListener("change", panel.live); }
  const editor = make("div", { class: "transform-edit" }, form, panel);
  const update = () => {
    templatePart.hidden = kind.value !== "template";
    componentPart.hidden = kind.value !== "component";
  };
  kind.addEventListener("change", update);
  update();
  return make("div", { id: "transform-settings", class: "transform-settings" },
    make("label", { for: "f_transform_kind" }, "Transform", make("span", { class: "help" }, " Shape any sender's payload into a post.")),
    capture, editor);
}

/// The transform the form describes, or null for none. A template's attachments must be JSON.
function formTransform() {
  const kind = $("f_transform_kind").value;
  if (kind === "component") return { component: $("f_transform_component").value };
  if (kind !== "template") return null;
  const template = {};
  for (const [name] of TEMPLATE_FIELDS) {
    const value = $("f_tpl_" + name).value;
    if (value.trim()) template[name] = value;
  }
  const attachments = $("f_tpl_attachments").value.trim();
  if (attachments) {
    try { template.attachments = JSON.parse(attachments); } catch (err) {
      throw new Error("Attachments are not JSON: " + err.message);
    }
  }
  return { template };
}

function readTransform(form, out, hook) {
  out.transform = formTransform();
  out.capture_only = $("f_capture_only").checked;
  // "transform": null removes a stored one; leaving it out keeps it.
  if (!out.transform && !hook?.transform) delete out.transform;
}

/// The samples to pick from and the post the transform makes of the picked one.
function tryPanel(hook) {
  const samples = make("select", { id: "sample-pick", "aria-label": "Sample" });
  const request = make("pre", { id: "sample-request", class: "answer sample" });
  const result = make("div", { id: "preview", class: "preview" });
  const button = make("button", { type: "button", id: "preview-run" }, "Preview");
  let list = [];
  const load = async () => {
    list = (await api("GET", `/api/v4/hooks/incoming/${hook.id}/samples`)) || [];
    samples.replaceChildren(...(list.length
      ? list.map((s) => make("option", { value: s.id }, sampleLabel(s)))
      : [make("option", { value: "" }, "No requests yet: send one to this hook")]));
    showSample();
  };
  const showSample = () => {
    const sample = list.find((s) => s.id === samples.value);
    // What a sender sent is shown as text, never as markup.
    request.textContent = sample
      ? [`${sample.method} ${sample.path}${sample.query ? "?" + sample.query : ""}`,
        ...sample.headers.map(([k, v]) => `${k}: ${v}`), "", sample.body + (sample.body_truncated ? "\n[cut at 1 MiB]" : "")].join("\n")
      : "";
  };
  let timer = null;
  let asked = 0;
  const run = async () => {
    clearTimeout(timer);
    // A preview scheduled while typing may come due after the form closed.
    if (!result.isConnected) return;
    if (!samples.value) { result.replaceChildren(make("p", { class: "help" }, "Pick a sample to preview.")); return; }
    result.replaceChildren(make("p", { class: "help" }, "…"));
    const ask = { sample_id: samples.value };
    // Only the latest ask is shown: an earlier answer that arrives late is dropped.
    const mine = ++asked;
    try {
      const transform = formTransform();
      if (transform) ask.transform = transform;
      const answer = await api("POST", `/api/v4/hooks/incoming/${hook.id}/preview`, ask);
      if (mine === asked) await showPreview(result, answer);
    } catch (err) {
      if (mine === asked) result.replaceChildren(make("div", { class: "preview-error" }, err.message));
    }
  };
  button.addEventListener("click", guard(run));
  samples.addEventListener("change", () => { showSample(); run(); });
  // Live: a pause in typing previews again.
  const live = (event) => {
    if (!samples.value) return;
    clearTimeout(timer);
    timer = setTimeout(guard(run), 600);
  };
  guard(load)();
  const panel = make("div", { class: "transform-try" },
    make("label", { for: "sample-pick" }, "Sample", make("span", { class: "help" }, " The hook's last requests, newest first.")),
    make("div", { class: "try" }, samples, make("button", { type: "button", id: "samples-reload", onclick: guard(load) }, "Reload"), button),
    request,
    make("label", {}, "Post"),
    result);
  panel.live = live;
  return panel;
}

function sampleLabel(s) {
  return `${when(s.create_at)} · ${s.method} · ${s.status}` + (s.post_ids?.length ? ` · ${s.post_ids.length} posted` : "") + (s.error ? " · " + s.error : "");
}

/// The preview's answer: its posts as the channel view shows them, "dropped", or the error.
async function showPreview(box, answer) {
  const out = [];
  if (answer.error) {
    const e = answer.error;
    out.push(make("div", { class: "preview-error" }, `HTTP ${e.status_code}: ${e.message}`,
      e.detailed_error ? make("div", { class: "detail" }, e.detailed_error) : null));
  } else if (answer.dropped) {
    out.push(make("div", { class: "preview-dropped" }, "Dropped: the sender gets 200 and nothing is posted (when is false, or the transform returned none)."));
  } else if (!answer.posts.length) {
    out.push(make("div", { class: "preview-dropped" }, "Nothing would be posted."));
  }
  const posts = answer.posts.map((p, i) => ({ ...p, id: p.id || "preview-" + i, create_at: p.create_at || Date.now() }));
  const rendered = await renderPosts(posts);
  for (const p of posts) out.push(rendered[p.id]);
  out.push(make("div", { class: "help" }, `${answer.duration_ms.toFixed(1)} ms`));
  box.replaceChildren(...out);
}

/// Posts as the channel view shows them. The shim renders posts to sanitised HTML (Markdown
/// through ammonia) at /web/render; a host without it gets the message as plain text.
async function renderPosts(posts) {
  const out = {};
  let html = null;
  if (posts.length) {
    try { html = (await api("POST", "/web/render", { posts })).html; } catch (_) { html = null; }
  }
  for (const p of posts) {
    let el = null;
    if (html && html[p.id]) {
      const holder = document.createElement("div");
      holder.innerHTML = html[p.id];
      el = holder.firstElementChild;
      // The page's policy takes no inline style: an attachment's colour is set through the DOM.
      for (const a of el.querySelectorAll(".attachment[style]")) {
        const color = /border-left-color:\s*([^;]+)/.exec(a.getAttribute("style"))?.[1];
        a.removeAttribute("style");
        if (color) a.style.borderLeftColor = color;
      }
      const time = el.querySelector("time");
      if (time) time.textContent = new Date(Number(time.dataset.ms)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    } else {
      el = make("div", { class: "post" }, make("div", { class: "post-body plain" }, p.message));
    }
    out[p.id] = el;
  }
  return out;
}

async function copy(value) {
  try { await navigator.clipboard.writeText(value); } catch (_) {
    const box = make("textarea", {}, value);
    document.body.append(box);
    box.select();
    document.execCommand("copy");
    box.remove();
  }
  notice("Copied " + value);
}

async function sendTest(h) {
  const response = await fetch("/hooks/" + h.id, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: "Test message from the Switchboard console :tada:" }),
  });
  if (!response.ok) throw new Error("The webhook answered " + response.status + ": " + (await response.text()));
  notice("Test message sent to " + channelName(h.channel_id) + ".");
}

/// The delivery log of an outgoing webhook: each delivery, each attempt, and redeliver.
async function deliveries(h, card) {
  let panel = card.querySelector(".panel.deliveries");
  if (!panel) { panel = make("div", { class: "panel deliveries" }); card.append(panel); }
  const list = await api("GET", `/api/v4/hooks/outgoing/${h.id}/deliveries`);
  panel.replaceChildren(make("h3", {}, "Delivery log"));
  if (!list.length) { panel.append(make("p", { class: "empty-log" }, "No deliveries yet.")); return; }
  // The request's post and the posts made from the answer, read once each.
  const messages = {};
  const wanted = [...new Set(list.flatMap((d) => [d.post_id, ...(d.posted || [])]).filter(Boolean))];
  await Promise.all(wanted.map(async (id) => {
    try { messages[id] = (await api("GET", `/api/v4/posts/${id}`)).message; } catch (_) { /* gone or not readable */ }
  }));
  const quote = (id) => (messages[id] === undefined ? null : make("div", { class: "quote" }, "“" + messages[id] + "”"));
  const table = make("table", { class: "log" }, make("tr", {}, ...["When", "Request", "Answer", "Attempts", ""].map((t) => make("th", {}, t))));
  for (const d of list.slice().reverse()) {
    const attempts = make("ol", {});
    for (const a of d.attempts || []) {
      attempts.append(make("li", {}, `${when(a.at)}: ${a.status ? "HTTP " + a.status : "no answer"}${a.error ? " · " + a.error : ""} (${a.latency_ms} ms)`));
    }
    const redeliver = d.state === "retrying" ? null : make("button", {
      type: "button", class: "redeliver",
      onclick: guard(async () => { await api("POST", `/api/v4/hooks/outgoing/${h.id}/deliveries/${d.id}/redeliver`); notice("Delivery sent again."); setTimeout(guard(() => deliveries(h, card)), 500); }),
    }, "Redeliver");
    table.append(make("tr", { class: "delivery", "data-state": d.state },
      make("td", {}, when(d.at)),
      make("td", {}, make("code", {}, "POST " + d.url), make("div", {}, "trigger " + (d.trigger_word || "—")), quote(d.post_id)),
      make("td", { class: "answer-cell" }, make("span", { class: "state-" + d.state }, d.state), d.status ? " HTTP " + d.status : "",
        d.error ? make("div", {}, d.error) : null, ...(d.posted || []).map(quote)),
      make("td", {}, attempts),
      make("td", {}, redeliver)));
  }
  panel.append(table, make("button", { type: "button", onclick: guard(() => deliveries(h, card)) }, "Refresh"));
}

/// A box to run the command in a channel and see its answer.
function tryIt(c, card) {
  const input = make("input", { type: "text", class: "try-input", value: "/" + c.trigger + " ", "aria-label": "Command to try" });
  const channel = make("select", { class: "try-channel", "aria-label": "Channel" }, ...state.channels.map((ch) => make("option", { value: ch.id }, "~" + ch.name)));
  const run = make("button", {
    type: "button", class: "try-run",
    onclick: guard(async () => {
      let out = card.querySelector("pre.answer");
      if (!out) { out = make("pre", { class: "answer" }); card.append(out); }
      out.textContent = "…";
      try {
        const answer = await api("POST", "/api/v4/commands/execute", { channel_id: channel.value, team_id: state.team.id, command: input.value });
        out.textContent = JSON.stringify(answer, null, 2);
      } catch (err) { out.textContent = "Error: " + err.message; }
    }),
  }, "Try it");
  return make("div", { class: "try" }, input, channel, run);
}

// ---- the general part ----

function fieldInput(field, value, item) {
  if (field.type === "custom") return field.render(item);
  const id = "f_" + field.name;
  if (field.type === "bool") {
    return make("label", { class: "check" }, make("input", { type: "checkbox", id, name: field.name, checked: !!value }), field.label);
  }
  let input;
  if (field.type === "channel") {
    input = make("select", { id, name: field.name });
    if (field.optional) input.append(make("option", { value: "" }, "(any channel)"));
    for (const c of state.channels) input.append(make("option", { value: c.id, selected: c.id === value }, "~" + c.name + (c.display_name ? " — " + c.display_name : "")));
  } else if (field.type === "select") {
    input = make("select", { id, name: field.name });
    for (const [v, label] of field.options) input.append(make("option", { value: v, selected: String(value ?? "") === v }, label));
  } else if (field.type === "file") {
    input = make("input", { type: "file", id, name: field.name, accept: field.accept });
  } else if (field.type === "list") {
    input = make("textarea", { id, name: field.name, rows: 3 });
    input.value = (value || []).join("\n");
  } else {
    input = field.secret
      ? make("input", { type: "password", id, name: field.name, autocomplete: "new-password" })
      : make("input", { type: "text", id, name: field.name, value: value ?? "" });
  }
  return make("div", {}, make("label", { for: id }, field.label, field.help ? make("span", { class: "help" }, " " + field.help) : null), input);
}

function readForm(kind, form, item) {
  const out = {};
  for (const field of kind.fields) {
    const input = form.elements[field.name];
    if (field.type === "custom") field.read(form, out, item);
    else if (field.type === "bool") out[field.name] = input.checked;
    else if (field.type === "list") out[field.name] = lines(input.value);
    else if (field.type === "file") out[field.name] = input.files[0];
    else if (field.number) out[field.name] = Number(input.value);
    // A secret the server does not show back: empty means "keep the stored one".
    else if (field.secret && !input.value) continue;
    else out[field.name] = input.value.trim();
  }
  return out;
}

function openEditor(item) {
  const kind = KINDS[state.kind];
  const form = $("editor");
  state.editing = item;
  notice(null);
  form.replaceChildren(make("h2", {}, (item ? "Edit " : "Add ") + kind.title.replace(/s$/, "").replace(/ies$/, "y")));
  for (const field of kind.fields) form.append(fieldInput(field, item ? item[field.name] : field.type === "bool" ? false : undefined, item));
  form.append(make("div", { class: "buttons" },
    make("button", { type: "submit", class: "primary", id: "save" }, item ? "Save" : "Add"),
    make("button", { type: "button", onclick: () => { form.replaceChildren(); form.hidden = true; } }, "Cancel")));
  form.hidden = false;
  form.querySelector("input,select,textarea")?.focus();
}

async function save(event) {
  event.preventDefault();
  const kind = KINDS[state.kind];
  const values = readForm(kind, $("editor"), state.editing);
  const editing = state.editing;
  let saved;
  if (kind.upload) {
    const form = new FormData();
    for (const [k, v] of Object.entries(values)) if (v !== undefined) form.append(k, v);
    saved = await api("POST", kind.create, form);
  } else if (editing) {
    saved = await api("PUT", kind.item(editing), { ...editing, ...values });
  } else {
    saved = await api("POST", kind.create, { team_id: state.team.id, ...values });
  }
  // The form goes with its values: a secret typed into it stays nowhere on the page.
  $("editor").replaceChildren();
  $("editor").hidden = true;
  await refresh();
  // A new URL to paste (a new hook, or a new source) is said at once.
  const pasteHint = state.kind === "incoming" && saved?.source && saved.source !== editing?.source;
  notice((editing ? "Saved." : "Added.") + (pasteHint
    ? " Paste " + hookUrl(saved) + " into " + sourceName(saved.source) + "'s webhook settings." : ""));
}

function card(item) {
  const kind = KINDS[state.kind];
  const el = make("div", { class: "card", "data-id": item.id || item.user_id });
  const meta = make("dl", { class: "meta" });
  for (const [label, value] of kind.meta(item)) {
    if (value === "" || value === undefined || value === null) continue;
    meta.append(make("dt", {}, label), make("dd", {}, value));
  }
  const buttons = make("div", { class: "buttons" },
    kind.noEdit ? null : make("button", { type: "button", class: "edit", onclick: () => openEditor(item) }, "Edit"),
    kind.noDelete ? null : make("button", {
      type: "button", class: "danger delete",
      onclick: guard(async () => { if (!confirm("Delete " + kind.name(item) + "?")) return; await api("DELETE", kind.item(item)); notice("Deleted."); await refresh(); }),
    }, "Delete"));
  el.append(make("h2", {}, kind.name(item)), meta, buttons);
  for (const extra of kind.extra(item, el)) buttons.append(extra);
  return el;
}

async function refresh() {
  const kind = KINDS[state.kind];
  const list = $("list");
  try {
    state.items = (await api("GET", kind.list())) || [];
    if (state.kind === "transforms") state.components = state.items;
  } catch (err) {
    list.replaceChildren(make("div", { class: "empty" }, "You cannot see these here: " + err.message));
    return;
  }
  list.replaceChildren();
  if (!state.items.length) list.append(make("div", { class: "empty" }, "None yet. Add one to get started."));
  for (const item of state.items) list.append(card(item));
}

async function show(kindName) {
  state.kind = KINDS[kindName] ? kindName : "incoming";
  const kind = KINDS[state.kind];
  document.querySelectorAll("#kinds a").forEach((a) => a.classList.toggle("active", a.dataset.kind === state.kind));
  $("title").textContent = kind.title;
  $("intro").textContent = kind.intro;
  $("editor").hidden = true;
  notice(null);
  await refresh();
}

async function chooseTeam(teamId) {
  state.team = state.teams.find((t) => t.id === teamId) || state.teams[0];
  state.channels = await api("GET", `/api/v4/users/me/teams/${state.team.id}/channels`);
  state.channels.sort((a, b) => a.name.localeCompare(b.name));
  await show(location.hash.slice(1));
}

async function start() {
  const me = await api("GET", "/api/v4/users/me");
  $("me").textContent = "@" + me.username;
  state.teams = await api("GET", "/api/v4/users/me/teams");
  const select = $("team");
  for (const t of state.teams) select.append(make("option", { value: t.id }, t.display_name || t.name));
  select.addEventListener("change", guard(() => chooseTeam(select.value)));
  $("add").addEventListener("click", () => openEditor(null));
  $("editor").addEventListener("submit", guard(save));
  window.addEventListener("hashchange", guard(() => show(location.hash.slice(1))));
  // The senders the hooks can take (their names, events, headers), from the plugin itself.
  try { state.sources = (await api("GET", "/api/v4/hooks/incoming/sources")) || []; } catch (_) { state.sources = []; }
  // Uploaded transform components: listed for system admins only (others get 403).
  try { state.components = (await api("GET", "/api/v4/transforms")) || []; } catch (_) { state.components = null; }
  $("transforms-link").hidden = !state.components;
  if (state.teams.length) await chooseTeam(state.teams[0].id);
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", guard(start));
