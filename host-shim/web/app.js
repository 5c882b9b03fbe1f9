// The channel view's script: loads teams, channels and posts from /api/v4,
// has the server render posts (/web/render), and keeps them live over the
// websocket. Every request carries the session cookie and X-Requested-With.
"use strict";

const state = { me: null, team: null, channel: null, thread: null, socket: null, suggestions: [], selected: -1 };
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const init = { method, headers: { "X-Requested-With": "XMLHttpRequest" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (response.status === 401) { location.href = "/login?redirect_to=" + encodeURIComponent(location.pathname); }
  if (!response.ok) { throw new Error((data && data.message) || response.statusText); }
  return data;
}

function text(el, value) { el.textContent = value; return el; }
function make(tag, attrs, content) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (content !== undefined) el.textContent = content;
  return el;
}

// ---- posts ----

/// Renders posts on the server and returns {post_id: element}.
async function render(posts) {
  if (!posts.length) return {};
  const answer = await api("POST", "/web/render", { posts });
  const out = {};
  for (const [id, html] of Object.entries(answer.html)) {
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const el = holder.firstElementChild;
    const time = el.querySelector("time");
    if (time) time.textContent = new Date(Number(time.dataset.ms)).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    out[id] = el;
  }
  return out;
}

/// Puts a post where it belongs by time, replacing an older rendering.
function place(container, el) {
  const existing = container.querySelector("#" + CSS.escape(el.id));
  if (existing) { existing.replaceWith(el); return; }
  const at = Number(el.dataset.createAt);
  const later = [...container.children].find((c) => Number(c.dataset.createAt) > at);
  container.insertBefore(el, later || null);
}

async function showChannel(team, channel) {
  state.team = team;
  state.channel = channel;
  document.querySelectorAll(".channel-link").forEach((b) => b.classList.toggle("active", b.dataset.channelId === channel.id));
  text($("channel-name"), channel.display_name || channel.name);
  $("message").placeholder = "Write to " + (channel.display_name || channel.name) + ", or / for commands";
  const list = await api("GET", `/api/v4/channels/${channel.id}/posts?per_page=100`);
  const posts = list.order.map((id) => list.posts[id]);
  const rendered = await render(posts);
  const container = $("posts");
  container.replaceChildren();
  for (const post of posts) if (rendered[post.id]) place(container, rendered[post.id]);
  container.scrollTop = container.scrollHeight;
  history.replaceState(null, "", `#${team.name}/${channel.name}`);
}

async function showThread(rootId) {
  const list = await api("GET", `/api/v4/posts/${rootId}/thread`);
  const posts = list.order.map((id) => list.posts[id]);
  const rendered = await render(posts);
  const container = $("thread-posts");
  container.replaceChildren();
  for (const post of posts) if (rendered[post.id]) place(container, rendered[post.id]);
  state.thread = rootId;
  $("thread").hidden = false;
}

async function received(post) {
  if (!state.channel || post.channel_id !== state.channel.id) return;
  const rendered = await render([post]);
  const el = rendered[post.id];
  if (!el) return;
  const container = $("posts");
  const atBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 40;
  place(container, el);
  if (atBottom) container.scrollTop = container.scrollHeight;
  if (state.thread && (post.root_id === state.thread || post.id === state.thread)) {
    place($("thread-posts"), el.cloneNode(true));
  }
}

// ---- live updates ----

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v4/websocket";
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.onopen = () => $("live").classList.add("on");
  socket.onclose = () => { $("live").classList.remove("on"); setTimeout(connect, 2000); };
  socket.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch (_) { return; }
    const data = event.data || {};
    if (["posted", "post_edited", "ephemeral_message"].includes(event.event) && data.post) {
      const post = JSON.parse(data.post);
      // As Mattermost's SendEphemeralPost does: shown to this user only, never stored.
      if (event.event === "ephemeral_message") post.type = "system_ephemeral";
      received(post).catch(showError);
    } else if (event.event === "post_deleted" && data.post) {
      const gone = JSON.parse(data.post);
      document.querySelectorAll("#post_" + CSS.escape(gone.id)).forEach((el) => el.remove());
    } else if (event.event === "open_dialog" && data.dialog) {
      openDialog(JSON.parse(data.dialog));
    }
  };
}

// ---- the message box ----

function showError(err) {
  const box = $("composer-error");
  box.hidden = !err;
  text(box, err ? String(err.message || err) : "");
}

async function send(message, rootId) {
  showError(null);
  if (message.startsWith("/")) {
    const answer = await api("POST", "/api/v4/commands/execute", {
      channel_id: state.channel.id, team_id: state.team.id, root_id: rootId || "", command: message,
    });
    if (answer && answer.goto_location) window.open(answer.goto_location, "_blank", "noopener");
    return;
  }
  await api("POST", "/api/v4/posts", { channel_id: state.channel.id, message, root_id: rootId || "" });
}

async function suggest() {
  const value = $("message").value;
  const list = $("suggestions");
  if (!value.startsWith("/") || value.includes("\n") || !state.team) { list.hidden = true; state.suggestions = []; return; }
  const query = new URLSearchParams({ user_input: value, channel_id: state.channel.id, team_id: state.team.id });
  let items = [];
  try { items = await api("GET", `/api/v4/teams/${state.team.id}/commands/autocomplete_suggestions?${query}`) || []; } catch (_) { items = []; }
  if ($("message").value !== value) return;
  state.suggestions = items;
  state.selected = items.length ? 0 : -1;
  drawSuggestions();
}

