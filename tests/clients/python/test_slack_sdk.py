"""slack_sdk and slack_bolt, unmodified, against the shim: a WebhookClient
posting to an incoming webhook, and a Bolt app serving a slash command
(its signature check passes, its `ack` and `respond` become posts)."""

import threading
import uuid
from wsgiref.simple_server import WSGIRequestHandler, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.webhook import WebhookClient


def test_webhook_client_posts_text_and_attachments(shim):
    channel = shim.channel()
    hook = shim.ok(
        "POST",
        "/api/v4/hooks/incoming",
        {"channel_id": channel["id"], "display_name": "slack_sdk"},
    )
    marker = uuid.uuid4().hex
    client = WebhookClient(shim.url + "/hooks/" + hook["id"])
    response = client.send(
        text="deploy finished " + marker,
        attachments=[{"color": "good", "title": "Build 42", "text": "all green"}],
    )
    assert response.status_code == 200
    assert response.body == "ok"
    post = shim.wait_for_post(channel["id"], lambda p: marker in p["message"])
    assert post["message"] == "deploy finished " + marker
    assert post["props"]["from_webhook"] == "true"
    assert post["props"]["attachments"][0]["title"] == "Build 42"
    assert post["type"] == "slack_attachment"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def test_bolt_app_serves_a_slash_command(shim):
    channel = shim.channel()
    team = shim.team()
    trigger = "deploy" + uuid.uuid4().hex[:6]
    seen = {}
    # Bolt starts on a placeholder secret; the real one exists once the
    # command does, which needs the app's URL first.
    secret = {"value": "placeholder"}

    def authorize(enterprise_id, team_id, logger):
        # Single-workspace app without a Slack API to ask.
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token="xoxb-test")

    def make_app():
        app = App(signing_secret=secret["value"], authorize=authorize)

        @app.command("/" + trigger)
        def handle(ack, respond, command):
            seen.update(command)
            ack(response_type="in_channel", text="Deploying %s for @%s" % (command["text"], command["user_name"]))
            respond(response_type="in_channel", text="follow-up for " + command["text"])

        return app

    handler = {"wsgi": None}

    def wsgi(environ, start_response):
        return handler["wsgi"](environ, start_response)

    server = make_server("127.0.0.1", 0, wsgi, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/slack/events" % server.server_port
        command = shim.ok(
            "POST",
            "/api/v4/commands",
            {"team_id": team["id"], "trigger": trigger, "method": "P", "url": url},
        )
        secret["value"] = command["signing_secret"]
        handler["wsgi"] = SlackRequestHandler(make_app())

        result = shim.ok(
            "POST",
            "/api/v4/commands/execute",
            {"channel_id": channel["id"], "command": "/%s staging" % trigger},
        )
        assert result["text"].startswith("Deploying staging")
        post = shim.wait_for_post(channel["id"], lambda p: p["message"] == "Deploying staging for @admin")
        assert post["user_id"] == seen["user_id"]
        follow_up = shim.wait_for_post(channel["id"], lambda p: p["message"] == "follow-up for staging")
        assert follow_up["channel_id"] == channel["id"]
        # What Bolt was handed is Mattermost's command request.
        assert seen["command"] == "/" + trigger
        assert seen["channel_id"] == channel["id"]
        assert seen["team_id"] == team["id"]
        assert seen["response_url"].startswith(shim.url + "/hooks/commands/")
    finally:
        server.shutdown()
        server.server_close()
