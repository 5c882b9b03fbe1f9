"""mattermostdriver, unmodified: REST (token login, channel by team and
channel name, create and read posts) and its websocket (authenticates
without complaint, receives `posted` with sender_name and mentions)."""

import asyncio
import json
import logging
import uuid

from mattermostdriver import Driver
from mattermostdriver.websocket import Websocket


def driver_for(shim, token):
    driver = Driver(
        {
            "url": "127.0.0.1",
            "port": shim.port,
            "scheme": "http",
            "basepath": "/api/v4",
            "token": token,
            "timeout": 10,
            "keepalive": False,
        }
    )
    driver.login()
    return driver


def test_rest_login_channel_lookup_and_posts(shim):
    user, token = shim.user("md" + uuid.uuid4().hex[:8])
    driver = driver_for(shim, token)
    assert driver.client.userid == user["id"]
    assert driver.client.username == user["username"]
    channel = driver.channels.get_channel_by_name_and_team_name(shim.team_name, "town-square")
    assert channel["name"] == "town-square"
    marker = uuid.uuid4().hex
    created = driver.posts.create_post({"channel_id": channel["id"], "message": "hi " + marker})
    assert created["user_id"] == user["id"]
    listing = driver.posts.get_posts_for_channel(channel["id"])
    assert created["id"] in listing["order"]
    assert listing["posts"][created["id"]]["message"] == "hi " + marker
    thread = driver.posts.get_thread(created["id"])
    assert thread["order"] == [created["id"]]
    by_name = driver.users.get_users_by_usernames([user["username"]])
    assert [u["id"] for u in by_name] == [user["id"]]
    assert driver.users.get_users_by_ids([user["id"]])[0]["username"] == user["username"]
    members = driver.channels.get_channel_members(channel["id"], params={"per_page": 200})
    assert user["id"] in [m["user_id"] for m in members]
    edited = driver.posts.patch_post(created["id"], {"message": "edited " + marker})
    assert edited["message"] == "edited " + marker
    driver.posts.delete_post(created["id"])
    assert created["id"] not in driver.posts.get_posts_for_channel(channel["id"])["order"]


def test_websocket_receives_posted_with_sender_and_mentions(shim, caplog):
    listener, listener_token = shim.user("mdl" + uuid.uuid4().hex[:8])
    poster, poster_token = shim.user("mdp" + uuid.uuid4().hex[:8])
    channel = shim.channel()
    marker = uuid.uuid4().hex
    received = []
    driver = driver_for(shim, listener_token)
    socket = Websocket(driver.options, listener_token)

    def post():
        shim.ok(
            "POST",
            "/api/v4/posts",
            {"channel_id": channel["id"], "message": "@%s look %s" % (listener["username"], marker)},
            token=poster_token,
        )

    async def handler(message):
        event = json.loads(message)
        if event.get("event") == "hello":
            asyncio.get_running_loop().run_in_executor(None, post)
        if event.get("event") == "posted" and marker in event["data"]["post"]:
            received.append(event)
            socket.disconnect()

    caplog.set_level(logging.INFO, logger="mattermostdriver.websocket")
    asyncio.run(asyncio.wait_for(socket.connect(handler), timeout=30))

    assert "Websocket authentification OK" in caplog.text
    assert "authentification failed" not in caplog.text
    event = received[0]
    assert event["data"]["sender_name"] == "@" + poster["username"]
    assert json.loads(event["data"]["mentions"]) == [listener["id"]]
    assert event["data"]["channel_name"] == "town-square"
    post = json.loads(event["data"]["post"])
    assert post["user_id"] == poster["id"]