function drawSuggestions() {
  const list = $("suggestions");
  list.replaceChildren();
  state.suggestions.forEach((item, i) => {
    const li = make("li", { "data-complete": item.Complete, class: i === state.selected ? "selected" : "" });
    li.append(make("strong", {}, "/" + item.Suggestion.replace(/^\//, "")), make("span", { class: "hint" }, item.Hint || ""), make("span", {}, item.Description || ""));
    li.addEventListener("mousedown", (e) => { e.preventDefault(); complete(i); });
    list.append(li);
  });
  list.hidden = state.suggestions.length === 0;
}

function complete(i) {
  const item = state.suggestions[i];
  if (!item) return;
  $("message").value = "/" + item.Complete.replace(/^\//, "") + " ";
  $("suggestions").hidden = true;
  state.suggestions = [];
  $("message").focus();
}

function wireComposer(form, box, rootId) {
  const submit = async () => {
    const message = box.value.trim();
    if (!message || !state.channel) return;
    box.value = "";
    $("suggestions").hidden = true;
    try { await send(message, rootId()); } catch (err) { box.value = message; showError(err); }
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  box.addEventListener("keydown", (e) => {
    const open = box === $("message") && state.suggestions.length > 0 && !$("suggestions").hidden;
    if (open && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      const n = state.suggestions.length;
      state.selected = (state.selected + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
      drawSuggestions();
    } else if (open && e.key === "Tab") {
      e.preventDefault();
      complete(state.selected);
    } else if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      submit();
    }
  });
}

// ---- interactive messages ----

async function clickAction(el, selected) {
  const body = selected === undefined ? {} : { selected_option: selected };
  try {
    await api("POST", `/api/v4/posts/${el.dataset.postId}/actions/${el.dataset.actionId}`, body);
  } catch (err) { showError(err); }
}

function openDialog(request) {
  const dialog = request.dialog || {};
  const form = $("dialog-form");
  form.replaceChildren(make("h2", {}, dialog.title || "Dialog"));
  for (const element of dialog.elements || []) {
    const id = "dialog_" + element.name;
    form.append(make("label", { for: id }, element.display_name || element.name));
    let input;
    if (element.type === "select") {
      input = make("select", { id, name: element.name });
      for (const option of element.options || []) input.append(make("option", { value: option.value }, option.text));
    } else if (element.type === "textarea") {
      input = make("textarea", { id, name: element.name });
    } else if (element.type === "bool") {
      input = make("input", { id, name: element.name, type: "checkbox" });
    } else {
      input = make("input", { id, name: element.name, type: element.subtype === "password" ? "password" : "text" });
    }
    if (element.default) input.value = element.default;
    form.append(input);
  }
  const buttons = make("div", { class: "buttons" });
  const cancel = make("button", { type: "button" }, "Cancel");
  const submit = make("button", { type: "submit", class: "primary-button" }, dialog.submit_label || "Submit");
  buttons.append(cancel, submit);
  form.append(buttons);
  const finish = async (cancelled) => {
    const submission = {};
    for (const element of dialog.elements || []) {
      const input = form.elements[element.name];
      submission[element.name] = element.type === "bool" ? input.checked : input.value;
    }
    try {
      await api("POST", "/api/v4/actions/dialogs/submit", {
        url: request.url, callback_id: dialog.callback_id || "", state: dialog.state || "",
        submission: cancelled ? {} : submission, channel_id: state.channel.id, team_id: state.team.id, cancelled,
      });
      $("dialog").close();
    } catch (err) { showError(err); $("dialog").close(); }
  };
  cancel.onclick = () => finish(true);
  form.onsubmit = (e) => { e.preventDefault(); finish(false); };
  $("dialog").showModal();
}

// ---- start ----

async function start() {
  state.me = await api("GET", "/api/v4/users/me");
  text($("me"), "@" + state.me.username);
  const teams = await api("GET", "/api/v4/users/me/teams");
  const [wantTeam, wantChannel] = location.hash.slice(1).split("/");
  let first = null;
  const sidebar = $("teams");
  sidebar.replaceChildren();
  for (const team of teams) {
    sidebar.append(make("div", { class: "team-name" }, team.display_name || team.name));
    const channels = await api("GET", `/api/v4/users/me/teams/${team.id}/channels`);
    channels.sort((a, b) => (a.display_name || a.name).localeCompare(b.display_name || b.name));
    for (const channel of channels) {
      const button = make("button", { type: "button", class: "channel-link", "data-channel-id": channel.id, "data-channel-name": channel.name }, (channel.type === "P" ? "🔒 " : "# ") + (channel.display_name || channel.name));
      button.addEventListener("click", () => showChannel(team, channel).catch(showError));
      sidebar.append(button);
      if (!first || (team.name === wantTeam && channel.name === wantChannel)) first = [team, channel];
      if (!wantChannel && channel.name === "town-square" && first[1].name !== "town-square") first = [team, channel];
    }
  }
  connect();
  if (first) await showChannel(first[0], first[1]);
}

document.addEventListener("DOMContentLoaded", () => {
  wireComposer($("composer"), $("message"), () => "");
  wireComposer($("thread-composer"), $("thread-message"), () => state.thread);
  $("message").addEventListener("input", () => suggest());
  $("close-thread").addEventListener("click", () => { $("thread").hidden = true; state.thread = null; });
  $("sign-out").addEventListener("click", async () => {
    try { await api("POST", "/api/v4/users/logout"); } finally { location.href = "/login?redirect_to=/"; }
  });
  document.addEventListener("click", (e) => {
    const action = e.target.closest(".action-button");
    if (action) { clickAction(action); return; }
    const thread = e.target.closest("[data-thread]");
    if (thread) showThread(thread.dataset.thread).catch(showError);
  });
  document.addEventListener("change", (e) => {
    if (e.target.matches(".action-select") && e.target.value) clickAction(e.target, e.target.value);
  });
  start().catch(showError);
});
